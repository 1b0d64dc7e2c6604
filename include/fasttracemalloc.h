/*
 * fasttracemalloc.h -- the public interface of the tracing engine (core/).
 *
 * This is the only engine header that python/ (or any other embedder) may
 * include.  The engine knows nothing about Python: it records allocation
 * events from many threads, orders them, folds them into a trace map and
 * answers exact queries.
 *
 * One engine per process (like tracemalloc itself): every function below
 * acts on the process-wide engine.
 *
 * Threads
 *   - ftm_record_*() are the producer fast path: any thread, any time, no
 *     lock, never allocate through the caller's (traced) allocators.  They
 *     are no-ops returning 0 while the engine is not tracing.
 *   - Lifecycle (ftm_start/ftm_stop/ftm_clear/ftm_reset_peak) and queries
 *     may be called from any thread, concurrently with producers.  Lifecycle
 *     calls are serialised internally against each other.
 *   - fork(): the engine registers pthread_atfork handlers; the child gets a
 *     working engine (merger restarted, rings of vanished threads drained
 *     then discarded), the parent is untouched.
 *
 * Ordering contract (see core/sequence.h for the proof sketch)
 *   Every recorded event takes a number from one global sequence.  A free is
 *   recorded BEFORE the caller releases the block to its allocator; an alloc
 *   is recorded AFTER the allocator returned it; a realloc reserves its
 *   number before calling the allocator (ftm_record_realloc_begin) and
 *   completes after it (ftm_record_realloc_end); a retrace (a block reused
 *   without a new allocation) is recorded while the caller owns the block.
 *   The merger applies events in sequence order, so the trace map and the
 *   current/peak counters equal what one global lock taken around every
 *   event would have computed.
 *
 * Return codes: 0 on success, negative errno-style values on failure
 * (FTM_ENOMEM, FTM_EINVAL, FTM_ESTATE).  Engine memory failures never abort
 * the process: they are counted in ftm_stats.
 */
#ifndef FASTTRACEMALLOC_H
#define FASTTRACEMALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FTM_OK 0
#define FTM_ENOMEM (-12)
#define FTM_EINVAL (-22)
#define FTM_ESTATE (-1) /* e.g. query while not tracing */

/* tracemalloc's domain: an unsigned int; 0 is Python's own heap. */
typedef unsigned int ftm_domain_t;

/* Small stable id of an interned traceback.  FTM_TB_NONE is never a valid
 * id.  Ids are valid until the next ftm_clear()/ftm_stop() (a "pool
 * generation"); a snapshot pins the generation its ids belong to. */
typedef uint32_t ftm_tb_id;
#define FTM_TB_NONE ((ftm_tb_id)0)

/* One opaque, fixed-width frame record.  The embedder decides what it
 * holds (python/ stores a code object pointer and an instruction offset);
 * the engine only hashes and compares the 16 bytes. */
typedef struct ftm_frame {
    uint64_t a;
    uint64_t b;
} ftm_frame;

/* Limits inherited from tracemalloc. */
#define FTM_MAX_NFRAME 65535u

/* A caller-owned description of the current thread's traceback, passed to
 * ftm_record_alloc/realloc_end/retrace.  The caller fills
 * frames/nframe/total_nframe and sets cached_id = FTM_TB_NONE whenever it
 * changes them; the engine interns the frames (lock-free lookup, see
 * core/tb_pool.h) and caches the resulting id in
 * cached_id/cached_generation, so a caller that keeps the struct unchanged
 * between allocations (a one-entry per-thread cache) pays only a
 * generation check.  frames[0] is the most recent call.
 *
 * thread_tag: an embedder-chosen number for the allocating thread (0 =
 * none).  It is part of the interned key: the same frames under two tags
 * get two ids, so every trace knows its thread through its traceback id
 * (ftm_traceback_thread) while the trace map entries stay 16 bytes.  Like
 * the frames, a caller that changes it must reset cached_id.  Appended
 * last, in what was padding: the struct keeps its size (24 bytes on LP64)
 * and a zeroed or designated initialiser still means "no tag". */
typedef struct ftm_traceback {
    const ftm_frame *frames;
    uint16_t nframe;       /* frames stored, 1..FTM_MAX_NFRAME */
    uint16_t total_nframe; /* frames on the whole stack, capped at 65535 */
    ftm_tb_id cached_id;   /* engine-maintained; FTM_TB_NONE = not cached */
    uint32_t cached_generation; /* engine-maintained */
    uint32_t thread_tag;        /* caller's; 0 = no thread attribution */
} ftm_traceback;

typedef enum ftm_mem_backend {
    /* jemalloc if mallocx is in the process, else portable */
    FTM_MEM_AUTO = 0,
    /* malloc/mmap with the engine's own accounting */
    FTM_MEM_PORTABLE = 1,
    /* private jemalloc arena; fails if jemalloc is absent */
    FTM_MEM_JEMALLOC = 2,
} ftm_mem_backend;

