/*
 * test_retrace.c -- ftm_record_retrace: a block handed out again without a
 * new allocation (CPython 3.13+ free lists, through PyRefTracer's CREATE
 * event) gets the current traceback if it is traced, and nothing happens
 * otherwise, like the builtin's _PyTraceMalloc_TraceRef.
 *
 * Checks: a retrace of a traced block replaces its traceback (get_trace and
 * snapshot) and leaves size, current, peak and the trace count unchanged;
 * the caller's traceback cache is filled and honoured as for an alloc; a
 * NULL traceback leaves no traceback, one that cannot be interned (out of
 * memory) leaves the old one; a retrace of an untraced address (or
 * of a freed block) inserts nothing and counts nothing lost; events are
 * counted like an alloc's; cross-thread ordering (alloc on X, free and
 * re-alloc at the same address on Y, retrace on Z, no flush in between:
 * the retraced traceback wins; a retrace before the free does not survive
 * it); nothing is recorded while not tracing, while paused, or nested in an
 * open realloc ticket (counted lost, as an alloc); and retraces racing with
 * frees of the same blocks on 1-3 other threads never resurrect a trace.
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
#include "memory.h"
#include "stress_common.h"

#define NUMPY_DOMAIN 389047u

static void check_trace(ftm_domain_t d, uintptr_t p, size_t size, uint64_t tag)
{
    ftm_trace t;
    assert_int_equal(ftm_get_trace(d, p, &t), 1);
    assert_int_equal(t.size, size);
    assert_int_equal(stress_tag_of(t.tb), tag);
}

static void check_no_trace(ftm_domain_t d, uintptr_t p)
{
    ftm_trace t;
    assert_int_equal(ftm_get_trace(d, p, &t), 0);
}

static void counters_are(size_t cur, size_t peak)
{
    size_t c = 0, p = 0;
    ftm_get_traced_memory(&c, &p);
    assert_int_equal(c, cur);
    assert_int_equal(p, peak);
}

/* The snapshot's trace of (d, p): its traceback tag, UINT64_MAX if absent.
 * Also checks the number of traces. */
static uint64_t snapshot_tag(ftm_domain_t d, uintptr_t p, size_t ntraces)
{
    ftm_snapshot snap;
    assert_int_equal(ftm_take_snapshot(&snap), FTM_OK);
    assert_int_equal(snap.ntraces, ntraces);
    uint64_t tag = UINT64_MAX;
    for (size_t i = 0; i < snap.ntraces; i++) {
        if (snap.traces[i].domain == d && snap.traces[i].ptr == p) {
            tag = stress_tag_of(snap.traces[i].tb);
        }
    }
    ftm_snapshot_release(&snap);
    return tag;
}

