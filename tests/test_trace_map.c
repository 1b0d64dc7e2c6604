/*
 * test_trace_map.c -- the sharded (domain, ptr) -> {size, tb} map.
 *
 * Owns: nothing shared; single-threaded like the map's contract.
 * Checks: insert/replace/remove in every shard, address 0, >= 4 GiB sizes
 * (overflow side table), set_tb (re-stamps an existing trace only, never
 * inserts), many domains including numpy's 389047, growth to 1M traces
 * against a plain reference model (random addresses and allocator-like
 * sequential ones), copy, clear (memory back to the empty map), exact byte
 * accounting, and OOM (ENOMEM leaves the map unchanged; a failed growth
 * keeps accepting traces while room remains).
 * Prints bytes per live trace at 1M traces for both memory backends; only
 * correctness is asserted.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory.h"
#include "trace_map.h"

#define NUMPY_DOMAIN 389047u

static int setup_portable(void **state)
{
    (void)state;
    return ftm_mem_init(FTM_MEM_PORTABLE) == FTM_OK ? 0 : -1;
}

static void put_ok(ftm_trace_map *m, ftm_domain_t d, uintptr_t p, size_t sz,
                   ftm_tb_id tb, bool expect_old, size_t expect_old_size)
{
    bool had = !expect_old;
    size_t old = 12345;
    assert_int_equal(ftm_trace_map_put(m, d, p, sz, tb, &had, &old), FTM_OK);
    assert_int_equal(had, expect_old);
    assert_int_equal(old, expect_old_size);
}

static void expect_trace(const ftm_trace_map *m, ftm_domain_t d, uintptr_t p,
                         size_t sz, ftm_tb_id tb)
{
    ftm_trace t;
    memset(&t, 0xff, sizeof(t));
    assert_true(ftm_trace_map_get(m, d, p, &t));
    assert_int_equal(t.ptr, p);
    assert_int_equal(t.size, sz);
    assert_int_equal(t.domain, d);
    assert_int_equal(t.tb, tb);
}

static void test_insert_replace_remove_all_shards(void **state)
{
    (void)state;
    ftm_trace_map *m = ftm_trace_map_new();
    assert_non_null(m);
    enum { N = 20000 };
    for (uintptr_t i = 1; i <= N; i++)
        put_ok(m, 0, i * 48, i, (ftm_tb_id)i, false, 0);
    assert_int_equal(ftm_trace_map_count(m), N);
    size_t sum = 0;
    for (unsigned s = 0; s < FTM_MAP_SHARDS; s++) {
        size_t c = ftm_trace_map_shard_count(m, 0, s);
        assert_true(c > 0); /* every shard is exercised */
        sum += c;
    }
    assert_int_equal(sum, N);
    for (uintptr_t i = 1; i <= N; i++)
        expect_trace(m, 0, i * 48, i, (ftm_tb_id)i);
    /* replace: new size and traceback, count unchanged */
    for (uintptr_t i = 1; i <= N; i += 3)
        put_ok(m, 0, i * 48, i + 7, (ftm_tb_id)(i + 1), true, i);
    assert_int_equal(ftm_trace_map_count(m), N);
    /* remove every other one */
    for (uintptr_t i = 1; i <= N; i += 2) {
        size_t old = 0;
        size_t want = (i - 1) % 3 == 0 ? i + 7 : i;
        assert_true(ftm_trace_map_remove(m, 0, i * 48, &old));
        assert_int_equal(old, want);
        assert_false(ftm_trace_map_remove(m, 0, i * 48, &old));
    }
    assert_int_equal(ftm_trace_map_count(m), N / 2);
    for (uintptr_t i = 1; i <= N; i++) {
        if (i % 2 == 1) {
            assert_false(ftm_trace_map_get(m, 0, i * 48, NULL));
        } else if ((i - 1) % 3 == 0) {
            expect_trace(m, 0, i * 48, i + 7, (ftm_tb_id)(i + 1));
        } else {
            expect_trace(m, 0, i * 48, i, (ftm_tb_id)i);
        }
    }
    /* never-inserted keys */
    assert_false(ftm_trace_map_get(m, 0, 47, NULL));
    assert_false(ftm_trace_map_get(m, 7, 96, NULL));
    ftm_trace_map_free(m);
    assert_int_equal(ftm_mem_bytes(), 0);
}

