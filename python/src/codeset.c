/*
 * codeset.c -- see codeset.h.  An open-addressing hash map from a code
 * object's address to its shape id (linear probing, load <= 1/2, address
 * 0 = empty slot, no deletion: a map is only ever emptied as a whole).
 * Written for this purpose rather than a PyDict because it is probed from
 * inside allocator hooks, where it must neither allocate through Python
 * nor run Python code.
 *
 * GIL builds: one map (`global`).  Free-threaded builds: one map per
 * thread (`local`, reached through one _Thread_local pointer), every
 * `local` in a registry so that close() can wait for the threads inside
 * the gate and release() can empty their maps; see codeset.h.
 */
#include <stdlib.h>
#include <string.h>

#include "codeset.h"
#include "filenames.h"
#include "frames.h"
#include "shapes.h"

uint32_t ftmpy_code_epoch = 1;
atomic_uint_fast64_t ftmpy_code_deaths_ctr;

int ftmpy_codeset_watching_flag;

typedef struct cslot {
    uintptr_t code;
    uint32_t shape;
} cslot;

typedef struct cmap {
    cslot *slots;
    size_t capacity; /* power of two, or 0 */
    size_t count;
    uint64_t deaths; /* ftmpy_code_deaths when last emptied */
} cmap;

static void on_code_death(void)
{
    atomic_fetch_add_explicit(&ftmpy_code_deaths_ctr, 1, memory_order_release);
}

static inline size_t slot_of(uintptr_t p, size_t mask)
{
    uint64_t h = (uint64_t)p >> 4;
    h *= UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 32) & mask;
}

static int grow(cmap *m)
{
    size_t ncap = m->capacity ? m->capacity * 2 : 1024;
    cslot *ns = calloc(ncap, sizeof(*ns));
    if (ns == NULL) {
        return -1;
    }
    for (size_t i = 0; i < m->capacity; i++) {
        cslot s = m->slots[i];
        if (s.code != 0) {
            size_t j = slot_of(s.code, ncap - 1);
            while (ns[j].code != 0) {
                j = (j + 1) & (ncap - 1);
            }
            ns[j] = s;
        }
    }
    free(m->slots);
    m->slots = ns;
    m->capacity = ncap;
    return 0;
}

static void cmap_empty(cmap *m)
{
    if (m->count != 0) {
        memset(m->slots, 0, m->capacity * sizeof(*m->slots));
        m->count = 0;
    }
}

static void cmap_free(cmap *m)
{
    free(m->slots);
    m->slots = NULL;
    m->capacity = 0;
    m->count = 0;
}

/* The shape of a live code object, computed from its fields. */
static uint32_t shape_of(PyObject *code)
{
    PyCodeObject *co = (PyCodeObject *)code;
    uint32_t fid = 0;
    PyObject *fn = ftmpy_code_filename(code);
    if (ftmpy_filename_intern(fn, &fid) == 0) {
#if PY_VERSION_HEX < 0x030F0000
        /* as the builtin does up to 3.14; 3.15's holds no filename string
         * (measured: a dropped code object's co_filename loses the
         * builtin's reference on 3.15, keeps it on 3.14), so neither do
         * we there -- the differential codegen workload tells */
        ftmpy_filename_hold(fid, fn);
#endif
    }
    const uint8_t *lt = NULL;
    size_t len = 0;
    if (co->co_linetable != NULL && PyBytes_Check(co->co_linetable)) {
        lt = (const uint8_t *)PyBytes_AS_STRING(co->co_linetable);
        len = (size_t)PyBytes_GET_SIZE(co->co_linetable);
    }
    return ftmpy_shape_intern(fid, co->co_firstlineno, lt, len);
}

