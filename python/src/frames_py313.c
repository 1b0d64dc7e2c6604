/*
 * frames_py313.c -- CPython 3.13 implementation of frames.h, for the
 * default build and the free-threaded one (3.13t, Py_GIL_DISABLED).  The
 * walk itself is frames_walk.h.  Compiled against the private headers.
 *
 * What 3.13 changed from 3.12, and how it is handled:
 *   - The chain starts at tstate->current_frame (no more _PyCFrame).
 *   - A frame names its code as f_executable (a code object, or None for
 *     the C-stack entry frames that are pushed between Python frames; those
 *     are owned by FRAME_OWNED_BY_CSTACK and are "incomplete" to the
 *     builtin, so fw_skip_owner drops them before f_executable is read).
 *   - The position is instr_ptr, the instruction being executed; the
 *     builtin's lasti is instr_ptr - _PyCode_CODE(code), as before.
 *   - PyThreadState_GetUnchecked() and Py_IsFinalizing() are public.
 *   - 3.13t: no PyGC_Head in front of GC objects (_PyType_PreHeaderSize
 *     knows), and the bytecode is shared by all threads (thread-local
 *     copies come in 3.14t), so instr_ptr is inside _PyCode_CODE(code).
 * Threads: any; see frames.h.  On 3.13t "the GIL holder" of frames.h reads
 * "the calling thread while attached".
 */
#define Py_BUILD_CORE_MODULE 1
#include <Python.h>

#include "internal/pycore_code.h"
#include "internal/pycore_frame.h"
#include "internal/pycore_object.h"

#include "frames.h"

#if PY_VERSION_HEX < 0x030D0000 || PY_VERSION_HEX >= 0x030E0000
#error "frames_py313.c is for CPython 3.13 only"
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
    return f->owner == FRAME_OWNED_BY_CSTACK;
}

static inline uint64_t fw_code(const _PyInterpreterFrame *f)
{
    return (uint64_t)(uintptr_t)f->f_executable;
}

static inline uint64_t fw_ip(const _PyInterpreterFrame *f)
{
    return (uint64_t)(uintptr_t)f->instr_ptr |
           (uint64_t)(f->owner == FRAME_OWNED_BY_GENERATOR);
}

#include "frames_walk.h"
