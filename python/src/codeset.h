/*
 * codeset.h -- the map from a code object's address to its shape id
 * (shapes.h), used by the allocation hooks to turn a captured frame into a
 * kind-SHAPE record (frames.h), and (free-threaded builds) the gate that
 * keeps every thread out of the shape table while a session step clears
 * it.
 *
 * Holds nothing the program dropped.  The map holds NO reference (the one
 * object kept is each distinct filename's first str, as the builtin keeps
 * it until stop/clear_traces: filenames.h); a frame
 * record names a shape (filename id, co_firstlineno and a copy of the
 * line table), never a code object, so a record stays exact after its
 * code object died and an address reused by a later code object cannot be
 * confused with the dead one.  What has to be kept right is the map
 * itself (and each thread's last capture in hooks.c, which compares code
 * addresses): an entry (address -> shape) is only valid while the code
 * object it was made from is alive.  So every code object's death is
 * counted (ftmpy_code_deaths, bumped by a code watcher -- PyCode_AddWatcher,
 * 3.12+ -- or on 3.11 by the code type's deallocator interposed in
 * frames_py311.c; see ftmpy_code_watch in frames.h), BEFORE its memory is
 * freed, and every cache built from addresses starts over as soon as the
 * counter moved.  Why that is enough: a code object on the capturing
 * thread's own stack is alive for the whole capture (its frame holds it).
 * If the cache names its address for an older, dead object, that object
 * died (counter bumped) before its memory was reused for the live one, and
 * the live one reached this thread's stack afterwards (through whatever
 * synchronisation published it), so the capture's load of the counter,
 * made after the frame was pushed, happens after the bump and sees it.
 * Code deaths are rare next to allocations (exec/compile results and
 * module bodies), so starting over costs one shape lookup per stored
 * frame after each death, off the common path.
 *
 * Alternatives weighed: keeping a strong reference only while a live trace
 * names the code (the engine's interned tracebacks outlive traces, and
 * moving a dying object's records needs the whole pool rescanned); a weak
 * reference per code object plus a side record keyed by a unique id (a
 * weakref object per code, created only outside the hooks because a GC
 * allocation can collect inside them on 3.11, and records of regenerated
 * code still never deduplicate).  Shapes need neither, and make records
 * of code generated again and again equal.
 *
 * If no death notification can be had (every code watcher slot taken),
 * ftmpy_codeset_watching() is 0: nothing is cached across captures (each
 * capture walks its whole stack and looks every frame's shape up), which
 * is slower but holds nothing and stays exact.
 *
 * Epoch: ftmpy_codeset_release() (stop/clear_traces, after the engine has
 * dropped the generation) bumps ftmpy_code_epoch and drops every shape and
 * map entry; per-thread caches and query caches compare their epoch and
 * start over when it moved.
 *
 * GIL builds.  Everything here requires the GIL.  One map; the gate
 * functions are empty.
 *
 * Free-threaded builds (Py_GIL_DISABLED).  The allocation hooks of many
 * threads look shapes up at once, without a GIL; stop/clear may run in any
 * thread meanwhile; a code object may die in any thread.
 *   - One map PER THREAD (the calling thread's own, no lock; a thread's map
 *     is flushed by its owner when the death counter moved).
 *   - The gate.  A hook brackets "capture the stack AND hand the
 *     traceback to the engine" with ftmpy_codeset_enter/leave: a
 *     traceback captured before a clear but recorded after it would name
 *     shapes the clear dropped.  enter() publishes the thread's `inside`
 *     flag (seq_cst store) and then reads `closed` (seq_cst load): if
 *     closed, it returns FTMPY_GATE_CLOSED and a hook never waits.  An
 *     allocation or a re-stamp then records nothing: it races with the
 *     start/stop/clear that closed the gate and is taken as happening
 *     before it (hooks.c counts it: lifecycle_skipped).  Capturing anyway
 *     (kind-RESOLVED frames, which name no shape) was not enough: the
 *     limit read for that capture may be the previous session's, and the
 *     event, numbered after the step, would land in a session whose limit
 *     is smaller (3.13t: an 18-frame traceback at nframe 1).  A realloc's
 *     end, whose ticket was numbered before enter(), and a Track still
 *     capture kind-RESOLVED frames there.
 *     ftmpy_codeset_close() stores `closed` (seq_cst) and then waits for
 *     every registered thread's `inside` to read 0 (seq_cst).  Both sides
 *     store then load, so (Dekker) either the hook sees the gate closed,
 *     or close() sees the hook inside and waits for its leave() (release
 *     store; close's load acquires it, so the hook's reads of its map and
 *     of ftmpy_code_epoch happen before the release that follows).  open()
 *     stores `closed` = 0 with release; a hook whose enter() reads it
 *     acquires everything written while the gate was closed.  The hooks
 *     never wait inside the gate on anything close() holds, so close()
 *     terminates (the region is a stack walk, map and shape look-ups (the
 *     shape table's mutex is never held by close()) and one ftm_record_*
 *     call, whose ring back-pressure waits only for the merger thread).
 *   - ftmpy_code_epoch and the per-thread maps are written by others only
 *     while the gate is closed and no thread is inside, and read only
 *     inside the gate (hooks) or under the module lock (queries, module.c),
 *     so plain accesses are race-free.
 *   - ftmpy_code_deaths: an atomic counter, bumped (release) by whichever
 *     thread deallocates a code object, read (acquire) by captures.
 *   - The registry of per-thread maps is guarded by a pthread mutex (never
 *     held while waiting on a Python lock; held across fork() by an atfork
 *     handler; in the child, the vanished threads' maps are marked gone and
 *     their `inside` flags cleared).
 * Memory comes from libc (never the traced Python allocators).
 */
