/*
 * test_tb_collide.c -- traceback identity is the whole key, not the hash.
 *
 * The pool decides that two tracebacks are the same by comparing every
 * frame, nframe and total_nframe (tb_pool.h); the 64-bit hash only picks
 * where to look.  No realistic test makes two tracebacks collide, so a pool
 * that compared only frame 0, or ignored total_nframe, would pass every
 * other test.  This one links the test-hook build of the engine
 * (FTM_TEST_HOOKS, see tests/CMakeLists.txt) and sets the hash mask to 0:
 * EVERY traceback hashes alike, and only the comparison can tell them
 * apart.  Then tracebacks that differ in a single frame k > 0, only in
 * total_nframe, or only in nframe (one a prefix of the other) must get
 * different ids whose frames read back exactly, in the pool itself and
 * through the engine (ftm_record_alloc, ftm_get_trace, ftm_traceback_get).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fasttracemalloc.h"
#include "memory.h"
#include "tb_pool.h"

#define DEPTH 6
#define MANY 1500 /* all colliding: the index grows several times */

static void frames_base(ftm_frame *f)
{
    for (int j = 0; j < DEPTH; j++) {
        f[j].a = 0x7f0000100000ull + (uint64_t)j * 4096;
        f[j].b = 100 + (uint64_t)j;
    }
}

static int setup(void **state)
{
    (void)state;
    ftm_test_tb_hash_mask = 0; /* before any pool exists */
    return ftm_mem_init(FTM_MEM_PORTABLE) == FTM_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    ftm_stop();
    ftm_test_tb_hash_mask = ~(uint64_t)0;
    return 0;
}

static void expect(const ftm_tb_pool *p, ftm_tb_id id, const ftm_frame *f,
                   uint16_t n, uint16_t total)
{
    const ftm_frame *got = NULL;
    uint16_t gn = 0, gt = 0;
    assert_int_equal(ftm_tb_pool_get(p, id, &got, &gn, &gt), FTM_OK);
    assert_int_equal(gn, n);
    assert_int_equal(gt, total);
    assert_memory_equal(got, f, (size_t)n * sizeof(ftm_frame));
}

/* The variants of one base traceback: [0] the base, [1..DEPTH-1] frame k
 * changed (in .a for odd k, in .b for even k), then total_nframe changed,
 * then the base without its last frame. */
#define NVAR (DEPTH + 2)

static void variant(int v, ftm_frame *f, uint16_t *n, uint16_t *total)
{
    frames_base(f);
    *n = DEPTH;
    *total = DEPTH;
    if (v >= 1 && v < DEPTH) {
        if (v % 2) {
            f[v].a ^= 0x40;
        } else {
            f[v].b += 1;
        }
    } else if (v == DEPTH) {
        *total = DEPTH + 30; /* deeper stack, same stored frames */
    } else if (v == DEPTH + 1) {
        *n = DEPTH - 1; /* a prefix */
    }
}

static void test_pool_identity_under_collisions(void **state)
{
    (void)state;
    ftm_tb_pool *p = ftm_tb_pool_new(1);
    assert_non_null(p);
    ftm_tb_id ids[NVAR];
    ftm_frame f[DEPTH];
    uint16_t n, total;
    for (int v = 0; v < NVAR; v++) {
        variant(v, f, &n, &total);
        ids[v] = ftm_tb_pool_intern(p, f, n, total);
        assert_int_not_equal(ids[v], FTM_TB_NONE);
        for (int u = 0; u < v; u++) {
            assert_int_not_equal(ids[v], ids[u]); /* differ only at v */
        }
    }
    assert_int_equal(ftm_tb_pool_count(p), NVAR);
    for (int v = 0; v < NVAR; v++) { /* hits find the same ids again */
        variant(v, f, &n, &total);
        assert_int_equal(ftm_tb_pool_intern(p, f, n, total), ids[v]);
        expect(p, ids[v], f, n, total);
    }
    /* many tracebacks, all colliding, differing only in their LAST frame:
     * distinct ids, stable across the index growing */
    static ftm_tb_id many[MANY];
    for (int i = 0; i < MANY; i++) {
        frames_base(f);
        f[DEPTH - 1].b = 1000 + (uint64_t)i;
        many[i] = ftm_tb_pool_intern(p, f, DEPTH, DEPTH);
        assert_int_equal(many[i], (ftm_tb_id)(NVAR + 1 + i));
    }
    for (int i = 0; i < MANY; i++) {
        frames_base(f);
        f[DEPTH - 1].b = 1000 + (uint64_t)i;
        assert_int_equal(ftm_tb_pool_intern(p, f, DEPTH, DEPTH), many[i]);
        expect(p, many[i], f, DEPTH, DEPTH);
    }
    assert_int_equal(ftm_tb_pool_count(p), NVAR + MANY);
    ftm_tb_pool_free(p);
}

/* The same through the engine's public API: one trace per variant. */
static void test_engine_identity_under_collisions(void **state)
{
    (void)state;
    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_frame f[NVAR][DEPTH];
    ftm_traceback tb[NVAR];
    for (int v = 0; v < NVAR; v++) {
        uint16_t n, total;
        variant(v, f[v], &n, &total);
        tb[v] = (ftm_traceback){.frames = f[v],
                                .nframe = n,
                                .total_nframe = total,
                                .cached_id = FTM_TB_NONE};
        assert_int_equal(
            ftm_record_alloc(0, 0x10000 + (uintptr_t)v * 64, 8, &tb[v]),
            FTM_OK);
    }
    ftm_tb_id ids[NVAR];
    for (int v = 0; v < NVAR; v++) {
        ftm_trace t;
        assert_int_equal(ftm_get_trace(0, 0x10000 + (uintptr_t)v * 64, &t), 1);
        ids[v] = t.tb;
        for (int u = 0; u < v; u++) {
            assert_int_not_equal(ids[v], ids[u]);
        }
        const ftm_frame *got = NULL;
        uint16_t gn = 0, gt = 0;
        assert_int_equal(ftm_traceback_get(t.tb, &got, &gn, &gt), FTM_OK);
        assert_int_equal(gn, tb[v].nframe);
        assert_int_equal(gt, tb[v].total_nframe);
        assert_memory_equal(got, f[v], (size_t)gn * sizeof(ftm_frame));
    }
    ftm_stats st;
    ftm_get_stats(&st);
    assert_int_equal(st.tracebacks, NVAR);
    ftm_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pool_identity_under_collisions,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_identity_under_collisions,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
