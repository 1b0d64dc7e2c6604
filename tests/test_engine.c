/*
 * test_engine.c -- the public API of the engine, single- and few-threaded:
 * counters and peak, get_trace, domains, realloc (in place, moved, failed),
 * flush semantics, clear/stop/restart, tracebacks and generations, snapshot
 * pins across clear, pause, invalid input, engine memory after stop.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fasttracemalloc.h"
#include "memory.h"
#include "merger.h"

#define NUMPY_DOMAIN 389047u

static ftm_traceback make_tb(ftm_frame *frames, uint16_t n, uint64_t tag)
{
    for (uint16_t i = 0; i < n; i++) {
        frames[i].a = tag;
        frames[i].b = i;
    }
    ftm_traceback tb = {frames, n, (uint16_t)(n + 3), FTM_TB_NONE, 0, 0};
    return tb;
}

static void check_tb(ftm_tb_id id, uint64_t tag, uint16_t n)
{
    const ftm_frame *f = NULL;
    uint16_t nf = 0, total = 0;
    assert_int_equal(ftm_traceback_get(id, &f, &nf, &total), FTM_OK);
    assert_int_equal(nf, n);
    assert_int_equal(total, n + 3);
    for (uint16_t i = 0; i < n; i++) {
        assert_int_equal(f[i].a, tag);
        assert_int_equal(f[i].b, i);
    }
}

static void test_not_tracing(void **state)
{
    (void)state;
    assert_false(ftm_is_tracing());
    assert_int_equal(ftm_record_alloc(0, 0x1000, 10, NULL), FTM_OK);
    assert_int_equal(ftm_record_free(0, 0x1000), FTM_OK);
    ftm_realloc_ticket tk = ftm_record_realloc_begin(0, 0x1000);
    assert_int_equal(tk.active, 0);
    assert_int_equal(ftm_record_realloc_end(tk, 0, 0x1000, 0x2000, 5, NULL),
                     FTM_OK);
    size_t cur = 1, peak = 1;
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, 0);
    assert_int_equal(peak, 0);
    ftm_trace t;
    assert_int_equal(ftm_get_trace(0, 0x1000, &t), 0);
    ftm_snapshot snap;
    assert_int_equal(ftm_take_snapshot(&snap), FTM_OK);
    assert_int_equal(snap.ntraces, 0);
    ftm_snapshot_release(&snap);
    ftm_flush();
    ftm_clear();
    ftm_reset_peak();
    ftm_stop();
}

static void test_invalid_config(void **state)
{
    (void)state;
    ftm_config cfg = {.ring_capacity = 1000}; /* not a power of two */
    assert_int_equal(ftm_start(&cfg), FTM_EINVAL);
    cfg.ring_capacity = 1;
    assert_int_equal(ftm_start(&cfg), FTM_EINVAL);
    cfg.ring_capacity = 0;
    cfg.mem_backend = (ftm_mem_backend)7;
    assert_int_equal(ftm_start(&cfg), FTM_EINVAL);
    assert_false(ftm_is_tracing());
}

static void test_counters_peak_reset(void **state)
{
    (void)state;
    assert_int_equal(ftm_start(NULL), FTM_OK);
    assert_true(ftm_is_tracing());
    assert_int_equal(ftm_start(NULL), FTM_OK); /* no-op */
    size_t cur, peak;
    ftm_record_alloc(0, 0x1000, 100, NULL);
    ftm_record_alloc(0, 0x2000, 200, NULL);
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, 300);
    assert_int_equal(peak, 300);
    ftm_record_free(0, 0x1000);
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, 200);
    assert_int_equal(peak, 300);
    ftm_reset_peak();
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, 200);
    assert_int_equal(peak, 200);
    ftm_record_alloc(0, 0x3000, 50, NULL);
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, 250);
    assert_int_equal(peak, 250);
    /* freeing an untraced block changes nothing */
    ftm_record_free(0, 0x9999);
    /* re-alloc of a traced address replaces (lost free) */
    ftm_record_alloc(0, 0x2000, 20, NULL);
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, 70);
    assert_int_equal(peak, 250);
    ftm_stats st;
    ftm_get_stats(&st);
    assert_int_equal(st.live_traces, 2);
    assert_int_equal(st.events_lost, 0);
    ftm_stop();
    assert_false(ftm_is_tracing());
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, 0);
    assert_int_equal(peak, 0);
}

