/*
 * merger.c -- the reorder window, in-order application, helping producers
 * and the merger thread (owner: ENGINE-FLOW).  Design, progress argument
 * and locking in merger.h; the ordering proof in sequence.h.  In
 * FTM_ORDER=clock builds the window half is left out and merger_clock.c
 * provides it; applying one event is merger_apply.h's.
 */
#include "merger.h"

#include <sched.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "merger_apply.h"
#include "trace_map.h"

#define WMASK ((uint64_t)FTM_WINDOW_EVENTS - 1)

#if FTM_ORDER_CLOCK
ftm_merger ftm_merger_g = {.lock = PTHREAD_MUTEX_INITIALIZER,
                           .cap = UINT64_MAX};
#else
ftm_merger ftm_merger_g = {.lock = PTHREAD_MUTEX_INITIALIZER};
#endif

#ifdef FTM_TEST_HOOKS
uint32_t ftm_test_window_events = FTM_WINDOW_EVENTS_DEFAULT; /* merger.h */
#endif

/* Waiting for another thread: a short spin, then yields, then short sleeps
 * (the machine may have fewer cores than runnable threads, and the thread
 * we wait for may be preempted between taking its number and pushing). */
void ftm_merger_backoff(unsigned *n, unsigned max_sleep_us)
{
    unsigned i = (*n)++;
    if (i < 8) {
        for (int j = 0; j < 64; j++) {
            ck_pr_stall();
        }
    } else if (i < 40) {
        sched_yield();
    } else {
        unsigned us = 10u << ((i - 40) / 8 < 7 ? (i - 40) / 8 : 7);
        if (us > max_sleep_us) {
            us = max_sleep_us;
        }
        struct timespec ts = {0, (long)us * 1000L};
        nanosleep(&ts, NULL);
    }
}

#if !FTM_ORDER_CLOCK /* counter order; clock order: merger_clock.c */
/* Move the ready events of r into the window (or drop them when they were
 * recorded outside the session).  Returns whether anything was consumed. */
static bool drain_ring(ftm_merger *m, ftm_ring *r)
{
    unsigned n = ftm_ring_consumer_begin(r);
    if (n == 0) {
        return false;
    }
    unsigned k = 0;
    if (!m->session) {
        k = n;
        m->ignored += n;
    } else {
        uint64_t limit = m->next_seq + FTM_WINDOW_EVENTS;
        for (; k < n; k++) {
            const ftm_event *e = ftm_ring_at(r, k);
            uint64_t s = e->seq;
            if (s < m->accept_from) {
                m->ignored++; /* from before this session */
                continue;
            }
            if (s >= limit) {
                break; /* stays in the ring until the window moves */
            }
            if (s < m->next_seq) {
                m->lost++; /* impossible by sequence.h I1-I3 */
                continue;
            }
            m->window[s & WMASK] = *e;
        }
    }
    if (k != 0) {
        ftm_ring_consumer_release(r, k);
        m->consumed += k;
    }
    return k != 0;
}

static bool apply_ready(ftm_merger *m)
{
    uint64_t n = m->next_seq;
    ftm_event *w = m->window;
    while (w[n & WMASK].seq == n) {
        ftm_merger_apply_one(m, &w[n & WMASK]);
        n++;
    }
    bool any = n != m->next_seq;
    m->applied += n - m->next_seq;
    m->next_seq = n;
    return any;
}

bool ftm_merger_step(ftm_merger *m)
{
    bool progress = false;
    ftm_registry_lock();
    ftm_ring *prev = NULL;
    ftm_ring *r = ftm_registry_first();
    while (r != NULL) {
        ftm_ring *next = r->next;
        /* closed is read BEFORE draining: if it was set, the owner pushed
         * everything it ever will before setting it. */
        bool closed = ftm_ring_is_closed(r);
        if (drain_ring(m, r)) {
            progress = true;
        }
        if (closed && ftm_ring_consumer_begin(r) == 0) {
            ftm_registry_remove(prev, r);
            progress = true;
        } else {
            prev = r;
        }
        r = next;
    }
    ftm_registry_unlock();
    if (m->session && apply_ready(m)) {
        progress = true;
    }
    return progress;
}

void ftm_merger_end_session(ftm_merger *m, uint64_t s)
{
    /* Events numbered after s that were already moved into the window
     * belong to no session any more: dropped like the ones still in rings. */
    for (uint64_t i = 0; i < FTM_WINDOW_EVENTS; i++) {
        if (m->window[i].seq > s) {
            m->ignored++;
        }
    }
    m->session = false;
    m->next_seq = s + 1;
}

