/*
 * trace_map.c -- (domain, ptr) -> {size, tb}: sharded robin-hood tables.
 *
 * Owns: every live trace of one session, and all the memory holding them
 * (accounted in m->bytes; every byte comes from ftm_mem_*).
 *
 * Layout
 *   map -> submap per domain.  Domain 0 is inline in the map; other domains
 *   are found through a small open-addressing table of submap pointers
 *   (grows 2x, entries removed only by clear).  A submap is FTM_MAP_SHARDS
 *   shards; the shard of a pointer is taken from the high bits of its hash,
 *   the home slot inside the shard from the low bits (fast range reduction,
 *   so shard capacities need not be powers of two).
 *   A shard is a linear-probing table kept in robin-hood order (entries
 *   sorted by probe distance along each run), so a missing key is detected
 *   as soon as a slot's distance is shorter than the probe's, and deletion
 *   is a backward shift: no tombstones ever.
 *   Entry = {ptr 8, size 4, tb 4} = 16 bytes.  A size >= 2^32-1 stores the
 *   marker FTM_BIG_SIZE and its real size in the shard's overflow array
 *   (linear; such blocks are >= 4 GiB each, so only a handful can be live).
 *   ptr == 0 marks an empty slot; a trace of address 0 (legal through
 *   PyTraceMalloc_Track) lives in the shard's one-entry zero_key field.
 *
 * Invariants
 *   - robin hood: along a run, dist(slot) <= dist(previous slot) + 1;
 *   - count <= grow_at < cap except after a failed growth (OOM), where the
 *     table keeps accepting inserts up to cap - 1 (one empty slot always
 *     remains, so every probe terminates) instead of losing a trace;
 *   - m->count == sum of shard counts (+ zero keys) over all submaps;
 *   - m->bytes == bytes this map currently holds from ftm_mem_*.
 *
 * Memory budget: a shard grows by 1.5x at load 0.85, so its load stays in
 * [0.57, 0.85] (16/0.85 .. 16/0.57 = 19..28 bytes per trace).  Initial
 * shard capacities are spread over one growth step (16..23 slots), so the
 * shards grow at different moments: growth pauses are spread out and the
 * map-wide load sits near the middle of that band instead of all shards
 * swinging together.  Shards shrink 2x when they fall below load 1/4.
 *
 * Threads: ONE writer at a time and readers only while no writer runs; the
 * engine serialises every call with its apply lock.  Hence no atomics and
 * no memory-ordering contract on any field here.
 */
#include "trace_map.h"

#include <string.h>

#include "memory.h"

#define FTM_BIG_SIZE UINT32_MAX
#define FTM_LOAD_NUM 85 /* grow above 85% load */
#define FTM_LOAD_DEN 100
#define FTM_SHRINK_MIN 64 /* never shrink a shard below this many slots */

typedef struct entry {
    uintptr_t ptr; /* 0 = empty slot */
    uint32_t size; /* FTM_BIG_SIZE: real size in the overflow array */
    ftm_tb_id tb;
} entry;

typedef struct big_size {
    uintptr_t ptr;
    size_t size;
} big_size;

typedef struct shard {
    entry *slots; /* NULL until the first insert */
    uint32_t cap;
    uint32_t count;   /* entries in slots (zero_key not included) */
    uint32_t grow_at; /* grow when an insert would exceed this */
    uint32_t nbig, bigcap;
    big_size *bigs;
    bool has_zero;
    entry zero_key;
} shard;

typedef struct submap {
    ftm_domain_t domain;
    size_t count;
    shard shards[FTM_MAP_SHARDS];
} submap;

struct ftm_trace_map {
    size_t count;
    size_t bytes;
    submap dom0;
    submap **doms; /* open addressing on domain, NULL = empty */
    size_t domcap; /* power of two (or 0) */
    size_t ndoms;
};

/* ---- memory with the map's own accounting ------------------------------ */

static void *map_calloc(ftm_trace_map *m, size_t n, size_t size)
{
    void *p = ftm_mem_calloc(n, size);
    if (p)
        m->bytes += n * size;
    return p;
}

static void map_free(ftm_trace_map *m, void *p, size_t size)
{
    if (!p)
        return;
    ftm_mem_free(p, size);
    m->bytes -= size;
}