typedef struct ftm_config {
    /* events per thread ring (a power of two); 0 = default */
    uint32_t ring_capacity;
    /* only honoured while no engine memory is held */
    ftm_mem_backend mem_backend;
    /* 1: run this session without a merger thread.  Events then wait in
     * their rings and are applied by whoever needs them: a producer whose
     * ring is full, a thread that exits (its ring is drained and freed on
     * the spot), and every query (which flushes first, as always).  Just
     * as exact; meant for sessions with few events (the sampled mode),
     * where a thread that polls the rings costs more than the merging --
     * its wake-ups, and making a single-threaded program multi-threaded
     * (glibc then takes every uncontended mutex with an atomic
     * instruction).  0: the merger thread runs (the default). */
    int no_merger_thread;
} ftm_config;

/* ---- lifecycle --------------------------------------------------------- */

/* Start a tracing session (cfg may be NULL for defaults).  Starts the merger
 * thread, unless cfg->no_merger_thread.  Returns FTM_OK, or
 * FTM_ENOMEM/FTM_EINVAL.  Starting while already tracing is a no-op returning
 * FTM_OK. */
int ftm_start(const ftm_config *cfg);

/* End the session: every event recorded before the call is applied, then
 * all traces and tracebacks are dropped and the counters zeroed.  Events
 * recorded after the call are ignored.  Stops the merger thread. */
void ftm_stop(void);

bool ftm_is_tracing(void);

/* Drop all traces and tracebacks and zero current and peak (the builtin's
 * clear_traces()), exact with respect to events recorded before the call. */
void ftm_clear(void);

/* Return when every event recorded (by any thread) before the call has been
 * applied to the trace map. */
void ftm_flush(void);

/* ---- producer fast path (any thread) ----------------------------------- */

/* Record that `ptr` of `size` bytes was just allocated in `domain`.  Call it
 * after the allocator returned the block. */
int ftm_record_alloc(ftm_domain_t domain, uintptr_t ptr, size_t size,
                     ftm_traceback *tb);

/* Record that `ptr` is about to be freed.  Call it BEFORE handing the block
 * back to the allocator. */
int ftm_record_free(ftm_domain_t domain, uintptr_t ptr);

/* Record that the block at `ptr` was handed out again WITHOUT a new
 * allocation (CPython 3.13+ reusing an object from a free list: the
 * embedder calls this from its PyRefTracer CREATE hook, as the builtin's
 * _PyTraceMalloc_TraceRef does).  If (domain, ptr) is traced when the
 * event is applied, its traceback becomes the interned tb; otherwise
 * nothing happens (an untraced block stays untraced: not a loss).  Size,
 * current and peak are never changed.  Call it while the caller owns the
 * block (after the allocation that made it traced, before its free); it
 * is numbered, paused, dropped while stopped and counted exactly like
 * ftm_record_alloc, and tb follows the same cached_id contract.  A NULL or
 * empty tb leaves the trace with no traceback (FTM_TB_NONE), as an alloc
 * would; a traceback that cannot be interned (engine out of memory,
 * counted in tracebacks_lost_oom) leaves the trace's traceback unchanged,
 * as the builtin does when it cannot build one. */
int ftm_record_retrace(ftm_domain_t domain, uintptr_t ptr, ftm_traceback *tb);

/* Realloc is two-phase: reserve the ordering slot before calling the
 * allocator, complete after it.  new_ptr == 0 means the realloc failed (the
 * old block is untouched and nothing is recorded).  new_ptr == old_ptr is an
 * in-place resize (size and traceback replaced).  Otherwise the old trace
 * is removed and a new one created with the current traceback.  Every
 * begin MUST be followed by exactly one end on the same thread. */
typedef struct ftm_realloc_ticket {
    uint64_t seq;
    uint32_t active; /* 0 if the engine was not tracing at begin */
} ftm_realloc_ticket;
ftm_realloc_ticket ftm_record_realloc_begin(ftm_domain_t domain,
                                            uintptr_t old_ptr);
int ftm_record_realloc_end(ftm_realloc_ticket ticket, ftm_domain_t domain,
                           uintptr_t old_ptr, uintptr_t new_ptr, size_t size,
                           ftm_traceback *tb);

/* Per-thread pause: while > 0, ftm_record_* on this thread record nothing.
 * (The embedder has its own reentrancy guard; this one is for the engine's
 * own tests and for threads the embedder wants to exclude.) */
void ftm_thread_pause(void);
void ftm_thread_resume(void);

/* ---- queries (any thread; each one flushes first, so it is exact) ------ */

typedef struct ftm_trace {
    uintptr_t ptr;
    size_t size;
    ftm_domain_t domain;
    ftm_tb_id tb;
} ftm_trace;

