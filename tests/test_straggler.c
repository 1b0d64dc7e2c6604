/*
 * test_straggler.c -- a producer that saw the engine tracing, then lost the
 * race with ftm_stop.
 *
 * A record checks `tracing` (relaxed) and only then takes its number, so a
 * thread preempted in between may take its number after a stop -- before
 * or after the next start -- and push it into its ring while no merger
 * runs.  The merger must sort such an event by its number alone: numbered
 * before the new session's start, it is ignored (counted in
 * events_ignored, not lost: recording while stopped records nothing);
 * numbered after it, it belongs to the new session and is applied.  With
 * the test-hook build of the engine (FTM_TEST_HOOKS, core/merger.h) the
 * test holds the producer exactly between its `tracing` check and its
 * number, so both cases happen every run instead of once in a while in
 * test_stress's lifecycle race.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "fasttracemalloc.h"
#include "merger.h"
#include "stress_common.h"

static pthread_barrier_t barrier;
static __thread bool is_straggler;

/* Runs inside the straggler's record, after its `tracing` check. */
static void hold_before_number(void)
{
    if (!is_straggler) {
        return;
    }
    is_straggler = false;           /* once */
    pthread_barrier_wait(&barrier); /* 1: past the check */
    pthread_barrier_wait(&barrier); /* 2: the main thread moved on */
}

static void *straggler(void *arg)
{
    uintptr_t p = (uintptr_t)arg;
    is_straggler = true;
    ftm_record_alloc(0, p, 64, NULL);
    pthread_barrier_wait(&barrier); /* 3: pushed */
    return NULL;
}

static int teardown(void **state)
{
    (void)state;
    ftm_test_before_number = NULL;
    ftm_stop();
    return 0;
}

/* restart_first: the straggler takes its number after stop AND the next
 * start (it belongs to the new session); otherwise between the two. */
static void run(bool restart_first, uintptr_t p)
{
    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_stats st0;
    ftm_get_stats(&st0);
    pthread_barrier_init(&barrier, NULL, 2);
    ftm_test_before_number = hold_before_number;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, straggler, (void *)p), 0);
    pthread_barrier_wait(&barrier); /* 1 */
    ftm_stop();
    if (restart_first) {
        assert_int_equal(ftm_start(NULL), FTM_OK);
    }
    pthread_barrier_wait(&barrier); /* 2: take the number now */
    pthread_barrier_wait(&barrier); /* 3: pushed (no merger if stopped) */
    pthread_join(th, NULL);
    ftm_test_before_number = NULL;
    pthread_barrier_destroy(&barrier);
    if (!restart_first) {
        assert_int_equal(ftm_start(NULL), FTM_OK);
    }
    ftm_flush();
    ftm_trace t;
    int found = ftm_get_trace(0, p, &t);
    size_t cur = 0, peak = 0;
    ftm_get_traced_memory(&cur, &peak);
    /* the merger has taken the event out of the ring by now (the flush
     * only waits for numbers of this session): wait for the ring to empty */
    ftm_stats st;
    ftm_get_stats(&st);
    for (int i = 0; i < 2000 && st.events_recorded !=
                                    st.events_applied + st.events_ignored;
         i++) {
        stress_sleep_us(1000);
        ftm_get_stats(&st);
    }
    assert_int_equal(st.events_lost, st0.events_lost);
    assert_int_equal(st.session_events_lost, 0);
    assert_int_equal(st.events_recorded,
                     st.events_applied + st.events_ignored);
    if (restart_first) { /* numbered in the new session: traced */
        assert_int_equal(found, 1);
        assert_int_equal(t.size, 64);
        assert_int_equal(cur, 64);
    } else { /* numbered while stopped: ignored, not lost */
        assert_int_equal(found, 0);
        assert_int_equal(cur, 0);
        assert_true(st.events_ignored > st0.events_ignored);
    }
    ftm_stop();
}

static void test_straggler_numbered_while_stopped(void **state)
{
    (void)state;
    run(false, 0xB000);
}

static void test_straggler_numbered_after_restart(void **state)
{
    (void)state;
    run(true, 0xC000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_straggler_numbered_while_stopped,
                                  teardown),
        cmocka_unit_test_teardown(test_straggler_numbered_after_restart,
                                  teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
