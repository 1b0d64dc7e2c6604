/*
 * frames_py311.c -- CPython 3.11 implementation of frames.h: the ONLY file
 * of the extension compiled against the interpreter's private headers
 * (Py_BUILD_CORE_MODULE + internal/pycore_frame.h, pycore_pystate.h).
 * Supporting 3.12+ means adding a sibling file with the same functions
 * (3.12 moved f_code to f_executable later, current_frame to the thread
 * state, etc.) and choosing it in python/CMakeLists.txt.
 *
 * Invariants relied upon (3.11):
 *   - tstate->cframe->current_frame is the thread's most recent
 *     _PyInterpreterFrame; `previous` links to older ones.  Only the owning
 *     thread pushes/pops frames or updates prev_instr, and it does so only
 *     while running bytecode, never while it is inside an allocator call.
 *     So a thread may read its OWN chain from an allocator hook even without
 *     the GIL (the chain and every f_code on it are pinned by the frames'
 *     strong references for the duration of the call).
 *   - f_code and the code object's co_filename / co_linetable are immutable.
 *   - A frame is "incomplete" before its first RESUME; the builtin skips
 *     those, so do we (_PyFrame_IsIncomplete).
 * Threads: any; see frames.h.
 */
#define Py_BUILD_CORE_MODULE 1
#include <Python.h>

#include "internal/pycore_frame.h"
#include "internal/pycore_gc.h"
#include "internal/pycore_pystate.h"

#include "frames.h"

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030C0000
#error "frames_py311.c is for CPython 3.11 only"
#endif

PyThreadState *ftmpy_tstate_current(void)
{
    /* One relaxed load of _PyRuntime.gilstate.tstate_current. */
    return _PyThreadState_GET();
}

PyThreadState *ftmpy_tstate_own(void)
{
    /* The thread's auto thread state (a TSS lookup): the calling thread's
     * own, whether or not it holds the GIL. */
    return PyGILState_GetThisThreadState();
}

static inline uint64_t ip_key(const _PyInterpreterFrame *f)
{
    return (uint64_t)(uintptr_t)f->prev_instr |
           (uint64_t)(f->owner == FRAME_OWNED_BY_GENERATOR);
}

uint32_t ftmpy_walk(PyThreadState *ts, ftm_frame *frames, uint32_t scap,
                    uint32_t limit, int trust, int *changed, uint16_t *newcode,
                    uint32_t *n_newcode)
{
    uint32_t n = 0; /* complete frames seen */
    uint32_t nn = 0;
    int ch = 0;

    if (ts != NULL && ts->cframe != NULL) {
        _PyInterpreterFrame *f = ts->cframe->current_frame;
        for (; f != NULL; f = f->previous) {
            if (n < scap) {
                uint64_t a = (uint64_t)(uintptr_t)f->f_code;
                uint64_t b = ip_key(f);
                if (trust && frames[n].a == a && frames[n].b == b) {
                    n++; /* same record as last time: complete */
                    continue;
                }
                if (_PyFrame_IsIncomplete(f)) {
                    continue;
                }
                if (frames[n].a != a) {
                    if (newcode != NULL) {
                        newcode[nn++] = (uint16_t)n;
                    }
                    ch |= n < limit ? (n == 0 ? 1 : 2) : 0;
                } else if (frames[n].b != b) {
                    ch |= n < limit ? (n == 0 ? 1 : 2) : 0;
                }
                frames[n].a = a;
                frames[n].b = b;
                n++;
            } else {
                if (_PyFrame_IsIncomplete(f)) {
                    continue;
                }
                if (++n >= FTM_MAX_NFRAME) {
                    break; /* the count is capped, nothing more to store */
                }
            }
        }
    }
    if (ch) {
        *changed = 1;
    }
    if (n_newcode != NULL) {
        *n_newcode = nn;
    }
    return n < FTM_MAX_NFRAME ? n : FTM_MAX_NFRAME;
}

int ftmpy_frame_line(const ftm_frame *f)
{
    PyCodeObject *code = (PyCodeObject *)(uintptr_t)f->a;
    uintptr_t ip = (uintptr_t)(f->b & ~(uint64_t)1);
    intptr_t units = ((intptr_t)ip - (intptr_t)(uintptr_t)_PyCode_CODE(code)) /
                     (intptr_t)sizeof(_Py_CODEUNIT);
    if (units < -1 || units > INT_MAX / (intptr_t)sizeof(_Py_CODEUNIT)) {
        return 0;
    }
    int line = PyCode_Addr2Line(code, (int)units * (int)sizeof(_Py_CODEUNIT));
    return line < 0 ? 0 : line;
}

PyObject *ftmpy_code_filename(PyObject *code)
{
    PyObject *fn = ((PyCodeObject *)code)->co_filename;
    if (fn == NULL || !PyUnicode_Check(fn) || !PyUnicode_IS_READY(fn)) {
        return NULL;
    }
    return fn;
}

size_t ftmpy_object_preheader(PyTypeObject *type)
{
    /* 3.11: [PyGC_Head if GC][dict ptr, values ptr if MANAGED_DICT] obj.
     * (The builtin forgets the second part; gh-101430 fixed it in 3.12.) */
    size_t n = 0;
    if (PyType_IS_GC(type)) {
        n += sizeof(PyGC_Head);
    }
    if (PyType_HasFeature(type, Py_TPFLAGS_MANAGED_DICT)) {
        n += 2 * sizeof(PyObject *);
    }
    return n;
}
