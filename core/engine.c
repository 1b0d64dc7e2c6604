/*
 * engine.c -- the public API of include/fasttracemalloc.h: the producer
 * fast path, the session lifecycle, queries, traceback generations and
 * fork handling (owner: ENGINE-FLOW).
 *
 * Pieces: sequence.h (ordering and its proof), ring.h (per-thread rings),
 * merger.h (window, apply lock, progress argument), trace_map.h and
 * tb_pool.h (ENGINE-DATA), memory.h (all engine memory).
 *
 * Contract for embedders, beyond the header: between realloc_begin and
 * realloc_end a thread must not block on anything but the real realloc
 * and must not call the engine (the traceback capture in between must not
 * wait for the GIL or for any lock a querier may hold): every query and
 * lifecycle call waits until the ticket's number is pushed, so a thread
 * that holds the GIL while flushing and a thread that waits for the GIL
 * inside a ticket would deadlock.  Records are not async-signal-safe (a
 * signal handler must not record on a thread that may be inside one).
 *
 * Producer fast path (ftm_record_*): relaxed load of `tracing`; the
 * thread's __thread state; one seq_cst fetch_add (ftm_seq_take; in
 * FTM_ORDER=clock builds instead: in-flight marker stores on the ring's
 * own line and a TSC read, order_clock.h); traceback
 * interning (a generation check when the caller's one-entry cache hits);
 * ck_ring reserve/commit.  No lock, no allocation after the thread's first
 * event.  A full ring goes to ftm_merger_push_slow (helps, never drops).
 *
 * Traceback generations.  Each session, and each ftm_clear, gets a fresh
 * ftm_tb_pool (a generation).  Pool ids are small and restart at 1 in every
 * generation, so the ids the engine hands out are made unique among the
 * generations still alive: public id = gen.base + pool id, where a new
 * generation's base is above every id of every generation still alive
 * (snapshots pin old ones), and 0 when none is.  The merger adds the base
 * when it applies an event; ftm_traceback_get finds the generation with the
 * largest base below the id.  Reclamation of a generation: sequence.h.
 *
 * Locks (order: life -> apply -> registry -> gen -> pool -> memory's
 * set-up lock; the fork handlers take them all in this order)
 *   E.life      lifecycle and queries: start/stop/clear/reset_peak/flush and
 *               every query are serialised by it, so no query ever
 *               sees the instant between a clear's publishing of the new
 *               pool and the clear itself.
 *   apply       ftm_merger_g.lock (merger.h).
 *   gen_lock    the list of alive generations, their refcounts and bases.
 *
 * Shared fields and their ordering
 *   E.tracing        written under life (seq_cst store); producers load it
 *                    relaxed as a hint: a stale `true` only yields an event
 *                    that the merger drops (numbered outside the session),
 *                    a stale `false` only misses an event racing with start.
 *   E.live           current generation (or NULL while stopped): written
 *                    under life with a seq_cst store BEFORE the lifecycle
 *                    step takes its number; producers load it (acquire)
 *                    AFTER taking theirs.  Its pool and number never change.
 *   E.ring_capacity  relaxed; read when a thread creates its ring.
 *   E.merger_off     the session runs without a merger thread
 *                    (ftm_config.no_merger_thread): written under life by
 *                    ftm_start before the session begins; read relaxed by
 *                    exiting threads (on_thread_exit: a stale value only
 *                    makes an exit skip or take one step, both harmless)
 *                    and by the fork child (one thread).
 *   E.producer_lost  relaxed fetch_add on the rare loss paths.
 *   E.gens, E.cur, gen->refs, gen->base, E.tb_oom_retired   gen_lock.
 *   E.session_base_lost, E.session_base_traces_oom   apply lock (written
 *                    by ftm_start, read by ftm_get_stats, both holding it).
 *   E.session_base_tb_oom   gen_lock (same writer and reader).
 *   The session bases are what the cumulative loss counters read when the
 *   session started; ftm_stats' session_* fields are the differences.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "fasttracemalloc.h"
#include "memory.h"
#include "merger.h"
#include "ring.h"
#include "thread_registry.h"
#include "sequence.h"
#include "tb_pool.h"
#if FTM_ORDER_CLOCK
#include "order_clock.h"
#endif
#include "trace_map.h"

ftm_sequence ftm_seq = {.next = FTM_SEQ_FIRST};

typedef struct ftm_gen {
    ftm_tb_pool *pool;
    uint32_t number; /* the pool's generation, for the caller's tb cache */
    ftm_tb_id base;
    uint32_t refs; /* 1 for "current" + 1 per snapshot */
    struct ftm_gen *next;
} ftm_gen;

typedef struct ftm_pin {
    ftm_gen *gen;
    size_t traces_bytes;
} ftm_pin;

