/*
 * memory.c -- the engine's own memory: jemalloc private arena or libc.
 *
 * Owns: the backend choice, the jemalloc entry points found by dlsym, the
 * private arena index, the engine's byte counter and the test-only failure
 * injector.
 *
 * Why dlsym: core/ is linked into a dlopen'ed CPython extension, and an
 * extension that links libjemalloc cannot be imported (initial-exec TLS; see
 * shared/REFERENCE.md).  So jemalloc is used only when it is already in the
 * process (LD_PRELOAD, or an executable such as our tests linking it), found
 * with dlsym(RTLD_DEFAULT, ...).  The MALLOCX_* flag encodings are written
 * out below (stable jemalloc ABI since 4.0) so core/ needs no jemalloc
 * header at build time.
 *
 * Why our own counter rather than the arena stats as the figure behind
 * ftm_mem_bytes(): reading stats needs an "epoch" mallctl that refreshes
 * every arena's stats under their locks (microseconds, and the engine asks
 * for its size on every get_tracemalloc_memory() and in benchmarks), and
 * jemalloc can be built without stats.  Counting nallocx() sizes gives the
 * same number the arena reports (its allocated bytes, size-class rounded)
 * for the cost of one relaxed atomic add; ftm_mem_arena_stats exposes the
 * real stats so the tests can check that the two agree.
 *
 * Threads and memory ordering (shared fields):
 *   g_backend     _Atomic int; written by ftm_mem_init under g_init_lock
 *                 (release), read by alloc/free (acquire).  Changes only
 *                 while g_bytes == 0, i.e. no block of the old backend is
 *                 live.  An allocation reads g_backend and counts its bytes
 *                 inside a guard (g_allocating / g_switching below), so
 *                 ftm_mem_init never sees g_bytes == 0 while a block of the
 *                 old backend is being allocated: such a block would later
 *                 be freed through the new backend.  A free reads g_backend
 *                 before it subtracts its bytes, so no switch can come
 *                 between (g_bytes != 0 until the subtraction).
 *   g_allocating, g_switching
 *                 seq_cst (a Dekker pair): an allocation increments
 *                 g_allocating, then loads g_switching and, if set, backs
 *                 out and retries; ftm_mem_init stores g_switching = true,
 *                 then waits for g_allocating == 0 (its acquire of the last
 *                 release-decrement makes every counted byte visible), then
 *                 decides, then clears g_switching.  One of the two always
 *                 sees the other.  The guard costs two atomics per engine
 *                 allocation (rings, table growth, snapshots), never a
 *                 producer's record.
 *   g_je          jemalloc entry points + arena, written once under
 *                 g_init_lock before g_backend is released as JEMALLOC,
 *                 never changed afterwards (the arena is reused).
 *   g_bytes       _Atomic size_t, relaxed adds/subs: a statistic, no other
 *                 data is published through it.
 *   g_inject      _Atomic long countdown, CAS-decremented; -1 = off.
 *   g_init_lock   held across fork() by the engine's atfork handlers (see
 *                 ftm_mem_fork_prepare), so a child never inherits it locked.
 */
#include "memory.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* jemalloc's mallocx flag encodings (jemalloc/jemalloc.h, ABI-stable). */
#define FTM_JE_ZERO 0x40
#define FTM_JE_TCACHE_NONE (((-1) + 2) << 8)
#define FTM_JE_ARENA(a) ((int)(((unsigned)(a) + 1u) << 20))

typedef void *(*ftm_mallocx_fn)(size_t, int);
typedef void (*ftm_dallocx_fn)(void *, int);
typedef void (*ftm_sdallocx_fn)(void *, size_t, int);
typedef size_t (*ftm_nallocx_fn)(size_t, int);
typedef int (*ftm_mallctl_fn)(const char *, void *, size_t *, void *, size_t);

