/*
 * newref_patch.c -- see newref_patch.h.  Owns the re-stamping of free-list
 * objects on a static CPython 3.11 executable on x86-64 Linux (Debian 12's
 * /usr/bin/python3.11, 3.11.2, LTO+PGO), where capi_rebind.c's GOT
 * rewrite cannot reach the interpreter's own _Py_NewReference calls.
 *
 * What the interpreter does.  LTO inlined _Py_NewReference into its
 * callers: the executable holds 275 inlined copies (PyTuple_New,
 * PyList_New, PyFloat_FromDouble, PyDict_New, ... and every free-list
 * path) plus the exported out-of-line one, and EVERY copy is
 *     if (_Py_tracemalloc_config.tracing) _PyTraceMalloc_NewReference(op);
 * with the call out of line, to one local (not exported) function T.
 * (Checked by disassembling the whole executable: all 289 loads of the
 * `tracing` field were classified; 275 are such guards, each followed on
 * its taken path by a call to T; the other 14 are listed under "Side
 * effects".)  So one patch -- T's entry -- reaches every re-stamp, and
 * the guards take the call once `tracing` is non-zero.
 *
 * What we do, at start() (GIL held, just before the session starts: what
 * it imports is not traced; until the hooks trace, our functions answer
 * as the builtin does while not tracing):
 *   0. At import (ftmpy_newref_patch_init): find the builtin functions of
 *      step 3 (importing _tracemalloc, which creates its tables), then
 *      step 1's check.  Nothing at start() makes Python objects: they
 *      would go back to the free lists untraced, and the session's first
 *      reuses of them would stay untraced.
 *   1. Verify, byte for byte, the code we rely on; any difference refuses
 *      (newref_patch_reason says which), nothing is written:
 *        _Py_NewReference (dlsym): mov tracing(%rip),%eax; test; jne +8;
 *          movq $1,(%rdi); ret; sub $0x18,%rsp; mov %rdi,8(%rsp); call T
 *          -- this is how T's address is found;
 *        T: mov tracing(%rip),%eax; test %eax,%eax; je ...;
 *        PyTraceMalloc_Track, PyTraceMalloc_Untrack (dlsym), and the
 *          builtin's static tracemalloc_stop (found from _tracemalloc.stop's
 *          method: push %rax; call tracemalloc_stop):
 *          cmpl $0,tracing(%rip)  (7 bytes);
 *      where `tracing` is _Py_tracemalloc_config (dlsym) + 4, and
 *      _Py_tracemalloc_config says the builtin is initialized and NOT
 *      tracing.  The four entries must be in r-x mappings, and their
 *      first 5 bytes within one aligned 8-byte word.
 *   2. Map one page within +-1 GiB of them (the executable is not PIE:
 *      the free range below it) holding four absolute jumps
 *      (jmp *0(%rip); .quad target) to patched_newref, patched_track,
 *      patched_untrack and patched_builtin_stop, then make it r-x.  Never
 *      unmapped; made once per process.
 *   3. Replace the builtin's _tracemalloc.start/stop/is_tracing (their
 *      PyMethodDef's ml_meth, shared by every reference to them, in the
 *      executable's writable .data; found at import) -- see "Side
 *      effects".
 *   4. Write `jmp rel32` (5 bytes, inside the first instruction) over the
 *      four entries: the page is made rwx (never
 *      non-executable: other threads may run code on it), the aligned
 *      8-byte word holding the 5 bytes is replaced by ONE atomic store,
 *      and the page is r-x again.
 *   5. Store 1 into `tracing`.
 * stop() undoes it in reverse: `tracing` = 0 first, then the four words
 * are restored (atomic stores of the saved words), then the ml_meth.
 *
 * Why the code writes are safe.
 *   - T runs only when `tracing` is non-zero (every caller tests it, and
 *     T tests it again), and only in a thread holding the GIL (it is
 *     called on object creation).  We write T while `tracing` is 0 and we
 *     hold the GIL: no thread is in T or can enter it.  tracemalloc_stop
 *     runs only with the GIL held (the Python-level stop and the
 *     finalizer): no thread is in it either.
 *   - Track/Untrack are called by any thread, with or without the GIL.
 *     The 5 bytes replace part of the first instruction and are written
 *     by one aligned 8-byte store: a thread fetching the entry sees the
 *     old instruction whole or the new jump whole; a thread already past
 *     the first instruction never executes the bytes we change.  (Intel's
 *     manuals ask for a serialising instruction on the executing core in
 *     cross-modifying code: the mprotect that takes write access away
 *     again right after the store flushes the other cores' TLBs for this
 *     page, by interrupt for those running the process (an interrupt
 *     serialises) and by a context switch for the others, before `tracing`
 *     is set -- so no core can still run the old entry and see the new
 *     flag, whose combination would crash in the builtin.  A thread that
 *     took the jump just before a restore runs our function to its end:
 *     the trampoline page is never unmapped.)
 *   - Our functions are ordinary C functions with the signatures of the
 *     functions they replace; a jump (not a call) keeps the caller's return
 *     address and stack.  T is a local function, so LTO could in theory
 *     assume it clobbers fewer registers than the ABI allows (IPA-RA);
 *     T calls external functions (clock_gettime, sem_wait through the
 *     PLT), so its clobber set is already the full ABI set.
 *
 * Side effects of `tracing` = 1 while the builtin does NOT trace, every
 * reader in 3.11.2 (the 14 non-guard loads), and how each is handled:
 *   - T, Track, Untrack, tracemalloc_stop: patched (above).  Unpatched, Track
 * would write through the builtin's NULL traceback buffer and crash; now every
 *     caller (ctypes.pythonapi, dlsym users, cached pointers included)
 *     reaches the engine, and returns -2 if the engine stopped.
 *   - _tracemalloc.is_tracing: would say True: replaced, returns False
 *     (install() and the stdlib ask it).
 *   - _tracemalloc.stop (tracemalloc_stop): would restore allocators the
 *     builtin never saved (NULL) and crash: replaced, a no-op, as the
 *     builtin's own stop is while it does not trace.
 *   - _tracemalloc.start (tracemalloc_start): would return at once
 *     ("already tracing"): replaced by "undo the patch, then run the
 *     builtin's start": the builtin then traces for real and the engine
 *     goes on without re-stamping until its next start().
 *   - the same tracemalloc_stop at interpreter exit (_PyTraceMalloc_Fini,
 *     late in finalization, the only caller left once the Python-level
 *     stop is replaced): its entry jumps to patched_builtin_stop, which
 *     undoes the patch (the engine re-stamps nothing after that) and
 *     refuses later starts (the builtin's tables are destroyed next).
 *   - clear_traces, reset_peak, get_traced_memory, _get_traces,
 *     _get_object_traceback, _PyTraceMalloc_GetTraceback: read the
 *     builtin's own tables, which exist (_tracemalloc is imported first:
 *     its init creates them) and are empty, so they answer what they
 *     answer while not tracing ((0, 0), [], None).
 *   - _PyMem_DumpTraceback (debug-allocator fatal errors): prints no
 *     traceback instead of "Enable tracemalloc to get ...".
 *   - tracemalloc_start/stop's other callers: _PyTraceMalloc_Init (at
 *     startup, before us) and _PyTraceMalloc_Fini (above).
 *
 * Threads.  Everything here runs with the GIL held (3.11: no free-threaded
 * build); all statics are GIL-protected.  `tracing` is written with
 * seq_cst stores; the interpreter reads it with plain loads.
 */
