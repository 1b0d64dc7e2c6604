/*
 * order_primitives.c -- what one event's ordering point costs on this
 * machine, without the engine (issue 8): the counter order's seq_cst
 * fetch_add on one shared line (1 thread, then 2 threads hammering it), and
 * the clock order's reads of the TSC (lfence;rdtsc for alloc-like stamps,
 * plain rdtsc for free-like ones) plus its marker stores on a private line.
 * Also the cross-core check of order_clock.h's hypothesis H: two threads
 * pinned to cores 0 and 1 hand a TSC value back and forth through one
 * atomic; the receiver's fresh read minus the sender's value must be > 0
 * (printed: the minimum over 200000 hand-overs, in TSC ticks).
 *
 * Owns nothing; prints figures, asserts nothing.  Threads: its own.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define N 4000000
#define HANDOFFS 200000

static _Atomic uint64_t shared_counter;
static _Alignas(64) _Atomic uint64_t marker;

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static inline uint64_t tsc_ordered(void)
{
    uint32_t lo, hi;
    __asm__ __volatile__("lfence\n\trdtsc" : "=a"(lo), "=d"(hi)::"memory");
    return ((uint64_t)hi << 32) | lo;
}

static inline uint64_t tsc_early(void)
{
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi)::"memory");
    return ((uint64_t)hi << 32) | lo;
}

static volatile uint64_t sink;

static void *xadd_loop(void *arg)
{
    double *ns = arg;
    double t0 = now_ns();
    uint64_t s = 0;
    for (int i = 0; i < N; i++) {
        s += atomic_fetch_add(&shared_counter, 1);
    }
    *ns = (now_ns() - t0) / N;
    sink = s;
    return NULL;
}

static _Atomic uint64_t box;
static _Atomic int turn;
static int64_t min_delta[2] = {INT64_MAX, INT64_MAX};

static void *pingpong(void *arg)
{
    int me = (int)(intptr_t)arg;
    cpu_set_t c;
    CPU_ZERO(&c);
    CPU_SET(me, &c);
    (void)pthread_setaffinity_np(pthread_self(), sizeof(c), &c);
    for (int i = 0; i < HANDOFFS; i++) {
        while (atomic_load(&turn) != me) {
        }
        uint64_t sent = atomic_load(&box);
        uint64_t t = tsc_ordered();
        if (i > 0 || me == 1) {
            int64_t d = (int64_t)(t - sent);
            if (d < min_delta[me]) {
                min_delta[me] = d;
            }
        }
        atomic_store(&box, tsc_early());
        atomic_store(&turn, 1 - me);
    }
    return NULL;
}

int main(void)
{
    double t0, one, two[2];
    uint64_t s = 0;
    pthread_t a, b;

    xadd_loop(&one);
    pthread_create(&a, NULL, xadd_loop, &two[0]);
    pthread_create(&b, NULL, xadd_loop, &two[1]);
    pthread_join(a, NULL);
    pthread_join(b, NULL);

    t0 = now_ns();
    for (int i = 0; i < N; i++) {
        s += tsc_ordered();
    }
    double ordered = (now_ns() - t0) / N;
    t0 = now_ns();
    for (int i = 0; i < N; i++) {
        s += tsc_early();
    }
    double early = (now_ns() - t0) / N;
    t0 = now_ns();
    for (int i = 0; i < N; i++) {
        atomic_store_explicit(&marker, s + 1, memory_order_release);
        s += tsc_early();
        atomic_store_explicit(&marker, s, memory_order_release);
        atomic_store_explicit(&marker, UINT64_MAX, memory_order_release);
    }
    double clock_free = (now_ns() - t0) / N;
    sink = s;

    pthread_create(&a, NULL, pingpong, (void *)0);
    pthread_create(&b, NULL, pingpong, (void *)1);
    pthread_join(a, NULL);
    pthread_join(b, NULL);

    printf("counter: fetch_add seq_cst, 1 thread        %6.1f ns\n", one);
    printf("counter: fetch_add seq_cst, 2 threads       %6.1f / %.1f ns "
           "per op per thread\n",
           two[0], two[1]);
    printf("clock:   lfence;rdtsc (alloc stamp)         %6.1f ns\n", ordered);
    printf("clock:   rdtsc (free stamp)                 %6.1f ns\n", early);
    printf("clock:   3 marker stores + rdtsc            %6.1f ns\n",
           clock_free);
    printf("H: min TSC delta across a cross-core hand-over: %lld / %lld "
           "ticks (must be > 0)\n",
           (long long)min_delta[0], (long long)min_delta[1]);
    return 0;
}