static struct {
    pthread_mutex_t life;
    pthread_mutex_t gen_lock;
    _Atomic bool tracing;
    _Atomic(ftm_gen *) live;
    _Atomic uint32_t ring_capacity;
    _Atomic bool merger_off;
    _Atomic uint64_t producer_lost;
    ftm_gen *gens;
    ftm_gen *cur;
    uint32_t gen_counter; /* life */
    uint64_t tb_oom_retired;
    uint64_t session_base_lost;
    uint64_t session_base_traces_oom;
    uint64_t session_base_tb_oom;
} E = {
    .life = PTHREAD_MUTEX_INITIALIZER,
    .gen_lock = PTHREAD_MUTEX_INITIALIZER,
    .ring_capacity = FTM_RING_DEFAULT_CAPACITY,
};

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* ---- producer fast path --------------------------------------------------
 */

static inline ftm_tb_id intern_tb(ftm_traceback *tb)
{
    if (tb == NULL || tb->frames == NULL || tb->nframe == 0) {
        return FTM_TB_NONE;
    }
    ftm_gen *g = atomic_load_explicit(&E.live, memory_order_acquire);
    if (g == NULL) {
        return FTM_TB_NONE;
    }
    if (tb->cached_id != FTM_TB_NONE && tb->cached_generation == g->number) {
        return tb->cached_id;
    }
    ftm_tb_id id = ftm_tb_pool_intern_tagged(g->pool, tb->frames, tb->nframe,
                                             tb->total_nframe, tb->thread_tag);
    if (id != FTM_TB_NONE) {
        tb->cached_id = id;
        tb->cached_generation = g->number;
    }
    return id;
}

static inline void push(ftm_ring *r, const ftm_event *ev)
{
    if (__builtin_expect(!ftm_ring_try_push(r, ev), 0)) {
        ftm_merger_push_slow(r, ev);
    }
}

/* ---- the ordering point of an event ----------------------------------
 * Counter order (sequence.h): one fetch_add.  Clock order (order_clock.h):
 * publish the in-flight marker, then read the stamp; order_close() after
 * the push withdraws the marker. */
#if FTM_ORDER_CLOCK
static inline uint64_t order_open(ftm_ring *r, int before_only)
{
    atomic_store_explicit(&r->inflight, r->last_stamp + 1,
                          memory_order_release);
    atomic_signal_fence(memory_order_seq_cst); /* compiler barrier only */
    uint64_t s = ftm_clock_stamp_after(r->last_stamp, before_only);
    r->last_stamp = s;
    /* raise the marker to the stamp itself: lets the merger pass every
     * event older than this one (order_clock.h) */
    atomic_store_explicit(&r->inflight, s, memory_order_release);
    return s;
}

/* A later stamp of the same open event (a moved realloc's ALLOC). */
static inline uint64_t order_again(ftm_ring *r)
{
    uint64_t s = ftm_clock_stamp_after(r->last_stamp, 0);
    r->last_stamp = s;
    atomic_store_explicit(&r->inflight, s, memory_order_release);
    return s;
}

static inline void order_close(ftm_ring *r)
{
    atomic_store_explicit(&r->inflight, FTM_CLOCK_IDLE, memory_order_release);
}
#else
#define order_open(r, before_only) ftm_seq_take()
#define order_again(r) ftm_seq_take()
#define order_close(r) ((void)(r))
#endif

static void count_lost(void)
{
    atomic_fetch_add_explicit(&E.producer_lost, 1, memory_order_relaxed);
}

/* The thread's ring, NULL (and a counted loss) if it cannot be created. */
static inline ftm_ring *my_ring(ftm_tls *t)
{
    ftm_ring *r = t->ring;
    if (__builtin_expect(r == NULL, 0)) {
        r = ftm_ring_attach(
            atomic_load_explicit(&E.ring_capacity, memory_order_relaxed));
        if (r == NULL) {
            count_lost();
        }
    }
    return r;
}

/* A record while paused records nothing (by request); a record nested in
 * an open realloc ticket would break sequence.h I2: dropped and counted. */
static int blocked(ftm_tls *t)
{
    if (t->pause > 0) {
        return FTM_OK;
    }
    count_lost();
    return FTM_ESTATE;
}

static inline uint64_t clamp_size(size_t size)
{
    return (uint64_t)size > FTM_EVENT_MAX_SIZE ? FTM_EVENT_MAX_SIZE
                                               : (uint64_t)size;
}

/* The alloc, free and retrace fast path: one event with its own number.
 * tb is interned for an alloc or a retrace, after the number is taken
 * (sequence.h).  A retrace whose traceback could not be interned (out of
 * memory, counted by the pool; or a stop already unpublished the pool, so
 * the session ends before the trace could be seen) becomes a NOP: the trace
 * keeps the traceback it has, as the builtin's does when traceback_new()
 * fails. */