#endif /* !FTM_ORDER_CLOCK */

void ftm_merger_set_observer(void (*fn)(const ftm_event *ev, void *arg),
                             void *arg)
{
    pthread_mutex_lock(&ftm_merger_g.lock);
    ftm_merger_g.observer = fn;
    ftm_merger_g.observer_arg = arg;
    pthread_mutex_unlock(&ftm_merger_g.lock);
}

void ftm_merger_reclaim(ftm_merger *m)
{
    (void)ftm_merger_step(m);
}

#if !FTM_ORDER_CLOCK /* counter order; clock order: merger_clock.c */
void ftm_merger_flush_locked(ftm_merger *m, uint64_t s)
{
    unsigned spins = 0;
    while (m->session && m->next_seq < s) {
        if (ftm_merger_step(m)) {
            spins = 0;
            continue;
        }
        pthread_mutex_unlock(&m->lock);
        ftm_merger_backoff(&spins, 200);
        pthread_mutex_lock(&m->lock);
    }
}

void ftm_merger_place_foreign(const ftm_event *ev)
{
    ftm_merger *m = &ftm_merger_g;
    unsigned spins = 0;
    pthread_mutex_lock(&m->lock);
    for (;;) {
        if (!m->session || ev->seq < m->accept_from || ev->seq < m->next_seq) {
            /* outside the session, or (fork child) already skipped as lost
             * with its vanished thread: nothing to wait for */
            m->ignored++;
            break;
        }
        if (ev->seq < m->next_seq + FTM_WINDOW_EVENTS) {
            m->window[ev->seq & WMASK] = *ev;
            (void)apply_ready(m);
            break;
        }
        /* Every number below ev->seq belongs to a thread that pushes it
         * normally (we hold none): help, or wait for them. */
        if (ftm_merger_step(m)) {
            spins = 0;
            continue;
        }
        pthread_mutex_unlock(&m->lock);
        ftm_merger_backoff(&spins, 200);
        pthread_mutex_lock(&m->lock);
    }
    m->consumed++;
    pthread_mutex_unlock(&m->lock);
}

#endif /* !FTM_ORDER_CLOCK */

void ftm_merger_push_slow(ftm_ring *r, const ftm_event *ev)
{
    ftm_merger *m = &ftm_merger_g;
    unsigned spins = 0;
    ftm_ring_count(&r->full_waits);
    r->parked = *ev;
    atomic_store_explicit(&r->has_parked, 1, memory_order_release);
    for (;;) {
        if (pthread_mutex_trylock(&m->lock) == 0) {
            ftm_ring_count(&r->drains);
            (void)ftm_merger_step(m);
            pthread_mutex_unlock(&m->lock);
        }
        if (ftm_ring_try_push(r, ev)) {
            break;
        }
        ftm_merger_backoff(&spins, 200);
        if (ftm_ring_try_push(r, ev)) {
            break;
        }
    }
    atomic_store_explicit(&r->has_parked, 0, memory_order_relaxed);
}

/* The merger thread.  Pacing (the producers never wake it: no syscall on
 * their path): a pass that moved a lot keeps it hot; a light pass (a
 * trickle of events) sleeps FTM_MERGER_LIGHT_SLEEP_US so that a steady
 * moderate rate costs a few wake-ups per millisecond, not a busy core (a
 * 4096-event ring takes longer than that to fill at any rate a traced
 * program reaches, and a producer that does fill it helps itself); an empty
 * pass backs off from spinning to yielding to sleeps of up to 1 ms. */
#define FTM_MERGER_HOT_EVENTS 1024
#define FTM_MERGER_LIGHT_SLEEP_US 50
/* The merger's stack.  merger_main's call tree is shallow (apply, trace map
 * and pool inserts, the memory backend) and keeps no large locals, so a few
 * KiB would do; 512 KiB leaves room for sanitizer redzones and libc.  The
 * default (8 MiB, RLIMIT_STACK) was most of the address space that starting
 * the engine reserved, which made start() fail under `ulimit -v` where the
 * untraced program still ran (issue 11). */
#define FTM_MERGER_STACK_BYTES ((size_t)512 * 1024)

