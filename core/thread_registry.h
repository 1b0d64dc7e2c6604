/*
 * thread_registry.h -- which thread records into which ring
 * (owner: ENGINE-FLOW).
 *
 * Owns: the producer's thread-local state (its ring, pause depth, open
 * realloc ticket), the list of every ring that may still hold events, the
 * pthread key whose destructor closes a ring when its thread exits, and the
 * counters of rings registered and reclaimed.
 *
 * Lifetime of a ring: created (ring.h, engine memory) on its thread's first
 * recorded event and found again through the __thread pointer.  At thread
 * exit the key destructor marks it closed -- the owner's last access -- and
 * forgets it; the consumer (merger.c, apply lock held) drains a closed ring
 * and then unlinks and frees it (rings_reclaimed).  A thread that records
 * again after its destructor ran (other TLS destructors may free memory)
 * gets a fresh ring and sets the key again; destructors run for several
 * rounds, so that ring is closed as well.  Rings of live threads are kept
 * across sessions (a producer racing with ftm_stop may still push into its
 * ring, so it cannot be freed under it): capacity * 32 bytes each, 128 KiB
 * at the default 4096.
 *
 * Threads
 *   ftm_tls_self          its own thread only.
 *   ftm_ring_attach       any thread, for itself (takes the registry lock).
 *   ftm_registry_*        the consumer, registry lock held (lock order:
 *                         lifecycle -> apply -> registry).
 *
 * Shared state (thread_registry.c)
 *   the list, rings_reclaimed, reclaimed_* sums   registry lock.
 *   threads (ids handed out)                      relaxed atomic fetch_add.
 *   key, key_ok   written once inside pthread_once (key_once), which orders
 *                 them before every later use.
 */
#ifndef FTM_CORE_THREAD_REGISTRY_H
#define FTM_CORE_THREAD_REGISTRY_H

#include <stdint.h>

#include "ring.h"

typedef struct ftm_tls {
    ftm_ring *ring;  /* this thread's ring, NULL until the first event */
    int pause;       /* ftm_thread_pause depth */
    int ticket_open; /* between realloc_begin and realloc_end */
} ftm_tls;

extern __thread ftm_tls ftm_tls_self;

/* Slow path: create this thread's ring (capacity events; an invalid value
 * means the default) and register it.  NULL if engine memory is
 * exhausted. */
ftm_ring *ftm_ring_attach(uint32_t capacity);

void ftm_registry_lock(void);
void ftm_registry_unlock(void);
/* First ring of the list (registry lock held); follow ring->next. */
ftm_ring *ftm_registry_first(void);
/* Unlink r (prev is its predecessor or NULL) and free it (registry lock
 * held; r closed and drained, or its thread vanished in a fork). */
void ftm_registry_remove(ftm_ring *prev, ftm_ring *r);

typedef struct ftm_registry_stats {
    uint64_t threads_registered;
    uint64_t rings_reclaimed;
    uint64_t full_waits; /* summed over live and reclaimed rings */
    uint64_t drains;
    uint64_t pending; /* events pushed but not yet consumed */
    uint64_t live_rings;
    /* ring buffer bytes of live rings that no event ever used: allocated,
     * never written, so not resident (ftm_engine_memory leaves them out) */
    uint64_t untouched_bytes;
} ftm_registry_stats;
/* Registry lock held. */
void ftm_registry_stats_get(ftm_registry_stats *out);

/* fork: the child re-initialises the registry lock (the prepare handler
 * held it).  Rings of vanished threads are removed by the caller. */
void ftm_registry_atfork_child(void);

/* Called by a registered thread as it exits, right after its ring is
 * closed (no lock held, the thread's last event pushed): the engine uses
 * it to drain and free that ring when no merger thread runs.  Set once
 * (engine.c, before any ring exists); relaxed atomic pointer, NULL = no
 * hook. */
void ftm_registry_set_exit_hook(void (*hook)(void));

#endif /* FTM_CORE_THREAD_REGISTRY_H */
