/*
 * tb_pool.c -- one generation of interned tracebacks.
 *
 * Owns: the interned tracebacks (entries in bump-allocated slabs), the id
 * directory, the hash index (current table + retired ones), and all memory
 * thereof (accounted in `bytes`; every byte from ftm_mem_*).
 *
 * Why our own table rather than ck_hs: the hit path is the producer's hot
 * path (target <= 30 ns for 25 frames).  Here a hit is: hash the frames
 * (one 64-bit multiply per 16-byte frame, all independent), probe an array
 * of {hash, entry*} slots, one memcmp.  ck_hs would add a callback per
 * probe and its own key/hash plumbing, and it still needs the same external
 * writer lock and deferred-free hook; entries here are never deleted inside
 * a generation (the whole generation is dropped at once), so insert-only
 * linear probing is both simplest and fastest.  Lock-free reads are safe
 * because a slot goes from empty to filled exactly once and a table is
 * never modified after it is replaced.
 *
 * Invariants
 *   - every entry 1..count is in chunks and in the current table;
 *   - identical (frames, nframe, total_nframe, thread_tag) are interned
 *     once: every insert happens under `lock` after a re-probe of the
 *     current table;
 *   - tables and entries never move or get freed before ftm_tb_pool_free;
 *   - the current table is at most half full (3/4 if its growth failed).
 *
 * Threads: intern/get/count/bytes/oom_count from any thread.  Inserts and
 * table growth serialise on `lock` (a pthread mutex: the slow path already
 * allocates, so a sleeping lock costs nothing extra); readers never take it.
 * ftm_tb_pool_free: caller guarantees no thread is inside the pool.
 *
 * Memory ordering (shared fields)
 *   table          writer: release store after the new table is filled;
 *                  readers: acquire load, then probe that table.
 *   slot.e         writer: stores slot.hash (relaxed) then slot.e (release);
 *                  readers: acquire load of slot.e, then slot.hash (relaxed)
 *                  and the entry's contents (both published by the release).
 *   chunks[b]      writer: release store of a zeroed chunk before any id in
 *                  it is published; get: acquire load.
 *   chunk[off]     writer: release store of the entry pointer BEFORE count.
 *   count          writer: release store after chunk[off], and BEFORE the
 *                  entry is put in the table, so anyone who learned an id
 *                  (through the table or any release/acquire chain after
 *                  it) sees count >= id and the chunk slot in get().
 *   bytes, oom     relaxed: statistics only.
 */
#include "tb_pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "memory.h"

#define ID_CHUNK_SHIFT 10 /* first id chunk: 1024 entries, then doubling */
#define ID_CHUNKS 24      /* 2^10 * (2^23 - 1) > 2^32 ids */
#define TABLE_INITIAL 256
#define SLAB_BYTES (64 * 1024)

/* 16 bytes before the frames, as before the thread tag: the hash lives
 * only in the index's slots (growth copies it from there). */
typedef struct tb_entry {
    uint16_t nframe;
    uint16_t total_nframe;
    ftm_tb_id id;
    uint32_t thread_tag; /* part of the key: see tb_pool.h */
    ftm_frame frames[];  /* nframe records, most recent first */
} tb_entry;

typedef struct slot {
    _Atomic uint64_t hash;
    _Atomic(tb_entry *) e;
} slot;

typedef struct table {
    struct table *retired_next; /* writer only */
    size_t mask;
    size_t nbytes;
    slot slots[];
} table;

typedef struct slab {
    struct slab *next;
    size_t nbytes;
} slab;

struct ftm_tb_pool {
    /* read by producers on every intern: own cache line */
    _Atomic(table *) table;
    _Atomic size_t count;
    _Atomic(_Atomic(tb_entry *) *) chunks[ID_CHUNKS];
    uint32_t generation;
    _Alignas(64) pthread_mutex_t lock;
    _Atomic uint64_t oom;
    _Atomic size_t bytes;
    /* under lock only */
    table *retired;
    slab *slabs;
    char *slab_cur;
    size_t slab_left;
};

/* ---- hashing ------------------------------------------------------------ */

#ifdef FTM_TEST_HOOKS
uint64_t ftm_test_tb_hash_mask = ~(uint64_t)0; /* tb_pool.h */
#endif

