/*
 * test_stress.c -- the engine against an oracle, under heavy concurrency.
 *
 * A simulated allocator hands out 512 fake addresses (384 in domain 0, 128
 * in numpy's domain 389047 with the same numeric values) from a LIFO free
 * list under one mutex, so a block freed by one thread is usually the next
 * one another thread receives.  8 producer threads allocate, free (any
 * thread's block), realloc (in place, moved, failed) and retrace (re-stamp
 * a block handed out again without an allocation, ftm_record_retrace) with
 * random sizes and one of 4 tracebacks each; the main thread queries
 * meanwhile.
 *
 *  (a) exact mode: every event is recorded INSIDE the allocator's lock, so
 *      the log order under that lock is the true order and the serial model
 *      (map, current, peak, reset_peak) is kept under the same lock.  The
 *      querier takes the lock, and the engine's full map, current and peak
 *      must equal the model at every query and at the end.  Retraces hit
 *      live blocks (the model's tag changes) and any address, free ones
 *      included (the model does not change: no trace may appear).
 *  (b) realistic mode: a free is recorded before the (simulated) real free
 *      and an alloc after the real alloc, OUTSIDE the lock, realloc with a
 *      ticket around the real realloc, a retrace while the thread owns the
 *      block (taken out of the live set, put back after).  After the joins
 *      the map and current must equal the allocator's live set; an observer
 *      sees every applied event in the engine's order and replays it: it
 *      must never free an untraced block nor allocate over a live one
 *      (except in-place reallocs, counted), every retrace must find its
 *      block traced, and its peak must equal the engine's.
 *  (c) lifecycle race: the same producers while the main thread clears,
 *      snapshots, stops and restarts; nothing lost, nothing crashes, and
 *      every trace left is a live block with the right size and traceback.
 * Every mode: 0 events lost, 0 misattributed (size and traceback of each
 * trace are those of the last allocating or retracing thread).
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fasttracemalloc.h"
#include "merger.h"
#include "stress_common.h"
#if FTM_ORDER_CLOCK
#include "order_clock.h"
#endif

#define NTHREADS 8
#define NADDR 512
#define NDOM0 384
#define NUMPY 389047u
#define NVARIANT 4
#define BASE_PTR ((uintptr_t)0x7f0000010000)

enum { ST_FREE = 0, ST_LIVE = 1, ST_BUSY = 2 };

typedef struct block {
    size_t size;
    uint64_t tag;
    int state;
    int live_pos;
} block;

static struct sim {
    pthread_mutex_t lock;
    block b[NADDR];
    int freelist[NADDR];
    int nfree;
    int live[NADDR];
    int nlive;
    size_t current, peak; /* mode (a) model */
    uint64_t inplace;     /* in-place reallocs (mode b) */
    uint64_t retraces;    /* retraces of owned blocks (mode b) */
    uint64_t ops;
} sim = {.lock = PTHREAD_MUTEX_INITIALIZER};

static _Atomic int producers_left;
static _Atomic uint64_t check_failures;
static char first_failure[256];

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            if (atomic_fetch_add(&check_failures, 1) == 0) {                  \
                snprintf(first_failure, sizeof(first_failure), __VA_ARGS__);  \
            }                                                                 \
        }                                                                     \
    } while (0)

static ftm_domain_t slot_domain(int k)
{
    return k < NDOM0 ? 0 : NUMPY;
}

static uintptr_t slot_ptr(int k)
{
    return BASE_PTR + (uintptr_t)(k < NDOM0 ? k : k - NDOM0) * 64;
}

static int slot_of(ftm_domain_t d, uintptr_t p)
{
    if (p < BASE_PTR || (p - BASE_PTR) % 64 != 0) {
        return -1;
    }
    size_t i = (p - BASE_PTR) / 64;
    if (d == 0) {
        return i < NDOM0 ? (int)i : -1;
    }
    if (d == NUMPY) {
        return i < NADDR - NDOM0 ? (int)(NDOM0 + i) : -1;
    }
    return -1;
}

