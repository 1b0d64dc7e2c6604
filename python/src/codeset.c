/*
 * codeset.c -- see codeset.h.  An open-addressing hash set of object
 * addresses (linear probing, load <= 1/2, NULL = empty slot, no deletion:
 * the set is only ever emptied as a whole).  Written for this purpose
 * rather than a PyDict/PySet because it is probed from inside allocator
 * hooks, where it must neither allocate through Python nor run Python code.
 *
 * GIL builds: one set (`global`).  Free-threaded builds: one set per thread
 * (`local`, reached through one _Thread_local pointer), every `local` in a
 * registry so that close() can wait for the threads inside the gate and
 * release() can take their references; see codeset.h for the protocol.
 */
#include <stdlib.h>

#include "codeset.h"

uint32_t ftmpy_code_epoch = 1;

typedef struct cset {
    PyObject **slots;
    size_t capacity; /* power of two, or 0 */
    size_t count;
} cset;

static inline size_t slot_of(PyObject *p, size_t mask)
{
    uint64_t h = (uint64_t)(uintptr_t)p >> 4;
    h *= UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 32) & mask;
}

static int grow(cset *s)
{
    size_t ncap = s->capacity ? s->capacity * 2 : 1024;
    PyObject **ns = calloc(ncap, sizeof(*ns));
    if (ns == NULL) {
        return -1;
    }
    for (size_t i = 0; i < s->capacity; i++) {
        PyObject *p = s->slots[i];
        if (p != NULL) {
            size_t j = slot_of(p, ncap - 1);
            while (ns[j] != NULL) {
                j = (j + 1) & (ncap - 1);
            }
            ns[j] = p;
        }
    }
    free(s->slots);
    s->slots = ns;
    s->capacity = ncap;
    return 0;
}

/* 1 if added (a reference taken), 0 if already a member, -1 if the set
 * cannot grow. */
static int cset_add(cset *s, PyObject *code)
{
    if (s->capacity != 0) {
        size_t mask = s->capacity - 1;
        size_t j = slot_of(code, mask);
        for (;;) {
            PyObject *p = s->slots[j];
            if (p == code) {
                return 0;
            }
            if (p == NULL) {
                break;
            }
            j = (j + 1) & mask;
        }
    }
    if ((s->count + 1) * 2 > s->capacity && grow(s) < 0) {
        return -1;
    }
    size_t mask = s->capacity - 1;
    size_t j = slot_of(code, mask);
    while (s->slots[j] != NULL) {
        j = (j + 1) & mask;
    }
    Py_INCREF(code);
    s->slots[j] = code;
    s->count++;
    return 1;
}

/* Drop every reference of a set detached from its owner, and its memory. */
static void cset_drop(cset *s)
{
    for (size_t i = 0; i < s->capacity; i++) {
        Py_XDECREF(s->slots[i]);
    }
    free(s->slots);
}

static void bump_epoch(void)
{
    ftmpy_code_epoch++;
    if (ftmpy_code_epoch == 0) {
        ftmpy_code_epoch = 1; /* 0 means "never filled" in caches */
    }
}

#ifndef Py_GIL_DISABLED

static cset global; /* GIL only */

int ftmpy_codeset_init(void)
{
    return 0;
}

int ftmpy_codeset_add(PyObject *code)
{
    return cset_add(&global, code) < 0 ? -1 : 0;
}

void ftmpy_codeset_release(void)
{
    cset old = global;
    bump_epoch();
    global.slots = NULL;
    global.capacity = 0;
    global.count = 0;
    cset_drop(&old);
}

size_t ftmpy_codeset_count(void)
{
    return global.count;
}

size_t ftmpy_codeset_bytes(void)
{
    return global.capacity * sizeof(PyObject *);
}

#else /* Py_GIL_DISABLED */

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

/* One thread's set.  `set`: the owner only, inside the gate; or anyone
 * holding reg_lock while the gate is closed (release).  `inside`: written
 * by the owner (enter/leave), read by close().  `gone`, `next`: reg_lock. */
typedef struct local {
    cset set;
    atomic_int inside;
    int gone; /* the owner thread exited; freed by the next release */
    struct local *next;
} local;

static _Thread_local local *tl_local;
static pthread_key_t tl_key;

/* Gate: seq_cst store by close(), release store by open(), seq_cst load by
 * enter(). */
static atomic_int closed;

/* reg_lock guards the registry and the pending list. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static local *registry;
static cset *pending; /* sets taken by release(), dropped later */
static size_t npending;
static size_t pending_cap;

/* Totals over every set, for stats only (relaxed). */
static atomic_size_t total_count;
static atomic_size_t total_bytes;

static void local_gone(void *arg)
{
    local *l = arg;
    pthread_mutex_lock(&reg_lock);
    l->gone = 1; /* its references stay members until the next release */
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
 * forever.  Every other thread's set is marked gone (its references stay
 * members until the next release). */
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
    return 0;
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
        return 0; /* no set: capture resolved frames */
    }
    atomic_store_explicit(&l->inside, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&closed, memory_order_seq_cst)) {
        atomic_store_explicit(&l->inside, 0, memory_order_release);
        return 0;
    }
    return 1;
}

void ftmpy_codeset_leave(int entered)
{
    if (entered) {
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

int ftmpy_codeset_add(PyObject *code)
{
    cset *s = &tl_local->set; /* inside the gate: tl_local exists */
    size_t cap = s->capacity;
    int rc = cset_add(s, code);
    if (rc < 0) {
        return -1;
    }
    if (rc > 0) {
        atomic_fetch_add_explicit(&total_count, 1, memory_order_relaxed);
    }
    if (s->capacity != cap) {
        atomic_fetch_add_explicit(&total_bytes,
                                  (s->capacity - cap) * sizeof(PyObject *),
                                  memory_order_relaxed);
    }
    return 0;
}

/* Gate closed, nobody inside. */
void ftmpy_codeset_release(void)
{
    bump_epoch();
    pthread_mutex_lock(&reg_lock);
    for (local **pl = &registry; *pl != NULL;) {
        local *l = *pl;
        if (l->set.capacity != 0) {
            if (npending == pending_cap) {
                size_t ncap = pending_cap ? pending_cap * 2 : 16;
                cset *np = realloc(pending, ncap * sizeof(*np));
                if (np == NULL) {
                    pl = &l->next; /* kept: its members live longer */
                    continue;
                }
                pending = np;
                pending_cap = ncap;
            }
            pending[npending++] = l->set;
            atomic_fetch_sub_explicit(&total_count, l->set.count,
                                      memory_order_relaxed);
            atomic_fetch_sub_explicit(&total_bytes,
                                      l->set.capacity * sizeof(PyObject *),
                                      memory_order_relaxed);
            memset(&l->set, 0, sizeof(l->set));
        }
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
}

void ftmpy_codeset_drop_released(void)
{
    for (;;) {
        cset s;
        pthread_mutex_lock(&reg_lock);
        if (npending == 0) {
            pthread_mutex_unlock(&reg_lock);
            return;
        }
        s = pending[--npending];
        pthread_mutex_unlock(&reg_lock);
        cset_drop(&s); /* may run arbitrary code: no lock held */
    }
}

size_t ftmpy_codeset_count(void)
{
    return atomic_load_explicit(&total_count, memory_order_relaxed);
}

size_t ftmpy_codeset_bytes(void)
{
    return atomic_load_explicit(&total_bytes, memory_order_relaxed);
}

#endif /* Py_GIL_DISABLED */