static void *merger_main(void *arg)
{
    ftm_merger *m = arg;
    unsigned idle = 0;
    while (atomic_load_explicit(&m->run, memory_order_relaxed)) {
        pthread_mutex_lock(&m->lock);
        uint64_t before = m->consumed;
        bool progress = ftm_merger_step(m);
        uint64_t moved = m->consumed - before;
        pthread_mutex_unlock(&m->lock);
        if (moved >= FTM_MERGER_HOT_EVENTS) {
            idle = 0;
        } else if (progress) {
            idle = 0;
            struct timespec ts = {0, FTM_MERGER_LIGHT_SLEEP_US * 1000L};
            nanosleep(&ts, NULL);
        } else {
            ftm_merger_backoff(&idle, 1000);
        }
    }
    return NULL;
}

int ftm_merger_thread_start(ftm_merger *m)
{
    if (m->thread_running) {
        return 0;
    }
    atomic_store(&m->run, true);
    /* The merger never handles signals: block them all in the new thread
     * (it inherits the creating thread's mask). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        /* A refused size (below PTHREAD_STACK_MIN on an exotic libc) keeps
         * the default: the thread still starts, only larger. */
        (void)pthread_attr_setstacksize(&attr, FTM_MERGER_STACK_BYTES);
        rc = pthread_create(&m->thread, &attr, merger_main, m);
        pthread_attr_destroy(&attr);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        atomic_store(&m->run, false);
        return rc;
    }
    m->thread_running = true;
    return 0;
}

void ftm_merger_thread_stop(ftm_merger *m)
{
    if (!m->thread_running) {
        return;
    }
    atomic_store(&m->run, false);
    pthread_join(m->thread, NULL);
    m->thread_running = false;
}

#if !FTM_ORDER_CLOCK
/* Fork child: move parked events of vanished threads that are due into the
 * window (see ftm_merger_fork_child).  A parked event that was pushed after
 * all is the newest of its ring, so if it were in the ring and below the
 * window limit the last step would have drained it: finding its slot empty
 * proves it was never pushed. */
static bool recover_parked(ftm_merger *m, ftm_ring *keep)
{
    bool any = false;
    ftm_registry_lock();
    for (ftm_ring *r = ftm_registry_first(); r != NULL; r = r->next) {
        if (r == keep ||
            !atomic_load_explicit(&r->has_parked, memory_order_acquire)) {
            continue;
        }
        const ftm_event *e = &r->parked;
        if (e->seq < m->next_seq) {
            atomic_store(&r->has_parked, 0); /* was pushed and applied */
        } else if (e->seq < m->next_seq + FTM_WINDOW_EVENTS) {
            if (m->window[e->seq & WMASK].seq != e->seq) {
                m->window[e->seq & WMASK] = *e;
                m->consumed++;
                m->recovered++;
                any = true;
            }
            atomic_store(&r->has_parked, 0);
        }
    }
    ftm_registry_unlock();
    if (any) {
        (void)apply_ready(m);
    }
    return any;
}

void ftm_merger_fork_child(ftm_merger *m, uint64_t upto, ftm_ring *keep)
{
    pthread_mutex_init(&m->lock, NULL);
    m->thread_running = false;
    atomic_store(&m->run, false);
    if (m->session) {
        /* Single-threaded now.  When a step makes no progress, every event
         * a ring holds below next_seq + W is in the window, so a missing
         * next_seq belongs to a thread that vanished between taking its
         * number and pushing it.  If that thread was waiting on a full
         * ring, its event is parked in the ring header (memory survives
         * the fork): recover it.  Otherwise it is lost: skip and count. */
        while (m->next_seq < upto) {
            if (ftm_merger_step(m)) {
                continue;
            }
            if (recover_parked(m, keep)) {
                continue;
            }
            m->next_seq++;
            m->lost++;
        }
    }
    ftm_registry_lock();
    ftm_ring *prev = NULL;
    ftm_ring *r = ftm_registry_first();
    while (r != NULL) {
        ftm_ring *next = r->next;
        if (r == keep) {
            unsigned n = ftm_ring_consumer_begin(r);
            if (n != 0) { /* only possible without a session */
                ftm_ring_consumer_release(r, n);
                m->consumed += n;
                m->ignored += n;
            }
            prev = r;
        } else {
            unsigned n = ftm_ring_consumer_begin(r);
            m->consumed += n;
            m->ignored += n;
            ftm_registry_remove(prev, r);
        }
        r = next;
    }
    ftm_registry_unlock();
}
#endif /* !FTM_ORDER_CLOCK */
