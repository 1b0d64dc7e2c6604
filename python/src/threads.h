/*
 * threads.h -- per-thread attribution: which thread allocated each trace.
 *
 * Owns: the on/off switch and the process-wide table of thread tags.  A
 * tag is a small number given to an OS thread the first time it captures
 * a traceback while attribution is on; the hooks put it in the
 * ftm_traceback they hand to the engine (ftm_traceback.thread_tag), which
 * makes it part of the interned traceback key, so a trace's traceback id
 * names its thread (ftm_traceback_thread) and the 16-byte trace map entry
 * is unchanged.  The table maps a tag to the thread's identifiers
 * (threading.get_ident() and the OS native id), which the package matches
 * with threading's Thread objects to name the thread.
 *
 * Invariants: tag 0 = no attribution (captured while the switch was off,
 * or by a thread with no state); tags 1..FTMPY_THREADS_MAX are given once
 * each, in order, never reused in the process (a dead thread's traces keep
 * its tag); past the table's end every new thread gets
 * FTMPY_THREAD_OTHER.  The table is allocated on the first enable and
 * lives as long as the process.
 *
 * Threads: ftmpy_threads_assign from any thread (inside an allocator
 * wrapper: it never allocates and takes no lock); everything else from
 * the module, under the GIL or module lock.  A trace's tag is read from
 * the engine (ftm_traceback_thread) at query time.  The switch is read relaxed
 * on every capture (a thread may see a toggle late: its captures of that
 * moment carry the old setting, which is harmless).
 */
#ifndef FTMPY_THREADS_H
#define FTMPY_THREADS_H

#include <Python.h>
#include <stdatomic.h>
#include <stdint.h>

#include "fasttracemalloc.h"

#define FTMPY_THREADS_MAX 65536u
#define FTMPY_THREAD_OTHER UINT32_MAX

/* 1 while attribution is on (relaxed; see top). */
extern atomic_int ftmpy_threads_on;

/* Switch attribution on (allocating the table the first time: -1 with
 * MemoryError set if it cannot) or off. */
int ftmpy_threads_enable(int on);

/* A new tag for the calling thread, recorded with its identifiers. */
uint32_t ftmpy_threads_assign(void);

/* The table as a list of (tag, ident, native_id) tuples, tag order; new
 * reference, NULL with an exception. */
PyObject *ftmpy_threads_table(void);

/* Queries (the module lock held, suppressed, snap held).  Per-tag sums
 * of the snapshot: dict tag -> [size, count]; new reference. */
PyObject *ftmpy_threads_totals(const ftm_snapshot *snap);

/* The snapshot's tags, one int per trace (one int object per tag), as a
 * list; new reference. */
PyObject *ftmpy_threads_tags(const ftm_snapshot *snap);

#endif /* FTMPY_THREADS_H */
