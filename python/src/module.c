/*
 * module.c -- fasttracemalloc._fasttracemalloc: a drop-in for the builtin
 * _tracemalloc module on the fasttracemalloc engine.
 *
 * Owns the module object and the session state below.  Functions, their
 * signatures, return values, exceptions and messages are those of 3.11's
 * _tracemalloc: start(nframe=1, /), stop(), is_tracing(), clear_traces(),
 * get_traceback_limit(), get_traced_memory(), reset_peak(),
 * get_tracemalloc_memory(), _get_traces(), _get_object_traceback(obj);
 * plus _stats() (engine and module counters, for tests and diagnostics).
 *
 * Differences from the builtin, on purpose:
 *   - _get_object_traceback() also subtracts the managed-dict pre-header
 *     (Py_TPFLAGS_MANAGED_DICT, two pointers on 3.11), so instances of
 *     ordinary classes are found (the builtin returns None for them).
 *   - Answers are built while the thread's tracing is suppressed and come
 *     from caches (resolve.h), so the tuples _get_object_traceback()
 *     returns are not themselves traced (the builtin traces those; it
 *     suppresses only inside _get_traces()).
 *   - Error messages that CPython prefixes with the function's qualified
 *     name say "fasttracemalloc._fasttracemalloc.start()" where the
 *     builtin's say "_tracemalloc.start()" (the functions' __module__ is
 *     not faked).
 *   - If the engine or this module ever lost anything (engine OOM, a full
 *     ring that could not be drained, a capture buffer or filename that
 *     could not be allocated), the next query emits ONE RuntimeWarning per
 *     session saying so, with the counts (see lost_events_check()).
 *
 * One engine per process: the state is static, the module uses
 * single-phase initialisation and cannot be loaded in sub-interpreters.
 *
 * Threads: every function runs with the GIL held.  `tracing` and `nframe`
 * are only written here, under the GIL; the hooks keep their own atomic
 * copies (hooks.h).
 */
#include <Python.h>

#include "codeset.h"
#include "fasttracemalloc.h"
#include "filenames.h"
#include "frames.h"
#include "hooks.h"
#include "resolve.h"

#define MAX_NFRAME 65535

static int tracing;
static int nframe = 1;
static int lost_warned; /* per session */

static PyObject *lost_events_check(void)
{
    /* Returns Py_None (borrowed) or NULL if the warning raised. */
    if (lost_warned) {
        return Py_None;
    }
    ftm_stats st;
    ftmpy_hook_stats hs;
    ftm_get_stats(&st);
    ftmpy_hooks_stats(&hs);
    unsigned long long lost = st.events_lost + st.traces_lost_oom +
                              st.tracebacks_lost_oom + hs.capture_oom +
                              hs.filename_oom;
    if (lost == 0) {
        return Py_None;
    }
    lost_warned = 1;
    if (PyErr_WarnFormat(
            PyExc_RuntimeWarning, 1,
            "fasttracemalloc lost information while tracing: "
            "%llu events lost, %llu traces and %llu tracebacks dropped "
            "(engine out of memory), %llu tracebacks and %llu filenames "
            "recorded as <unknown> (out of memory); results are incomplete",
            (unsigned long long)st.events_lost,
            (unsigned long long)st.traces_lost_oom,
            (unsigned long long)st.tracebacks_lost_oom,
            (unsigned long long)hs.capture_oom,
            (unsigned long long)hs.filename_oom) < 0) {
        return NULL;
    }
    return Py_None;
}

/* Drop everything that refers to the finished generation.  The engine has
 * already dropped its tracebacks (ftm_stop/ftm_clear returned). */
static void release_generation(void)
{
    ftmpy_resolve_clear();
    ftmpy_codeset_release();
}

PyDoc_STRVAR(start_doc,
             "start($module, nframe=1, /)\n--\n\n"
             "Start tracing Python memory allocations, storing at most\n"
             "nframe frames per traceback.");

