/*
 * resolve.h -- turning engine answers into the builtin's Python objects.
 *
 * Owns the query-side caches, all valid for one code epoch (codeset.h):
 *   - frame record -> (filename, lineno) tuple: the line number of a
 *     (shape, offset) pair is decoded once, here, never on the hot path;
 *   - traceback id -> traceback tuple (most recent frame first) and its
 *     total_nframe int; equal tracebacks (even from distinct ids, e.g. two
 *     offsets on one line, or a GIL and a no-GIL capture of the same
 *     frames) map to ONE tuple object through a content dict, so equal
 *     tracebacks are the same object within -- and across -- queries.
 * All objects built here are immutable tuples of str/int/such tuples and
 * are untracked by the GC (no cycle is possible), which keeps the cyclic
 * collector from re-scanning a million trace tuples.
 *
 * Threads: GIL only; free-threaded builds: the module lock (module.c),
 * which every caller holds for the whole query, so the caches, the content
 * dict and the shapes named by kind-SHAPE records (dropped only by
 * stop/clear, under the same lock; shapes.h has its own lock against the
 * hooks adding to the table) are never touched by two threads at once.  A
 * borrowed result must be INCREF-ed before the lock is released. Ids passed in
 * must be valid (inside a held ftm_snapshot, or from ftm_get_trace before any
 * clear/stop).
 */
#ifndef FTMPY_RESOLVE_H
#define FTMPY_RESOLVE_H

#include <Python.h>

#include "fasttracemalloc.h"

/* Borrowed traceback tuple for `id` (and, if total != NULL, a borrowed
 * int for its total_nframe); NULL with an exception on failure. */
PyObject *ftmpy_tb_tuple(ftm_tb_id id, PyObject **total);

/* The builtin's _get_traces() list for a snapshot; new reference. */
PyObject *ftmpy_traces_list(const ftm_snapshot *snap);

/* Drop every cache (stop/clear_traces, or epoch change). */
void ftmpy_resolve_clear(void);

size_t ftmpy_resolve_bytes(void);

#endif /* FTMPY_RESOLVE_H */
