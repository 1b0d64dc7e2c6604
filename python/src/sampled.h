/*
 * sampled.h -- sampled mode: the per-thread Poisson sampler, the scaling
 * of a sampled block to an unbiased estimate, and the set of live sampled
 * addresses that lets a free of an unsampled block cost no engine event.
 *
 * Owns: the session's sampling period (ftmpy_sample_mean, 0 = exact mode),
 * the session number samplers compare against, and the sampled-address
 * set.
 *
 * The model.  Allocations are sampled by bytes as a Poisson process of
 * rate 1/P (P = mean bytes between samples): each thread keeps
 * `left` = ceil(X), X ~ Exp(mean P), bytes until its next sample point; an
 * allocation of s bytes is sampled iff left <= s (iff X <= s, as s is an
 * integer), else left -= s.  After a sample, left is drawn afresh (the
 * process is memoryless).  So every allocation is sampled independently
 * with probability q(s) = 1 - exp(-s/P), and a sampled block is recorded
 * in the engine with the size e(s) = s / q(s): the sum of e over sampled
 * blocks is an unbiased (Horvitz-Thompson) estimate of the bytes of all
 * blocks, and current/peak, snapshots and statistics are estimates in
 * bytes.  e(s) >= P always, so rounding e to an integer costs at most
 * 0.5 / P of relative bias.  Blocks of s >= 10 P are sampled with
 * probability >= 1 - 4.6e-5; s >= 64 P is recorded with e = s.
 *
 * The set.  A free must tell the engine about a sampled block, and must
 * not cost a ring event for the (vast majority of) unsampled ones.  The
 * set holds every live sampled address: an open table of 64-byte buckets
 * (7 address slots and an overflow count) indexed by a hash of the
 * address, with a mutex-guarded chain per bucket for the rare bucket that
 * fills up.  A free first reads its bucket's 16-bit count in a 16 KiB
 * array that stays cached (sampled.c: `occ`); only for a non-empty
 * bucket does it read the bucket's cache line.
 *   - add(p): CAS a slot from 0 to p (lock-free), else append p to the
 *     bucket's chain under its stripe mutex and bump the bucket's
 *     overflow count.
 *   - take(p): if a slot holds p, store 0 there and return 1 (only the
 *     thread freeing p ever removes p, and no other thread writes a slot
 *     that is not 0); else, if the bucket's overflow count is non-zero,
 *     search the chain under the mutex.
 * Memory ordering: slots and overflow counts are relaxed atomics.  For a
 * given address the program itself orders add(p) (in the allocation's
 * hook, before p is returned) before take(p) (in the free's hook): every
 * correct program passes p from the allocating to the freeing thread with
 * a happens-before edge (the GIL, a lock, a queue), so by write-read
 * coherence take(p) reads p (or a later value, which can only be its own
 * removal) and no false negative is possible.  A slot written by another
 * thread's concurrent add/take is a different address: a reader may see
 * it either way, which only changes whether a miss is found one slot
 * later.  False positives are impossible too (a slot holds an address
 * only while that address's sampled block is live).
 *
 * Sessions.  ftmpy_sampled_configure() (start_sampled, under the module
 * lock before the hooks are installed) empties the set, sets P and bumps
 * the session number, so every thread redraws its counter (and reseeds)
 * at its first allocation of the new session.  clear_traces() does not
 * empty the set: an allocation racing with the clear could be traced in
 * the new generation yet missing from the set (its free would never be
 * recorded); a stale entry only costs one ignored free event later.  The
 * table is allocated once and never freed (a RAW hook of the previous
 * session may still read it without the GIL).
 *
 * Threads: configure/disable under the module lock (GIL builds: the GIL);
 * everything else from any allocating thread.
 */
#ifndef FTMPY_SAMPLED_H
#define FTMPY_SAMPLED_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* The session's mean bytes between samples, 0 in exact mode.  Written by
 * configure/disable (module lock), read relaxed by every wrapper: a stale
 * value is a wrapper racing with start/stop, as for g_tracing (hooks.c). */
extern atomic_uint_fast64_t ftmpy_sample_mean;
/* Benchmark knob (private, off by default): record every free and every
 * retrace as an engine event, as a design without the set would, to
 * measure what the set saves (bench/sampled_bench.py).  The set is still
 * kept (realloc and correctness need it).  Written by configure. */
extern atomic_int ftmpy_sample_record_all;
/* 1 while a sampled session runs without record_all: a free of a block
 * whose bucket is empty (ftmpy_sampled_maybe) needs no work at all
 * (hooks.c: do_free).  One flag instead of two loads on the most frequent
 * call.  Written by configure/disable with ftmpy_sample_mean, read relaxed
 * (stale: a free racing with start/stop, as for ftmpy_sample_mean). */
extern atomic_int ftmpy_sample_free_fast;
/* Whether a sampled session re-stamps free-list objects (3.13+, hooks.c
 * "Free-list objects").  Off by default: CPython then calls no tracer on
 * every object creation and destruction, which costs more than everything
 * else the sampled mode does (README "Sampled mode").  Written by
 * configure, read by ftmpy_hooks_install right after it. */
