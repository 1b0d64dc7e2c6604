/*
 * test_tb_pool.c -- the traceback intern pool.
 *
 * Owns: nothing shared.
 * Checks: hit/miss/identity, what is part of a traceback's identity
 * (frames, their order, nframe, total_nframe), get round trip, growth over
 * many id chunks and index tables, huge tracebacks, concurrent interning of
 * overlapping tracebacks from 4 threads (identical tracebacks -> identical
 * ids, ids dense), OOM (NONE returned and counted, pool still usable),
 * exact byte accounting.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "memory.h"
#include "tb_pool.h"

static int setup_portable(void **state)
{
    (void)state;
    return ftm_mem_init(FTM_MEM_PORTABLE) == FTM_OK ? 0 : -1;
}

/* traceback number k: depth 1..25 frames, frame j = (code k*31+j, line) */
static uint16_t make_tb(ftm_frame *f, uint32_t k)
{
    uint16_t n = (uint16_t)(1 + k % 25);
    for (uint16_t j = 0; j < n; j++) {
        f[j].a = 0x7f0000100000ull + (uint64_t)(k % 1000) * 64 + j * 4096;
        f[j].b = (uint64_t)(k / 1000) * 2 + j;
    }
    return n;
}

static void expect_frames(const ftm_tb_pool *p, ftm_tb_id id,
                          const ftm_frame *f, uint16_t n, uint16_t total)
{
    const ftm_frame *got = NULL;
    uint16_t gn = 0, gt = 0;
    assert_int_equal(ftm_tb_pool_get(p, id, &got, &gn, &gt), FTM_OK);
    assert_int_equal(gn, n);
    assert_int_equal(gt, total);
    if (n)
        assert_memory_equal(got, f, n * sizeof(ftm_frame));
}

static void test_hit_miss_identity(void **state)
{
    (void)state;
    ftm_tb_pool *p = ftm_tb_pool_new(7);
    assert_non_null(p);
    assert_int_equal(ftm_tb_pool_generation(p), 7);
    assert_int_equal(ftm_tb_pool_count(p), 0);
    ftm_frame a[3] = {{1, 10}, {2, 20}, {3, 30}};
    ftm_frame a2[3];
    memcpy(a2, a, sizeof(a)); /* same content, different buffer */
    ftm_tb_id id1 = ftm_tb_pool_intern(p, a, 3, 3);
    assert_int_not_equal(id1, FTM_TB_NONE);
    assert_int_equal(ftm_tb_pool_intern(p, a2, 3, 3), id1);
    assert_int_equal(ftm_tb_pool_count(p), 1);
    /* what makes a different traceback */
    ftm_tb_id more_total = ftm_tb_pool_intern(p, a, 3, 40);
    ftm_tb_id prefix = ftm_tb_pool_intern(p, a, 2, 3);
    ftm_frame rev[3] = {a[2], a[1], a[0]};
    ftm_tb_id reversed = ftm_tb_pool_intern(p, rev, 3, 3);
    ftm_frame other_b[3] = {{1, 10}, {2, 21}, {3, 30}};
    ftm_tb_id changed = ftm_tb_pool_intern(p, other_b, 3, 3);
    ftm_tb_id empty = ftm_tb_pool_intern(p, NULL, 0, 1);
    ftm_tb_id ids[] = {id1, more_total, prefix, reversed, changed, empty};
    for (int i = 0; i < 6; i++) {
        assert_int_not_equal(ids[i], FTM_TB_NONE);
        for (int j = 0; j < i; j++)
            assert_int_not_equal(ids[i], ids[j]);
    }
    assert_int_equal(ftm_tb_pool_count(p), 6);
    /* hits return the same ids again */
    assert_int_equal(ftm_tb_pool_intern(p, a, 3, 40), more_total);
    assert_int_equal(ftm_tb_pool_intern(p, rev, 3, 3), reversed);
    assert_int_equal(ftm_tb_pool_intern(p, NULL, 0, 1), empty);
    assert_int_equal(ftm_tb_pool_count(p), 6);
    /* get round trip */
    expect_frames(p, id1, a, 3, 3);
    expect_frames(p, more_total, a, 3, 40);
    expect_frames(p, prefix, a, 2, 3);
    expect_frames(p, reversed, rev, 3, 3);
    expect_frames(p, changed, other_b, 3, 3);
    expect_frames(p, empty, NULL, 0, 1);
    const ftm_frame *f;
    uint16_t n, t;
    assert_int_equal(ftm_tb_pool_get(p, FTM_TB_NONE, &f, &n, &t), FTM_EINVAL);
    assert_int_equal(ftm_tb_pool_get(p, 7, &f, &n, &t), FTM_EINVAL);
    assert_int_equal(ftm_tb_pool_get(p, UINT32_MAX, &f, &n, &t), FTM_EINVAL);
    assert_int_equal(ftm_tb_pool_oom_count(p), 0);
    ftm_tb_pool_free(p);
    assert_int_equal(ftm_mem_bytes(), 0);
}

