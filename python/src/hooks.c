/*
 * hooks.c -- see hooks.h.  The allocation hot path.
 *
 * Wrappers.  One set per domain.  They ignore their ctx argument and use
 * the domain's static `hooks[]` slot instead: PyMem_SetAllocator() is not
 * atomic, so a thread calling PyMem_RawMalloc() without the GIL while the
 * allocators are swapped may read our function with the previous ctx; our
 * side must not care.  Every wrapper:
 *   - passes straight through while not tracing or while the thread is
 *     already inside a wrapper (`busy`: e.g. pymalloc handing a >512-byte
 *     request to PyMem_RawMalloc, which must not be traced twice -- the
 *     outer wrapper records it, and likewise for the matching free and
 *     realloc);
 *   - records a free BEFORE calling the real free, an alloc AFTER the real
 *     malloc/calloc returned non-NULL, and a realloc as
 *     ftm_record_realloc_begin / real realloc / ftm_record_realloc_end (the
 *     engine's ordering contract).  A failed allocation records nothing.
 *   - while the thread is `suppress`ed (the module building a query
 *     answer, as the builtin does, or the package's own Python code inside
 *     _suspend()/_resume(): its lazy imports and bookkeeping), allocations
 *     are not traced; frees still are, and a realloc is recorded as a free
 *     of the old block.  A block allocated while suppressed is unknown to
 *     the engine, so its later free (recorded like any other) removes
 *     nothing and leaves current and peak untouched.
 * Difference from the builtin: a realloc made from inside another wrapper
 * (pymalloc growing its arena array through PyMem_RawRealloc) passes
 * through untouched; the builtin removes the old block's trace there, but
 * that block is never a traced one (it is only ever allocated from inside
 * a wrapper), so the results are the same.
 *
 * Capture.  MEM/OBJ run with the GIL (free-threaded: attached): the
 * thread state is the GIL holder's (ftmpy_tstate_current).  RAW may run
 * without it: the thread's own state is looked up (ftmpy_tstate_own); if it is
 * also the GIL holder the GIL path is taken, else the frames are resolved on
 * the spot (kind RESOLVED, see frames.h) because no reference can be taken.
 * NULL thread state or a finalizing interpreter -> the "<unknown>" traceback.
 *
 * Per-thread one-entry cache.  Each thread keeps its last kind-SHAPE
 * capture (code_frames: the walk's raw records, cooked: the kind-SHAPE
 * records handed to the engine, code_tb) and its last kind-RESOLVED one
 * (res_frames/res_tb, allocated on the thread's first no-GIL capture).
 * ftmpy_walk() writes the new capture over the old
 * one comparing as it goes; if nothing changed the same ftm_traceback (with
 * the engine's cached id) is passed again and the engine skips interning.
 * On top of that, up to SLOTS recent tracebacks that share frames 1..n-1
 * with the current capture are kept (tb_slot), so a loop allocating on a
 * few lines of one function re-interns nothing either.
 * The raw records name code objects by address, so they are only compared
 * with while no code object died since they were written and the shapes
 * of their epoch are still there: when ftmpy_code_deaths() or
 * ftmpy_code_epoch moved, the cache is zeroed first (codeset.h).  Code
 * pointers that changed since the previous capture get their shape from
 * the code set right after the walk (one map probe each; no reference is
 * taken); if no shape can be made, that frame is resolved eagerly (kind
 * RESOLVED) and counted (coderef_oom).
 *
 * Thread-local state: one C11 _Thread_local pointer to a libc-allocated
 * tcache, freed with its buffers by a pthread key destructor at thread
 * exit.  If it cannot be allocated the allocation passes untraced and is
 * counted (capture_oom), frees are still recorded.  After
 * fork() the child's only thread keeps its own (consistent) state: fork is
 * never called from inside a wrapper, so `busy` is 0 there.
 *
 * Sampled mode (sampled.h; while ftmpy_sample_mean != 0).  The thread's
 * sampler decides whether a block is sampled BEFORE any capture.  A
 * malloc that cannot nest (alloc_skipped: RAW, or at most 512 bytes) is
 * decided before the real call, and an unsampled one is a countdown and
 * a tail call; any other keeps `busy` around the real call (a pymalloc
 * request handed to PyMem_RawMalloc is one allocation, sampled once) and
 * is decided after it.  A sampled block enters the sampled-address set
 * and is recorded with its scaled size.  A free whose address is
 * certainly not in the set is a bucket test and a tail call (do_free); a
 * free is recorded only if its address leaves the set; a retrace only if
 * the block is in it; a realloc is a free plus a sampled-on-its-own
 * allocation (realloc_sampled).  Free-list objects are re-stamped only if
 * the session asked for it (ftmpy_sample_restamp): the PyRefTracer call
 * on every object creation and destruction is the sampled mode's largest
 * cost on 3.13+.  Why a set in the extension rather than
 * an engine event per free: see sampled.h and README ("Sampled mode").
 *
 * Free-list objects (3.13+).  CPython hands out list, dict, float, tuple,
 * ... objects from free lists without calling the allocator; the builtin
 * re-stamps such an object with the traceback of its creation through
 * PyRefTracer's CREATE event, and so does on_ref_event() here: for every
 * object created while tracing (outside a wrapper and outside a query, as
 * the builtin's reentrancy flag), it records ftm_record_retrace(block,
 * current traceback), which the engine applies only if the block is traced
 * (size, current and peak unchanged).  The event is ordered by the engine
 * like every other, so a block freed and reused by another thread in
 * between is never resurrected.  PyRefTracer has ONE global slot, which
 * the builtin and memray also take: install saves whatever tracer was
 * there and on_ref_event() calls it after ours, and uninstall restores it
 * only if ours is still the installed one (else someone installed theirs
 * on top of ours: ours stays below theirs, passing events on while not
 * tracing).
 *
 * The fresh-object shortcut.  Most CREATE events are for an object whose
 * block this very thread allocated a moment ago (every object not taken
 * from a free list), and re-stamping it would record the traceback the
 * allocation just recorded.  Each thread remembers, in tcache.fresh, the
 * block of its latest recorded allocation, together with the first
 * complete frame (frames.h: ftmpy_peek) and the code-death count of that
 * capture; ANY later allocation, free, realloc, Track/Untrack or CREATE on
 * the thread clears it (a CREATE after using it: one-shot).  A CREATE of
 * the object at block b skips the retrace iff fresh == b, the thread's
 * first complete frame is the recorded one, and no code object died since.
 * Why that is exact -- the engine's state after alloc(b, T) then
 * retrace(b, T') equals the state after alloc(b, T) alone iff (i) T' == T
 * and (ii) no event on b came in between:
 *   (ii) b is live and this thread's since the allocation (the object
 *        under construction sits in it, nobody else holds it); a free of
 *        b by this thread would have cleared fresh, and an alloc of b by
 *        any thread needs b freed first.
 *   (i)  No Python frame of this thread ran to completion in between
 *        unless it also allocated (which would have cleared fresh): an
 *        object's constructor calls the allocator and _Py_NewReference
 *        with only C code in between (3.11's GC may run finalizers there;
 *        they return, and the stack is back where it was).  The first
 *        complete frame being the same (code object, instruction) adds a
 *        second guard for what (i) cannot rule out by itself: fresh set
 *        by a non-object block (a buffer), that buffer freed by ANOTHER
 *        thread (not seen here), its memory reused for an object that
 *        dies into a free list this thread pops, all without this thread
 *        allocating -- this shortcut then needs that to happen within one
 *        instruction of one frame.  The code-death count rules out a new
 *        code object at a dead one's address.
 * The shortcut removed a fifth of the engine events (and their stack
 * walks) of 3.13t's scaling loop (bench/overhead/wl_ftscale.py: 26.6 ->
 * 20.8 per iteration) and 16% of a free-list-heavy 3.11 workload's
 * (bench/results/2026-12-07-restamp-pyperformance-311.md).
 *
 * 3.11/3.12 have no public hook: there the
 * same function (ftmpy_hooks_new_object) is reached from a wrapper of
 * _Py_NewReference that capi_rebind.c installs in the GOT slots of
 * libpython and of the extensions, where the interpreter calls it through
 * its PLT (a shared libpython), and from newref_patch.c's patch of
 * _PyTraceMalloc_NewReference on Debian's static python3.11; elsewhere
 * free-list reuse keeps the block's first traceback and _stats() says so
 * (README).
 *
 * C API (capi_rebind.c).  ftmpy_hooks_track/untrack record
 * PyTraceMalloc_Track/Untrack in the caller's domain: Track captures like
 * a RAW allocation (the GIL path if the caller holds the GIL, else the
 * thread's own frames resolved on the spot; never taking the GIL), saves
 * and restores `busy` so a Track made from inside an allocator under ours
 * is still recorded, and honours `suppress`.
 *
 * Shared fields: g_tracing, g_nframe, ftmpy_hooks_newobj_wanted (hooks.h)
 * -- relaxed atomics written by install/uninstall (under the GIL;
 * free-threaded: under the module lock, module.c), read by every wrapper (a
 * stale value only makes a wrapper record an event the engine ignores, or skip
 * one racing with start/stop, exactly the engine's own contract).  A stale
 * g_nframe must not reach a new session: start() stores it
 * (ftmpy_hooks_set_nframe) before the seq_cst close of the code-set gate that
 * brackets ftm_start, and capture reads it after enter(), so every capture
 * numbered in the new session used the new limit (module.c, m_start).  hooks[]
 * -- written by install only when the wrapped allocator changed since the last
 * session (same lock); read by every wrapper.  in_chain[], prev_tracer[_data]
 * -- the same lock for writes; on_ref_event reads prev_tracer from any thread.
 * Stats -- relaxed atomics.  tcache -- its owner thread only.
 *
 * Free-threaded builds (3.13t).  MEM/OBJ wrappers run in many attached
 * threads at once, with no GIL; each calls the original allocator on its
 * own thread (mimalloc's per-thread heaps; a block may be freed by any
 * thread, which mimalloc allows, and whose free is recorded by the
 * freeing thread like any other).  What the GIL used to make atomic:
 *   - "capture + record": a kind-SHAPE traceback names shapes that
 *     stop/clear may drop; each capture and the ftm_record_* call that
 *     hands it to the engine are bracketed by the code-set gate
 *     (codeset.h: enter/leave).  While the gate is closed the thread
 *     never waits: an allocation or a re-stamp records nothing (it races
 *     with the step that closed the gate; counted in lifecycle_skipped),
 *     a realloc's end and a Track capture kind-RESOLVED frames.
 *   - ftmpy_code_epoch is read inside the gate only (codeset.h).
 *   - The allocator swap.  CPython's stop-the-world (_PyEval_StopTheWorld)
 *     is not exported by the interpreter (a hidden symbol in 3.13t), so,
 *     as the builtin does on 3.13t, the allocators are swapped with
 *     PyMem_SetAllocator while other threads run: a thread may read the
 *     domain's {ctx, malloc, ...} half old, half new.  Our entry is
 *     therefore installed with the ORIGINAL allocator's ctx (ours ignore
 *     ctx), so every mix is a valid call: ours, or the original with its
 *     own ctx; a block allocated by one and freed by the other is an
 *     event racing with start/stop (see above).  PyRefTracer_SetTracer is
 *     two plain stores in 3.13t as well; a CREATE event racing with
 *     start/stop may see our tracer with the previous pair's data (ours
 *     ignores it) or be missed, as the builtin's would.
 *   - hooks[i].orig is rewritten only if the allocator under ours changed
 *     between sessions; a wrapper call racing with that (someone else's
 *     hook removed while we were not tracing, then start()) could read a
 *     torn entry.  The same holds for RAW calls without the GIL on GIL
 *     builds.  Not fixed: it needs a third party's hook juggled by two
 *     threads at once.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "codeset.h"
#include "fasttracemalloc.h"
#include "filenames.h"
#include "frames.h"
#include "hooks.h"
#include "sampled.h"
#include "threads.h"

enum { H_RAW = 0, H_MEM = 1, H_OBJ = 2, H_COUNT = 3 };

typedef struct hook {
    PyMemAllocatorEx orig;
    PyMemAllocatorDomain domain;
} hook;

static hook hooks[H_COUNT] = {
    {.domain = PYMEM_DOMAIN_RAW},
    {.domain = PYMEM_DOMAIN_MEM},
    {.domain = PYMEM_DOMAIN_OBJ},
};

static atomic_int g_tracing;
atomic_int ftmpy_hooks_newobj_wanted;
static atomic_uint g_nframe = 1;

static atomic_uint_fast64_t st_capture_oom;
static atomic_uint_fast64_t st_coderef_oom;
static atomic_uint_fast64_t st_filename_oom;
static atomic_uint_fast64_t st_nogil;
static atomic_uint_fast64_t st_lifecycle_skipped;
static atomic_size_t st_tls_bytes;

static const ftm_frame unknown_frame = {FTMPY_RESOLVED_A(0), 0};

/* A thread's recent tracebacks that differ only in the most recent frame
 * (a function allocating on several lines in a loop).  A slot is reused
 * when its `version` equals the thread's current one -- so frames 1..n-1,
 * nframe and total_nframe are those of the current capture -- and its
 * `top` equals the current frame 0: then its frames are exactly the
 * current capture and the engine's cached id in `tb` is right, without
 * hashing.  Exact by construction, no hashing of frames in the module. */
