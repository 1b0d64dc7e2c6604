/*
 * test_backpressure.c -- tiny rings: a producer whose ring is full never
 * drops an event and never deadlocks.
 *
 *  - while the main thread holds the apply lock nobody can consume, so
 *    producers with 3-slot rings must block (they cannot finish); once the
 *    lock is released every event is applied exactly.
 *  - 8 threads with 4-slot and 2-slot (1 usable) rings, mixed allocs,
 *    frees and reallocs on private address ranges while the main thread
 *    queries: the final map and counters are exact, nothing is lost, and
 *    the full-ring path (waits, producer drains) was taken.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "fasttracemalloc.h"
#include "merger.h"
#include "stress_common.h"

#define NTHREADS 8
#define SLOTS 256 /* private addresses per thread */

typedef struct worker {
    int id;
    uint64_t ops;
    pthread_t th;
    stress_rng rng;
    stress_tb tb[2];
    /* the thread's own truth */
    size_t size[SLOTS];
    int tag[SLOTS]; /* -1 = not allocated */
} worker;

static worker workers[NTHREADS];
static _Atomic int finished;

static uintptr_t addr(int w, int k)
{
    return ((uintptr_t)(w + 1) << 24) + (uintptr_t)k * 32;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (int k = 0; k < SLOTS; k++) {
        w->tag[k] = -1;
    }
    for (uint64_t i = 0; i < w->ops; i++) {
        int k = (int)stress_below(&w->rng, SLOTS);
        int v = (int)stress_below(&w->rng, 2);
        size_t size = 1 + stress_below(&w->rng, 10000);
        uintptr_t p = addr(w->id, k);
        if (w->tag[k] < 0) {
            ftm_record_alloc(0, p, size, &w->tb[v].tb);
            w->size[k] = size;
            w->tag[k] = v;
        } else if (stress_below(&w->rng, 3) != 0) {
            ftm_record_free(0, p);
            w->tag[k] = -1;
        } else {
            /* realloc: in place, or moved to a free private slot */
            int k2 = (int)stress_below(&w->rng, SLOTS);
            ftm_realloc_ticket tk = ftm_record_realloc_begin(0, p);
            if (w->tag[k2] < 0) {
                ftm_record_realloc_end(tk, 0, p, addr(w->id, k2), size,
                                       &w->tb[v].tb);
                w->tag[k] = -1;
                k = k2;
            } else {
                ftm_record_realloc_end(tk, 0, p, p, size, &w->tb[v].tb);
            }
            w->size[k] = size;
            w->tag[k] = v;
        }
    }
    atomic_fetch_add(&finished, 1);
    return NULL;
}

static void start_workers(int n, uint64_t ops)
{
    atomic_store(&finished, 0);
    for (int i = 0; i < n; i++) {
        worker *w = &workers[i];
        w->id = i;
        w->ops = ops;
        w->rng.s = 0xABCDEF12345ULL + (uint64_t)i * 7919;
        stress_tb_init(&w->tb[0], (uint64_t)i * 2 + 100);
        stress_tb_init(&w->tb[1], (uint64_t)i * 2 + 101);
        assert_int_equal(pthread_create(&w->th, NULL, worker_main, w), 0);
    }
}

static void join_and_check(int n)
{
    for (int i = 0; i < n; i++) {
        pthread_join(workers[i].th, NULL);
    }
    size_t expect_cur = 0, expect_n = 0;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < SLOTS; k++) {
            worker *w = &workers[i];
            ftm_trace t;
            int found = ftm_get_trace(0, addr(i, k), &t);
            assert_int_equal(found, w->tag[k] >= 0);
            if (found) {
                assert_int_equal(t.size, w->size[k]);
                assert_int_equal(stress_tag_of(t.tb),
                                 (uint64_t)i * 2 + 100 + (uint64_t)w->tag[k]);
                expect_cur += w->size[k];
                expect_n++;
            }
        }
    }
    size_t cur, peak;
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, expect_cur);
    assert_true(peak >= cur);
    ftm_stats st;
    ftm_get_stats(&st);
    assert_int_equal(st.live_traces, expect_n);
    assert_int_equal(st.events_lost, 0);
}

static void test_blocked_while_apply_lock_held(void **state)
{
    (void)state;
    ftm_config cfg = {.ring_capacity = 4};
    assert_int_equal(ftm_start(&cfg), FTM_OK);
    ftm_stats st0;
    ftm_get_stats(&st0);
    pthread_mutex_lock(&ftm_merger_g.lock); /* nobody can consume now */
    start_workers(4, 200);
    /* 200 events cannot fit in 3 slots: no worker can finish, however
     * long we wait, until the lock is released. */
    for (int i = 0; i < 50; i++) {
        stress_sleep_us(1000);
        assert_int_equal(atomic_load(&finished), 0);
    }
    pthread_mutex_unlock(&ftm_merger_g.lock);
    join_and_check(4);
    ftm_stats st;
    ftm_get_stats(&st);
    assert_true(st.ring_full_waits - st0.ring_full_waits >= 4);
    assert_true(st.producer_drains > st0.producer_drains ||
                st.events_applied - st0.events_applied >= 800);
    printf("[ backpres ] blocked: %llu full waits, %llu producer drains\n",
           (unsigned long long)(st.ring_full_waits - st0.ring_full_waits),
           (unsigned long long)(st.producer_drains - st0.producer_drains));
    ftm_stop();
}

static void run_tiny(uint32_t capacity)
{
    ftm_config cfg = {.ring_capacity = capacity};
    assert_int_equal(ftm_start(&cfg), FTM_OK);
    ftm_stats st0;
    ftm_get_stats(&st0);
    start_workers(NTHREADS, stress_scaled(200000));
    stress_rng qr = {5};
    unsigned queries = 0;
    while (atomic_load(&finished) < NTHREADS) {
        size_t cur, peak;
        ftm_get_traced_memory(&cur, &peak);
        assert_true(peak >= cur);
        if (stress_below(&qr, 4) == 0) {
            ftm_snapshot snap;
            assert_int_equal(ftm_take_snapshot(&snap), FTM_OK);
            assert_true(snap.ntraces <= NTHREADS * SLOTS);
            ftm_snapshot_release(&snap);
        }
        queries++;
        stress_sleep_us(stress_below(&qr, 500));
    }
    join_and_check(NTHREADS);
    ftm_stats st;
    ftm_get_stats(&st);
    assert_true(st.ring_full_waits > st0.ring_full_waits);
    printf("[ backpres ] capacity %u: %llu events, %u queries, %llu full "
           "waits, %llu producer drains, %llu lost\n",
           capacity,
           (unsigned long long)(st.events_applied - st0.events_applied),
           queries,
           (unsigned long long)(st.ring_full_waits - st0.ring_full_waits),
           (unsigned long long)(st.producer_drains - st0.producer_drains),
           (unsigned long long)(st.events_lost - st0.events_lost));
    ftm_stop();
}

static void test_tiny_rings_4(void **state)
{
    (void)state;
    run_tiny(4);
}

static void test_tiny_rings_2(void **state)
{
    (void)state;
    run_tiny(2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocked_while_apply_lock_held),
        cmocka_unit_test(test_tiny_rings_4),
        cmocka_unit_test(test_tiny_rings_2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
