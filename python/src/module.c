/*
 * module.c -- fasttracemalloc._fasttracemalloc: a drop-in for the builtin
 * _tracemalloc module on the fasttracemalloc engine.
 *
 * Owns the module object and the session state below.  Functions, their
 * signatures, return values, exceptions and messages are those of 3.11's
 * _tracemalloc: start(nframe=1, /), stop(), is_tracing(), clear_traces(),
 * get_traceback_limit(), get_traced_memory(), reset_peak(),
 * get_tracemalloc_memory(), _get_traces(), _get_object_traceback(obj);
 * plus _stats() (engine and module counters, for tests and diagnostics),
 * _suspend()/_resume() (the package's per-thread "do not trace" scope) and
 * _start_sampled()/_get_sampling() (sampled mode, sampled.h: the package's
 * start_sampled() validates the arguments; a sampled session is an
 * ordinary session whose traces carry scaled sizes).
 * start() (and _start_sampled()) also routes the C API
 * (PyTraceMalloc_Track/Untrack, _PyTraceMalloc_GetTraceback) to the
 * engine, and the module carries capi_rebind.c's private
 * _capi_hook_loader()/_capi_rebind().
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
 *
 * Free-threaded builds (Py_GIL_DISABLED; the module declares
 * Py_MOD_GIL_NOT_USED).  Every function below runs under `module_lock`, a
 * PyMutex made re-entrant for its holder (a thread-local depth): the
 * session state (`tracing`, `nframe`, `lost_warned`), the query caches
 * (resolve.c) and the lifecycle calls are then serialised exactly as the
 * GIL serialised them, and a function re-entered from a finalizer or
 * warning that runs inside one of them behaves as it does with a GIL.
 * PyMutex_Lock detaches a thread that has to wait, so a waiter never
 * blocks a garbage collection or another thread's stop-the-world.  The
 * allocation hooks never take this lock.  What is done outside it: the
 * lost-events warning (runs Python code), after the lock is released.
 *   stop/clear_traces close the code-set gate (codeset.h) around the
 *   engine's clear and the release of the code shapes, so no thread
 *   captures shapes across them; queries hold the lock while they resolve
 *   frames, so a shape is never dropped under a running query.
 *   The builtin's comparable races on 3.13t: CPython gh-126314/126315.
 */
#include <Python.h>

#include "capi_rebind.h"
#include "codeset.h"
#include "fasttracemalloc.h"
#include "filenames.h"
#include "frames.h"
#include "hooks.h"
#include "newref_patch.h"
#include "pickle_scan.h"
#include "resolve.h"
#include "sampled.h"
#include "shapes.h"
#include "threads.h"

#define MAX_NFRAME 65535

/* Session state: the GIL, or module_lock (free-threaded). */
static int tracing;
static int nframe = 1;
static int lost_warned; /* per session */
/* Exact sessions started from now on run the engine's merger thread (1,
 * the default) or none (0: an allocating thread whose ring is full merges,
 * as do exiting threads and queries; fasttracemalloc.h, no_merger_thread).
 * Sampled sessions never run one. Read and written under the module lock;
 * survives stop/start. */
static int merger_thread_wanted = 1;

#ifdef Py_GIL_DISABLED
static PyMutex module_lock;
static _Thread_local unsigned lock_depth; /* > 0: this thread holds it */

static void lock_module(void)
{
    if (lock_depth++ == 0) {
        PyMutex_Lock(&module_lock);
    }
}

static void unlock_module(void)
{
    if (--lock_depth == 0) {
        PyMutex_Unlock(&module_lock);
    }
}
#else
static inline void lock_module(void)
{
}
static inline void unlock_module(void)
{
}
#endif

/* What lost_events_warn() reports; filled under the lock. */
typedef struct lost_counts {
    int warn;
    ftm_stats st;
    ftmpy_hook_stats hs;
} lost_counts;

/* Lock held.  Decides whether this query must warn (once per session). */
static void lost_events_check(lost_counts *lc)
{
    lc->warn = 0;
    if (lost_warned) {
        return;
    }
    ftm_get_stats(&lc->st);
    ftmpy_hooks_stats(&lc->hs);
    unsigned long long lost = lc->st.events_lost + lc->st.traces_lost_oom +
                              lc->st.tracebacks_lost_oom + lc->hs.capture_oom +
                              lc->hs.filename_oom;
    if (lost == 0) {
        return;
    }
    lost_warned = 1;
    lc->warn = 1;
}

