/*
 * engine_bench.cc -- Google Benchmark harness for the tracing engine
 * (issue 2).  C++ over the C engine's public header, plus two engine-internal
 * looks (core/tb_pool.h for the pool on its own, bench/engine_bench_shim.c
 * for the apply lock and the map's size).
 *
 * Owns: nothing shared with the engine; drives it through its API.
 *
 * What it reports (and how):
 *   EngineBytesPerTrace  engine bytes per live trace at 1M live traces,
 *                        ftm_engine_memory()/1M for each memory backend (run
 *                        first: a backend can only be chosen while the engine
 *                        holds no memory, and benchmark thread 0 is this
 *                        process's main thread, whose ring lives on).
 *   PoolHit / PoolMiss   ftm_tb_pool_intern on a private pool: hit cycling
 *                        over 64 resident tracebacks, miss = probe + insert
 *                        of a new traceback; 1 and 25 frames.
 *   ProducerRecord       ns per ftm_record_alloc/free on the producer, with a
 *                        cached traceback (no capture), in timed batches of
 *                        512 events flushed between batches (so no ring is
 *                        ever full inside a timed batch); the counter
 *                        ns_per_event_median is the median over batches,
 *                        and repetitions give the median of those.
 *   ProducerSustained    events/s the producers sustain when they record
 *                        flat out, merger included (back-pressure, ring-full
 *                        waits and helping are inside the time).
 *   MergerApply          merger throughput: the apply lock is held while P
 *                        threads pre-fill their rings with 1M events (the
 *                        merger thread blocks on it), then ftm_flush() is
 *                        timed alone: events applied per second.
 *   Query*               with 1M live traces: ftm_flush (nothing pending),
 *                        ftm_get_traced_memory, ftm_get_trace,
 *                        ftm_take_snapshot (+ release).
 * A summary table with the targets is printed at the end.  Nothing
 * is asserted: timings on a shared machine are noisy.
 *
 * Threads: Google Benchmark's; MergerApply and the 1M fills use their own
 * std::threads so that their rings are new (sized for the run) and are
 * reclaimed when they exit.
 */
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "fasttracemalloc.h"
extern "C" {
#include "memory.h"
#include "tb_pool.h"
void ftm_bench_hold_merger(void);
void ftm_bench_release_merger(void);
size_t ftm_bench_map_bytes(void);
const char *ftm_bench_order(void);
}