static void test_growth_many(void **state)
{
    (void)state;
    ftm_tb_pool *p = ftm_tb_pool_new(1);
    assert_non_null(p);
    enum { N = 200000 }; /* many id chunks, several index tables */
    ftm_frame f[25];
    for (uint32_t k = 0; k < N; k++) {
        uint16_t n = make_tb(f, k);
        ftm_tb_id id = ftm_tb_pool_intern(p, f, n, (uint16_t)(n + k % 3));
        assert_int_equal(id, k + 1); /* dense, in insertion order */
    }
    assert_int_equal(ftm_tb_pool_count(p), N);
    for (uint32_t k = 0; k < N; k++) {
        uint16_t n = make_tb(f, k);
        assert_int_equal(ftm_tb_pool_intern(p, f, n, (uint16_t)(n + k % 3)),
                         k + 1);
        expect_frames(p, k + 1, f, n, (uint16_t)(n + k % 3));
    }
    assert_int_equal(ftm_tb_pool_count(p), N);
    /* the pool's accounting is exactly what it holds */
    assert_int_equal(ftm_tb_pool_bytes(p), ftm_mem_bytes());
    ftm_tb_pool_free(p);
    assert_int_equal(ftm_mem_bytes(), 0);
}

static void test_huge_traceback(void **state)
{
    (void)state;
    ftm_tb_pool *p = ftm_tb_pool_new(1);
    assert_non_null(p);
    ftm_frame *f = malloc(FTM_MAX_NFRAME * sizeof(*f));
    assert_non_null(f);
    for (uint32_t j = 0; j < FTM_MAX_NFRAME; j++)
        f[j] = (ftm_frame){j, ~(uint64_t)j};
    ftm_tb_id big = ftm_tb_pool_intern(p, f, FTM_MAX_NFRAME, FTM_MAX_NFRAME);
    ftm_tb_id small = ftm_tb_pool_intern(p, f, 1, FTM_MAX_NFRAME);
    assert_int_not_equal(big, FTM_TB_NONE);
    assert_int_not_equal(small, FTM_TB_NONE);
    assert_int_not_equal(big, small);
    f[FTM_MAX_NFRAME - 1].b ^= 1; /* last frame differs */
    ftm_tb_id big2 = ftm_tb_pool_intern(p, f, FTM_MAX_NFRAME, FTM_MAX_NFRAME);
    assert_int_not_equal(big2, big);
    expect_frames(p, big2, f, FTM_MAX_NFRAME, FTM_MAX_NFRAME);
    f[FTM_MAX_NFRAME - 1].b ^= 1;
    expect_frames(p, big, f, FTM_MAX_NFRAME, FTM_MAX_NFRAME);
    assert_int_equal(ftm_tb_pool_intern(p, f, FTM_MAX_NFRAME, FTM_MAX_NFRAME),
                     big);
    free(f);
    assert_int_equal(ftm_tb_pool_bytes(p), ftm_mem_bytes());
    ftm_tb_pool_free(p);
    assert_int_equal(ftm_mem_bytes(), 0);
}

/* ---- 4 threads, overlapping tracebacks --------------------------------- */

enum { CONC_TB = 30000, CONC_THREADS = 4 };

typedef struct conc_arg {
    ftm_tb_pool *p;
    int index;
    ftm_tb_id *ids; /* ids[k] for traceback k */
    pthread_barrier_t *go;
} conc_arg;

static void *conc_worker(void *arg)
{
    conc_arg *a = arg;
    ftm_frame f[25];
    pthread_barrier_wait(a->go);
    /* every thread sees every traceback, each in its own order and twice,
     * so inserts race with inserts and with lock-free hits */
    for (int round = 0; round < 2; round++) {
        for (uint32_t i = 0; i < CONC_TB; i++) {
            uint32_t k = (i * 7919u + (uint32_t)a->index * 7717u) % CONC_TB;
            if (a->index % 2)
                k = CONC_TB - 1 - k;
            uint16_t n = make_tb(f, k);
            ftm_tb_id id = ftm_tb_pool_intern(a->p, f, n, 100);
            if (round == 0)
                a->ids[k] = id;
            else if (a->ids[k] != id)
                a->ids[k] = FTM_TB_NONE; /* unstable id: caught below */
        }
    }
    return NULL;
}

