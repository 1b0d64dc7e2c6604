/*
 * frames_py314.c -- CPython 3.14 and 3.15 implementation of frames.h (the
 * two share the frame layout that matters here).  The walk itself is
 * frames_walk.h.  Compiled against the private headers.
 *
 * What 3.14 changed from 3.13, and how it is handled:
 *   - f_executable is a tagged _PyStackRef (deferred or strong reference):
 *     PyStackRef_AsPyObjectBorrow() clears the tag bits to get the code
 *     object's address.
 *   - Owner FRAME_OWNED_BY_INTERPRETER (interpreter shims) joins
 *     FRAME_OWNED_BY_CSTACK; the builtin treats every owner >=
 *     FRAME_OWNED_BY_INTERPRETER as incomplete, so does fw_skip_owner.
 *   - The frame layout moved to internal/pycore_interpframe*.h.
 *   - 3.14t's thread-local bytecode copies are not supported here (no
 *     3.14t interpreter to test on): the build refuses Py_GIL_DISABLED.
 * 3.15 changed nothing this file reads (checked against 3.15.0's headers:
 * same _PyInterpreterFrame prefix, owners and _PyFrame_IsIncomplete).
 * Threads: any; see frames.h.
 */
#define Py_BUILD_CORE_MODULE 1
#include <Python.h>

#include "internal/pycore_code.h"
#include "internal/pycore_interpframe.h"
#include "internal/pycore_object.h"

#include "frames.h"

#if PY_VERSION_HEX < 0x030E0000 || PY_VERSION_HEX >= 0x03100000
#error "frames_py314.c is for CPython 3.14 and 3.15 only"
#endif
#ifdef Py_GIL_DISABLED
#error                                                                        \
    "frames_py314.c: free-threaded 3.14t+ (thread-local bytecode) is not supported yet"
#endif

PyThreadState *ftmpy_tstate_current(void)
{
    return PyThreadState_GetUnchecked(); /* one TLS load */
}

static inline _PyInterpreterFrame *fw_top(PyThreadState *ts)
{
    return ts->current_frame;
}

static inline int fw_skip_owner(const _PyInterpreterFrame *f)
{
    return f->owner >= FRAME_OWNED_BY_INTERPRETER;
}

static inline uint64_t fw_code(const _PyInterpreterFrame *f)
{
    return (uint64_t)(uintptr_t)PyStackRef_AsPyObjectBorrow(f->f_executable);
}

static inline uint64_t fw_ip(const _PyInterpreterFrame *f)
{
    return (uint64_t)(uintptr_t)f->instr_ptr |
           (uint64_t)(f->owner == FRAME_OWNED_BY_GENERATOR);
}

#include "frames_walk.h"