static void test_retrace_traced_block(void **state)
{
    (void)state;
    stress_tb t1, t2, t3;
    stress_tb_init(&t1, 1);
    stress_tb_init(&t2, 2);
    stress_tb_init(&t3, 3);
    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_record_alloc(0, 0x1000, 100, &t1.tb);
    ftm_record_alloc(0, 0x2000, 50, &t1.tb);
    ftm_record_alloc(NUMPY_DOMAIN, 0x1000, 7, &t1.tb);
    ftm_record_free(0, 0x2000);
    counters_are(107, 157);
    ftm_stats st0, st;
    ftm_get_stats(&st0);

    assert_int_equal(t2.tb.cached_id, FTM_TB_NONE);
    assert_int_equal(ftm_record_retrace(0, 0x1000, &t2.tb), FTM_OK);
    assert_int_not_equal(t2.tb.cached_id, FTM_TB_NONE); /* interned */
    check_trace(0, 0x1000, 100, 2);
    check_trace(NUMPY_DOMAIN, 0x1000, 7, 1); /* other domain untouched */
    counters_are(107, 157);
    assert_int_equal(snapshot_tag(0, 0x1000, 2), 2);
    ftm_get_stats(&st);
    assert_int_equal(st.events_recorded, st0.events_recorded + 1);
    assert_int_equal(st.events_applied, st0.events_applied + 1);
    assert_int_equal(st.events_lost, st0.events_lost);
    assert_int_equal(st.live_traces, 2);
    assert_int_equal(st.tracebacks, 2);

    /* the cached id is used as is (the frames are not read again), and an
     * alloc with the same struct gets the same traceback id */
    ftm_trace a, b;
    t3.frames[0].a = 99; /* not re-interned while cached_id is set... */
    t3.tb.cached_id = t2.tb.cached_id;
    t3.tb.cached_generation = t2.tb.cached_generation;
    ftm_record_retrace(NUMPY_DOMAIN, 0x1000, &t3.tb);
    ftm_record_alloc(0, 0x3000, 30, &t2.tb);
    assert_int_equal(ftm_get_trace(NUMPY_DOMAIN, 0x1000, &a), 1);
    assert_int_equal(ftm_get_trace(0, 0x3000, &b), 1);
    assert_int_equal(a.tb, b.tb);
    assert_int_equal(stress_tag_of(a.tb), 2);
    assert_int_equal(a.size, 7);
    ftm_get_stats(&st);
    assert_int_equal(st.tracebacks, 2);
    counters_are(137, 157);

    /* ... and a stale generation is re-interned */
    stress_tb_init(&t3, 3);
    t3.tb.cached_id = t2.tb.cached_id;
    t3.tb.cached_generation = t2.tb.cached_generation + 1;
    ftm_record_retrace(0, 0x3000, &t3.tb);
    check_trace(0, 0x3000, 30, 3);
    assert_int_not_equal(t3.tb.cached_id, t2.tb.cached_id);

    /* retraced twice: the last one wins; peak never moves */
    ftm_record_retrace(0, 0x1000, &t3.tb);
    ftm_record_retrace(0, 0x1000, &t1.tb);
    check_trace(0, 0x1000, 100, 1);
    ftm_reset_peak();
    ftm_record_retrace(0, 0x1000, &t2.tb);
    counters_are(137, 137);

    /* no traceback: the trace keeps its size and has none (like an alloc
     * without one) */
    ftm_record_retrace(0, 0x1000, NULL);
    assert_int_equal(ftm_get_trace(0, 0x1000, &a), 1);
    assert_int_equal(a.size, 100);
    assert_int_equal(a.tb, FTM_TB_NONE);
    counters_are(137, 137);

    /* after a clear: new generation, the retrace re-interns */
    ftm_clear();
    ftm_record_alloc(0, 0x1000, 5, &t1.tb);
    ftm_record_retrace(0, 0x1000, &t2.tb);
    check_trace(0, 0x1000, 5, 2);
    counters_are(5, 5);
    ftm_get_stats(&st);
    assert_int_equal(st.events_lost, st0.events_lost);
    assert_int_equal(st.traces_lost_oom, 0);
    ftm_stop();
}

static void test_retrace_untraced_address(void **state)
{
    (void)state;
    stress_tb t1, t2;
    stress_tb_init(&t1, 1);
    stress_tb_init(&t2, 2);
    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_record_alloc(0, 0x1000, 100, &t1.tb);
    ftm_record_alloc(0, 0x2000, 40, &t1.tb);
    ftm_record_free(0, 0x2000);
    ftm_flush();
    ftm_stats st0, st;
    ftm_get_stats(&st0);
    /* never traced, freed, another domain, address 0 */
    assert_int_equal(ftm_record_retrace(0, 0x9000, &t2.tb), FTM_OK);
    assert_int_equal(ftm_record_retrace(0, 0x2000, &t2.tb), FTM_OK);
    assert_int_equal(ftm_record_retrace(NUMPY_DOMAIN, 0x1000, &t2.tb), FTM_OK);
    assert_int_equal(ftm_record_retrace(0, 0, &t2.tb), FTM_OK);
    check_no_trace(0, 0x9000);
    check_no_trace(0, 0x2000);
    check_no_trace(NUMPY_DOMAIN, 0x1000);
    check_no_trace(0, 0);
    check_trace(0, 0x1000, 100, 1);
    counters_are(100, 140);
    assert_int_equal(snapshot_tag(0, 0x1000, 1), 1);
    ftm_get_stats(&st);
    assert_int_equal(st.live_traces, 1);
    assert_int_equal(st.events_recorded, st0.events_recorded + 4);
    assert_int_equal(st.events_applied, st0.events_applied + 4);
    assert_int_equal(st.events_lost, st0.events_lost); /* not a loss */
    assert_int_equal(st.traces_lost_oom, 0);
    /* a later alloc at such an address is an ordinary new trace */
    ftm_record_alloc(0, 0x9000, 9, &t1.tb);
    check_trace(0, 0x9000, 9, 1);
    counters_are(109, 140);
    ftm_stop();
}