#define SLOTS 16u
#define SLOT_MAX_NFRAME 64u

typedef struct tb_slot {
    uint64_t version;
    uint64_t stamp; /* fill order, to pick the older of two candidates */
    ftm_frame top;
    ftm_traceback tb; /* frames -> this slot's own copy */
} tb_slot;

typedef struct tcache {
    int busy;
    int suppress;
    uint32_t epoch; /* ftmpy_code_epoch of code_frames; 0 = never */
    uint32_t cap;   /* frames per buffer */
    void *block;    /* the one allocation holding the buffers below */
    size_t block_bytes;
    ftm_frame *code_frames; /* raw records of the last walk (frames.h) */
    ftm_frame *cooked;      /* their kind-SHAPE records, handed out */
    uint64_t deaths;        /* ftmpy_code_deaths() when code_frames filled */
    void *rblock; /* res_frames + scratch (no-GIL captures only), or NULL */
    size_t rblock_bytes;
    uint32_t rcap;
    ftm_frame *res_frames;
    ftm_frame *scratch;
    uint16_t *newcode;
    ftm_traceback code_tb; /* the last kind-SHAPE capture (descriptor) */
    ftm_traceback res_tb;
    ftm_traceback unk_tb;
    /* Recent-traceback slots (only when nframe <= SLOT_MAX_NFRAME). */
    uint64_t version;    /* bumped when frames 1.. or the counts change */
    ftm_traceback *last; /* what the previous kind-SHAPE capture returned */
    uint64_t stamp;
    ftm_frame *slot_frames; /* SLOTS * cap_stored frames, or NULL */
    tb_slot slots[SLOTS];
    ftmpy_sampler sampler; /* sampled mode (sampled.h) */
    /* The fresh-object shortcut (top of file): the block of the thread's
     * latest recorded allocation until anything else happens on the
     * thread (0 = none), the first complete frame and the code-death
     * count of its capture; walk_top is capture_code's copy of the first
     * record, valid while `walked`. */
    uintptr_t fresh;
    ftm_frame fresh_top;
    uint64_t fresh_deaths;
    ftm_frame walk_top;
    int walked;
    uint32_t tag; /* threads.h: this thread's tag, 0 until attributed */
} tcache;