extern atomic_int ftmpy_sample_restamp;
/* Bumped by every configure; samplers redraw when theirs differs. */
extern atomic_uint ftmpy_sample_session;

/* One thread's sampler (lives in the thread's tcache, hooks.c). */
typedef struct ftmpy_sampler {
    uint64_t left;    /* bytes until the next sample point, >= 1 */
    uint64_t rng;     /* xorshift state, never 0 */
    uint64_t mean;    /* P of the session this sampler was drawn for */
    unsigned session; /* 0 = never drawn */
} ftmpy_sampler;

void ftmpy_sampler_reset(ftmpy_sampler *s, unsigned session);
uint64_t ftmpy_sampler_draw(ftmpy_sampler *s);

/* The decision in two halves, so the wrappers keep the common one inline:
 * skip() returns 1 for an allocation of `size` bytes that is NOT sampled
 * (and counts it down); when it returns 0 the allocation is sampled and
 * the caller must call hit() (which draws the next sample point) before
 * the next skip().  The calling thread's own sampler; only while
 * ftmpy_sample_mean != 0. */
static inline int ftmpy_sampler_skip(ftmpy_sampler *s, size_t size)
{
    unsigned sess =
        atomic_load_explicit(&ftmpy_sample_session, memory_order_relaxed);
    if (__builtin_expect(s->session != sess, 0)) {
        ftmpy_sampler_reset(s, sess);
    }
    if (__builtin_expect(size < s->left, 1)) {
        s->left -= size;
        return 1;
    }
    return 0;
}

/* skip() without the reset: 1 as skip(); 0 when the allocation is
 * sampled OR the sampler was drawn for another session -- either way
 * nothing changed, and the caller asks skip() (which resets) instead.
 * No call inside, so a caller's fast path needs no stack frame. */
static inline int ftmpy_sampler_skip_drawn(ftmpy_sampler *s, size_t size)
{
    unsigned sess =
        atomic_load_explicit(&ftmpy_sample_session, memory_order_relaxed);
    if (__builtin_expect(s->session == sess && size < s->left, 1)) {
        s->left -= size;
        return 1;
    }
    return 0;
}

static inline void ftmpy_sampler_hit(ftmpy_sampler *s)
{
    s->left = ftmpy_sampler_draw(s);
}

/* 1 if an allocation of `size` bytes is sampled (both halves). */
static inline int ftmpy_sampler_take(ftmpy_sampler *s, size_t size)
{
    if (ftmpy_sampler_skip(s, size)) {
        return 0;
    }
    ftmpy_sampler_hit(s);
    return 1;
}

/* e(size) = size / (1 - exp(-size/mean)), rounded; the size a sampled
 * block is recorded with. */
size_t ftmpy_sample_scale(size_t size, uint64_t mean);

/* Start a sampled session: P = mean (> 0); seed != NULL: each thread's
 * generator is derived from *seed and the order in which threads first
 * allocate in the session (deterministic for one thread).  0, or -1 if
 * the table cannot be allocated (no exception set). */
int ftmpy_sampled_configure(uint64_t mean, const uint64_t *seed,
                            int record_all, int restamp);
/* Back to exact mode (stop()). */
void ftmpy_sampled_disable(void);

/* The set (see above).  add: 0, or -1 if an overflow node cannot be
 * allocated (p is then not in the set: the caller must not trace it). */
int ftmpy_sampled_add(uintptr_t p);
int ftmpy_sampled_take(uintptr_t p);
int ftmpy_sampled_has(uintptr_t p);

/* The set's buckets and their occupancy counts (sampled.c: `occ`),
 * exposed only for ftmpy_sampled_maybe(): the unsampled free, the most
 * frequent call of the sampled mode, tests its bucket's count inline
 * instead of calling take().  Zero (static) until the first session. */
#define FTMPY_SAMPLED_NBUCKET_LOG 13u
extern atomic_ushort ftmpy_sampled_occ[1u << FTMPY_SAMPLED_NBUCKET_LOG];

static inline unsigned ftmpy_sampled_bucket(uintptr_t p)
{
    uint64_t h = ((uint64_t)p >> 4) * UINT64_C(0x9E3779B97F4A7C15);
    return (unsigned)(h >> (64 - FTMPY_SAMPLED_NBUCKET_LOG));
}

/* 0: p is certainly not in the set (take(p) would return 0 -- its first
 * test is this one); 1: call take(p) to know.  Same ordering argument as
 * take (sampled.c: `occ`). */
static inline int ftmpy_sampled_maybe(uintptr_t p)
{
    return atomic_load_explicit(&ftmpy_sampled_occ[ftmpy_sampled_bucket(p)],
                                memory_order_relaxed) != 0;
}

typedef struct ftmpy_sampled_stats {
    uint64_t sampled;  /* allocations sampled (added to the set) */
    uint64_t overflow; /* adds that went to a bucket's chain */
    uint64_t add_oom;  /* adds that failed: block not traced */
    size_t bytes;      /* the table and chains */
} ftmpy_sampled_stats;

void ftmpy_sampled_stats_get(ftmpy_sampled_stats *out);

#endif /* FTMPY_SAMPLED_H */