static void sim_reset(void)
{
    memset(sim.b, 0, sizeof(sim.b));
    sim.nfree = 0;
    for (int k = NADDR - 1; k >= 0; k--) {
        sim.freelist[sim.nfree++] = k;
    }
    sim.nlive = 0;
    sim.current = sim.peak = 0;
    sim.inplace = 0;
    sim.retraces = 0;
    sim.ops = 0;
}

/* lock held */
static int sim_pop_free(void)
{
    if (sim.nfree == 0) {
        return -1;
    }
    int k = sim.freelist[--sim.nfree];
    sim.b[k].state = ST_BUSY;
    return k;
}

/* lock held: a free block of domain d near the top of the free list */
static int sim_pop_free_domain(ftm_domain_t d)
{
    for (int i = sim.nfree - 1; i >= 0 && i >= sim.nfree - 16; i--) {
        int k = sim.freelist[i];
        if (slot_domain(k) == d) {
            sim.freelist[i] = sim.freelist[--sim.nfree];
            sim.b[k].state = ST_BUSY;
            return k;
        }
    }
    return -1;
}

static void sim_push_free(int k)
{
    sim.b[k].state = ST_FREE;
    sim.freelist[sim.nfree++] = k;
}

static void sim_live_add(int k, size_t size, uint64_t tag)
{
    sim.b[k].state = ST_LIVE;
    sim.b[k].size = size;
    sim.b[k].tag = tag;
    sim.b[k].live_pos = sim.nlive;
    sim.live[sim.nlive++] = k;
}

static int sim_live_take(stress_rng *r)
{
    if (sim.nlive == 0) {
        return -1;
    }
    int pos = (int)stress_below(r, (uint32_t)sim.nlive);
    int k = sim.live[pos];
    int last = sim.live[--sim.nlive];
    sim.live[pos] = last;
    sim.b[last].live_pos = pos;
    sim.b[k].state = ST_BUSY;
    return k;
}

static void model_add(size_t add, size_t sub)
{
    sim.current = sim.current - sub + add;
    if (sim.current > sim.peak) {
        sim.peak = sim.current;
    }
}

typedef struct worker {
    int id;
    int mode;
    uint64_t ops;
    stress_rng rng;
    stress_tb tbs[NVARIANT];
    pthread_t th;
} worker;

static size_t rand_size(stress_rng *r)
{
    /* mostly small, sometimes large */
    return stress_below(r, 8) == 0 ? 1 + stress_below(r, 1 << 20)
                                   : 1 + stress_below(r, 512);
}

/* ---- mode (a): record under the allocator lock
 * ------------------------------ */

static void op_exact(worker *w)
{
    stress_rng *r = &w->rng;
    uint32_t v = stress_below(r, NVARIANT);
    uint64_t tag = (uint64_t)w->id * NVARIANT + v;
    ftm_traceback *tb = &w->tbs[v].tb;
    uint32_t what = stress_below(r, 100);
    pthread_mutex_lock(&sim.lock);
    if (what >= 92) { /* retrace: a live block, or any address */
        int k = -1;
        if (what < 96) {
            if (sim.nlive > 0) {
                k = sim.live[stress_below(r, (uint32_t)sim.nlive)];
            }
        } else {
            k = (int)stress_below(r, NADDR);
        }
        if (k >= 0) {
            ftm_record_retrace(slot_domain(k), slot_ptr(k), tb);
            if (sim.b[k].state == ST_LIVE) {
                sim.b[k].tag = tag;
            }
        }
    } else if (what < 43) {
        int k = sim_pop_free();
        if (k >= 0) {
            size_t size = rand_size(r);
            ftm_record_alloc(slot_domain(k), slot_ptr(k), size, tb);
            sim_live_add(k, size, tag);
            model_add(size, 0);
        }
    } else if (what < 81) {
        int k = sim_live_take(r);
        if (k >= 0) {
            ftm_record_free(slot_domain(k), slot_ptr(k));
            model_add(0, sim.b[k].size);
            sim_push_free(k);
        }
    } else {
        int k = sim_live_take(r);
        if (k >= 0) {
            ftm_domain_t d = slot_domain(k);
            uintptr_t p = slot_ptr(k);
            size_t old = sim.b[k].size;
            ftm_realloc_ticket tk = ftm_record_realloc_begin(d, p);
            uint32_t o = stress_below(r, 10);
            int k2 = o >= 5 ? sim_pop_free_domain(d) : -1;
            size_t size = rand_size(r);
            if (o == 0) { /* failed */
                ftm_record_realloc_end(tk, d, p, 0, size, tb);
                sim_live_add(k, old, sim.b[k].tag);
            } else if (k2 < 0) { /* in place */
                ftm_record_realloc_end(tk, d, p, p, size, tb);
                sim_live_add(k, size, tag);
                model_add(size, old);
            } else { /* moved */
                ftm_record_realloc_end(tk, d, p, slot_ptr(k2), size, tb);
                sim_push_free(k);
                sim_live_add(k2, size, tag);
                model_add(size, old);
            }
        }
    }
    sim.ops++;
    pthread_mutex_unlock(&sim.lock);
}

