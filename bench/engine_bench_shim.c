/*
 * engine_bench_shim.c -- the benchmark's two looks inside the engine, in C
 * because merger.h uses C11 atomics that C++17 cannot include.
 *
 * Owns: nothing.  Threads: any; each function takes/releases the engine's
 * apply lock (ftm_merger_g.lock) exactly as engine.c does.
 *
 * - hold/release: the merger benchmark holds the apply lock while producer
 *   threads pre-fill their rings (the merger thread then waits on the lock),
 *   so that the following ftm_flush() times the merger alone.  Producers
 *   never take the apply lock unless their ring is full, which the
 *   benchmark avoids by sizing the rings.
 * - map bytes: the trace map's share of ftm_engine_memory().
 * - order: which event order the linked engine uses ("counter", or
 *   "clock/tsc" / "clock/counter" for the clock order and its source).
 */
#include <pthread.h>

#include "merger.h"
#include "trace_map.h"
#if FTM_ORDER_CLOCK
#include "order_clock.h"
#endif

void ftm_bench_hold_merger(void);
void ftm_bench_release_merger(void);
size_t ftm_bench_map_bytes(void);
const char *ftm_bench_order(void);

void ftm_bench_hold_merger(void)
{
    pthread_mutex_lock(&ftm_merger_g.lock);
}

void ftm_bench_release_merger(void)
{
    pthread_mutex_unlock(&ftm_merger_g.lock);
}

size_t ftm_bench_map_bytes(void)
{
    pthread_mutex_lock(&ftm_merger_g.lock);
    size_t b = ftm_merger_g.map ? ftm_trace_map_bytes(ftm_merger_g.map) : 0;
    pthread_mutex_unlock(&ftm_merger_g.lock);
    return b;
}

const char *ftm_bench_order(void)
{
#if FTM_ORDER_CLOCK
    return ftm_clock_source == FTM_CLOCK_SRC_TSC ? "clock/tsc"
                                                 : "clock/counter";
#else
    return "counter";
#endif
}