/* Look `code` up in `m`, adding it if absent. */
static uint32_t cmap_shape(cmap *m, PyObject *code)
{
    uintptr_t key = (uintptr_t)code;
    if (!ftmpy_codeset_watching_flag) {
        return shape_of(code); /* nothing may be cached: see codeset.h */
    }
    uint64_t d = ftmpy_code_deaths();
    if (m->deaths != d) {
        cmap_empty(m); /* some code object died: addresses may be reused */
        m->deaths = d;
    }
    if (m->capacity != 0) {
        size_t mask = m->capacity - 1;
        for (size_t j = slot_of(key, mask);; j = (j + 1) & mask) {
            cslot *s = &m->slots[j];
            if (s->code == key) {
                return s->shape;
            }
            if (s->code == 0) {
                break;
            }
        }
    }
    uint32_t id = shape_of(code);
    if (id == 0) {
        return 0;
    }
    if ((m->count + 1) * 2 > m->capacity && grow(m) < 0) {
        return id; /* exact, just not cached */
    }
    size_t mask = m->capacity - 1;
    size_t j = slot_of(key, mask);
    while (m->slots[j].code != 0) {
        j = (j + 1) & mask;
    }
    m->slots[j].code = key;
    m->slots[j].shape = id;
    m->count++;
    return id;
}

static void bump_epoch(void)
{
    ftmpy_code_epoch++;
    if (ftmpy_code_epoch == 0) {
        ftmpy_code_epoch = 1; /* 0 means "never filled" in caches */
    }
}

static int init_common(void)
{
    static int done;
    if (done) {
        return 0;
    }
    if (ftmpy_shapes_init() < 0) {
        PyErr_SetString(PyExc_RuntimeError,
                        "fasttracemalloc: shape table initialisation failed");
        return -1;
    }
    ftmpy_codeset_watching_flag = ftmpy_code_watch(on_code_death) == 0;
    done = 1;
    return 0;
}

#ifndef Py_GIL_DISABLED

static cmap global; /* GIL only */

int ftmpy_codeset_init(void)
{
    return init_common();
}

uint32_t ftmpy_codeset_shape(PyObject *code)
{
    return cmap_shape(&global, code);
}

void ftmpy_codeset_release(void)
{
    bump_epoch();
    cmap_free(&global);
    ftmpy_shapes_clear();
    ftmpy_filenames_drop_strs();
}

size_t ftmpy_codeset_count(void)
{
    return global.count;
}

size_t ftmpy_codeset_bytes(void)
{
    return global.capacity * sizeof(cslot) + ftmpy_shapes_bytes();
}

#else /* Py_GIL_DISABLED */

#include <pthread.h>
#include <sched.h>

/* One thread's map.  `map`: the owner only, inside the gate; or anyone
 * holding reg_lock while the gate is closed (release).  `inside`: written
 * by the owner (enter/leave), read by close().  `gone`, `next`: reg_lock. */
typedef struct local {
    cmap map;
    atomic_int inside;
    int gone; /* the owner thread exited; freed by the next release */
    struct local *next;
} local;

static _Thread_local local *tl_local;
static pthread_key_t tl_key;

/* Gate: seq_cst store by close(), release store by open(), seq_cst load by
 * enter(). */
static atomic_int closed;

/* reg_lock guards the registry. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static local *registry;

/* Totals over every map, for stats only (relaxed). */
static atomic_size_t total_count;
static atomic_size_t total_bytes;

static void local_gone(void *arg)
{
    local *l = arg;
    pthread_mutex_lock(&reg_lock);
    l->gone = 1; /* its map is freed by the next release */
    pthread_mutex_unlock(&reg_lock);
    tl_local = NULL;
}

static void atfork_prepare(void)
{
    pthread_mutex_lock(&reg_lock);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&reg_lock);
}

/* Only the forking thread survives in the child.  Another thread may have
 * been inside the gate (a RAW capture made without a thread state
 * attached: os.fork() stops attached threads at safe points only, never
 * inside a hook); its flag would make the child's next close() wait
 * forever.  Every other thread's map is marked gone. */
