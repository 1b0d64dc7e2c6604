/*
 * test_session_stats.c -- what was lost in THIS session.
 *
 * ftm_stats' events_lost, traces_lost_oom and tracebacks_lost_oom are
 * cumulative over the process: after one loss, every later session would
 * report it again (and an embedder that warns on a non-zero count would
 * warn at once, with stale numbers).  The session_* fields count from the
 * ftm_start that began the session: each test here makes one session lose
 * events, traces and tracebacks, checks the session counters equal what it
 * caused, stops (the figures stay readable), starts again (they are 0 while
 * the cumulative ones keep their values) and loses once more.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "fasttracemalloc.h"
#include "memory.h"

/* A record nested in an open realloc ticket is dropped and counted in
 * events_lost (engine.c): one deterministic loss. */
static void lose_one_event(void)
{
    ftm_realloc_ticket tk = ftm_record_realloc_begin(0, 0x5000);
    int nested = ftm_record_alloc(0, 0x6000, 8, NULL);
    /* ticket ended before any assertion: a failed one must not leave its
     * number unpushed (the teardown's ftm_stop would wait for it) */
    ftm_record_realloc_end(tk, 0, 0x5000, 0, 8, NULL);
    assert_int_equal(tk.active, 1);
    assert_int_equal(nested, FTM_ESTATE);
}

/* Allocations with engine allocations failing now and then until at least
 * one trace insert fails (counted in traces_lost_oom).  Returns how many
 * the session lost. */
static uint64_t lose_traces(uintptr_t base)
{
    ftm_stats st0, st;
    ftm_get_stats(&st0);
    for (size_t i = 0; i < 200000; i++) {
        if (i % 500 == 0) {
            ftm_mem_inject_failure((long)(i / 500) % 3);
        }
        ftm_record_alloc(0, base + i * 16, 1, NULL);
        if (i % 500 == 499) {
            ftm_flush();
            ftm_get_stats(&st);
            if (st.traces_lost_oom > st0.traces_lost_oom) {
                break;
            }
        }
    }
    ftm_mem_inject_failure(-1);
    ftm_flush();
    ftm_get_stats(&st);
    assert_true(st.traces_lost_oom > st0.traces_lost_oom);
    return st.traces_lost_oom - st0.traces_lost_oom;
}

/* New tracebacks interned while the engine's next allocation fails, until
 * one insert fails (counted in tracebacks_lost_oom). */
static uint64_t lose_tracebacks(uint64_t tag0)
{
    ftm_stats st0, st;
    ftm_get_stats(&st0);
    ftm_frame f[2];
    for (uint64_t tag = tag0; tag < tag0 + 5000; tag++) {
        f[0] = (ftm_frame){tag, 1};
        f[1] = (ftm_frame){tag, 2};
        ftm_traceback tb = {.frames = f, .nframe = 2, .total_nframe = 2};
        ftm_mem_inject_failure(0);
        ftm_record_alloc(0, 0x9000000 + tag * 16, 1, &tb);
        ftm_mem_inject_failure(-1);
        ftm_get_stats(&st);
        if (st.tracebacks_lost_oom > st0.tracebacks_lost_oom) {
            break;
        }
    }
    ftm_flush();
    ftm_get_stats(&st);
    assert_true(st.tracebacks_lost_oom > st0.tracebacks_lost_oom);
    return st.tracebacks_lost_oom - st0.tracebacks_lost_oom;
}

static int teardown(void **state)
{
    (void)state;
    ftm_mem_inject_failure(-1);
    ftm_stop();
    return 0;
}

