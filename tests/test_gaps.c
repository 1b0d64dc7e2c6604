/*
 * test_gaps.c -- the exact oracle while the merger keeps waiting on missing
 * sequence numbers.
 *
 * test_stress's exact mode records every event inside the simulated
 * allocator's lock, so a number is almost always pushed before the next
 * one is taken and the merger seldom has to wait for a missing number.
 * Yet that wait is where ordering bugs hide: an engine that applied a FREE
 * while an earlier number was still missing would give a wrong peak, and
 * nothing else would show it.  Here some producers take a realloc ticket
 * (a number) inside the lock and then sleep OUTSIDE it before pushing, as
 * a slow real realloc would, while the others keep recording numbers after
 * it; the reorder window is made tiny (2 and 16 events, through the
 * FTM_TEST_HOOKS build of the engine, see core/merger.h) as well as the
 * default, and rings small, so events pile up behind every gap.
 *
 * The model.  Every number is taken under the allocator's lock (the held
 * tickets too: only their push happens outside), so the lock's order IS
 * the sequence order, and a serial model of the map, current and peak kept
 * under that lock is exactly what the engine must compute.  A held ticket
 * is an in-place resize (ALLOC at the ticket's number: the model applies it
 * when the ticket is taken) or a failed realloc (a NOP).  Moved reallocs
 * take a second number in realloc_end, so they run entirely inside the
 * lock (a ticket holder must not wait for that lock: a query holding it
 * waits for the ticket -- the embedder contract of engine.c).  The querier
 * holds the lock while it queries, flushes and resets the peak; every
 * query must equal the model: current, peak, the looked-up trace, and
 * (every 8th) the whole map with sizes and tracebacks.
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

#define NTHREADS 6
#define NADDR 256
#define NVARIANT 3
#define BASE_PTR ((uintptr_t)0x7e0000020000)

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
    int held; /* blocks inside a held ticket: traced, not in live[] */
    size_t current, peak;
    uint64_t numbers; /* sequence numbers taken by producers */
    uint64_t tickets_held;
} sim = {.lock = PTHREAD_MUTEX_INITIALIZER};

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

static uintptr_t ptr_of(int k)
{
    return BASE_PTR + (uintptr_t)k * 64;
}

static void sim_reset(void)
{
    memset(sim.b, 0, sizeof(sim.b));
    sim.nfree = 0;
    for (int k = NADDR - 1; k >= 0; k--) {
        sim.freelist[sim.nfree++] = k;
    }
    sim.nlive = 0;
    sim.held = 0;
    sim.current = sim.peak = 0;
    sim.numbers = 0;
    sim.tickets_held = 0;
}

/* ---- the model (lock held) ----------------------------------------------
 */

static void model_add(size_t add, size_t sub)
{
    sim.current = sim.current - sub + add;
    if (sim.current > sim.peak) {
        sim.peak = sim.current;
    }
}

static int pop_free(void)
{
    if (sim.nfree == 0) {
        return -1;
    }
    int k = sim.freelist[--sim.nfree];
    sim.b[k].state = ST_BUSY;
    return k;
}

static void push_free(int k)
{
    sim.b[k].state = ST_FREE;
    sim.freelist[sim.nfree++] = k;
}

static void live_add(int k, size_t size, uint64_t tag)
{
    sim.b[k].state = ST_LIVE;
    sim.b[k].size = size;
    sim.b[k].tag = tag;
    sim.b[k].live_pos = sim.nlive;
    sim.live[sim.nlive++] = k;
}

static int live_take(stress_rng *r)
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

/* ---- producers ------------------------------------------------------------
 */

typedef struct worker {
    int id;
    uint64_t ops;
    stress_rng rng;
    stress_tb tbs[NVARIANT];
    pthread_t th;
} worker;

static worker workers[NTHREADS];
static int nstarted;
static _Atomic int producers_left;

static size_t small_size(stress_rng *r)
{
    return 1 + stress_below(r, 512);
}

/* Big enough that a resize behind a gap is often the peak. */
static size_t big_size(stress_rng *r)
{
    return 1 + stress_below(r, 1 << 20);
}

/* A realloc ticket held across a sleep outside the lock: its number is
 * missing while the others record. */
