/*
 * tb_pool.h -- one generation of interned tracebacks (owner: ENGINE-DATA).
 *
 * Owns: the frames of every traceback interned in one generation (a
 * generation ends with ftm_clear()/ftm_stop()).
 *
 * Invariants: identical (frames, nframe, total_nframe, thread_tag) ->
 * identical id; the same frames under two thread tags are two ids (the tag
 * is the embedder's per-thread attribution, 0 = none; see
 * ftm_traceback.thread_tag in fasttracemalloc.h); ids
 * are small, stable for the generation's life, never FTM_TB_NONE.  Ids index
 * an array of entry pointers held in fixed chunks that never move, so
 * ftm_tb_pool_get is O(1) and lock-free.
 *
 * Preconditions: frames points to nframe records (frames may be NULL only
 * when nframe == 0).
 *
 * Threads: ftm_tb_pool_intern/get/count from any thread, concurrently.
 * Lookups of tracebacks already present are lock-free; inserts are
 * serialised by an internal lock but never block readers.  Growing the hash
 * index publishes a new table with a release store; the old table goes on a
 * retired list freed only by ftm_tb_pool_free (caller guarantees no thread
 * is still inside the pool and no snapshot references it).
 * All memory via ftm_mem_*.
 */
#ifndef FTM_CORE_TB_POOL_H
#define FTM_CORE_TB_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "fasttracemalloc.h"

typedef struct ftm_tb_pool ftm_tb_pool;

/* NULL on OOM */
ftm_tb_pool *ftm_tb_pool_new(uint32_t generation);
/* caller guarantees quiescence */
void ftm_tb_pool_free(ftm_tb_pool *p);
uint32_t ftm_tb_pool_generation(const ftm_tb_pool *p);
/* any thread: FTM_TB_NONE only on OOM (and counts it: see
 * ftm_tb_pool_oom_count) */
ftm_tb_id ftm_tb_pool_intern(ftm_tb_pool *p, const ftm_frame *frames,
                             uint16_t nframe, uint16_t total_nframe);
/* the same with the thread tag as part of the key (intern == tag 0) */
ftm_tb_id ftm_tb_pool_intern_tagged(ftm_tb_pool *p, const ftm_frame *frames,
                                    uint16_t nframe, uint16_t total_nframe,
                                    uint32_t thread_tag);
/* FTM_OK or FTM_EINVAL */
int ftm_tb_pool_thread(const ftm_tb_pool *p, ftm_tb_id id,
                       uint32_t *thread_tag);
/* FTM_OK or FTM_EINVAL */
int ftm_tb_pool_get(const ftm_tb_pool *p, ftm_tb_id id,
                    const ftm_frame **frames, uint16_t *nframe,
                    uint16_t *total_nframe);
size_t ftm_tb_pool_count(const ftm_tb_pool *p);
size_t ftm_tb_pool_bytes(const ftm_tb_pool *p);
uint64_t ftm_tb_pool_oom_count(const ftm_tb_pool *p);

/* Beyond the agreed interface: fork safety for the internal insert lock.
 * Call prepare before fork() (takes the lock, so no insert is half done),
 * parent after it in the parent (releases it), child after it in the child
 * (re-initialises it).  The engine's pthread_atfork handlers should call
 * these for the live pool(s). */
void ftm_tb_pool_fork_prepare(ftm_tb_pool *p);
void ftm_tb_pool_fork_parent(ftm_tb_pool *p);
void ftm_tb_pool_fork_child(ftm_tb_pool *p);

#ifdef FTM_TEST_HOOKS
/* Test builds only (see merger.h for which library defines FTM_TEST_HOOKS):
 * every traceback hash is ANDed with this mask (default all ones), so a
 * test can make every traceback collide (mask 0) and check that identity
 * is decided by the whole key -- every frame, nframe, total_nframe and
 * thread_tag --
 * and not by the 64-bit hash, which no real test can make collide.
 * Contract: written only while no pool exists (entries keep the hash they
 * were inserted with); read by interning threads created after the write,
 * or ordered after it by ftm_start's locks. */
extern uint64_t ftm_test_tb_hash_mask;
#endif

#endif /* FTM_CORE_TB_POOL_H */