/* ---- hashing ------------------------------------------------------------ */

static inline uint64_t hash_ptr(uintptr_t p)
{
    uint64_t x = (uint64_t)p * 0x9E3779B97F4A7C15ull;
    return x ^ (x >> 29);
}

static inline uint32_t shard_of(uint64_t h)
{
    return (uint32_t)(((h >> 32) * FTM_MAP_SHARDS) >> 32);
}

static inline uint32_t home_of(uint64_t h, uint32_t cap)
{
    return (uint32_t)(((uint64_t)(uint32_t)h * cap) >> 32);
}

static inline uint32_t dist(uint32_t i, uint32_t home, uint32_t cap)
{
    return i >= home ? i - home : i + cap - home;
}

static inline uint32_t initial_cap(uint32_t shard_index)
{
    return 16 + (shard_index * 8) / FTM_MAP_SHARDS; /* 16..23 */
}

static inline uint32_t grow_threshold(uint32_t cap)
{
    return (uint32_t)(((uint64_t)cap * FTM_LOAD_NUM) / FTM_LOAD_DEN);
}

/* ---- one shard ---------------------------------------------------------- */

/* Slot index of ptr (ptr != 0), or -1 and, if the shard has a table,
 * *at / *at_d = the slot and probe distance where a robin-hood insert of
 * ptr starts (so put needs one pass, not a find and then an insert). */
static long shard_probe(const shard *s, uintptr_t ptr, uint64_t h,
                        uint32_t *at, uint32_t *at_d)
{
    if (!s->slots)
        return -1;
    uint32_t cap = s->cap, i = home_of(h, cap), d = 0;
    for (;;) {
        const entry *e = &s->slots[i];
        if (e->ptr == ptr)
            return (long)i;
        if (e->ptr == 0 || dist(i, home_of(hash_ptr(e->ptr), cap), cap) < d) {
            *at = i;
            *at_d = d;
            return -1;
        }
        d++;
        if (++i == cap)
            i = 0;
    }
}

static long shard_find(const shard *s, uintptr_t ptr, uint64_t h)
{
    uint32_t at, at_d;
    return shard_probe(s, ptr, h, &at, &at_d);
}

/* Robin-hood insert of a key known to be absent, starting at slot i where
 * it has probe distance d; the table has room. */
static void slots_insert_at(entry *slots, uint32_t cap, uint32_t i, uint32_t d,
                            entry ins)
{
    for (;;) {
        entry *e = &slots[i];
        if (e->ptr == 0) {
            *e = ins;
            return;
        }
        uint32_t ed = dist(i, home_of(hash_ptr(e->ptr), cap), cap);
        if (ed < d) {
            entry t = *e;
            *e = ins;
            ins = t;
            d = ed;
        }
        d++;
        if (++i == cap)
            i = 0;
    }
}

static void slots_insert(entry *slots, uint32_t cap, entry ins)
{
    slots_insert_at(slots, cap, home_of(hash_ptr(ins.ptr), cap), 0, ins);
}

/* Move the shard into a table of new_cap slots.  FTM_ENOMEM leaves it. */
static int shard_resize(ftm_trace_map *m, shard *s, uint32_t new_cap)
{
    entry *ns = map_calloc(m, new_cap, sizeof(entry));
    if (!ns)
        return FTM_ENOMEM;
    for (uint32_t i = 0; i < s->cap; i++)
        if (s->slots[i].ptr)
            slots_insert(ns, new_cap, s->slots[i]);
    map_free(m, s->slots, (size_t)s->cap * sizeof(entry));
    s->slots = ns;
    s->cap = new_cap;
    s->grow_at = grow_threshold(new_cap);
    return FTM_OK;
}