/* A new traceback whose insert fails: counted in tracebacks_lost_oom, the
 * event is still numbered and applied (as a NOP), the trace keeps its old
 * traceback, nothing is lost, size and counters are unchanged. */
static void test_retrace_traceback_out_of_memory(void **state)
{
    (void)state;
    stress_tb t1;
    stress_tb_init(&t1, 1);
    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_record_alloc(0, 0x1000, 100, &t1.tb);
    check_trace(0, 0x1000, 100, 1);
    ftm_stats st0, st;
    ftm_get_stats(&st0);
    bool failed = false;
    for (uint64_t tag = 1000; tag < 1200 && !failed; tag++) {
        stress_tb tn;
        stress_tb_init(&tn, tag);
        ftm_flush();
        ftm_get_stats(&st0);
        ftm_mem_inject_failure(0);
        assert_int_equal(ftm_record_retrace(0, 0x1000, &tn.tb), FTM_OK);
        ftm_mem_inject_failure(-1);
        ftm_flush();
        ftm_get_stats(&st);
        assert_int_equal(st.events_recorded, st0.events_recorded + 1);
        assert_int_equal(st.events_applied, st0.events_applied + 1);
        if (st.tracebacks_lost_oom > st0.tracebacks_lost_oom) {
            failed = true;
            assert_int_equal(tn.tb.cached_id, FTM_TB_NONE);
            check_trace(0, 0x1000, 100, 1); /* unchanged */
        } else {
            check_trace(0, 0x1000, 100, tag); /* the failure hit elsewhere */
            ftm_record_retrace(0, 0x1000, &t1.tb);
        }
    }
    assert_true(failed);
    assert_int_equal(st.events_lost, st0.events_lost);
    assert_int_equal(st.traces_lost_oom, 0);
    counters_are(100, 100);
    ftm_stop();
}

/* ---- ordering across threads ---------------------------------------------
 */

/* A script of steps, each run by one of three long-lived threads in turn
 * (a turn counter under a mutex: happens-before between consecutive steps,
 * no flush anywhere, so only the sequence numbers order the three rings). */
enum { OP_ALLOC, OP_FREE, OP_RETRACE };

typedef struct step {
    int thread;
    int op;
    uintptr_t ptr;
    size_t size;
    int tag; /* 1 .. 3: one traceback per thread */
} step;

#define ORD_ROUNDS 200
#define ORD_STEPS (ORD_ROUNDS * 9)

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t turn;
    step steps[ORD_STEPS];
    size_t nsteps;
} ord = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
};

static void ord_add(int thread, int op, uintptr_t ptr, size_t size)
{
    step *s = &ord.steps[ord.nsteps++];
    s->thread = thread;
    s->op = op;
    s->ptr = ptr;
    s->size = size;
    s->tag = thread + 1;
}

