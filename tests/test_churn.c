/*
 * test_churn.c -- thousands of short-lived threads.  Each records a few
 * events and exits; its ring is closed by the thread-exit destructor,
 * drained by the merger (its events still count) and freed.  Some threads
 * free memory from their own TLS destructor AFTER the engine's destructor
 * may have run (a fresh ring must catch that event, and be reclaimed too).
 * At the end the map is exact, nothing is lost, every ring is reclaimed and
 * the engine's memory is back to what it was before ftm_start.
 *
 * Rings are reclaimed DURING the session, not only at ftm_stop: a server
 * that keeps tracing while it spawns threads would otherwise grow without
 * bound (an engine that reclaimed closed rings only between sessions grew
 * to ~840 MB here).  So, while the session runs, every ring is reclaimed
 * within a bounded time after the last thread exits, and the engine's
 * memory sampled after each batch stays under
 *     M0 + 2 * G + (2 * BATCH + 2) * RING_BOUND
 * where M0 is the engine's memory once the session started, G the growth
 * of map and pool over the whole session (measured at the end, every ring
 * reclaimed: what the traces themselves need; twice that covers a table
 * caught mid-doubling), and 2 * BATCH + 2 rings the most that may be alive
 * at a sample: each thread of the batch just joined may own two (one more
 * from the late destructor) that the merger thread has not yet freed, plus
 * the warm-up's.  RING_BOUND is twice a ring's slots, above any allocator
 * size class for header + slots.  With 4000 threads the bound is about
 * 9 MB; a leak of one ring per thread passes it after ~60 threads.
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
#include "ring.h"
#include "stress_common.h"

#define BATCH 16
#define PER_THREAD 8
#define RING_BOUND ((size_t)2 * FTM_RING_DEFAULT_CAPACITY * sizeof(ftm_event))

static pthread_key_t late_key;

static uintptr_t addr(uint64_t t, int k)
{
    return ((uintptr_t)(t + 1) << 12) + (uintptr_t)k * 16;
}

/* A TLS destructor of "the application": frees a block while the thread
 * is being torn down. */
static void late_free(void *v)
{
    ftm_record_free(0, (uintptr_t)v);
}

static void *churn_thread(void *arg)
{
    uint64_t t = (uint64_t)(uintptr_t)arg;
    stress_tb tb;
    stress_tb_init(&tb, t % 64);
    for (int k = 0; k < PER_THREAD; k++) {
        ftm_record_alloc(0, addr(t, k), (size_t)(t % 100) + (size_t)k + 1,
                         &tb.tb);
    }
    /* even k freed now, k == 1 freed from a TLS destructor */
    for (int k = 0; k < PER_THREAD; k += 2) {
        ftm_record_free(0, addr(t, k));
    }
    if (t % 3 == 0) {
        pthread_setspecific(late_key, (void *)addr(t, 1));
    }
    return NULL;
}

static void expect_state(uint64_t nthreads)
{
    size_t expect = 0;
    for (uint64_t t = 0; t < nthreads; t++) {
        for (int k = 1; k < PER_THREAD; k += 2) {
            bool live = !(k == 1 && t % 3 == 0);
            ftm_trace tr;
            int found = ftm_get_trace(0, addr(t, k), &tr);
            assert_int_equal(found, live);
            if (live) {
                expect += (size_t)(t % 100) + (size_t)k + 1;
                assert_int_equal(tr.size, (size_t)(t % 100) + (size_t)k + 1);
                assert_int_equal(stress_tag_of(tr.tb), t % 64);
            }
        }
        ftm_trace tr;
        assert_int_equal(ftm_get_trace(0, addr(t, 0), &tr), 0);
    }
    size_t cur, peak;
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, expect);
}

static void *warm_up(void *arg)
{
    (void)arg;
    ftm_record_alloc(0, 1, 1, NULL);
    ftm_record_free(0, 1);
    return NULL;
}

static pthread_barrier_t late_barrier;

static void *late_exit(void *arg)
{
    (void)arg;
    ftm_record_alloc(0, 2, 2, NULL);
    pthread_barrier_wait(&late_barrier);
    pthread_barrier_wait(&late_barrier);
    return NULL;
}