/* ---- mode (b)/(c): record outside the lock, around the real operation ----
 */

/* Widen the windows between a real operation and its record: with fewer
 * cores than threads, a thread would otherwise run many operations per time
 * slice without ever being interleaved there. */
static void maybe_yield(stress_rng *r)
{
    if (stress_below(r, 64) == 0) {
        sched_yield();
    }
}

static void op_real(worker *w)
{
    stress_rng *r = &w->rng;
    uint32_t v = stress_below(r, NVARIANT);
    uint64_t tag = (uint64_t)w->id * NVARIANT + v;
    ftm_traceback *tb = &w->tbs[v].tb;
    uint32_t what = stress_below(r, 100);
    if (what >= 92) {
        /* A retrace is recorded while the thread owns the block (CPython
         * hands it out from a free list): take it out of the live set so
         * nobody frees it meanwhile, put it back with the new tag. */
        pthread_mutex_lock(&sim.lock);
        int k = sim_live_take(r);
        pthread_mutex_unlock(&sim.lock);
        if (k < 0) {
            return;
        }
        maybe_yield(r);
        ftm_record_retrace(slot_domain(k), slot_ptr(k), tb);
        pthread_mutex_lock(&sim.lock);
        sim_live_add(k, sim.b[k].size, tag);
        sim.retraces++;
        pthread_mutex_unlock(&sim.lock);
    } else if (what < 43) {
        pthread_mutex_lock(&sim.lock);
        int k = sim_pop_free(); /* the real malloc */
        pthread_mutex_unlock(&sim.lock);
        if (k < 0) {
            return;
        }
        size_t size = rand_size(r);
        maybe_yield(r);
        ftm_record_alloc(slot_domain(k), slot_ptr(k), size, tb);
        pthread_mutex_lock(&sim.lock); /* the pointer becomes shareable */
        sim_live_add(k, size, tag);
        pthread_mutex_unlock(&sim.lock);
    } else if (what < 81) {
        pthread_mutex_lock(&sim.lock); /* take any thread's block */
        int k = sim_live_take(r);
        pthread_mutex_unlock(&sim.lock);
        if (k < 0) {
            return;
        }
        ftm_record_free(slot_domain(k), slot_ptr(k));
        maybe_yield(r);
        pthread_mutex_lock(&sim.lock); /* the real free */
        sim_push_free(k);
        pthread_mutex_unlock(&sim.lock);
    } else {
        pthread_mutex_lock(&sim.lock);
        int k = sim_live_take(r);
        pthread_mutex_unlock(&sim.lock);
        if (k < 0) {
            return;
        }
        ftm_domain_t d = slot_domain(k);
        uintptr_t p = slot_ptr(k);
        ftm_realloc_ticket tk = ftm_record_realloc_begin(d, p);
        uint32_t o = stress_below(r, 10);
        size_t size = rand_size(r);
        int k2 = -1;
        pthread_mutex_lock(&sim.lock); /* the real realloc */
        if (o >= 5) {
            k2 = sim_pop_free_domain(d);
            if (k2 >= 0) {
                sim_push_free(k); /* old block is reusable at once */
            }
        }
        pthread_mutex_unlock(&sim.lock);
        if (o == 0) {
            ftm_record_realloc_end(tk, d, p, 0, size, tb);
            pthread_mutex_lock(&sim.lock);
            sim_live_add(k, sim.b[k].size, sim.b[k].tag);
            pthread_mutex_unlock(&sim.lock);
        } else if (k2 < 0) {
            ftm_record_realloc_end(tk, d, p, p, size, tb);
            pthread_mutex_lock(&sim.lock);
            sim_live_add(k, size, tag);
            sim.inplace++;
            pthread_mutex_unlock(&sim.lock);
        } else {
            ftm_record_realloc_end(tk, d, p, slot_ptr(k2), size, tb);
            pthread_mutex_lock(&sim.lock);
            sim_live_add(k2, size, tag);
            pthread_mutex_unlock(&sim.lock);
        }
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (uint64_t i = 0; i < w->ops; i++) {
        if (w->mode == 0) {
            op_exact(w);
        } else {
            op_real(w);
        }
    }
    atomic_fetch_sub(&producers_left, 1);
    return NULL;
}

static worker workers[NTHREADS];
static int nstarted; /* workers started and not joined yet */

static void start_workers(int mode, uint64_t ops_each)
{
    atomic_store(&producers_left, NTHREADS);
    for (int i = 0; i < NTHREADS; i++) {
        worker *w = &workers[i];
        w->id = i + 1;
        w->mode = mode;
        w->ops = ops_each;
        w->rng.s = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1) + (uint64_t)mode;
        for (int v = 0; v < NVARIANT; v++) {
            stress_tb_init(&w->tbs[v], (uint64_t)w->id * NVARIANT + v);
        }
        assert_int_equal(pthread_create(&w->th, NULL, worker_main, w), 0);
        nstarted = i + 1;
    }
}