#include <Python.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capi_rebind.h"
#include "hooks.h"
#include "newref_patch.h"

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000 &&            \
    defined(__linux__) && defined(__x86_64__)
#define FTMPY_NEWREF_PATCH 1
#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#else
#define FTMPY_NEWREF_PATCH 0
#endif

/* GIL-protected (see Threads). */
static int active; /* the patch is in effect */
static int ever;   /* 1 once a start() patched */
static char reason[200];

static void set_reason(const char *why)
{
    snprintf(reason, sizeof(reason), "%s", why);
}

#if FTMPY_NEWREF_PATCH

static int exiting; /* the builtin's finalizer ran: refuse from now on */

enum { S_NEWREF, S_TRACK, S_UNTRACK, S_BSTOP, NSITES };

typedef struct site {
    unsigned char *entry;
    uint64_t *word; /* the aligned word holding entry[0..5) */
    uint64_t orig;
    uint64_t patched;
} site;

static site sites[NSITES];
static unsigned char *tramp; /* the near page; never unmapped */
static int *tracing_flag;    /* &_Py_tracemalloc_config.tracing */

static int patched_newref(PyObject *op)
{
    if (atomic_load_explicit(&ftmpy_hooks_newobj_wanted,
                             memory_order_relaxed)) {
        ftmpy_hooks_new_object(op);
    }
    return 0;
}