static void test_get_trace_and_domains(void **state)
{
    (void)state;
    ftm_frame fa[3], fb[5];
    ftm_traceback ta = make_tb(fa, 3, 0xA);
    ftm_traceback tbb = make_tb(fb, 5, 0xB);
    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_record_alloc(0, 0x5000, 64, &ta);
    ftm_record_alloc(NUMPY_DOMAIN, 0x5000, 4096, &tbb);
    ftm_record_alloc(7, 0x6000, 1, &ta);
    ftm_trace t0, t1, t2;
    assert_int_equal(ftm_get_trace(0, 0x5000, &t0), 1);
    assert_int_equal(ftm_get_trace(NUMPY_DOMAIN, 0x5000, &t1), 1);
    assert_int_equal(ftm_get_trace(7, 0x6000, &t2), 1);
    assert_int_equal(ftm_get_trace(7, 0x5000, &t2), 0);
    assert_int_equal(t0.size, 64);
    assert_int_equal(t0.domain, 0);
    assert_int_equal(t0.ptr, 0x5000);
    assert_int_equal(t1.size, 4096);
    assert_int_equal(t1.domain, NUMPY_DOMAIN);
    assert_int_equal(t2.tb, t0.tb); /* same traceback, same id */
    assert_int_not_equal(t0.tb, t1.tb);
    check_tb(t0.tb, 0xA, 3);
    check_tb(t1.tb, 0xB, 5);
    /* the caller's cache was filled */
    assert_int_not_equal(ta.cached_id, FTM_TB_NONE);
    ftm_record_free(NUMPY_DOMAIN, 0x5000);
    assert_int_equal(ftm_get_trace(NUMPY_DOMAIN, 0x5000, &t1), 0);
    assert_int_equal(ftm_get_trace(0, 0x5000, &t0), 1);
    size_t cur, peak;
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, 65);
    assert_int_equal(peak, 64 + 4096 + 1);
    /* a NULL traceback is allowed: no traceback id */
    ftm_record_alloc(0, 0x7000, 3, NULL);
    assert_int_equal(ftm_get_trace(0, 0x7000, &t0), 1);
    assert_int_equal(t0.tb, FTM_TB_NONE);
    assert_int_equal(ftm_traceback_get(FTM_TB_NONE, NULL, NULL, NULL),
                     FTM_EINVAL);
    ftm_stop();
}