static void op_held_ticket(worker *w, uint32_t v, uint64_t tag)
{
    stress_rng *r = &w->rng;
    ftm_traceback *tb = &w->tbs[v].tb;
    pthread_mutex_lock(&sim.lock);
    int k = live_take(r);
    if (k < 0) {
        pthread_mutex_unlock(&sim.lock);
        return;
    }
    uintptr_t p = ptr_of(k);
    bool fail = stress_below(r, 5) == 0;
    size_t size = stress_below(r, 2) ? big_size(r) : small_size(r);
    ftm_realloc_ticket tk = ftm_record_realloc_begin(0, p);
    sim.numbers++;
    sim.held++;
    sim.tickets_held++;
    if (!fail) { /* the resize is at the ticket's number: apply it now */
        model_add(size, sim.b[k].size);
        sim.b[k].size = size;
        sim.b[k].tag = tag;
    }
    pthread_mutex_unlock(&sim.lock);

    if (stress_below(r, 4) == 0) {
        sched_yield();
    } else {
        stress_sleep_us(stress_below(r, 200));
    }
    ftm_record_realloc_end(tk, 0, p, fail ? 0 : p, size, tb);

    pthread_mutex_lock(&sim.lock);
    sim.held--;
    live_add(k, sim.b[k].size, sim.b[k].tag);
    pthread_mutex_unlock(&sim.lock);
}

static void op_locked(worker *w, uint32_t what, uint32_t v, uint64_t tag)
{
    stress_rng *r = &w->rng;
    ftm_traceback *tb = &w->tbs[v].tb;
    pthread_mutex_lock(&sim.lock);
    if (what < 45) {
        int k = pop_free();
        if (k >= 0) {
            size_t size = stress_below(r, 16) ? small_size(r) : big_size(r);
            ftm_record_alloc(0, ptr_of(k), size, tb);
            sim.numbers++;
            live_add(k, size, tag);
            model_add(size, 0);
        }
    } else if (what < 80) {
        int k = live_take(r);
        if (k >= 0) {
            ftm_record_free(0, ptr_of(k));
            sim.numbers++;
            model_add(0, sim.b[k].size);
            push_free(k);
        }
    } else { /* a realloc inside the lock: moved or in place */
        int k = live_take(r);
        if (k >= 0) {
            uintptr_t p = ptr_of(k);
            size_t old = sim.b[k].size;
            size_t size = small_size(r);
            ftm_realloc_ticket tk = ftm_record_realloc_begin(0, p);
            int k2 = stress_below(r, 2) ? pop_free() : -1;
            if (k2 < 0) {
                ftm_record_realloc_end(tk, 0, p, p, size, tb);
                sim.numbers++;
                live_add(k, size, tag);
            } else {
                ftm_record_realloc_end(tk, 0, p, ptr_of(k2), size, tb);
                sim.numbers += 2;
                push_free(k);
                live_add(k2, size, tag);
            }
            model_add(size, old);
        }
    }
    pthread_mutex_unlock(&sim.lock);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (uint64_t i = 0; i < w->ops; i++) {
        uint32_t v = stress_below(&w->rng, NVARIANT);
        uint64_t tag = (uint64_t)w->id * NVARIANT + v;
        uint32_t what = stress_below(&w->rng, 100);
        if (what >= 88) {
            op_held_ticket(w, v, tag);
        } else {
            op_locked(w, what, v, tag);
        }
    }
    atomic_fetch_sub(&producers_left, 1);
    return NULL;
}