static int patched_track(unsigned int domain, uintptr_t ptr, size_t size)
{
    if (ftmpy_hooks_is_tracing()) {
        return ftmpy_hooks_track(domain, ptr, size);
    }
    return -2; /* the builtin's answer while nobody traces */
}

static int patched_untrack(unsigned int domain, uintptr_t ptr)
{
    if (ftmpy_hooks_is_tracing()) {
        return ftmpy_hooks_untrack(domain, ptr);
    }
    return -2;
}

/* The builtin's tracemalloc_stop, reached only from its finalizer
 * (_PyTraceMalloc_Fini, GIL held) while patched: the Python-level stop is
 * replaced.  The builtin does not trace: undo the patch, do nothing else.
 * Its tables are destroyed next, so no later start() may patch. */
static void patched_builtin_stop(void)
{
    exiting = 1;
    ftmpy_newref_patch_stop();
}

/* ---- the builtin _tracemalloc functions replaced while patched ------- */

static PyObject *b_is_tracing(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(a))
{
    Py_RETURN_FALSE; /* the builtin does not trace while we are patched */
}

static PyObject *b_stop(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(a))
{
    Py_RETURN_NONE; /* what the builtin's stop does while not tracing */
}

static PyObject *b_start(PyObject *m, PyObject *const *args, Py_ssize_t n);

typedef struct swap {
    const char *name;
    int flags;
    PyCFunction ours;
    PyMethodDef *def;
    PyCFunction orig;
} swap;

enum { W_START, W_STOP, W_IS_TRACING, NSWAPS };

static swap swaps[NSWAPS] = {
    {"start", METH_FASTCALL, (PyCFunction)(void (*)(void))b_start, NULL, NULL},
    {"stop", METH_NOARGS, b_stop, NULL, NULL},
    {"is_tracing", METH_NOARGS, b_is_tracing, NULL, NULL},
};

static PyObject *b_start(PyObject *m, PyObject *const *args, Py_ssize_t n)
{
    _PyCFunctionFast orig =
        (_PyCFunctionFast)(void (*)(void))swaps[W_START].orig;
    ftmpy_newref_patch_stop(); /* the builtin gets its flag back */
    return orig(m, args, n);
}

/* ---- checks ---------------------------------------------------------- */

static int32_t rd32(const unsigned char *p)
{
    int32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* Where a rip-relative operand points: instruction at p, len bytes long,
 * displacement at p + off. */
static uintptr_t rip_target(const unsigned char *p, int len, int off)
{
    return (uintptr_t)p + (uintptr_t)len + (uintptr_t)(intptr_t)rd32(p + off);
}

/* Bytes at p match pat where mask is 0xff. */
static int match(const unsigned char *p, const unsigned char *pat,
                 const unsigned char *mask, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((p[i] & mask[i]) != (pat[i] & mask[i])) {
            return 0;
        }
    }
    return 1;
}

/* The permissions ("r-xp", ...) of the mapping holding addr, in perms[5];
 * 0 if found. */
static int mapping_perms(uintptr_t addr, char perms[5])
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL) {
        return -1;
    }
    char line[512];
    int rc = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long lo, hi;
        char p[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, p) == 3 && lo <= addr &&
            addr < hi) {
            memcpy(perms, p, 5);
            rc = 0;
            break;
        }
    }
    fclose(f);
    return rc;
}

static int in_text(const void *p)
{
    char perms[5];
    return mapping_perms((uintptr_t)p, perms) == 0 &&
           strncmp(perms, "r-x", 3) == 0;
}

/* Find T and tracemalloc_stop (from the builtin stop's method, found by
 * find_swaps) and check the four entries; fills sites[].entry. */
