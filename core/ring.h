/*
 * ring.h -- one thread's event ring (owner: ENGINE-FLOW).
 *
 * Owns: the event record (ftm_event) and the ring that carries a thread's
 * events to the merger: a Concurrency Kit SPSC ring of fixed-size events
 * stored by value, plus the counters and the parked slot of that thread.
 * Which thread owns which ring, and when a ring is freed, is
 * thread_registry.h's business.
 *
 * Threads
 *   - Producer side (ftm_ring_try_push, ftm_ring_count): only the ring's
 *     owner thread.  No lock, no allocation, no atomic read-modify-write.
 *   - Consumer side (ftm_ring_consumer_*): whoever holds the engine's apply
 *     lock (the merger thread, a query, or a producer helping while its ring
 *     is full).  The apply lock makes the consumer role single-threaded and
 *     carries the consumer's private state from one holder to the next.
 *
 * Memory-ordering contract
 *   ck.p_tail    written by the owner (ck: store fence, then store), read by
 *                the consumer (load, then load fence).
 *   ck.c_head    written by the consumer after it copied the events out
 *                (release fence, then store), read by the owner before it
 *                reuses a slot.
 *   buf[]        slots between c_head and p_tail belong to the consumer,
 *                the others to the owner; the two indices hand them over.
 *   closed       owner: one atomic release store at thread exit (its LAST
 *                access to the ring); consumer: acquire load, then drains,
 *                then may free.
 *   full_waits,
 *   drains       written only by the owner (relaxed load + relaxed store,
 *                no RMW), read relaxed by ftm_get_stats.
 *   touched      slots the ring ever used, capped at capacity: written by
 *                the consumer (whoever holds the apply lock: one at a
 *                time) with relaxed load + store, read relaxed by the
 *                registry's memory figure.  A slot counts once its event
 *                was consumed; the figure adds the pending ones.
 *   parked,
 *   has_parked   see the field.
 *   next         the registry lock (thread_registry.h).
 *   buf, capacity, thread_id, alloc_base, alloc_bytes, ck.mask
 *                written once by the creating thread before the ring is
 *                linked into the registry (under its lock), read-only after.
 *   ThreadSanitizer does not see ck's inline-asm loads and stores, so the
 *   two hand-overs are also announced to it (__tsan_release/acquire on the
 *   index addresses) -- annotations of real synchronisation, not
 *   suppressions.
 *
 * Why not ck_ring_dequeue_spsc on the consumer side: the consumer copies a
 * run of events straight into the reorder window and publishes c_head once
 * per run (ck 0.7.1 has no batch dequeue), and it must stop at the first
 * event that does not fit the window without consuming it (no peek in ck).
 * ftm_ring_consumer_* follow ck's own SPSC protocol on ck's ring fields.
 */
#ifndef FTM_CORE_RING_H
#define FTM_CORE_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ck_pr.h>
#include <ck_ring.h>

#include "fasttracemalloc.h"

/* ---- ThreadSanitizer annotations ---------------------------------------- */
#if defined(__SANITIZE_THREAD__)
#define FTM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FTM_TSAN 1
#endif
#endif
#ifdef FTM_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define FTM_TSAN_ACQUIRE(a) __tsan_acquire((void *)(a))
#define FTM_TSAN_RELEASE(a) __tsan_release((void *)(a))
#else
#define FTM_TSAN_ACQUIRE(a) ((void)0)
#define FTM_TSAN_RELEASE(a) ((void)0)
#endif

/* ---- events --------------------------------------------------------------
 */

enum ftm_event_kind {
    FTM_EV_NOP = 0,     /* a taken number with nothing to apply */
    FTM_EV_ALLOC = 1,   /* insert or replace (domain, ptr) -> {size, tb} */
    FTM_EV_FREE = 2,    /* remove (domain, ptr) if traced */
    FTM_EV_RETRACE = 3, /* if (domain, ptr) is traced, set its tb (size 0,
                         * unused); never inserts, never changes sizes */
};

#define FTM_EVENT_MAX_SIZE ((UINT64_C(1) << 56) - 1)

/* 32 bytes, two per cache line.  The 32-bit thread id of an event is the
 * id of the ring it came from (ftm_ring.thread_id): a ring has exactly one
 * producer, so the id need not be stored per event.  The size field has 56
 * bits (64 PiB; x86-64 and AArch64 address spaces are far smaller). */
typedef struct ftm_event {
    uint64_t seq;       /* from ftm_seq_take(); 0 = empty window slot */
    uint64_t ptr;       /* block address */
    uint64_t size : 56; /* block size (ALLOC; 0 otherwise) */
    uint64_t kind : 8;  /* enum ftm_event_kind */
    ftm_domain_t domain;
    ftm_tb_id tb; /* ALLOC, RETRACE: pool-local id of the current
                   * generation, or NONE */
} ftm_event;
_Static_assert(sizeof(ftm_event) == 32, "ftm_event must stay 32 bytes");

CK_RING_PROTOTYPE(ftm_event, ftm_event)

