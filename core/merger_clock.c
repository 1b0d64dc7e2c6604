/*
 * merger_clock.c -- the merger's clock-order half (FTM_ORDER=clock builds;
 * owner: ENGINE-FLOW): a k-way merge of the rings by (stamp, thread id) up
 * to a watermark.  The ordering and progress arguments are in
 * order_clock.h; what the merger owns, its lock and the merger thread are
 * merger.h / merger.c (shared by both orders).
 *
 * One step (apply lock held):
 *   1. T = ftm_clock_now(); heavy fence (membarrier) -- skipped, with the
 *      whole step, by the merger thread when no ring holds an event.
 *   2. Registry lock: per ring, closed (acquire), then the in-flight marker
 *      of an open ring (acquire), then its ready events (p_tail, acquire).
 *      W = min(T, cap, markers).
 *   3. Merge: repeatedly take the ring whose head has the least (stamp,
 *      thread id) and apply its events while they stay below both W and
 *      the next-best ring's head (a run).  Events stamped before the
 *      session are ignored; everything applied is consumed from its ring.
 *   4. next_seq = max(next_seq, W): every event below W is applied.
 *   Events at or above W stay in their rings (what makes a full producer
 *   wait; it helps, order_clock.h's progress argument).
 *
 * Threads: every function here needs the apply lock (place_foreign takes
 * it), as in merger.h; ring consumer fields c_n/c_i belong to its holder.
 */
#include "merger.h"

#if FTM_ORDER_CLOCK

#include <string.h>

#include "merger_apply.h"
#include "order_clock.h"
#include "trace_map.h"

static inline bool key_less(uint64_t s1, uint32_t t1, uint64_t s2, uint32_t t2)
{
    return s1 < s2 || (s1 == s2 && t1 < t2);
}

/* Registry lock held: collect each ring's ready events; returns the
 * watermark lowered by the markers of open rings (when use_markers). */
static uint64_t collect(uint64_t w, bool use_markers)
{
    for (ftm_ring *r = ftm_registry_first(); r != NULL; r = r->next) {
        bool closed = ftm_ring_is_closed(r);
        r->c_closed = closed;
        if (use_markers && !closed) {
            uint64_t x =
                atomic_load_explicit(&r->inflight, memory_order_acquire);
            if (x < w) {
                w = x;
            }
        }
        r->c_n = ftm_ring_consumer_begin(r);
        r->c_i = 0;
    }
    return w;
}

static inline void take_one(ftm_merger *m, const ftm_event *e)
{
    if (e->seq < m->accept_from) {
        m->ignored++; /* from before this session */
    } else if (e->seq < m->next_seq) {
        m->lost++; /* impossible by order_clock.h */
    } else {
        ftm_merger_apply_one(m, e);
        m->applied++;
    }
}

/* Registry lock held, collect() done: apply every collected event below w
 * in order.  Returns whether anything was consumed. */
static bool merge_below(ftm_merger *m, uint64_t w)
{
    if (!m->session) {
        bool any = false;
        for (ftm_ring *r = ftm_registry_first(); r != NULL; r = r->next) {
            r->c_i = r->c_n;
            m->ignored += r->c_n;
            any |= r->c_n != 0;
        }
        return any;
    }
    bool any = false;
    for (;;) {
        ftm_ring *best = NULL;
        uint64_t bs = 0, ss = w;
        uint32_t bt = 0, st = 0;
        for (ftm_ring *r = ftm_registry_first(); r != NULL; r = r->next) {
            if (r->c_i == r->c_n) {
                continue;
            }
            uint64_t s = ftm_ring_at(r, r->c_i)->seq;
            uint32_t t = r->thread_id;
            if (best == NULL || key_less(s, t, bs, bt)) {
                if (best != NULL && key_less(bs, bt, ss, st)) {
                    ss = bs;
                    st = bt;
                }
                best = r;
                bs = s;
                bt = t;
            } else if (key_less(s, t, ss, st)) {
                ss = s;
                st = t;
            }
        }
        if (best == NULL || bs >= w) {
            break;
        }
        if (bs == ss) {
            m->ties++;
        }
        any = true;
        const ftm_event *e = ftm_ring_at(best, best->c_i);
        for (;;) {
            take_one(m, e);
            if (++best->c_i == best->c_n) {
                break;
            }
            e = ftm_ring_at(best, best->c_i);
            if (e->seq >= w || !key_less(e->seq, bt, ss, st)) {
                break;
            }
        }
    }
    return any;
}

