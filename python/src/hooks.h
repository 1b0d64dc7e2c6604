/*
 * hooks.h -- the allocator wrappers on the RAW, MEM and OBJ domains and
 * the per-thread capture state (the hot path).
 *
 * Owns: the saved original allocators, the wrappers' global switches
 * (ftmpy_hooks_tracing, ftmpy_hooks_nframe) and every thread's capture
 * state (TLS).
 *
 * Threads: install/uninstall/set_nframe with the GIL held (like the
 * builtin, allocators are swapped under the GIL; RAW wrappers may still be
 * running in threads without the GIL, which is safe: the saved allocators
 * are never freed, and stale calls only produce events the engine ignores
 * once stopped).  Free-threaded builds: with the module lock held instead
 * (module.c), while MEM/OBJ wrappers run in other threads (hooks.c, "Free-
 * threaded builds").  ftmpy_suppress_begin/end/push/pop: the calling
 * thread only (they touch its own state).
 */
#ifndef FTMPY_HOOKS_H
#define FTMPY_HOOKS_H

#include <Python.h>
#include <stdatomic.h>
#include <stdint.h>

int ftmpy_hooks_init(void);

/* Publish the traceback limit captures read (start() calls it before
 * closing the code-set gate around ftm_start: module.c). */
void ftmpy_hooks_set_nframe(uint16_t nframe);

/* Install the wrappers (tracing must already be enabled in the engine). */
void ftmpy_hooks_install(uint16_t nframe);

/* Restore the original allocators. */
void ftmpy_hooks_uninstall(void);

/* While suppressed, the calling thread's allocations are not traced (its
 * frees still are): used while the module builds query results, as the
 * builtin does. */
void ftmpy_suppress_begin(void);
/* The calling thread's attribution tag (threads.h), 0 if it has none. */
uint32_t ftmpy_hooks_thread_tag(void);
void ftmpy_suppress_end(void);

/* The same per-thread scope, opened and closed from Python code (the
 * package's own lazy imports and bookkeeping: _suspend/_resume in
 * module.c).  It nests with itself and with begin/end (one counter).
 * push: 0, or -1 if the thread's state cannot be allocated (nothing was
 * pushed).  pop: 0, or -1 if the thread is not suppressed (nothing was
 * popped).  Other threads are never affected. */
int ftmpy_suppress_push(void);
int ftmpy_suppress_pop(void);

typedef struct ftmpy_hook_stats {
    uint64_t capture_oom;    /* captures that fell back to "<unknown>" */
    uint64_t coderef_oom;    /* frames resolved eagerly: no shape memory */
    uint64_t filename_oom;   /* filenames recorded as "<unknown>" */
    uint64_t nogil_captures; /* RAW captures made without the GIL */
    /* allocations and re-stamps not recorded because they raced with a
     * start/stop/clear (free-threaded builds; codeset.h "The gate") */
    uint64_t lifecycle_skipped;
    size_t tls_bytes; /* per-thread capture buffers */
} ftmpy_hook_stats;

void ftmpy_hooks_stats(ftmpy_hook_stats *out);

/* The C API's PyTraceMalloc_Track/Untrack on the engine (capi_rebind.c
 * calls them while ftmpy_hooks_is_tracing()).  Any thread, with or without
 * the GIL or a thread state.  Track records (domain, ptr, size) with the
 * calling thread's current Python traceback, replacing any trace of
 * (domain, ptr), as the builtin does: with the GIL from the thread state,
 * without it from the thread's own frames (as a RAW allocation made
 * without the GIL; the builtin takes the GIL for this, we never do), with
 * no thread state the "<unknown>" traceback.  Inside the thread's
 * "do not trace" scope nothing is recorded.  Returns 0, or -1 if the
 * thread's capture state or the engine's ring could not be allocated
 * (the builtin's -1: out of memory) or if the call comes from inside a
 * realloc of our own wrapper (an allocator below ours calling Track; the
 * engine drops and counts it).  Untrack records the removal and returns
 * 0 (also for a block that is not traced). */
int ftmpy_hooks_is_tracing(void);
int ftmpy_hooks_track(unsigned int domain, uintptr_t ptr, size_t size);
int ftmpy_hooks_untrack(unsigned int domain, uintptr_t ptr);

/* An object was just created, maybe from a free list without an
 * allocation: re-stamp the trace of its memory block (if traced) with the
 * current traceback, as the builtin does.  GIL held (free-threaded:
 * attached), only while ftmpy_hooks_is_tracing().  Called by the
 * PyRefTracer (3.13+, hooks.c) and by capi_rebind.c's _Py_NewReference
 * wrapper (3.11/3.12). */
void ftmpy_hooks_new_object(PyObject *op);

/* 1 while tracing in a mode that wants new-object events (exact mode, or
 * a sampled session that re-stamps): what the _Py_NewReference wrappers
 * of 3.11/3.12 test, inline, before calling ftmpy_hooks_new_object.  A
 * sampled session without re-stamping then costs each object creation
 * one load instead of two calls.  Relaxed; written by install/uninstall
 * with g_tracing (hooks.c), so a stale value is a creation racing with
 * start/stop, which ftmpy_hooks_new_object checks again anyway. */
extern atomic_int ftmpy_hooks_newobj_wanted;

#endif /* FTMPY_HOOKS_H */