static void join_workers(void)
{
    for (int i = 0; i < nstarted; i++) {
        pthread_join(workers[i].th, NULL);
    }
    nstarted = 0;
}

/* cmocka teardown, run after every subtest whether it passed or failed: a
 * failed assertion must not leave workers running, the observer installed
 * or the engine started, or every later subtest fails in cascade with a
 * misleading message. */
static int teardown(void **state)
{
    (void)state;
    join_workers();
    ftm_merger_set_observer(NULL, NULL);
    ftm_stop();
    return 0;
}

/* Compare the engine's full map with the allocator's live set (lock held
 * or producers quiescent).  exact_counters: also current/peak vs model. */
static void compare_with_sim(bool exact_counters)
{
    size_t cur = 0, peak = 0;
    ftm_get_traced_memory(&cur, &peak);
    size_t live_bytes = 0;
    for (int i = 0; i < sim.nlive; i++) {
        live_bytes += sim.b[sim.live[i]].size;
    }
    CHECK(cur == live_bytes, "current %zu != live bytes %zu", cur, live_bytes);
    if (exact_counters) {
        CHECK(cur == sim.current, "current %zu != model %zu", cur,
              sim.current);
        CHECK(peak == sim.peak, "peak %zu != model %zu", peak, sim.peak);
    }
    ftm_snapshot snap;
    CHECK(ftm_take_snapshot(&snap) == FTM_OK, "snapshot failed");
    CHECK(snap.ntraces == (size_t)sim.nlive, "ntraces %zu != live %d",
          snap.ntraces, sim.nlive);
    for (size_t i = 0; i < snap.ntraces; i++) {
        const ftm_trace *t = &snap.traces[i];
        int k = slot_of(t->domain, t->ptr);
        CHECK(k >= 0, "trace of unknown address %#lx", (unsigned long)t->ptr);
        if (k < 0) {
            continue;
        }
        CHECK(sim.b[k].state == ST_LIVE, "trace of a non-live block %d", k);
        CHECK(t->size == sim.b[k].size, "block %d size %zu != %zu", k, t->size,
              sim.b[k].size);
        uint64_t tag = stress_tag_of(t->tb);
        CHECK(tag == sim.b[k].tag, "block %d traceback tag %llu != %llu", k,
              (unsigned long long)tag, (unsigned long long)sim.b[k].tag);
    }
    ftm_snapshot_release(&snap);
}

