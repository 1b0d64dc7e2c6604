/*
 * sampled.c -- see sampled.h: the Poisson sampler, the scaling and the set
 * of live sampled addresses.
 *
 * Shared fields and their ordering contract:
 *   ftmpy_sample_mean, ftmpy_sample_free_fast, ftmpy_sample_session,
 *     g_seed, g_seeded -- written under the module lock by
 *     configure/disable, read relaxed by wrappers
 *     (a thread that reads the new session number and a stale seed only
 *     gets a differently seeded, still valid, generator; configure stores
 *     the seed before bumping the session with release, and
 *     ftmpy_sampler_reset reads the session with acquire, so in practice
 *     it gets the new one).
 *   g_serial -- relaxed fetch_add, one per thread per session.
 *   table[].slot, table[].over -- relaxed atomics (sampled.h "Memory
 *     ordering"); the chains are read and written under their stripe's
 *     mutex only.
 *   statistics -- relaxed counters, written on sampled events only (never
 *     on the unsampled fast path).
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sampled.h"

#define SLOTS 7u
#define NBUCKET (1u << FTMPY_SAMPLED_NBUCKET_LOG)
#define NSTRIPE 64u

typedef struct chain {
    uintptr_t p;
    struct chain *next;
} chain;

typedef struct bucket {
    _Alignas(64) atomic_uintptr_t slot[SLOTS];
    atomic_uintptr_t over; /* addresses of this bucket in its chain */
} bucket;

atomic_uint_fast64_t ftmpy_sample_mean;
atomic_uint ftmpy_sample_session;
atomic_int ftmpy_sample_record_all;
atomic_int ftmpy_sample_free_fast;
atomic_int ftmpy_sample_restamp;

/* NBUCKET buckets, allocated once: stored with release after it is
 * zeroed, loaded with acquire by every add/take/has. */
static _Atomic(bucket *) table;
static chain **chains; /* NBUCKET heads, guarded by stripes[] */
/* Per bucket, how many addresses of the set hash there (slots and chain;
 * 0xFFFF is sticky: "maybe", never decremented again).  16 KiB that stay
 * in the cache: a free of an unsampled address reads one uint16 here and,
 * for an empty bucket (nearly always while the set is small against 8192
 * buckets), never touches the table's 512 KiB.  Incremented before the
 * address is stored, decremented after it is removed, so whenever an
 * address is in the set its bucket's count is >= 1 for any thread that
 * the program has ordered after its allocation (sampled.h's argument
 * applied to this counter's modification order). */
atomic_ushort ftmpy_sampled_occ[NBUCKET];
static pthread_mutex_t stripes[NSTRIPE];
static atomic_uint_fast64_t g_seed;
static atomic_int g_seeded;
static atomic_uint g_serial;

static atomic_uint_fast64_t st_sampled;
static atomic_uint_fast64_t st_overflow;
static atomic_uint_fast64_t st_add_oom;
static atomic_size_t st_chain_bytes;

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

void ftmpy_sampler_reset(ftmpy_sampler *s, unsigned session)
{
    uint64_t base;
    unsigned serial =
        atomic_fetch_add_explicit(&g_serial, 1, memory_order_relaxed);
    if (atomic_load_explicit(&g_seeded, memory_order_relaxed)) {
        base = atomic_load_explicit(&g_seed, memory_order_relaxed);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        base = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
               (uint64_t)(uintptr_t)s;
    }
    uint64_t x = base ^ ((uint64_t)serial * UINT64_C(0xD1B54A32D192ED03));
    s->rng = splitmix(&x);
    if (s->rng == 0) {
        s->rng = 1;
    }
    s->mean = atomic_load_explicit(&ftmpy_sample_mean, memory_order_relaxed);
    if (s->mean == 0) {
        s->mean = 1; /* racing with stop: any valid value */
    }
    s->session = session;
    s->left = ftmpy_sampler_draw(s);
}

/* ceil(X), X ~ Exp(mean): P(ceil(X) <= s) = 1 - exp(-s/mean) for integer
 * s (sampled.h). */