static void *ord_worker(void *arg)
{
    int me = (int)(intptr_t)arg;
    stress_tb tb;
    stress_tb_init(&tb, (uint64_t)me + 1);
    for (size_t i = 0; i < ord.nsteps; i++) {
        const step *s = &ord.steps[i];
        if (s->thread != me) {
            continue;
        }
        pthread_mutex_lock(&ord.lock);
        while (ord.turn != i) {
            pthread_cond_wait(&ord.cond, &ord.lock);
        }
        pthread_mutex_unlock(&ord.lock);
        switch (s->op) {
        case OP_ALLOC:
            ftm_record_alloc(0, s->ptr, s->size, &tb.tb);
            break;
        case OP_FREE:
            ftm_record_free(0, s->ptr);
            break;
        default:
            ftm_record_retrace(0, s->ptr, &tb.tb);
            break;
        }
        pthread_mutex_lock(&ord.lock);
        ord.turn = i + 1;
        pthread_cond_broadcast(&ord.cond);
        pthread_mutex_unlock(&ord.lock);
    }
    return NULL;
}

static void test_retrace_order_across_threads(void **state)
{
    (void)state;
    enum { X = 0, Y = 1, Z = 2 };
    ord.nsteps = 0;
    ord.turn = 0;
    for (uintptr_t i = 0; i < ORD_ROUNDS; i++) {
        uintptr_t a = 0x100000 + i * 64, b = a + 16, c = a + 32;
        /* A: alloc on X, free + re-alloc at the same address on Y, then
         * retrace on Z: Y's size, Z's traceback */
        ord_add(X, OP_ALLOC, a, 10 + i % 5);
        ord_add(Y, OP_FREE, a, 0);
        ord_add(Y, OP_ALLOC, a, 20 + i % 7);
        ord_add(Z, OP_RETRACE, a, 0);
        /* B: retrace on Z before Y's free: the free still wins */
        ord_add(X, OP_ALLOC, b, 30);
        ord_add(Z, OP_RETRACE, b, 0);
        ord_add(Y, OP_FREE, b, 0);
        /* C: retrace on Z after Y's free: not resurrected */
        ord_add(Y, OP_FREE, c, 0); /* untraced yet: nothing */
        ord_add(Z, OP_RETRACE, c, 0);
    }
    assert_int_equal(ord.nsteps, ORD_STEPS);
    /* the serial model: current and peak */
    size_t cur = 0, peak = 0;
    size_t sizes[ORD_ROUNDS * 3] = {0};
    for (size_t i = 0; i < ord.nsteps; i++) {
        const step *s = &ord.steps[i];
        size_t k = (s->ptr - 0x100000) / 16;
        k = (k / 4) * 3 + k % 4;
        if (s->op == OP_ALLOC) {
            cur = cur - sizes[k] + s->size;
            sizes[k] = s->size;
        } else if (s->op == OP_FREE) {
            cur -= sizes[k];
            sizes[k] = 0;
        }
        if (cur > peak) {
            peak = cur;
        }
    }

    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_stats st0, st;
    ftm_get_stats(&st0);
    pthread_t th[3];
    for (intptr_t t = 0; t < 3; t++) {
        assert_int_equal(pthread_create(&th[t], NULL, ord_worker, (void *)t),
                         0);
    }
    for (int t = 0; t < 3; t++) {
        pthread_join(th[t], NULL);
    }
    for (uintptr_t i = 0; i < ORD_ROUNDS; i++) {
        uintptr_t a = 0x100000 + i * 64;
        check_trace(0, a, 20 + i % 7, Z + 1);
        check_no_trace(0, a + 16);
        check_no_trace(0, a + 32);
    }
    counters_are(cur, peak);
    ftm_get_stats(&st);
    assert_int_equal(st.live_traces, ORD_ROUNDS);
    assert_int_equal(st.events_lost, st0.events_lost);
    assert_int_equal(st.events_recorded - st0.events_recorded, ORD_STEPS);
    assert_int_equal(st.events_applied - st0.events_applied, ORD_STEPS);
    ftm_stop();
}

/* ---- sessions, pause, realloc tickets ----------------------------------- */