static void test_realloc_events(void **state)
{
    (void)state;
    ftm_frame fa[2], fb[2];
    ftm_traceback ta = make_tb(fa, 2, 1);
    ftm_traceback tbb = make_tb(fb, 2, 2);
    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_record_alloc(0, 0x100, 10, &ta);
    /* in place: size and traceback replaced */
    ftm_realloc_ticket tk = ftm_record_realloc_begin(0, 0x100);
    assert_int_equal(tk.active, 1);
    assert_int_equal(ftm_record_realloc_end(tk, 0, 0x100, 0x100, 30, &tbb),
                     FTM_OK);
    ftm_trace t;
    assert_int_equal(ftm_get_trace(0, 0x100, &t), 1);
    assert_int_equal(t.size, 30);
    check_tb(t.tb, 2, 2);
    size_t cur, peak;
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, 30);
    assert_int_equal(peak, 30);
    /* moved: old trace gone, new one with the current traceback */
    tk = ftm_record_realloc_begin(0, 0x100);
    assert_int_equal(ftm_record_realloc_end(tk, 0, 0x100, 0x200, 50, &ta),
                     FTM_OK);
    assert_int_equal(ftm_get_trace(0, 0x100, &t), 0);
    assert_int_equal(ftm_get_trace(0, 0x200, &t), 1);
    assert_int_equal(t.size, 50);
    check_tb(t.tb, 1, 2);
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, 50);
    assert_int_equal(peak, 50);
    /* failed: nothing changes */
    tk = ftm_record_realloc_begin(0, 0x200);
    assert_int_equal(ftm_record_realloc_end(tk, 0, 0x200, 0, 1000, &tbb),
                     FTM_OK);
    assert_int_equal(ftm_get_trace(0, 0x200, &t), 1);
    assert_int_equal(t.size, 50);
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, 50);
    /* realloc of an untraced block (realloc(NULL) style) just adds */
    tk = ftm_record_realloc_begin(0, 0);
    assert_int_equal(ftm_record_realloc_end(tk, 0, 0, 0x300, 7, &ta), FTM_OK);
    assert_int_equal(ftm_get_trace(0, 0x300, &t), 1);
    assert_int_equal(t.size, 7);
    /* a record nested inside an open ticket is refused and counted */
    ftm_stats st0, st1;
    ftm_get_stats(&st0);
    tk = ftm_record_realloc_begin(0, 0x300);
    int nested = ftm_record_alloc(0, 0x400, 1, NULL);
    /* end the ticket before asserting: a failed assertion with the ticket
     * still open would leave its number unpushed, and the teardown's
     * ftm_stop would wait for it forever */
    assert_int_equal(ftm_record_realloc_end(tk, 0, 0x300, 0x300, 8, &ta),
                     FTM_OK);
    assert_int_equal(nested, FTM_ESTATE);
    ftm_get_stats(&st1);
    assert_int_equal(st1.events_lost, st0.events_lost + 1);
    assert_int_equal(ftm_get_trace(0, 0x400, &t), 0);
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, 58);
    ftm_stop();
}

static void *begin_only(void *arg)
{
    ftm_realloc_ticket *tk = arg;
    *tk = ftm_record_realloc_begin(0, 0x300);
    return NULL; /* exits with the ticket open (its number not pushed) */
}

static void *end_elsewhere(void *arg)
{
    ftm_realloc_ticket *tk = arg;
    return (void *)(intptr_t)ftm_record_realloc_end(*tk, 0, 0x300, 0x300, 9,
                                                    NULL);
}

/* realloc_end on the wrong thread: refused and counted, but the ticket's
 * number is still pushed, so the engine does not stall on it. */
static void test_realloc_end_wrong_thread(void **state)
{
    (void)state;
    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_stats st0, st;
    ftm_get_stats(&st0);
    ftm_realloc_ticket tk;
    pthread_t th;
    void *rc;
    pthread_create(&th, NULL, begin_only, &tk);
    pthread_join(th, NULL);
    assert_int_equal(tk.active, 1);
    pthread_create(&th, NULL, end_elsewhere, &tk);
    pthread_join(th, &rc);
    assert_int_equal((intptr_t)rc, FTM_EINVAL);
    ftm_get_stats(&st);
    assert_int_equal(st.events_lost, st0.events_lost + 1);
    ftm_record_alloc(0, 0x500, 5, NULL);
    size_t cur, peak;
    ftm_get_traced_memory(&cur, &peak); /* returns: nothing is stuck */
    assert_int_equal(cur, 5);
    ftm_stop();
}

/* The wrong thread has recorded more than the reorder window holds since
 * the ticket's number was taken, so its ring already holds events that
 * cannot enter the window until that number is applied.  Pushed behind
 * them, the ticket's number would never be reached: every query and
 * ftm_stop would wait forever.  It must still be applied (as a counted
 * NOP), and everything recorded around it exactly. */
#define WRONG_THREAD_EVENTS (FTM_WINDOW_EVENTS + 100)

