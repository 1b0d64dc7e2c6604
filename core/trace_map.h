/*
 * trace_map.h -- (domain, ptr) -> {size, tb} (owner: ENGINE-DATA).
 *
 * Owns: the live traces of one tracing session.
 *
 * Layout: domain 0 lives in FTM_MAP_SHARDS open-addressing tables selected
 * by a hash of ptr; every other domain (numpy uses 389047) gets its own small
 * sharded sub-map, found through a short domain list.  Each shard grows on
 * its own (~1.5x), so a growth pause is bounded by one shard.  Entries are
 * compact (8-byte ptr, 32-bit size, 32-bit tb id); sizes >= 2^32 keep a
 * marker in the entry and the real size in a per-shard overflow side table.
 * Linear probing with backward-shift deletion: no tombstones.
 *
 * Threads: ONE writer at a time and readers only while no writer runs (the
 * engine serialises every access with its apply lock).  No atomics inside.
 * All memory via ftm_mem_*.
 */
#ifndef FTM_CORE_TRACE_MAP_H
#define FTM_CORE_TRACE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fasttracemalloc.h"

#define FTM_MAP_SHARDS 64

typedef struct ftm_trace_map ftm_trace_map;

/* NULL on OOM */
ftm_trace_map *ftm_trace_map_new(void);
void ftm_trace_map_free(ftm_trace_map *m);
/* insert or replace. Returns FTM_OK or FTM_ENOMEM (map unchanged).
 * *had_old = whether (domain,ptr) existed, *old_size = its previous size (0
 * if not). */
int ftm_trace_map_put(ftm_trace_map *m, ftm_domain_t domain, uintptr_t ptr,
                      size_t size, ftm_tb_id tb, bool *had_old,
                      size_t *old_size);
/* remove; returns true and *old_size if it existed */
bool ftm_trace_map_remove(ftm_trace_map *m, ftm_domain_t domain, uintptr_t ptr,
                          size_t *old_size);
bool ftm_trace_map_get(const ftm_trace_map *m, ftm_domain_t domain,
                       uintptr_t ptr, ftm_trace *out);
/* if (domain,ptr) exists, set its tb and return true; else change nothing
 * and return false.  Never allocates, never fails. */
bool ftm_trace_map_set_tb(ftm_trace_map *m, ftm_domain_t domain, uintptr_t ptr,
                          ftm_tb_id tb);
size_t ftm_trace_map_count(const ftm_trace_map *m);
/* copy every trace into dst (capacity cap >= count); returns number copied */
size_t ftm_trace_map_copy(const ftm_trace_map *m, ftm_trace *dst, size_t cap);
/* drop all traces, shrink back to initial size */
void ftm_trace_map_clear(ftm_trace_map *m);
/* engine memory this map holds */
size_t ftm_trace_map_bytes(const ftm_trace_map *m);

/* Diagnostics beyond the agreed interface (tests, benchmarks): the shard a
 * pointer belongs to, and how many traces one shard of one domain holds. */
unsigned ftm_trace_map_shard_of(uintptr_t ptr);
size_t ftm_trace_map_shard_count(const ftm_trace_map *m, ftm_domain_t domain,
                                 unsigned shard);

#endif /* FTM_CORE_TRACE_MAP_H */
