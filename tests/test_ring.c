/*
 * test_ring.c -- the per-thread ring on its own: full ring, wrap-around,
 * partial consumption, FIFO order across threads (SPSC), closing at thread
 * exit and reclamation through the registry.  Also prints (never asserts)
 * what one number from the global sequence costs, alone and contended.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <cmocka.h>

#include "memory.h"
#include "ring.h"
#include "thread_registry.h"
#include "sequence.h"
#include "stress_common.h"

static ftm_event ev_of(uint64_t i)
{
    ftm_event e;
    memset(&e, 0, sizeof(e));
    e.seq = i;
    e.ptr = 0x1000 + i * 8;
    e.size = i * 3 + 1;
    e.kind = (uint64_t)(i % 3);
    e.domain = (ftm_domain_t)(i % 5);
    e.tb = (ftm_tb_id)(i + 7);
    return e;
}

static void check_ev(const ftm_event *e, uint64_t i)
{
    assert_int_equal(e->seq, i);
    assert_int_equal(e->ptr, 0x1000 + i * 8);
    assert_int_equal(e->size, i * 3 + 1);
    assert_int_equal(e->kind, i % 3);
    assert_int_equal(e->domain, i % 5);
    assert_int_equal(e->tb, i + 7);
}

static void remove_ring(ftm_ring *r)
{
    ftm_registry_lock();
    ftm_ring *prev = NULL;
    for (ftm_ring *x = ftm_registry_first(); x != NULL; x = x->next) {
        if (x == r) {
            ftm_registry_remove(prev, r);
            break;
        }
        prev = x;
    }
    ftm_registry_unlock();
}

static void test_full_ring(void **state)
{
    (void)state;
    size_t mem0 = ftm_mem_bytes();
    ftm_ring *r = ftm_ring_attach(8);
    assert_non_null(r);
    assert_int_equal(r->capacity, 8);
    assert_true(ftm_mem_bytes() > mem0);
    assert_int_equal(ftm_ring_consumer_begin(r), 0);
    for (uint64_t i = 0; i < 7; i++) { /* usable capacity: 7 */
        ftm_event e = ev_of(i);
        assert_true(ftm_ring_try_push(r, &e));
    }
    ftm_event extra = ev_of(99);
    assert_false(ftm_ring_try_push(r, &extra));
    assert_int_equal(ftm_ring_consumer_begin(r), 7);
    check_ev(ftm_ring_at(r, 0), 0);
    check_ev(ftm_ring_at(r, 6), 6);
    ftm_ring_consumer_release(r, 1);
    assert_true(ftm_ring_try_push(r, &extra)); /* one slot came back */
    assert_false(ftm_ring_try_push(r, &extra));
    assert_int_equal(ftm_ring_consumer_begin(r), 7);
    check_ev(ftm_ring_at(r, 0), 1);
    check_ev(ftm_ring_at(r, 6), 99);
    ftm_ring_consumer_release(r, 7);
    assert_int_equal(ftm_ring_consumer_begin(r), 0);
    remove_ring(r);
    assert_int_equal(ftm_mem_bytes(), mem0);
}

static void test_wrap_around_partial(void **state)
{
    (void)state;
    ftm_ring *r = ftm_ring_attach(16);
    assert_non_null(r);
    stress_rng rng = {99};
    uint64_t pushed = 0, popped = 0;
    /* many laps of the 16 slots with random batch sizes on both sides */
    for (int round = 0; round < 20000; round++) {
        unsigned np = stress_below(&rng, 20);
        for (unsigned i = 0; i < np; i++) {
            ftm_event e = ev_of(pushed);
            if (!ftm_ring_try_push(r, &e)) {
                assert_int_equal(pushed - popped, 15);
                break;
            }
            pushed++;
        }
        unsigned n = ftm_ring_consumer_begin(r);
        assert_int_equal(n, pushed - popped);
        unsigned k = n ? stress_below(&rng, n + 1) : 0;
        for (unsigned i = 0; i < k; i++) {
            check_ev(ftm_ring_at(r, i), popped + i);
        }
        if (k) {
            ftm_ring_consumer_release(r, k);
        }
        popped += k;
    }
    assert_true(pushed > 100000); /* the counters wrapped the slots often */
    remove_ring(r);
}