static const char *check_code(void)
{
    unsigned char *cfg = dlsym(RTLD_DEFAULT, "_Py_tracemalloc_config");
    unsigned char *nr = dlsym(RTLD_DEFAULT, "_Py_NewReference");
    unsigned char *tr = dlsym(RTLD_DEFAULT, "PyTraceMalloc_Track");
    unsigned char *un = dlsym(RTLD_DEFAULT, "PyTraceMalloc_Untrack");
    if (cfg == NULL || nr == NULL || tr == NULL || un == NULL) {
        return "a symbol is missing (_Py_tracemalloc_config, "
               "_Py_NewReference, PyTraceMalloc_Track/Untrack)";
    }
    if (!in_text(nr) || !in_text(nr + 31) || !in_text(tr) || !in_text(un)) {
        return "_Py_NewReference or PyTraceMalloc_Track/Untrack is not in "
               "an r-x mapping";
    }
    uintptr_t tracing = (uintptr_t)cfg + sizeof(int); /* 2nd field */
    static const unsigned char nr_pat[32] = {
        0x8b, 0x05, 0,    0,    0,    0,    0x85, 0xc0, 0x75, 0x08, 0x48,
        0xc7, 0x07, 0x01, 0x00, 0x00, 0x00, 0xc3, 0x48, 0x83, 0xec, 0x18,
        0x48, 0x89, 0x7c, 0x24, 0x08, 0xe8, 0,    0,    0,    0};
    static const unsigned char nr_mask[32] = {
        0xff, 0xff, 0,    0,    0,    0,    0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0,    0,    0,    0};
    if (!match(nr, nr_pat, nr_mask, sizeof(nr_pat)) ||
        rip_target(nr, 6, 2) != tracing) {
        return "_Py_NewReference is not the expected code (Debian 3.11.2's)";
    }
    unsigned char *t = (unsigned char *)rip_target(nr + 27, 5, 1);
    static const unsigned char t_pat[10] = {0x8b, 0x05, 0,    0,    0,
                                            0,    0x85, 0xc0, 0x0f, 0x84};
    static const unsigned char t_mask[10] = {0xff, 0xff, 0,    0,    0,
                                             0,    0xff, 0xff, 0xff, 0xff};
    if (!in_text(t) || !match(t, t_pat, t_mask, sizeof(t_pat)) ||
        rip_target(t, 6, 2) != tracing) {
        return "_PyTraceMalloc_NewReference is not the expected code";
    }
    static const unsigned char c_pat[7] = {0x83, 0x3d, 0, 0, 0, 0, 0x00};
    static const unsigned char c_mask[7] = {0xff, 0xff, 0, 0, 0, 0, 0xff};
    if (!match(tr, c_pat, c_mask, 7) || rip_target(tr, 7, 2) != tracing ||
        !match(un, c_pat, c_mask, 7) || rip_target(un, 7, 2) != tracing) {
        return "PyTraceMalloc_Track/Untrack do not start with the expected "
               "test of the tracing flag";
    }
    /* _tracemalloc.stop: push %rax; call tracemalloc_stop; ... */
    unsigned char *bs = (unsigned char *)(void *)swaps[W_STOP].orig;
    static const unsigned char bs_pat[2] = {0x50, 0xe8};
    if (bs == NULL || !in_text(bs) || !match(bs, bs_pat, bs_pat, 2)) {
        return "_tracemalloc.stop is not the expected code";
    }
    unsigned char *stop = (unsigned char *)rip_target(bs + 1, 5, 1);
    if (!in_text(stop) || !match(stop, c_pat, c_mask, 7) ||
        rip_target(stop, 7, 2) != tracing) {
        return "tracemalloc_stop does not start with the expected test of "
               "the tracing flag";
    }
    sites[S_NEWREF].entry = t;
    sites[S_TRACK].entry = tr;
    sites[S_UNTRACK].entry = un;
    sites[S_BSTOP].entry = stop;
    for (int i = 0; i < NSITES; i++) {
        uintptr_t e = (uintptr_t)sites[i].entry;
        if ((e & 7) > 3) {
            return "a patched entry's first 5 bytes straddle two 8-byte "
                   "words (no single atomic store)";
        }
        sites[i].word = (uint64_t *)(e & ~(uintptr_t)7);
    }
    tracing_flag = (int *)tracing;
    return NULL;
}

