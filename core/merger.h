/*
 * merger.h -- folds the rings into the trace map in sequence order
 * (owner: ENGINE-FLOW).
 *
 * Owns: the reorder window, next_seq, the trace map of the session, the
 * current/peak byte counters, the merger thread, and the apply lock that
 * serialises all of them.
 *
 * FTM_ORDER=clock builds: the window, the step, the flush, place_foreign
 * and the fork child are merger_clock.c's (a k-way merge of the rings by
 * stamp up to a watermark; order_clock.h).  What follows is the default
 * (counter) order's.
 *
 * Algorithm (one "step", apply lock held):
 *   1. For every registered ring, copy its ready events into the reorder
 *      window, slot seq % W (a slot is valid iff slot.seq == the number the
 *      merger is looking for), and stop at the first event with
 *      seq >= next_seq + W without consuming it (it stays in the ring, which
 *      is what makes a producer whose ring is full wait).  Events numbered
 *      below the session's first number, or consumed while no session is
 *      active, are dropped and counted in `ignored` (they were recorded
 *      while stopped; not a loss).  A ring that was closed (its thread
 *      exited) and is now empty is unlinked and freed.
 *   2. Apply window[next_seq], window[next_seq + 1], ... while present.
 *   A missing next_seq means its producer is between ftm_seq_take and its
 *   push: the merger waits for it (never skips; see ftm_merger_fork_child).
 *
 * Progress (no deadlock, no loss, with any ring capacity): let m = next_seq,
 * the smallest number not applied.  Every number below m is applied, hence
 * consumed.  m's owner Q takes its numbers in order and pushes them in order
 * (sequence.h I2), so Q's ring holds nothing numbered below m and nothing
 * above m either (Q is still at m): either m is not pushed yet and Q's ring
 * is empty, so Q's push succeeds; or m is at the head of Q's ring and, being
 * < m + W, the next step moves it into the window and applies it.  Steps run
 * on the merger thread and, whenever a producer's ring is full, on that
 * producer (it trylocks the apply lock and helps); while stopped there is
 * no merger thread and full producers do it all.  Nothing here waits while
 * holding a lock that the owner of m needs: a producer's push takes no lock.
 *
 * Threads: ftm_merger_step / _flush_locked / _apply_* need the apply lock;
 * lock order lifecycle -> apply -> registry (thread_registry.h).  All fields
 * below `lock` are guarded by it (plain fields, no atomics) except `run`
 * (merger thread stop flag: atomic, relaxed polling, seq_cst store).
 */
#ifndef FTM_CORE_MERGER_H
#define FTM_CORE_MERGER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fasttracemalloc.h"
#include "ring.h"
#include "thread_registry.h"
#include "trace_map.h"

/* W: 16384 events = 512 KiB, fits L2.  Measured: merger throughput is the
 * same with W = 2^12 .. 2^16 (about 60 M events/s per CPU-second from one
 * ring, 35 M from 8 interleaved rings, 1M pre-filled events, this
 * machine); a larger W only buys slack behind a preempted producer, which
 * the rings' own capacity already gives.
 *
 * Test builds only (FTM_TEST_HOOKS, defined for the ftm_core_hooks library
 * that tests/CMakeLists.txt builds for the tests that need it; never for
 * the library the Python extension or the benchmarks link): W is a
 * variable, a power of two >= 2, so an oracle can run with a tiny window
 * and make the merger wait on missing numbers all the time.  Contract:
 * written only by the test's main thread while no session is active (no
 * window allocated) and before the ftm_start that allocates the next one;
 * read by the apply-lock holder and by start/stop under the lifecycle
 * lock, both ordered after that write by ftm_start's locks and the merger
 * thread's creation.  A production build keeps the constant (the mask is
 * an immediate on the merger's path). */
#ifdef FTM_TEST_HOOKS
extern uint32_t ftm_test_window_events;
#define FTM_WINDOW_EVENTS ftm_test_window_events
#else
#define FTM_WINDOW_EVENTS (1u << 14)
#endif
#define FTM_WINDOW_EVENTS_DEFAULT (1u << 14)