#ifdef FTM_TEST_HOOKS
void (*ftm_test_before_number)(void); /* merger.h */
#endif

static inline int record_one(uint32_t kind, ftm_domain_t domain, uintptr_t ptr,
                             size_t size, ftm_traceback *tb)
{
    if (!atomic_load_explicit(&E.tracing, memory_order_relaxed)) {
        return FTM_OK;
    }
#ifdef FTM_TEST_HOOKS
    if (ftm_test_before_number != NULL) {
        ftm_test_before_number();
    }
#endif
    ftm_tls *t = &ftm_tls_self;
    if (__builtin_expect(t->pause | t->ticket_open, 0)) {
        return blocked(t);
    }
    ftm_ring *r = my_ring(t);
    if (r == NULL) {
        return FTM_ENOMEM;
    }
    ftm_event ev;
    ev.seq = order_open(r, kind == FTM_EV_FREE);
    ev.ptr = ptr;
    ev.size = clamp_size(size);
    ev.kind = kind;
    ev.domain = domain;
    ev.tb = intern_tb(tb); /* FTM_TB_NONE for a free (tb == NULL) */
    if (kind == FTM_EV_RETRACE && ev.tb == FTM_TB_NONE && tb != NULL &&
        tb->frames != NULL && tb->nframe != 0) {
        ev.kind = FTM_EV_NOP;
    }
    push(r, &ev);
    order_close(r);
    return FTM_OK;
}

int ftm_record_alloc(ftm_domain_t domain, uintptr_t ptr, size_t size,
                     ftm_traceback *tb)
{
    return record_one(FTM_EV_ALLOC, domain, ptr, size, tb);
}

int ftm_record_free(ftm_domain_t domain, uintptr_t ptr)
{
    return record_one(FTM_EV_FREE, domain, ptr, 0, NULL);
}

int ftm_record_retrace(ftm_domain_t domain, uintptr_t ptr, ftm_traceback *tb)
{
    return record_one(FTM_EV_RETRACE, domain, ptr, 0, tb);
}

ftm_realloc_ticket ftm_record_realloc_begin(ftm_domain_t domain,
                                            uintptr_t old_ptr)
{
    (void)domain;
    (void)old_ptr;
    ftm_realloc_ticket tk = {0, 0};
    if (!atomic_load_explicit(&E.tracing, memory_order_relaxed)) {
        return tk;
    }
    ftm_tls *t = &ftm_tls_self;
    if (t->pause | t->ticket_open) {
        (void)blocked(t);
        return tk;
    }
    /* The ring must exist before the number is taken: realloc_end has to
     * be able to push it whatever happens. */
    ftm_ring *r = my_ring(t);
    if (r == NULL) {
        return tk;
    }
    tk.seq = order_open(r, 1); /* clock: the marker stays up until the end */
#if FTM_ORDER_CLOCK
    atomic_store_explicit(&r->ticket_stamp, tk.seq, memory_order_relaxed);
#endif
    tk.active = 1;
    t->ticket_open = 1;
    return tk;
}

int ftm_record_realloc_end(ftm_realloc_ticket ticket, ftm_domain_t domain,
                           uintptr_t old_ptr, uintptr_t new_ptr, size_t size,
                           ftm_traceback *tb)
{
    if (!ticket.active) {
        return FTM_OK;
    }
    ftm_tls *t = &ftm_tls_self;
    ftm_event ev;
    ev.seq = ticket.seq;
    if (!t->ticket_open) {
        /* Contract broken: no begin on this thread.  The ticket's number
         * must still be applied or every query would wait for it forever:
         * it goes to the merger as a NOP (the realloc itself is lost,
         * counted).  Not through this thread's ring: see merger.h. */
        ev.ptr = old_ptr;
        ev.size = 0;
        ev.kind = FTM_EV_NOP;
        ev.domain = domain;
        ev.tb = FTM_TB_NONE;
        ftm_merger_place_foreign(&ev);
        count_lost();
        return FTM_EINVAL;
    }
    ftm_ring *r = t->ring;
    t->ticket_open = 0;
#if FTM_ORDER_CLOCK
    atomic_store_explicit(&r->ticket_stamp, 0, memory_order_relaxed);
#endif
    ev.domain = domain;
    ev.size = 0;
    ev.tb = FTM_TB_NONE;
    if (new_ptr == 0) { /* failed: the old block is untouched */
        ev.ptr = old_ptr;
        ev.kind = FTM_EV_NOP;
        push(r, &ev);
        order_close(r);
        return FTM_OK;
    }
    if (new_ptr == old_ptr) { /* in place: replace size and traceback */
        ev.ptr = old_ptr;
        ev.size = clamp_size(size);
        ev.kind = FTM_EV_ALLOC;
        ev.tb = intern_tb(tb);
        push(r, &ev);
        order_close(r);
        return FTM_OK;
    }
    ev.ptr = old_ptr; /* moved: old is gone at seq1 ... */
    ev.kind = FTM_EV_FREE;
    push(r, &ev);
    if (!atomic_load_explicit(&E.tracing, memory_order_relaxed)) {
        order_close(r);
        return FTM_OK;
    }
    ev.seq = order_again(r); /* ... new exists at seq2 */
    ev.ptr = new_ptr;
    ev.size = clamp_size(size);
    ev.kind = FTM_EV_ALLOC;
    ev.tb = intern_tb(tb);
    push(r, &ev);
    order_close(r);
    return FTM_OK;
}