/* Registry lock held: hand consumed slots back, unlink drained closed
 * rings. */
static bool release_all(ftm_merger *m)
{
    bool progress = false;
    ftm_ring *prev = NULL;
    ftm_ring *r = ftm_registry_first();
    while (r != NULL) {
        ftm_ring *next = r->next;
        if (r->c_i != 0) {
            ftm_ring_consumer_release(r, r->c_i);
            m->consumed += r->c_i;
            r->c_i = r->c_n = 0;
        }
        if (r->c_closed && ftm_ring_consumer_begin(r) == 0) {
            ftm_registry_remove(prev, r);
            progress = true;
        } else {
            prev = r;
        }
        r = next;
    }
    return progress;
}

/* Registry lock held. */
static bool anything_pending(void)
{
    for (ftm_ring *r = ftm_registry_first(); r != NULL; r = r->next) {
        if (ftm_ring_is_closed(r) || ftm_ring_consumer_begin(r) != 0) {
            return true;
        }
    }
    return false;
}

/* One step; force: compute a fresh watermark even if no ring holds an
 * event (a flush waits for the watermark itself). */
static bool step(ftm_merger *m, bool force)
{
    if (!force || !m->session) {
        ftm_registry_lock();
        bool pending = anything_pending();
        ftm_registry_unlock();
        if (!pending) {
            return false;
        }
    }
    uint64_t w = UINT64_MAX;
    if (m->session) {
        w = ftm_clock_now();
        ftm_clock_heavy_fence();
        m->fences++;
        if (m->cap < w) {
            w = m->cap;
        }
    }
    ftm_registry_lock();
    w = collect(w, m->session);
    bool progress = merge_below(m, w);
    progress |= release_all(m);
    ftm_registry_unlock();
    if (m->session && w > m->next_seq) {
        m->next_seq = w;
    }
    return progress;
}

bool ftm_merger_step(ftm_merger *m)
{
    return step(m, false);
}

void ftm_merger_end_session(ftm_merger *m, uint64_t s)
{
    m->session = false;
    m->next_seq = s;
    m->cap = UINT64_MAX;
}

void ftm_merger_flush_locked(ftm_merger *m, uint64_t s)
{
    unsigned spins = 0;
    while (m->session && m->next_seq < s) {
        uint64_t before = m->next_seq;
        if (step(m, true) || m->next_seq != before) {
            spins = 0;
            continue;
        }
        pthread_mutex_unlock(&m->lock);
        ftm_merger_backoff(&spins, 200);
        pthread_mutex_lock(&m->lock);
    }
}

void ftm_merger_flush_step_locked(ftm_merger *m, uint64_t s)
{
    m->cap = s; /* the merger thread too stops below s meanwhile */
    ftm_merger_flush_locked(m, s);
    m->cap = UINT64_MAX;
}

/* A realloc ticket ended on another thread (engine.c counts it lost).  Its
 * event is dropped (a NOP); what must not happen is the begin thread's
 * marker holding the watermark forever: that thread records nothing more
 * (its ticket stays open, engine.c drops its records), so its marker is
 * withdrawn here. */
void ftm_merger_place_foreign(const ftm_event *ev)
{
    ftm_merger *m = &ftm_merger_g;
    pthread_mutex_lock(&m->lock);
    ftm_registry_lock();
    for (ftm_ring *r = ftm_registry_first(); r != NULL; r = r->next) {
        if (atomic_load_explicit(&r->ticket_stamp, memory_order_relaxed) ==
            ev->seq) {
            atomic_store_explicit(&r->ticket_stamp, 0, memory_order_relaxed);
            atomic_store_explicit(&r->inflight, FTM_CLOCK_IDLE,
                                  memory_order_release);
        }
    }
    ftm_registry_unlock();
    if (!m->session || ev->seq < m->accept_from) {
        m->ignored++;
    } else {
        m->applied++; /* a NOP: nothing to apply, nothing to wait for */
    }
    m->consumed++;
    pthread_mutex_unlock(&m->lock);
}