typedef struct ftm_merger {
    pthread_mutex_t lock; /* the apply lock */

    /* --- guarded by the apply lock --- */
    bool session;         /* a tracing session is active */
    uint64_t accept_from; /* first number of the session (its start) */
    uint64_t next_seq;    /* smallest number not yet applied */
    ftm_event *window;    /* W slots, NULL while no session */
    ftm_trace_map *map;   /* NULL while no session */
    ftm_tb_id tb_base;    /* public tb id = tb_base + pool-local id */
    size_t current, peak; /* traced bytes */

    uint64_t consumed;        /* events taken out of rings */
    uint64_t applied;         /* events applied in order (incl. NOPs) */
    uint64_t ignored;         /* dropped: recorded outside a session */
    uint64_t lost;            /* fork gaps and impossible cases */
    uint64_t recovered;       /* fork: parked events of vanished threads */
    uint64_t traces_lost_oom; /* map inserts that failed */
#if FTM_ORDER_CLOCK
    /* Clock order (merger_clock.c, order_clock.h): next_seq is the
     * watermark up to which everything is applied (every event with a
     * stamp below it is applied, none at or above it); accept_from the
     * session's start stamp.  cap: while a lifecycle step flushes, its
     * stamp (nothing at or above it may be applied before the step);
     * UINT64_MAX otherwise. */
    uint64_t cap;
    uint64_t ties;   /* equal stamps from two rings met in the merge */
    uint64_t fences; /* heavy fences (membarrier calls) taken */
#endif

    /* test-only observer of every applied event, in application order */
    void (*observer)(const ftm_event *ev, void *arg);
    void *observer_arg;

    /* --- merger thread --- */
    pthread_t thread;
    bool thread_running; /* lifecycle lock */
    _Atomic bool run;
} ftm_merger;

extern ftm_merger ftm_merger_g;

/* Apply lock held.  One drain + apply pass; true if anything moved. */
bool ftm_merger_step(ftm_merger *m);

/* Apply lock held on entry and on return (released while waiting for a
 * producer that has taken a number but not pushed it yet).  Returns when
 * every number below s is applied, or no session is active. */
void ftm_merger_flush_locked(ftm_merger *m, uint64_t s);

#if FTM_ORDER_CLOCK
/* Clock order: flush for a lifecycle step whose stamp is s (apply lock
 * held, released while waiting): every event stamped below s is applied,
 * none at or above it. */
void ftm_merger_flush_step_locked(ftm_merger *m, uint64_t s);
#endif

/* Waiting for another thread: spin, then yield, then sleep (at most
 * max_sleep_us).  *n counts the calls since the last progress. */
void ftm_merger_backoff(unsigned *n, unsigned max_sleep_us);

/* Producer whose ring is full: help until the push succeeds. */
void ftm_merger_push_slow(ftm_ring *r, const ftm_event *ev);

/* A number whose owner cannot push it through its own ring: a realloc
 * ticket ended on another thread (an embedder bug, counted by engine.c).
 * Pushing it into the calling thread's ring would break sequence.h I2
 * there: that ring may already hold events numbered beyond the window,
 * ahead of it, and the merger would never reach it -- every query would
 * wait forever.  So the event goes straight into the window (waiting,
 * apply lock released, until it fits), or is ignored if its session is
 * over.  Takes the apply lock; the caller holds no unpushed number. */
void ftm_merger_place_foreign(const ftm_event *ev);

/* Start / stop the background thread (lifecycle lock held, apply lock not
 * held).  start returns 0 or an errno. */
int ftm_merger_thread_start(ftm_merger *m);
void ftm_merger_thread_stop(ftm_merger *m);

/* Fork child (single-threaded): apply what the rings hold in order, plus
 * the events vanished threads had parked while waiting on a full ring
 * (`recovered`), skipping numbers whose owner vanished before pushing
 * (counted in `lost`) up to `upto`; then discard every ring except keep
 * (the forking thread's). */
void ftm_merger_fork_child(ftm_merger *m, uint64_t upto, ftm_ring *keep);

/* Apply lock held, every number below s applied (s is the stop's own
 * number): end the session; events already in the window past s are
 * counted as ignored.  From now on every consumed event is dropped. */
void ftm_merger_end_session(ftm_merger *m, uint64_t s);

/* Apply lock held: drop ring contents (no session) and free closed rings. */
void ftm_merger_reclaim(ftm_merger *m);

/* Tests: see every event the merger applies, in order (called with the
 * apply lock held, from whichever thread applies).  NULL to remove. */
void ftm_merger_set_observer(void (*fn)(const ftm_event *ev, void *arg),
                             void *arg);

/* engine.c: events dropped because they were numbered outside a session
 * (recorded while stopped, or racing with start/stop).  Not a loss; public
 * as ftm_stats.events_ignored. */
uint64_t ftm_engine_events_ignored(void);

#ifdef FTM_TEST_HOOKS
/* engine.c, test builds only (FTM_TEST_HOOKS, see FTM_WINDOW_EVENTS above):
 * if set, every alloc/free/retrace record that has seen the engine tracing
 * calls it before taking its number, so a test can hold a producer exactly
 * there (the window where it races with ftm_stop/ftm_start) while the main
 * thread stops or restarts.  Contract: set and cleared by the test while
 * no other thread records, ordered before the producers it concerns by
 * their pthread_create, after them by pthread_join. */
extern void (*ftm_test_before_number)(void);
#endif

#endif /* FTM_CORE_MERGER_H */