static void test_retrace_not_tracing_paused_ticket(void **state)
{
    (void)state;
    stress_tb t1, t2;
    stress_tb_init(&t1, 1);
    stress_tb_init(&t2, 2);

    /* not tracing: a no-op returning 0, the traceback is not interned */
    assert_false(ftm_is_tracing());
    ftm_stats st0, st;
    ftm_get_stats(&st0);
    assert_int_equal(ftm_record_retrace(0, 0x1000, &t2.tb), FTM_OK);
    assert_int_equal(t2.tb.cached_id, FTM_TB_NONE);
    ftm_get_stats(&st);
    assert_int_equal(st.events_recorded, st0.events_recorded);

    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_record_alloc(0, 0x1000, 10, &t1.tb);
    check_trace(0, 0x1000, 10, 1);
    ftm_get_stats(&st0);

    /* paused: nothing recorded, nothing lost */
    ftm_thread_pause();
    assert_int_equal(ftm_record_retrace(0, 0x1000, &t2.tb), FTM_OK);
    ftm_thread_resume();
    assert_int_equal(t2.tb.cached_id, FTM_TB_NONE);
    check_trace(0, 0x1000, 10, 1);
    ftm_get_stats(&st);
    assert_int_equal(st.events_recorded, st0.events_recorded);
    assert_int_equal(st.events_lost, st0.events_lost);

    /* nested in an open realloc ticket: dropped and counted, as an alloc */
    ftm_realloc_ticket tk = ftm_record_realloc_begin(0, 0x5000);
    assert_int_equal(tk.active, 1);
    assert_int_equal(ftm_record_retrace(0, 0x1000, &t2.tb), FTM_ESTATE);
    assert_int_equal(ftm_record_realloc_end(tk, 0, 0x5000, 0, 8, &t1.tb),
                     FTM_OK);
    check_trace(0, 0x1000, 10, 1);
    ftm_get_stats(&st);
    assert_int_equal(st.events_lost, st0.events_lost + 1);

    /* resumed: it takes effect */
    ftm_record_retrace(0, 0x1000, &t2.tb);
    check_trace(0, 0x1000, 10, 2);
    counters_are(10, 10);

    /* stopped, then restarted: the trace is gone and a retrace made while
     * stopped does not bring anything back */
    ftm_stop();
    ftm_get_stats(&st0);
    assert_int_equal(ftm_record_retrace(0, 0x1000, &t1.tb), FTM_OK);
    ftm_get_stats(&st);
    assert_int_equal(st.events_recorded, st0.events_recorded);
    assert_int_equal(st.events_ignored, st0.events_ignored);
    assert_int_equal(ftm_start(NULL), FTM_OK);
    check_no_trace(0, 0x1000);
    counters_are(0, 0);
    ftm_stop();
}

/* ---- retraces racing with frees ------------------------------------------
 */

#define RACE_BLOCKS 64
#define RACE_BASE ((uintptr_t)0x7e0000000000)
#define RACE_MAX_THREADS 4

static struct {
    pthread_barrier_t barrier;
    int nthreads;
    uint64_t iterations;
    _Atomic int stop;
} race;

static uintptr_t race_ptr(int k)
{
    return RACE_BASE + (uintptr_t)k * 48;
}

/* Even blocks are freed; odd ones freed and allocated again at once by the
 * freeing thread (a new owner, size 1000 + k, tag 50). */
static void *race_worker(void *arg)
{
    int me = (int)(intptr_t)arg;
    stress_tb tb;
    stress_tb_init(&tb, me == 0 ? 50 : 60 + (uint64_t)me);
    stress_rng rng = {0x9E3779B97F4A7C15ULL * (uint64_t)(me + 7)};
    for (uint64_t it = 0; it < race.iterations; it++) {
        pthread_barrier_wait(&race.barrier); /* blocks allocated */
        int start = (int)stress_below(&rng, RACE_BLOCKS);
        for (int j = 0; j < RACE_BLOCKS; j++) {
            int k = (start + j) % RACE_BLOCKS;
            if (me == 0) {
                ftm_record_free(0, race_ptr(k));
                if (k % 2 == 1) {
                    ftm_record_alloc(0, race_ptr(k), 1000 + (size_t)k, &tb.tb);
                }
            } else {
                ftm_record_retrace(0, race_ptr(k), &tb.tb);
            }
            if (stress_below(&rng, 16) == 0) {
                sched_yield();
            }
        }
        pthread_barrier_wait(&race.barrier); /* round done */
    }
    return NULL;
}

