/*
 * ring.c -- creation and release of one thread's event ring
 * (owner: ENGINE-FLOW).  The ring's protocol is in ring.h; which thread owns
 * which ring, and when it is freed, in thread_registry.h.
 *
 * A ring is one block of engine memory: the header aligned to a cache line
 * (ck keeps its two indices on separate lines inside it), then the slots.
 */
#include "ring.h"

#include <string.h>

#include "memory.h"

ftm_ring *ftm_ring_new(uint32_t capacity, uint32_t thread_id)
{
    size_t hdr = (sizeof(ftm_ring) + 63) & ~(size_t)63;
    size_t bytes = 64 + hdr + (size_t)capacity * sizeof(ftm_event);
    void *base = ftm_mem_alloc(bytes);
    if (base == NULL) {
        return NULL;
    }
    uintptr_t a = ((uintptr_t)base + 63) & ~(uintptr_t)63;
    ftm_ring *r = (ftm_ring *)a;
    memset(r, 0, sizeof(*r));
    r->buf = (ftm_event *)(a + hdr);
    ck_ring_init(&r->ck, capacity);
    r->capacity = capacity;
    r->thread_id = thread_id;
    r->alloc_base = base;
    r->alloc_bytes = bytes;
    return r;
}

void ftm_ring_free(ftm_ring *r)
{
    if (r != NULL) {
        ftm_mem_free(r->alloc_base, r->alloc_bytes);
    }
}