uint64_t ftmpy_sampler_draw(ftmpy_sampler *s)
{
    /* xorshift64* */
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    uint64_t r = x * UINT64_C(0x2545F4914F6CDD1D);
    /* u in (0, 1]: -log(u) is finite */
    double u = ((double)(r >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double v = ceil(-log(u) * (double)s->mean);
    if (v < 1.0) {
        return 1;
    }
    if (v >= 1.8e19) {
        return UINT64_MAX;
    }
    return (uint64_t)v;
}

size_t ftmpy_sample_scale(size_t size, uint64_t mean)
{
    if (size == 0 || mean == 0) {
        return size;
    }
    if (size / 64 >= mean) {
        return size; /* q(s) = 1 to double precision */
    }
    double s = (double)size;
    double q = -expm1(-s / (double)mean);
    return (size_t)(s / q + 0.5);
}

/* fork(): a chain operation of another thread must not leave a stripe
 * locked in the child; hold them all across fork (the chains are then
 * consistent in the child, which keeps the set of its only thread). */
static void stripes_lock_all(void)
{
    for (unsigned i = 0; i < NSTRIPE; i++) {
        pthread_mutex_lock(&stripes[i]);
    }
}

static void stripes_unlock_all(void)
{
    for (unsigned i = 0; i < NSTRIPE; i++) {
        pthread_mutex_unlock(&stripes[i]);
    }
}

static void init_stripes(void)
{
    for (unsigned i = 0; i < NSTRIPE; i++) {
        pthread_mutex_init(&stripes[i], NULL);
    }
    pthread_atfork(stripes_lock_all, stripes_unlock_all, stripes_unlock_all);
}

int ftmpy_sampled_configure(uint64_t mean, const uint64_t *seed,
                            int record_all, int restamp)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_stripes);
    bucket *cur = atomic_load_explicit(&table, memory_order_acquire);
    if (cur == NULL) {
        bucket *t = aligned_alloc(64, sizeof(bucket) * NBUCKET);
        chain **c = calloc(NBUCKET, sizeof(chain *));
        if (t == NULL || c == NULL) {
            free(t);
            free(c);
            return -1;
        }
        memset(t, 0, sizeof(bucket) * NBUCKET);
        chains = c;
        atomic_store_explicit(&table, t, memory_order_release);
    } else {
        /* Empty the set: no sampled session is running (stop() came
         * first), so no wrapper adds or takes, except a RAW call racing
         * with that stop, whose entry may survive or vanish (hooks.c). */
        stripes_lock_all();
        for (unsigned b = 0; b < NBUCKET; b++) {
            for (unsigned k = 0; k < SLOTS; k++) {
                atomic_store_explicit(&cur[b].slot[k], 0,
                                      memory_order_relaxed);
            }
            atomic_store_explicit(&cur[b].over, 0, memory_order_relaxed);
            atomic_store_explicit(&ftmpy_sampled_occ[b], 0,
                                  memory_order_relaxed);
            chain *n = chains[b];
            while (n != NULL) {
                chain *next = n->next;
                free(n);
                atomic_fetch_sub_explicit(&st_chain_bytes, sizeof(*n),
                                          memory_order_relaxed);
                n = next;
            }
            chains[b] = NULL;
        }
        stripes_unlock_all();
    }
    atomic_store_explicit(&g_seeded, seed != NULL, memory_order_relaxed);
    atomic_store_explicit(&g_seed, seed != NULL ? *seed : 0,
                          memory_order_relaxed);
    atomic_store_explicit(&g_serial, 0, memory_order_relaxed);
    atomic_store_explicit(&ftmpy_sample_record_all, record_all,
                          memory_order_relaxed);
    atomic_store_explicit(&ftmpy_sample_restamp, restamp,
                          memory_order_relaxed);
    atomic_store_explicit(&ftmpy_sample_mean, mean, memory_order_relaxed);
    atomic_store_explicit(&ftmpy_sample_free_fast, !record_all,
                          memory_order_relaxed);
    unsigned sess =
        atomic_load_explicit(&ftmpy_sample_session, memory_order_relaxed) + 1;
    if (sess == 0) {
        sess = 1; /* 0 means "never drawn" */
    }
    atomic_store_explicit(&ftmpy_sample_session, sess, memory_order_release);
    return 0;
}

void ftmpy_sampled_disable(void)
{
    atomic_store_explicit(&ftmpy_sample_free_fast, 0, memory_order_relaxed);
    atomic_store_explicit(&ftmpy_sample_mean, 0, memory_order_relaxed);
}

static void occ_inc(unsigned b)
{
    unsigned short v =
        atomic_load_explicit(&ftmpy_sampled_occ[b], memory_order_relaxed);
    do {
        if (v == 0xFFFF) {
            return;
        }
    } while (!atomic_compare_exchange_weak_explicit(
        &ftmpy_sampled_occ[b], &v, (unsigned short)(v + 1),
        memory_order_relaxed, memory_order_relaxed));
}

