/*
 * frames_py312.c -- CPython 3.12 implementation of frames.h (see
 * frames_py311.c for the family's common invariants; the walk itself is
 * frames_walk.h).  Compiled against the interpreter's private headers.
 *
 * What 3.12 changed from 3.11, and how it is handled:
 *   - The thread state is thread-local (_Py_tss_tstate): _PyThreadState_GET
 *     is the calling thread's attached state, NULL when it holds no GIL.
 *   - The frame chain still starts at tstate->cframe->current_frame and the
 *     frame still names its code as f_code and its position as prev_instr
 *     (the code unit before the next instruction: the builtin's lasti).
 *   - Objects may carry a pre-header (GC head, managed dict/weakref
 *     pointers): _PyType_PreHeaderSize() gives its size, which the builtin
 *     also uses from 3.12 (gh-101430).
 *   - Strings are always ready: a filename is usable if it is a str.
 * Threads: any; see frames.h.
 */
#define Py_BUILD_CORE_MODULE 1
#include <Python.h>

#include "internal/pycore_frame.h"
#include "internal/pycore_object.h"
#include "internal/pycore_pystate.h"

#include "frames.h"

#if PY_VERSION_HEX < 0x030C0000 || PY_VERSION_HEX >= 0x030D0000
#error "frames_py312.c is for CPython 3.12 only"
#endif

PyThreadState *ftmpy_tstate_current(void)
{
    return _PyThreadState_GET(); /* one TLS load */
}

static inline _PyInterpreterFrame *fw_top(PyThreadState *ts)
{
    return ts->cframe != NULL ? ts->cframe->current_frame : NULL;
}

static inline int fw_skip_owner(const _PyInterpreterFrame *f)
{
    (void)f; /* like the builtin, 3.12 tests completeness only */
    return 0;
}

static inline uint64_t fw_code(const _PyInterpreterFrame *f)
{
    return (uint64_t)(uintptr_t)f->f_code;
}

static inline uint64_t fw_ip(const _PyInterpreterFrame *f)
{
    return (uint64_t)(uintptr_t)f->prev_instr |
           (uint64_t)(f->owner == FRAME_OWNED_BY_GENERATOR);
}

#include "frames_walk.h"