void ftm_thread_pause(void)
{
    ftm_tls_self.pause++;
}

void ftm_thread_resume(void)
{
    if (ftm_tls_self.pause > 0) {
        ftm_tls_self.pause--;
    }
}

bool ftm_is_tracing(void)
{
    return atomic_load_explicit(&E.tracing, memory_order_relaxed);
}

/* ---- generations ----------------------------------------------------------
 */

static ftm_gen *gen_new(void)
{
    ftm_gen *g = ftm_mem_calloc(1, sizeof(*g));
    if (g == NULL) {
        return NULL;
    }
    uint32_t number = ++E.gen_counter;
    if (number == 0) { /* 0 never matches a fresh caller cache either */
        number = ++E.gen_counter;
    }
    g->number = number;
    g->pool = ftm_tb_pool_new(number);
    if (g->pool == NULL) {
        ftm_mem_free(g, sizeof(*g));
        return NULL;
    }
    return g;
}

static void gen_discard(ftm_gen *g) /* never published */
{
    ftm_tb_pool_free(g->pool);
    ftm_mem_free(g, sizeof(*g));
}

/* gen_lock held.  Lowest base above every id of every alive generation
 * except `skip` (whose pool must be quiescent if included). */
static ftm_tb_id gen_next_base_locked(const ftm_gen *skip)
{
    uint64_t base = 0;
    for (ftm_gen *g = E.gens; g != NULL; g = g->next) {
        if (g == skip) {
            continue;
        }
        uint64_t top = (uint64_t)g->base + ftm_tb_pool_count(g->pool);
        if (top > base) {
            base = top;
        }
    }
    /* Would need ~4e9 tracebacks alive in pinned generations. */
    return base > UINT32_MAX / 2 ? 0 : (ftm_tb_id)base;
}

/* gen_lock held: tracebacks that could not be interned, over the process
 * (retired generations and alive ones). */
static uint64_t gen_oom_total_locked(void)
{
    uint64_t oom = E.tb_oom_retired;
    for (ftm_gen *g = E.gens; g != NULL; g = g->next) {
        oom += ftm_tb_pool_oom_count(g->pool);
    }
    return oom;
}

/* gen_lock held. */
static void gen_link_current_locked(ftm_gen *g)
{
    g->refs = 1;
    g->next = E.gens;
    E.gens = g;
    E.cur = g;
}

/* gen_lock held. */
static void gen_unref_locked(ftm_gen *g)
{
    if (--g->refs != 0) {
        return;
    }
    for (ftm_gen **pp = &E.gens; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    }
    if (E.cur == g) {
        E.cur = NULL;
    }
    E.tb_oom_retired += ftm_tb_pool_oom_count(g->pool);
    ftm_tb_pool_free(g->pool);
    ftm_mem_free(g, sizeof(*g));
}

/* ---- fork ------------------------------------------------------------------
 */

static void atfork_prepare(void)
{
    pthread_mutex_lock(&E.life);
    pthread_mutex_lock(&ftm_merger_g.lock);
    ftm_registry_lock();
    pthread_mutex_lock(&E.gen_lock);
    /* No traceback insert may be half done in a thread that vanishes. */
    for (ftm_gen *g = E.gens; g != NULL; g = g->next) {
        ftm_tb_pool_fork_prepare(g->pool);
    }
    /* Last: ftm_mem_init runs under the locks above (life in ftm_start, a
     * pool lock when a first allocation initialises the backend). */
    ftm_mem_fork_prepare();
}

static void atfork_parent(void)
{
    ftm_mem_fork_parent();
    for (ftm_gen *g = E.gens; g != NULL; g = g->next) {
        ftm_tb_pool_fork_parent(g->pool);
    }
    pthread_mutex_unlock(&E.gen_lock);
    ftm_registry_unlock();
    pthread_mutex_unlock(&ftm_merger_g.lock);
    pthread_mutex_unlock(&E.life);
}