static struct {
    bool resolved;  /* dlsym done (whatever its outcome) */
    bool available; /* mallocx, dallocx, nallocx, mallctl all found */
    bool arena_ok;  /* arena created */
    unsigned arena;
    int flags; /* MALLOCX_ARENA(arena) | MALLOCX_TCACHE_NONE */
    ftm_mallocx_fn mallocx;
    ftm_dallocx_fn dallocx;
    ftm_sdallocx_fn sdallocx; /* optional */
    ftm_nallocx_fn nallocx;
    ftm_mallctl_fn mallctl;
} g_je;

static pthread_mutex_t g_init_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int g_backend = FTM_MEM_AUTO; /* AUTO = not initialised */
static _Atomic size_t g_bytes;
static _Atomic long g_inject = -1;
/* Backend-switch guard (see the contract above): allocations between
 * reading g_backend and counting their bytes, and "a switch is deciding". */
static _Atomic unsigned long g_allocating;
static _Atomic bool g_switching;

/* Resolve jemalloc and create the private arena.  Under g_init_lock. */
static bool je_setup(void)
{
    if (!g_je.resolved) {
        g_je.resolved = true;
        g_je.mallocx = (ftm_mallocx_fn)dlsym(RTLD_DEFAULT, "mallocx");
        g_je.dallocx = (ftm_dallocx_fn)dlsym(RTLD_DEFAULT, "dallocx");
        g_je.sdallocx = (ftm_sdallocx_fn)dlsym(RTLD_DEFAULT, "sdallocx");
        g_je.nallocx = (ftm_nallocx_fn)dlsym(RTLD_DEFAULT, "nallocx");
        g_je.mallctl = (ftm_mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
        g_je.available =
            g_je.mallocx && g_je.dallocx && g_je.nallocx && g_je.mallctl;
    }
    if (!g_je.available)
        return false;
    if (!g_je.arena_ok) {
        unsigned a = 0;
        size_t sz = sizeof(a);
        if (g_je.mallctl("arenas.create", &a, &sz, NULL, 0) != 0)
            return false;
        g_je.arena = a;
        g_je.flags = FTM_JE_ARENA(a) | FTM_JE_TCACHE_NONE;
        g_je.arena_ok = true;
    }
    return true;
}

int ftm_mem_init(ftm_mem_backend want)
{
    if (want != FTM_MEM_AUTO && want != FTM_MEM_PORTABLE &&
        want != FTM_MEM_JEMALLOC)
        return FTM_EINVAL;
    int rc = FTM_OK;
    pthread_mutex_lock(&g_init_lock);
    /* Hold new allocations off and let those in flight count their bytes,
     * so that g_bytes == 0 below really means no block is live. */
    atomic_store(&g_switching, true);
    while (atomic_load(&g_allocating) != 0)
        sched_yield();
    int cur = atomic_load_explicit(&g_backend, memory_order_relaxed);
    if (cur != FTM_MEM_AUTO &&
        atomic_load_explicit(&g_bytes, memory_order_relaxed) != 0) {
        /* Blocks of the current backend are live: keep it. */
        if (want != FTM_MEM_AUTO && (int)want != cur)
            rc = FTM_EINVAL;
    } else {
        int next;
        if (want == FTM_MEM_PORTABLE) {
            next = FTM_MEM_PORTABLE;
        } else if (je_setup()) {
            next = FTM_MEM_JEMALLOC;
        } else if (want == FTM_MEM_JEMALLOC) {
            rc = FTM_EINVAL;
            next = cur; /* unchanged (maybe still uninitialised) */
        } else {
            next = FTM_MEM_PORTABLE;
        }
        atomic_store_explicit(&g_backend, next, memory_order_release);
    }
    atomic_store(&g_switching, false);
    pthread_mutex_unlock(&g_init_lock);
    return rc;
}

static int backend(void)
{
    int b = atomic_load_explicit(&g_backend, memory_order_acquire);
    if (b == FTM_MEM_AUTO) {
        /* Used before ftm_mem_init: pick the default once. */
        (void)ftm_mem_init(FTM_MEM_AUTO);
        b = atomic_load_explicit(&g_backend, memory_order_acquire);
    }
    return b;
}

/* True if this allocation must fail (test injection). */
static bool inject_fail(void)
{
    long v = atomic_load_explicit(&g_inject, memory_order_relaxed);
    while (v >= 0) {
        long next = v == 0 ? -1 : v - 1;
        if (atomic_compare_exchange_weak_explicit(&g_inject, &v, next,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            return v == 0;
    }
    return false;
}

static void *mem_alloc(size_t size, bool zero)
{
    if (inject_fail())
        return NULL;
    if (size == 0)
        size = 1; /* a distinct block, like malloc(0) usually is */
    /* First use: choose a backend now, outside the guard below. */
    (void)backend();
    for (;;) {
        atomic_fetch_add(&g_allocating, 1);
        if (!atomic_load(&g_switching))
            break;
        atomic_fetch_sub(&g_allocating, 1);
        sched_yield();
    }
    void *p;
    size_t acct;
    if (atomic_load_explicit(&g_backend, memory_order_acquire) ==
        FTM_MEM_JEMALLOC) {
        int flags = g_je.flags | (zero ? FTM_JE_ZERO : 0);
        p = g_je.mallocx(size, flags);
        acct = g_je.nallocx(size, g_je.flags);
    } else {
        p = zero ? calloc(1, size) : malloc(size);
        acct = size;
    }
    if (p)
        atomic_fetch_add_explicit(&g_bytes, acct, memory_order_relaxed);
    atomic_fetch_sub_explicit(&g_allocating, 1, memory_order_release);
    return p;
}

void *ftm_mem_alloc(size_t size)
{
    return mem_alloc(size, false);
}

void *ftm_mem_calloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    return mem_alloc(n * size, true);
}

void ftm_mem_free(void *p, size_t size)
{
    if (!p)
        return;
    if (size == 0)
        size = 1;
    size_t acct;
    if (atomic_load_explicit(&g_backend, memory_order_acquire) ==
        FTM_MEM_JEMALLOC) {
        acct = g_je.nallocx(size, g_je.flags);
        if (g_je.sdallocx)
            g_je.sdallocx(p, size, g_je.flags);
        else
            g_je.dallocx(p, g_je.flags);
    } else {
        acct = size;
        free(p);
    }
    atomic_fetch_sub_explicit(&g_bytes, acct, memory_order_relaxed);
}

void ftm_mem_fork_prepare(void)
{
    pthread_mutex_lock(&g_init_lock);
}

void ftm_mem_fork_parent(void)
{
    pthread_mutex_unlock(&g_init_lock);
}

void ftm_mem_fork_child(void)
{
    pthread_mutex_init(&g_init_lock, NULL);
    /* Allocations of vanished threads never finish (their blocks, if any,
     * are leaked uncounted); nothing is switching (prepare held the lock). */
    atomic_store(&g_allocating, 0);
    atomic_store(&g_switching, false);
}

size_t ftm_mem_bytes(void)
{
    return atomic_load_explicit(&g_bytes, memory_order_relaxed);
}

ftm_mem_backend ftm_mem_backend_in_use(void)
{
    return (ftm_mem_backend)backend();
}

void ftm_mem_inject_failure(long after_n)
{
    atomic_store_explicit(&g_inject, after_n < 0 ? -1 : after_n,
                          memory_order_relaxed);
}

int ftm_mem_arena_stats(size_t *allocated)
{
    if (backend() != FTM_MEM_JEMALLOC)
        return FTM_EINVAL;
    uint64_t epoch = 1;
    size_t esz = sizeof(epoch);
    if (g_je.mallctl("epoch", &epoch, &esz, &epoch, esz) != 0)
        return FTM_EINVAL;
    size_t total = 0;
    static const char *const kinds[] = {"small", "large"};
    for (int i = 0; i < 2; i++) {
        char name[64];
        size_t v = 0, vsz = sizeof(v);
        snprintf(name, sizeof(name), "stats.arenas.%u.%s.allocated",
                 g_je.arena, kinds[i]);
        if (g_je.mallctl(name, &v, &vsz, NULL, 0) != 0)
            return FTM_EINVAL;
        total += v;
    }
    *allocated = total;
    return FTM_OK;
}