/* One pointer of TLS, in the initial-exec model (python/CMakeLists.txt:
 * it comes from the loader's static TLS surplus, and reading it is one
 * %fs load); the state it points to is allocated on the thread's first
 * traced call and freed by the key's destructor at thread exit. */
static _Thread_local tcache *tls_cur;
static pthread_key_t tls_key;

static void tls_destroy(void *arg)
{
    tcache *t = arg;
    atomic_fetch_sub_explicit(&st_tls_bytes,
                              t->block_bytes + t->rblock_bytes + sizeof(*t),
                              memory_order_relaxed);
    free(t->block);
    free(t->rblock);
    free(t);
    tls_cur = NULL;
}

/* Out of line, like note_alloc_record below: the wrappers' fast paths
 * then need few registers and no large prologue. */
#define FTMPY_COLD __attribute__((noinline, cold))

FTMPY_COLD static tcache *tls_create(void)
{
    tcache *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    if (pthread_setspecific(tls_key, t) != 0) {
        free(t);
        return NULL;
    }
    atomic_fetch_add_explicit(&st_tls_bytes, sizeof(*t), memory_order_relaxed);
    tls_cur = t;
    return t;
}

/* The calling thread's state, or NULL if it cannot be allocated. */
static inline tcache *tls_get(void)
{
    tcache *t = tls_cur;
    if (t == NULL) {
        t = tls_create();
    }
    return t;
}

uint32_t ftmpy_hooks_thread_tag(void)
{
    return tls_cur != NULL ? tls_cur->tag : 0;
}

static void count_lost_capture(void)
{
    atomic_fetch_add_explicit(&st_capture_oom, 1, memory_order_relaxed);
}

int ftmpy_hooks_init(void)
{
    static int done;
    if (!done) {
        if (pthread_key_create(&tls_key, tls_destroy) != 0) {
            PyErr_SetString(PyExc_RuntimeError,
                            "fasttracemalloc: pthread_key_create failed");
            return -1;
        }
        done = 1;
    }
    return 0;
}

/* Frames compared per walk: the stored ones plus a shadow of SHADOW_EXTRA
 * older ones (see ftmpy_walk: a frame found unchanged there needs no read
 * of its code object). */
#define SHADOW_EXTRA 256u

static inline uint32_t shadow_cap(uint32_t limit)
{
    uint32_t c = limit + SHADOW_EXTRA;
    return c < FTM_MAX_NFRAME ? c : FTM_MAX_NFRAME;
}

/* Replace one of the thread's buffers by a zeroed one of `bytes` (libc,
 * never a traced allocator) and move st_tls_bytes accordingly.  Returns the
 * new block, or NULL with the old one kept. */
static void *replace_block(void **block, size_t *block_bytes, size_t bytes)
{
    void *blk = calloc(1, bytes);
    if (blk == NULL) {
        return NULL;
    }
    free(*block);
    atomic_fetch_add_explicit(&st_tls_bytes, bytes, memory_order_relaxed);
    atomic_fetch_sub_explicit(&st_tls_bytes, *block_bytes,
                              memory_order_relaxed);
    *block = blk;
    *block_bytes = bytes;
    return blk;
}