static inline uint64_t mum(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* Two position-keyed sums of independent 64-bit products (frames i and i+1
 * go to different accumulators, so two multiplies are in flight and the only
 * serial dependency is an add), folded by one 64x64->128 multiply at the
 * end.  Order-sensitive because every position has its own keys.  Measured
 * here at ~0.6 ns per frame against ~0.85 for one 128-bit multiply per
 * frame; collisions only cost a longer probe, identity is decided by
 * memcmp. */
static inline uint64_t tb_hash(const ftm_frame *f, uint16_t nframe,
                               uint16_t total_nframe, uint32_t thread_tag)
{
    uint64_t acc = 0x243F6A8885A308D3ull, acc2 = 0x13198A2E03707344ull;
    uint64_t k = 0xA0761D6478BD642Full;
    uint32_t i = 0;
    for (; i + 1 < nframe; i += 2) {
        acc += (f[i].a ^ k) * (f[i].b ^ (k >> 7));
        acc2 += (f[i + 1].a ^ (k << 3)) * (f[i + 1].b ^ ~k);
        k += 0x8EBC6AF09C88C6E3ull;
    }
    if (i < nframe)
        acc2 += (f[i].a ^ k) * (f[i].b ^ (k >> 7));
    uint64_t h = mum(acc ^ 0x1D8E4E27C47D124Full,
                     acc2 ^ (((uint64_t)thread_tag << 32 |
                              (uint64_t)nframe << 16 | total_nframe) *
                             0x9E3779B97F4A7C15ull));
#ifdef FTM_TEST_HOOKS
    h &= ftm_test_tb_hash_mask; /* tb_pool.h: forced collisions in tests */
#endif
    return h;
}

static inline bool same(const tb_entry *e, const ftm_frame *frames,
                        uint16_t nframe, uint16_t total_nframe,
                        uint32_t thread_tag)
{
    if (e->thread_tag != thread_tag)
        return false;
    return e->nframe == nframe && e->total_nframe == total_nframe &&
           (nframe == 0 || memcmp(e->frames, frames,
                                  (size_t)nframe * sizeof(ftm_frame)) == 0);
}

/* ---- memory ------------------------------------------------------------- */

static void *pool_alloc(ftm_tb_pool *p, size_t n)
{
    void *m = ftm_mem_calloc(1, n);
    if (m)
        atomic_fetch_add_explicit(&p->bytes, n, memory_order_relaxed);
    return m;
}

static table *table_new(ftm_tb_pool *p, size_t cap)
{
    size_t nbytes = sizeof(table) + cap * sizeof(slot);
    table *t = pool_alloc(p, nbytes);
    if (t) {
        t->mask = cap - 1;
        t->nbytes = nbytes;
    }
    return t;
}

static void table_free(ftm_tb_pool *p, table *t)
{
    atomic_fetch_sub_explicit(&p->bytes, t->nbytes, memory_order_relaxed);
    ftm_mem_free(t, t->nbytes);
}

/* Bump-allocate an entry from the current slab (writer, under lock). */
static tb_entry *entry_alloc(ftm_tb_pool *p, size_t nbytes)
{
    nbytes = (nbytes + 15) & ~(size_t)15;
    if (nbytes > p->slab_left) {
        size_t sbytes =
            nbytes > SLAB_BYTES / 4 ? sizeof(slab) + nbytes : SLAB_BYTES;
        slab *s = pool_alloc(p, sbytes);
        if (!s)
            return NULL;
        s->nbytes = sbytes;
        s->next = p->slabs;
        p->slabs = s;
        char *data = (char *)s + ((sizeof(slab) + 15) & ~(size_t)15);
        size_t avail = sbytes - (size_t)(data - (char *)s);
        if (nbytes > SLAB_BYTES / 4)
            return (tb_entry *)data; /* dedicated slab, keep the current */
        p->slab_cur = data;
        p->slab_left = avail;
    }
    tb_entry *e = (tb_entry *)p->slab_cur;
    p->slab_cur += nbytes;
    p->slab_left -= nbytes;
    return e;
}

/* ---- ids ---------------------------------------------------------------- */

static inline void id_locate(ftm_tb_id id, unsigned *chunk, size_t *off)
{
    uint64_t v = (uint64_t)(id - 1) + (1u << ID_CHUNK_SHIFT);
    unsigned top = 63u - (unsigned)__builtin_clzll(v);
    *chunk = top - ID_CHUNK_SHIFT;
    *off = (size_t)(v - ((uint64_t)1 << top));
}

static inline size_t chunk_len(unsigned chunk)
{
    return (size_t)1 << (chunk + ID_CHUNK_SHIFT);
}

/* ---- lifecycle ---------------------------------------------------------- */

ftm_tb_pool *ftm_tb_pool_new(uint32_t generation)
{
    ftm_tb_pool *p = ftm_mem_calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    atomic_init(&p->bytes, sizeof(*p));
    p->generation = generation;
    table *t = table_new(p, TABLE_INITIAL);
    if (!t) {
        ftm_mem_free(p, sizeof(*p));
        return NULL;
    }
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        table_free(p, t);
        ftm_mem_free(p, sizeof(*p));
        return NULL;
    }
    atomic_init(&p->table, t);
    return p;
}

