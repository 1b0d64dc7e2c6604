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
 * The thread tag is part of the key too: the same frames under two tags
 * are two ids that read back their own tag, and the same (frames, tag)
 * finds its id again (test_thread_tag_is_key).
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

/* After an engine test: the engine keeps its thread's ring (engine memory
 * is live), so the backend cannot be re-chosen; it is the one set above. */
static int setup_after_engine(void **state)
{
    (void)state;
    ftm_test_tb_hash_mask = 0; /* no pool exists between tests */
    return 0;
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

/* The thread tag (fasttracemalloc.h: ftm_traceback.thread_tag) is part of
 * the key, under collisions as everywhere: equal frames under tags 0, 1, 2
 * are three ids, each reading back its tag and the same frames; through the
 * engine, a cached descriptor whose tag changes (cached_id reset, as the
 * contract says) gets the other tag's id. */
static void test_thread_tag_is_key(void **state)
{
    (void)state;
    ftm_tb_pool *p = ftm_tb_pool_new(1);
    assert_non_null(p);
    ftm_frame f[DEPTH];
    frames_base(f);
    ftm_tb_id ids[3];
    for (uint32_t tag = 0; tag < 3; tag++) {
        ids[tag] = ftm_tb_pool_intern_tagged(p, f, DEPTH, DEPTH, tag);
        assert_int_not_equal(ids[tag], FTM_TB_NONE);
        for (uint32_t u = 0; u < tag; u++) {
            assert_int_not_equal(ids[tag], ids[u]);
        }
    }
    assert_int_equal(ftm_tb_pool_intern(p, f, DEPTH, DEPTH), ids[0]);
    for (uint32_t tag = 0; tag < 3; tag++) {
        assert_int_equal(ftm_tb_pool_intern_tagged(p, f, DEPTH, DEPTH, tag),
                         ids[tag]);
        uint32_t got = 99;
        assert_int_equal(ftm_tb_pool_thread(p, ids[tag], &got), FTM_OK);
        assert_int_equal(got, tag);
        expect(p, ids[tag], f, DEPTH, DEPTH);
    }
    uint32_t got = 0;
    assert_int_equal(ftm_tb_pool_thread(p, 99, &got), FTM_EINVAL);
    assert_int_equal(ftm_tb_pool_count(p), 3);
    ftm_tb_pool_free(p);

    assert_int_equal(ftm_start(NULL), FTM_OK);
    ftm_traceback tb = {.frames = f,
                        .nframe = DEPTH,
                        .total_nframe = DEPTH,
                        .cached_id = FTM_TB_NONE,
                        .thread_tag = 7};
    assert_int_equal(ftm_record_alloc(0, 0x20000, 8, &tb), FTM_OK);
    tb.thread_tag = 8;
    tb.cached_id = FTM_TB_NONE;
    assert_int_equal(ftm_record_alloc(0, 0x20040, 8, &tb), FTM_OK);
    ftm_trace t7, t8;
    assert_int_equal(ftm_get_trace(0, 0x20000, &t7), 1);
    assert_int_equal(ftm_get_trace(0, 0x20040, &t8), 1);
    assert_int_not_equal(t7.tb, t8.tb);
    assert_int_equal(ftm_traceback_thread(t7.tb, &got), FTM_OK);
    assert_int_equal(got, 7);
    assert_int_equal(ftm_traceback_thread(t8.tb, &got), FTM_OK);
    assert_int_equal(got, 8);
    assert_int_equal(ftm_traceback_thread(FTM_TB_NONE, &got), FTM_EINVAL);
    ftm_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pool_identity_under_collisions,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_identity_under_collisions,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread_tag_is_key,
                                        setup_after_engine, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