/* Make the thread's buffers fit nframe `limit`; resets both caches. */
static int tls_reserve(tcache *t, uint32_t limit)
{
    uint32_t nslot = limit <= SLOT_MAX_NFRAME ? limit : 0;
    uint32_t cap = shadow_cap(limit);
    size_t bytes = ((size_t)cap + limit) * sizeof(ftm_frame) +
                   (size_t)SLOTS * nslot * sizeof(ftm_frame) +
                   (size_t)limit * sizeof(uint16_t);
    void *blk = replace_block(&t->block, &t->block_bytes, bytes);
    if (blk == NULL) {
        return -1;
    }
    t->cap = cap;
    t->code_frames = blk;
    t->cooked = t->code_frames + cap;
    t->slot_frames = nslot ? t->cooked + limit : NULL;
    t->newcode = (uint16_t *)(t->cooked + limit + (size_t)SLOTS * nslot);
    memset(t->slots, 0, sizeof(t->slots));
    for (uint32_t i = 0; nslot && i < SLOTS; i++) {
        t->slots[i].tb.frames = t->slot_frames + (size_t)i * nslot;
    }
    t->version++;
    t->last = NULL;
    memset(&t->code_tb, 0, sizeof(t->code_tb));
    t->code_tb.frames = t->cooked;
    t->epoch = 0; /* the GIL path resets code_frames on first use */
    return 0;
}

/* The no-GIL path's two buffers of `limit` frames, allocated on the first
 * capture without the GIL (most threads never make one). */
static int tls_reserve_resolved(tcache *t, uint32_t limit)
{
    size_t bytes = (size_t)limit * 2 * sizeof(ftm_frame);
    ftm_frame *blk = replace_block(&t->rblock, &t->rblock_bytes, bytes);
    if (blk == NULL) {
        return -1;
    }
    t->rcap = limit;
    t->res_frames = blk;
    t->scratch = blk + limit;
    memset(&t->res_tb, 0, sizeof(t->res_tb));
    t->res_tb.frames = t->res_frames;
    return 0;
}

static ftm_traceback *unknown_tb(tcache *t)
{
    if (t->unk_tb.frames == NULL) {
        t->unk_tb.frames = &unknown_frame;
        t->unk_tb.nframe = 1;
        t->unk_tb.total_nframe = 1;
    }
    return &t->unk_tb;
}

/* GIL held (free-threaded: inside the gate).  Kind-SHAPE capture of
 * `ts`'s stack. */
static ftm_traceback *capture_code(tcache *t, PyThreadState *ts,
                                   uint16_t limit)
{
    uint64_t deaths = ftmpy_code_deaths();
    if (t->epoch != ftmpy_code_epoch || t->deaths != deaths ||
        !ftmpy_codeset_watching()) {
        /* a session step dropped the shapes, or a code object died (its
         * address may now hold another): compare nothing with the past */
        memset(t->code_frames, 0, (size_t)t->cap * sizeof(ftm_frame));
        memset(&t->code_tb, 0, sizeof(t->code_tb));
        t->code_tb.frames = t->cooked;
        t->epoch = ftmpy_code_epoch;
        t->deaths = deaths;
        t->version++;
        t->last = NULL;
    }
    int changed = 0;
    uint32_t nnew = 0;
    uint32_t total = ftmpy_walk(ts, t->code_frames, t->cooked, t->cap, limit,
                                1, &changed, t->newcode, &nnew);
    t->walked = 1;
    if (total == 0) {
        t->walk_top.a = t->walk_top.b = 0; /* as ftmpy_peek with no frame */
        return unknown_tb(t);
    }
    t->walk_top = t->code_frames[0]; /* before a failed shape zeroes it */
    for (uint32_t k = 0; k < nnew; k++) {
        uint16_t pos = t->newcode[k];
        ftm_frame *f = &t->code_frames[pos];
        PyObject *code = (PyObject *)(uintptr_t)f->a;
        uint32_t shape = ftmpy_codeset_shape(code);
        if (shape != 0) {
            t->cooked[pos].a = FTMPY_SHAPE_A(shape);
            continue;
        }
        /* no memory for the shape: resolve this frame right here */
        uint32_t fid = 0;
        if (ftmpy_filename_intern(ftmpy_code_filename(code), &fid) < 0) {
            atomic_fetch_add_explicit(&st_filename_oom, 1,
                                      memory_order_relaxed);
        }
        t->cooked[pos].b = (uint64_t)ftmpy_frame_line(f);
        t->cooked[pos].a = FTMPY_RESOLVED_A(fid);
        f->a = f->b = 0; /* never matches: looked up again next time */
        changed |= pos == 0 ? 1 : 2;
        atomic_fetch_add_explicit(&st_coderef_oom, 1, memory_order_relaxed);
    }
    uint16_t n = (uint16_t)(total < limit ? total : limit);
    ftm_traceback *tb = &t->code_tb;
    if ((changed & 2) || n != tb->nframe || total != tb->total_nframe) {
        t->version++;
        changed |= 2;
    }
    if (changed) {
        tb->nframe = n;
        tb->total_nframe = (uint16_t)total;
        tb->cached_id = FTM_TB_NONE;
    }
    if (t->slot_frames == NULL) {
        return tb; /* deep nframe: one-entry cache only */
    }
    if (!changed && t->last != NULL) {
        return t->last;
    }
    const ftm_frame *top = &t->code_frames[0];
    uint64_t h = (top->a ^ (top->b >> 1)) * UINT64_C(0x9E3779B97F4A7C15);
    /* two-way: the home slot and its neighbour; refill the older one */
    tb_slot *s = &t->slots[h >> 60];
    tb_slot *s2 = &t->slots[(h >> 60) ^ 1];
    if (s->version != t->version || s->top.a != top->a || s->top.b != top->b) {
        if (s2->version == t->version && s2->top.a == top->a &&
            s2->top.b == top->b) {
            t->last = &s2->tb;
            return t->last;
        }
        if (s->version == t->version && s->stamp > s2->stamp) {
            s = s2;
        }
        s->stamp = ++t->stamp;
        memcpy((ftm_frame *)s->tb.frames, t->cooked,
               (size_t)n * sizeof(ftm_frame));
        s->tb.nframe = n;
        s->tb.total_nframe = (uint16_t)total;
        s->tb.cached_id = FTM_TB_NONE;
        s->version = t->version;
        s->top = *top;
    }
    t->last = &s->tb;
    return t->last;
}

/* No GIL.  Kind-RESOLVED capture of the thread's own stack.  No shadow
 * comparison here (trust = 0): without references, a code address seen by
 * an earlier walk may have been reused. */