static void *record_then_end_elsewhere(void *arg)
{
    ftm_realloc_ticket *tk = arg;
    for (uintptr_t i = 0; i < WRONG_THREAD_EVENTS; i++) {
        ftm_record_alloc(0, 0x1000000 + i * 16, 1, NULL);
    }
    return (void *)(intptr_t)ftm_record_realloc_end(*tk, 0, 0x300, 0x300, 9,
                                                    NULL);
}

static void test_realloc_end_wrong_thread_behind_window(void **state)
{
    (void)state;
    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_stats st0, st;
    ftm_get_stats(&st0);
    ftm_realloc_ticket tk;
    pthread_t th;
    void *rc;
    pthread_create(&th, NULL, begin_only, &tk);
    pthread_join(th, NULL);
    assert_int_equal(tk.active, 1);
    pthread_create(&th, NULL, record_then_end_elsewhere, &tk);
    pthread_join(th, &rc);
    assert_int_equal((intptr_t)rc, FTM_EINVAL);
    size_t cur, peak;
    ftm_get_traced_memory(&cur, &peak); /* returns: nothing is stuck */
    assert_int_equal(cur, WRONG_THREAD_EVENTS);
    assert_int_equal(peak, WRONG_THREAD_EVENTS);
    ftm_get_stats(&st);
    assert_int_equal(st.events_lost, st0.events_lost + 1);
    assert_int_equal(st.live_traces, WRONG_THREAD_EVENTS);
    assert_int_equal(st.events_recorded - st0.events_recorded,
                     st.events_applied - st0.events_applied);
    ftm_stop();
}

static void test_clear_stop_restart(void **state)
{
    (void)state;
    ftm_frame fa[4];
    ftm_traceback ta = make_tb(fa, 4, 0xC);
    size_t base_mem = ftm_engine_memory();
    ftm_stats st0;
    ftm_get_stats(&st0);
    assert_int_equal(ftm_start(NULL), FTM_OK);
    for (uintptr_t i = 1; i <= 100; i++) {
        ftm_record_alloc(0, i * 16, i, &ta);
    }
    uint32_t gen_before = ta.cached_generation;
    size_t cur, peak;
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, 5050);
    ftm_clear();
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, 0);
    assert_int_equal(peak, 0);
    ftm_stats st;
    ftm_get_stats(&st);
    assert_int_equal(st.live_traces, 0);
    assert_int_equal(st.tracebacks, 0); /* new generation */
    /* a free of a block allocated before the clear is harmless */
    ftm_record_free(0, 16);
    ftm_record_alloc(0, 0x9000, 11, &ta);
    assert_int_not_equal(ta.cached_generation, gen_before);
    ftm_trace t;
    assert_int_equal(ftm_get_trace(0, 0x9000, &t), 1);
    check_tb(t.tb, 0xC, 4);
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, 11);
    ftm_stop();
    /* stopped: records are no-ops, queries empty */
    ftm_record_alloc(0, 0xA000, 5, &ta);
    assert_int_equal(ftm_get_trace(0, 0x9000, &t), 0);
    assert_int_equal(ftm_engine_memory(), base_mem); /* all but rings */
    /* restart with a fresh state */
    assert_int_equal(ftm_start(NULL), FTM_OK);
    assert_int_equal(ftm_get_trace(0, 0x9000, &t), 0);
    ftm_record_alloc(0, 0xB000, 9, &ta);
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, 9);
    assert_int_equal(peak, 9);
    ftm_get_stats(&st);
    assert_int_equal(st.events_lost, st0.events_lost);
    /* the public counter is the engine's own figure, and every event taken
     * out of a ring was either applied or ignored */
    assert_int_equal(st.events_ignored, ftm_engine_events_ignored());
    assert_int_equal(st.events_recorded,
                     st.events_applied + st.events_ignored);
    ftm_stop();
}

