/*
 * codeset.c -- see codeset.h.  An open-addressing hash set of object
 * addresses (linear probing, load <= 1/2, NULL = empty slot, no deletion:
 * the set is only ever emptied as a whole).  Written for this purpose
 * rather than a PyDict/PySet because it is probed from inside allocator
 * hooks, where it must neither allocate through Python nor run Python code.
 */
#include <stdlib.h>

#include "codeset.h"

uint32_t ftmpy_code_epoch = 1;

static PyObject **slots;
static size_t capacity; /* power of two, or 0 */
static size_t count;

static inline size_t slot_of(PyObject *p, size_t mask)
{
    uint64_t h = (uint64_t)(uintptr_t)p >> 4;
    h *= UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 32) & mask;
}

static int grow(void)
{
    size_t ncap = capacity ? capacity * 2 : 1024;
    PyObject **ns = calloc(ncap, sizeof(*ns));
    if (ns == NULL) {
        return -1;
    }
    for (size_t i = 0; i < capacity; i++) {
        PyObject *p = slots[i];
        if (p != NULL) {
            size_t j = slot_of(p, ncap - 1);
            while (ns[j] != NULL) {
                j = (j + 1) & (ncap - 1);
            }
            ns[j] = p;
        }
    }
    free(slots);
    slots = ns;
    capacity = ncap;
    return 0;
}

int ftmpy_codeset_add(PyObject *code)
{
    if (capacity != 0) {
        size_t mask = capacity - 1;
        size_t j = slot_of(code, mask);
        for (;;) {
            PyObject *p = slots[j];
            if (p == code) {
                return 0;
            }
            if (p == NULL) {
                break;
            }
            j = (j + 1) & mask;
        }
    }
    if ((count + 1) * 2 > capacity && grow() < 0) {
        return -1;
    }
    size_t mask = capacity - 1;
    size_t j = slot_of(code, mask);
    while (slots[j] != NULL) {
        j = (j + 1) & mask;
    }
    Py_INCREF(code);
    slots[j] = code;
    count++;
    return 0;
}

void ftmpy_codeset_release(void)
{
    PyObject **old = slots;
    size_t oldcap = capacity;
    ftmpy_code_epoch++;
    if (ftmpy_code_epoch == 0) {
        ftmpy_code_epoch = 1; /* 0 means "never filled" in caches */
    }
    slots = NULL;
    capacity = 0;
    count = 0;
    for (size_t i = 0; i < oldcap; i++) {
        Py_XDECREF(old[i]);
    }
    free(old);
}

size_t ftmpy_codeset_count(void)
{
    return count;
}

size_t ftmpy_codeset_bytes(void)
{
    return capacity * sizeof(PyObject *);
}