static ftm_traceback *capture_resolved(tcache *t, PyThreadState *own,
                                       uint16_t limit)
{
    if (own == NULL || ftmpy_is_finalizing()) {
        return unknown_tb(t);
    }
    if (t->rcap < limit && tls_reserve_resolved(t, limit) < 0) {
        count_lost_capture();
        return unknown_tb(t);
    }
    int changed = 0;
    uint32_t total = ftmpy_walk(own, t->scratch, NULL, limit, limit, 0,
                                &changed, NULL, NULL);
    if (total == 0) {
        return unknown_tb(t);
    }
    uint16_t n = (uint16_t)(total < limit ? total : limit);
    for (uint16_t i = 0; i < n; i++) {
        ftm_frame *f = &t->scratch[i];
        PyObject *code = (PyObject *)(uintptr_t)f->a;
        uint32_t fid = 0;
        if (ftmpy_filename_intern(ftmpy_code_filename(code), &fid) < 0) {
            atomic_fetch_add_explicit(&st_filename_oom, 1,
                                      memory_order_relaxed);
        }
        f->b = (uint64_t)ftmpy_frame_line(f);
        f->a = FTMPY_RESOLVED_A(fid);
    }
    ftm_traceback *tb = &t->res_tb;
    if (n != tb->nframe || total != tb->total_nframe ||
        memcmp(t->scratch, t->res_frames, (size_t)n * sizeof(ftm_frame))) {
        ftm_frame *tmp = t->res_frames;
        t->res_frames = t->scratch;
        t->scratch = tmp;
        tb->frames = t->res_frames;
        tb->nframe = n;
        tb->total_nframe = (uint16_t)total;
        tb->cached_id = FTM_TB_NONE;
    }
    return tb;
}

/* `code_ok`: the caller is inside the code-set gate (codeset.h; always 1
 * with a GIL).  When it is not, an attached thread captures kind-RESOLVED
 * frames instead (free-threaded builds, while stop/clear runs). */
static inline ftm_traceback *capture_frames(tcache *t, int raw, int code_ok)
{
    uint16_t limit =
        (uint16_t)atomic_load_explicit(&g_nframe, memory_order_relaxed);
    if (t->cap < shadow_cap(limit) && tls_reserve(t, limit) < 0) {
        atomic_fetch_add_explicit(&st_capture_oom, 1, memory_order_relaxed);
        return unknown_tb(t);
    }
    if (!raw) {
        PyThreadState *ts = ftmpy_tstate_current();
        return code_ok ? capture_code(t, ts, limit)
                       : capture_resolved(t, ts, limit);
    }
    PyThreadState *own = ftmpy_tstate_own();
    if (own != NULL && own == ftmpy_tstate_current()) {
        return code_ok ? capture_code(t, own, limit)
                       : capture_resolved(t, own, limit);
    }
    atomic_fetch_add_explicit(&st_nogil, 1, memory_order_relaxed);
    return capture_resolved(t, own, limit);
}

/* The capture with this thread's attribution tag (threads.h), which is
 * part of the engine's interned key: a descriptor whose tag changes (the
 * switch was toggled) loses its cached id. */
static inline ftm_traceback *capture(tcache *t, int raw, int code_ok)
{
    ftm_traceback *tb = capture_frames(t, raw, code_ok);
    uint32_t tag = 0;
    if (atomic_load_explicit(&ftmpy_threads_on, memory_order_relaxed)) {
        if (t->tag == 0) {
            t->tag = ftmpy_threads_assign();
        }
        tag = t->tag;
    }
    if (__builtin_expect(tb->thread_tag != tag, 0)) {
        tb->thread_tag = tag;
        tb->cached_id = FTM_TB_NONE;
    }
    return tb;
}

/* The capture and the record that hands its frames to the engine form one
 * gated region (codeset.h). */
static inline void record_alloc(tcache *t, int raw, void *p, size_t size)
{
    int gate = ftmpy_codeset_enter();
    if (gate == FTMPY_GATE_CLOSED) {
        /* racing with a start/stop/clear: taken as before it (codeset.h) */
        atomic_fetch_add_explicit(&st_lifecycle_skipped, 1,
                                  memory_order_relaxed);
        return;
    }
    t->walked = 0;
    ftm_record_alloc(0, (uintptr_t)p, size,
                     capture(t, raw, gate == FTMPY_GATE_IN));
    if (t->walked) { /* a kind-SHAPE capture of this thread's frames */
        t->fresh = (uintptr_t)p;
        t->fresh_top = t->walk_top;
        t->fresh_deaths = t->deaths;
    }
    ftmpy_codeset_leave(gate);
}

static inline int tracing(void)
{
    return atomic_load_explicit(&g_tracing, memory_order_relaxed);
}

/* Sampled mode (sampled.h): the session's period P, 0 in exact mode. */
static inline uint64_t sample_mean(void)
{
    return atomic_load_explicit(&ftmpy_sample_mean, memory_order_relaxed);
}

/* Sampled mode: p (just allocated, `size` bytes) was sampled.  It enters
 * the set first, so its free (which the program orders after this) finds
 * it; then it is recorded with its scaled size.  If the set cannot take
 * it, it is not traced at all (counted in the set's add_oom). */
static inline void record_sampled(tcache *t, int raw, void *p, size_t size,
                                  uint64_t mean)
{
    if (ftmpy_sampled_add((uintptr_t)p) == 0) {
        record_alloc(t, raw, p, ftmpy_sample_scale(size, mean));
    }
}

/* note_alloc's recording half, out of line: exact mode (mean == 0), or
 * a sampled allocation (the thread's sampler already said so). */
static __attribute__((noinline)) void
note_alloc_record(tcache *t, int raw, void *p, size_t size, uint64_t mean)
{
    if (mean == 0) {
        record_alloc(t, raw, p, size);
    } else {
        ftmpy_sampler_hit(&t->sampler);
        record_sampled(t, raw, p, size, mean);
    }
}

/* Any mode: p was just allocated.  In sampled mode the decision comes
 * before the capture: an unsampled allocation costs a counter update,
 * inline. */
static inline void note_alloc(tcache *t, int raw, void *p, size_t size)
{
    uint64_t mean = sample_mean();
    if (mean != 0 && ftmpy_sampler_skip(&t->sampler, size)) {
        return;
    }
    note_alloc_record(t, raw, p, size, mean);
}

/* Any mode: whether a free of p must be recorded.  Sampled mode: only if p
 * is a live sampled block (and it leaves the set); an unsampled free
 * reads its bucket's count in the set (a cached uint16, nearly always 0)
 * and costs the engine nothing. */
static inline int must_record_free(void *p)
{
    return sample_mean() == 0 ||
           (ftmpy_sampled_maybe((uintptr_t)p) &&
            ftmpy_sampled_take((uintptr_t)p)) ||
           atomic_load_explicit(&ftmpy_sample_record_all,
                                memory_order_relaxed);
}

