/*
 * capi_caller.c -- a plain shared library (not a Python extension) that
 * calls the C API's tracing functions through its own GOT, as any C
 * extension does.  Built by tests/python/test_capi.py (and
 * bench/capi_track.py) with cc in three link variants: lazy binding
 * (JUMP_SLOT in a writable .got.plt), -z now with full RELRO (the slot is
 * read-only once loaded) and -fno-plt (GLOB_DAT).  Loaded with ctypes:
 * through ctypes.CDLL the calls run WITHOUT the GIL, through ctypes.PyDLL
 * with it.
 *
 * No Python.h: the three functions are declared here with their C API
 * signatures, and resolved by the dynamic loader from the interpreter.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

int PyTraceMalloc_Track(unsigned int domain, uintptr_t ptr, size_t size);
int PyTraceMalloc_Untrack(unsigned int domain, uintptr_t ptr);

int call_track(unsigned int domain, uintptr_t ptr, size_t size)
{
    return PyTraceMalloc_Track(domain, ptr, size);
}

int call_untrack(unsigned int domain, uintptr_t ptr)
{
    return PyTraceMalloc_Untrack(domain, ptr);
}

/* n Track+Untrack pairs on distinct pointers; returns the sum of the
 * return values (0 when every call succeeded). */
long pairs(unsigned int domain, uintptr_t base, long n)
{
    long sum = 0;
    for (long i = 0; i < n; i++) {
        sum += PyTraceMalloc_Track(domain, base + (uintptr_t)i * 16, 64);
        sum += PyTraceMalloc_Untrack(domain, base + (uintptr_t)i * 16);
    }
    return sum;
}

struct thread_args {
    unsigned int domain;
    uintptr_t ptr;
    size_t size;
    int rc;
};

static void *thread_main(void *arg)
{
    struct thread_args *a = arg;
    a->rc = PyTraceMalloc_Track(a->domain, a->ptr, a->size);
    return NULL;
}

/* Track from a new thread that has no Python thread state at all.
 * Returns Track's return value, or -100 if the thread could not start. */
int call_track_in_new_thread(unsigned int domain, uintptr_t ptr, size_t size)
{
    pthread_t th;
    struct thread_args a = {domain, ptr, size, -100};
    if (pthread_create(&th, NULL, thread_main, &a) != 0) {
        return -100;
    }
    pthread_join(th, NULL);
    return a.rc;
}
