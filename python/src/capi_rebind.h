/*
 * capi_rebind.h -- the C API's tracing entry points (PyTraceMalloc_Track,
 * PyTraceMalloc_Untrack, _PyTraceMalloc_GetTraceback) routed to the
 * engine, by rewriting the GOT slots through which every loaded ELF
 * object calls them.
 *
 * Owns: the saved original functions, our three wrappers, the record of
 * which slots were rewritten (a scan generation), the refusal state and
 * the capi_* counters of _stats().
 *
 * Threads: ftmpy_capi_init at module init (GIL).  ftmpy_capi_rebind and
 * the Python functions from any thread that holds the GIL (free-threaded:
 * attached); concurrent calls serialise on an internal mutex.  The
 * wrappers themselves run on any thread, with or without the GIL, like
 * the originals.  See capi_rebind.c for why the rewrite is safe.
 */
#ifndef FTMPY_CAPI_REBIND_H
#define FTMPY_CAPI_REBIND_H

#include <Python.h>
#include <stdint.h>

/* Look up the original functions.  Never fails: if they cannot be found,
 * every later rebind is refused (with the reason). */
void ftmpy_capi_init(void);

/* Rewrite the slots of every object loaded since the last call (a no-op
 * when nothing was loaded since).  Returns 0 if the C API is (now) routed
 * to the wrappers, 1 if rebinding is refused: then, the first time in the
 * process, a RuntimeWarning saying why is emitted; -1 if that warning
 * raised (an exception is set).  start() calls it before starting. */
int ftmpy_capi_rebind(void);

/* Add _capi_hook_loader(cls) (wraps cls.create_module, i.e. importlib's
 * ExtensionFileLoader's, so that extensions loaded while tracing are
 * rebound before their init runs; the package calls it at import) and
 * _capi_rebind() (a scan now; tests and benchmarks) to `mod`. */
int ftmpy_capi_add_functions(PyObject *mod);

/* 3.11/3.12: whether the interpreter's own _Py_NewReference calls reach
 * our wrapper through a rewritten GOT slot (newref_rebound); and count a
 * start() that re-stamps no free-list object (newref_refusals).  GIL. */
int ftmpy_capi_newref_home(void);
/* 3.11/3.12 with the GOT route: point the interpreter's own
 * _Py_NewReference slots at our wrapper (wrapped = 1: a session that
 * re-stamps) or back at the original (0: one that does not, which then
 * pays nothing per object creation).  Correct either way; only the cost
 * differs.  GIL; after ftmpy_capi_rebind.  No-op elsewhere. */
void ftmpy_capi_newref_route(int wrapped);
void ftmpy_capi_newref_refused(void);

/* Add the capi_* counters to a _stats() dict.  0, or -1 with an
 * exception set. */
int ftmpy_capi_stats_into(PyObject *dict);

/* dict[key] = v for a _stats() dict, stealing the new reference v (NULL:
 * the exception of whatever made it).  0, or -1 with an exception set.
 * Shared by the files that add their counters (newref_patch.c too). */
int ftmpy_stats_put(PyObject *dict, const char *key, PyObject *v);

/* Implemented by module.c: the engine's answer to
 * _PyTraceMalloc_GetTraceback(domain, ptr).  Returns 0 when the engine is
 * not tracing (the caller forwards to the original), else 1 with *out
 * set to a new reference (the traceback tuple, or None if the block is
 * not traced) or to NULL with an exception set.  GIL held. */
int ftmpy_module_traceback(unsigned int domain, uintptr_t ptr, PyObject **out);

#endif /* FTMPY_CAPI_REBIND_H */