/* Only the forking thread exists now.  Its locks (held by it since
 * prepare) are re-initialised rather than unlocked.  Events the vanished
 * threads completed are applied in order; a number a vanished thread took
 * but never pushed is skipped and counted in events_lost (ftm_merger_fork
 * _child); their rings are discarded; the merger is restarted. */
static void atfork_child(void)
{
    ftm_mem_fork_child();
    pthread_mutex_init(&E.life, NULL);
    pthread_mutex_init(&E.gen_lock, NULL);
    for (ftm_gen *g = E.gens; g != NULL; g = g->next) {
        ftm_tb_pool_fork_child(g->pool);
    }
    ftm_registry_atfork_child();
    ftm_merger *m = &ftm_merger_g;
#if FTM_ORDER_CLOCK
    ftm_merger_fork_child(m, ftm_clock_now(), ftm_tls_self.ring);
#else
    ftm_merger_fork_child(m, ftm_seq_peek(), ftm_tls_self.ring);
#endif
    ftm_tls_self.ticket_open = 0;
    if (m->session &&
        !atomic_load_explicit(&E.merger_off, memory_order_relaxed)) {
        if (ftm_merger_thread_start(m) != 0) {
            /* Without a merger, producers whose rings fill up do the
             * merging themselves (merger.h): slower, still exact. */
        }
    }
}

/* A registered thread exits (thread_registry.h).  Without a merger
 * thread nobody else would drain its closed ring before the next query,
 * so a program that runs a thread per request would pile up rings: this
 * thread takes one step itself, which moves its (last, all pushed) events
 * into the window and frees its ring, and any other closed, empty one.
 * Blocking on the apply lock cannot deadlock: its holder (a query's flush
 * or a full producer's help) waits only for producers' pushes, which take
 * no lock (merger.h, Progress). */
static void on_thread_exit(void)
{
    if (!atomic_load_explicit(&E.merger_off, memory_order_relaxed) ||
        !atomic_load_explicit(&E.tracing, memory_order_relaxed)) {
        return;
    }
    ftm_merger *m = &ftm_merger_g;
    pthread_mutex_lock(&m->lock);
    (void)ftm_merger_step(m);
    pthread_mutex_unlock(&m->lock);
}

static void register_atfork(void)
{
    (void)pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    ftm_registry_set_exit_hook(on_thread_exit);
}

/* ---- lifecycle
 * --------------------------------------------------------------- */

static bool valid_capacity(uint32_t c)
{
    return c >= FTM_RING_MIN_CAPACITY && c <= FTM_RING_MAX_CAPACITY &&
           (c & (c - 1)) == 0;
}

int ftm_start(const ftm_config *cfg)
{
    uint32_t cap = FTM_RING_DEFAULT_CAPACITY;
    ftm_mem_backend backend = FTM_MEM_AUTO;
    bool merger_off = false;
    if (cfg != NULL) {
        if (cfg->ring_capacity != 0) {
            cap = cfg->ring_capacity;
        }
        backend = cfg->mem_backend;
        merger_off = cfg->no_merger_thread != 0;
    }
    if (!valid_capacity(cap) ||
        (backend != FTM_MEM_AUTO && backend != FTM_MEM_PORTABLE &&
         backend != FTM_MEM_JEMALLOC)) {
        return FTM_EINVAL;
    }
    pthread_once(&atfork_once, register_atfork);

    pthread_mutex_lock(&E.life);
    if (atomic_load(&E.tracing)) {
        pthread_mutex_unlock(&E.life);
        return FTM_OK;
    }
    int rc = ftm_mem_init(backend);
    if (rc == FTM_EINVAL && ftm_mem_bytes() != 0) {
        /* Rings of live threads still hold engine memory from an earlier
         * session: the backend cannot change now, and the header says the
         * choice is only honoured while no engine memory is held. */
        rc = FTM_OK;
    }
    if (rc != FTM_OK) {
        pthread_mutex_unlock(&E.life);
        return rc;
    }
    ftm_trace_map *map = ftm_trace_map_new();
#if FTM_ORDER_CLOCK
    ftm_event *window = NULL; /* the clock merger has no reorder window */
    bool window_failed = false;
#else
    ftm_event *window = ftm_mem_calloc(FTM_WINDOW_EVENTS, sizeof(ftm_event));
    bool window_failed = window == NULL;
#endif
    ftm_gen *g = gen_new();
    if (map == NULL || window_failed || g == NULL) {
        if (map != NULL) {
            ftm_trace_map_free(map);
        }
        ftm_mem_free(window, (size_t)FTM_WINDOW_EVENTS * sizeof(ftm_event));
        if (g != NULL) {
            gen_discard(g);
        }
        pthread_mutex_unlock(&E.life);
        return FTM_ENOMEM;
    }
    pthread_mutex_lock(&E.gen_lock);
    g->base = gen_next_base_locked(NULL);
    gen_link_current_locked(g);
    E.session_base_tb_oom = gen_oom_total_locked();
    pthread_mutex_unlock(&E.gen_lock);

    atomic_store_explicit(&E.ring_capacity, cap, memory_order_relaxed);
    ftm_merger *m = &ftm_merger_g;
#if FTM_ORDER_CLOCK
    /* order_clock.h: the step's stamp is read holding the apply lock. */
    pthread_mutex_lock(&m->lock);
    atomic_store(&E.live, g);
    uint64_t s0 = ftm_clock_lifecycle_stamp();
    m->session = true;
    m->accept_from = s0;
    m->next_seq = s0;
#else
    atomic_store(&E.live, g);
    uint64_t s0 = ftm_seq_take();

    pthread_mutex_lock(&m->lock);
    m->session = true;
    m->accept_from = s0 + 1;
    m->next_seq = s0 + 1;
#endif
    m->window = window;
    m->map = map;
    m->tb_base = g->base;
    m->current = 0;
    m->peak = 0;
    E.session_base_lost =
        m->lost + atomic_load_explicit(&E.producer_lost, memory_order_relaxed);
    E.session_base_traces_oom = m->traces_lost_oom;
    pthread_mutex_unlock(&m->lock);

    atomic_store_explicit(&E.merger_off, merger_off, memory_order_relaxed);
    if (!merger_off && ftm_merger_thread_start(m) != 0) {
        /* Still correct without it (producers help when their rings fill
         * and queries flush themselves), just slower: carry on. */
    }
    atomic_store(&E.tracing, true);
    pthread_mutex_unlock(&E.life);
    return FTM_OK;
}

