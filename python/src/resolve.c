/*
 * resolve.c -- see resolve.h.
 *
 * The two id-keyed caches are open-addressing maps (linear probing, load
 * <= 1/2) from a 16-byte key (an ftm_frame, or {tb id, 0}) to up to two
 * owned references; the all-zero key marks an empty slot (a frame record
 * never has a == 0: kind SHAPE holds a shape id >= 1, kind RESOLVED has
 * its low bit set; tb ids are never 0).  Memory from libc.
 */
#include <stdlib.h>
#include <string.h>

#include "codeset.h"
#include "filenames.h"
#include "frames.h"
#include "resolve.h"
#include "shapes.h"

typedef struct omap_slot {
    ftm_frame key;
    PyObject *v1;
    PyObject *v2;
} omap_slot;

typedef struct omap {
    omap_slot *slots;
    size_t cap; /* power of two or 0 */
    size_t count;
} omap;

static omap frame_map;    /* frame record -> (filename, lineno) */
static omap tb_map;       /* {id, 0} -> (traceback tuple, total_nframe int) */
static PyObject *content; /* dict: traceback tuple -> same tuple */
static size_t object_bytes; /* rough size of the Python objects held */
static uint32_t cache_epoch;

static inline size_t key_hash(const ftm_frame *k)
{
    uint64_t h = k->a * UINT64_C(0x9E3779B97F4A7C15);
    h ^= k->b + UINT64_C(0x632BE59BD9B4E019) + (h << 6) + (h >> 2);
    h *= UINT64_C(0xff51afd7ed558ccd);
    return (size_t)(h ^ (h >> 32));
}

static omap_slot *omap_find(omap *m, const ftm_frame *k)
{
    if (m->cap == 0) {
        return NULL;
    }
    size_t mask = m->cap - 1;
    for (size_t j = key_hash(k) & mask;; j = (j + 1) & mask) {
        omap_slot *s = &m->slots[j];
        if (s->key.a == k->a && s->key.b == k->b) {
            return s;
        }
        if (s->key.a == 0 && s->key.b == 0) {
            return NULL;
        }
    }
}

/* Insert a new key (not present), stealing v1/v2.  -1 on OOM (nothing
 * stolen). */
