/*
 * codeset.h -- the module-owned set of code objects that kind-CODE frame
 * records (frames.h) point to, and (free-threaded builds) the gate that
 * keeps every thread out of it while a session step releases it.
 *
 * Owns one strong reference per member.  Invariant: while a code object's
 * address appears in any frame record the engine may still hand back (the
 * current traceback generation, the per-thread capture caches of the
 * current epoch, the query caches), the object is a member, so the address
 * cannot be freed and reused by another code object.  A member may be held
 * longer than that (never shorter).
 *
 * Epoch: ftmpy_codeset_release() (stop/clear_traces, after the engine has
 * dropped the generation) bumps ftmpy_code_epoch before dropping the
 * references; per-thread caches and query caches compare their epoch and
 * start over when it moved.
 *
 * GIL builds.  Everything here requires the GIL (that is what makes
 * Py_INCREF legal and what keeps a capture and its record in one piece
 * against stop/clear).  One set; the gate functions are empty.
 *
 * Free-threaded builds (Py_GIL_DISABLED).  The allocation hooks of many
 * threads add members at once, without a GIL; stop/clear may run in any
 * thread meanwhile.
 *   - Members are kept in one set PER THREAD (the calling thread's own,
 *     no lock: a code object shared by n threads holds n references).  A
 *     thread's set outlives the thread (its references stay members until
 *     the next release).
 *   - The gate.  A hook brackets "capture the stack AND hand the
 *     traceback to the engine" with ftmpy_codeset_enter/leave: a
 *     traceback captured before a clear but recorded after it would name
 *     code objects the clear released.  enter() publishes the thread's
 *     `inside` flag (seq_cst store) and then reads `closed` (seq_cst load):
 *     if closed, it returns 0 and the hook captures kind-RESOLVED frames
 *     (frames.h), which name no code object, so a hook never waits.
 *     ftmpy_codeset_close() stores `closed` (seq_cst) and then waits for
 *     every registered thread's `inside` to read 0 (seq_cst).  Both sides
 *     store then load, so (Dekker) either the hook sees the gate closed,
 *     or close() sees the hook inside and waits for its leave() (release
 *     store; close's load acquires it, so the hook's reads of the set and
 *     of ftmpy_code_epoch happen before the release that follows).  open()
 *     stores `closed` = 0 with release; a hook whose enter() reads it
 *     acquires everything written while the gate was closed.  The hooks
 *     never wait inside the gate on anything close() holds, so close()
 *     terminates (the region is a stack walk, set inserts and one
 *     ftm_record_* call, whose ring back-pressure waits only for the
 *     merger thread).
 *   - ftmpy_code_epoch and the per-thread sets are written only while the
 *     gate is closed and no thread is inside, and read only inside the
 *     gate (hooks) or under the module lock (queries, module.c), so
 *     plain accesses are race-free.
 *   - release() moves every thread's references to a pending list (no
 *     allocation needed beyond a growable array; if it cannot grow, that
 *     thread's set is simply kept: its members stay alive longer);
 *     ftmpy_codeset_drop_released() drops them later, after the gate is
 *     open and the module lock released, because a Py_DECREF may run
 *     arbitrary code (weakref callbacks).
 *   - The registry of per-thread sets is guarded by a pthread mutex (never
 *     held while waiting on a Python lock; held across fork() by an atfork
 *     handler; in the child, the vanished threads' sets are marked gone and
 *     their `inside` flags cleared).
 * Memory comes from libc (never the traced Python allocators).
 */
#ifndef FTMPY_CODESET_H
#define FTMPY_CODESET_H

#include <Python.h>
#include <stdint.h>

/* Bumped each time the set is emptied (GIL builds: under the GIL;
 * free-threaded: with the gate closed). */
extern uint32_t ftmpy_code_epoch;

int ftmpy_codeset_init(void);

/* Make `code` a member (taking a reference if new).  0 on success, -1 when
 * the set cannot grow (nothing changed; no Python exception set).
 * Free-threaded: only between a successful enter() and its leave(). */
int ftmpy_codeset_add(PyObject *code);

/* Empty the set: bump the epoch, then drop every reference (GIL builds:
 * right here, which may run arbitrary code; the set is already empty and
 * consistent by then; free-threaded: with the gate closed, moving them to
 * the list ftmpy_codeset_drop_released() empties). */
void ftmpy_codeset_release(void);

#ifdef Py_GIL_DISABLED
int ftmpy_codeset_enter(void);
void ftmpy_codeset_leave(int entered);
void ftmpy_codeset_close(void);
void ftmpy_codeset_open(void);
void ftmpy_codeset_drop_released(void);
#else
/* With a GIL nothing can interleave with a capture: always open. */
static inline int ftmpy_codeset_enter(void)
{
    return 1;
}
static inline void ftmpy_codeset_leave(int entered)
{
    (void)entered;
}
static inline void ftmpy_codeset_close(void)
{
}
static inline void ftmpy_codeset_open(void)
{
}
static inline void ftmpy_codeset_drop_released(void)
{
}
#endif

size_t ftmpy_codeset_count(void);
size_t ftmpy_codeset_bytes(void);

#endif /* FTMPY_CODESET_H */