#ifndef FTMPY_CODESET_H
#define FTMPY_CODESET_H

#include <Python.h>
#include <stdatomic.h>
#include <stdint.h>

/* Bumped each time the shapes are dropped (GIL builds: under the GIL;
 * free-threaded: with the gate closed). */
extern uint32_t ftmpy_code_epoch;

/* Code objects deallocated since the module was loaded (see above). */
extern atomic_uint_fast64_t ftmpy_code_deaths_ctr;

static inline uint64_t ftmpy_code_deaths(void)
{
    return atomic_load_explicit(&ftmpy_code_deaths_ctr, memory_order_acquire);
}

/* Needs the GIL (it installs the death notification). */
int ftmpy_codeset_init(void);

/* 1 if code deaths are counted (the map may cache), else 0.  Written
 * once by init (GIL held), before any hook runs. */
extern int ftmpy_codeset_watching_flag;

static inline int ftmpy_codeset_watching(void)
{
    return ftmpy_codeset_watching_flag;
}

/* Shape id of `code`, a code object on the calling thread's own stack
 * (alive for the call); 0 if it cannot be had (no memory: nothing
 * changed; no Python exception set).  GIL held; free-threaded: between a
 * successful enter() and its leave(). */
uint32_t ftmpy_codeset_shape(PyObject *code);

/* Drop every shape, map entry and held filename str, and bump the epoch (GIL
 * builds: under the GIL; free-threaded: with the gate closed and nobody
 * inside). */
void ftmpy_codeset_release(void);

/* enter()'s answers.  NOMAP: the thread has no map (out of memory): not
 * inside the gate, capture kind-RESOLVED frames. */
#define FTMPY_GATE_CLOSED 0
#define FTMPY_GATE_IN 1
#define FTMPY_GATE_NOMAP 2

#ifdef Py_GIL_DISABLED
int ftmpy_codeset_enter(void);
void ftmpy_codeset_leave(int entered);
void ftmpy_codeset_close(void);
void ftmpy_codeset_open(void);
#else
/* With a GIL nothing can interleave with a capture: always open. */
static inline int ftmpy_codeset_enter(void)
{
    return FTMPY_GATE_IN;
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
#endif

/* Nothing to drop: the map holds no references.  Kept so that callers
 * written for the reference-holding set need not change. */
static inline void ftmpy_codeset_drop_released(void)
{
}

/* Map entries (over every thread's map) and the bytes of maps and shapes. */
size_t ftmpy_codeset_count(void);
size_t ftmpy_codeset_bytes(void);

#endif /* FTMPY_CODESET_H */