static void test_address_zero_and_huge_sizes(void **state)
{
    (void)state;
    ftm_trace_map *m = ftm_trace_map_new();
    assert_non_null(m);
    const size_t five_gib = (size_t)5 << 30;
    put_ok(m, 0, 0, 10, 1, false, 0);
    expect_trace(m, 0, 0, 10, 1);
    put_ok(m, 0, 0, five_gib, 2, true, 10);
    expect_trace(m, 0, 0, five_gib, 2);
    put_ok(m, 0, 4096, UINT32_MAX, 3, false, 0); /* the marker value itself */
    put_ok(m, 0, 8192, SIZE_MAX, 4, false, 0);
    put_ok(m, 0, 12288, (size_t)UINT32_MAX - 1, 5, false, 0);
    expect_trace(m, 0, 4096, UINT32_MAX, 3);
    expect_trace(m, 0, 8192, SIZE_MAX, 4);
    expect_trace(m, 0, 12288, (size_t)UINT32_MAX - 1, 5);
    put_ok(m, 0, 8192, 100, 6, true, SIZE_MAX); /* big -> small */
    expect_trace(m, 0, 8192, 100, 6);
    put_ok(m, 0, 12288, five_gib, 7, true, (size_t)UINT32_MAX - 1);
    put_ok(m, 0, 12288, five_gib + 1, 8, true, five_gib); /* big -> big */
    expect_trace(m, 0, 12288, five_gib + 1, 8);
    /* many big blocks in one shard's side table */
    unsigned shard = ftm_trace_map_shard_of(4096);
    int nsame = 0;
    for (uintptr_t p = 16384; nsame < 20; p += 16) {
        if (ftm_trace_map_shard_of(p) != shard)
            continue;
        put_ok(m, 0, p, five_gib + p, 9, false, 0);
        nsame++;
    }
    assert_int_equal(ftm_trace_map_count(m), 4 + 20);
    ftm_trace buf[32];
    size_t n = ftm_trace_map_copy(m, buf, 32);
    assert_int_equal(n, 24);
    size_t seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (buf[i].ptr >= 16384) {
            assert_int_equal(buf[i].size, five_gib + buf[i].ptr);
            seen++;
        }
        if (buf[i].ptr == 0)
            assert_int_equal(buf[i].size, five_gib);
    }
    assert_int_equal(seen, 20);
    size_t old;
    assert_true(ftm_trace_map_remove(m, 0, 0, &old));
    assert_int_equal(old, five_gib);
    assert_false(ftm_trace_map_get(m, 0, 0, NULL));
    assert_true(ftm_trace_map_remove(m, 0, 4096, &old));
    assert_int_equal(old, UINT32_MAX);
    expect_trace(m, 0, 12288, five_gib + 1, 8);
    ftm_trace_map_free(m);
    assert_int_equal(ftm_mem_bytes(), 0);
}