/* The trampoline page, within rel32 reach of every site. */
static const char *make_tramp(void)
{
    if (tramp != NULL) {
        return NULL;
    }
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < NSITES; i++) {
        uintptr_t e = (uintptr_t)sites[i].entry;
        lo = e < lo ? e : lo;
        hi = e > hi ? e : hi;
    }
    const uintptr_t mb = (uintptr_t)1 << 20, reach = (uintptr_t)1 << 30;
    unsigned char *page = NULL;
    for (uintptr_t k = 1; k < 1024 && page == NULL; k++) {
        uintptr_t cand[2] = {(lo & ~(mb - 1)) - k * mb,
                             ((hi + mb - 1) & ~(mb - 1)) + k * mb};
        for (int j = 0; j < 2 && page == NULL; j++) {
            uintptr_t c = cand[j];
            if (c < 0x10000 || c > lo + reach || c + reach < hi ||
                (j == 0 && c > lo)) {
                continue;
            }
            void *p =
                mmap((void *)c, pg, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (p == MAP_FAILED) {
                continue;
            }
            if ((uintptr_t)p != c) { /* old kernel: taken as a hint */
                munmap(p, pg);
                continue;
            }
            page = p;
        }
    }
    if (page == NULL) {
        return "no free page within 1 GiB of the interpreter's code";
    }
    const uintptr_t targets[NSITES] = {
        (uintptr_t)patched_newref, (uintptr_t)patched_track,
        (uintptr_t)patched_untrack, (uintptr_t)patched_builtin_stop};
    for (int i = 0; i < NSITES; i++) {
        unsigned char *s = page + 16 * i;
        static const unsigned char jmp_abs[6] = {0xff, 0x25, 0, 0, 0, 0};
        memcpy(s, jmp_abs, sizeof(jmp_abs));
        memcpy(s + 6, &targets[i], sizeof(targets[i]));
    }
    if (mprotect(page, pg, PROT_READ | PROT_EXEC) != 0) {
        munmap(page, pg);
        return "mprotect of the trampoline page failed";
    }
    tramp = page;
    return NULL;
}

static void compute_patched_words(void)
{
    for (int i = 0; i < NSITES; i++) {
        site *s = &sites[i];
        s->orig = __atomic_load_n(s->word, __ATOMIC_RELAXED);
        unsigned char bytes[8];
        memcpy(bytes, &s->orig, 8);
        size_t off = (size_t)(s->entry - (unsigned char *)s->word);
        int32_t rel =
            (int32_t)((intptr_t)(tramp + 16 * i) - (intptr_t)(s->entry + 5));
        bytes[off] = 0xe9;
        memcpy(bytes + off + 1, &rel, 4);
        memcpy(&s->patched, bytes, 8);
    }
}

/* One atomic store of a code word; the page stays executable. */
static int write_code(uint64_t *word, uint64_t v)
{
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    void *base = (void *)((uintptr_t)word & ~(pg - 1));
    if (mprotect(base, pg, PROT_READ | PROT_WRITE | PROT_EXEC) != 0) {
        return -1;
    }
    __atomic_store_n(word, v, __ATOMIC_SEQ_CST);
    return mprotect(base, pg, PROT_READ | PROT_EXEC);
}

static const char *find_swaps(void)
{
    PyObject *mod = PyImport_ImportModule("_tracemalloc");
    if (mod == NULL) {
        PyErr_Clear();
        return "cannot import _tracemalloc";
    }
    const char *why = NULL;
    for (int i = 0; i < NSWAPS && why == NULL; i++) {
        PyObject *f = PyObject_GetAttrString(mod, swaps[i].name);
        if (f == NULL) {
            PyErr_Clear();
            why = "_tracemalloc lacks start, stop or is_tracing";
            break;
        }
        char perms[5];
        if (!PyCFunction_Check(f)) {
            why = "_tracemalloc.start/stop/is_tracing is not a builtin";
        } else {
            PyMethodDef *def = ((PyCFunctionObject *)f)->m_ml;
            if ((def->ml_flags & ~METH_COEXIST) != swaps[i].flags) {
                why = "_tracemalloc.start/stop/is_tracing has unexpected "
                      "calling flags";
            } else if (mapping_perms((uintptr_t)&def->ml_meth, perms) != 0 ||
                       strncmp(perms, "rw", 2) != 0) {
                why = "_tracemalloc's method table is not writable";
            } else {
                swaps[i].def = def;
                if (swaps[i].orig == NULL) {
                    swaps[i].orig = def->ml_meth;
                }
            }
        }
        Py_DECREF(f);
    }
    Py_DECREF(mod);
    return why;
}

