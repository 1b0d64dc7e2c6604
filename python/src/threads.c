/*
 * threads.c -- see threads.h.
 *
 * The table is one calloc'ed array of FTMPY_THREADS_MAX entries (24 bytes
 * each, 1.5 MiB of address space; only the pages of tags actually given
 * become resident).  Giving a tag is a fetch-add on `next`; the new
 * owner then writes its entry and publishes it.  The query helpers at the
 * end read each trace's tag from the engine through a small per-query
 * cache (id -> tag).
 *
 * Memory ordering (shared fields)
 *   table        set once (release store, under the GIL/module lock,
 *                before the switch is turned on); assigners and the
 *                table reader load it with acquire (NULL: no tag).
 *   next         relaxed fetch-add: only uniqueness matters.
 *   entry.ready  the owner stores ident/native (plain), then ready = 1
 *                with release; the table reader loads ready with acquire
 *                and skips an entry not yet ready (its thread is still
 *                inside its first capture: it has no trace yet).
 */
#include "threads.h"

#include <stdlib.h>

#include "pythread.h"

typedef struct tag_entry {
    uint64_t ident;
    uint64_t native_id;
    atomic_uint ready;
} tag_entry;

atomic_int ftmpy_threads_on;
static _Atomic(tag_entry *) table;
static atomic_uint_fast32_t next = 1;

int ftmpy_threads_enable(int on)
{
    if (on && atomic_load_explicit(&table, memory_order_acquire) == NULL) {
        tag_entry *t = calloc(FTMPY_THREADS_MAX + 1, sizeof(*t));
        if (t == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        atomic_store_explicit(&table, t, memory_order_release);
    }
    atomic_store_explicit(&ftmpy_threads_on, on ? 1 : 0, memory_order_release);
    return 0;
}

uint32_t ftmpy_threads_assign(void)
{
    tag_entry *t = atomic_load_explicit(&table, memory_order_acquire);
    if (t == NULL) {
        return 0;
    }
    uint_fast32_t tag =
        atomic_fetch_add_explicit(&next, 1, memory_order_relaxed);
    if (tag > FTMPY_THREADS_MAX) {
        atomic_store_explicit(&next, FTMPY_THREADS_MAX + 1,
                              memory_order_relaxed); /* no wrap-around */
        return FTMPY_THREAD_OTHER;
    }
    tag_entry *e = &t[tag];
    e->ident = (uint64_t)PyThread_get_thread_ident();
    e->native_id = (uint64_t)PyThread_get_thread_native_id();
    atomic_store_explicit(&e->ready, 1, memory_order_release);
    return (uint32_t)tag;
}

PyObject *ftmpy_threads_table(void)
{
    PyObject *list = PyList_New(0);
    tag_entry *t = atomic_load_explicit(&table, memory_order_acquire);
    if (list == NULL || t == NULL) {
        return list;
    }
    uint_fast32_t end = atomic_load_explicit(&next, memory_order_relaxed);
    if (end > FTMPY_THREADS_MAX + 1) {
        end = FTMPY_THREADS_MAX + 1;
    }
    for (uint_fast32_t tag = 1; tag < end; tag++) {
        tag_entry *e = &t[tag];
        if (!atomic_load_explicit(&e->ready, memory_order_acquire)) {
            continue;
        }
        PyObject *row = Py_BuildValue("(kKK)", (unsigned long)tag,
                                      (unsigned long long)e->ident,
                                      (unsigned long long)e->native_id);
        if (row == NULL || PyList_Append(list, row) < 0) {
            Py_XDECREF(row);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(row);
    }
    return list;
}

/* A direct-mapped id -> tag cache for one query: most traces share a few
 * tracebacks, and ftm_traceback_thread takes the engine's generation
 * lock. */
#define TAG_CACHE 4096

typedef struct tag_cache {
    ftm_tb_id id[TAG_CACHE];
    uint32_t tag[TAG_CACHE];
} tag_cache;

static uint32_t tag_of(tag_cache *c, ftm_tb_id id)
{
    size_t k = (id * 2654435761u) & (TAG_CACHE - 1);
    if (id != FTM_TB_NONE && c->id[k] == id) {
        return c->tag[k];
    }
    uint32_t tag = 0;
    if (id == FTM_TB_NONE || ftm_traceback_thread(id, &tag) != FTM_OK) {
        return 0;
    }
    c->id[k] = id;
    c->tag[k] = tag;
    return tag;
}

/* The slot of a tag in per-query arrays of end + 1 slots: tags below end
 * are themselves, FTMPY_THREAD_OTHER is the last. */
static inline size_t tag_slot(uint32_t tag, uint_fast32_t end)
{
    return tag < end ? tag : (size_t)end;
}

static uint_fast32_t tags_end(void)
{
    /* every tag in a snapshot was given before it was taken */
    uint_fast32_t end = atomic_load_explicit(&next, memory_order_relaxed);
    return end > FTMPY_THREADS_MAX + 1 ? FTMPY_THREADS_MAX + 1 : end;
}

PyObject *ftmpy_threads_tags(const ftm_snapshot *snap)
{
    uint_fast32_t end = tags_end();
    size_t nslot = (size_t)end + 1;
    PyObject **ints = calloc(nslot, sizeof(*ints)); /* one int per tag */
    tag_cache *c = calloc(1, sizeof(*c));
    PyObject *list =
        ints && c ? PyList_New((Py_ssize_t)snap->ntraces) : PyErr_NoMemory();
    for (size_t i = 0; list != NULL && i < snap->ntraces; i++) {
        uint32_t tag = tag_of(c, snap->traces[i].tb);
        size_t k = tag_slot(tag, end);
        if (ints[k] == NULL &&
            (ints[k] = PyLong_FromUnsignedLong(tag)) == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, Py_NewRef(ints[k]));
    }
    for (size_t k = 0; ints != NULL && k < nslot; k++) {
        Py_XDECREF(ints[k]);
    }
    free(ints);
    free(c);
    return list;
}

PyObject *ftmpy_threads_totals(const ftm_snapshot *snap)
{
    /* tags are dense: 0..end-1, plus FTMPY_THREAD_OTHER (tag_slot) */
    uint_fast32_t end = tags_end();
    size_t nslot = (size_t)end + 1;
    uint64_t(*sums)[2] = calloc(nslot, sizeof(*sums));
    tag_cache *c = calloc(1, sizeof(*c));
    PyObject *out = sums && c ? PyDict_New() : PyErr_NoMemory();
    for (size_t i = 0; out != NULL && i < snap->ntraces; i++) {
        uint32_t tag = tag_of(c, snap->traces[i].tb);
        size_t k = tag_slot(tag, end);
        sums[k][0] += snap->traces[i].size;
        sums[k][1]++;
    }
    for (size_t k = 0; out != NULL && k < nslot; k++) {
        if (sums[k][1] == 0) {
            continue;
        }
        unsigned long tag = k < end ? (unsigned long)k : FTMPY_THREAD_OTHER;
        PyObject *key = PyLong_FromUnsignedLong(tag);
        PyObject *v = Py_BuildValue("[KK]", (unsigned long long)sums[k][0],
                                    (unsigned long long)sums[k][1]);
        if (key == NULL || v == NULL || PyDict_SetItem(out, key, v) < 0) {
            Py_CLEAR(out);
        }
        Py_XDECREF(key);
        Py_XDECREF(v);
    }
    free(sums);
    free(c);
    return out;
}