static void test_snapshot_pin_across_clear(void **state)
{
    (void)state;
    ftm_frame fa[3], fb[3];
    ftm_traceback ta = make_tb(fa, 3, 0x51);
    ftm_traceback tbb = make_tb(fb, 3, 0x52);
    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_record_alloc(0, 0x10, 1, &ta);
    ftm_record_alloc(0, 0x20, 2, &tbb);
    ftm_snapshot snap;
    assert_int_equal(ftm_take_snapshot(&snap), FTM_OK);
    assert_int_equal(snap.ntraces, 2);
    ftm_clear();
    /* new generation: intern the tracebacks in the other order */
    ftm_record_alloc(0, 0x30, 3, &tbb);
    ftm_record_alloc(0, 0x40, 4, &ta);
    for (size_t i = 0; i < snap.ntraces; i++) {
        const ftm_trace *t = &snap.traces[i];
        if (t->ptr == 0x10) {
            assert_int_equal(t->size, 1);
            check_tb(t->tb, 0x51, 3);
        } else {
            assert_int_equal(t->ptr, 0x20);
            assert_int_equal(t->size, 2);
            check_tb(t->tb, 0x52, 3);
        }
    }
    ftm_trace t3, t4;
    assert_int_equal(ftm_get_trace(0, 0x30, &t3), 1);
    assert_int_equal(ftm_get_trace(0, 0x40, &t4), 1);
    check_tb(t3.tb, 0x52, 3);
    check_tb(t4.tb, 0x51, 3);
    /* ids of the two generations do not collide while both are alive */
    for (size_t i = 0; i < snap.ntraces; i++) {
        assert_int_not_equal(snap.traces[i].tb, t3.tb);
        assert_int_not_equal(snap.traces[i].tb, t4.tb);
    }
    /* the pin survives stop too */
    ftm_snapshot snap2;
    assert_int_equal(ftm_take_snapshot(&snap2), FTM_OK);
    assert_int_equal(snap2.ntraces, 2);
    ftm_stop();
    check_tb(snap.traces[0].tb, snap.traces[0].ptr == 0x10 ? 0x51 : 0x52, 3);
    ftm_snapshot_release(&snap);
    for (size_t i = 0; i < snap2.ntraces; i++) {
        check_tb(snap2.traces[i].tb, snap2.traces[i].ptr == 0x40 ? 0x51 : 0x52,
                 3);
    }
    ftm_snapshot_release(&snap2);
    assert_null(snap2.traces);
}

#define MT_THREADS 4
#define MT_EACH 20000

static pthread_barrier_t mt_barrier;

static void *mt_worker(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    ftm_frame f[2];
    ftm_traceback tb = make_tb(f, 2, 100 + id);
    for (uintptr_t i = 0; i < MT_EACH; i++) {
        uintptr_t p = (id << 32) | (i * 16 + 16);
        ftm_record_alloc(0, p, 1 + (i % 7), &tb);
        if (i % 3 == 0) {
            ftm_record_free(0, p);
        }
    }
    /* everything above was recorded before the main thread's queries */
    pthread_barrier_wait(&mt_barrier);
    pthread_barrier_wait(&mt_barrier); /* main has checked */
    return NULL;
}