static void test_set_tb(void **state)
{
    (void)state;
    ftm_trace_map *m = ftm_trace_map_new();
    assert_non_null(m);
    const size_t five_gib = (size_t)5 << 30;
    put_ok(m, 0, 4096, 10, 1, false, 0);
    put_ok(m, 0, 0, 20, 2, false, 0);
    put_ok(m, 0, 8192, five_gib, 3, false, 0);
    put_ok(m, NUMPY_DOMAIN, 4096, 30, 4, false, 0);
    size_t bytes = ftm_trace_map_bytes(m);
    /* existing traces: tb replaced, size kept (also address 0 and a big
     * size), other domain untouched */
    assert_true(ftm_trace_map_set_tb(m, 0, 4096, 11));
    assert_true(ftm_trace_map_set_tb(m, 0, 0, 12));
    assert_true(ftm_trace_map_set_tb(m, 0, 8192, 13));
    expect_trace(m, 0, 4096, 10, 11);
    expect_trace(m, 0, 0, 20, 12);
    expect_trace(m, 0, 8192, five_gib, 13);
    expect_trace(m, NUMPY_DOMAIN, 4096, 30, 4);
    assert_true(ftm_trace_map_set_tb(m, NUMPY_DOMAIN, 4096, FTM_TB_NONE));
    expect_trace(m, NUMPY_DOMAIN, 4096, 30, FTM_TB_NONE);
    /* missing keys, missing domain, removed key: nothing inserted */
    assert_false(ftm_trace_map_set_tb(m, 0, 4112, 5));
    assert_false(ftm_trace_map_set_tb(m, 7, 4096, 5));
    assert_false(ftm_trace_map_set_tb(m, NUMPY_DOMAIN, 0, 5));
    size_t old;
    assert_true(ftm_trace_map_remove(m, 0, 4096, &old));
    assert_false(ftm_trace_map_set_tb(m, 0, 4096, 6));
    assert_true(ftm_trace_map_remove(m, 0, 0, &old));
    assert_false(ftm_trace_map_set_tb(m, 0, 0, 6));
    assert_false(ftm_trace_map_get(m, 0, 4096, NULL));
    assert_false(ftm_trace_map_get(m, 0, 0, NULL));
    assert_false(ftm_trace_map_get(m, 7, 4096, NULL));
    assert_int_equal(ftm_trace_map_count(m), 2);
    /* never allocates, even when every allocation would fail */
    ftm_mem_inject_failure(0);
    assert_true(ftm_trace_map_set_tb(m, 0, 8192, 14));
    assert_false(ftm_trace_map_set_tb(m, 9, 8192, 14));
    ftm_mem_inject_failure(-1);
    expect_trace(m, 0, 8192, five_gib, 14);
    assert_true(ftm_trace_map_bytes(m) <= bytes);
    ftm_trace_map_free(m);
    assert_int_equal(ftm_mem_bytes(), 0);
}

static void test_domains(void **state)
{
    (void)state;
    ftm_trace_map *m = ftm_trace_map_new();
    assert_non_null(m);
    /* the same address in many domains is many independent traces */
    enum { ND = 300 };
    ftm_domain_t doms[ND];
    doms[0] = 0;
    doms[1] = NUMPY_DOMAIN;
    doms[2] = UINT32_MAX;
    for (int i = 3; i < ND; i++)
        doms[i] = (ftm_domain_t)(i * 7919u);
    for (int i = 0; i < ND; i++)
        for (uintptr_t p = 1; p <= 50; p++)
            put_ok(m, doms[i], p * 64, (size_t)i * 1000 + p, (ftm_tb_id)i + 1,
                   false, 0);
    assert_int_equal(ftm_trace_map_count(m), ND * 50);
    for (int i = 0; i < ND; i++)
        for (uintptr_t p = 1; p <= 50; p++)
            expect_trace(m, doms[i], p * 64, (size_t)i * 1000 + p,
                         (ftm_tb_id)i + 1);
    /* removing from numpy's domain leaves domain 0 alone, and back */
    size_t old;
    assert_true(ftm_trace_map_remove(m, NUMPY_DOMAIN, 64, &old));
    assert_int_equal(old, 1000 + 1);
    assert_false(ftm_trace_map_get(m, NUMPY_DOMAIN, 64, NULL));
    expect_trace(m, 0, 64, 1, 1);
    assert_true(ftm_trace_map_remove(m, 0, 128, &old));
    expect_trace(m, NUMPY_DOMAIN, 128, 1002, 2);
    assert_false(ftm_trace_map_get(m, 12345, 128, NULL)); /* unseen domain */
    assert_false(ftm_trace_map_remove(m, 12345, 128, &old));
    /* copy reports each trace's domain */
    size_t cnt = ftm_trace_map_count(m);
    ftm_trace *buf = calloc(cnt, sizeof(*buf));
    assert_non_null(buf);
    assert_int_equal(ftm_trace_map_copy(m, buf, cnt), cnt);
    size_t per_dom[ND] = {0};
    for (size_t k = 0; k < cnt; k++) {
        int i = (int)buf[k].tb - 1;
        assert_true(i >= 0 && i < ND);
        assert_int_equal(buf[k].domain, doms[i]);
        assert_int_equal(buf[k].size, (size_t)i * 1000 + buf[k].ptr / 64);
        per_dom[i]++;
    }
    assert_int_equal(per_dom[0], 49);
    assert_int_equal(per_dom[1], 49);
    for (int i = 2; i < ND; i++)
        assert_int_equal(per_dom[i], 50);
    /* a short buffer gets exactly its capacity */
    assert_int_equal(ftm_trace_map_copy(m, buf, 17), 17);
    free(buf);
    ftm_trace_map_free(m);
    assert_int_equal(ftm_mem_bytes(), 0);
}

