/*
 * test_fork.c -- fork() while 4 threads record.
 *
 * The child (only the forking thread survives) must get a working engine:
 * the events the vanished threads completed are applied, their rings are
 * gone, the merger runs again, and the child can record (from its main
 * thread and from new threads), query, clear, stop and restart.  Whatever
 * the child holds must be consistent: every trace is one the workers could
 * have made (size and traceback derived from its address), the sum of the
 * sizes is `current`.  The parent is untouched: its workers carry on and
 * its final map is exact with nothing lost.
 * A second test forks while another thread is inside the memory backend's
 * set-up (its lock must not reach the child held).
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fasttracemalloc.h"
#include "memory.h"
#include "merger.h"
#include "stress_common.h"

#define NTHREADS 4
#define SLOTS 1024

typedef struct worker {
    int id;
    pthread_t th;
    stress_tb tb;
    bool live[SLOTS];
} worker;

static worker workers[NTHREADS];
static _Atomic int stop_workers;
static _Atomic uint64_t worker_ops;
static _Atomic int workers_started;

static uintptr_t addr(int w, int k)
{
    return ((uintptr_t)(w + 1) << 28) + (uintptr_t)k * 64;
}

/* size is a function of the address, so the child can check any trace */
static size_t size_of(uintptr_t p)
{
    return (size_t)((p >> 6) % 1000) + 1;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    stress_rng r = {(uint64_t)w->id * 31 + 1};
    bool first = true;
    while (!atomic_load_explicit(&stop_workers, memory_order_relaxed)) {
        int k = (int)stress_below(&r, SLOTS);
        uintptr_t p = addr(w->id, k);
        if (w->live[k]) {
            ftm_record_free(0, p);
        } else {
            ftm_record_alloc(0, p, size_of(p), &w->tb.tb);
        }
        w->live[k] = !w->live[k];
        atomic_fetch_add_explicit(&worker_ops, 1, memory_order_relaxed);
        if (first) {
            first = false;
            atomic_fetch_add(&workers_started, 1);
        }
    }
    return NULL;
}

/* Child-side checks return a nonzero code instead of asserting (cmocka's
 * state belongs to the parent). */
static int check_consistent(void)
{
    ftm_snapshot snap;
    if (ftm_take_snapshot(&snap) != FTM_OK) {
        return 10;
    }
    size_t sum = 0;
    for (size_t i = 0; i < snap.ntraces; i++) {
        const ftm_trace *t = &snap.traces[i];
        sum += t->size;
        int w = (int)(t->ptr >> 28) - 1;
        if (t->ptr == 0xC0FFEE0 || t->ptr == 0xC0FFEF0) {
            continue; /* the child's own */
        }
        if (w < 0 || w >= NTHREADS || t->size != size_of(t->ptr)) {
            return 11;
        }
        if (stress_tag_of(t->tb) != (uint64_t)w + 500) {
            return 12;
        }
    }
    size_t cur, peak;
    ftm_get_traced_memory(&cur, &peak);
    ftm_snapshot_release(&snap);
    if (cur != sum || peak < cur) {
        return 13;
    }
    return 0;
}

static void *child_thread(void *arg)
{
    (void)arg;
    stress_tb tb;
    stress_tb_init(&tb, 777);
    ftm_record_alloc(0, 0xC0FFEF0, 64, &tb.tb);
    return NULL;
}

static int child_main(void)
{
    if (!ftm_is_tracing()) {
        return 1;
    }
    int rc = check_consistent();
    if (rc != 0) {
        return rc;
    }
    stress_tb tb;
    stress_tb_init(&tb, 999);
    ftm_record_alloc(0, 0xC0FFEE0, 48, &tb.tb);
    ftm_trace t;
    if (ftm_get_trace(0, 0xC0FFEE0, &t) != 1 || t.size != 48 ||
        stress_tag_of(t.tb) != 999) {
        return 2;
    }
    pthread_t th; /* a new thread in the child records too */
    if (pthread_create(&th, NULL, child_thread, NULL) != 0) {
        return 3;
    }
    pthread_join(th, NULL);
    if (ftm_get_trace(0, 0xC0FFEF0, &t) != 1 || t.size != 64) {
        return 4;
    }
    rc = check_consistent();
    if (rc != 0) {
        return rc;
    }
    ftm_stats st;
    ftm_get_stats(&st);
    /* at most one in-flight event per vanished worker */
    if (st.events_lost > NTHREADS) {
        fprintf(stderr, "child: %llu lost, %llu applied %llu recorded\n",
                (unsigned long long)st.events_lost,
                (unsigned long long)st.events_applied,
                (unsigned long long)st.events_recorded);
        return 5;
    }
    printf("[ fork     ] child: %llu live traces, %llu events lost with "
           "the vanished threads, %llu recovered from their parked slots\n",
           (unsigned long long)st.live_traces,
           (unsigned long long)st.events_lost,
           (unsigned long long)ftm_merger_g.recovered);
    if (st.events_recorded != st.events_applied) {
        return 9;
    }
    fflush(stdout);
    ftm_clear();
    size_t cur, peak;
    ftm_get_traced_memory(&cur, &peak);
    if (cur != 0) {
        return 6;
    }
    ftm_stop();
    if (ftm_start(NULL) != FTM_OK) {
        return 7;
    }
    ftm_record_alloc(0, 0xC0FFEE0, 5, NULL);
    ftm_get_traced_memory(&cur, &peak);
    if (cur != 5) {
        return 8;
    }
    ftm_stop();
    return 0;
}

