/*
 * filenames.c -- see filenames.h.  Entries live in a growable array of
 * pointers indexed by id; an open-addressing index (linear probing, load
 * <= 1/2, 0 = empty) maps content hash -> id.  All fields below are
 * protected by `lock`.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "filenames.h"

typedef struct fn_entry {
    uint64_t hash;
    Py_ssize_t len;
    int kind;
    PyObject *str; /* built lazily under the GIL; strong reference */
    char data[];
} fn_entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static fn_entry **entries; /* entries[0] unused: id 0 is "<unknown>" */
static uint32_t nentries = 1;
static uint32_t entries_cap;
static uint32_t *index_slots;
static uint32_t index_cap; /* power of two, or 0 */
static size_t bytes;
static PyObject *unknown_str;

static void atfork_prepare(void)
{
    pthread_mutex_lock(&lock);
}

static void atfork_release(void)
{
    pthread_mutex_unlock(&lock);
}

int ftmpy_filenames_init(void)
{
    static int registered;
    if (!registered) {
        if (pthread_atfork(atfork_prepare, atfork_release, atfork_release)) {
            PyErr_SetString(PyExc_RuntimeError,
                            "fasttracemalloc: pthread_atfork failed");
            return -1;
        }
        registered = 1;
    }
    if (unknown_str == NULL) {
        unknown_str = PyUnicode_InternFromString("<unknown>");
        if (unknown_str == NULL) {
            return -1;
        }
    }
    return 0;
}

static uint64_t hash_bytes(int kind, const char *p, size_t n)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325) ^ (uint64_t)kind;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static int index_grow(void)
{
    uint32_t ncap = index_cap ? index_cap * 2 : 64;
    uint32_t *ns = calloc(ncap, sizeof(*ns));
    if (ns == NULL) {
        return -1;
    }
    for (uint32_t id = 1; id < nentries; id++) {
        uint32_t j = (uint32_t)entries[id]->hash & (ncap - 1);
        while (ns[j] != 0) {
            j = (j + 1) & (ncap - 1);
        }
        ns[j] = id;
    }
    free(index_slots);
    bytes += (size_t)(ncap - index_cap) * sizeof(*ns);
    index_slots = ns;
    index_cap = ncap;
    return 0;
}

int ftmpy_filename_intern(PyObject *str, uint32_t *fid)
{
    *fid = 0;
    if (str == NULL) {
        return 0;
    }
    int kind = PyUnicode_KIND(str);
    Py_ssize_t len = PyUnicode_GET_LENGTH(str);
    size_t nbytes = (size_t)len * (size_t)kind;
    const char *data = PyUnicode_DATA(str);
    uint64_t h = hash_bytes(kind, data, nbytes);
    int rc = 0;

    pthread_mutex_lock(&lock);
    if (index_cap != 0) {
        uint32_t j = (uint32_t)h & (index_cap - 1);
        for (uint32_t id; (id = index_slots[j]) != 0;
             j = (j + 1) & (index_cap - 1)) {
            fn_entry *e = entries[id];
            if (e->hash == h && e->kind == kind && e->len == len &&
                memcmp(e->data, data, nbytes) == 0) {
                *fid = id;
                goto done;
            }
        }
    }
    if (((size_t)nentries + 1) * 2 > index_cap && index_grow() < 0) {
        rc = -1;
        goto done;
    }
    if (nentries >= entries_cap) {
        uint32_t ncap = entries_cap ? entries_cap * 2 : 64;
        fn_entry **ne = realloc(entries, ncap * sizeof(*ne));
        if (ne == NULL) {
            rc = -1;
            goto done;
        }
        bytes += (size_t)(ncap - entries_cap) * sizeof(*ne);
        entries = ne;
        entries_cap = ncap;
    }
    fn_entry *e = malloc(sizeof(*e) + nbytes);
    if (e == NULL) {
        rc = -1;
        goto done;
    }
    bytes += sizeof(*e) + nbytes;
    e->hash = h;
    e->len = len;
    e->kind = kind;
    e->str = NULL;
    memcpy(e->data, data, nbytes);
    uint32_t id = nentries++;
    entries[id] = e;
    uint32_t j = (uint32_t)h & (index_cap - 1);
    while (index_slots[j] != 0) {
        j = (j + 1) & (index_cap - 1);
    }
    index_slots[j] = id;
    *fid = id;
done:
    pthread_mutex_unlock(&lock);
    return rc;
}

PyObject *ftmpy_filename_str(uint32_t fid)
{
    PyObject *res = NULL;
    fn_entry *e = NULL;

    pthread_mutex_lock(&lock);
    if (fid != 0 && fid < nentries) {
        e = entries[fid];
        res = e->str;
        Py_XINCREF(res);
    }
    pthread_mutex_unlock(&lock);
    if (res != NULL) {
        return res;
    }
    if (e == NULL) {
        if (unknown_str == NULL) {
            PyErr_SetString(PyExc_SystemError,
                            "fasttracemalloc: module not initialised");
            return NULL;
        }
        return Py_NewRef(unknown_str);
    }
    /* Entries are never freed or modified after creation but for `str`
     * (read and set under `lock`); e was published under `lock`, so its
     * characters are visible here.  Two callers may both build a str; the
     * first one stored wins (callers are serialised by the GIL or the
     * module lock anyway). */
    res = PyUnicode_FromKindAndData(e->kind, e->data, e->len);
    if (res == NULL) {
        return NULL;
    }
    pthread_mutex_lock(&lock);
    if (e->str == NULL) {
        e->str = Py_NewRef(res);
    }
    pthread_mutex_unlock(&lock);
    return res;
}

void ftmpy_filename_hold(uint32_t fid, PyObject *str)
{
    if (str == NULL) {
        return;
    }
    pthread_mutex_lock(&lock);
    if (fid != 0 && fid < nentries && entries[fid]->str == NULL) {
        entries[fid]->str = Py_NewRef(str);
    }
    pthread_mutex_unlock(&lock);
}

void ftmpy_filenames_drop_strs(void)
{
    for (uint32_t id = 1;; id++) {
        PyObject *str = NULL;
        pthread_mutex_lock(&lock);
        if (id >= nentries) {
            pthread_mutex_unlock(&lock);
            return;
        }
        str = entries[id]->str;
        entries[id]->str = NULL;
        pthread_mutex_unlock(&lock);
        Py_XDECREF(str); /* a str: its deallocation runs no Python code */
    }
}

size_t ftmpy_filenames_count(void)
{
    pthread_mutex_lock(&lock);
    size_t n = nentries - 1;
    pthread_mutex_unlock(&lock);
    return n;
}

size_t ftmpy_filenames_bytes(void)
{
    pthread_mutex_lock(&lock);
    size_t n = bytes;
    pthread_mutex_unlock(&lock);
    return n;
}
