/*
 * frames_walk.h -- the frame walk of frames.h, written once for every
 * interpreter family.  Included by exactly one frames_py3XX.c per build,
 * after that file has included its interpreter's private headers and
 * defined these accessors (all static inline, all reading only the
 * calling thread's own frames):
 *
 *   fw_top(ts)           the thread's most recent _PyInterpreterFrame or NULL
 *   fw_code(f)           address of the frame's code object, as uint64_t
 *                        (never called on a frame fw_skip_owner() rejects)
 *   fw_ip(f)             the frame's instruction pointer (an address inside
 *                        its code object's bytecode; even) | 1 if the frame
 *                        is owned by a generator
 *   fw_skip_owner(f)     non-zero for frames that are incomplete by their
 *                        owner alone (3.13+: C-stack entry frames, 3.14+:
 *                        interpreter shims); such frames may carry no code
 *                        object, so this is tested before anything else
 *
 * fw_incomplete(f), the interpreter's own _PyFrame_IsIncomplete(f), is
 * defined here: its name and meaning are the same on every family.
 *
 * Correctness of the shortcut (trust): the builtin skips exactly the frames
 * fw_skip_owner() || fw_incomplete() reject.  Past fw_skip_owner(),
 * completeness is a function of (code object, instruction pointer,
 * generator ownership): _PyFrame_IsIncomplete compares the instruction
 * pointer with the code object's first traceable instruction unless the
 * frame is a generator's.  frames[] only ever holds records of complete
 * frames, and the caller guarantees (codeset.h) that no code object named
 * there died since its record was written (so none was replaced at the
 * same address), so a frame whose record equals the stored one at its position
 * is complete. The cooked `b` (kind SHAPE) is computed from the raw record
 * alone, so a position left untouched keeps a right cooked value as well.
 *
 * Also here, because they are the same on every family: ftmpy_tstate_own,
 * ftmpy_frame_line, ftmpy_code_filename and ftmpy_code_unit0 (the
 * bytecode is the code object's trailing co_code_adaptive array from 3.11
 * to 3.15; 3.14t's thread-local copies are refused by frames_py314.c); and
 * ftmpy_is_finalizing and (from 3.12, where _PyType_PreHeaderSize exists)
 * ftmpy_object_preheader, which differ only by the interpreter function's
 * name; from 3.12, ftmpy_code_watch (a code watcher; 3.11's is in
 * frames_py311.c).
 *
 * Threads: the caller's own chain only; see frames.h.
 */
#ifndef FTMPY_FRAMES_WALK_H
#define FTMPY_FRAMES_WALK_H

#include <limits.h>
#include <stddef.h>

static inline int fw_incomplete(_PyInterpreterFrame *f)
{
    return _PyFrame_IsIncomplete(f);
}

uint32_t ftmpy_walk(PyThreadState *ts, ftm_frame *frames, ftm_frame *cooked,
                    uint32_t scap, uint32_t limit, int trust, int *changed,
                    uint16_t *newcode, uint32_t *n_newcode)
{
    uint32_t n = 0; /* complete frames seen */
    uint32_t nn = 0;
    int ch = 0;
    _PyInterpreterFrame *f = ts != NULL ? fw_top(ts) : NULL;

    for (; f != NULL; f = f->previous) {
        if (fw_skip_owner(f)) {
            continue;
        }
        if (n >= scap) {
            if (fw_incomplete(f)) {
                continue;
            }
            if (++n >= FTM_MAX_NFRAME) {
                break; /* the count is capped, nothing more to store */
            }
            continue;
        }
        uint64_t a = fw_code(f);
        uint64_t b = fw_ip(f);
        if (trust && frames[n].a == a && frames[n].b == b) {
            n++; /* same record as last time: complete */
            continue;
        }
        if (fw_incomplete(f)) {
            continue;
        }
        if (n < limit) {
            if (frames[n].a != a) {
                if (newcode != NULL) {
                    newcode[nn++] = (uint16_t)n;
                }
                ch |= n == 0 ? 1 : 2;
            } else if (frames[n].b != b) {
                ch |= n == 0 ? 1 : 2;
            }
            if (cooked != NULL) {
                cooked[n].b = (b & ~(uint64_t)1) - a;
            }
        }
        frames[n].a = a;
        frames[n].b = b;
        n++;
    }
    if (ch) {
        *changed |= ch; /* 1: position 0, 2: deeper (frames.h) */
    }
    if (n_newcode != NULL) {
        *n_newcode = nn;
    }
    return n < FTM_MAX_NFRAME ? n : FTM_MAX_NFRAME;
}

void ftmpy_peek(PyThreadState *ts, ftm_frame *top)
{
    _PyInterpreterFrame *f = ts != NULL ? fw_top(ts) : NULL;
    for (; f != NULL; f = f->previous) {
        if (fw_skip_owner(f) || fw_incomplete(f)) {
            continue;
        }
        top->a = fw_code(f);
        top->b = fw_ip(f);
        return;
    }
    top->a = top->b = 0;
}

size_t ftmpy_code_unit0(void)
{
    return offsetof(PyCodeObject, co_code_adaptive);
}

/* The builtin's line: PyCode_Addr2Line(code, lasti * sizeof(code unit)),
 * lasti counted in code units from the start of the code object's own
 * bytecode (on every family from 3.11 to 3.15 without thread-local
 * bytecode copies, which only 3.14t has). */
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
    if (fn == NULL || !PyUnicode_Check(fn)) {
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (!PyUnicode_IS_READY(fn)) { /* legacy strings exist up to 3.11 */
        return NULL;
    }
#endif
    return fn;
}

PyThreadState *ftmpy_tstate_own(void)
{
    /* The thread's auto thread state (a TSS lookup): the calling thread's
     * own, whether or not it holds the GIL. */
    return PyGILState_GetThisThreadState();
}

int ftmpy_is_finalizing(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing(); /* public from 3.13 */
#else
    return _Py_IsFinalizing();
#endif
}

#if PY_VERSION_HEX >= 0x030C0000
/* 3.12+: a code watcher (public API).  Called by code_dealloc before the
 * object is torn down, on the deallocating thread. */
static void (*watch_cb)(void);

static int on_code_event(PyCodeEvent event, PyCodeObject *co)
{
    (void)co;
    if (event == PY_CODE_EVENT_DESTROY) {
        watch_cb();
    }
    return 0;
}

int ftmpy_code_watch(void (*on_death)(void))
{
    watch_cb = on_death;
    if (PyCode_AddWatcher(on_code_event) < 0) {
        PyErr_Clear(); /* every watcher slot is taken */
        return -1;
    }
    return 0;
}

size_t ftmpy_object_preheader(PyTypeObject *type)
{
    /* GC head and managed dict/weakref slots (3.11: frames_py311.c). */
    return _PyType_PreHeaderSize(type);
}
#endif

#endif /* FTMPY_FRAMES_WALK_H */