static void test_multithread_flush(void **state)
{
    (void)state;
    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_stats st0;
    ftm_get_stats(&st0);
    pthread_barrier_init(&mt_barrier, NULL, MT_THREADS + 1);
    pthread_t th[MT_THREADS];
    for (uintptr_t i = 0; i < MT_THREADS; i++) {
        pthread_create(&th[i], NULL, mt_worker, (void *)(i + 1));
    }
    pthread_barrier_wait(&mt_barrier);
    /* threads are alive and idle; every event was recorded before this */
    size_t expect_cur = 0, expect_n = 0;
    for (uintptr_t i = 0; i < MT_EACH; i++) {
        if (i % 3 != 0) {
            expect_cur += 1 + (i % 7);
            expect_n++;
        }
    }
    size_t cur, peak;
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, expect_cur * MT_THREADS);
    assert_true(peak >= cur);
    ftm_snapshot snap;
    assert_int_equal(ftm_take_snapshot(&snap), FTM_OK);
    assert_int_equal(snap.ntraces, expect_n * MT_THREADS);
    for (size_t i = 0; i < snap.ntraces; i++) {
        uintptr_t owner = snap.traces[i].ptr >> 32;
        uintptr_t idx = ((snap.traces[i].ptr & 0xffffffffu) - 16) / 16;
        assert_int_equal(snap.traces[i].size, 1 + (idx % 7));
        check_tb(snap.traces[i].tb, 100 + owner, 2);
    }
    ftm_snapshot_release(&snap);
    pthread_barrier_wait(&mt_barrier);
    for (int i = 0; i < MT_THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    ftm_stats st;
    ftm_get_stats(&st);
    assert_int_equal(st.events_lost, st0.events_lost);
    assert_true(st.threads_registered >= MT_THREADS);
    ftm_stop();
    pthread_barrier_destroy(&mt_barrier);
}

static void test_pause(void **state)
{
    (void)state;
    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_thread_pause();
    ftm_thread_pause();
    ftm_record_alloc(0, 0x77, 7, NULL);
    ftm_thread_resume();
    ftm_record_alloc(0, 0x78, 8, NULL);
    ftm_thread_resume();
    ftm_thread_resume(); /* extra resume is harmless */
    ftm_record_alloc(0, 0x79, 9, NULL);
    ftm_trace t;
    assert_int_equal(ftm_get_trace(0, 0x77, &t), 0);
    assert_int_equal(ftm_get_trace(0, 0x78, &t), 0);
    assert_int_equal(ftm_get_trace(0, 0x79, &t), 1);
    ftm_stop();
}

static void test_memory_back_after_stop(void **state)
{
    (void)state;
    ftm_flush();
    size_t before = ftm_engine_memory(); /* includes main's ring */
    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_frame f[8];
    for (uintptr_t i = 0; i < 5000; i++) {
        ftm_traceback tb = make_tb(f, 8, i % 300);
        ftm_record_alloc(0, 0x100000 + i * 32, 32, &tb);
    }
    ftm_flush();
    assert_true(ftm_engine_memory() > before);
    ftm_stop();
    assert_int_equal(ftm_engine_memory(), before);
}

static void test_start_out_of_memory(void **state)
{
    (void)state;
    size_t before = ftm_engine_memory();
    int failed = 0, ok = 0;
    /* fail the k-th allocation of ftm_start, for every k it makes */
    for (long k = 0; k < 64; k++) {
        ftm_mem_inject_failure(k);
        int rc = ftm_start(NULL);
        ftm_mem_inject_failure(-1);
        if (rc == FTM_ENOMEM) {
            failed++;
            assert_false(ftm_is_tracing());
            assert_int_equal(ftm_engine_memory(), before);
        } else {
            assert_int_equal(rc, FTM_OK);
            ok++;
            ftm_record_alloc(0, 0x42, 42, NULL);
            size_t cur, peak;
            ftm_get_traced_memory(&cur, &peak);
            assert_int_equal(cur, 42);
            ftm_stop();
            assert_int_equal(ftm_engine_memory(), before);
        }
    }
    assert_true(failed >= 3); /* map, window, generation, pool */
    assert_true(ok > 0);
}

static void *record_one(void *arg)
{
    int *rc = arg;
    *rc = ftm_record_alloc(0, 0x4242, 1, NULL);
    return NULL;
}