static int omap_insert(omap *m, const ftm_frame *k, PyObject *v1, PyObject *v2)
{
    if ((m->count + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 4096;
        omap_slot *ns = calloc(ncap, sizeof(*ns));
        if (ns == NULL) {
            return -1;
        }
        for (size_t i = 0; i < m->cap; i++) {
            omap_slot *s = &m->slots[i];
            if (s->key.a != 0 || s->key.b != 0) {
                size_t j = key_hash(&s->key) & (ncap - 1);
                while (ns[j].key.a != 0 || ns[j].key.b != 0) {
                    j = (j + 1) & (ncap - 1);
                }
                ns[j] = *s;
            }
        }
        free(m->slots);
        m->slots = ns;
        m->cap = ncap;
    }
    size_t mask = m->cap - 1;
    size_t j = key_hash(k) & mask;
    while (m->slots[j].key.a != 0 || m->slots[j].key.b != 0) {
        j = (j + 1) & mask;
    }
    m->slots[j].key = *k;
    m->slots[j].v1 = v1;
    m->slots[j].v2 = v2;
    m->count++;
    return 0;
}

static void omap_clear(omap *m)
{
    omap_slot *slots = m->slots;
    size_t cap = m->cap;
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
    for (size_t i = 0; i < cap; i++) {
        Py_XDECREF(slots[i].v1);
        Py_XDECREF(slots[i].v2);
    }
    free(slots);
}

void ftmpy_resolve_clear(void)
{
    PyObject *c = content;
    content = NULL;
    omap_clear(&frame_map);
    omap_clear(&tb_map);
    object_bytes = 0;
    Py_XDECREF(c);
}

static int check_epoch(void)
{
    if (cache_epoch != ftmpy_code_epoch) {
        ftmpy_resolve_clear();
        cache_epoch = ftmpy_code_epoch;
    }
    if (content == NULL) {
        content = PyDict_New();
        if (content == NULL) {
            return -1;
        }
    }
    return 0;
}

static PyObject *new_untracked_pair(PyObject *a, PyObject *b)
{
    /* Steals a and b. */
    if (a == NULL || b == NULL) {
        Py_XDECREF(a);
        Py_XDECREF(b);
        return NULL;
    }
    PyObject *t = PyTuple_New(2);
    if (t == NULL) {
        Py_DECREF(a);
        Py_DECREF(b);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, a);
    PyTuple_SET_ITEM(t, 1, b);
    PyObject_GC_UnTrack(t);
    return t;
}

/* Borrowed (filename, lineno) tuple of one frame record. */
static PyObject *frame_tuple(const ftm_frame *f)
{
    omap_slot *s = omap_find(&frame_map, f);
    if (s != NULL) {
        return s->v1;
    }
    PyObject *fn;
    long line;
    if (FTMPY_FRAME_IS_RESOLVED(f)) {
        fn = ftmpy_filename_str(FTMPY_FRAME_FID(f));
        line = (long)f->b;
    } else {
        /* kind SHAPE: the only other kind the hooks hand to the engine */
        uint32_t fid = 0;
        int ln = 0;
        int64_t addr = (int64_t)f->b - (int64_t)ftmpy_code_unit0();
        if (!FTMPY_FRAME_IS_SHAPE(f) ||
            ftmpy_shape_line(FTMPY_FRAME_SHAPE(f), addr, &fid, &ln) < 0) {
            fid = 0;
            ln = 0;
        }
        fn = ftmpy_filename_str(fid);
        line = ln < 0 ? 0 : ln;
    }
    PyObject *t = new_untracked_pair(fn, PyLong_FromLong(line));
    if (t == NULL) {
        return NULL;
    }
    if (omap_insert(&frame_map, f, t, NULL) < 0) {
        Py_DECREF(t);
        PyErr_NoMemory();
        return NULL;
    }
    object_bytes += 64 + 32;
    return t;
}

PyObject *ftmpy_tb_tuple(ftm_tb_id id, PyObject **total)
{
    static const ftm_frame unknown = {FTMPY_RESOLVED_A(0), 0};
    if (check_epoch() < 0) {
        return NULL;
    }
    ftm_frame key = {id, 0};
    if (id == FTM_TB_NONE) {
        /* the engine could not intern it (counted in its stats) */
        key.b = 1;
    }
    omap_slot *s = omap_find(&tb_map, &key);
    if (s != NULL) {
        if (total != NULL) {
            *total = s->v2;
        }
        return s->v1;
    }
    const ftm_frame *frames = &unknown;
    uint16_t nframe = 1, tot = 1;
    if (id != FTM_TB_NONE &&
        ftm_traceback_get(id, &frames, &nframe, &tot) != FTM_OK) {
        frames = &unknown;
        nframe = 1;
        tot = 1;
    }
    PyObject *tb = PyTuple_New(nframe);
    if (tb == NULL) {
        return NULL;
    }
    for (uint16_t i = 0; i < nframe; i++) {
        PyObject *ft = frame_tuple(&frames[i]);
        if (ft == NULL) {
            Py_DECREF(tb);
            return NULL;
        }
        Py_INCREF(ft);
        PyTuple_SET_ITEM(tb, i, ft);
    }
    PyObject_GC_UnTrack(tb);
    PyObject *canon = PyDict_SetDefault(content, tb, tb); /* borrowed */
    if (canon == NULL) {
        Py_DECREF(tb);
        return NULL;
    }
    Py_INCREF(canon);
    Py_DECREF(tb);
    PyObject *tot_obj = PyLong_FromLong(tot);
    if (tot_obj == NULL) {
        Py_DECREF(canon);
        return NULL;
    }
    if (omap_insert(&tb_map, &key, canon, tot_obj) < 0) {
        Py_DECREF(canon);
        Py_DECREF(tot_obj);
        PyErr_NoMemory();
        return NULL;
    }
    object_bytes += 56 + 8 * (size_t)nframe + 32;
    if (total != NULL) {
        *total = tot_obj;
    }
    return canon;
}

#define SIZE_CACHE 4096

PyObject *ftmpy_traces_list(const ftm_snapshot *snap)
{
    struct {
        size_t size;
        PyObject *obj;
    } *sizes = calloc(SIZE_CACHE, sizeof(*sizes));
    if (sizes == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *domain0 = PyLong_FromLong(0);
    PyObject *list = domain0 ? PyList_New((Py_ssize_t)snap->ntraces) : NULL;
    if (list == NULL) {
        goto error;
    }
    for (size_t i = 0; i < snap->ntraces; i++) {
        const ftm_trace *tr = &snap->traces[i];
        PyObject *total;
        PyObject *tb = ftmpy_tb_tuple(tr->tb, &total);
        if (tb == NULL) {
            goto error;
        }
        PyObject *dom;
        if (tr->domain == 0) {
            dom = Py_NewRef(domain0);
        } else if ((dom = PyLong_FromUnsignedLong(tr->domain)) == NULL) {
            goto error;
        }
        size_t slot = (tr->size ^ (tr->size >> 12)) & (SIZE_CACHE - 1);
        PyObject *sz;
        if (sizes[slot].obj != NULL && sizes[slot].size == tr->size) {
            sz = Py_NewRef(sizes[slot].obj);
        } else {
            sz = PyLong_FromSize_t(tr->size);
            if (sz == NULL) {
                Py_DECREF(dom);
                goto error;
            }
            Py_XSETREF(sizes[slot].obj, Py_NewRef(sz));
            sizes[slot].size = tr->size;
        }
        PyObject *t = PyTuple_New(4);
        if (t == NULL) {
            Py_DECREF(dom);
            Py_DECREF(sz);
            goto error;
        }
        PyTuple_SET_ITEM(t, 0, dom);
        PyTuple_SET_ITEM(t, 1, sz);
        PyTuple_SET_ITEM(t, 2, Py_NewRef(tb));
        PyTuple_SET_ITEM(t, 3, Py_NewRef(total));
        PyObject_GC_UnTrack(t);
        PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    goto done;
error:
    Py_CLEAR(list);
done:
    for (size_t i = 0; i < SIZE_CACHE; i++) {
        Py_XDECREF(sizes[i].obj);
    }
    free(sizes);
    Py_XDECREF(domain0);
    return list;
}

size_t ftmpy_resolve_bytes(void)
{
    return (frame_map.cap + tb_map.cap) * sizeof(omap_slot) + object_bytes;
}
