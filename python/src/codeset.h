/*
 * codeset.h -- the module-owned set of code objects that kind-CODE frame
 * records (frames.h) point to.
 *
 * Owns one strong reference per member.  Invariant: while a code object's
 * address appears in any frame record the engine may still hand back (the
 * current traceback generation, the per-thread capture caches of the
 * current epoch, the query caches), the object is a member, so the address
 * cannot be freed and reused by another code object.
 *
 * Epoch: ftmpy_codeset_release() (stop/clear_traces, after the engine has
 * dropped the generation) bumps ftmpy_code_epoch before dropping the
 * references; per-thread caches and query caches compare their epoch and
 * start over when it moved.
 *
 * Threads: everything here requires the GIL (that is what makes Py_INCREF
 * legal).  Memory comes from libc (never the traced Python allocators).
 */
#ifndef FTMPY_CODESET_H
#define FTMPY_CODESET_H

#include <Python.h>
#include <stdint.h>

/* Bumped (under the GIL) each time the set is emptied. */
extern uint32_t ftmpy_code_epoch;

/* Make `code` a member (taking a reference if new).  0 on success, -1 when
 * the set cannot grow (nothing changed; no Python exception set). */
int ftmpy_codeset_add(PyObject *code);

/* Empty the set: bump the epoch, then drop every reference (which may run
 * arbitrary code; the set is already empty and consistent by then). */
void ftmpy_codeset_release(void);

size_t ftmpy_codeset_count(void);
size_t ftmpy_codeset_bytes(void);

#endif /* FTMPY_CODESET_H */