/* Sampled mode's allocation fast path.  The request sizes for which the
 * real allocator makes no allocation of its own through a hooked domain,
 * except when it grows its own bookkeeping: the RAW domain (the system
 * allocator, or mimalloc from 3.15, never calls back), and requests up to
 * pymalloc's small-request threshold, 512 bytes on 3.11 to 3.15, in the
 * MEM and OBJ domains (a larger one is handed to PyMem_RawMalloc). */
#define FTMPY_NO_NEST_MAX 512u

/* Sampled mode: 1 if a malloc of `size` bytes is certainly not sampled --
 * it was counted down on the thread's sampler here and the caller passes
 * it to the real allocator with no further work (a tail call: no `busy`
 * around it, no frame); 0: take the general path, which decides again
 * (nothing changed here: skip_drawn() leaves a sampled decision and a
 * sampler of another session to skip()).  What skipping `busy`
 * changes: an allocation the real allocator makes for its own bookkeeping
 * during such a call (pymalloc growing its table of arenas or its
 * address map for a new arena: rare) is sampled like any other instead
 * of passing untraced as the builtin's reentrancy guard would have it. */
static inline int alloc_skipped(int raw, size_t size)
{
    if (sample_mean() == 0 || (!raw && size > FTMPY_NO_NEST_MAX)) {
        return 0;
    }
    tcache *t = tls_cur;
    if (t == NULL || t->busy || t->suppress) {
        return 0; /* the general path: create, pass through, pass through */
    }
    t->fresh = 0;
    return ftmpy_sampler_skip_drawn(&t->sampler, size);
}

/* do_alloc's general case, out of line so that the fast path above needs
 * no stack frame (the compiler saves registers for the whole function
 * before its first test otherwise). */
static __attribute__((noinline)) void *
alloc_traced(hook *h, int raw, int zero, size_t nelem, size_t elsize)
{
    void *p;
    if (!tracing()) {
        goto passthrough;
    }
    tcache *t = tls_get();
    if (t == NULL) {
        count_lost_capture(); /* allocated but not traced */
        goto passthrough;
    }
    t->fresh = 0;
    if (t->busy || t->suppress) {
        goto passthrough;
    }
    t->busy = 1;
    p = zero ? h->orig.calloc(h->orig.ctx, nelem, elsize)
             : h->orig.malloc(h->orig.ctx, nelem);
    if (p != NULL) {
        note_alloc(t, raw, p, zero ? nelem * elsize : nelem);
    }
    t->busy = 0;
    return p;
passthrough:
    return zero ? h->orig.calloc(h->orig.ctx, nelem, elsize)
                : h->orig.malloc(h->orig.ctx, nelem);
}

static inline void *do_alloc(hook *h, int raw, int zero, size_t nelem,
                             size_t elsize)
{
    if (!zero && alloc_skipped(raw, nelem)) {
        return h->orig.malloc(h->orig.ctx, nelem);
    }
    return alloc_traced(h, raw, zero, nelem, elsize);
}

/* do_free's general case (exact mode, or a block that may be sampled),
 * out of line so the sampled fast path below needs no stack frame. */
static __attribute__((noinline)) void free_traced(hook *h, void *p)
{
    if (tracing()) {
        tcache *t = tls_get();
        if (t == NULL) {
            if (must_record_free(p)) {
                ftm_record_free(0, (uintptr_t)p);
            }
        } else if (!t->busy) {
            t->fresh = 0;
            if (must_record_free(p)) {
                ftm_record_free(0, (uintptr_t)p);
            }
            t->busy = 1;
            h->orig.free(h->orig.ctx, p);
            t->busy = 0;
            return;
        }
    }
    h->orig.free(h->orig.ctx, p);
}

static inline void do_free(hook *h, void *p)
{
    if (p == NULL) {
        return;
    }
    /* Sampled mode, a block that is certainly not sampled (nearly every
     * free): nothing to record, and nothing of the thread's state to read
     * or write -- straight to the real free (a tail call, no frame).
     * Skipping `busy` is safe: a free made inside the real free finds its
     * own block unsampled, or takes free_traced and is recorded (it is
     * sampled, so it was allocated at the top level and its free must be
     * recorded); skipping the `fresh` reset is safe: `fresh` names a block
     * just recorded, which is sampled, and whose free therefore never
     * takes this path. */
    if (atomic_load_explicit(&ftmpy_sample_free_fast, memory_order_relaxed) &&
        !ftmpy_sampled_maybe((uintptr_t)p)) {
        h->orig.free(h->orig.ctx, p);
        return;
    }
    free_traced(h, p);
}

/* Sampled mode, p != NULL, busy set.  A realloc is a free of the old
 * block and an allocation of `size` bytes, sampled on its own: the block
 * that results is traced with probability q(size), like any other.
 *   old sampled, new sampled: the engine's realloc begin/end (in place or
 *     moved), the new address enters the set;
 *   old sampled only: the old trace is removed before the call (if the
 *     realloc then fails, the surviving old block is untraced: a loss that
 *     needs a failed realloc);
 *   new sampled only: recorded as an allocation after the call. */
static void *realloc_sampled(tcache *t, hook *h, int raw, void *p, size_t size,
                             uint64_t mean)
{
    int old_s = ftmpy_sampled_take((uintptr_t)p);
    int new_s = ftmpy_sampler_take(&t->sampler, size);
    void *np;
    if (old_s && new_s) {
        ftm_realloc_ticket tk = ftm_record_realloc_begin(0, (uintptr_t)p);
        np = h->orig.realloc(h->orig.ctx, p, size);
        void *live = np != NULL ? np : p; /* the block we now own */
        int in_set = ftmpy_sampled_add((uintptr_t)live) == 0;
        int gate = ftmpy_codeset_enter();
        ftm_record_realloc_end(
            tk, 0, (uintptr_t)p, (uintptr_t)np, ftmpy_sample_scale(size, mean),
            np != NULL ? capture(t, raw, gate == FTMPY_GATE_IN) : NULL);
        ftmpy_codeset_leave(gate);
        if (!in_set) {
            /* not in the set: its free would never be recorded */
            ftm_record_free(0, (uintptr_t)live);
        }
        return np;
    }
    if (old_s) {
        ftm_record_free(0, (uintptr_t)p);
        return h->orig.realloc(h->orig.ctx, p, size);
    }
    np = h->orig.realloc(h->orig.ctx, p, size);
    if (np != NULL && new_s) {
        record_sampled(t, raw, np, size, mean);
    }
    return np;
}