static void race_run(int nthreads, uint64_t iterations)
{
    stress_tb t0;
    stress_tb_init(&t0, 40);
    race.nthreads = nthreads;
    race.iterations = iterations;
    pthread_barrier_init(&race.barrier, NULL, (unsigned)nthreads + 1);
    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_stats st0, st;
    ftm_get_stats(&st0);
    pthread_t th[RACE_MAX_THREADS];
    for (intptr_t t = 0; t < nthreads; t++) {
        assert_int_equal(pthread_create(&th[t], NULL, race_worker, (void *)t),
                         0);
    }
    size_t odd_bytes = 0;
    for (int k = 1; k < RACE_BLOCKS; k += 2) {
        odd_bytes += 1000 + (size_t)k;
    }
    uint64_t restamped = 0;
    for (uint64_t it = 0; it < iterations; it++) {
        /* the main thread owns every block at the start of a round */
        for (int k = 0; k < RACE_BLOCKS; k++) {
            ftm_record_free(0, race_ptr(k));
            ftm_record_alloc(0, race_ptr(k), 10 + (size_t)k, &t0.tb);
        }
        pthread_barrier_wait(&race.barrier);
        pthread_barrier_wait(&race.barrier);
        ftm_snapshot snap;
        assert_int_equal(ftm_take_snapshot(&snap), FTM_OK);
        /* freed blocks: no trace; re-allocated ones: the new size, and
         * the new owner's traceback unless a late retrace re-stamped it */
        assert_int_equal(snap.ntraces, RACE_BLOCKS / 2);
        for (size_t i = 0; i < snap.ntraces; i++) {
            const ftm_trace *t = &snap.traces[i];
            size_t k = (t->ptr - RACE_BASE) / 48;
            assert_int_equal(t->ptr, race_ptr((int)k));
            assert_int_equal(k % 2, 1);
            assert_int_equal(t->size, 1000 + k);
            uint64_t tag = stress_tag_of(t->tb);
            assert_true(tag == 50 ||
                        (tag > 60 && tag < 60 + (uint64_t)nthreads));
            restamped += tag != 50;
        }
        ftm_snapshot_release(&snap);
        size_t cur = 0;
        ftm_get_traced_memory(&cur, NULL);
        assert_int_equal(cur, odd_bytes);
    }
    for (int t = 0; t < nthreads; t++) {
        pthread_join(th[t], NULL);
    }
    ftm_flush();
    ftm_get_stats(&st);
    assert_int_equal(st.events_lost, st0.events_lost);
    assert_int_equal(st.traces_lost_oom, 0);
    assert_int_equal(st.events_recorded - st0.events_recorded,
                     st.events_applied - st0.events_applied);
    printf("[ retrace  ] %d threads: %llu rounds of %d blocks, %llu "
           "re-allocated blocks re-stamped by a late retrace\n",
           nthreads, (unsigned long long)iterations, RACE_BLOCKS,
           (unsigned long long)restamped);
    ftm_stop();
    pthread_barrier_destroy(&race.barrier);
}

static void test_retrace_races_with_free(void **state)
{
    (void)state;
    uint64_t iterations = stress_scaled(2000);
    for (int n = 2; n <= RACE_MAX_THREADS; n++) {
        race_run(n, iterations);
    }
}

static int stop_engine(void **state)
{
    (void)state;
    ftm_stop();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_retrace_traced_block, stop_engine),
        cmocka_unit_test_teardown(test_retrace_untraced_address, stop_engine),
        cmocka_unit_test_teardown(test_retrace_traceback_out_of_memory,
                                  stop_engine),
        cmocka_unit_test_teardown(test_retrace_order_across_threads,
                                  stop_engine),
        cmocka_unit_test_teardown(test_retrace_not_tracing_paused_ticket,
                                  stop_engine),
        cmocka_unit_test_teardown(test_retrace_races_with_free, stop_engine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