void ftm_tb_pool_free(ftm_tb_pool *p)
{
    if (!p)
        return;
    table *t = atomic_load_explicit(&p->table, memory_order_relaxed);
    table_free(p, t);
    while (p->retired) {
        t = p->retired;
        p->retired = t->retired_next;
        table_free(p, t);
    }
    for (unsigned c = 0; c < ID_CHUNKS; c++) {
        void *ch = atomic_load_explicit(&p->chunks[c], memory_order_relaxed);
        if (ch)
            ftm_mem_free(ch, chunk_len(c) * sizeof(tb_entry *));
    }
    while (p->slabs) {
        slab *s = p->slabs;
        p->slabs = s->next;
        ftm_mem_free(s, s->nbytes);
    }
    pthread_mutex_destroy(&p->lock);
    ftm_mem_free(p, sizeof(*p));
}

uint32_t ftm_tb_pool_generation(const ftm_tb_pool *p)
{
    return p->generation;
}

/* ---- intern ------------------------------------------------------------- */

static inline tb_entry *probe(table *t, uint64_t h, const ftm_frame *frames,
                              uint16_t nframe, uint16_t total_nframe,
                              uint32_t thread_tag)
{
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        tb_entry *e =
            atomic_load_explicit(&t->slots[i].e, memory_order_acquire);
        if (!e)
            return NULL;
        if (atomic_load_explicit(&t->slots[i].hash, memory_order_relaxed) ==
                h &&
            same(e, frames, nframe, total_nframe, thread_tag))
            return e;
    }
}

/* Writer: put e, whose hash is h, in table t (not yet full). */
static void table_put(table *t, tb_entry *e, uint64_t h)
{
    size_t i = h & t->mask;
    while (atomic_load_explicit(&t->slots[i].e, memory_order_relaxed))
        i = (i + 1) & t->mask;
    atomic_store_explicit(&t->slots[i].hash, h, memory_order_relaxed);
    atomic_store_explicit(&t->slots[i].e, e, memory_order_release);
}

static tb_entry *entry_of(ftm_tb_pool *p, ftm_tb_id id)
{
    unsigned c;
    size_t off;
    id_locate(id, &c, &off);
    _Atomic(tb_entry *) *ch =
        atomic_load_explicit(&p->chunks[c], memory_order_acquire);
    return atomic_load_explicit(&ch[off], memory_order_acquire);
}

static ftm_tb_id oom(ftm_tb_pool *p)
{
    atomic_fetch_add_explicit(&p->oom, 1, memory_order_relaxed);
    return FTM_TB_NONE;
}

static ftm_tb_id intern_slow(ftm_tb_pool *p, const ftm_frame *frames,
                             uint16_t nframe, uint16_t total_nframe,
                             uint32_t thread_tag, uint64_t h)
{
    ftm_tb_id id = FTM_TB_NONE;
    pthread_mutex_lock(&p->lock);
    table *t = atomic_load_explicit(&p->table, memory_order_relaxed);
    tb_entry *e = probe(t, h, frames, nframe, total_nframe, thread_tag);
    if (e) { /* another thread inserted it since our lock-free probe */
        id = e->id;
        goto out;
    }
    size_t n = atomic_load_explicit(&p->count, memory_order_relaxed);
    if (n >= (size_t)UINT32_MAX - 1) {
        id = oom(p);
        goto out;
    }
    ftm_tb_id new_id = (ftm_tb_id)(n + 1);
    unsigned c;
    size_t off;
    id_locate(new_id, &c, &off);
    _Atomic(tb_entry *) *ch =
        atomic_load_explicit(&p->chunks[c], memory_order_relaxed);
    if (!ch) {
        ch = pool_alloc(p, chunk_len(c) * sizeof(tb_entry *));
        if (!ch) {
            id = oom(p);
            goto out;
        }
        atomic_store_explicit(&p->chunks[c], ch, memory_order_release);
    }
    /* Grow the index at half load; if that fails, carry on to 3/4. */
    size_t cap = t->mask + 1;
    table *nt = NULL;
    if ((n + 1) * 2 > cap) {
        nt = table_new(p, cap * 2);
        if (!nt && (n + 1) * 4 > cap * 3) {
            id = oom(p);
            goto out;
        }
    }
    e = entry_alloc(p, sizeof(tb_entry) + (size_t)nframe * sizeof(ftm_frame));
    if (!e) {
        if (nt)
            table_free(p, nt);
        id = oom(p);
        goto out;
    }
    e->nframe = nframe;
    e->total_nframe = total_nframe;
    e->id = new_id;
    e->thread_tag = thread_tag;
    if (nframe)
        memcpy(e->frames, frames, (size_t)nframe * sizeof(ftm_frame));
    /* publish: id directory, then count, then the index (see top) */
    atomic_store_explicit(&ch[off], e, memory_order_release);
    atomic_store_explicit(&p->count, n + 1, memory_order_release);
    if (nt) {
        /* every entry, with the hash its slot keeps */
        for (size_t k = 0; k <= t->mask; k++) {
            tb_entry *old =
                atomic_load_explicit(&t->slots[k].e, memory_order_relaxed);
            if (old)
                table_put(nt, old,
                          atomic_load_explicit(&t->slots[k].hash,
                                               memory_order_relaxed));
        }
        table_put(nt, e, h);
        atomic_store_explicit(&p->table, nt, memory_order_release);
        t->retired_next = p->retired; /* readers may still be in t */
        p->retired = t;
    } else {
        table_put(t, e, h);
    }
    id = new_id;
out:
    pthread_mutex_unlock(&p->lock);
    return id;
}

