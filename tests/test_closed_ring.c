/*
 * test_closed_ring.c -- a ring whose thread exited is freed only once the
 * merger has drained it.
 *
 * The interleaving: thread A holds a realloc ticket (a number taken, not
 * pushed), so the merger cannot apply past it.  Thread B records more
 * events than the reorder window holds: the first W - 1 go into the
 * window, the rest stay in B's ring (it has room: nothing blocks B), and B
 * exits, which closes its ring.  The merger must keep that ring until the
 * window has moved past A's number and it has taken B's last events out.
 * An engine that frees a closed ring without checking that it is empty
 * throws B's tail away: once A pushes, the merger waits forever for numbers
 * nobody holds any more, and every later query hangs -- the watchdog turns
 * that into a failure.  With the real engine the query returns the exact
 * total.
 *
 * Both with the merger thread and without it (ftm_config.no_merger_thread,
 * the sampled mode's engine): then B's own exit takes one step, the query
 * applies the rest, and nothing but those two ever touches the rings.  A
 * third test checks that, without a merger thread, threads that exit one
 * after another free their own rings (a thread-per-request server must not
 * pile them up until the next query).
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

#define TAIL 1000 /* B's events beyond the window: fit its 4096-slot ring */

static pthread_barrier_t barrier;

static void *holder_a(void *arg)
{
    (void)arg;
    ftm_record_alloc(0, 0xA000, 10, NULL);
    ftm_realloc_ticket tk = ftm_record_realloc_begin(0, 0xA000);
    pthread_barrier_wait(&barrier); /* 1: ticket open */
    pthread_barrier_wait(&barrier); /* 2: B has exited */
    ftm_record_realloc_end(tk, 0, 0xA000, 0xA000, 20, NULL);
    return NULL;
}

static void *filler_b(void *arg)
{
    uint64_t n = (uint64_t)(uintptr_t)arg;
    for (uint64_t i = 0; i < n; i++) {
        ftm_record_alloc(0, 0x1000000 + i * 16, 1, NULL);
    }
    return NULL; /* its ring is closed now, with TAIL events still in it */
}

static int teardown(void **state)
{
    (void)state;
    ftm_stop();
    return 0;
}

static void test_closed_ring_kept_until_drained(void **state)
{
    int no_merger = *state != NULL;
    ftm_config cfg = {.no_merger_thread = no_merger};
    assert_int_equal(ftm_start(&cfg), FTM_OK);
    ftm_stats st0;
    ftm_get_stats(&st0);
    assert_int_equal(st0.merger_thread, no_merger ? 0 : 1);
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_t a, b;
    assert_int_equal(pthread_create(&a, NULL, holder_a, NULL), 0);
    pthread_barrier_wait(&barrier); /* 1 */
#if FTM_ORDER_CLOCK
    /* The clock order has no reorder window: every event of B is stamped
     * after A's ticket, so all of them stay in B's closed ring. */
    uint64_t nb = TAIL;
#else
    uint64_t nb = FTM_WINDOW_EVENTS + TAIL;
#endif
    assert_int_equal(pthread_create(&b, NULL, filler_b, (void *)(uintptr_t)nb),
                     0);
    pthread_join(b, NULL);
    /* let the merger thread make several passes over the closed ring (it
     * sleeps at most 1 ms between passes); without one, B's exit took its
     * step and nothing moves until the query */
    stress_sleep_us(50000);
    if (no_merger) {
        ftm_stats mid;
        ftm_get_stats(&mid);
        /* A's ticket holds the window: B's tail is still in its ring */
        assert_int_equal(mid.rings_reclaimed, st0.rings_reclaimed);
    }
    pthread_barrier_wait(&barrier); /* 2: A pushes its number */
    pthread_join(a, NULL);
    pthread_barrier_destroy(&barrier);

    size_t cur = 0, peak = 0;
    stress_watchdog_arm(10, "ftm_get_traced_memory after a closed ring");
    ftm_get_traced_memory(&cur, &peak);
    stress_watchdog_disarm();
    assert_int_equal(cur, 20 + nb);
    assert_int_equal(peak, 20 + nb);
    ftm_stats st;
    ftm_get_stats(&st);
    assert_int_equal(st.events_lost, st0.events_lost);
    assert_int_equal(st.live_traces, 1 + nb);
    /* B's ring, drained, is reclaimed while the session goes on: the
     * merger thread gets to it within a pass or two */
    for (int i = 0; i < 2000 && st.rings_reclaimed == st0.rings_reclaimed;
         i++) {
        stress_sleep_us(1000);
        ftm_get_stats(&st);
    }
    assert_true(st.rings_reclaimed - st0.rings_reclaimed >= 1);
    assert_int_equal(st.merger_thread, no_merger ? 0 : 1);
    printf("[ closed   ] %s: %llu events of an exited thread kept past the "
           "window, then applied; its ring reclaimed in-session\n",
           no_merger ? "no merger thread" : "merger thread",
           (unsigned long long)nb);
}

#define EXITERS 64
#define EXITER_EVENTS 300

static void *exiter(void *arg)
{
    uintptr_t base = 0x40000000u + (uintptr_t)arg * 0x100000u;
    for (uintptr_t i = 0; i < EXITER_EVENTS; i++) {
        ftm_record_alloc(0, base + i * 16, 3, NULL);
    }
    /* free the first third again: frees travel the same way */
    for (uintptr_t i = 0; i < EXITER_EVENTS / 3; i++) {
        ftm_record_free(0, base + i * 16);
    }
    return NULL;
}

/* Without a merger thread, each exiting thread drains and frees its own
 * ring: after 64 threads ran one after another, all 64 rings are gone and
 * every event applied, before any query. */
static void test_exiting_threads_free_their_rings(void **state)
{
    (void)state;
    ftm_config cfg = {.no_merger_thread = 1};
    assert_int_equal(ftm_start(&cfg), FTM_OK);
    ftm_stats st0;
    ftm_get_stats(&st0);
    assert_int_equal(st0.merger_thread, 0);
    for (uintptr_t k = 0; k < EXITERS; k++) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, exiter, (void *)k), 0);
        pthread_join(t, NULL);
    }
    ftm_stats st;
    ftm_get_stats(&st); /* takes no step itself */
    assert_int_equal(st.rings_reclaimed - st0.rings_reclaimed, EXITERS);
    uint64_t per = EXITER_EVENTS + EXITER_EVENTS / 3;
    assert_int_equal(st.events_applied - st0.events_applied, EXITERS * per);
    assert_int_equal(st.live_traces, EXITERS * (EXITER_EVENTS * 2 / 3));
    size_t cur = 0, peak = 0;
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, 3 * EXITERS * (EXITER_EVENTS * 2 / 3));
    assert_int_equal(peak, cur + 3 * (EXITER_EVENTS / 3));
    ftm_get_stats(&st);
    assert_int_equal(st.events_lost, st0.events_lost);
    assert_int_equal(st.merger_thread, 0);
    printf("[ closed   ] no merger thread: %d exited threads freed their own "
           "rings, %llu events applied before any query\n",
           EXITERS, (unsigned long long)(EXITERS * per));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(
            test_closed_ring_kept_until_drained, NULL, teardown, NULL),
        cmocka_unit_test_prestate_setup_teardown(
            test_closed_ring_kept_until_drained, NULL, teardown,
            (void *)"no merger thread"),
        cmocka_unit_test_teardown(test_exiting_threads_free_their_rings,
                                  teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