static void atfork_child(void)
{
    for (local *l = registry; l != NULL; l = l->next) {
        if (l != tl_local) {
            l->gone = 1;
            atomic_store_explicit(&l->inside, 0, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&reg_lock);
}

int ftmpy_codeset_init(void)
{
    static int done;
    if (!done) {
        if (pthread_key_create(&tl_key, local_gone) != 0 ||
            pthread_atfork(atfork_prepare, atfork_parent, atfork_child)) {
            PyErr_SetString(PyExc_RuntimeError,
                            "fasttracemalloc: codeset initialisation failed");
            return -1;
        }
        done = 1;
    }
    return init_common();
}

static local *local_create(void)
{
    local *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return NULL;
    }
    if (pthread_setspecific(tl_key, l) != 0) {
        free(l);
        return NULL;
    }
    pthread_mutex_lock(&reg_lock);
    l->next = registry;
    registry = l;
    pthread_mutex_unlock(&reg_lock);
    atomic_fetch_add_explicit(&total_bytes, sizeof(*l), memory_order_relaxed);
    tl_local = l;
    return l;
}

int ftmpy_codeset_enter(void)
{
    local *l = tl_local;
    if (l == NULL && (l = local_create()) == NULL) {
        return FTMPY_GATE_NOMAP; /* capture resolved frames */
    }
    atomic_store_explicit(&l->inside, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&closed, memory_order_seq_cst)) {
        atomic_store_explicit(&l->inside, 0, memory_order_release);
        return FTMPY_GATE_CLOSED;
    }
    return FTMPY_GATE_IN;
}

void ftmpy_codeset_leave(int entered)
{
    if (entered == FTMPY_GATE_IN) {
        atomic_store_explicit(&tl_local->inside, 0, memory_order_release);
    }
}

void ftmpy_codeset_close(void)
{
    atomic_store_explicit(&closed, 1, memory_order_seq_cst);
    pthread_mutex_lock(&reg_lock);
    for (local *l = registry; l != NULL; l = l->next) {
        /* a thread inside is walking its stack or recording one event */
        for (unsigned spin = 0;
             atomic_load_explicit(&l->inside, memory_order_seq_cst); spin++) {
            if (spin > 64) {
                sched_yield();
            }
        }
    }
    pthread_mutex_unlock(&reg_lock);
}

void ftmpy_codeset_open(void)
{
    atomic_store_explicit(&closed, 0, memory_order_release);
}

uint32_t ftmpy_codeset_shape(PyObject *code)
{
    cmap *m = &tl_local->map; /* inside the gate: tl_local exists */
    size_t cap = m->capacity;
    size_t count = m->count;
    uint32_t id = cmap_shape(m, code);
    if (m->count != count) {
        if (m->count > count) {
            atomic_fetch_add_explicit(&total_count, m->count - count,
                                      memory_order_relaxed);
        } else {
            atomic_fetch_sub_explicit(&total_count, count - m->count,
                                      memory_order_relaxed);
        }
    }
    if (m->capacity != cap) {
        atomic_fetch_add_explicit(&total_bytes,
                                  (m->capacity - cap) * sizeof(cslot),
                                  memory_order_relaxed);
    }
    return id;
}

/* Gate closed, nobody inside. */
void ftmpy_codeset_release(void)
{
    bump_epoch();
    pthread_mutex_lock(&reg_lock);
    for (local **pl = &registry; *pl != NULL;) {
        local *l = *pl;
        atomic_fetch_sub_explicit(&total_count, l->map.count,
                                  memory_order_relaxed);
        atomic_fetch_sub_explicit(&total_bytes,
                                  l->map.capacity * sizeof(cslot),
                                  memory_order_relaxed);
        cmap_free(&l->map);
        if (l->gone) {
            *pl = l->next;
            atomic_fetch_sub_explicit(&total_bytes, sizeof(*l),
                                      memory_order_relaxed);
            free(l);
            continue;
        }
        pl = &l->next;
    }
    pthread_mutex_unlock(&reg_lock);
    ftmpy_shapes_clear();
    ftmpy_filenames_drop_strs();
}

size_t ftmpy_codeset_count(void)
{
    return atomic_load_explicit(&total_count, memory_order_relaxed);
}

size_t ftmpy_codeset_bytes(void)
{
    return atomic_load_explicit(&total_bytes, memory_order_relaxed) +
           ftmpy_shapes_bytes();
}

#endif /* Py_GIL_DISABLED */