/* ---- growth to 1M against a reference model --------------------------- */

typedef struct ref_model {
    size_t n;
    uintptr_t *ptr;
    size_t *size;
    ftm_tb_id *tb;
    bool *live;
    size_t nlive;
} ref_model;

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

#define ODD_MULT 0x9E3779B97F4A7C15ull

static uint64_t inverse_odd(uint64_t a)
{
    uint64_t x = a; /* Newton: correct bits double each step */
    for (int i = 0; i < 6; i++)
        x *= 2 - a * x;
    return x;
}

/* key i <-> address; random=true gives a bijective scramble of 64-bit
 * values, false gives allocator-like aligned consecutive addresses. */
static uintptr_t key_ptr(size_t i, bool random)
{
    return random ? (uintptr_t)((uint64_t)(i + 1) * ODD_MULT)
                  : (uintptr_t)(0x7f0000000000ull + (uint64_t)i * 32);
}

static size_t key_index(uintptr_t p, bool random)
{
    return random ? (size_t)((uint64_t)p * inverse_odd(ODD_MULT) - 1)
                  : (size_t)((p - 0x7f0000000000ull) / 32);
}

static void check_against_model(const ftm_trace_map *m, const ref_model *r,
                                bool random)
{
    assert_int_equal(ftm_trace_map_count(m), r->nlive);
    for (size_t i = 0; i < r->n; i++) {
        ftm_trace t;
        bool found = ftm_trace_map_get(m, 0, r->ptr[i], &t);
        if (found != r->live[i])
            fail_msg("key %zu: map says %d, model says %d", i, found,
                     r->live[i]);
        if (found && (t.size != r->size[i] || t.tb != r->tb[i]))
            fail_msg("key %zu: size/tb mismatch", i);
    }
    ftm_trace *buf = malloc(r->nlive * sizeof(*buf) + 1);
    bool *seen = calloc(r->n, 1);
    assert_non_null(buf);
    assert_non_null(seen);
    size_t n = ftm_trace_map_copy(m, buf, r->nlive);
    assert_int_equal(n, r->nlive);
    for (size_t k = 0; k < n; k++) {
        size_t i = key_index(buf[k].ptr, random);
        assert_true(i < r->n);
        assert_true(r->live[i]);
        assert_false(seen[i]);
        seen[i] = true;
        assert_int_equal(buf[k].size, r->size[i]);
        assert_int_equal(buf[k].tb, r->tb[i]);
        assert_int_equal(buf[k].domain, 0);
    }
    free(seen);
    free(buf);
}