void ftm_stop(void)
{
    pthread_mutex_lock(&E.life);
    if (!atomic_load(&E.tracing)) {
        pthread_mutex_unlock(&E.life);
        return;
    }
    atomic_store(&E.tracing, false);
    ftm_merger *m = &ftm_merger_g;
#if FTM_ORDER_CLOCK
    pthread_mutex_lock(&m->lock);
    atomic_store(&E.live, NULL);
    uint64_t s = ftm_clock_lifecycle_stamp();
    ftm_merger_flush_step_locked(m, s);
#else
    atomic_store(&E.live, NULL);
    uint64_t s = ftm_seq_take();

    pthread_mutex_lock(&m->lock);
    ftm_merger_flush_locked(m, s);
#endif
    ftm_merger_end_session(m, s);
    ftm_trace_map_free(m->map);
    m->map = NULL;
    ftm_mem_free(m->window, (size_t)FTM_WINDOW_EVENTS * sizeof(ftm_event));
    m->window = NULL;
    m->current = 0;
    m->peak = 0;
    pthread_mutex_unlock(&m->lock);

    ftm_merger_thread_stop(m);

    pthread_mutex_lock(&m->lock);
    ftm_merger_reclaim(m); /* free the rings of threads that exited */
    pthread_mutex_unlock(&m->lock);

    pthread_mutex_lock(&E.gen_lock);
    if (E.cur != NULL) {
        gen_unref_locked(E.cur);
        E.cur = NULL;
    }
    pthread_mutex_unlock(&E.gen_lock);
    pthread_mutex_unlock(&E.life);
}

void ftm_clear(void)
{
    pthread_mutex_lock(&E.life);
    if (!atomic_load(&E.tracing)) {
        pthread_mutex_unlock(&E.life);
        return;
    }
    /* Out of memory for a new pool: traces are still cleared, the old
     * tracebacks are kept (their ids stay valid). */
    ftm_gen *g = gen_new();
    ftm_merger *m = &ftm_merger_g;
#if FTM_ORDER_CLOCK
    pthread_mutex_lock(&m->lock);
    if (g != NULL) {
        atomic_store(&E.live, g);
    }
    uint64_t s = ftm_clock_lifecycle_stamp();
    ftm_merger_flush_step_locked(m, s);
    ftm_trace_map_clear(m->map);
    m->current = 0;
    m->peak = 0;
    m->next_seq = s; /* events >= s: the cleared session's */
#else
    if (g != NULL) {
        atomic_store(&E.live, g);
    }
    uint64_t s = ftm_seq_take();

    pthread_mutex_lock(&m->lock);
    ftm_merger_flush_locked(m, s);
    ftm_trace_map_clear(m->map);
    m->current = 0;
    m->peak = 0;
    m->next_seq = s + 1;
#endif
    if (g != NULL) {
        pthread_mutex_lock(&E.gen_lock);
        ftm_gen *old = E.cur;
        /* old is quiescent now (sequence.h); if nothing pins it, it goes. */
        g->base =
            gen_next_base_locked(old != NULL && old->refs == 1 ? old : NULL);
        gen_link_current_locked(g);
        m->tb_base = g->base;
        if (old != NULL) {
            gen_unref_locked(old);
        }
        pthread_mutex_unlock(&E.gen_lock);
    }
    pthread_mutex_unlock(&m->lock);
    pthread_mutex_unlock(&E.life);
}