static void test_concurrent_interning(void **state)
{
    (void)state;
    ftm_tb_pool *p = ftm_tb_pool_new(3);
    assert_non_null(p);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, CONC_THREADS);
    pthread_t th[CONC_THREADS];
    conc_arg args[CONC_THREADS];
    for (int t = 0; t < CONC_THREADS; t++) {
        args[t] = (conc_arg){p, t, calloc(CONC_TB, sizeof(ftm_tb_id)), &go};
        assert_non_null(args[t].ids);
        assert_int_equal(pthread_create(&th[t], NULL, conc_worker, &args[t]),
                         0);
    }
    for (int t = 0; t < CONC_THREADS; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&go);
    assert_int_equal(ftm_tb_pool_count(p), CONC_TB);
    assert_int_equal(ftm_tb_pool_oom_count(p), 0);
    char *used = calloc(CONC_TB + 1, 1);
    assert_non_null(used);
    ftm_frame f[25];
    for (uint32_t k = 0; k < CONC_TB; k++) {
        ftm_tb_id id = args[0].ids[k];
        assert_true(id >= 1 && id <= CONC_TB);
        for (int t = 1; t < CONC_THREADS; t++)
            assert_int_equal(args[t].ids[k], id);
        assert_false(used[id]); /* distinct tracebacks, distinct ids */
        used[id] = 1;
        uint16_t n = make_tb(f, k);
        expect_frames(p, id, f, n, 100);
    }
    free(used);
    for (int t = 0; t < CONC_THREADS; t++)
        free(args[t].ids);
    ftm_tb_pool_free(p);
    assert_int_equal(ftm_mem_bytes(), 0);
}

static void test_oom(void **state)
{
    (void)state;
    ftm_mem_inject_failure(0);
    assert_null(ftm_tb_pool_new(1));
    ftm_mem_inject_failure(1); /* pool struct ok, its first table fails */
    assert_null(ftm_tb_pool_new(1));
    ftm_mem_inject_failure(-1);
    assert_int_equal(ftm_mem_bytes(), 0);
    ftm_tb_pool *p = ftm_tb_pool_new(1);
    assert_non_null(p);
    ftm_frame f[25];
    uint16_t n = make_tb(f, 24);
    /* a miss that cannot get memory: NONE, counted, nothing interned */
    ftm_mem_inject_failure(0);
    assert_int_equal(ftm_tb_pool_intern(p, f, n, n), FTM_TB_NONE);
    assert_int_equal(ftm_tb_pool_oom_count(p), 1);
    assert_int_equal(ftm_tb_pool_count(p), 0);
    ftm_mem_inject_failure(-1);
    ftm_tb_id id = ftm_tb_pool_intern(p, f, n, n);
    assert_int_equal(id, 1);
    /* a hit allocates nothing: succeeds even with failure armed */
    ftm_mem_inject_failure(0);
    assert_int_equal(ftm_tb_pool_intern(p, f, n, n), id);
    ftm_mem_inject_failure(-1);
    /* arm a failure before every insert of a long sequence: the inserts
     * that need memory (new slab, id chunk, bigger index) fail and are
     * counted, the others succeed; retried, each gets the next dense id */
    uint64_t fails = 1;
    uint32_t next = 2;
    for (uint32_t k = 0; k < 5000; k++) {
        n = make_tb(f, 1000 + k);
        ftm_mem_inject_failure(0);
        ftm_tb_id got = ftm_tb_pool_intern(p, f, n, n);
        ftm_mem_inject_failure(-1);
        if (got == FTM_TB_NONE) {
            fails++;
            assert_int_equal(ftm_tb_pool_oom_count(p), fails);
            got = ftm_tb_pool_intern(p, f, n, n); /* retry */
        }
        assert_int_equal(got, next);
        next++;
        expect_frames(p, got, f, n, n);
    }
    assert_true(fails > 10); /* >= one per 64 KiB slab of entries */
    assert_int_equal(ftm_tb_pool_count(p), next - 1);
    assert_int_equal(ftm_tb_pool_bytes(p), ftm_mem_bytes());
    ftm_tb_pool_free(p);
    assert_int_equal(ftm_mem_bytes(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_miss_identity),
        cmocka_unit_test(test_growth_many),
        cmocka_unit_test(test_huge_traceback),
        cmocka_unit_test(test_concurrent_interning),
        cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, setup_portable, NULL);
}