namespace
{

constexpr size_t kLive = 1000000; // live traces for the 1M figures
constexpr int kBatchPairs = 256;  // alloc+free pairs per timed batch
constexpr int kBatchEvents = 2 * kBatchPairs;
constexpr size_t kMergerEvents = 1000000;

inline uint64_t now_ns()
{
    return (uint64_t)std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

double median(std::vector<double> v)
{
    if (v.empty())
        return 0;
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// A traceback the way the embedder hands it over: frames of (code, offset).
struct Tb {
    ftm_frame frames[25];
    ftm_traceback tb;
    explicit Tb(uint32_t k = 0, uint16_t n = 25)
    {
        for (uint16_t j = 0; j < 25; j++) {
            frames[j].a = 0x7f3a00000000ull + (uint64_t)(k * 37 + j) * 320;
            frames[j].b = (uint64_t)k * 6 + j * 2;
        }
        tb.frames = frames;
        tb.nframe = n;
        tb.total_nframe = (uint16_t)(n + 5);
        tb.cached_id = FTM_TB_NONE;
        tb.cached_generation = 0;
    }
};

// ---- sessions ------------------------------------------------------------

enum class Session { None, Default, Rings, Filled };
Session g_session = Session::None;
uint32_t g_ring_capacity = 0;

void start_session(uint32_t ring_capacity, ftm_mem_backend backend)
{
    ftm_stop();
    ftm_config cfg;
    cfg.ring_capacity = ring_capacity;
    cfg.mem_backend = backend;
    if (ftm_start(&cfg) != FTM_OK) {
        fprintf(stderr, "ftm_start failed\n");
        std::abort();
    }
    g_ring_capacity = ring_capacity;
}

// Record kLive allocations from a fresh thread (1000 distinct 25-frame
// tracebacks), then flush.  Returns the time taken, ns.
uint64_t fill_live(size_t n)
{
    uint64_t t0 = now_ns();
    std::thread th([n] {
        std::vector<Tb> tbs;
        tbs.reserve(1000);
        for (uint32_t k = 0; k < 1000; k++)
            tbs.emplace_back(k);
        for (size_t i = 0; i < n; i++)
            ftm_record_alloc(0, 0x10000000000ull + i * 48, 32 + i % 512,
                             &tbs[i % 1000].tb);
    });
    th.join();
    ftm_flush();
    return now_ns() - t0;
}

void ensure(Session s)
{
    if (g_session == s)
        return;
    switch (s) {
    case Session::None:
        ftm_stop();
        break;
    case Session::Default:
        start_session(0, FTM_MEM_AUTO);
        break;
    case Session::Rings:
        break; // MergerApply starts its own (ring size depends on P)
    case Session::Filled:
        start_session(0, FTM_MEM_AUTO);
        fill_live(kLive);
        break;
    }
    g_session = s;
}

// ---- engine bytes per live trace -------------------------------------------

void BM_EngineBytesPerTrace(benchmark::State &state)
{
    auto want = (ftm_mem_backend)state.range(0);
    double per_trace = 0, map_per_trace = 0, arena_per_trace = 0;
    double fill_ns = 0;
    ftm_stats st{};
    for (auto _ : state) {
        ftm_stop();
        g_session = Session::None;
        size_t idle = ftm_engine_memory();
        start_session(0, want);
        fill_ns = (double)fill_live(kLive);
        ftm_get_stats(&st);
        size_t bytes = ftm_engine_memory();
        per_trace = (double)bytes / (double)st.live_traces;
        map_per_trace = (double)ftm_bench_map_bytes() / (double)st.live_traces;
        size_t arena = 0;
        if (ftm_mem_arena_stats(&arena) == FTM_OK)
            arena_per_trace = (double)arena / (double)st.live_traces;
        state.SetIterationTime(fill_ns / 1e9);
        ftm_stop();
        if (idle != 0)
            state.SetLabel("engine held memory before start: backend "
                           "could not be switched");
    }
    state.counters["live_traces"] = (double)st.live_traces;
    state.counters["bytes_per_trace"] = per_trace;
    state.counters["map_bytes_per_trace"] = map_per_trace;
    state.counters["arena_bytes_per_trace"] = arena_per_trace;
    state.counters["backend_in_use"] = (double)st.backend_in_use;
    state.counters["fill_events_per_s"] =
        fill_ns > 0 ? (double)kLive / (fill_ns / 1e9) : 0;
    if (want != st.backend_in_use)
        state.SkipWithError("backend requested was not used");
}
BENCHMARK(BM_EngineBytesPerTrace)
    ->Arg(FTM_MEM_PORTABLE)
    ->Arg(FTM_MEM_JEMALLOC)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// ---- traceback pool --------------------------------------------------------

void BM_PoolHit(benchmark::State &state)
{
    uint16_t n = (uint16_t)state.range(0);
    ftm_tb_pool *p = ftm_tb_pool_new(1);
    std::vector<Tb> tbs;
    for (uint32_t k = 0; k < 64; k++)
        tbs.emplace_back(k, n);
    for (auto &t : tbs)
        ftm_tb_pool_intern(p, t.frames, n, t.tb.total_nframe);
    size_t i = 0;
    for (auto _ : state) {
        const Tb &t = tbs[i++ & 63];
        benchmark::DoNotOptimize(
            ftm_tb_pool_intern(p, t.frames, n, t.tb.total_nframe));
    }
    state.SetItemsProcessed(state.iterations());
    ftm_tb_pool_free(p);
}
BENCHMARK(BM_PoolHit)->Arg(1)->Arg(25)->MinTime(0.2);

void BM_PoolMiss(benchmark::State &state)
{
    uint16_t n = (uint16_t)state.range(0);
    ftm_tb_pool *p = ftm_tb_pool_new(1);
    Tb t(7, n);
    uint64_t k = 0;
    for (auto _ : state) {
        t.frames[0].b = ++k; // a traceback never seen before
        t.frames[n - 1].a ^= k << 20;
        benchmark::DoNotOptimize(ftm_tb_pool_intern(p, t.frames, n, n));
        if ((k & 0x3ffff) == 0) { // bound the pool's memory
            state.PauseTiming();
            ftm_tb_pool_free(p);
            p = ftm_tb_pool_new(1);
            state.ResumeTiming();
        }
    }
    state.SetItemsProcessed(state.iterations());
    ftm_tb_pool_free(p);
}
BENCHMARK(BM_PoolMiss)->Arg(1)->Arg(25)->MinTime(0.2);

// ---- producers
// ---------------------------------------------------------------

void BM_ProducerRecord(benchmark::State &state)
{
    if (state.thread_index() == 0)
        ensure(Session::Default);
    Tb t(state.thread_index());
    uintptr_t base = ((uintptr_t)state.thread_index() + 1) << 36;
    ftm_record_alloc(0, base, 8, &t.tb); // intern once: later calls hit
    ftm_record_free(0, base);
    std::vector<double> per_event;
    uintptr_t off = 0;
    for (auto _ : state) {
        uint64_t t0 = now_ns();
        for (int i = 0; i < kBatchPairs; i++) {
            uintptr_t p = base + ((off + (uintptr_t)i) & 0xffff) * 64;
            ftm_record_alloc(0, p, 64, &t.tb);
            ftm_record_free(0, p);
        }
        uint64_t dt = now_ns() - t0;
        off += kBatchPairs;
        state.SetIterationTime((double)dt / 1e9);
        per_event.push_back((double)dt / kBatchEvents);
        ftm_flush(); // untimed: the next batch starts with an empty ring
    }
    state.SetItemsProcessed(state.iterations() * kBatchEvents);
    state.counters["ns_per_event_median"] =
        benchmark::Counter(median(per_event), benchmark::Counter::kAvgThreads);
}
BENCHMARK(BM_ProducerRecord)
    ->ThreadRange(1, 8)
    ->UseManualTime()
    ->MinTime(0.1)
    ->Repetitions(3)
    ->DisplayAggregatesOnly(true);

// The producer's own cost with no consumer touching its ring meanwhile:
// the apply lock is held (the merger thread waits on it) for each timed
// batch, then released and the batch flushed.  One thread: holding the lock
// across several producers' batches would serialise them.
void BM_ProducerRecordIsolated(benchmark::State &state)
{
    ensure(Session::Default);
    Tb t(50);
    uintptr_t base = (uintptr_t)9 << 36;
    ftm_record_alloc(0, base, 8, &t.tb);
    ftm_record_free(0, base);
    ftm_flush();
    std::vector<double> per_event;
    uintptr_t off = 0;
    for (auto _ : state) {
        ftm_bench_hold_merger();
        uint64_t t0 = now_ns();
        for (int i = 0; i < kBatchPairs; i++) {
            uintptr_t p = base + ((off + (uintptr_t)i) & 0xffff) * 64;
            ftm_record_alloc(0, p, 64, &t.tb);
            ftm_record_free(0, p);
        }
        uint64_t dt = now_ns() - t0;
        ftm_bench_release_merger();
        off += kBatchPairs;
        state.SetIterationTime((double)dt / 1e9);
        per_event.push_back((double)dt / kBatchEvents);
        ftm_flush();
    }
    state.SetItemsProcessed(state.iterations() * kBatchEvents);
    state.counters["ns_per_event_median"] = median(per_event);
}
BENCHMARK(BM_ProducerRecordIsolated)
    ->UseManualTime()
    ->MinTime(0.1)
    ->Repetitions(3)
    ->DisplayAggregatesOnly(true);

void BM_ProducerSustained(benchmark::State &state)
{
    if (state.thread_index() == 0)
        ensure(Session::Default);
    Tb t(100 + state.thread_index());
    uintptr_t base = ((uintptr_t)state.thread_index() + 1) << 36;
    uintptr_t off = 0;
    for (auto _ : state) {
        for (int i = 0; i < kBatchPairs; i++) {
            uintptr_t p = base + ((off + (uintptr_t)i) & 0xffff) * 64;
            ftm_record_alloc(0, p, 64, &t.tb);
            ftm_record_free(0, p);
        }
        off += kBatchPairs;
    }
    state.SetItemsProcessed(state.iterations() * kBatchEvents);
    ftm_flush(); // leave nothing behind for the next benchmark
}
BENCHMARK(BM_ProducerSustained)
    ->ThreadRange(1, 8)
    ->UseRealTime()
    ->MinTime(0.2);

// ---- merger ----------------------------------------------------------------

uint32_t pow2_at_least(size_t n)
{
    uint32_t c = 2;
    while (c < n)
        c <<= 1;
    return c;
}

void BM_MergerApply(benchmark::State &state)
{
    int nthreads = (int)state.range(0);
    size_t per_thread = kMergerEvents / (size_t)nthreads;
    per_thread &= ~(size_t)1;
    ftm_stop();
    start_session(pow2_at_least(per_thread + 1), FTM_MEM_AUTO);
    g_session = Session::Rings;
    ftm_stats before{}, after{};
    ftm_get_stats(&before);
    for (auto _ : state) {
        ftm_bench_hold_merger();
        std::vector<std::thread> th;
        for (int k = 0; k < nthreads; k++) {
            th.emplace_back([k, per_thread] {
                Tb t(200 + (uint32_t)k);
                uintptr_t base = ((uintptr_t)k + 1) << 36;
                // a window of 2048 live blocks per thread: every event is a
                // map insert or a map remove
                for (size_t i = 0; i < per_thread / 2; i++) {
                    ftm_record_alloc(0, base + (i & 4095) * 64, 64, &t.tb);
                    if (i >= 2048)
                        ftm_record_free(0, base + ((i - 2048) & 4095) * 64);
                    else
                        ftm_record_free(0, base + (1u << 30) + i * 64);
                }
            });
        }
        for (auto &x : th)
            x.join();
        uint64_t t0 = now_ns();
        ftm_bench_release_merger();
        ftm_flush();
        uint64_t dt = now_ns() - t0;
        state.SetIterationTime((double)dt / 1e9);
        state.PauseTiming();
        ftm_clear();
        state.ResumeTiming();
    }
    ftm_get_stats(&after);
    state.SetItemsProcessed(state.iterations() * (int64_t)per_thread *
                            nthreads);
    state.counters["ring_full_waits"] =
        (double)(after.ring_full_waits - before.ring_full_waits);
    state.counters["events_lost"] = (double)after.events_lost;
    ftm_stop();
    g_session = Session::None;
}
BENCHMARK(BM_MergerApply)
    ->Arg(1)
    ->Arg(2)
    ->Arg(4)
    ->Arg(8)
    ->Iterations(5)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

// ---- queries with 1M live traces
// ---------------------------------------------

void BM_QueryFlush(benchmark::State &state)
{
    ensure(Session::Filled);
    for (auto _ : state)
        ftm_flush();
}
BENCHMARK(BM_QueryFlush)->MinTime(0.2);

void BM_QueryGetTracedMemory(benchmark::State &state)
{
    ensure(Session::Filled);
    size_t cur = 0, peak = 0;
    for (auto _ : state) {
        ftm_get_traced_memory(&cur, &peak);
        benchmark::DoNotOptimize(cur);
    }
}
BENCHMARK(BM_QueryGetTracedMemory)->MinTime(0.2);

void BM_QueryGetTrace(benchmark::State &state)
{
    ensure(Session::Filled);
    uint64_t x = 88172645463325252ull, found = 0;
    ftm_trace tr;
    for (auto _ : state) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        found += (uint64_t)ftm_get_trace(
            0, 0x10000000000ull + (x % kLive) * 48, &tr);
    }
    state.counters["found_fraction"] =
        (double)found / (double)std::max<int64_t>(1, state.iterations());
}
BENCHMARK(BM_QueryGetTrace)->MinTime(0.2);

void BM_QueryTakeSnapshot(benchmark::State &state)
{
    ensure(Session::Filled);
    size_t n = 0;
    for (auto _ : state) {
        ftm_snapshot s;
        if (ftm_take_snapshot(&s) != FTM_OK) {
            state.SkipWithError("ftm_take_snapshot failed");
            break;
        }
        n = s.ntraces;
        ftm_snapshot_release(&s);
    }
    state.counters["traces"] = (double)n;
}
BENCHMARK(BM_QueryTakeSnapshot)->Unit(benchmark::kMillisecond)->MinTime(0.5);

// ---- summary
// -------------------------------------------------------------------

// Keeps every run so that main() can print one table at the end.
class SummaryReporter : public benchmark::ConsoleReporter
{
  public:
    struct Row {
        double real_ns;     // adjusted real time per iteration, in ns
        double cpu_ns;      // adjusted CPU time per iteration, in ns
        double items_per_s; // 0 if not set
        std::map<std::string, double> counters;
    };
    std::map<std::string, Row> rows; // "<name>|<aggregate>"

    void ReportRuns(const std::vector<Run> &runs) override
    {
        for (const Run &r : runs) {
            Row row{};
            double mult = 1;
            switch (r.time_unit) {
            case benchmark::kNanosecond:
                mult = 1;
                break;
            case benchmark::kMicrosecond:
                mult = 1e3;
                break;
            case benchmark::kMillisecond:
                mult = 1e6;
                break;
            case benchmark::kSecond:
                mult = 1e9;
                break;
            }
            row.real_ns = r.GetAdjustedRealTime() * mult;
            row.cpu_ns = r.GetAdjustedCPUTime() * mult;
            for (const auto &c : r.counters) {
                row.counters[c.first] = c.second.value;
                if (c.first == "items_per_second")
                    row.items_per_s = c.second.value;
            }
            std::string key = r.run_name.function_name;
            if (!r.run_name.args.empty())
                key += "/" + r.run_name.args;
            if (!r.run_name.threads.empty())
                key += "/" + r.run_name.threads;
            key += "|" + r.aggregate_name;
            rows[key] = row;
        }
        ConsoleReporter::ReportRuns(runs);
    }

    const Row *get(const std::string &key) const
    {
        auto it = rows.find(key);
        return it == rows.end() ? nullptr : &it->second;
    }
};

void print_summary(const SummaryReporter &rep)
{
    auto row = [&](const std::string &k) { return rep.get(k); };
    auto num = [](const SummaryReporter::Row *r, double v, const char *fmt) {
        static char buf[64];
        if (!r)
            return std::string("   n/a");
        snprintf(buf, sizeof(buf), fmt, v);
        return std::string(buf);
    };
    printf("\n================ fasttracemalloc engine: summary "
           "================\n");
    printf("(2-core shared machine: timings are noisy; targets in "
           "[brackets])\n\n");

    printf("producer ns per event, median of 512-event batch means, cached "
           "traceback          [<= 20 ns]\n");
    {
        auto *r = row("BM_ProducerRecordIsolated|median");
        double v = r ? r->counters.at("ns_per_event_median") : 0;
        printf("  1 thread, merger paused:   %s ns/event\n",
               num(r, v, "%6.1f").c_str());
    }
    for (int t : {1, 2, 4, 8}) {
        auto *r =
            row("BM_ProducerRecord/threads:" + std::to_string(t) + "|median");
        double v = r ? r->counters.at("ns_per_event_median") : 0;
        printf("  %d thread(s), merger live: %s ns/event\n", t,
               num(r, v, "%6.1f").c_str());
    }
    printf("producer events/s, flat out incl. merger back-pressure "
           "(sum over threads)\n");
    for (int t : {1, 2, 4, 8}) {
        auto *r =
            row("BM_ProducerSustained/threads:" + std::to_string(t) + "|");
        printf("  %d thread(s): %s M events/s\n", t,
               num(r, r ? r->items_per_s / 1e6 : 0, "%6.2f").c_str());
    }
    printf("merger throughput: ftm_flush of 1M pre-filled events         "
           "[>= 20 M events/s]\n");
    for (int t : {1, 2, 4, 8}) {
        auto *r = row("BM_MergerApply/" + std::to_string(t) + "|");
        printf("  %d producer ring(s): %s M events/s\n", t,
               num(r, r ? r->items_per_s / 1e6 : 0, "%6.2f").c_str());
    }
    printf("traceback pool (64 resident tracebacks; CPU time per call)\n");
    for (int n : {1, 25}) {
        auto *h = row("BM_PoolHit/" + std::to_string(n) + "|");
        auto *m = row("BM_PoolMiss/" + std::to_string(n) + "|");
        printf("  %2d frames: hit %s ns%s   miss (probe+insert) %s ns\n", n,
               num(h, h ? h->cpu_ns : 0, "%6.1f").c_str(),
               n == 25 ? " [<= 30 ns]" : "          ",
               num(m, m ? m->cpu_ns : 0, "%6.1f").c_str());
    }
    printf("queries with %zu live traces (CPU time per call)\n", kLive);
    struct {
        const char *label, *key;
        double scale;
        const char *unit;
    } q[] = {
        {"ftm_flush (nothing pending)", "BM_QueryFlush|", 1e-3, "us"},
        {"ftm_get_traced_memory", "BM_QueryGetTracedMemory|", 1e-3, "us"},
        {"ftm_get_trace", "BM_QueryGetTrace|", 1e-3, "us"},
        {"ftm_take_snapshot + release", "BM_QueryTakeSnapshot|", 1e-6, "ms"},
    };
    for (auto &e : q) {
        auto *r = row(e.key);
        printf("  %-30s %s %s\n", e.label,
               num(r, r ? r->cpu_ns * e.scale : 0, "%9.3f").c_str(), e.unit);
    }
    printf("engine bytes per live trace at 1M live traces                "
           "[<= 32 bytes]\n");
    for (auto b : {FTM_MEM_PORTABLE, FTM_MEM_JEMALLOC}) {
        auto *r =
            row("BM_EngineBytesPerTrace/" + std::to_string((int)b) + "|");
        const char *name = b == FTM_MEM_PORTABLE ? "portable" : "jemalloc";
        if (!r) {
            printf("  %-9s n/a\n", name);
            continue;
        }
        printf("  %-9s %6.2f bytes/trace (trace map %.2f; jemalloc arena "
               "stats %.2f)\n",
               name, r->counters.at("bytes_per_trace"),
               r->counters.at("map_bytes_per_trace"),
               r->counters.at("arena_bytes_per_trace"));
    }
    printf(
        "=================================================================\n");
}

} // namespace

int main(int argc, char **argv)
{
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    benchmark::AddCustomContext("ftm_order", ftm_bench_order());
    SummaryReporter rep;
    benchmark::RunSpecifiedBenchmarks(&rep);
    ftm_stop();
    print_summary(rep);
    benchmark::Shutdown();
    return 0;
}