static void start_workers(uint64_t ops_each)
{
    atomic_store(&producers_left, NTHREADS);
    for (int i = 0; i < NTHREADS; i++) {
        worker *w = &workers[i];
        w->id = i + 1;
        w->ops = ops_each;
        w->rng.s = 0xD1B54A32D192ED03ULL * (uint64_t)(i + 1);
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

/* ---- checks (lock held, or producers joined) ------------------------------
 */

static void compare_counters(void)
{
    size_t cur = 0, peak = 0;
    ftm_get_traced_memory(&cur, &peak);
    CHECK(cur == sim.current, "current %zu != model %zu", cur, sim.current);
    CHECK(peak == sim.peak, "peak %zu != model %zu (current %zu)", peak,
          sim.peak, sim.current);
}

static void compare_map(void)
{
    ftm_snapshot snap;
    CHECK(ftm_take_snapshot(&snap) == FTM_OK, "snapshot failed");
    CHECK(snap.ntraces == (size_t)(sim.nlive + sim.held),
          "ntraces %zu != live %d + held %d", snap.ntraces, sim.nlive,
          sim.held);
    for (size_t i = 0; i < snap.ntraces; i++) {
        const ftm_trace *t = &snap.traces[i];
        size_t off = t->ptr - BASE_PTR;
        int k = (int)(off / 64);
        CHECK(t->domain == 0 && t->ptr >= BASE_PTR && off % 64 == 0 &&
                  k < NADDR,
              "trace of unknown address %#lx", (unsigned long)t->ptr);
        if (k < 0 || k >= NADDR) {
            continue;
        }
        /* a block inside a held ticket is BUSY and traced */
        CHECK(sim.b[k].state != ST_FREE, "trace of a free block %d", k);
        CHECK(t->size == sim.b[k].size, "block %d size %zu != %zu", k, t->size,
              sim.b[k].size);
        CHECK(stress_tag_of(t->tb) == sim.b[k].tag, "block %d tag", k);
    }
    ftm_snapshot_release(&snap);
}

/* ---- the runs
 * ---------------------------------------------------------------
 */

static void run(uint32_t window, uint32_t ring_capacity, uint64_t ops)
{
    sim_reset();
    atomic_store(&check_failures, 0);
    first_failure[0] = 0;
    ftm_test_window_events = window; /* stopped: no window allocated */
    ftm_config cfg = {.ring_capacity = ring_capacity};
    assert_int_equal(ftm_start(&cfg), FTM_OK);
    ftm_stats st0;
    ftm_get_stats(&st0);
    start_workers(stress_scaled(ops));
    stress_rng qr = {99 + window};
    unsigned queries = 0;
    stress_watchdog_arm(300, "the gap oracle");
    while (atomic_load(&producers_left) > 0 &&
           atomic_load(&check_failures) == 0) {
        stress_sleep_us(stress_below(&qr, 200));
        pthread_mutex_lock(&sim.lock);
        switch (stress_below(&qr, 4)) {
        case 0:
            ftm_flush();
            break;
        case 1: {
            int k = (int)stress_below(&qr, NADDR);
            ftm_trace t;
            int found = ftm_get_trace(0, ptr_of(k), &t);
            CHECK(found == (sim.b[k].state != ST_FREE), "get_trace %d", k);
            if (found) {
                CHECK(t.size == sim.b[k].size, "get_trace size %d", k);
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
        compare_counters();
        if (queries % 8 == 0) {
            compare_map();
        }
        queries++;
        pthread_mutex_unlock(&sim.lock);
    }
    join_workers();
    stress_watchdog_disarm();
    assert_string_equal(first_failure, "");
    compare_counters();
    compare_map();
    assert_string_equal(first_failure, "");
    assert_int_equal(atomic_load(&check_failures), 0);
    ftm_stats st;
    ftm_get_stats(&st);
    assert_int_equal(st.events_lost, st0.events_lost);
    assert_int_equal(st.events_applied - st0.events_applied, sim.numbers);
    assert_int_equal(st.events_recorded - st0.events_recorded, sim.numbers);
    assert_true(sim.tickets_held > 0);
    printf("[ gaps     ] window %u, ring %u: %llu events, %llu held tickets, "
           "%u queries, %llu full waits\n",
           window, ring_capacity, (unsigned long long)sim.numbers,
           (unsigned long long)sim.tickets_held, queries,
           (unsigned long long)(st.ring_full_waits - st0.ring_full_waits));
    ftm_stop();
}

static int teardown(void **state)
{
    (void)state;
    join_workers();
    ftm_stop();
    ftm_test_window_events = FTM_WINDOW_EVENTS_DEFAULT;
    return 0;
}

static void test_gaps_default_window(void **state)
{
    (void)state;
    run(FTM_WINDOW_EVENTS_DEFAULT, 0, 60000);
}

static void test_gaps_window_16(void **state)
{
    (void)state;
    run(16, 64, 30000);
}

static void test_gaps_window_2(void **state)
{
    (void)state;
    run(2, 4, 20000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_gaps_default_window, teardown),
        cmocka_unit_test_teardown(test_gaps_window_16, teardown),
        cmocka_unit_test_teardown(test_gaps_window_2, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
