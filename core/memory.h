/*
 * memory.h -- the engine's own memory (owner: ENGINE-DATA).
 *
 * Owns: every byte the engine allocates for itself (rings, trace map, pool,
 * query buffers).  None of it comes from the traced allocators.
 *
 * Backends (chosen by ftm_mem_init, fixed while any engine bytes are held):
 *   FTM_MEM_JEMALLOC  a PRIVATE jemalloc arena, reached through
 *                     dlsym(RTLD_DEFAULT, "mallocx"/"dallocx"/"mallctl") so
 *                     core/ never links jemalloc (it works inside a dlopen'ed
 *                     Python extension when jemalloc is LD_PRELOADed).
 *                     Allocations use MALLOCX_ARENA(a)|MALLOCX_TCACHE_NONE.
 *   FTM_MEM_PORTABLE  libc malloc/calloc/free.
 *   Both keep the engine's own atomic byte counter, which is what
 *   ftm_mem_bytes() reports: the portable backend counts requested sizes,
 *   the jemalloc backend counts jemalloc's size classes (nallocx), which is
 *   exactly what the private arena's stats say it holds (checked by
 *   tests/test_memory.c through ftm_mem_arena_stats).  See memory.c for why
 *   the counter, not the arena stats, is the primary figure.
 *
 * Invariants: ftm_mem_bytes() == sum over live blocks of their accounted
 * size; ftm_mem_free must be given the size passed at allocation (n*size for
 * calloc), so a free takes back exactly what its allocation added.
 *
 * Threads: any thread may call anything.  ftm_mem_init while bytes are held
 * keeps the current backend (idempotent) and returns FTM_OK if it matches
 * `want` or want == FTM_MEM_AUTO, FTM_EINVAL otherwise.
 */
#ifndef FTM_CORE_MEMORY_H
#define FTM_CORE_MEMORY_H

#include <stddef.h>

#include "fasttracemalloc.h"

/* idempotent while bytes are held; FTM_EINVAL if JEMALLOC asked but absent */
int ftm_mem_init(ftm_mem_backend want);
/* NULL on failure; never aborts */
void *ftm_mem_alloc(size_t size);
void *ftm_mem_calloc(size_t n, size_t size);
/* size = the size given at allocation; p may be NULL */
void ftm_mem_free(void *p, size_t size);
/* bytes the engine holds now */
size_t ftm_mem_bytes(void);
ftm_mem_backend ftm_mem_backend_in_use(void);
/* tests: the (after_n+1)-th allocation from now fails, then all succeed
 * again; -1 = off */
void ftm_mem_inject_failure(long after_n);

/* fork (engine.c's pthread_atfork handlers): prepare takes the backend's
 * set-up lock -- last, after every other engine lock, since ftm_mem_init may
 * run under them -- so no thread is inside ftm_mem_init at the fork; parent
 * releases it; child re-initialises it (the child has one thread). */
void ftm_mem_fork_prepare(void);
void ftm_mem_fork_parent(void);
void ftm_mem_fork_child(void);

/* Beyond the agreed interface (diagnostics): the private jemalloc arena's
 * own statistics (small.allocated + large.allocated after an epoch refresh).
 * FTM_OK and *allocated filled, or FTM_EINVAL when the backend is not
 * jemalloc or jemalloc was built without stats. */
int ftm_mem_arena_stats(size_t *allocated);

#endif /* FTM_CORE_MEMORY_H */
