/*
 * thread_registry.c -- the producers' thread-local state, the list of rings
 * and their reclamation (owner: ENGINE-FLOW).  Contract in
 * thread_registry.h.
 */
#include "thread_registry.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

__thread ftm_tls ftm_tls_self;

static struct {
    pthread_mutex_t lock;
    ftm_ring *head;
    _Atomic uint64_t threads;
    uint64_t rings_reclaimed;
    uint64_t reclaimed_full_waits;
    uint64_t reclaimed_drains;
    pthread_key_t key;
    int key_ok;
} registry = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static _Atomic(void (*)(void)) exit_hook; /* thread_registry.h */

void ftm_registry_set_exit_hook(void (*hook)(void))
{
    atomic_store_explicit(&exit_hook, hook, memory_order_relaxed);
}

/* Runs on the exiting thread, after its last recorded event (unless another
 * destructor records again: then ftm_ring_attach sets the key once more and
 * this runs in a later round). */
static void ring_thread_exit(void *value)
{
    ftm_ring *r = value;
    if (ftm_tls_self.ring == r) {
        ftm_tls_self.ring = NULL;
    }
    atomic_store_explicit(&r->closed, 1, memory_order_release);
    void (*hook)(void) =
        atomic_load_explicit(&exit_hook, memory_order_relaxed);
    if (hook != NULL) {
        hook();
    }
}

static void key_create(void)
{
    registry.key_ok = pthread_key_create(&registry.key, ring_thread_exit) == 0;
}

ftm_ring *ftm_ring_attach(uint32_t capacity)
{
    if (capacity < FTM_RING_MIN_CAPACITY || capacity > FTM_RING_MAX_CAPACITY ||
        (capacity & (capacity - 1)) != 0) {
        capacity = FTM_RING_DEFAULT_CAPACITY;
    }
    pthread_once(&key_once, key_create);

    ftm_ring *r = ftm_ring_new(capacity, 0);
    if (r == NULL) {
        return NULL;
    }
    r->thread_id = (uint32_t)(atomic_fetch_add_explicit(&registry.threads, 1,
                                                        memory_order_relaxed) +
                              1);

    /* Without the key the ring could never be reclaimed; it still works
     * (it is freed on no path, which only leaks engine memory, counted in
     * ftm_engine_memory). */
    if (registry.key_ok) {
        (void)pthread_setspecific(registry.key, r);
    }

    pthread_mutex_lock(&registry.lock);
    r->next = registry.head;
    registry.head = r;
    pthread_mutex_unlock(&registry.lock);

    ftm_tls_self.ring = r;
    return r;
}

void ftm_registry_lock(void)
{
    pthread_mutex_lock(&registry.lock);
}

void ftm_registry_unlock(void)
{
    pthread_mutex_unlock(&registry.lock);
}

ftm_ring *ftm_registry_first(void)
{
    return registry.head;
}

void ftm_registry_remove(ftm_ring *prev, ftm_ring *r)
{
    if (prev == NULL) {
        registry.head = r->next;
    } else {
        prev->next = r->next;
    }
    registry.rings_reclaimed++;
    registry.reclaimed_full_waits +=
        atomic_load_explicit(&r->full_waits, memory_order_relaxed);
    registry.reclaimed_drains +=
        atomic_load_explicit(&r->drains, memory_order_relaxed);
    ftm_ring_free(r);
}

void ftm_registry_stats_get(ftm_registry_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->threads_registered =
        atomic_load_explicit(&registry.threads, memory_order_relaxed);
    out->rings_reclaimed = registry.rings_reclaimed;
    out->full_waits = registry.reclaimed_full_waits;
    out->drains = registry.reclaimed_drains;
    for (ftm_ring *r = registry.head; r != NULL; r = r->next) {
        out->live_rings++;
        out->full_waits +=
            atomic_load_explicit(&r->full_waits, memory_order_relaxed);
        out->drains += atomic_load_explicit(&r->drains, memory_order_relaxed);
        out->pending += ck_ring_size(&r->ck);
        out->untouched_bytes += ftm_ring_untouched_bytes(r);
    }
}

void ftm_registry_atfork_child(void)
{
    pthread_mutex_init(&registry.lock, NULL);
}