/* Lock released.  0, or -1 if the warning raised. */
static int lost_events_warn(const lost_counts *lc)
{
    if (!lc->warn) {
        return 0;
    }
    const ftm_stats *st = &lc->st;
    const ftmpy_hook_stats *hs = &lc->hs;
    if (PyErr_WarnFormat(
            PyExc_RuntimeWarning, 1,
            "fasttracemalloc lost information while tracing: "
            "%llu events lost, %llu traces and %llu tracebacks dropped "
            "(engine out of memory), %llu tracebacks and %llu filenames "
            "recorded as <unknown> (out of memory); results are incomplete",
            (unsigned long long)st->events_lost,
            (unsigned long long)st->traces_lost_oom,
            (unsigned long long)st->tracebacks_lost_oom,
            (unsigned long long)hs->capture_oom,
            (unsigned long long)hs->filename_oom) < 0) {
        return -1;
    }
    return 0;
}

/* Drop everything that refers to the finished generation.  The engine has
 * already dropped its tracebacks (ftm_stop/ftm_clear returned).  Lock held
 * and code-set gate closed; the caller drops the released references
 * (ftmpy_codeset_drop_released) once both are open. */
static void release_generation(void)
{
    ftmpy_resolve_clear();
    ftmpy_codeset_release();
}

/* An int argument converted as the builtin's "i" converter does (the same
 * TypeError for a non-integer, the same OverflowError outside C int), with
 * public API only: _PyLong_AsInt is gone from 3.13's headers. */
static int as_c_int(PyObject *arg, int *out)
{
    int overflow = 0;
    long v = PyLong_AsLongAndOverflow(arg, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow != 0 || v > INT_MAX || v < INT_MIN) {
        /* "too large" for either sign, as the builtin says */
        PyErr_SetString(PyExc_OverflowError,
                        "Python int too large to convert to C int");
        return -1;
    }
    *out = (int)v;
    return 0;
}

PyDoc_STRVAR(start_doc,
             "start($module, nframe=1, /)\n--\n\n"
             "Start tracing Python memory allocations, storing at most\n"
             "nframe frames per traceback.");

static PyObject *start_session(int n, uint64_t mean, const uint64_t *seed,
                               int record_all, int restamp);

static PyObject *m_start(PyObject *Py_UNUSED(mod), PyObject *const *args,
                         Py_ssize_t nargs)
{
    int n = 1;
    if (nargs > 1) {
        /* the builtin's Argument Clinic message, on every version */
        PyErr_Format(PyExc_TypeError,
                     "start expected at most 1 argument, got %zd", nargs);
        return NULL;
    }
    if (nargs >= 1 && as_c_int(args[0], &n) < 0) {
        return NULL;
    }
    if (n < 1 || n > MAX_NFRAME) {
        PyErr_Format(PyExc_ValueError,
                     "the number of frames must be in range [1; %lu]",
                     (unsigned long)MAX_NFRAME);
        return NULL;
    }
    return start_session(n, 0, NULL, 0, 0);
}

/* Start a session (exact if mean == 0, else sampled with period mean and
 * the optional seed).  n is valid.  Already tracing: no change. */