static void occ_dec(unsigned b)
{
    unsigned short v =
        atomic_load_explicit(&ftmpy_sampled_occ[b], memory_order_relaxed);
    do {
        if (v == 0xFFFF || v == 0) {
            return;
        }
    } while (!atomic_compare_exchange_weak_explicit(
        &ftmpy_sampled_occ[b], &v, (unsigned short)(v - 1),
        memory_order_relaxed, memory_order_relaxed));
}

int ftmpy_sampled_add(uintptr_t p)
{
    bucket *tab = atomic_load_explicit(&table, memory_order_acquire);
    if (tab == NULL) {
        return -1; /* racing with the first start_sampled: not traced */
    }
    unsigned b = ftmpy_sampled_bucket(p);
    bucket *bk = &tab[b];
    atomic_fetch_add_explicit(&st_sampled, 1, memory_order_relaxed);
    occ_inc(b);
    for (unsigned k = 0; k < SLOTS; k++) {
        uintptr_t zero = 0;
        if (atomic_load_explicit(&bk->slot[k], memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong_explicit(&bk->slot[k], &zero, p,
                                                    memory_order_relaxed,
                                                    memory_order_relaxed)) {
            return 0;
        }
    }
    chain *n = malloc(sizeof(*n));
    if (n == NULL) {
        atomic_fetch_add_explicit(&st_add_oom, 1, memory_order_relaxed);
        occ_dec(b);
        return -1;
    }
    n->p = p;
    pthread_mutex_t *m = &stripes[b % NSTRIPE];
    pthread_mutex_lock(m);
    n->next = chains[b];
    chains[b] = n;
    atomic_fetch_add_explicit(&bk->over, 1, memory_order_relaxed);
    pthread_mutex_unlock(m);
    atomic_fetch_add_explicit(&st_overflow, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st_chain_bytes, sizeof(*n),
                              memory_order_relaxed);
    return 0;
}

/* Search p's bucket; remove it if `take`. */
static int find(uintptr_t p, int take)
{
    bucket *tab = atomic_load_explicit(&table, memory_order_acquire);
    if (tab == NULL) {
        return 0;
    }
    unsigned b = ftmpy_sampled_bucket(p);
    if (atomic_load_explicit(&ftmpy_sampled_occ[b], memory_order_relaxed) ==
        0) {
        return 0; /* the common case: nothing sampled hashes here */
    }
    bucket *bk = &tab[b];
    for (unsigned k = 0; k < SLOTS; k++) {
        if (atomic_load_explicit(&bk->slot[k], memory_order_relaxed) == p) {
            if (take) {
                atomic_store_explicit(&bk->slot[k], 0, memory_order_relaxed);
                occ_dec(b);
            }
            return 1;
        }
    }
    if (atomic_load_explicit(&bk->over, memory_order_relaxed) == 0) {
        return 0;
    }
    int found = 0;
    chain *gone = NULL;
    pthread_mutex_t *m = &stripes[b % NSTRIPE];
    pthread_mutex_lock(m);
    for (chain **pp = &chains[b]; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->p == p) {
            found = 1;
            if (take) {
                gone = *pp;
                *pp = gone->next;
                atomic_fetch_sub_explicit(&bk->over, 1, memory_order_relaxed);
            }
            break;
        }
    }
    pthread_mutex_unlock(m);
    if (gone != NULL) {
        occ_dec(b);
        free(gone);
        atomic_fetch_sub_explicit(&st_chain_bytes, sizeof(*gone),
                                  memory_order_relaxed);
    }
    return found;
}

int ftmpy_sampled_take(uintptr_t p)
{
    return find(p, 1);
}

int ftmpy_sampled_has(uintptr_t p)
{
    return find(p, 0);
}

void ftmpy_sampled_stats_get(ftmpy_sampled_stats *out)
{
    out->sampled = atomic_load_explicit(&st_sampled, memory_order_relaxed);
    out->overflow = atomic_load_explicit(&st_overflow, memory_order_relaxed);
    out->add_oom = atomic_load_explicit(&st_add_oom, memory_order_relaxed);
    bucket *tab = atomic_load_explicit(&table, memory_order_relaxed);
    out->bytes =
        (tab != NULL ? sizeof(bucket) * NBUCKET + NBUCKET * sizeof(chain *)
                     : 0) +
        atomic_load_explicit(&st_chain_bytes, memory_order_relaxed);
}