static void test_thread_churn(void **state)
{
    (void)state;
    size_t mem0 = ftm_engine_memory();
    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_stats st0;
    ftm_get_stats(&st0);
    size_t mem_session0 = ftm_engine_memory(); /* map, window, pool: no ring */
    /* The engine creates its thread-exit key on the first ring; creating
     * the application's key after it means (glibc runs destructors in key
     * order) that late_free runs AFTER the engine closed the ring. */
    pthread_t w;
    assert_int_equal(pthread_create(&w, NULL, warm_up, NULL), 0);
    pthread_join(w, NULL);
    assert_int_equal(pthread_key_create(&late_key, late_free), 0);
    uint64_t nthreads = stress_scaled(4000) < 200 ? 200 : stress_scaled(4000);
    nthreads -= nthreads % BATCH;
    size_t max_live_rings_mem = 0;
    for (uint64_t b = 0; b < nthreads; b += BATCH) {
        pthread_t th[BATCH];
        for (int i = 0; i < BATCH; i++) {
            assert_int_equal(pthread_create(&th[i], NULL, churn_thread,
                                            (void *)(uintptr_t)(b + i)),
                             0);
        }
        for (int i = 0; i < BATCH; i++) {
            pthread_join(th[i], NULL);
        }
        ftm_flush();
        size_t m = ftm_engine_memory();
        if (m > max_live_rings_mem) {
            max_live_rings_mem = m;
        }
    }
    ftm_flush();
    expect_state(nthreads);
    ftm_stats st;
    ftm_get_stats(&st);
    assert_int_equal(st.events_lost, st0.events_lost);
    /* at least one ring per thread; more for threads that recorded again
     * from a late destructor */
    uint64_t regs = st.threads_registered - st0.threads_registered;
    assert_true(regs >= nthreads + 1);
    /* every thread has exited: the merger thread frees every ring while the
     * session goes on (it passes at least every millisecond when idle) */
    for (int i = 0;
         i < 5000 && st.rings_reclaimed - st0.rings_reclaimed < regs; i++) {
        stress_sleep_us(1000);
        ftm_get_stats(&st);
    }
    assert_true(ftm_is_tracing());
    assert_int_equal(st.rings_reclaimed - st0.rings_reclaimed, regs);
    size_t growth = ftm_engine_memory() - mem_session0;
    size_t bound = mem_session0 + 2 * growth + (2 * BATCH + 2) * RING_BOUND;
    printf("[ churn    ] in-session engine memory: start %zu, sampled peak "
           "%zu, bound %zu (map+pool growth %zu)\n",
           mem_session0, max_live_rings_mem, bound, growth);
    assert_true(max_live_rings_mem <= bound);
    ftm_stop();
    ftm_get_stats(&st);
    assert_int_equal(st.rings_reclaimed - st0.rings_reclaimed, regs);
    assert_int_equal(ftm_engine_memory(), mem0);
    /* a thread that got its ring during a session and exits after the
     * session ended leaves nothing behind either */
    assert_int_equal(ftm_start(NULL), FTM_OK);
    pthread_barrier_init(&late_barrier, NULL, 2);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, late_exit, NULL), 0);
    pthread_barrier_wait(&late_barrier); /* it has recorded */
    ftm_stop();
    assert_true(ftm_engine_memory() > mem0); /* its ring */
    pthread_barrier_wait(&late_barrier);     /* let it exit */
    pthread_join(th, NULL);
    assert_int_equal(ftm_engine_memory(), mem0);
    pthread_barrier_destroy(&late_barrier);
    printf("[ churn    ] %llu threads, %llu rings registered and reclaimed, "
           "engine memory peak sampled %zu bytes, back to %zu after stop\n",
           (unsigned long long)nthreads, (unsigned long long)regs,
           max_live_rings_mem, ftm_engine_memory());
    pthread_key_delete(late_key);
}

/* Idle threads: the engine's footprint as get_tracemalloc_memory() reports
 * it (ftm_engine_memory() - rings_untouched_bytes) counts the ring slots
 * that events used, not whole 4096-slot buffers (issue 11: 1,000 live
 * threads were reported as 132.7 MiB while RSS grew 28 MB). */
#define IDLE_THREADS 64
#define IDLE_EVENTS 3
static pthread_barrier_t idle_barrier;

static void *idle_thread(void *arg)
{
    uint64_t t = (uint64_t)(uintptr_t)arg;
    for (int k = 0; k < IDLE_EVENTS; k++) {
        ftm_record_alloc(0, addr(t + 100000, k), 8, NULL);
    }
    pthread_barrier_wait(&idle_barrier); /* recorded */
    pthread_barrier_wait(&idle_barrier); /* may exit */
    return NULL;
}

static void test_idle_rings_count_what_they_used(void **state)
{
    (void)state;
    assert_int_equal(ftm_start(NULL), FTM_OK);
    /* the same blocks from this thread first, then freed: the trace map
     * has grown for them before `before` is read */
    for (uint64_t t = 0; t < IDLE_THREADS; t++) {
        for (int k = 0; k < IDLE_EVENTS; k++) {
            ftm_record_alloc(0, addr(t + 100000, k), 8, NULL);
        }
    }
    ftm_flush();
    for (uint64_t t = 0; t < IDLE_THREADS; t++) {
        for (int k = 0; k < IDLE_EVENTS; k++) {
            ftm_record_free(0, addr(t + 100000, k));
        }
    }
    ftm_flush();
    ftm_stats st;
    ftm_get_stats(&st);
    size_t before = ftm_engine_memory() - st.rings_untouched_bytes;
    pthread_barrier_init(&idle_barrier, NULL, IDLE_THREADS + 1);
    pthread_t th[IDLE_THREADS];
    for (int i = 0; i < IDLE_THREADS; i++) {
        assert_int_equal(
            pthread_create(&th[i], NULL, idle_thread, (void *)(uintptr_t)i),
            0);
    }
    pthread_barrier_wait(&idle_barrier);
    ftm_flush();
    ftm_get_stats(&st);
    size_t grown = ftm_engine_memory() - st.rings_untouched_bytes - before;
    /* every ring exists (the threads live) and used IDLE_EVENTS slots:
     * its header and those slots count, its other 4093 slots do not */
    size_t whole =
        (size_t)IDLE_THREADS * FTM_RING_DEFAULT_CAPACITY * sizeof(ftm_event);
    size_t used = (size_t)IDLE_THREADS * IDLE_EVENTS * sizeof(ftm_event);
    printf("[ idle     ] %d live threads, %d events each: engine memory "
           "grew %zu bytes (whole rings: %zu)\n",
           IDLE_THREADS, IDLE_EVENTS, grown, whole);
    assert_true(grown >= used);
    assert_true(grown < whole / 16);
    pthread_barrier_wait(&idle_barrier);
    for (int i = 0; i < IDLE_THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    pthread_barrier_destroy(&idle_barrier);
    ftm_stop();
}

static int teardown(void **state)
{
    (void)state;
    ftm_stop();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_thread_churn, teardown),
        cmocka_unit_test_teardown(test_idle_rings_count_what_they_used,
                                  teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