static inline void *do_realloc(hook *h, int raw, void *p, size_t size)
{
    if (!tracing()) {
        return h->orig.realloc(h->orig.ctx, p, size);
    }
    tcache *t = tls_get();
    if (t == NULL) {
        /* no state: the old trace goes, the new block is not traced */
        count_lost_capture();
        if (p != NULL && must_record_free(p)) {
            ftm_record_free(0, (uintptr_t)p);
        }
        return h->orig.realloc(h->orig.ctx, p, size);
    }
    if (t->busy) {
        return h->orig.realloc(h->orig.ctx, p, size);
    }
    void *np;
    t->fresh = 0;
    t->busy = 1;
    uint64_t mean = sample_mean();
    if (t->suppress) {
        if (p != NULL && must_record_free(p)) {
            ftm_record_free(0, (uintptr_t)p);
        }
        np = h->orig.realloc(h->orig.ctx, p, size);
    } else if (p == NULL) {
        np = h->orig.realloc(h->orig.ctx, p, size);
        if (np != NULL) {
            note_alloc(t, raw, np, size);
        }
    } else if (mean != 0) {
        np = realloc_sampled(t, h, raw, p, size, mean);
    } else {
        ftm_realloc_ticket tk = ftm_record_realloc_begin(0, (uintptr_t)p);
        np = h->orig.realloc(h->orig.ctx, p, size);
        int gate = ftmpy_codeset_enter();
        ftm_record_realloc_end(
            tk, 0, (uintptr_t)p, (uintptr_t)np, size,
            np != NULL ? capture(t, raw, gate == FTMPY_GATE_IN) : NULL);
        ftmpy_codeset_leave(gate);
    }
    t->busy = 0;
    return np;
}

#define DEFINE_WRAPPERS(NAME, IDX, RAW)                                       \
    static void *NAME##_malloc(void *ctx, size_t size)                        \
    {                                                                         \
        (void)ctx;                                                            \
        return do_alloc(&hooks[IDX], RAW, 0, size, 1);                        \
    }                                                                         \
    static void *NAME##_calloc(void *ctx, size_t nelem, size_t elsize)        \
    {                                                                         \
        (void)ctx;                                                            \
        return do_alloc(&hooks[IDX], RAW, 1, nelem, elsize);                  \
    }                                                                         \
    static void *NAME##_realloc(void *ctx, void *p, size_t size)              \
    {                                                                         \
        (void)ctx;                                                            \
        return do_realloc(&hooks[IDX], RAW, p, size);                         \
    }                                                                         \
    static void NAME##_free(void *ctx, void *p)                               \
    {                                                                         \
        (void)ctx;                                                            \
        do_free(&hooks[IDX], p);                                              \
    }

DEFINE_WRAPPERS(raw, H_RAW, 1)
DEFINE_WRAPPERS(mem, H_MEM, 0)
DEFINE_WRAPPERS(obj, H_OBJ, 0)

static const PyMemAllocatorEx wrappers[H_COUNT] = {
    {&hooks[H_RAW], raw_malloc, raw_calloc, raw_realloc, raw_free},
    {&hooks[H_MEM], mem_malloc, mem_calloc, mem_realloc, mem_free},
    {&hooks[H_OBJ], obj_malloc, obj_calloc, obj_realloc, obj_free},
};

/* in_chain[i]: our wrapper is in domain i's allocator chain (we installed
 * it and have not restored the original since).  If another hook was
 * installed on top of ours (e.g. the builtin tracemalloc started while we
 * were tracing), uninstall cannot take ours out without breaking theirs:
 * our wrapper stays in the chain, passing through while not tracing, and
 * the next install must NOT wrap again -- our wrappers ignore ctx, so a
 * second copy above theirs would call theirs, which calls ours, forever.
 * GIL only. */
static int in_chain[H_COUNT];

/* The fresh-object shortcut's frame and code-death guards (top of file). */
static inline int fresh_unchanged(const tcache *t)
{
    ftm_frame top;
    ftmpy_peek(ftmpy_tstate_current(), &top);
    return top.a == t->fresh_top.a && top.b == t->fresh_top.b &&
           ftmpy_code_deaths() == t->fresh_deaths;
}

/* An object was just created (hooks.h): re-stamp its block's trace, if
 * it has one, with the current traceback.  Called with the GIL (attached)
 * while tracing; outside a wrapper and outside a query only, as the
 * builtin's reentrancy flag.  Sampled mode: only a sampled block has a
 * trace to re-stamp; the set says which, without an engine event. */
void ftmpy_hooks_new_object(PyObject *op)
{
    if (sample_mean() != 0 &&
        !atomic_load_explicit(&ftmpy_sample_restamp, memory_order_relaxed)) {
        return; /* sampled mode re-stamps only if asked (sampled.h) */
    }
    tcache *t = tls_get();
    if (t == NULL) {
        count_lost_capture();
        return;
    }
    if (t->busy || t->suppress) {
        return;
    }
    uintptr_t block =
        (uintptr_t)op - (uintptr_t)ftmpy_object_preheader(Py_TYPE(op));
    uintptr_t fresh = t->fresh;
    t->fresh = 0; /* one-shot */
    if (block == fresh && fresh_unchanged(t)) {
        return; /* the allocation just recorded this traceback */
    }
    if (sample_mean() == 0 || ftmpy_sampled_has(block) ||
        atomic_load_explicit(&ftmpy_sample_record_all, memory_order_relaxed)) {
        t->busy = 1;
        int gate = ftmpy_codeset_enter();
        if (gate == FTMPY_GATE_CLOSED) {
            atomic_fetch_add_explicit(&st_lifecycle_skipped, 1,
                                      memory_order_relaxed);
        } else {
            ftm_record_retrace(0, block, capture(t, 0, gate == FTMPY_GATE_IN));
            ftmpy_codeset_leave(gate);
        }
        t->busy = 0;
    }
}

#if FTMPY_HAVE_REFTRACER
/* The tracer that was installed when ours went in (called after ours);
 * GIL only.  in_ref_event breaks a chain that leads back to us (someone
 * chained on top of ours, then ours was installed again on top of them). */
static PyRefTracer prev_tracer;
static void *prev_tracer_data;
static _Thread_local int in_ref_event;