/* Why ftmpy_newref_patch_init failed, or NULL. */
static const char *init_failure = "not initialized";

void ftmpy_newref_patch_init(void)
{
    init_failure = find_swaps(); /* imports _tracemalloc: its tables */
    if (init_failure == NULL) {
        init_failure = check_code();
    }
}

static const char *try_start(void)
{
    /* Test knobs: no re-stamping; nothing rewritten (capi_rebind.c). */
    static const char *const knobs[2] = {"_FASTTRACEMALLOC_REFUSE_NEWREF",
                                         "_FASTTRACEMALLOC_REFUSE_REBIND"};
    for (int i = 0; i < 2; i++) {
        const char *env = getenv(knobs[i]);
        if (env != NULL && strcmp(env, "1") == 0) {
            return i == 0 ? "_FASTTRACEMALLOC_REFUSE_NEWREF=1"
                          : "_FASTTRACEMALLOC_REFUSE_REBIND=1";
        }
    }
    if (exiting) {
        return "the interpreter is exiting";
    }
    if (init_failure != NULL) {
        return init_failure;
    }
    const char *why = check_code();
    if (why != NULL) {
        return why;
    }
    const int *cfg = tracing_flag - 1; /* _Py_tracemalloc_config */
    if (cfg[0] != 1) {
        return "the builtin tracemalloc is not initialized";
    }
    if (__atomic_load_n(tracing_flag, __ATOMIC_SEQ_CST) != 0) {
        return "the builtin tracemalloc is tracing";
    }
    if ((why = make_tramp()) != NULL) {
        return why;
    }
    compute_patched_words();
    for (int i = 0; i < NSWAPS; i++) {
        swaps[i].def->ml_meth = swaps[i].ours;
    }
    int i = 0;
    for (; i < NSITES; i++) {
        if (write_code(sites[i].word, sites[i].patched) != 0) {
            break;
        }
    }
    if (i < NSITES) {
        while (i-- > 0) {
            write_code(sites[i].word, sites[i].orig);
        }
        for (int j = 0; j < NSWAPS; j++) {
            swaps[j].def->ml_meth = swaps[j].orig;
        }
        return "mprotect of the interpreter's code failed";
    }
    __atomic_store_n(tracing_flag, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

int ftmpy_newref_patch_start(void)
{
    if (active) {
        return 0;
    }
    const char *why = try_start();
    if (why != NULL) {
        set_reason(why);
        return 1;
    }
    active = 1;
    ever = 1;
    reason[0] = '\0';
    return 0;
}

void ftmpy_newref_patch_stop(void)
{
    if (!active) {
        return;
    }
    __atomic_store_n(tracing_flag, 0, __ATOMIC_SEQ_CST);
    for (int i = NSITES - 1; i >= 0; i--) {
        /* Cannot fail: the same pages were made writable at start. */
        (void)write_code(sites[i].word, sites[i].orig);
    }
    for (int i = 0; i < NSWAPS; i++) {
        swaps[i].def->ml_meth = swaps[i].orig;
    }
    active = 0;
}

#else /* !FTMPY_NEWREF_PATCH */

void ftmpy_newref_patch_init(void)
{
}

int ftmpy_newref_patch_start(void)
{
    set_reason("only for CPython 3.11 on x86-64 Linux");
    return 1;
}

void ftmpy_newref_patch_stop(void)
{
}

#endif /* FTMPY_NEWREF_PATCH */

int ftmpy_newref_patch_stats_into(PyObject *d)
{
    if (ftmpy_stats_put(d, "newref_patched", PyBool_FromLong(ever)) < 0 ||
        ftmpy_stats_put(d, "newref_patch_active", PyBool_FromLong(active)) <
            0 ||
        ftmpy_stats_put(d, "newref_patch_reason",
                        reason[0] ? PyUnicode_FromString(reason)
                                  : Py_NewRef(Py_None)) < 0) {
        return -1;
    }
    return 0;
}
