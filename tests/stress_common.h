/*
 * stress_common.h -- helpers shared by the engine's multi-threaded tests:
 * the size scale (FTM_STRESS_SCALE=sanitizer shrinks runs), a per-thread
 * PRNG, synthetic tracebacks whose frames carry a tag, tag lookup from a
 * traceback id, and a watchdog that turns a hang into a failure.
 * Header-only; each test includes it once.
 */
#ifndef FTM_TESTS_STRESS_COMMON_H
#define FTM_TESTS_STRESS_COMMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <time.h>

#include "fasttracemalloc.h"

/* Divisor applied to iteration counts: 1 in Release runs; under
 * FTM_STRESS_SCALE=sanitizer (or in a sanitizer build) 4 for ASan+UBSan and
 * 10 for TSan, which is several times slower. */
static inline unsigned stress_divisor(void)
{
#if defined(__SANITIZE_THREAD__)
    const unsigned sanitized = 10;
#else
    const unsigned sanitized = 4;
#endif
    const char *s = getenv("FTM_STRESS_SCALE");
    if (s != NULL && strcmp(s, "sanitizer") == 0) {
        return sanitized;
    }
#ifdef FTM_SANITIZER_BUILD
    return sanitized;
#else
    return 1;
#endif
}

static inline uint64_t stress_scaled(uint64_t n)
{
    uint64_t v = n / stress_divisor();
    return v ? v : 1;
}

typedef struct stress_rng {
    uint64_t s;
} stress_rng;

static inline uint64_t stress_next(stress_rng *r)
{
    /* xorshift64* */
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static inline uint32_t stress_below(stress_rng *r, uint32_t n)
{
    return (uint32_t)((stress_next(r) >> 32) % n);
}

#define STRESS_NFRAME 3

/* A traceback whose frames all carry `tag` (frames[i] = {tag, i}). */
typedef struct stress_tb {
    ftm_frame frames[STRESS_NFRAME];
    ftm_traceback tb;
} stress_tb;

static inline void stress_tb_init(stress_tb *t, uint64_t tag)
{
    for (int i = 0; i < STRESS_NFRAME; i++) {
        t->frames[i].a = tag;
        t->frames[i].b = (uint64_t)i;
    }
    t->tb.frames = t->frames;
    t->tb.nframe = STRESS_NFRAME;
    t->tb.total_nframe = STRESS_NFRAME;
    t->tb.cached_id = FTM_TB_NONE;
    t->tb.cached_generation = 0;
}

/* The tag of an interned traceback, or UINT64_MAX if the id is unknown or
 * the frames are not a stress traceback. */
static inline uint64_t stress_tag_of(ftm_tb_id id)
{
    const ftm_frame *f = NULL;
    uint16_t n = 0, total = 0;
    if (ftm_traceback_get(id, &f, &n, &total) != FTM_OK ||
        n != STRESS_NFRAME) {
        return UINT64_MAX;
    }
    for (int i = 0; i < STRESS_NFRAME; i++) {
        if (f[i].a != f[0].a || f[i].b != (uint64_t)i) {
            return UINT64_MAX;
        }
    }
    return f[0].a;
}

static inline void stress_sleep_us(unsigned us)
{
    struct timespec ts = {0, (long)us * 1000L};
    nanosleep(&ts, NULL);
}

/* ---- watchdog ------------------------------------------------------------
 * "Never a hang" is part of the engine's contract, so a test of it must
 * fail, not sit until ctest's timeout, when the engine hangs.  Arm before
 * the call that could hang, disarm after it.  If the call has not returned
 * within `seconds` (multiplied by the sanitizer divisor), the watchdog
 * thread prints what hung and ends the process with status 1: a hung
 * engine cannot be stopped cleanly, so no later test could run anyway.
 * One watchdog at a time; the mutex and condition variable order `done`.
 */
static struct stress_watchdog {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    bool done; /* lock */
    unsigned seconds;
    const char *what;
    pthread_t th;
} stress_wd = {.lock = PTHREAD_MUTEX_INITIALIZER,
               .cv = PTHREAD_COND_INITIALIZER};

static inline void *stress_watchdog_main(void *arg)
{
    (void)arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += stress_wd.seconds;
    pthread_mutex_lock(&stress_wd.lock);
    while (!stress_wd.done) {
        if (pthread_cond_timedwait(&stress_wd.cv, &stress_wd.lock, &until) !=
                0 &&
            !stress_wd.done) {
            fprintf(stderr,
                    "[ WATCHDOG ] %s did not return within %u s: the engine "
                    "hangs\n",
                    stress_wd.what, stress_wd.seconds);
            fflush(stdout);
            _exit(1);
        }
    }
    pthread_mutex_unlock(&stress_wd.lock);
    return NULL;
}

static inline void stress_watchdog_arm(unsigned seconds, const char *what)
{
    stress_wd.done = false;
    stress_wd.seconds = seconds * stress_divisor();
    stress_wd.what = what;
    if (pthread_create(&stress_wd.th, NULL, stress_watchdog_main, NULL) != 0) {
        fprintf(stderr, "[ WATCHDOG ] cannot start\n");
        _exit(1);
    }
}

static inline void stress_watchdog_disarm(void)
{
    pthread_mutex_lock(&stress_wd.lock);
    stress_wd.done = true;
    pthread_cond_signal(&stress_wd.cv);
    pthread_mutex_unlock(&stress_wd.lock);
    pthread_join(stress_wd.th, NULL);
}

#endif /* FTM_TESTS_STRESS_COMMON_H */
