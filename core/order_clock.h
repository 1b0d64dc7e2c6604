/*
 * order_clock.h -- the "clock" event order (FTM_ORDER=clock builds only;
 * owner: ENGINE-FLOW).  The default build orders events with sequence.h's
 * global counter; this header replaces that counter's ROLE, not its code.
 *
 * Owns: the stamp source (the invariant TSC, or sequence.h's counter when
 * the TSC cannot be trusted: decided once, before main, in order_clock.c),
 * the producer's in-flight marker protocol, and the merger's heavy fence
 * (membarrier).  The k-way merge that uses them is merger_clock.c.
 *
 * The order
 *   Every event carries a stamp; the total order is (stamp, thread id of
 *   its ring, position in that ring).  A thread's stamps strictly increase
 *   (ftm_clock_stamp_after).  The merger applies events in that order, but
 *   only those whose stamp is below a watermark W below which no event can
 *   still arrive; it never applies an event at or above W.
 *
 * Hardware assumption (TSC source; checked at start-up: constant_tsc and
 *   nonstop_tsc in /proc/cpuinfo, and the kernel's clocksource is still
 *   "tsc", i.e. its boot-time and watchdog warp checks never found the TSCs
 *   out of step -- otherwise the counter source is used):
 *   H  If a TSC read R1 (on any core) happens before a TSC read R2 (on any
 *      core) through a chain of memory accesses that crosses between cores,
 *      or through a system call / interrupt / context switch, R2 > R1.
 *      That is: TSCs are synchronised to better than one cross-core cache
 *      line transfer, and a read is ordered after the loads before it.
 *   The read is `lfence; rdtsc` for stamps that must FOLLOW what the thread
 *   did before (alloc, retrace): lfence waits until every earlier
 *   instruction has completed locally (in particular the loads through
 *   which the allocator handed this thread its block), so the TSC is read
 *   after them.  A stamp that must only PRECEDE what follows (free,
 *   realloc begin) is a plain rdtsc (ftm_clock_read_tsc_early).  Stores are
 * not waited for; the arguments below never need a store before the read to be
 * visible (only the in-flight marker, and that is what the membarrier is for).
 *
 * Why ordering by stamps is exact (the same argument as sequence.h)
 *   free is stamped BEFORE the real free, alloc AFTER the real malloc
 *   returned.  If thread A frees p and thread B then receives p, A's read
 *   happens before A's real free, which happens before the allocator hands
 *   p to B, which happens before B's read: by H, stamp(free_A) <
 *   stamp(alloc_B).  For events of one thread the ring position orders
 *   them.  So the stamp order extends happens-before between events on the
 *   same address, and because it is one total order over all events,
 *   applying it serially gives the map and current/peak that one global
 *   lock taken around every event would have given (that lock's order
 *   being this order).  Ties between threads (equal stamps) are ordered by
 *   thread id; by H they only occur between events unordered by
 *   happens-before, so any order is one a lock could have produced.
 *   Realloc tickets (stamp at begin, before the real realloc; FREE(old) or
 *   the in-place resize or a NOP at that stamp; ALLOC(new) at a second
 *   stamp after it) and retrace (stamped while the caller owns the block)
 *   are exact by sequence.h's arguments with "number" read as "stamp".
 *
 * The watermark (what "no event below W can still arrive" rests on)
 *   Each ring has an in-flight marker on its own cache line, written only
 *   by its producer: IDLE (UINT64_MAX) between events; while an event (or
 *   a realloc ticket) is open, first last + 1, where last is the stamp of
 *   the thread's previous event (a lower bound of the stamp to come, known
 *   without reading the clock), then the stamp s itself once it is read
 *   (so the merger may pass every event older than s; with only last + 1
 *   a full one-slot ring let the merger apply one event per step).
 *   Producer, per event:  marker = last + 1; compiler barrier; s =
 *     lfence;rdtsc; last = s; marker = s; ...; push (release); marker =
 *     IDLE.  Every marker store is a release store (a plain mov on x86).
 *     No fence, no RMW, no line shared with another producer.
 *   Merger, per step:  T = lfence;rdtsc; membarrier(PRIVATE_EXPEDITED);
 *     then per ring: closed (acquire), marker (acquire), p_tail (acquire);
 *     W = min(T, markers of open rings, cap); apply every event < W.
 *   Claim: every event e with stamp s < W is in its ring when the merger
 *   reads that ring's p_tail.  membarrier guarantees that each other
 *   thread P passes, while the call runs, through a point X at which all
 *   its earlier memory accesses are globally visible and none of its later
 *   ones has been performed (the IPI handler's full barrier on a running
 *   thread; the context switch for a thread not running).  Instructions
 *   retire in program order and an instruction after X (squashed at the
 *   interrupt and re-executed) executes after it.
 *   - If e's marker store is after X, so is its TSC read, which then
 *     happens after the merger's read of T (T, syscall, X): by H, s > T
 *     >= W.  Not below W.
 *   - Otherwise the store is visible when the merger loads the marker, so
 *     the load returns it or a later value in the marker's modification
 *     order.  It, or e's raise to s: W <= s.  Not below W.  A later value
 *     than those: it was stored after e was pushed (IDLE after the push,
 *     or a later event's marker after that), with release, and the
 *     merger's load is acquire: the push is visible at the p_tail load
 *     that follows.
 *   - A ring that was not in the registry when the merger walked it was
 *     linked afterwards (registry lock), so all its reads come after T.
 *   - A closed ring's marker is ignored: its owner has exited and pushes
 *     nothing more (ring.h).
 *   Hence the merger's order is exactly the total order above, applied
 *   without gaps.
 *
 * Progress (no deadlock with any ring capacity): let e be the unapplied
 *   pushed event of least (stamp, tid).  If an open thread Q's marker
 *   (last_Q + 1 or its current stamp, both above every stamp Q pushed) is
 *   <= stamp(e), Q's pushed events all have stamps < stamp(e), so they are
 *   all applied, so Q's ring is empty and Q's push
 *   cannot wait: Q finishes its event (or its ticket: a bounded real
 *   realloc, engine.c's contract) and its marker rises above stamp(e).  T
 *   rises by itself.  So W eventually exceeds stamp(e) and e is applied by
 *   the merger thread or by a producer whose ring is full (it helps, its
 *   own marker being above everything in its ring).  The strict increase
 *   of a thread's stamps is enforced (a read <= last becomes last + 1: by
 *   H it never happens, and it only moves a stamp later than the read, to
 *   one tick past a read this thread already retired, so never past the
 *   instant the stamp must precede), so progress does not rest on H.
 *
 * Lifecycle steps and the traceback-pool reclamation
 *   start/clear/stop, holding the apply lock: publish the new pool (or
 *   NULL) with a seq_cst store, membarrier, then read s (ftm_clock_
 *   lifecycle_stamp).  Events with stamp < s belong before the step,
 *   events >= s after it; the merger caps W at s while the step flushes,
 *   so it never applies an event >= s before the step.  A producer interns
 *   its traceback after reading its stamp n and loads the pool pointer
 *   after that.  If that load is after its point X (membarrier above), it
 *   sees the new pool.  Otherwise its TSC read retired before X, which is
 *   before the step read s: n < s, the step waits (flush with cap s) until
 *   the event is applied, hence pushed, hence the producer is out of the
 *   old pool.  (A producer that read the new pool with n < s has its event
 *   applied before the step: its trace is removed by the clear or stop.)
 *
 * Fallback source (no reliable TSC, no membarrier, or FTM_ORDER_SOURCE=
 *   counter in the environment at start-up): stamps are sequence.h's
 *   fetch_add numbers, T is ftm_seq_peek and the heavy fence a seq_cst
 *   fence.  Each producer's fetch_add is itself a full fence after its
 *   marker store, so the claim above holds with the RMW total order in
 *   place of H; it is the counter scheme's cost plus the markers.
 *
 * Memory-ordering contract
 *   ftm_clock_source   written once by a constructor before main (before
 *                      any thread the engine can see); read relaxed.
 *   ring->inflight     owner: release stores (open, raise, IDLE); merger:
 *                      acquire load after the heavy fence.  Also
 *                      stored IDLE by a thread ending another thread's
 *                      realloc ticket (an embedder bug: that owner records
 *                      nothing more, engine.c).
 *   ring->last_stamp,
 *   ring->ticket_stamp owner only (ticket_stamp: relaxed atomic, read by
 *                      the thread that ends a ticket on the wrong thread,
 *                      registry lock held).
 */