static PyObject *m_start(PyObject *Py_UNUSED(mod), PyObject *const *args,
                         Py_ssize_t nargs)
{
    int n = 1;
    if (!_PyArg_CheckPositional("start", nargs, 0, 1)) {
        return NULL;
    }
    if (nargs >= 1) {
        n = _PyLong_AsInt(args[0]);
        if (n == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    if (n < 1 || n > MAX_NFRAME) {
        PyErr_Format(PyExc_ValueError,
                     "the number of frames must be in range [1; %lu]",
                     (unsigned long)MAX_NFRAME);
        return NULL;
    }
    if (tracing) {
        Py_RETURN_NONE; /* like the builtin: already tracing, no change */
    }
    ftm_config cfg = {0, FTM_MEM_AUTO};
    int rc = ftm_start(&cfg);
    if (rc == FTM_ENOMEM) {
        return PyErr_NoMemory();
    }
    if (rc != FTM_OK) {
        PyErr_Format(PyExc_RuntimeError,
                     "fasttracemalloc: the engine failed to start (%d)", rc);
        return NULL;
    }
    nframe = n;
    lost_warned = 0;
    ftmpy_hooks_install((uint16_t)n);
    tracing = 1;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(stop_doc, "stop($module, /)\n--\n\n"
                       "Stop tracing Python memory allocations and clear "
                       "the traces.");

static PyObject *m_stop(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(arg))
{
    if (tracing) {
        tracing = 0;
        ftmpy_hooks_uninstall();
        ftm_stop();
        release_generation();
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(is_tracing_doc, "is_tracing($module, /)\n--\n\n"
                             "Return True if tracing Python memory "
                             "allocations.");

static PyObject *m_is_tracing(PyObject *Py_UNUSED(mod),
                              PyObject *Py_UNUSED(arg))
{
    return PyBool_FromLong(tracing);
}

PyDoc_STRVAR(clear_traces_doc, "clear_traces($module, /)\n--\n\n"
                               "Clear traces of memory blocks allocated by "
                               "Python.");

static PyObject *m_clear_traces(PyObject *Py_UNUSED(mod),
                                PyObject *Py_UNUSED(arg))
{
    if (tracing) {
        ftm_clear();
        release_generation();
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(get_traceback_limit_doc,
             "get_traceback_limit($module, /)\n--\n\n"
             "Return the maximum number of frames stored in a traceback.");

static PyObject *m_get_traceback_limit(PyObject *Py_UNUSED(mod),
                                       PyObject *Py_UNUSED(arg))
{
    return PyLong_FromLong(nframe);
}

PyDoc_STRVAR(get_traced_memory_doc,
             "get_traced_memory($module, /)\n--\n\n"
             "Return (current, peak) sizes of traced memory blocks.");

static PyObject *m_get_traced_memory(PyObject *Py_UNUSED(mod),
                                     PyObject *Py_UNUSED(arg))
{
    size_t cur = 0, peak = 0;
    if (tracing) {
        ftm_get_traced_memory(&cur, &peak);
        if (lost_events_check() == NULL) {
            return NULL;
        }
    }
    PyObject *a = PyLong_FromSize_t(cur);
    PyObject *b = a ? PyLong_FromSize_t(peak) : NULL;
    if (b == NULL) {
        Py_XDECREF(a);
        return NULL;
    }
    PyObject *t = PyTuple_Pack(2, a, b);
    Py_DECREF(a);
    Py_DECREF(b);
    return t;
}

PyDoc_STRVAR(reset_peak_doc, "reset_peak($module, /)\n--\n\n"
                             "Set the peak size of traced memory blocks to "
                             "the current size.");

static PyObject *m_reset_peak(PyObject *Py_UNUSED(mod),
                              PyObject *Py_UNUSED(arg))
{
    if (tracing) {
        ftm_reset_peak();
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(get_tracemalloc_memory_doc,
             "get_tracemalloc_memory($module, /)\n--\n\n"
             "Return the memory in bytes used by the tracer to store "
             "traces.");

static PyObject *m_get_tracemalloc_memory(PyObject *Py_UNUSED(mod),
                                          PyObject *Py_UNUSED(arg))
{
    ftmpy_hook_stats hs;
    ftmpy_hooks_stats(&hs);
    size_t total = ftm_engine_memory() + ftmpy_codeset_bytes() +
                   ftmpy_filenames_bytes() + ftmpy_resolve_bytes() +
                   hs.tls_bytes;
    return PyLong_FromSize_t(total);
}

PyDoc_STRVAR(get_traces_doc,
             "_get_traces($module, /)\n--\n\n"
             "Return a list of (domain, size, traceback, total_nframe) for "
             "every traced memory block; traceback is a tuple of "
             "(filename, lineno), most recent frame first.");

static PyObject *m_get_traces(PyObject *Py_UNUSED(mod),
                              PyObject *Py_UNUSED(arg))
{
    if (!tracing) {
        return PyList_New(0);
    }
    ftm_snapshot snap;
    int rc = ftm_take_snapshot(&snap);
    if (rc == FTM_ENOMEM) {
        return PyErr_NoMemory();
    }
    if (rc != FTM_OK) {
        PyErr_Format(PyExc_RuntimeError,
                     "fasttracemalloc: snapshot failed (%d)", rc);
        return NULL;
    }
    ftmpy_suppress_begin();
    PyObject *list = ftmpy_traces_list(&snap);
    ftmpy_suppress_end();
    ftm_snapshot_release(&snap);
    if (list != NULL && lost_events_check() == NULL) {
        Py_CLEAR(list);
    }
    return list;
}

PyDoc_STRVAR(get_object_traceback_doc,
             "_get_object_traceback($module, obj, /)\n--\n\n"
             "Return the traceback where obj was allocated as a tuple of "
             "(filename, lineno) tuples, most recent first, or None.");

static PyObject *m_get_object_traceback(PyObject *Py_UNUSED(mod),
                                        PyObject *obj)
{
    if (!tracing) {
        Py_RETURN_NONE;
    }
    PyTypeObject *type = Py_TYPE(obj);
    uintptr_t ptr = (uintptr_t)obj - ftmpy_object_preheader(type);
    ftm_trace tr;
    if (!ftm_get_trace(0, ptr, &tr)) {
        if (lost_events_check() == NULL) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    ftmpy_suppress_begin();
    PyObject *tb = ftmpy_tb_tuple(tr.tb, NULL);
    ftmpy_suppress_end();
    if (tb == NULL) {
        return NULL;
    }
    Py_INCREF(tb);
    if (lost_events_check() == NULL) {
        Py_DECREF(tb);
        return NULL;
    }
    return tb;
}

static int put_u64(PyObject *d, const char *key, unsigned long long v)
{
    PyObject *o = PyLong_FromUnsignedLongLong(v);
    if (o == NULL) {
        return -1;
    }
    int rc = PyDict_SetItemString(d, key, o);
    Py_DECREF(o);
    return rc;
}

PyDoc_STRVAR(stats_doc, "_stats($module, /)\n--\n\n"
                        "Engine and module counters (a dict).");

static PyObject *m_stats(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(arg))
{
    ftm_stats st;
    ftmpy_hook_stats hs;
    ftm_get_stats(&st);
    ftmpy_hooks_stats(&hs);
    const char *backend = st.backend_in_use == FTM_MEM_JEMALLOC   ? "jemalloc"
                          : st.backend_in_use == FTM_MEM_PORTABLE ? "portable"
                                                                  : "auto";
    PyObject *d = PyDict_New();
    if (d == NULL) {
        return NULL;
    }
    PyObject *b = PyUnicode_FromString(backend);
    if (b == NULL || PyDict_SetItemString(d, "backend", b) < 0) {
        Py_XDECREF(b);
        Py_DECREF(d);
        return NULL;
    }
    Py_DECREF(b);
    if (put_u64(d, "events_recorded", st.events_recorded) < 0 ||
        put_u64(d, "events_applied", st.events_applied) < 0 ||
        put_u64(d, "events_lost", st.events_lost) < 0 ||
        put_u64(d, "traces_lost_oom", st.traces_lost_oom) < 0 ||
        put_u64(d, "tracebacks_lost_oom", st.tracebacks_lost_oom) < 0 ||
        put_u64(d, "ring_full_waits", st.ring_full_waits) < 0 ||
        put_u64(d, "producer_drains", st.producer_drains) < 0 ||
        put_u64(d, "threads_registered", st.threads_registered) < 0 ||
        put_u64(d, "rings_reclaimed", st.rings_reclaimed) < 0 ||
        put_u64(d, "live_traces", st.live_traces) < 0 ||
        put_u64(d, "tracebacks", st.tracebacks) < 0 ||
        put_u64(d, "engine_bytes", st.engine_bytes) < 0 ||
        put_u64(d, "capture_oom", hs.capture_oom) < 0 ||
        put_u64(d, "coderef_oom", hs.coderef_oom) < 0 ||
        put_u64(d, "filename_oom", hs.filename_oom) < 0 ||
        put_u64(d, "nogil_captures", hs.nogil_captures) < 0 ||
        put_u64(d, "tls_bytes", hs.tls_bytes) < 0 ||
        put_u64(d, "code_refs", ftmpy_codeset_count()) < 0 ||
        put_u64(d, "code_epoch", ftmpy_code_epoch) < 0 ||
        put_u64(d, "filenames", ftmpy_filenames_count()) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

static PyMethodDef methods[] = {
    {"start", (PyCFunction)(void (*)(void))m_start, METH_FASTCALL, start_doc},
    {"stop", m_stop, METH_NOARGS, stop_doc},
    {"is_tracing", m_is_tracing, METH_NOARGS, is_tracing_doc},
    {"clear_traces", m_clear_traces, METH_NOARGS, clear_traces_doc},
    {"get_traceback_limit", m_get_traceback_limit, METH_NOARGS,
     get_traceback_limit_doc},
    {"get_traced_memory", m_get_traced_memory, METH_NOARGS,
     get_traced_memory_doc},
    {"reset_peak", m_reset_peak, METH_NOARGS, reset_peak_doc},
    {"get_tracemalloc_memory", m_get_tracemalloc_memory, METH_NOARGS,
     get_tracemalloc_memory_doc},
    {"_get_traces", m_get_traces, METH_NOARGS, get_traces_doc},
    {"_get_object_traceback", m_get_object_traceback, METH_O,
     get_object_traceback_doc},
    {"_stats", m_stats, METH_NOARGS, stats_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(module_doc,
             "Drop-in replacement for the builtin _tracemalloc module, "
             "on the fasttracemalloc engine.");

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, .m_name = "fasttracemalloc._fasttracemalloc",
    .m_doc = module_doc,   .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__fasttracemalloc(void)
{
    if (ftmpy_hooks_init() < 0 || ftmpy_filenames_init() < 0) {
        return NULL;
    }
    return PyModule_Create(&moduledef);
}