/* Room for one more entry.  FTM_ENOMEM only if the table is truly full. */
static int shard_reserve(ftm_trace_map *m, shard *s, uint32_t index)
{
    if (!s->slots) {
        uint32_t cap = initial_cap(index);
        s->slots = map_calloc(m, cap, sizeof(entry));
        if (!s->slots)
            return FTM_ENOMEM;
        s->cap = cap;
        s->grow_at = grow_threshold(cap);
        return FTM_OK;
    }
    if (s->count + 1 <= s->grow_at)
        return FTM_OK;
    if (s->cap > UINT32_MAX / 3 * 2 - 1) /* cannot index a bigger shard */
        return s->count + 2 <= s->cap ? FTM_OK : FTM_ENOMEM;
    if (shard_resize(m, s, s->cap + s->cap / 2) == FTM_OK)
        return FTM_OK;
    /* Out of memory: keep going past the load factor rather than lose the
     * trace, as long as one empty slot remains. */
    return s->count + 2 <= s->cap ? FTM_OK : FTM_ENOMEM;
}

static void shard_erase(shard *s, uint32_t i)
{
    uint32_t cap = s->cap;
    for (;;) {
        uint32_t k = i + 1 == cap ? 0 : i + 1;
        entry *n = &s->slots[k];
        if (n->ptr == 0 || home_of(hash_ptr(n->ptr), cap) == k)
            break;
        s->slots[i] = *n;
        i = k;
    }
    s->slots[i].ptr = 0;
    s->count--;
}

static void shard_maybe_shrink(ftm_trace_map *m, shard *s)
{
    if (s->cap > FTM_SHRINK_MIN && s->count < s->cap / 4)
        (void)shard_resize(m, s, s->cap / 2); /* on OOM keep the big one */
}

/* -- overflow sizes (>= 4 GiB) -- */

static big_size *big_find(shard *s, uintptr_t ptr)
{
    for (uint32_t i = 0; i < s->nbig; i++)
        if (s->bigs[i].ptr == ptr)
            return &s->bigs[i];
    return NULL;
}

static int big_reserve(ftm_trace_map *m, shard *s)
{
    if (s->nbig < s->bigcap)
        return FTM_OK;
    uint32_t ncap = s->bigcap ? s->bigcap * 2 : 4;
    big_size *nb = map_calloc(m, ncap, sizeof(big_size));
    if (!nb)
        return FTM_ENOMEM;
    if (s->nbig)
        memcpy(nb, s->bigs, s->nbig * sizeof(big_size));
    map_free(m, s->bigs, s->bigcap * sizeof(big_size));
    s->bigs = nb;
    s->bigcap = ncap;
    return FTM_OK;
}

static void big_remove(ftm_trace_map *m, shard *s, uintptr_t ptr)
{
    big_size *b = big_find(s, ptr);
    if (!b)
        return;
    *b = s->bigs[--s->nbig];
    if (s->nbig == 0) {
        map_free(m, s->bigs, s->bigcap * sizeof(big_size));
        s->bigs = NULL;
        s->bigcap = 0;
    }
}

static size_t entry_size(const shard *s, const entry *e)
{
    if (e->size != FTM_BIG_SIZE)
        return e->size;
    for (uint32_t i = 0; i < s->nbig; i++)
        if (s->bigs[i].ptr == e->ptr)
            return s->bigs[i].size;
    return FTM_BIG_SIZE; /* unreachable: every marker has its record */
}

static void shard_release(ftm_trace_map *m, shard *s)
{
    map_free(m, s->slots, (size_t)s->cap * sizeof(entry));
    map_free(m, s->bigs, s->bigcap * sizeof(big_size));
    memset(s, 0, sizeof(*s));
}

/* ---- domains ------------------------------------------------------------ */