static void test_fork_while_recording(void **state)
{
    (void)state;
    assert_int_equal(ftm_start(NULL), FTM_OK);
    atomic_store(&stop_workers, 0);
    atomic_store(&workers_started, 0);
    for (int i = 0; i < NTHREADS; i++) {
        workers[i].id = i;
        stress_tb_init(&workers[i].tb, (uint64_t)i + 500);
        assert_int_equal(
            pthread_create(&workers[i].th, NULL, worker_main, &workers[i]), 0);
    }
    /* Fork only once every worker is past its start-up (thread creation
     * allocates; gcc 12's ASan has no fork handler for its allocator, so a
     * fork racing with it could leave the child's allocator locked): from
     * then on the workers only record, which never allocates. */
    while (atomic_load(&workers_started) < NTHREADS) {
        sched_yield();
    }
    int nforks = (int)stress_scaled(20);
    if (nforks < 3) {
        nforks = 3;
    }
    for (int f = 0; f < nforks; f++) {
        uint64_t before = atomic_load(&worker_ops);
        while (atomic_load(&worker_ops) < before + 1000) {
            sched_yield(); /* make sure the workers are mid-flight */
        }
        fflush(stdout);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            _exit(child_main());
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    atomic_store(&stop_workers, 1);
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(workers[i].th, NULL);
    }
    /* the parent is exact */
    size_t expect = 0;
    for (int i = 0; i < NTHREADS; i++) {
        for (int k = 0; k < SLOTS; k++) {
            ftm_trace t;
            int found = ftm_get_trace(0, addr(i, k), &t);
            assert_int_equal(found, workers[i].live[k]);
            if (found) {
                assert_int_equal(t.size, size_of(addr(i, k)));
                expect += t.size;
            }
        }
    }
    size_t cur, peak;
    ftm_get_traced_memory(&cur, &peak);
    assert_int_equal(cur, expect);
    ftm_stats st;
    ftm_get_stats(&st);
    assert_int_equal(st.events_lost, 0);
    printf("[ fork     ] parent: %d forks, %llu worker events, exact\n",
           nforks, (unsigned long long)atomic_load(&worker_ops));
    ftm_stop();
}

/* ---- fork while another thread is inside the memory backend's set-up ----
 *
 * ftm_mem_init runs under a lock of its own on first use of engine memory
 * (from ftm_get_stats, a snapshot's pin, ...) and from every ftm_start.  A
 * fork while another thread holds that lock must not hand the child a lock
 * nobody will ever release: the child's ftm_start would hang.  The thread
 * below re-enters ftm_mem_init in a loop, so the lock is held at a good
 * fraction of the forks. */
static _Atomic int init_spin_stop;

static void *init_spinner(void *arg)
{
    (void)arg;
    atomic_fetch_add(&workers_started, 1);
    while (!atomic_load_explicit(&init_spin_stop, memory_order_relaxed)) {
        (void)ftm_mem_init(FTM_MEM_AUTO);
    }
    return NULL;
}

static void test_fork_during_memory_init(void **state)
{
    (void)state;
    atomic_store(&init_spin_stop, 0);
    atomic_store(&workers_started, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, init_spinner, NULL), 0);
    while (atomic_load(&workers_started) < 1) {
        sched_yield();
    }
    int nforks = (int)stress_scaled(200);
    for (int f = 0; f < nforks; f++) {
        fflush(stdout);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int rc = ftm_start(NULL) == FTM_OK ? 0 : 1;
            ftm_stop();
            _exit(rc);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    atomic_store(&init_spin_stop, 1);
    pthread_join(th, NULL);
    printf("[ fork     ] %d forks while another thread was in the memory "
           "backend's set-up: every child started the engine\n",
           nforks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fork_while_recording),
        cmocka_unit_test(test_fork_during_memory_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