static void growth_1m(bool random, ftm_mem_backend backend)
{
    assert_int_equal(ftm_mem_init(backend), FTM_OK);
    enum { N = 1000000 };
    ref_model r = {N,
                   malloc(N * sizeof(uintptr_t)),
                   malloc(N * sizeof(size_t)),
                   malloc(N * sizeof(ftm_tb_id)),
                   calloc(N, sizeof(bool)),
                   0};
    assert_non_null(r.ptr);
    assert_non_null(r.size);
    assert_non_null(r.tb);
    assert_non_null(r.live);
    for (size_t i = 0; i < N; i++)
        r.ptr[i] = key_ptr(i, random);
    size_t mem0 = ftm_mem_bytes();
    ftm_trace_map *m = ftm_trace_map_new();
    assert_non_null(m);
    size_t empty_bytes = ftm_trace_map_bytes(m);
    /* phase 1: insert all 1M */
    for (size_t i = 0; i < N; i++) {
        bool had;
        size_t old;
        r.size[i] = (size_t)(rnd() % 100000);
        r.tb[i] = (ftm_tb_id)(1 + rnd() % 5000);
        assert_int_equal(
            ftm_trace_map_put(m, 0, r.ptr[i], r.size[i], r.tb[i], &had, &old),
            FTM_OK);
        assert_false(had);
        r.live[i] = true;
    }
    r.nlive = N;
    size_t map_bytes = ftm_trace_map_bytes(m);
    size_t mem_bytes = ftm_mem_bytes() - mem0;
    printf("    [trace map, %s addresses, %s backend] %zu live traces: "
           "map %.2f bytes/trace, engine memory (allocator view) %.2f "
           "bytes/trace\n",
           random ? "random" : "sequential",
           backend == FTM_MEM_JEMALLOC ? "jemalloc" : "portable", r.nlive,
           (double)map_bytes / (double)r.nlive,
           (double)mem_bytes / (double)r.nlive);
    if (backend == FTM_MEM_PORTABLE)
        assert_int_equal(map_bytes, mem_bytes); /* accounting is exact */
    check_against_model(m, &r, random);
    /* phase 2: 2M random operations (replace / remove / re-insert) */
    for (size_t k = 0; k < 2 * (size_t)N; k++) {
        size_t i = (size_t)(rnd() % N);
        uint64_t op = rnd() % 3;
        bool had;
        size_t old;
        if (op == 0 && r.live[i]) {
            assert_true(ftm_trace_map_remove(m, 0, r.ptr[i], &old));
            assert_int_equal(old, r.size[i]);
            r.live[i] = false;
            r.nlive--;
        } else {
            size_t sz = (size_t)(rnd() % 100000);
            ftm_tb_id tb = (ftm_tb_id)(1 + rnd() % 5000);
            assert_int_equal(
                ftm_trace_map_put(m, 0, r.ptr[i], sz, tb, &had, &old), FTM_OK);
            assert_int_equal(had, r.live[i]);
            assert_int_equal(old, r.live[i] ? r.size[i] : 0);
            if (!r.live[i])
                r.nlive++;
            r.live[i] = true;
            r.size[i] = sz;
            r.tb[i] = tb;
        }
    }
    check_against_model(m, &r, random);
    /* phase 3: remove almost everything (shards shrink), check again */
    for (size_t i = 0; i < N; i++) {
        if (r.live[i] && i % 16 != 0) {
            size_t old;
            assert_true(ftm_trace_map_remove(m, 0, r.ptr[i], &old));
            r.live[i] = false;
            r.nlive--;
        }
    }
    check_against_model(m, &r, random);
    assert_true(ftm_trace_map_bytes(m) < map_bytes / 4);
    /* clear: empty and back to the empty map's memory, then reusable */
    ftm_trace_map_clear(m);
    assert_int_equal(ftm_trace_map_count(m), 0);
    assert_int_equal(ftm_trace_map_bytes(m), empty_bytes);
    for (size_t i = 0; i < N; i += 1000)
        assert_false(ftm_trace_map_get(m, 0, r.ptr[i], NULL));
    put_ok(m, 0, r.ptr[5], 5, 5, false, 0);
    expect_trace(m, 0, r.ptr[5], 5, 5);
    ftm_trace_map_free(m);
    assert_int_equal(ftm_mem_bytes(), mem0);
    free(r.ptr);
    free(r.size);
    free(r.tb);
    free(r.live);
}

static void test_growth_1m_random_portable(void **state)
{
    (void)state;
    growth_1m(true, FTM_MEM_PORTABLE);
}

static void test_growth_1m_sequential_portable(void **state)
{
    (void)state;
    growth_1m(false, FTM_MEM_PORTABLE);
}

static void test_growth_1m_sequential_jemalloc(void **state)
{
    (void)state;
    growth_1m(false, FTM_MEM_JEMALLOC);
    assert_int_equal(ftm_mem_init(FTM_MEM_PORTABLE), FTM_OK);
}

static void test_clear_releases_domains(void **state)
{
    (void)state;
    ftm_trace_map *m = ftm_trace_map_new();
    assert_non_null(m);
    size_t empty = ftm_trace_map_bytes(m);
    assert_int_equal(ftm_mem_bytes(), empty);
    for (ftm_domain_t d = 0; d < 40; d++)
        for (uintptr_t p = 1; p < 2000; p++)
            put_ok(m, d == 39 ? NUMPY_DOMAIN : d, p << 4, p, 1, false, 0);
    put_ok(m, 3, 0, (size_t)1 << 33, 2, false, 0);
    assert_true(ftm_trace_map_bytes(m) > empty);
    assert_int_equal(ftm_trace_map_bytes(m), ftm_mem_bytes());
    ftm_trace_map_clear(m);
    assert_int_equal(ftm_trace_map_count(m), 0);
    assert_int_equal(ftm_trace_map_bytes(m), empty);
    assert_int_equal(ftm_mem_bytes(), empty);
    assert_false(ftm_trace_map_get(m, NUMPY_DOMAIN, 16, NULL));
    assert_false(ftm_trace_map_get(m, 3, 0, NULL));
    ftm_trace buf[1];
    assert_int_equal(ftm_trace_map_copy(m, buf, 1), 0);
    put_ok(m, NUMPY_DOMAIN, 16, 1, 1, false, 0);
    expect_trace(m, NUMPY_DOMAIN, 16, 1, 1);
    ftm_trace_map_free(m);
    assert_int_equal(ftm_mem_bytes(), 0);
}

