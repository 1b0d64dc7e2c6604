/*
 * shapes.c -- see shapes.h.  Entries live in a growable array of pointers
 * indexed by id; an open-addressing index (linear probing, load <= 1/2,
 * 0 = empty) maps content hash -> id.  Everything below is guarded by
 * `lock`.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "shapes.h"

typedef struct shape {
    uint64_t hash;
    uint32_t fid;
    int firstlineno;
    size_t len;
    uint8_t lt[];
} shape;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static shape **entries; /* entries[0] unused: id 0 is "no shape" */
static uint32_t nentries = 1;
static uint32_t entries_cap;
static uint32_t *index_slots;
static uint32_t index_cap; /* power of two, or 0 */
static size_t bytes;

static void atfork_prepare(void)
{
    pthread_mutex_lock(&lock);
}

static void atfork_release(void)
{
    pthread_mutex_unlock(&lock);
}

int ftmpy_shapes_init(void)
{
    static int registered;
    if (!registered) {
        if (pthread_atfork(atfork_prepare, atfork_release, atfork_release)) {
            return -1;
        }
        registered = 1;
    }
    return 0;
}

static uint64_t hash_shape(uint32_t fid, int firstlineno, const uint8_t *p,
                           size_t n)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325) ^ fid;
    h = (h ^ (uint32_t)firstlineno) * UINT64_C(0x100000001b3);
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static int index_grow(void)
{
    uint32_t ncap = index_cap ? index_cap * 2 : 256;
    uint32_t *ns = calloc(ncap, sizeof(*ns));
    if (ns == NULL) {
        return -1;
    }
    for (uint32_t id = 1; id < nentries; id++) {
        uint32_t j = (uint32_t)entries[id]->hash & (ncap - 1);
        while (ns[j] != 0) {
            j = (j + 1) & (ncap - 1);
        }
        ns[j] = id;
    }
    free(index_slots);
    bytes += (size_t)(ncap - index_cap) * sizeof(*ns);
    index_slots = ns;
    index_cap = ncap;
    return 0;
}

uint32_t ftmpy_shape_intern(uint32_t fid, int firstlineno,
                            const uint8_t *linetable, size_t len)
{
    uint64_t h = hash_shape(fid, firstlineno, linetable, len);
    uint32_t id = 0;

    pthread_mutex_lock(&lock);
    if (index_cap != 0) {
        uint32_t j = (uint32_t)h & (index_cap - 1);
        for (uint32_t k; (k = index_slots[j]) != 0;
             j = (j + 1) & (index_cap - 1)) {
            shape *e = entries[k];
            if (e->hash == h && e->fid == fid &&
                e->firstlineno == firstlineno && e->len == len &&
                memcmp(e->lt, linetable, len) == 0) {
                id = k;
                goto done;
            }
        }
    }
    if (((size_t)nentries + 1) * 2 > index_cap && index_grow() < 0) {
        goto done;
    }
    if (nentries >= entries_cap) {
        uint32_t ncap = entries_cap ? entries_cap * 2 : 256;
        shape **ne = realloc(entries, ncap * sizeof(*ne));
        if (ne == NULL) {
            goto done;
        }
        bytes += (size_t)(ncap - entries_cap) * sizeof(*ne);
        entries = ne;
        entries_cap = ncap;
    }
    shape *e = malloc(sizeof(*e) + len);
    if (e == NULL) {
        goto done;
    }
    bytes += sizeof(*e) + len;
    e->hash = h;
    e->fid = fid;
    e->firstlineno = firstlineno;
    e->len = len;
    memcpy(e->lt, linetable, len);
    id = nentries++;
    entries[id] = e;
    uint32_t j = (uint32_t)h & (index_cap - 1);
    while (index_slots[j] != 0) {
        j = (j + 1) & (index_cap - 1);
    }
    index_slots[j] = id;
done:
    pthread_mutex_unlock(&lock);
    return id;
}

/* Location-table varints: 6 bits a byte, bit 6 = more follows. */
static int read_varint(const uint8_t *lt, size_t len, size_t *i, unsigned *out)
{
    unsigned val = 0;
    unsigned shift = 0;
    for (;;) {
        if (*i >= len || shift > 30) {
            return -1;
        }
        uint8_t byte = lt[(*i)++];
        val |= (unsigned)(byte & 63) << shift;
        if (!(byte & 64)) {
            break;
        }
        shift += 6;
    }
    *out = val;
    return 0;
}

int ftmpy_linetable_line(const uint8_t *lt, size_t len, int firstlineno,
                         int64_t addr)
{
    if (addr < 0) {
        return firstlineno;
    }
    int line = firstlineno;
    int64_t start = 0;
    size_t i = 0;
    while (i < len) {
        uint8_t head = lt[i++];
        if (!(head & 128)) {
            return -1; /* not an entry header: malformed */
        }
        int kind = (head >> 3) & 15;
        int64_t end = start + ((int64_t)(head & 7) + 1) * 2;
        unsigned v;
        int extra = 0; /* plain varints after the line delta */
        if (kind == 13 || kind == 14) {
            /* no columns / long form: a signed line delta first */
            if (read_varint(lt, len, &i, &v) < 0) {
                return -1;
            }
            line += (v & 1) ? -(int)(v >> 1) : (int)(v >> 1);
            extra = kind == 14 ? 3 : 0;
        } else if (kind >= 10 && kind <= 12) {
            line += kind - 10; /* one-line forms: two column bytes */
            i += 2;
        } else if (kind < 10) {
            i += 1; /* short forms: same line, one column byte */
        }
        for (int k = 0; k < extra; k++) {
            if (read_varint(lt, len, &i, &v) < 0) {
                return -1;
            }
        }
        if (addr < end) {
            return kind == 15 ? -1 : line;
        }
        start = end;
    }
    return -1;
}

int ftmpy_shape_line(uint32_t id, int64_t addr, uint32_t *fid, int *line)
{
    int rc = -1;
    pthread_mutex_lock(&lock);
    if (id != 0 && id < nentries) {
        shape *e = entries[id];
        *fid = e->fid;
        *line = ftmpy_linetable_line(e->lt, e->len, e->firstlineno, addr);
        rc = 0;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

void ftmpy_shapes_clear(void)
{
    pthread_mutex_lock(&lock);
    for (uint32_t id = 1; id < nentries; id++) {
        free(entries[id]);
    }
    free(entries);
    free(index_slots);
    entries = NULL;
    index_slots = NULL;
    nentries = 1;
    entries_cap = 0;
    index_cap = 0;
    bytes = 0;
    pthread_mutex_unlock(&lock);
}

size_t ftmpy_shapes_count(void)
{
    pthread_mutex_lock(&lock);
    size_t n = nentries - 1;
    pthread_mutex_unlock(&lock);
    return n;
}

size_t ftmpy_shapes_bytes(void)
{
    pthread_mutex_lock(&lock);
    size_t n = bytes;
    pthread_mutex_unlock(&lock);
    return n;
}