static void test_session_counters_reset_by_start(void **state)
{
    (void)state;
    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_stats c0; /* whatever earlier sessions of the process lost */
    ftm_get_stats(&c0);
    assert_int_equal(c0.session_events_lost, 0);
    assert_int_equal(c0.session_traces_lost_oom, 0);
    assert_int_equal(c0.session_tracebacks_lost_oom, 0);

    /* session 1 loses 2 events, some traces, some tracebacks (an injected
     * failure meant for a traceback may also fail a map insert: the session
     * figures are compared with the cumulative ones' growth, which is
     * exact whatever was hit) */
    lose_one_event();
    lose_one_event();
    uint64_t traces1 = lose_traces(0x10000000);
    uint64_t tbs1 = lose_tracebacks(1u << 20);
    ftm_stats s1;
    ftm_get_stats(&s1);
    assert_int_equal(s1.session_events_lost, 2);
    assert_int_equal(s1.events_lost, c0.events_lost + 2);
    assert_int_equal(s1.session_traces_lost_oom,
                     s1.traces_lost_oom - c0.traces_lost_oom);
    assert_true(s1.session_traces_lost_oom >= traces1);
    assert_int_equal(s1.session_tracebacks_lost_oom,
                     s1.tracebacks_lost_oom - c0.tracebacks_lost_oom);
    assert_true(s1.session_tracebacks_lost_oom >= tbs1);

    /* a clear is not a new session: nothing resets */
    ftm_clear();
    ftm_stats s;
    ftm_get_stats(&s);
    assert_int_equal(s.session_events_lost, 2);
    assert_int_equal(s.session_traces_lost_oom,
                     s.traces_lost_oom - c0.traces_lost_oom);
    assert_int_equal(s.session_tracebacks_lost_oom,
                     s.tracebacks_lost_oom - c0.tracebacks_lost_oom);
    assert_true(s.session_tracebacks_lost_oom >= tbs1);

    /* stopped: the last session's figures stay readable */
    ftm_stop();
    ftm_stats end1;
    ftm_get_stats(&end1);
    assert_int_equal(end1.session_events_lost, 2);
    assert_int_equal(end1.session_traces_lost_oom,
                     end1.traces_lost_oom - c0.traces_lost_oom);
    assert_true(end1.session_traces_lost_oom >= traces1);
    assert_int_equal(end1.session_tracebacks_lost_oom,
                     end1.tracebacks_lost_oom - c0.tracebacks_lost_oom);
    assert_true(end1.session_tracebacks_lost_oom >= tbs1);

    /* session 2 starts clean; the cumulative counters keep their values */
    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_get_stats(&s);
    assert_int_equal(s.session_events_lost, 0);
    assert_int_equal(s.session_traces_lost_oom, 0);
    assert_int_equal(s.session_tracebacks_lost_oom, 0);
    assert_int_equal(s.events_lost, end1.events_lost);
    assert_int_equal(s.traces_lost_oom, end1.traces_lost_oom);
    assert_int_equal(s.tracebacks_lost_oom, end1.tracebacks_lost_oom);

    /* and counts only its own losses */
    lose_one_event();
    uint64_t tbs2 = lose_tracebacks(1u << 24);
    ftm_get_stats(&s);
    assert_int_equal(s.session_events_lost, 1);
    assert_int_equal(s.events_lost, end1.events_lost + 1);
    assert_int_equal(s.session_traces_lost_oom,
                     s.traces_lost_oom - end1.traces_lost_oom);
    assert_int_equal(s.session_tracebacks_lost_oom,
                     s.tracebacks_lost_oom - end1.tracebacks_lost_oom);
    assert_true(s.session_tracebacks_lost_oom >= tbs2);
    printf("[ session  ] session 1 lost 2 events, %llu traces, %llu "
           "tracebacks; session 2 started at 0 and lost 1, 0, %llu\n",
           (unsigned long long)traces1, (unsigned long long)tbs1,
           (unsigned long long)tbs2);
    ftm_stop();
}

/* A loss in a session that ran without ever calling ftm_get_stats before
 * the next start still does not leak into that next session. */
static void test_no_stale_loss_in_next_session(void **state)
{
    (void)state;
    assert_int_equal(ftm_start(NULL), FTM_OK);
    lose_one_event();
    ftm_stop();
    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_record_alloc(0, 0x7000, 8, NULL);
    ftm_flush();
    ftm_stats s;
    ftm_get_stats(&s);
    assert_int_equal(s.session_events_lost, 0);
    assert_true(s.events_lost >= 1);
    ftm_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_session_counters_reset_by_start,
                                  teardown),
        cmocka_unit_test_teardown(test_no_stale_loss_in_next_session,
                                  teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