static void test_oom(void **state)
{
    (void)state;
    ftm_mem_inject_failure(0);
    assert_null(ftm_trace_map_new());
    ftm_trace_map *m = ftm_trace_map_new();
    assert_non_null(m);
    bool had;
    size_t old;
    /* first trace of a shard needs its table */
    ftm_mem_inject_failure(0);
    assert_int_equal(ftm_trace_map_put(m, 0, 4096, 1, 1, &had, &old),
                     FTM_ENOMEM);
    assert_int_equal(ftm_trace_map_count(m), 0);
    assert_false(ftm_trace_map_get(m, 0, 4096, NULL));
    /* a new domain needs its submap */
    ftm_mem_inject_failure(0);
    assert_int_equal(
        ftm_trace_map_put(m, NUMPY_DOMAIN, 4096, 1, 1, &had, &old),
        FTM_ENOMEM);
    assert_false(ftm_trace_map_get(m, NUMPY_DOMAIN, 4096, NULL));
    /* a >= 4 GiB size needs a side-table record */
    put_ok(m, 0, 4096, 1, 1, false, 0);
    ftm_mem_inject_failure(0);
    assert_int_equal(
        ftm_trace_map_put(m, 0, 4096, (size_t)1 << 40, 2, &had, &old),
        FTM_ENOMEM);
    expect_trace(m, 0, 4096, 1, 1); /* unchanged */
    ftm_mem_inject_failure(-1);
    /* growth failing: the shard keeps taking traces while it has room,
     * then says ENOMEM without changing anything */
    unsigned shard = ftm_trace_map_shard_of(4096);
    uintptr_t keys[200];
    size_t nk = 0;
    keys[nk++] = 4096;
    int enomem_at = -1;
    for (uintptr_t p = 8192; nk < 200; p += 16) {
        if (ftm_trace_map_shard_of(p) != shard)
            continue;
        ftm_mem_inject_failure(0); /* any allocation in this put fails */
        int rc = ftm_trace_map_put(m, 0, p, p, 3, &had, &old);
        ftm_mem_inject_failure(-1);
        if (rc == FTM_ENOMEM) {
            enomem_at = (int)nk;
            assert_false(ftm_trace_map_get(m, 0, p, NULL));
            break;
        }
        assert_int_equal(rc, FTM_OK);
        keys[nk++] = p;
    }
    assert_true(enomem_at > 0); /* the table did fill up */
    assert_int_equal(ftm_trace_map_count(m), nk);
    assert_int_equal(ftm_trace_map_shard_count(m, 0, shard), nk);
    expect_trace(m, 0, 4096, 1, 1);
    for (size_t k = 1; k < nk; k++)
        expect_trace(m, 0, keys[k], keys[k], 3);
    /* with memory back, growth resumes */
    put_ok(m, 0, 16, 16, 4, false, 0);
    for (uintptr_t p = 1 << 20, more = 0; more < 100; p += 16) {
        if (ftm_trace_map_shard_of(p) != shard)
            continue;
        put_ok(m, 0, p, 1, 5, false, 0);
        more++;
    }
    for (size_t k = 1; k < nk; k++)
        expect_trace(m, 0, keys[k], keys[k], 3);
    ftm_trace_map_free(m);
    assert_int_equal(ftm_mem_bytes(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_replace_remove_all_shards),
        cmocka_unit_test(test_address_zero_and_huge_sizes),
        cmocka_unit_test(test_set_tb),
        cmocka_unit_test(test_domains),
        cmocka_unit_test(test_clear_releases_domains),
        cmocka_unit_test(test_oom),
        cmocka_unit_test(test_growth_1m_random_portable),
        cmocka_unit_test(test_growth_1m_sequential_portable),
        cmocka_unit_test(test_growth_1m_sequential_jemalloc),
    };
    return cmocka_run_group_tests(tests, setup_portable, NULL);
}