#ifndef FTM_CORE_ORDER_CLOCK_H
#define FTM_CORE_ORDER_CLOCK_H

#include <stdatomic.h>
#include <stdint.h>

#include "sequence.h"

#define FTM_CLOCK_IDLE UINT64_MAX

enum ftm_clock_source_kind {
    FTM_CLOCK_SRC_COUNTER = 0, /* sequence.h's counter (fallback) */
    FTM_CLOCK_SRC_TSC = 1,     /* lfence; rdtsc + membarrier */
};

/* order_clock.c: which source, decided before main. */
extern int ftm_clock_source;

static inline uint64_t ftm_clock_read_tsc(void)
{
#if defined(__x86_64__) || defined(__i386__)
    uint32_t lo, hi;
    __asm__ __volatile__("lfence\n\trdtsc" : "=a"(lo), "=d"(hi)::"memory");
    return ((uint64_t)hi << 32) | lo;
#else
    return 0; /* never called: order_clock.c picks the counter */
#endif
}

/* Without the lfence: for stamps that must only come BEFORE what follows
 * (a free, a realloc ticket's first stamp).  rdtsc may execute early, never
 * after its own retirement, which precedes the retirement, hence the global
 * visibility, of every later store (x86 stores leave the store buffer after
 * retirement, in order; a locked instruction waits for earlier ones): the
 * stamp is read before the real free can be seen by any other thread.  It
 * saves the lfence's wait on this thread's pending loads. */