/* Current and peak traced bytes (0, 0 while not tracing). */
void ftm_get_traced_memory(size_t *current, size_t *peak);

/* Set peak to current. */
void ftm_reset_peak(void);

/* Bytes of memory the engine itself holds (rings, map, pool, buffers),
 * exactly as allocated (ftm_stats.rings_untouched_bytes says how much of
 * it is ring slots that no event ever used). */
size_t ftm_engine_memory(void);

/* Look up one trace.  Returns 1 and fills *out if found, 0 if not. */
int ftm_get_trace(ftm_domain_t domain, uintptr_t ptr, ftm_trace *out);

/* A copy of every live trace, exact at the instant of the call, plus a pin
 * on the traceback generation the ids belong to. */
typedef struct ftm_snapshot {
    size_t ntraces;
    ftm_trace *traces;
    void *pin; /* private */
} ftm_snapshot;

/* Returns FTM_OK and fills *out (possibly with 0 traces), FTM_ENOMEM. */
int ftm_take_snapshot(ftm_snapshot *out);
void ftm_snapshot_release(ftm_snapshot *snap);

/* Tests only: the (after_n+1)-th allocation the engine makes from now
 * fails (its caller takes its FTM_ENOMEM path), then all succeed again;
 * -1 turns the injection off.  Any thread. */
void ftm_mem_inject_failure(long after_n);

/* Frames of an interned traceback.  For ids from a snapshot, valid while the
 * snapshot is held; for an id from ftm_get_trace, valid until the next
 * ftm_clear()/ftm_stop().  Returns 0 on success, FTM_EINVAL for an unknown
 * id. */
int ftm_traceback_get(ftm_tb_id id, const ftm_frame **frames, uint16_t *nframe,
                      uint16_t *total_nframe);

/* The thread tag an interned traceback was recorded with (see
 * ftm_traceback.thread_tag; 0 for untagged ones).  Same validity rules as
 * ftm_traceback_get.  Returns 0 and sets *thread_tag, or FTM_EINVAL. */
int ftm_traceback_thread(ftm_tb_id id, uint32_t *thread_tag);

/* ---- statistics --------------------------------------------------------- */

typedef struct ftm_stats {
    uint64_t events_recorded; /* events pushed by producers */
    uint64_t events_applied;  /* events folded into the map by the merger */
    /* records that could not be kept: no ring (engine out of memory), a
     * record nested in an open realloc ticket, a realloc_end on the wrong
     * thread, or, in a fork child, a number whose thread vanished before
     * pushing it.  0 in a correct program with enough memory. */
    uint64_t events_lost;
    uint64_t traces_lost_oom; /* trace inserts dropped: engine out of memory */
    uint64_t tracebacks_lost_oom; /* intern failures: engine out of memory */
    uint64_t ring_full_waits;     /* producer found its ring full */
    uint64_t producer_drains;     /* producer helped the merger while full */
    uint64_t threads_registered;
    uint64_t rings_reclaimed;
    uint64_t live_traces;
    uint64_t tracebacks; /* interned in the current generation */
    size_t engine_bytes;
    ftm_mem_backend backend_in_use;
    /* Events numbered while no session was active (recorded by a thread
     * that raced with ftm_stop/ftm_start and saw the engine still
     * tracing): dropped on purpose, like any record made while stopped --
     * not a loss.  Every event the merger takes out of a ring is either
     * applied or ignored, so once nothing is pending events_recorded ==
     * events_applied + events_ignored.  (Appended last: code that reads
     * the fields above by name keeps compiling.) */
    uint64_t events_ignored;
    /* This session's losses: events_lost, traces_lost_oom and
     * tracebacks_lost_oom counted from the ftm_start that began the
     * current session (once stopped: the last session, until the next
     * ftm_start resets them to 0).  The three fields above stay cumulative
     * over the process.  A loss racing with ftm_start itself (a realloc
     * ticket of the previous session ended after it) counts in the new
     * session.  (Appended last, like events_ignored.) */
    uint64_t session_events_lost;
    uint64_t session_traces_lost_oom;
    uint64_t session_tracebacks_lost_oom;
    /* 1 while the merger thread runs.  0 while tracing means it could not
     * be created (e.g. no address space for its stack): the engine stays
     * exact, producers whose rings fill up merge themselves.  (Appended
     * last.) */
    uint64_t merger_thread;
    /* Bytes of the live rings' buffers that no event ever used.  A ring is
     * allocated whole (4096 slots, 128 KiB by default) at its thread's
     * first event, but its pages are written only as events arrive, so
     * they are not resident: a figure of the engine's real footprint
     * (get_tracemalloc_memory) subtracts this from ftm_engine_memory().
     * (Appended last.) */
    uint64_t rings_untouched_bytes;
} ftm_stats;

void ftm_get_stats(ftm_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* FASTTRACEMALLOC_H */