/* Fork child helpers: was the ring's in-flight event pushed?  The slot
 * before p_tail keeps the newest pushed event even once consumed. */
static bool newest_pushed_is(ftm_ring *r, uint64_t stamp)
{
    unsigned p = ck_pr_load_uint(&r->ck.p_tail);
    if (p == 0 && r->ck.c_head == 0) {
        return false; /* never pushed anything */
    }
    return r->buf[(p - 1) & r->ck.mask].seq == stamp;
}

static void merge_child(ftm_merger *m, uint64_t w)
{
    ftm_registry_lock();
    (void)collect(w, false);
    (void)merge_below(m, w);
    (void)release_all(m);
    ftm_registry_unlock();
    if (w > m->next_seq) {
        m->next_seq = w;
    }
}

/* Single-threaded (a fork child): every vanished thread's pushed events are
 * final.  Its parked event (waiting on a full ring) is recovered in order;
 * an event it had stamped but neither pushed nor parked (or an open
 * ticket) is lost, counted.  Then everything is applied up to `upto` (a
 * stamp read after the fork). */
void ftm_merger_fork_child(ftm_merger *m, uint64_t upto, ftm_ring *keep)
{
    pthread_mutex_init(&m->lock, NULL);
    m->thread_running = false;
    atomic_store(&m->run, false);
    m->cap = UINT64_MAX;
    if (m->session) {
        ftm_registry_lock();
        for (ftm_ring *r = ftm_registry_first(); r != NULL; r = r->next) {
            if (r == keep || ftm_ring_is_closed(r) ||
                atomic_load(&r->inflight) == FTM_CLOCK_IDLE) {
                continue;
            }
            bool parked = atomic_load(&r->has_parked) &&
                          r->parked.seq == r->last_stamp &&
                          !newest_pushed_is(r, r->parked.seq);
            if (!parked) {
                atomic_store(&r->has_parked, 0);
                if (!newest_pushed_is(r, r->last_stamp)) {
                    m->lost++;
                }
            }
        }
        ftm_registry_unlock();
        /* Recover parked events in stamp order: merge below the least one
         * (its ring is then empty: all its other events are older), push
         * it, repeat. */
        for (;;) {
            ftm_ring *least = NULL;
            ftm_registry_lock();
            for (ftm_ring *r = ftm_registry_first(); r != NULL; r = r->next) {
                if (r != keep && atomic_load(&r->has_parked) &&
                    (least == NULL || r->parked.seq < least->parked.seq)) {
                    least = r;
                }
            }
            ftm_registry_unlock();
            if (least == NULL) {
                break;
            }
            merge_child(m, least->parked.seq);
            atomic_store(&least->has_parked, 0);
            if (least->parked.seq >= m->next_seq &&
                ftm_ring_try_push(least, &least->parked)) {
                m->recovered++;
            } else {
                m->lost++;
            }
        }
        merge_child(m, upto);
        if (upto > m->next_seq) {
            m->next_seq = upto;
        }
    }
    ftm_registry_lock();
    ftm_ring *prev = NULL;
    ftm_ring *r = ftm_registry_first();
    while (r != NULL) {
        ftm_ring *next = r->next;
        unsigned n = ftm_ring_consumer_begin(r);
        if (n != 0) { /* no session, or stamped after upto: dropped */
            ftm_ring_consumer_release(r, n);
            m->consumed += n;
            m->ignored += n;
        }
        if (r == keep) {
            prev = r;
        } else {
            ftm_registry_remove(prev, r);
        }
        r = next;
    }
    ftm_registry_unlock();
}

#endif /* FTM_ORDER_CLOCK */