static inline uint64_t ftm_clock_read_tsc_early(void)
{
#if defined(__x86_64__) || defined(__i386__)
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi)::"memory");
    return ((uint64_t)hi << 32) | lo;
#else
    return 0;
#endif
}

/* Producer: the stamp of an event whose marker is already published;
 * strictly above the thread's previous stamp `last`.  before_only: the
 * stamp need only precede what the caller does next (free, realloc
 * begin); otherwise it must follow what the caller did before (alloc,
 * retrace, a moved realloc's ALLOC). */
static inline uint64_t ftm_clock_stamp_after(uint64_t last, int before_only)
{
    uint64_t s;
    if (__builtin_expect(ftm_clock_source == FTM_CLOCK_SRC_TSC, 1)) {
        s = before_only ? ftm_clock_read_tsc_early() : ftm_clock_read_tsc();
    } else {
        s = ftm_seq_take();
    }
    return s > last ? s : last + 1;
}

/* Merger: a value T such that every stamp read after this call (and after
 * the heavy fence that follows) is >= T. */
static inline uint64_t ftm_clock_now(void)
{
    if (ftm_clock_source == FTM_CLOCK_SRC_TSC) {
        return ftm_clock_read_tsc();
    }
    return ftm_seq_peek();
}

/* order_clock.c: membarrier(PRIVATE_EXPEDITED), or a seq_cst fence for the
 * counter source. */
void ftm_clock_heavy_fence(void);

/* Lifecycle steps (apply lock held, new pool already published). */
static inline uint64_t ftm_clock_lifecycle_stamp(void)
{
    ftm_clock_heavy_fence();
    if (ftm_clock_source == FTM_CLOCK_SRC_TSC) {
        return ftm_clock_read_tsc();
    }
    return ftm_seq_take();
}

/* Human-readable source, for tests and benchmarks ("tsc" / "counter"). */
const char *ftm_clock_source_name(void);

#endif /* FTM_CORE_ORDER_CLOCK_H */