/* ---- queries
 * ------------------------------------------------------------------ */

/* Life lock held; takes the apply lock and flushes.  False if not tracing
 * (nothing locked then). */
static bool query_begin(void)
{
    if (!atomic_load(&E.tracing)) {
        return false;
    }
#if FTM_ORDER_CLOCK
    uint64_t s = ftm_clock_now(); /* above every event before the query */
#else
    uint64_t s = ftm_seq_peek();
#endif
    pthread_mutex_lock(&ftm_merger_g.lock);
    ftm_merger_flush_locked(&ftm_merger_g, s);
    return true;
}

static void query_end(void)
{
    pthread_mutex_unlock(&ftm_merger_g.lock);
}

void ftm_flush(void)
{
    pthread_mutex_lock(&E.life);
    if (query_begin()) {
        query_end();
    }
    pthread_mutex_unlock(&E.life);
}

void ftm_get_traced_memory(size_t *current, size_t *peak)
{
    size_t c = 0, p = 0;
    pthread_mutex_lock(&E.life);
    if (query_begin()) {
        c = ftm_merger_g.current;
        p = ftm_merger_g.peak;
        query_end();
    }
    pthread_mutex_unlock(&E.life);
    if (current != NULL) {
        *current = c;
    }
    if (peak != NULL) {
        *peak = p;
    }
}

void ftm_reset_peak(void)
{
    pthread_mutex_lock(&E.life);
    if (query_begin()) {
        ftm_merger_g.peak = ftm_merger_g.current;
        query_end();
    }
    pthread_mutex_unlock(&E.life);
}

size_t ftm_engine_memory(void)
{
    /* While stopped there is no merger: free the rings of threads that
     * exited since, so the figure is what the engine really needs (rings
     * of live threads are kept across sessions: see ring.h). */
    if (!atomic_load(&E.tracing)) {
        pthread_mutex_lock(&ftm_merger_g.lock);
        ftm_merger_reclaim(&ftm_merger_g);
        pthread_mutex_unlock(&ftm_merger_g.lock);
    }
    return ftm_mem_bytes();
}

int ftm_get_trace(ftm_domain_t domain, uintptr_t ptr, ftm_trace *out)
{
    int found = 0;
    ftm_trace tmp;
    pthread_mutex_lock(&E.life);
    if (query_begin()) {
        found = ftm_trace_map_get(ftm_merger_g.map, domain, ptr, &tmp) ? 1 : 0;
        query_end();
    }
    pthread_mutex_unlock(&E.life);
    if (found && out != NULL) {
        *out = tmp;
    }
    return found;
}

int ftm_take_snapshot(ftm_snapshot *out)
{
    memset(out, 0, sizeof(*out));
    ftm_pin *pin = ftm_mem_calloc(1, sizeof(*pin));
    if (pin == NULL) {
        return FTM_ENOMEM;
    }
    int rc = FTM_OK;
    pthread_mutex_lock(&E.life);
    if (!query_begin()) {
        pthread_mutex_unlock(&E.life);
        ftm_mem_free(pin, sizeof(*pin));
        return FTM_OK; /* not tracing: no traces */
    }
    ftm_merger *m = &ftm_merger_g;
    size_t n = ftm_trace_map_count(m->map);
    ftm_trace *traces = NULL;
    if (n != 0) {
        traces = ftm_mem_alloc(n * sizeof(ftm_trace));
        if (traces == NULL) {
            rc = FTM_ENOMEM;
        }
    }
    if (rc == FTM_OK) {
        out->ntraces = n ? ftm_trace_map_copy(m->map, traces, n) : 0;
        out->traces = traces;
        pin->traces_bytes = n * sizeof(ftm_trace);
        pthread_mutex_lock(&E.gen_lock);
        pin->gen = E.cur;
        if (pin->gen != NULL) {
            pin->gen->refs++;
        }
        pthread_mutex_unlock(&E.gen_lock);
        out->pin = pin;
    }
    query_end();
    pthread_mutex_unlock(&E.life);
    if (rc != FTM_OK) {
        ftm_mem_free(pin, sizeof(*pin));
    }
    return rc;
}