static int on_ref_event(PyObject *op, PyRefTracerEvent event, void *data)
{
    (void)data;
    /* Fast paths while no other tracer is chained below ours (the usual
     * case; prev_tracer is only written under the GIL/module lock while
     * hooks are swapped): a DESTROY needs nothing, and in sampled mode a
     * CREATE of an unsampled block (nearly all) needs nothing either --
     * neither touches the thread's state. */
    if (prev_tracer == NULL) {
        if (event != PyRefTracer_CREATE || !tracing()) {
            return 0;
        }
        if (sample_mean() != 0 &&
            !atomic_load_explicit(&ftmpy_sample_record_all,
                                  memory_order_relaxed) &&
            !ftmpy_sampled_has(
                (uintptr_t)op -
                (uintptr_t)ftmpy_object_preheader(Py_TYPE(op)))) {
            return 0;
        }
    }
    if (in_ref_event) {
        return 0;
    }
    in_ref_event = 1;
    if (event == PyRefTracer_CREATE && tracing()) {
        ftmpy_hooks_new_object(op);
    }
    int rc = 0;
    if (prev_tracer != NULL) {
        rc = prev_tracer(op, event, prev_tracer_data);
    }
    in_ref_event = 0;
    return rc;
}

static void tracer_install(void)
{
    void *data = NULL;
    PyRefTracer cur = PyRefTracer_GetTracer(&data);
    if (cur == on_ref_event) {
        return;
    }
    PyRefTracer saved = prev_tracer;
    void *saved_data = prev_tracer_data;
    prev_tracer = cur;
    prev_tracer_data = data;
    if (PyRefTracer_SetTracer(on_ref_event, NULL) < 0) {
        prev_tracer = saved;
        prev_tracer_data = saved_data;
        PyErr_Clear();
    }
}

/* Put the saved tracer back if ours is still the installed one; if someone
 * installed theirs on top of ours, ours stays below theirs (passing events
 * on while not tracing). */
static void tracer_uninstall(void)
{
    void *data = NULL;
    if (PyRefTracer_GetTracer(&data) == on_ref_event &&
        PyRefTracer_SetTracer(prev_tracer, prev_tracer_data) == 0) {
        prev_tracer = NULL;
        prev_tracer_data = NULL;
    }
}
#else
static void tracer_install(void)
{
}
static void tracer_uninstall(void)
{
}
#endif

void ftmpy_hooks_set_nframe(uint16_t nframe)
{
    atomic_store_explicit(&g_nframe, nframe, memory_order_relaxed);
}

void ftmpy_hooks_install(uint16_t nframe)
{
    atomic_store_explicit(&g_nframe, nframe, memory_order_relaxed);
    for (int i = 0; i < H_COUNT; i++) {
        if (in_chain[i]) {
            continue; /* on top, or below someone else's hook */
        }
        PyMemAllocatorEx cur;
        PyMem_GetAllocator(hooks[i].domain, &cur);
        if (memcmp(&cur, &hooks[i].orig, sizeof(cur)) != 0) {
            hooks[i].orig = cur;
        }
        PyMemAllocatorEx ours = wrappers[i];
        ours.ctx = hooks[i].orig.ctx; /* see "the allocator swap" above */
        PyMem_SetAllocator(hooks[i].domain, &ours);
        in_chain[i] = 1;
    }
    int newobj =
        sample_mean() == 0 ||
        atomic_load_explicit(&ftmpy_sample_restamp, memory_order_relaxed);
    if (newobj) {
        tracer_install(); /* sampled mode: only if asked (sampled.h) */
    }
    atomic_store_explicit(&ftmpy_hooks_newobj_wanted, newobj,
                          memory_order_relaxed);
    atomic_store_explicit(&g_tracing, 1, memory_order_relaxed);
}

void ftmpy_hooks_uninstall(void)
{
    atomic_store_explicit(&g_tracing, 0, memory_order_relaxed);
    atomic_store_explicit(&ftmpy_hooks_newobj_wanted, 0, memory_order_relaxed);
    for (int i = 0; i < H_COUNT; i++) {
        PyMemAllocatorEx cur;
        PyMem_GetAllocator(hooks[i].domain, &cur);
        if (in_chain[i] && cur.malloc == wrappers[i].malloc) {
            PyMem_SetAllocator(hooks[i].domain, &hooks[i].orig);
            in_chain[i] = 0;
        }
    }
    tracer_uninstall();
}

void ftmpy_suppress_begin(void)
{
    tcache *t = tls_get();
    if (t != NULL) {
        t->suppress++;
    }
}

void ftmpy_suppress_end(void)
{
    tcache *t = tls_cur;
    if (t != NULL && t->suppress > 0) {
        t->suppress--;
    }
}

int ftmpy_suppress_push(void)
{
    tcache *t = tls_get();
    if (t == NULL) {
        return -1;
    }
    t->suppress++;
    return 0;
}

int ftmpy_suppress_pop(void)
{
    tcache *t = tls_cur;
    if (t == NULL || t->suppress <= 0) {
        return -1;
    }
    t->suppress--;
    return 0;
}

void ftmpy_hooks_stats(ftmpy_hook_stats *out)
{
    out->capture_oom =
        atomic_load_explicit(&st_capture_oom, memory_order_relaxed);
    out->coderef_oom =
        atomic_load_explicit(&st_coderef_oom, memory_order_relaxed);
    out->filename_oom =
        atomic_load_explicit(&st_filename_oom, memory_order_relaxed);
    out->nogil_captures =
        atomic_load_explicit(&st_nogil, memory_order_relaxed);
    out->lifecycle_skipped =
        atomic_load_explicit(&st_lifecycle_skipped, memory_order_relaxed);
    out->tls_bytes = atomic_load_explicit(&st_tls_bytes, memory_order_relaxed);
}

int ftmpy_hooks_is_tracing(void)
{
    return tracing();
}

int ftmpy_hooks_track(unsigned int domain, uintptr_t ptr, size_t size)
{
    tcache *t = tls_get();
    if (t == NULL) {
        count_lost_capture();
        return -1;
    }
    t->fresh = 0;
    if (t->suppress) {
        return 0;
    }
    /* `busy` keeps allocations made while capturing out of the engine;
     * saved and restored, because a custom allocator under our wrapper may
     * call Track from inside it (the capture buffers are not in use
     * then). */
    int was_busy = t->busy;
    t->busy = 1;
    int gate = ftmpy_codeset_enter();
    int rc = ftm_record_alloc(domain, ptr, size,
                              capture(t, 1, gate == FTMPY_GATE_IN));
    ftmpy_codeset_leave(gate);
    t->busy = was_busy;
    return rc == FTM_OK ? 0 : -1;
}

int ftmpy_hooks_untrack(unsigned int domain, uintptr_t ptr)
{
    if (tls_cur != NULL) {
        tls_cur->fresh = 0;
    }
    ftm_record_free(domain, ptr);
    return 0;
}