static inline size_t dom_home(ftm_domain_t d, size_t cap)
{
    return (size_t)(((uint64_t)d * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

static submap *find_submap(const ftm_trace_map *m, ftm_domain_t domain)
{
    if (domain == 0)
        return (submap *)&m->dom0;
    if (!m->domcap)
        return NULL;
    for (size_t i = dom_home(domain, m->domcap);;
         i = (i + 1) & (m->domcap - 1)) {
        submap *s = m->doms[i];
        if (!s || s->domain == domain)
            return s;
    }
}

static void doms_place(submap **tab, size_t cap, submap *s)
{
    size_t i = dom_home(s->domain, cap);
    while (tab[i])
        i = (i + 1) & (cap - 1);
    tab[i] = s;
}

static submap *add_submap(ftm_trace_map *m, ftm_domain_t domain)
{
    if ((m->ndoms + 1) * 2 > m->domcap) {
        size_t ncap = m->domcap ? m->domcap * 2 : 8;
        submap **nt = map_calloc(m, ncap, sizeof(submap *));
        if (!nt)
            return NULL;
        for (size_t i = 0; i < m->domcap; i++)
            if (m->doms[i])
                doms_place(nt, ncap, m->doms[i]);
        map_free(m, m->doms, m->domcap * sizeof(submap *));
        m->doms = nt;
        m->domcap = ncap;
    }
    submap *s = map_calloc(m, 1, sizeof(submap));
    if (!s)
        return NULL;
    s->domain = domain;
    doms_place(m->doms, m->domcap, s);
    m->ndoms++;
    return s;
}

/* ---- public ------------------------------------------------------------- */

ftm_trace_map *ftm_trace_map_new(void)
{
    ftm_trace_map *m = ftm_mem_calloc(1, sizeof(*m));
    if (m)
        m->bytes = sizeof(*m);
    return m;
}

void ftm_trace_map_free(ftm_trace_map *m)
{
    if (!m)
        return;
    ftm_trace_map_clear(m);
    ftm_mem_free(m, sizeof(*m));
}

int ftm_trace_map_put(ftm_trace_map *m, ftm_domain_t domain, uintptr_t ptr,
                      size_t size, ftm_tb_id tb, bool *had_old,
                      size_t *old_size)
{
    *had_old = false;
    *old_size = 0;
    submap *sm = find_submap(m, domain);
    if (!sm && !(sm = add_submap(m, domain)))
        return FTM_ENOMEM;
    uint64_t h = hash_ptr(ptr);
    uint32_t si = shard_of(h);
    shard *s = &sm->shards[si];
    bool big = size >= FTM_BIG_SIZE;
    entry *e;
    uint32_t at = 0, at_d = 0;
    if (ptr == 0) {
        e = s->has_zero ? &s->zero_key : NULL;
    } else {
        long i = shard_probe(s, ptr, h, &at, &at_d);
        e = i >= 0 ? &s->slots[i] : NULL;
    }
    if (big && !(e && e->size == FTM_BIG_SIZE) && big_reserve(m, s) != 0)
        return FTM_ENOMEM;
    bool moved = false; /* the table was replaced: at/at_d are stale */
    if (e) {
        *had_old = true;
        *old_size = entry_size(s, e);
        if (e->size == FTM_BIG_SIZE && !big)
            big_remove(m, s, ptr);
    } else if (ptr != 0) {
        entry *before = s->slots;
        if (shard_reserve(m, s, si) != FTM_OK)
            return FTM_ENOMEM;
        moved = s->slots != before;
    }
    if (big) {
        big_size *b = e && e->size == FTM_BIG_SIZE ? big_find(s, ptr) : NULL;
        if (!b)
            b = &s->bigs[s->nbig++];
        b->ptr = ptr;
        b->size = size;
    }
    entry ne = {ptr, big ? FTM_BIG_SIZE : (uint32_t)size, tb};
    if (e) {
        *e = ne;
        return FTM_OK;
    }
    if (ptr == 0) {
        s->has_zero = true;
        s->zero_key = ne;
    } else {
        if (moved)
            slots_insert(s->slots, s->cap, ne);
        else
            slots_insert_at(s->slots, s->cap, at, at_d, ne);
        s->count++;
    }
    sm->count++;
    m->count++;
    return FTM_OK;
}

bool ftm_trace_map_remove(ftm_trace_map *m, ftm_domain_t domain, uintptr_t ptr,
                          size_t *old_size)
{
    submap *sm = find_submap(m, domain);
    if (!sm)
        return false;
    uint64_t h = hash_ptr(ptr);
    shard *s = &sm->shards[shard_of(h)];
    entry *e;
    long i = -1;
    if (ptr == 0) {
        e = s->has_zero ? &s->zero_key : NULL;
    } else {
        i = shard_find(s, ptr, h);
        e = i >= 0 ? &s->slots[i] : NULL;
    }
    if (!e)
        return false;
    size_t sz = entry_size(s, e);
    if (old_size)
        *old_size = sz;
    if (e->size == FTM_BIG_SIZE)
        big_remove(m, s, ptr);
    if (ptr == 0) {
        s->has_zero = false;
    } else {
        shard_erase(s, (uint32_t)i);
        shard_maybe_shrink(m, s);
    }
    sm->count--;
    m->count--;
    return true;
}

bool ftm_trace_map_get(const ftm_trace_map *m, ftm_domain_t domain,
                       uintptr_t ptr, ftm_trace *out)
{
    const submap *sm = find_submap(m, domain);
    if (!sm)
        return false;
    uint64_t h = hash_ptr(ptr);
    const shard *s = &sm->shards[shard_of(h)];
    const entry *e;
    if (ptr == 0) {
        e = s->has_zero ? &s->zero_key : NULL;
    } else {
        long i = shard_find(s, ptr, h);
        e = i >= 0 ? &s->slots[i] : NULL;
    }
    if (!e)
        return false;
    if (out) {
        out->ptr = ptr;
        out->size = entry_size(s, e);
        out->domain = domain;
        out->tb = e->tb;
    }
    return true;
}

bool ftm_trace_map_set_tb(ftm_trace_map *m, ftm_domain_t domain, uintptr_t ptr,
                          ftm_tb_id tb)
{
    submap *sm = find_submap(m, domain);
    if (!sm)
        return false;
    uint64_t h = hash_ptr(ptr);
    shard *s = &sm->shards[shard_of(h)];
    entry *e;
    if (ptr == 0) {
        e = s->has_zero ? &s->zero_key : NULL;
    } else {
        long i = shard_find(s, ptr, h);
        e = i >= 0 ? &s->slots[i] : NULL;
    }
    if (!e)
        return false;
    e->tb = tb;
    return true;
}

size_t ftm_trace_map_count(const ftm_trace_map *m)
{
    return m->count;
}

static size_t copy_submap(const submap *sm, ftm_trace *dst, size_t n,
                          size_t cap)
{
    for (uint32_t k = 0; k < FTM_MAP_SHARDS; k++) {
        const shard *s = &sm->shards[k];
        if (s->has_zero && n < cap)
            dst[n++] = (ftm_trace){0, entry_size(s, &s->zero_key), sm->domain,
                                   s->zero_key.tb};
        if (!s->slots)
            continue;
        for (uint32_t i = 0; i < s->cap && n < cap; i++) {
            const entry *e = &s->slots[i];
            if (!e->ptr)
                continue;
            dst[n].ptr = e->ptr;
            dst[n].size = e->size == FTM_BIG_SIZE ? entry_size(s, e) : e->size;
            dst[n].domain = sm->domain;
            dst[n].tb = e->tb;
            n++;
        }
    }
    return n;
}

size_t ftm_trace_map_copy(const ftm_trace_map *m, ftm_trace *dst, size_t cap)
{
    size_t n = copy_submap(&m->dom0, dst, 0, cap);
    for (size_t i = 0; i < m->domcap && n < cap; i++)
        if (m->doms[i])
            n = copy_submap(m->doms[i], dst, n, cap);
    return n;
}

void ftm_trace_map_clear(ftm_trace_map *m)
{
    for (uint32_t k = 0; k < FTM_MAP_SHARDS; k++)
        shard_release(m, &m->dom0.shards[k]);
    m->dom0.count = 0;
    for (size_t i = 0; i < m->domcap; i++) {
        submap *sm = m->doms[i];
        if (!sm)
            continue;
        for (uint32_t k = 0; k < FTM_MAP_SHARDS; k++)
            shard_release(m, &sm->shards[k]);
        map_free(m, sm, sizeof(*sm));
    }
    map_free(m, m->doms, m->domcap * sizeof(submap *));
    m->doms = NULL;
    m->domcap = 0;
    m->ndoms = 0;
    m->count = 0;
}

size_t ftm_trace_map_bytes(const ftm_trace_map *m)
{
    return m->bytes;
}

unsigned ftm_trace_map_shard_of(uintptr_t ptr)
{
    return shard_of(hash_ptr(ptr));
}

size_t ftm_trace_map_shard_count(const ftm_trace_map *m, ftm_domain_t domain,
                                 unsigned shard)
{
    const submap *sm = find_submap(m, domain);
    if (!sm || shard >= FTM_MAP_SHARDS)
        return 0;
    const struct shard *s = &sm->shards[shard];
    return s->count + (s->has_zero ? 1 : 0);
}