void ftm_snapshot_release(ftm_snapshot *snap)
{
    if (snap == NULL) {
        return;
    }
    ftm_pin *pin = snap->pin;
    if (pin != NULL) {
        if (pin->gen != NULL) {
            pthread_mutex_lock(&E.gen_lock);
            gen_unref_locked(pin->gen);
            pthread_mutex_unlock(&E.gen_lock);
        }
        ftm_mem_free(snap->traces, pin->traces_bytes);
        ftm_mem_free(pin, sizeof(*pin));
    }
    memset(snap, 0, sizeof(*snap));
}

/* Under E.gen_lock: the generation an id belongs to (the pinned or live
 * one with the largest base below it), or NULL. */
static ftm_gen *gen_of_locked(ftm_tb_id id)
{
    ftm_gen *best = NULL;
    for (ftm_gen *g = E.gens; g != NULL; g = g->next) {
        if (g->base < id && (best == NULL || g->base > best->base)) {
            best = g;
        }
    }
    return best;
}

int ftm_traceback_get(ftm_tb_id id, const ftm_frame **frames, uint16_t *nframe,
                      uint16_t *total_nframe)
{
    if (id == FTM_TB_NONE) {
        return FTM_EINVAL;
    }
    int rc = FTM_EINVAL;
    pthread_mutex_lock(&E.gen_lock);
    ftm_gen *best = gen_of_locked(id);
    if (best != NULL) {
        rc = ftm_tb_pool_get(best->pool, id - best->base, frames, nframe,
                             total_nframe);
    }
    pthread_mutex_unlock(&E.gen_lock);
    return rc;
}

int ftm_traceback_thread(ftm_tb_id id, uint32_t *thread_tag)
{
    if (id == FTM_TB_NONE || thread_tag == NULL) {
        return FTM_EINVAL;
    }
    int rc = FTM_EINVAL;
    pthread_mutex_lock(&E.gen_lock);
    ftm_gen *best = gen_of_locked(id);
    if (best != NULL) {
        rc = ftm_tb_pool_thread(best->pool, id - best->base, thread_tag);
    }
    pthread_mutex_unlock(&E.gen_lock);
    return rc;
}

/* ---- statistics
 * ------------------------------------------------------------- */

void ftm_get_stats(ftm_stats *out)
{
    memset(out, 0, sizeof(*out));
    ftm_merger *m = &ftm_merger_g;
    ftm_registry_stats rs;
    pthread_mutex_lock(&E.life); /* thread_running's lock (merger.h) */
    out->merger_thread = m->thread_running ? 1 : 0;
    pthread_mutex_unlock(&E.life);
    pthread_mutex_lock(&m->lock);
    ftm_registry_lock();
    ftm_registry_stats_get(&rs);
    ftm_registry_unlock();
    out->events_recorded = m->consumed + rs.pending;
    out->events_applied = m->applied;
    out->events_lost =
        m->lost + atomic_load_explicit(&E.producer_lost, memory_order_relaxed);
    out->traces_lost_oom = m->traces_lost_oom;
    out->events_ignored = m->ignored;
    out->live_traces = m->map != NULL ? ftm_trace_map_count(m->map) : 0;
    out->session_events_lost = out->events_lost - E.session_base_lost;
    out->session_traces_lost_oom =
        out->traces_lost_oom - E.session_base_traces_oom;
    pthread_mutex_unlock(&m->lock);
    out->ring_full_waits = rs.full_waits;
    out->producer_drains = rs.drains;
    out->threads_registered = rs.threads_registered;
    out->rings_reclaimed = rs.rings_reclaimed;
    out->rings_untouched_bytes = rs.untouched_bytes;

    pthread_mutex_lock(&E.gen_lock);
    out->tracebacks = E.cur != NULL ? ftm_tb_pool_count(E.cur->pool) : 0;
    out->tracebacks_lost_oom = gen_oom_total_locked();
    out->session_tracebacks_lost_oom =
        out->tracebacks_lost_oom - E.session_base_tb_oom;
    pthread_mutex_unlock(&E.gen_lock);
    out->engine_bytes = ftm_mem_bytes();
    out->backend_in_use = ftm_mem_backend_in_use();
}

/* ---- engine-internal diagnostics (tests)
 * ------------------------------------ */

/* Events consumed outside a session (recorded while stopped or racing with
 * start/stop): dropped on purpose, not lost.  The same figure as
 * ftm_stats.events_ignored, without the rest of the stats. */
uint64_t ftm_engine_events_ignored(void)
{
    pthread_mutex_lock(&ftm_merger_g.lock);
    uint64_t v = ftm_merger_g.ignored;
    pthread_mutex_unlock(&ftm_merger_g.lock);
    return v;
}
