/*
 * ring.c -- creation and release of one thread's event ring
 * (owner: ENGINE-FLOW).  The ring's protocol is in ring.h; which thread owns
 * which ring, and when it is freed, in thread_registry.h.
 *
 * A ring is two blocks of engine memory: the header, aligned to a cache
 * line (ck keeps its two indices on separate lines inside it), and the
 * slots.  Not one block: the slots are a power of two (128 KiB by
 * default), and a header in front of them pushed the block into the next
 * size class (160 KiB under jemalloc: 32 KiB per thread never used).
 */
#include "ring.h"

#include <string.h>

#include "memory.h"

ftm_ring *ftm_ring_new(uint32_t capacity, uint32_t thread_id)
{
    size_t hdr = 64 + sizeof(ftm_ring);
    size_t slots = (size_t)capacity * sizeof(ftm_event);
    void *base = ftm_mem_alloc(hdr);
    void *buf = base != NULL ? ftm_mem_alloc(slots) : NULL;
    if (buf == NULL) {
        if (base != NULL) {
            ftm_mem_free(base, hdr);
        }
        return NULL;
    }
    uintptr_t a = ((uintptr_t)base + 63) & ~(uintptr_t)63;
    ftm_ring *r = (ftm_ring *)a;
    memset(r, 0, sizeof(*r));
    r->buf = (ftm_event *)buf;
    ck_ring_init(&r->ck, capacity);
    r->capacity = capacity;
    r->thread_id = thread_id;
    r->alloc_base = base;
    r->alloc_bytes = hdr;
#if FTM_ORDER_CLOCK
    atomic_store_explicit(&r->inflight, UINT64_MAX, memory_order_relaxed);
#endif
    return r;
}

void ftm_ring_free(ftm_ring *r)
{
    if (r != NULL) {
        ftm_mem_free(r->buf, (size_t)r->capacity * sizeof(ftm_event));
        ftm_mem_free(r->alloc_base, r->alloc_bytes);
    }
}