ftm_tb_id ftm_tb_pool_intern_tagged(ftm_tb_pool *p, const ftm_frame *frames,
                                    uint16_t nframe, uint16_t total_nframe,
                                    uint32_t thread_tag)
{
    uint64_t h = tb_hash(frames, nframe, total_nframe, thread_tag);
    table *t = atomic_load_explicit(&p->table, memory_order_acquire);
    tb_entry *e = probe(t, h, frames, nframe, total_nframe, thread_tag);
    if (e)
        return e->id;
    return intern_slow(p, frames, nframe, total_nframe, thread_tag, h);
}

ftm_tb_id ftm_tb_pool_intern(ftm_tb_pool *p, const ftm_frame *frames,
                             uint16_t nframe, uint16_t total_nframe)
{
    return ftm_tb_pool_intern_tagged(p, frames, nframe, total_nframe, 0);
}

int ftm_tb_pool_get(const ftm_tb_pool *p, ftm_tb_id id,
                    const ftm_frame **frames, uint16_t *nframe,
                    uint16_t *total_nframe)
{
    ftm_tb_pool *mp = (ftm_tb_pool *)p; /* atomics are loaded only */
    if (id == FTM_TB_NONE ||
        id > atomic_load_explicit(&mp->count, memory_order_acquire))
        return FTM_EINVAL;
    const tb_entry *e = entry_of(mp, id);
    if (frames)
        *frames = e->frames;
    if (nframe)
        *nframe = e->nframe;
    if (total_nframe)
        *total_nframe = e->total_nframe;
    return FTM_OK;
}

int ftm_tb_pool_thread(const ftm_tb_pool *p, ftm_tb_id id,
                       uint32_t *thread_tag)
{
    ftm_tb_pool *mp = (ftm_tb_pool *)p; /* atomics are loaded only */
    if (id == FTM_TB_NONE ||
        id > atomic_load_explicit(&mp->count, memory_order_acquire))
        return FTM_EINVAL;
    *thread_tag = entry_of(mp, id)->thread_tag;
    return FTM_OK;
}

size_t ftm_tb_pool_count(const ftm_tb_pool *p)
{
    return atomic_load_explicit(&((ftm_tb_pool *)p)->count,
                                memory_order_acquire);
}

size_t ftm_tb_pool_bytes(const ftm_tb_pool *p)
{
    return atomic_load_explicit(&((ftm_tb_pool *)p)->bytes,
                                memory_order_relaxed);
}

uint64_t ftm_tb_pool_oom_count(const ftm_tb_pool *p)
{
    return atomic_load_explicit(&((ftm_tb_pool *)p)->oom,
                                memory_order_relaxed);
}

void ftm_tb_pool_fork_prepare(ftm_tb_pool *p)
{
    pthread_mutex_lock(&p->lock);
}

void ftm_tb_pool_fork_parent(ftm_tb_pool *p)
{
    pthread_mutex_unlock(&p->lock);
}

void ftm_tb_pool_fork_child(ftm_tb_pool *p)
{
    pthread_mutex_init(&p->lock, NULL);
}
