/*
 * sequence.h -- the engine's one global event order (owner: ENGINE-FLOW).
 *
 * FTM_ORDER=clock builds order events by order_clock.h instead (TSC
 * stamps, no line shared between producers); they use this counter only
 * as order_clock.h's fallback source.
 *
 * Owns: ftm_seq, a 64-bit counter on its own cache line.  Every recorded
 * event, and every lifecycle step that must be ordered against events
 * (start, clear, stop), takes the next number with one seq_cst fetch_add.
 * Number 0 is never handed out (the reorder window uses 0 as "empty").
 *
 * Memory-ordering contract
 *   ftm_seq.next  any thread: atomic_fetch_add seq_cst (ftm_seq_take) or
 *                 atomic_load seq_cst (ftm_seq_peek).  The RMWs form one
 *                 total order; a fetch_add that returns n synchronises with
 *                 every earlier fetch_add (release sequence), so whatever a
 *                 thread stored before taking n is visible to any thread
 *                 that later takes a number > n.
 *
 * Invariants
 *   I1  Every number taken by a producer is eventually pushed into that
 *       producer's ring exactly once (as a NOP if there is nothing to do),
 *       except numbers taken by lifecycle steps, which the lifecycle step
 *       itself "applies" while holding the apply lock (merger.h), and the
 *       number of a realloc ticket ended on the wrong thread, which that
 *       thread hands to the merger directly (ftm_merger_place_foreign).
 *   I2  A thread pushes its events in increasing sequence order (it takes
 *       its numbers in program order; a realloc ticket holds one number
 *       across the real realloc and the thread records nothing else in
 *       between -- engine.c drops and counts any nested record).
 *   I3  The merger applies events strictly in sequence order, never
 *       skipping a number (except in a fork child, for numbers whose owner
 *       vanished with the fork; those are counted in events_lost).
 *
 * Why ordering by this counter is exact
 *   free is recorded (number taken) BEFORE the caller's real free; alloc
 *   AFTER the real malloc returned.  If thread A frees p and thread B then
 *   receives p from the allocator, A's number was taken before A's real
 *   free, which happens before the allocator hands p to B, which happens
 *   before B takes its number: seq(free_A) < seq(alloc_B).  So for each
 *   address the sequence order is the true order, and because the numbers
 *   come from one counter the whole stream is one linearisation consistent
 *   with happens-before.  Applying it serially gives exactly the map and the
 *   current/peak counters that one global lock taken around every event
 *   would have given (that lock's order being this order).
 *   Realloc (engine.c): realloc_begin takes seq1 BEFORE the real realloc and
 *   pushes nothing; realloc_end pushes, at seq1, FREE(old) if the block
 *   moved, the in-place resize (ALLOC replacing old) if it did not, or a NOP
 *   if it failed; a moved block's ALLOC(new) takes a second number seq2
 *   AFTER the real realloc.  FREE(old) must be at seq1: once realloc frees
 *   old, another thread may allocate it and take a number < seq2.
 *   ALLOC(new) must be at seq2: the previous owner of `new` may have freed
 *   it (taking its number) after seq1.  An in-place resize at seq1 is
 *   exact: nobody else can own `old` between seq1 and seq2, and seq1 is an
 *   instant inside the realloc call (so a resize costs one number).
 *   Retrace (a block handed out again without a new allocation) takes its
 *   number while the caller owns the block: after the alloc that made the
 *   block the caller's (whose number is earlier, by the argument above)
 *   and before the caller, or whoever it hands the block to, records its
 *   free.  So it lands between that alloc and that free, on the trace that
 *   really is the block's.  It only re-stamps an existing trace (merger.c),
 *   never inserts one and never changes a size: whatever its number, the
 *   set of traces and current/peak are those the ALLOC/FREE events alone
 *   give.  A retrace that races with a free of the same block (an embedder
 *   bug) is a no-op if numbered after it, or at worst re-stamps the trace
 *   of the address's next owner; it never resurrects a freed trace.
 *
 * Why one global counter and not one per address shard
 *   Per-shard counters order events on the same address only.  The
 *   current/peak counters need ONE linearisation of all events that is
 *   consistent with happens-before (peak is a maximum over prefixes of that
 *   order); a merge of per-shard streams has no such order.  The cost is one
 *   lock xadd per event on a shared line.  Under CPython's GIL only one
 *   thread records at a time, so the line stays in the running core's cache
 *   and the xadd is uncontended.  Measured on this (shared, 2-vCPU)
 *   machine: 2.0 ns per number on one thread; two threads doing nothing but
 *   fetch_add: 3.0-3.3 ns of wall time per number (about 6.5 ns per number
 *   per thread) -- tests/test_ring.c prints these on every run.  A whole
 *   ftm_record_alloc/free with a cached traceback: 17.6 ns on one producer
 *   thread, about 37 ns per record per thread with two producers (plus the
 *   merger) on the two vCPUs.  Free-threaded producers recording tens of
 *   millions of events per second would feel the shared line; that is the
 *   trade-off accepted for exact peaks.
 *
 * Traceback-pool reclamation (engine.c relies on this)
 *   ftm_clear/ftm_stop first publish the new pool generation (or NULL),
 *   then take s = ftm_seq_take().  A producer interns its traceback AFTER
 *   taking its own number n and loads the pool pointer after that.  If
 *   n > s its fetch_add came after the lifecycle step's in the RMW order, so
 *   it sees the new pool.  If n < s the lifecycle step waits (flush) until
 *   n is applied, hence pushed, hence the producer is out of the old pool.
 *   After the flush nothing can reference the old pool except snapshots,
 *   which pin it with a reference count.
 */
#ifndef FTM_CORE_SEQUENCE_H
#define FTM_CORE_SEQUENCE_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#define FTM_SEQ_FIRST ((uint64_t)1)

typedef struct ftm_sequence {
    alignas(64) _Atomic uint64_t next; /* next number to hand out */
    char pad[64 - sizeof(uint64_t)];
} ftm_sequence;

/* Defined in engine.c. */
extern ftm_sequence ftm_seq;

/* Take the next number (the ordering point of one event). */
static inline uint64_t ftm_seq_take(void)
{
    return atomic_fetch_add_explicit(&ftm_seq.next, 1, memory_order_seq_cst);
}

/* Every number below the returned value has been taken by someone. */
static inline uint64_t ftm_seq_peek(void)
{
    return atomic_load_explicit(&ftm_seq.next, memory_order_seq_cst);
}

#endif /* FTM_CORE_SEQUENCE_H */