/* ---- rings ---------------------------------------------------------------
 */

#define FTM_RING_DEFAULT_CAPACITY 4096u
#define FTM_RING_MIN_CAPACITY 2u
#define FTM_RING_MAX_CAPACITY (1u << 20)

typedef struct ftm_ring {
    ck_ring_t ck;                /* ck's indices, cache-line separated */
    struct ftm_event *buf;       /* capacity slots; usable capacity - 1 */
    uint32_t capacity;           /* power of two */
    uint32_t thread_id;          /* 1, 2, ... in registration order */
    _Atomic uint32_t closed;     /* see contract above */
    _Atomic uint64_t full_waits; /* owner-written */
    _Atomic uint64_t drains;     /* owner-written */
    _Atomic uint32_t touched;    /* consumer-written, see contract */
    /* The event a producer is waiting to push while its ring is full, for
     * a fork child to recover if the thread vanishes mid-wait.  Owner:
     * writes parked, then has_parked = 1 (release); clears it once pushed.
     * Read only in a fork child (single-threaded, a copy of memory). */
    struct ftm_event parked;
    _Atomic uint32_t has_parked;
    struct ftm_ring *next; /* registry list (registry lock) */
    void *alloc_base;   /* the header's block, as ftm_mem_alloc returned it */
    size_t alloc_bytes; /* its size (buf is a block of its own) */
#if FTM_ORDER_CLOCK
    /* order_clock.h: the in-flight marker on a line of its own, with the
     * owner's private stamp state beside it (the merger reads only
     * inflight of this line). */
    alignas(64) _Atomic uint64_t inflight;
    uint64_t last_stamp;           /* owner only */
    _Atomic uint64_t ticket_stamp; /* owner; see order_clock.h */
    char pad_inflight[64 - 3 * sizeof(uint64_t)];
    /* consumer only (apply lock): this step's ready run */
    unsigned c_n, c_i;
    bool c_closed;
#endif
} ftm_ring;

/* Owner: push one event; false if the ring is full. */
static inline bool ftm_ring_try_push(ftm_ring *r, const ftm_event *ev)
{
    ftm_event *slot = ck_ring_enqueue_reserve_spsc_ftm_event(&r->ck, r->buf);
    if (slot == NULL) {
        return false;
    }
    FTM_TSAN_ACQUIRE(&r->ck.c_head); /* the consumer is done with slot */
    *slot = *ev;
    FTM_TSAN_RELEASE(&r->ck.p_tail);
    ck_ring_enqueue_commit_spsc(&r->ck);
    return true;
}

/* Owner: count one "ring was full" / "helped the merger" (no RMW). */
static inline void ftm_ring_count(_Atomic uint64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* Consumer: number of events ready to read (acquire).  Read them with
 * ftm_ring_at(r, 0 .. n-1), then hand the first k back with
 * ftm_ring_consumer_release(r, k). */
static inline unsigned ftm_ring_consumer_begin(ftm_ring *r)
{
    unsigned c = r->ck.c_head;
    unsigned p = ck_pr_load_uint(&r->ck.p_tail);
    if (c == p) {
        return 0;
    }
    ck_pr_fence_load();
    FTM_TSAN_ACQUIRE(&r->ck.p_tail);
    return p - c;
}

static inline const ftm_event *ftm_ring_at(const ftm_ring *r, unsigned i)
{
    return &r->buf[(r->ck.c_head + i) & r->ck.mask];
}

static inline void ftm_ring_consumer_release(ftm_ring *r, unsigned k)
{
    FTM_TSAN_RELEASE(&r->ck.c_head);
    ck_pr_fence_release(); /* copies done before the slots are handed back */
    ck_pr_store_uint(&r->ck.c_head, r->ck.c_head + k);
    uint32_t t = atomic_load_explicit(&r->touched, memory_order_relaxed);
    if (t < r->capacity) {
        uint32_t room = r->capacity - t;
        atomic_store_explicit(&r->touched, k < room ? t + k : r->capacity,
                              memory_order_relaxed);
    }
}

/* Bytes of the ring's buffer that no event ever used (registry lock). */
static inline size_t ftm_ring_untouched_bytes(ftm_ring *r)
{
    size_t used = atomic_load_explicit(&r->touched, memory_order_relaxed) +
                  (size_t)ck_ring_size(&r->ck);
    return used >= r->capacity
               ? 0
               : (size_t)(r->capacity - used) * sizeof(ftm_event);
}

static inline bool ftm_ring_is_closed(ftm_ring *r)
{
    return atomic_load_explicit(&r->closed, memory_order_acquire) != 0;
}

/* Engine memory for a ring of `capacity` events (a power of two in
 * [FTM_RING_MIN_CAPACITY, FTM_RING_MAX_CAPACITY]); NULL when out of
 * memory. */
ftm_ring *ftm_ring_new(uint32_t capacity, uint32_t thread_id);
void ftm_ring_free(ftm_ring *r);

#endif /* FTM_CORE_RING_H */
