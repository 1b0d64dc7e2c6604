/*
 * frames_py311.c -- CPython 3.11 implementation of frames.h: the ONLY file
 * of the extension compiled against the interpreter's private headers
 * (Py_BUILD_CORE_MODULE + internal/pycore_frame.h, pycore_pystate.h).
 * Its siblings frames_py312.c, frames_py313.c and frames_py314.c implement
 * the same functions for the later interpreters.
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

/* Accessors for frames_walk.h. */
static inline _PyInterpreterFrame *fw_top(PyThreadState *ts)
{
    return ts->cframe != NULL ? ts->cframe->current_frame : NULL;
}

static inline int fw_skip_owner(const _PyInterpreterFrame *f)
{
    (void)f; /* 3.11 has no frame that is incomplete by its owner alone */
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

/* 3.11 has no code watchers.  Code objects do take weak references, but a
 * weakref per code object is a GC allocation that cannot be made inside an
 * allocation hook (on 3.11 it may run a collection right there) and costs
 * an object per code object.  Instead the code type's deallocator is
 * interposed: code_dealloc is only ever reached through
 * PyCode_Type.tp_dealloc (_Py_Dealloc reads the slot at each call), so
 * every code object's death passes through code_dealloc_watched() first,
 * which notes it and calls the original.  The slot is written once, with
 * the GIL held, and never restored: restoring it while a deallocation
 * through ours is under way in this thread, or after someone else
 * interposed theirs on top of ours, would break the chain; an extension
 * module is never unloaded, so ours stays valid for the process. */
static destructor orig_code_dealloc;
static void (*watch_cb)(void);

static void code_dealloc_watched(PyObject *op)
{
    watch_cb();
    orig_code_dealloc(op);
}

int ftmpy_code_watch(void (*on_death)(void))
{
    if (PyCode_Type.tp_dealloc == code_dealloc_watched) {
        watch_cb = on_death;
        return 0;
    }
    if (PyCode_Type.tp_dealloc == NULL) {
        return -1;
    }
    watch_cb = on_death;
    orig_code_dealloc = PyCode_Type.tp_dealloc;
    PyCode_Type.tp_dealloc = code_dealloc_watched;
    return 0;
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