static void report(const char *name, uint64_t events, unsigned queries)
{
    ftm_stats st;
    ftm_get_stats(&st);
    printf("[ stress   ] %s: %llu events, %u queries, full waits %llu, "
           "producer drains %llu, lost %llu\n",
           name, (unsigned long long)events, queries,
           (unsigned long long)st.ring_full_waits,
           (unsigned long long)st.producer_drains,
           (unsigned long long)st.events_lost);
}

/* state: NULL, or non-NULL for a session without a merger thread
 * (ftm_config.no_merger_thread: the producers whose rings fill, the
 * exiting threads and the queries do all the merging). */
static void test_exact_under_lock(void **state)
{
    int no_merger = *state != NULL;
    sim_reset();
    atomic_store(&check_failures, 0);
    first_failure[0] = 0;
    ftm_config cfg = {.no_merger_thread = no_merger};
    assert_int_equal(ftm_start(&cfg), FTM_OK);
    ftm_stats st0;
    ftm_get_stats(&st0);
    start_workers(0, stress_scaled(500000));
    stress_rng qr = {12345};
    unsigned queries = 0;
    while (atomic_load(&producers_left) > 0 &&
           atomic_load(&check_failures) == 0) {
        stress_sleep_us(stress_below(&qr, 300));
        pthread_mutex_lock(&sim.lock);
        switch (stress_below(&qr, 4)) {
        case 0:
            ftm_flush();
            break;
        case 1: {
            int k = (int)stress_below(&qr, NADDR);
            ftm_trace t;
            int found = ftm_get_trace(slot_domain(k), slot_ptr(k), &t);
            CHECK(found == (sim.b[k].state == ST_LIVE), "get_trace %d", k);
            if (found) {
                CHECK(t.size == sim.b[k].size, "get_trace size");
            }
            break;
        }
        case 2:
            ftm_reset_peak();
            sim.peak = sim.current;
            break;
        default:
            break;
        }
        compare_with_sim(true);
        queries++;
        pthread_mutex_unlock(&sim.lock);
    }
    join_workers();
    assert_string_equal(first_failure, "");
    assert_int_equal(atomic_load(&check_failures), 0);
    compare_with_sim(true);
    assert_int_equal(atomic_load(&check_failures), 0);
    ftm_stats st;
    ftm_get_stats(&st);
    assert_int_equal(st.events_lost, st0.events_lost);
    assert_int_equal(st.traces_lost_oom, 0);
    assert_int_equal(st.tracebacks_lost_oom, 0);
    assert_int_equal(st.events_recorded - st0.events_recorded,
                     st.events_applied - st0.events_applied);
    assert_int_equal(st.merger_thread, no_merger ? 0 : 1);
    report(no_merger ? "exact (a), no merger thread" : "exact (a)",
           st.events_applied - st0.events_applied, queries);
    ftm_stop();
}

/* ---- observer for mode (b) -----------------------------------------------
 */

static struct obs {
    uint8_t live[NADDR];
    size_t size[NADDR];
    size_t current, peak;
    uint64_t free_untraced, alloc_over_live, foreign, events;
    uint64_t retrace_traced, retrace_untraced;
} obs;

static void observe(const ftm_event *e, void *arg)
{
    (void)arg;
    obs.events++;
    if (e->kind == FTM_EV_NOP) {
        return;
    }
    int k = slot_of(e->domain, (uintptr_t)e->ptr);
    if (k < 0) {
        obs.foreign++;
        return;
    }
    if (e->kind == FTM_EV_ALLOC) {
        if (obs.live[k]) {
            obs.alloc_over_live++;
            obs.current -= obs.size[k];
        }
        obs.live[k] = 1;
        obs.size[k] = (size_t)e->size;
        obs.current += (size_t)e->size;
        if (obs.current > obs.peak) {
            obs.peak = obs.current;
        }
    } else if (e->kind == FTM_EV_FREE) {
        if (!obs.live[k]) {
            obs.free_untraced++;
        } else {
            obs.live[k] = 0;
            obs.current -= obs.size[k];
        }
    } else if (e->kind == FTM_EV_RETRACE) {
        /* re-stamps only: no change to the live set or the counters */
        if (obs.live[k]) {
            obs.retrace_traced++;
        } else {
            obs.retrace_untraced++;
        }
    }
}