static void test_bad_capacity_gets_default(void **state)
{
    (void)state;
    ftm_ring *r = ftm_ring_attach(1000);
    assert_non_null(r);
    assert_int_equal(r->capacity, FTM_RING_DEFAULT_CAPACITY);
    remove_ring(r);
}

#define SPSC_N 2000000u

static void *spsc_producer(void *arg)
{
    _Atomic(ftm_ring *) *out = arg;
    ftm_ring *r = ftm_ring_attach(64);
    atomic_store(out, r);
    uint64_t n = stress_scaled(SPSC_N);
    for (uint64_t i = 1; i <= n; i++) {
        ftm_event e = ev_of(i);
        while (!ftm_ring_try_push(r, &e)) {
            ck_pr_stall();
        }
    }
    return NULL; /* the key destructor closes the ring */
}

static void test_spsc_threads_and_close(void **state)
{
    (void)state;
    _Atomic(ftm_ring *) rp = NULL;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, spsc_producer, &rp), 0);
    ftm_ring *r;
    while ((r = atomic_load(&rp)) == NULL) {
        sched_yield();
    }
    uint64_t n = stress_scaled(SPSC_N);
    uint64_t next = 1;
    while (next <= n) {
        unsigned k = ftm_ring_consumer_begin(r);
        for (unsigned i = 0; i < k; i++) {
            check_ev(ftm_ring_at(r, i), next + i);
        }
        if (k) {
            ftm_ring_consumer_release(r, k);
        }
        next += k;
    }
    pthread_join(th, NULL);
    assert_true(ftm_ring_is_closed(r)); /* thread exit closed it */
    assert_int_equal(ftm_ring_consumer_begin(r), 0);
    ftm_registry_stats rs0, rs1;
    ftm_registry_lock();
    ftm_registry_stats_get(&rs0);
    ftm_registry_unlock();
    remove_ring(r);
    ftm_registry_lock();
    ftm_registry_stats_get(&rs1);
    ftm_registry_unlock();
    assert_int_equal(rs1.rings_reclaimed, rs0.rings_reclaimed + 1);
    assert_int_equal(rs1.live_rings, rs0.live_rings - 1);
}

/* ---- printed, not asserted: the cost of one sequence number ----------------
 */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *seq_hammer(void *arg)
{
    uint64_t n = (uint64_t)(uintptr_t)arg;
    for (uint64_t i = 0; i < n; i++) {
        (void)ftm_seq_take();
    }
    return NULL;
}

static void test_print_sequence_cost(void **state)
{
    (void)state;
    uint64_t n = stress_scaled(20000000);
    uint64_t before = ftm_seq_peek();
    double t0 = now_s();
    seq_hammer((void *)(uintptr_t)n);
    double t1 = now_s();
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        pthread_create(&th[i], NULL, seq_hammer, (void *)(uintptr_t)(n / 2));
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
    }
    double t2 = now_s();
    /* every take is one distinct number */
    assert_int_equal(ftm_seq_peek() - before, n + 2 * (n / 2));
    printf(
        "[ seq      ] fetch_add: %.1f ns/number on 1 thread, %.1f ns/number "
        "with 2 threads contending (wall time / numbers)\n",
        (t1 - t0) * 1e9 / (double)n, (t2 - t1) * 1e9 / (double)n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_ring),
        cmocka_unit_test(test_wrap_around_partial),
        cmocka_unit_test(test_bad_capacity_gets_default),
        cmocka_unit_test(test_spsc_threads_and_close),
        cmocka_unit_test(test_print_sequence_cost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
