/*
 * newref_patch.h -- re-stamping free-list objects on a STATIC 3.11
 * interpreter (Debian's /usr/bin/python3.11), where _Py_NewReference is
 * called directly and capi_rebind.c's GOT rewrite cannot reach it.  See
 * newref_patch.c for the design, the bytes it patches and why it is safe.
 *
 * All functions are called with the GIL held (3.11 has no
 * free-threaded build).
 */
#ifndef FTMPY_NEWREF_PATCH_H
#define FTMPY_NEWREF_PATCH_H

#include <Python.h>

/* Called once by the module's init: checks the code, imports
 * _tracemalloc and atexit where it passes (see newref_patch.c).  A failure
 * is kept as the reason of every later refusal. */
void ftmpy_newref_patch_init(void);

/* Called by start() before the session starts (what it imports is then
 * not traced), when capi_rebind.c could not rebind the interpreter's own
 * _Py_NewReference.  0: free-list objects are re-stamped while the hooks
 * trace, until ftmpy_newref_patch_stop(); 1: refused (reason kept for
 * _stats()), nothing changed.  Never raises.  A no-op if in effect. */
int ftmpy_newref_patch_start(void);

/* Undo ftmpy_newref_patch_start (a no-op if it is not in effect).  Called
 * by stop() BEFORE the hooks stop tracing, and by a start() that failed. */
void ftmpy_newref_patch_stop(void);

/* Add newref_patched / newref_patch_active / newref_patch_reason to a
 * _stats() dict.  0, or -1 with an exception. */
int ftmpy_newref_patch_stats_into(PyObject *dict);

#endif /* FTMPY_NEWREF_PATCH_H */