static void test_realistic_order(void **state)
{
    (void)state;
    sim_reset();
    memset(&obs, 0, sizeof(obs));
    atomic_store(&check_failures, 0);
    first_failure[0] = 0;
    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_merger_set_observer(observe, NULL);
    ftm_stats st0;
    ftm_get_stats(&st0);
    /* ~8 x 1.3M operations, >= 10M events in Release */
    start_workers(1, stress_scaled(1300000));
    stress_rng qr = {777};
    unsigned queries = 0;
    while (atomic_load(&producers_left) > 0) {
        stress_sleep_us(stress_below(&qr, 500));
        size_t cur = 0, peak = 0;
        switch (stress_below(&qr, 4)) {
        case 0:
            ftm_flush();
            break;
        case 1:
            ftm_get_traced_memory(&cur, &peak);
            CHECK(peak >= cur, "peak %zu < current %zu", peak, cur);
            break;
        case 2: {
            int k = (int)stress_below(&qr, NADDR);
            ftm_trace t;
            if (ftm_get_trace(slot_domain(k), slot_ptr(k), &t)) {
                CHECK(t.domain == slot_domain(k) && t.ptr == slot_ptr(k),
                      "get_trace key");
            }
            break;
        }
        default: {
            ftm_snapshot snap;
            CHECK(ftm_take_snapshot(&snap) == FTM_OK, "snapshot");
            CHECK(snap.ntraces <= NADDR, "too many traces %zu", snap.ntraces);
            for (size_t i = 0; i < snap.ntraces; i++) {
                CHECK(slot_of(snap.traces[i].domain, snap.traces[i].ptr) >= 0,
                      "unknown address in snapshot");
                uint64_t tag = stress_tag_of(snap.traces[i].tb);
                CHECK(tag >= NVARIANT && tag < (NTHREADS + 1) * NVARIANT,
                      "bad traceback in snapshot");
            }
            ftm_snapshot_release(&snap);
        }
        }
        queries++;
    }
    join_workers();
    ftm_flush();
    pthread_mutex_lock(&sim.lock);
    compare_with_sim(false);
    pthread_mutex_unlock(&sim.lock);
    assert_string_equal(first_failure, "");
    assert_int_equal(atomic_load(&check_failures), 0);

    size_t cur, peak;
    ftm_get_traced_memory(&cur, &peak);
    ftm_stats st;
    ftm_get_stats(&st);
    ftm_merger_set_observer(NULL, NULL);
    /* the engine's order never breaks an address's true history */
    assert_int_equal(obs.free_untraced, 0);
    assert_int_equal(obs.alloc_over_live, sim.inplace);
    assert_int_equal(obs.foreign, 0);
    /* a retrace of an owned block always lands on its live trace */
    assert_int_equal(obs.retrace_untraced, 0);
    assert_int_equal(obs.retrace_traced, sim.retraces);
    assert_true(sim.retraces > 0);
    assert_int_equal(obs.events, st.events_applied - st0.events_applied);
    /* and the counters are the serial replay of that order */
    assert_int_equal(obs.current, cur);
    assert_int_equal(obs.peak, peak);
    assert_true(peak >= cur);
    assert_int_equal(st.events_lost, st0.events_lost);
    assert_int_equal(st.traces_lost_oom, 0);
    assert_int_equal(st.events_recorded - st0.events_recorded,
                     st.events_applied - st0.events_applied);
    report("realistic (b)", st.events_applied - st0.events_applied, queries);
    ftm_stop();
}