static PyObject *start_session(int n, uint64_t mean, const uint64_t *seed,
                               int record_all, int restamp)
{
    /* Route the C API (PyTraceMalloc_Track/Untrack) to the engine first:
     * if that is refused, its one warning may raise, and then nothing has
     * started.  Outside the lock: the warning runs Python code. */
    if (ftmpy_capi_rebind() < 0) {
        return NULL;
    }
    /* Exact sessions always re-stamp free-list objects; sampled ones only
     * when asked (sampled.h). */
    const int restamps = mean == 0 || restamp;
#if PY_VERSION_HEX < 0x030D0000
    /* Free-list re-stamping: the GOT route (capi_rebind.c), else the
     * static-executable patch (newref_patch.c), else counted.  Before the
     * session (what it imports is not traced): until the hooks trace, the
     * patch's functions answer as the builtin does while not tracing.
     * A sampled session that does not re-stamp needs neither: the patch
     * would set the builtin's flag, and every object creation would then
     * call into the patched function only to return (newref_patch.c). */
    if (restamps && !ftmpy_capi_newref_home() &&
        ftmpy_newref_patch_start() != 0) {
        ftmpy_capi_newref_refused();
    }
#endif
    lock_module();
    if (tracing) {
        unlock_module();
        Py_RETURN_NONE; /* like the builtin: already tracing, no change */
    }
    /* The GOT route likewise: the interpreter's own calls go straight to
     * the original _Py_NewReference in a session that re-stamps nothing
     * (the 3.11/3.12 equivalent of installing no PyRefTracer). */
    ftmpy_capi_newref_route(restamps);
    if (mean != 0 &&
        ftmpy_sampled_configure(mean, seed, record_all, restamp) < 0) {
        unlock_module();
        ftmpy_newref_patch_stop();
        return PyErr_NoMemory();
    }
    /* Sampled mode: one event per `mean` bytes allocated (and the frees of
     * those blocks) -- too few to keep a thread polling the rings: the
     * engine runs without its merger thread (fasttracemalloc.h:
     * no_merger_thread) and the process keeps exactly the threads it
     * had.  Exact mode runs one unless set_merger_thread(False) asked
     * otherwise (fasttracemalloc/_merger.py: the trade-off, measured). */
    ftm_config cfg = {.ring_capacity = 0,
                      .mem_backend = FTM_MEM_AUTO,
                      .no_merger_thread = mean != 0 || !merger_thread_wanted};
    /* Without a GIL a hook of the last session may still be capturing
     * with the old limit; if it took its engine number after ftm_start's,
     * its event would land in this session with the old limit's frames
     * (seen on 3.13t: an 18-frame traceback at nframe=1).  So the new
     * limit is published first, then the gate is closed around ftm_start:
     * a hook that enters after the close reads the new limit (it reads
     * `closed` = 1 after the limit's store), and one already inside
     * records before close() returns, hence before this session's number
     * (codeset.h).  GIL builds: the gate is always open, and the GIL
     * keeps hooks out of this function. */
    ftmpy_hooks_set_nframe((uint16_t)n);
    ftmpy_codeset_close();
    int rc = ftm_start(&cfg);
    ftmpy_codeset_open();
    if (rc != FTM_OK) {
        ftmpy_sampled_disable();
        unlock_module();
        ftmpy_newref_patch_stop();
        if (rc == FTM_ENOMEM) {
            return PyErr_NoMemory();
        }
        PyErr_Format(PyExc_RuntimeError,
                     "fasttracemalloc: the engine failed to start (%d)", rc);
        return NULL;
    }
    nframe = n;
    lost_warned = 0;
    ftmpy_hooks_install((uint16_t)n);
    tracing = 1;
    unlock_module();
    Py_RETURN_NONE;
}

PyDoc_STRVAR(start_sampled_doc,
             "_start_sampled($module, nframe, mean_bytes, seed,\n"
             "               record_all_frees=False, restamp=False, /)\n"
             "--\n\n"
             "Start tracing a Poisson sample of allocations, one sample per\n"
             "mean_bytes bytes allocated on average (seed: None or an int).\n"
             "The package's start_sampled() checks the arguments.\n"
             "record_all_frees: benchmark knob; restamp: re-stamp\n"
             "free-list objects on 3.13+ (sampled.h).");