static void test_record_out_of_memory(void **state)
{
    (void)state;
    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_stats st0, st;
    ftm_get_stats(&st0);
    /* a new thread whose ring cannot be created: counted, reported */
    int rc = 0;
    pthread_t th;
    ftm_mem_inject_failure(0);
    pthread_create(&th, NULL, record_one, &rc);
    pthread_join(th, NULL);
    ftm_mem_inject_failure(-1);
    assert_int_equal(rc, FTM_ENOMEM);
    ftm_get_stats(&st);
    assert_int_equal(st.events_lost, st0.events_lost + 1);

    /* one allocation failing somewhere in a big batch (map growth, a
     * traceback insert, ...): every alloc is either a live trace or counted
     * in traces_lost_oom; a failed traceback insert is counted too */
    ftm_frame f[2];
    const size_t n = 50000;
    size_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % 1000 == 0) {
            ftm_mem_inject_failure((long)(i / 1000) % 4);
        }
        ftm_traceback tb = make_tb(f, 2, i % 3000);
        ftm_record_alloc(0, 0x1000000 + i * 16, i % 100 + 1, &tb);
        sum += i % 100 + 1;
    }
    ftm_flush();
    ftm_mem_inject_failure(-1);
    ftm_get_stats(&st);
    assert_int_equal(
        st.live_traces + (st.traces_lost_oom - st0.traces_lost_oom), n);
    /* a brand-new traceback whose insert fails: no id, counted */
    uint64_t tb_oom = st.tracebacks_lost_oom;
    for (uint64_t tag = 1u << 20; tag < (1u << 20) + 200; tag++) {
        ftm_traceback tb = make_tb(f, 2, tag);
        ftm_mem_inject_failure(0);
        ftm_record_alloc(0, 0x3000000 + tag * 16, 1, &tb);
        sum += 1;
        ftm_mem_inject_failure(-1);
        ftm_flush();
        ftm_get_stats(&st);
        if (st.tracebacks_lost_oom > tb_oom) {
            ftm_trace t;
            assert_int_equal(ftm_get_trace(0, 0x3000000 + tag * 16, &t), 1);
            assert_int_equal(t.tb, FTM_TB_NONE);
            break;
        }
    }
    assert_true(st.tracebacks_lost_oom > tb_oom);
    ftm_snapshot snap;
    assert_int_equal(ftm_take_snapshot(&snap), FTM_OK);
    size_t snap_sum = 0;
    for (size_t i = 0; i < snap.ntraces; i++) {
        snap_sum += snap.traces[i].size;
    }
    ftm_snapshot_release(&snap);
    size_t cur, peak;
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, snap_sum);
    assert_true(cur <= sum);

    /* snapshot allocations failing: FTM_ENOMEM, nothing leaked */
    size_t mem = ftm_engine_memory();
    for (long k = 0; k < 2; k++) {
        ftm_mem_inject_failure(k);
        assert_int_equal(ftm_take_snapshot(&snap), FTM_ENOMEM);
        ftm_mem_inject_failure(-1);
        assert_int_equal(ftm_engine_memory(), mem);
    }
    ftm_stop();
}

/* A failed assertion must not leave a session running into the next
 * test. */
static int stop_engine(void **state)
{
    (void)state;
    ftm_stop();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_not_tracing, stop_engine),
        cmocka_unit_test_teardown(test_invalid_config, stop_engine),
        cmocka_unit_test_teardown(test_counters_peak_reset, stop_engine),
        cmocka_unit_test_teardown(test_get_trace_and_domains, stop_engine),
        cmocka_unit_test_teardown(test_realloc_events, stop_engine),
        cmocka_unit_test_teardown(test_realloc_end_wrong_thread, stop_engine),
        cmocka_unit_test_teardown(test_realloc_end_wrong_thread_behind_window,
                                  stop_engine),
        cmocka_unit_test_teardown(test_clear_stop_restart, stop_engine),
        cmocka_unit_test_teardown(test_snapshot_pin_across_clear, stop_engine),
        cmocka_unit_test_teardown(test_multithread_flush, stop_engine),
        cmocka_unit_test_teardown(test_pause, stop_engine),
        cmocka_unit_test_teardown(test_memory_back_after_stop, stop_engine),
        cmocka_unit_test_teardown(test_start_out_of_memory, stop_engine),
        cmocka_unit_test_teardown(test_record_out_of_memory, stop_engine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