static void test_lifecycle_race(void **state)
{
    (void)state;
    sim_reset();
    atomic_store(&check_failures, 0);
    first_failure[0] = 0;
    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_stats st0;
    ftm_get_stats(&st0);
    uint64_t ig0 = st0.events_ignored;
    assert_int_equal(ig0, ftm_engine_events_ignored());
    start_workers(1, stress_scaled(300000));
    stress_rng qr = {4242};
    unsigned cycles = 0;
    while (atomic_load(&producers_left) > 0) {
        stress_sleep_us(stress_below(&qr, 300));
        switch (stress_below(&qr, 5)) {
        case 0:
            ftm_clear();
            break;
        case 1:
            ftm_stop();
            stress_sleep_us(stress_below(&qr, 100));
            CHECK(ftm_start(NULL) == FTM_OK, "restart");
            break;
        case 2: {
            ftm_snapshot snap;
            CHECK(ftm_take_snapshot(&snap) == FTM_OK, "snapshot");
            ftm_clear(); /* the snapshot's tracebacks stay readable */
            for (size_t i = 0; i < snap.ntraces; i++) {
                uint64_t tag = stress_tag_of(snap.traces[i].tb);
                CHECK(tag >= NVARIANT && tag < (NTHREADS + 1) * NVARIANT,
                      "pinned traceback unreadable");
            }
            ftm_snapshot_release(&snap);
            break;
        }
        case 3:
            ftm_reset_peak();
            break;
        default:
            ftm_flush();
        }
        cycles++;
    }
    join_workers();
    ftm_flush();
    /* Whatever survived the clears must be a live block, exactly. */
    ftm_snapshot snap;
    assert_int_equal(ftm_take_snapshot(&snap), FTM_OK);
    pthread_mutex_lock(&sim.lock);
    for (size_t i = 0; i < snap.ntraces; i++) {
        int k = slot_of(snap.traces[i].domain, snap.traces[i].ptr);
        CHECK(k >= 0 && sim.b[k].state == ST_LIVE, "stale trace");
        if (k >= 0) {
            CHECK(snap.traces[i].size == sim.b[k].size, "size");
            CHECK(stress_tag_of(snap.traces[i].tb) == sim.b[k].tag, "tag");
        }
    }
    pthread_mutex_unlock(&sim.lock);
    ftm_snapshot_release(&snap);
    assert_string_equal(first_failure, "");
    assert_int_equal(atomic_load(&check_failures), 0);
    ftm_stop(); /* drains (and drops) whatever was recorded while stopped */
    ftm_stats st;
    ftm_get_stats(&st);
    assert_int_equal(st.events_ignored, ftm_engine_events_ignored());
    uint64_t ignored = st.events_ignored - ig0;
    assert_int_equal(st.events_lost, st0.events_lost);
    assert_int_equal(st.events_recorded - st0.events_recorded,
                     st.events_applied - st0.events_applied + ignored);
    printf("[ stress   ] lifecycle (c): %u lifecycle/query cycles, %llu "
           "events, %llu ignored (recorded while stopped)\n",
           cycles,
           (unsigned long long)(st.events_recorded - st0.events_recorded),
           (unsigned long long)ignored);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_exact_under_lock, NULL,
                                                 teardown, NULL),
        cmocka_unit_test_prestate_setup_teardown(
            test_exact_under_lock, NULL, teardown, (void *)"no merger thread"),
        cmocka_unit_test_teardown(test_realistic_order, teardown),
        cmocka_unit_test_teardown(test_lifecycle_race, teardown),
    };
#if FTM_ORDER_CLOCK
    printf("[ order    ] clock order, %s source\n", ftm_clock_source_name());
#endif
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
#if FTM_ORDER_CLOCK
    /* equal stamps met in the merge (order_clock.h: only between events
     * unordered by happens-before) and membarrier calls, for the record */
    printf("[ order    ] %llu ties, %llu heavy fences\n",
           (unsigned long long)ftm_merger_g.ties,
           (unsigned long long)ftm_merger_g.fences);
#endif
    return rc;
}