static PyObject *m_start_sampled(PyObject *Py_UNUSED(mod),
                                 PyObject *const *args, Py_ssize_t nargs)
{
    int n;
    if (nargs < 3 || nargs > 5) {
        PyErr_Format(PyExc_TypeError,
                     "_start_sampled expected 3 to 5 arguments, got %zd",
                     nargs);
        return NULL;
    }
    int record_all = 0, restamp = 0;
    if (nargs >= 4 && (record_all = PyObject_IsTrue(args[3])) < 0) {
        return NULL;
    }
    if (nargs >= 5 && (restamp = PyObject_IsTrue(args[4])) < 0) {
        return NULL;
    }
    if (as_c_int(args[0], &n) < 0) {
        return NULL;
    }
    if (n < 1 || n > MAX_NFRAME) {
        PyErr_Format(PyExc_ValueError,
                     "the number of frames must be in range [1; %lu]",
                     (unsigned long)MAX_NFRAME);
        return NULL;
    }
    unsigned long long mean = PyLong_AsUnsignedLongLong(args[1]);
    if (mean == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    if (mean < 1 || mean > ((unsigned long long)1 << 40)) {
        PyErr_SetString(PyExc_ValueError,
                        "mean_bytes must be in range [1; 2**40]");
        return NULL;
    }
    uint64_t seed = 0;
    int has_seed = args[2] != Py_None;
    if (has_seed) {
        /* any int: its low 64 bits */
        seed = (uint64_t)PyLong_AsUnsignedLongLongMask(args[2]);
        if (seed == (uint64_t)-1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    return start_session(n, (uint64_t)mean, has_seed ? &seed : NULL,
                         record_all, restamp);
}

PyDoc_STRVAR(get_sampling_doc,
             "_get_sampling($module, /)\n--\n\n"
             "Return the mean bytes between samples of the running sampled\n"
             "session, or 0 (exact tracing, or not tracing).");

static PyObject *m_get_sampling(PyObject *Py_UNUSED(mod),
                                PyObject *Py_UNUSED(arg))
{
    lock_module();
    uint64_t mean = tracing ? atomic_load_explicit(&ftmpy_sample_mean,
                                                   memory_order_relaxed)
                            : 0;
    unlock_module();
    return PyLong_FromUnsignedLongLong(mean);
}

PyDoc_STRVAR(stop_doc, "stop($module, /)\n--\n\n"
                       "Stop tracing Python memory allocations and clear "
                       "the traces.");

PyDoc_STRVAR(inject_engine_oom_doc,
             "_inject_engine_oom($module, after_n, /)\n--\n\n"
             "Tests only: the (after_n+1)-th allocation the engine makes "
             "from now fails; -1 turns the injection off.");

static PyObject *m_inject_engine_oom(PyObject *Py_UNUSED(mod), PyObject *arg)
{
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    ftm_mem_inject_failure(n < 0 ? -1 : n);
    Py_RETURN_NONE;
}

static PyObject *m_stop(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(arg))
{
    /* Before the hooks stop: the patched builtin functions forward to
     * them while the patch is in effect (newref_patch.c). */
    ftmpy_newref_patch_stop();
    lock_module();
    if (tracing) {
        tracing = 0;
        ftmpy_hooks_uninstall();
        ftmpy_sampled_disable();
        ftm_stop();
        ftmpy_codeset_close();
        release_generation();
        ftmpy_codeset_open();
    }
    unlock_module();
    ftmpy_codeset_drop_released();
    Py_RETURN_NONE;
}

PyDoc_STRVAR(is_tracing_doc, "is_tracing($module, /)\n--\n\n"
                             "Return True if tracing Python memory "
                             "allocations.");

static PyObject *m_is_tracing(PyObject *Py_UNUSED(mod),
                              PyObject *Py_UNUSED(arg))
{
    lock_module();
    int t = tracing;
    unlock_module();
    return PyBool_FromLong(t);
}

PyDoc_STRVAR(clear_traces_doc, "clear_traces($module, /)\n--\n\n"
                               "Clear traces of memory blocks allocated by "
                               "Python.");

static PyObject *m_clear_traces(PyObject *Py_UNUSED(mod),
                                PyObject *Py_UNUSED(arg))
{
    lock_module();
    if (tracing) {
        ftmpy_codeset_close();
        ftm_clear();
        release_generation();
        ftmpy_codeset_open();
    }
    unlock_module();
    ftmpy_codeset_drop_released();
    Py_RETURN_NONE;
}

PyDoc_STRVAR(get_traceback_limit_doc,
             "get_traceback_limit($module, /)\n--\n\n"
             "Return the maximum number of frames stored in a traceback.");

static PyObject *m_get_traceback_limit(PyObject *Py_UNUSED(mod),
                                       PyObject *Py_UNUSED(arg))
{
    lock_module();
    int n = nframe;
    unlock_module();
    return PyLong_FromLong(n);
}

PyDoc_STRVAR(get_traced_memory_doc,
             "get_traced_memory($module, /)\n--\n\n"
             "Return (current, peak) sizes of traced memory blocks.");

static PyObject *m_get_traced_memory(PyObject *Py_UNUSED(mod),
                                     PyObject *Py_UNUSED(arg))
{
    size_t cur = 0, peak = 0;
    lost_counts lc = {0};
    lock_module();
    if (tracing) {
        ftm_get_traced_memory(&cur, &peak);
        lost_events_check(&lc);
    }
    unlock_module();
    if (lost_events_warn(&lc) < 0) {
        return NULL;
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
    lock_module();
    if (tracing) {
        ftm_reset_peak();
    }
    unlock_module();
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
    ftm_stats st;
    lock_module();
    ftmpy_hooks_stats(&hs);
    ftmpy_sampled_stats ss;
    ftmpy_sampled_stats_get(&ss);
    size_t engine = ftm_engine_memory();
    ftm_get_stats(&st);
    /* Ring slots that no event ever used are allocated but never written
     * (not resident): left out, like the builtin counts only what its
     * tables hold. */
    if (st.rings_untouched_bytes < engine) {
        engine -= (size_t)st.rings_untouched_bytes;
    }
    size_t total = engine + ftmpy_codeset_bytes() + ftmpy_filenames_bytes() +
                   ftmpy_resolve_bytes() + hs.tls_bytes + ss.bytes;
    unlock_module();
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
    lock_module();
    if (!tracing) {
        unlock_module();
        return PyList_New(0);
    }
    ftm_snapshot snap;
    int rc = ftm_take_snapshot(&snap);
    if (rc != FTM_OK) {
        /* The session goes on unchanged (the builtin's failed query
         * leaves tracing as it was). */
        unlock_module();
        if (rc == FTM_ENOMEM) {
            return PyErr_NoMemory();
        }
        PyErr_Format(PyExc_RuntimeError,
                     "fasttracemalloc: snapshot failed (%d)", rc);
        return NULL;
    }
    ftmpy_suppress_begin();
    PyObject *list = ftmpy_traces_list(&snap);
    ftmpy_suppress_end();
    ftm_snapshot_release(&snap);
    lost_counts lc = {0};
    if (list != NULL) {
        lost_events_check(&lc);
    }
    unlock_module();
    if (lost_events_warn(&lc) < 0) {
        Py_CLEAR(list);
    }
    return list;
}

PyDoc_STRVAR(get_object_traceback_doc,
             "_get_object_traceback($module, obj, /)\n--\n\n"
             "Return the traceback where obj was allocated as a tuple of "
             "(filename, lineno) tuples, most recent first, or None.");

/* Lock held, tracing.  The traceback tuple of (domain, ptr), None if it
 * is not traced (new references), or NULL with an exception set. */
static PyObject *trace_traceback(unsigned int domain, uintptr_t ptr)
{
    ftm_trace tr;
    PyObject *tb = Py_None;
    if (ftm_get_trace(domain, ptr, &tr)) {
        ftmpy_suppress_begin();
        tb = ftmpy_tb_tuple(tr.tb, NULL);
        ftmpy_suppress_end();
        if (tb == NULL) {
            return NULL;
        }
    }
    Py_INCREF(tb); /* under the lock: the cache may be cleared after it */
    return tb;
}

static PyObject *m_get_object_traceback(PyObject *Py_UNUSED(mod),
                                        PyObject *obj)
{
    lock_module();
    if (!tracing) {
        unlock_module();
        Py_RETURN_NONE;
    }
    PyTypeObject *type = Py_TYPE(obj);
    uintptr_t ptr = (uintptr_t)obj - ftmpy_object_preheader(type);
    lost_counts lc = {0};
    PyObject *tb = trace_traceback(0, ptr);
    if (tb == NULL) {
        unlock_module();
        return NULL;
    }
    lost_events_check(&lc);
    unlock_module();
    if (lost_events_warn(&lc) < 0) {
        Py_DECREF(tb);
        return NULL;
    }
    return tb;
}

/* ---- per-thread attribution (threads.h) ---------------------------------
 * The stdlib functions above never look at thread tags: two ids that
 * differ only by their tag resolve to one traceback tuple (resolve.h), so
 * their answers are those of an untagged session.  These private functions
 * give the package the tags; the public API is in the package
 * (fasttracemalloc/_threads.py). */

PyDoc_STRVAR(set_thread_attribution_doc,
             "_set_thread_attribution($module, on, /)\n--\n\n"
             "Turn per-thread attribution of new allocations on or off.");

static PyObject *m_set_thread_attribution(PyObject *Py_UNUSED(mod),
                                          PyObject *arg)
{
    int on = PyObject_IsTrue(arg);
    if (on < 0) {
        return NULL;
    }
    lock_module();
    int rc = ftmpy_threads_enable(on);
    unlock_module();
    if (rc < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(get_thread_attribution_doc,
             "_get_thread_attribution($module, /)\n--\n\n"
             "True while new allocations are attributed to their thread.");

static PyObject *m_get_thread_attribution(PyObject *Py_UNUSED(mod),
                                          PyObject *Py_UNUSED(arg))
{
    return PyBool_FromLong(
        atomic_load_explicit(&ftmpy_threads_on, memory_order_relaxed));
}

PyDoc_STRVAR(set_merger_thread_doc,
             "_set_merger_thread($module, on, /)\n--\n\n"
             "Whether exact sessions started from now on run a merger "
             "thread.");

static PyObject *m_set_merger_thread(PyObject *Py_UNUSED(mod), PyObject *arg)
{
    int on = PyObject_IsTrue(arg);
    if (on < 0) {
        return NULL;
    }
    lock_module();
    merger_thread_wanted = on;
    unlock_module();
    Py_RETURN_NONE;
}

PyDoc_STRVAR(get_merger_thread_doc,
             "_get_merger_thread($module, /)\n--\n\n"
             "True if exact sessions started from now on run a merger "
             "thread.");

static PyObject *m_get_merger_thread(PyObject *Py_UNUSED(mod),
                                     PyObject *Py_UNUSED(arg))
{
    lock_module();
    int on = merger_thread_wanted;
    unlock_module();
    return PyBool_FromLong(on);
}

PyDoc_STRVAR(thread_table_doc,
             "_thread_table($module, /)\n--\n\n"
             "List of (tag, ident, native_id) of every thread given a tag.");

static PyObject *m_thread_table(PyObject *Py_UNUSED(mod),
                                PyObject *Py_UNUSED(arg))
{
    return ftmpy_threads_table();
}

PyDoc_STRVAR(current_thread_tag_doc,
             "_current_thread_tag($module, /)\n--\n\n"
             "The calling thread's tag (0 if it has none yet).");

static PyObject *m_current_thread_tag(PyObject *Py_UNUSED(mod),
                                      PyObject *Py_UNUSED(arg))
{
    return PyLong_FromUnsignedLong(ftmpy_hooks_thread_tag());
}

/* Lock held, tracing: the engine's exact snapshot, or -1 with an
 * exception. */
static int take_engine_snapshot(ftm_snapshot *snap)
{
    int rc = ftm_take_snapshot(snap);
    if (rc == FTM_OK) {
        return 0;
    }
    if (rc == FTM_ENOMEM) {
        PyErr_NoMemory();
    } else {
        PyErr_Format(PyExc_RuntimeError,
                     "fasttracemalloc: snapshot failed (%d)", rc);
    }
    return -1;
}

PyDoc_STRVAR(thread_totals_doc,
             "_thread_totals($module, /)\n--\n\n"
             "Dict tag -> [size, count] of the traced blocks live now (exact, "
             "like get_traced_memory()); tag 0 = allocated without "
             "attribution.");

static PyObject *m_thread_totals(PyObject *Py_UNUSED(mod),
                                 PyObject *Py_UNUSED(arg))
{
    lock_module();
    if (!tracing) {
        unlock_module();
        return PyDict_New();
    }
    ftm_snapshot snap;
    if (take_engine_snapshot(&snap) < 0) {
        unlock_module();
        return NULL;
    }
    ftmpy_suppress_begin();
    PyObject *out = ftmpy_threads_totals(&snap);
    ftmpy_suppress_end();
    ftm_snapshot_release(&snap);
    unlock_module();
    return out;
}

PyDoc_STRVAR(get_thread_traces_doc,
             "_get_thread_traces($module, /)\n--\n\n"
             "(traces, tags): _get_traces()'s list and, from the same "
             "instant, a list of thread tags, one per trace.");

static PyObject *m_get_thread_traces(PyObject *Py_UNUSED(mod),
                                     PyObject *Py_UNUSED(arg))
{
    lock_module();
    if (!tracing) {
        unlock_module();
        return Py_BuildValue("([][])");
    }
    ftm_snapshot snap;
    if (take_engine_snapshot(&snap) < 0) {
        unlock_module();
        return NULL;
    }
    ftmpy_suppress_begin();
    PyObject *out = NULL;
    PyObject *list = ftmpy_traces_list(&snap);
    PyObject *tags = list != NULL ? ftmpy_threads_tags(&snap) : NULL;
    if (tags != NULL) {
        out = PyTuple_Pack(2, list, tags);
    }
    Py_XDECREF(list);
    Py_XDECREF(tags);
    ftmpy_suppress_end();
    ftm_snapshot_release(&snap);
    unlock_module();
    return out;
}

/* capi_rebind.h: _PyTraceMalloc_GetTraceback on the engine. */
int ftmpy_module_traceback(unsigned int domain, uintptr_t ptr, PyObject **out)
{
    lock_module();
    if (!tracing) {
        unlock_module();
        return 0;
    }
    *out = trace_traceback(domain, ptr);
    unlock_module();
    return 1;
}

/* _suspend()/_resume(): the package's private "do not trace" scope for
 * the calling thread (hooks.h: ftmpy_suppress_push/pop).  The package wraps
 * its own work in it -- lazy imports of tracemalloc/pickle/..., install(),
 * the start-up switch's import hooks -- so that work is not traced, as a
 * builtin user's equivalent imports (made before tracing started) are not.
 * Nests; other threads keep being traced; frees are still recorded.  No
 * module lock: the state is the calling thread's own. */
PyDoc_STRVAR(suspend_doc,
             "_suspend($module, /)\n--\n\n"
             "Stop tracing the calling thread's allocations until the "
             "matching _resume() (private; nests).");

static PyObject *m_suspend(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(arg))
{
    if (ftmpy_suppress_push() < 0) {
        return PyErr_NoMemory();
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(resume_doc,
             "_resume($module, /)\n--\n\n"
             "End the calling thread's innermost _suspend() (private).");

static PyObject *m_resume(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(arg))
{
    if (ftmpy_suppress_pop() < 0) {
        PyErr_SetString(PyExc_RuntimeError,
                        "_resume() called without a matching _suspend() "
                        "in this thread");
        return NULL;
    }
    Py_RETURN_NONE;
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
    lock_module();
    ftm_get_stats(&st);
    ftmpy_hooks_stats(&hs);
    ftmpy_sampled_stats ss;
    ftmpy_sampled_stats_get(&ss);
    unsigned long long code_refs = ftmpy_codeset_count();
    unsigned long long code_epoch = ftmpy_code_epoch;
    unsigned long long code_shapes = ftmpy_shapes_count();
    unlock_module();
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
        put_u64(d, "merger_thread", st.merger_thread) < 0 ||
        put_u64(d, "rings_untouched_bytes", st.rings_untouched_bytes) < 0 ||
        put_u64(d, "threads_registered", st.threads_registered) < 0 ||
        put_u64(d, "rings_reclaimed", st.rings_reclaimed) < 0 ||
        put_u64(d, "live_traces", st.live_traces) < 0 ||
        put_u64(d, "tracebacks", st.tracebacks) < 0 ||
        put_u64(d, "engine_bytes", st.engine_bytes) < 0 ||
        put_u64(d, "capture_oom", hs.capture_oom) < 0 ||
        put_u64(d, "coderef_oom", hs.coderef_oom) < 0 ||
        put_u64(d, "filename_oom", hs.filename_oom) < 0 ||
        put_u64(d, "nogil_captures", hs.nogil_captures) < 0 ||
        put_u64(d, "lifecycle_skipped", hs.lifecycle_skipped) < 0 ||
        put_u64(d, "tls_bytes", hs.tls_bytes) < 0 ||
        put_u64(d, "code_refs", code_refs) < 0 ||
        put_u64(d, "code_epoch", code_epoch) < 0 ||
        put_u64(d, "code_shapes", code_shapes) < 0 ||
        put_u64(d, "code_deaths_watched",
                (unsigned long long)ftmpy_codeset_watching()) < 0 ||
        put_u64(d, "filenames", ftmpy_filenames_count()) < 0 ||
        put_u64(d, "sampled_allocs", ss.sampled) < 0 ||
        put_u64(d, "sampled_overflow", ss.overflow) < 0 ||
        put_u64(d, "sampled_add_oom", ss.add_oom) < 0 ||
        put_u64(d, "sampled_set_bytes", ss.bytes) < 0 ||
        ftmpy_capi_stats_into(d) < 0 || ftmpy_newref_patch_stats_into(d) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

PyDoc_STRVAR(
    linetable_line_doc,
    "_linetable_line($module, linetable, firstlineno, addr, /)\n--\n\n"
    "The line the extension's location-table decoder (shapes.c) "
    "gives byte address addr; for tests against co_lines().");

static PyObject *m_linetable_line(PyObject *Py_UNUSED(mod), PyObject *args)
{
    Py_buffer lt;
    int firstlineno;
    long long addr;
    if (!PyArg_ParseTuple(args, "y*iL:_linetable_line", &lt, &firstlineno,
                          &addr)) {
        return NULL;
    }
    int line = ftmpy_linetable_line((const uint8_t *)lt.buf, (size_t)lt.len,
                                    firstlineno, (int64_t)addr);
    PyBuffer_Release(&lt);
    return PyLong_FromLong(line);
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
    {"_start_sampled", (PyCFunction)(void (*)(void))m_start_sampled,
     METH_FASTCALL, start_sampled_doc},
    {"_get_sampling", m_get_sampling, METH_NOARGS, get_sampling_doc},
    {"_inject_engine_oom", m_inject_engine_oom, METH_O, inject_engine_oom_doc},
    {"_suspend", m_suspend, METH_NOARGS, suspend_doc},
    {"_resume", m_resume, METH_NOARGS, resume_doc},
    {"_linetable_line", m_linetable_line, METH_VARARGS, linetable_line_doc},
    {"_pickle_scan", ftmpy_pickle_scan, METH_O,
     PyDoc_STR("_pickle_scan($module, data, /)\n--\n\nRaise ValueError "
               "unless data is a pickle made only of the opcodes a "
               "snapshot file needs (pickle_scan.h).")},
    {"_set_thread_attribution", m_set_thread_attribution, METH_O,
     set_thread_attribution_doc},
    {"_get_thread_attribution", m_get_thread_attribution, METH_NOARGS,
     get_thread_attribution_doc},
    {"_set_merger_thread", m_set_merger_thread, METH_O, set_merger_thread_doc},
    {"_get_merger_thread", m_get_merger_thread, METH_NOARGS,
     get_merger_thread_doc},
    {"_thread_table", m_thread_table, METH_NOARGS, thread_table_doc},
    {"_current_thread_tag", m_current_thread_tag, METH_NOARGS,
     current_thread_tag_doc},
    {"_thread_totals", m_thread_totals, METH_NOARGS, thread_totals_doc},
    {"_get_thread_traces", m_get_thread_traces, METH_NOARGS,
     get_thread_traces_doc},
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
    if (ftmpy_hooks_init() < 0 || ftmpy_filenames_init() < 0 ||
        ftmpy_codeset_init() < 0) {
        return NULL;
    }
    ftmpy_capi_init();
    ftmpy_newref_patch_init();
    PyObject *m = PyModule_Create(&moduledef);
    if (m != NULL && ftmpy_capi_add_functions(m) < 0) {
        Py_CLEAR(m);
    }
#ifdef Py_GIL_DISABLED
    /* Single-phase init: this is the Py_mod_gil slot's equivalent. */
    if (m != NULL && PyUnstable_Module_SetGIL(m, Py_MOD_GIL_NOT_USED) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#endif
    return m;
}
