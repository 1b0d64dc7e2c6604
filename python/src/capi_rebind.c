/*
 * capi_rebind.c -- see capi_rebind.h.  Routes the C API's tracing calls
 * (PyTraceMalloc_Track/Untrack, _PyTraceMalloc_GetTraceback) to the engine
 * by rewriting the GOT slots of every loaded ELF object that calls them.
 *
 * Why the GOT.  The builtin's functions check the builtin's own `tracing`
 * flag and return -2 while it is off, which it is while fasttracemalloc
 * traces.  An extension calls them through its GOT (JUMP_SLOT for a call
 * through the PLT, GLOB_DAT for -fno-plt calls and address-taking, a
 * plain 64-bit data relocation for a function pointer in a static table);
 * that slot holds whatever the dynamic loader resolved: libpython's
 * function (pyenv: python links libpython3.X.so) or the executable's
 * (Debian's and the 3.13t build link libpython statically and export it).
 * Either way the slot is in the CALLER's object, so rewriting the callers'
 * slots is the same operation for both layouts.  libpython itself never
 * calls the C API's three (checked on pyenv 3.11.7, 3.12.1, 3.13.0, Debian
 * 3.11.2, the 3.13t build and forky's 3.14/3.15: no relocation and no
 * direct call to them in libpython or the executable), so nothing inside
 * the interpreter needs redirecting for them; its slots are scanned like
 * any other object's anyway (and hold _Py_NewReference's, below).  Our own
 * object is skipped (the originals are looked up with dlsym, never through our
 * GOT).
 *
 * Not reached: calls that do not go through a GOT -- ctypes
 * (ctypes.pythonapi.PyTraceMalloc_Track is looked up with dlsym and gets
 * the builtin's function), a statically linked caller inside the
 * executable, or a function pointer the caller copied before the rewrite.
 * Those keep reaching the builtin, as before.
 *
 * The wrappers forward to the original whenever fasttracemalloc is not
 * tracing (hooks.h: ftmpy_hooks_is_tracing; _PyTraceMalloc_GetTraceback:
 * module.c), so a rewritten slot behaves exactly as the original then,
 * including when the builtin tracemalloc is the one tracing.
 *
 * When slots are rewritten.  On start() (ftmpy_capi_rebind), and by our
 * wrapper of ExtensionFileLoader.create_module (installed by the package
 * at import: _backend.py) while tracing: the new extension is dlopen()ed
 * with the interpreter's own flags before the interpreter opens it (same
 * handle), its slots rewritten, and only then does the interpreter run
 * its PyInit, so Track calls made by the init function are seen too.  The
 * wrapper is C, so it adds no frame to the tracebacks of what the init
 * allocates.  A scan
 * is skipped entirely when the loader's dlpi_adds counter has not moved
 * since the last one.
 *
 * Why it is safe.
 *   - Concurrent callers.  A slot is one aligned 8-byte word, read by the
 *     caller's single indirect jump/load; it is replaced by one atomic
 *     store, so a concurrent caller runs either the original or the
 *     wrapper, and both are correct (the wrapper forwards while not
 *     tracing; a call racing with start() is like an allocation racing
 *     with it: recorded or not).  The originals are stored once, at module
 *     init, before any slot can lead to a wrapper.
 *   - Half-loaded objects.  dl_iterate_phdr lists an object before the
 *     loader has relocated it and applied RELRO (another thread inside
 *     dlopen).  Writing there would be undone by the relocation, and
 *     making its page read-only early would crash the loader.  So the
 *     scan only COLLECTS slots; each object is then pinned with
 *     dlopen(name, RTLD_NOLOAD), which waits for a load in progress and
 *     fails for an object that went away, and its slots are written while
 *     it is pinned (so it cannot be dlclose()d under us either).
 *   - Read-only slots.  A slot inside the object's PT_GNU_RELRO range
 *     (rounded down at both ends, as the loader does) was made read-only
 *     by the loader: its page is made writable for the one store and
 *     read-only again.  Any other slot must be in a writable PT_LOAD
 *     segment (else it is skipped and counted in capi_slot_failures).
 *     Nobody else writes to a RELRO page after load; a second GOT patcher
 *     toggling the same page at the same instant is not guarded against.
 *   - Lazy binding.  A JUMP_SLOT not yet called holds the PLT stub; the
 *     rewrite replaces it and the resolver is never reached.  A thread
 *     that entered the resolver for that slot just before the rewrite
 *     (its first call, without the GIL, racing with start()) may store
 *     the original back: that object then keeps calling the builtin.  Not
 *     fixed (needs a first call racing with start()).
 *   - Restore.  stop() and uninstall() leave the slots pointing at the
 *     wrappers, which forward to the originals while not tracing.  The
 *     one exception: the newref targets' slots in the interpreter itself
 *     (`homes`, below) are pointed back at the original by a sampled
 *     session that re-stamps nothing, and at the wrapper again by the
 *     next session that does.
 *     Our module is never unloaded (CPython does not dlclose extension
 *     modules), so the wrappers outlive every slot that names them.
 *   - dlclose.  Slots live in their own object and die with it; no pointer
 *     into an object is kept after a scan.  An object loaded later at the
 *     same address moves dlpi_adds, so it is scanned afresh.
 *   - fork().  The child inherits the rewritten slots and the wrappers.
 *   - Locks.  A scan takes scan_lock, then the loader's locks (inside
 *     dl_iterate_phdr and dlopen), with the GIL held; the loader never
 *     calls us, so the order is fixed.  Like any dlopen() made with the
 *     GIL held (the interpreter's own imports do it), the pin waits for a
 *     library another thread is loading; a constructor of that library
 *     that waited for the GIL would deadlock with it.
 *
 * _Py_NewReference (3.11 and 3.12 only).  CPython hands out list, dict,
 * float, tuple, ... objects from free lists without calling the
 * allocator; every new object, from a free list or not, passes through
 * _Py_NewReference (3.12: also _Py_NewReferenceNoTotal), which re-stamps
 * the object's trace only for the builtin (3.13+ has PyRefTracer, which
 * hooks.c uses instead).  Both are slots here too, with wrappers that call
 * the original and then, while tracing in a mode that wants the event
 * (hooks.h: ftmpy_hooks_newobj_wanted, one inline load; a sampled session
 * that does not re-stamp tail-calls the original and nothing else),
 * ftmpy_hooks_new_object().  This
 * reaches the interpreter's own calls only where libpython calls them
 * through its PLT: a shared libpython built with semantic interposition
 * (pyenv 3.11.7 and 3.12.1: every call, 68 + 5 call sites, goes through
 * the PLT, none is direct).  A static executable (Debian's
 * /usr/bin/python3.11) calls its own copy directly (LTO inlined it into
 * every caller): only extensions' calls are reached here, newref_rebound
 * (below) stays false, and newref_patch.c re-stamps there instead by
 * patching the entry of _PyTraceMalloc_NewReference (elsewhere free-list
 * objects keep their block's first traceback).  newref_rebound
 * becomes true once a slot of the object that DEFINES the function was
 * rewritten.  Cost: one more indirect call per object creation, also
 * after stop() (slots stay rewritten), except after a sampled session
 * that re-stamps nothing (ftmpy_capi_newref_route); while tracing, one
 * capture and one engine event per new object, the builtin's own work.
 *
 * Refusal.  Not ELF/Linux, not x86-64 or AArch64, the originals not found
 * by dlsym, or _FASTTRACEMALLOC_REFUSE_REBIND=1 in the environment at
 * import (tests): nothing is rewritten, ONE RuntimeWarning per process
 * says why, capi_refusals counts start()s that were refused and
 * capi_reason keeps the reason; the C API keeps going to the builtin.
 *
 * Threads.  Scans run under scan_lock (a pthread mutex, taken with the
 * GIL held or, free-threaded, attached; nothing under it calls Python).
 * Counters are relaxed atomics.  `refused`/`reason` are written once, at
 * init (GIL).
 */
#include <Python.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capi_rebind.h"
#include "hooks.h"

#if defined(__linux__) && defined(__ELF__) &&                                 \
    (defined(__x86_64__) || defined(__aarch64__))
#define FTMPY_CAN_REBIND 1
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>
#if defined(__x86_64__)
#define R_SLOT R_X86_64_JUMP_SLOT
#define R_GLOB R_X86_64_GLOB_DAT
#define R_ABS R_X86_64_64
#else
#define R_SLOT R_AARCH64_JUMP_SLOT
#define R_GLOB R_AARCH64_GLOB_DAT
#define R_ABS R_AARCH64_ABS64
#endif
#else
#define FTMPY_CAN_REBIND 0
#endif

typedef int (*track_fn)(unsigned int, uintptr_t, size_t);
typedef int (*untrack_fn)(unsigned int, uintptr_t);
typedef PyObject *(*gettb_fn)(unsigned int, uintptr_t);

/* Written once at init (GIL), before any slot names a wrapper. */
static track_fn orig_track;
static untrack_fn orig_untrack;
static gettb_fn orig_gettb;
static int refused;
static char reason[160];
#if PY_VERSION_HEX < 0x030D0000
typedef void (*newref_fn)(PyObject *);
static newref_fn orig_newref;
#if PY_VERSION_HEX >= 0x030C0000
static newref_fn orig_newref_nototal;
#endif
#endif

static atomic_uint_fast64_t st_scans;    /* scans of new objects */
static atomic_uint_fast64_t st_slots;    /* slots rewritten */
static atomic_uint_fast64_t st_failures; /* slots found but not written */
static atomic_uint_fast64_t st_refusals; /* start()s refused */
static atomic_int st_active;             /* 1 once a scan completed */
static atomic_int st_newref_home; /* 1 once the definer's slot is ours */
static atomic_uint_fast64_t st_newref_refusals; /* start()s not re-stamping */

static atomic_flag warned = ATOMIC_FLAG_INIT;

static int w_track(unsigned int domain, uintptr_t ptr, size_t size)
{
    if (!ftmpy_hooks_is_tracing()) {
        return orig_track(domain, ptr, size);
    }
    return ftmpy_hooks_track(domain, ptr, size);
}

static int w_untrack(unsigned int domain, uintptr_t ptr)
{
    if (!ftmpy_hooks_is_tracing()) {
        return orig_untrack(domain, ptr);
    }
    return ftmpy_hooks_untrack(domain, ptr);
}

static PyObject *w_gettb(unsigned int domain, uintptr_t ptr)
{
    PyObject *out = NULL;
    if (ftmpy_module_traceback(domain, ptr, &out)) {
        return out;
    }
    return orig_gettb(domain, ptr);
}

#if PY_VERSION_HEX < 0x030D0000
static void w_newref(PyObject *op)
{
    if (!atomic_load_explicit(&ftmpy_hooks_newobj_wanted,
                              memory_order_relaxed)) {
        orig_newref(op); /* a tail call: not tracing, or sampled */
        return;
    }
    orig_newref(op);
    ftmpy_hooks_new_object(op);
}

#if PY_VERSION_HEX >= 0x030C0000
static void w_newref_nototal(PyObject *op)
{
    if (!atomic_load_explicit(&ftmpy_hooks_newobj_wanted,
                              memory_order_relaxed)) {
        orig_newref_nototal(op); /* a tail call: not tracing, or sampled */
        return;
    }
    orig_newref_nototal(op);
    ftmpy_hooks_new_object(op);
}
#endif
#endif

static void refuse(const char *why)
{
    refused = 1;
    snprintf(reason, sizeof(reason), "%s", why);
}

#if FTMPY_CAN_REBIND

typedef struct target {
    const char *name;
    uintptr_t wrapper;
    uintptr_t original; /* newref targets: the function; else 0 */
} target;

static target targets[5];
static int ntargets;
static pthread_mutex_t scan_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long last_adds; /* scan_lock */

/* Objects already scanned (scan_lock), so that loading one extension
 * scans only what is new.  An object is named by its load bias and the
 * address of its program headers (unique among the objects loaded at one
 * time).  Valid only while nothing was unloaded since it was filled
 * (dlpi_subs == seen_subs): a dlclose() empties it, since a new object
 * may then be loaded at a freed address. */
typedef struct objkey {
    uintptr_t addr;
    uintptr_t phdr;
} objkey;

static objkey *seen;
static size_t nseen, capseen;
static unsigned long long seen_subs;

void ftmpy_capi_init(void)
{
    static int done; /* PyInit may run again (sub-interpreters) */
    if (done) {
        return;
    }
    done = 1;
    const char *env = getenv("_FASTTRACEMALLOC_REFUSE_REBIND");
    if (env != NULL && strcmp(env, "1") == 0) {
        refuse("refused by _FASTTRACEMALLOC_REFUSE_REBIND=1");
        return;
    }
    orig_track = (track_fn)dlsym(RTLD_DEFAULT, "PyTraceMalloc_Track");
    orig_untrack = (untrack_fn)dlsym(RTLD_DEFAULT, "PyTraceMalloc_Untrack");
    orig_gettb = (gettb_fn)dlsym(RTLD_DEFAULT, "_PyTraceMalloc_GetTraceback");
    if (orig_track == NULL || orig_untrack == NULL) {
        refuse("PyTraceMalloc_Track/Untrack not found by dlsym");
        return;
    }
    targets[ntargets++] =
        (target){"PyTraceMalloc_Track", (uintptr_t)w_track, 0};
    targets[ntargets++] =
        (target){"PyTraceMalloc_Untrack", (uintptr_t)w_untrack, 0};
    if (orig_gettb != NULL) { /* private: may be absent from a build */
        targets[ntargets++] =
            (target){"_PyTraceMalloc_GetTraceback", (uintptr_t)w_gettb, 0};
    }
#if PY_VERSION_HEX < 0x030D0000
    const char *no_newref = getenv("_FASTTRACEMALLOC_REFUSE_NEWREF");
    if (no_newref != NULL && strcmp(no_newref, "1") == 0) {
        return; /* tests: the static-interpreter path, forced */
    }
    /* private, exported by every 3.11/3.12 build; absent: no re-stamping */
    orig_newref = (newref_fn)dlsym(RTLD_DEFAULT, "_Py_NewReference");
    if (orig_newref != NULL) {
        targets[ntargets++] = (target){"_Py_NewReference", (uintptr_t)w_newref,
                                       (uintptr_t)orig_newref};
    }
#if PY_VERSION_HEX >= 0x030C0000
    orig_newref_nototal =
        (newref_fn)dlsym(RTLD_DEFAULT, "_Py_NewReferenceNoTotal");
    if (orig_newref_nototal != NULL) {
        targets[ntargets++] =
            (target){"_Py_NewReferenceNoTotal", (uintptr_t)w_newref_nototal,
                     (uintptr_t)orig_newref_nototal};
    }
#endif
#endif
}

/* One slot found by a scan. */
typedef struct slot {
    size_t obj;     /* index into the scan's object names */
    uintptr_t addr; /* the slot */
    uintptr_t value;
    uintptr_t original; /* home slots: the function itself; else 0 */
    int relro;          /* inside the object's RELRO range: read-only */
    int home;           /* a newref target's slot in the object defining it */
} slot;

#if PY_VERSION_HEX < 0x030D0000
/* The newref targets' home slots (the object that defines them:
 * libpython, or the executable), remembered across scans -- the one
 * exception to "no pointer into an object is kept": that object is the
 * interpreter itself and is never unloaded.  They carry the interpreter's
 * own calls (nearly all of them), so ftmpy_capi_newref_route can point
 * them back at the original for a session that re-stamps nothing, and at
 * the wrapper again for one that does.  Either value is correct at any
 * time (the wrapper forwards while nothing is wanted); only the cost
 * differs.  scan_lock. */
#define MAX_HOME_SLOTS 16
static slot homes[MAX_HOME_SLOTS];
static int nhomes;
static int homes_wrapped = 1; /* what the last route asked for */
#endif

typedef struct scan {
    uintptr_t self; /* an address inside our own object */
    slot *slots;    /* libc memory: never the traced allocators */
    size_t nslots, capslots;
    char **objs;  /* names of objects that have slots ("" = main) */
    objkey *keys; /* their keys, parallel to objs */
    size_t nobjs, capobjs;
    size_t cur_obj; /* index of the object being scanned, or SIZE_MAX */
    int oom;
} scan;

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) {
        return 0;
    }
    size_t ncap = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, ncap * elem);
    if (p == NULL) {
        return -1;
    }
    *arr = p;
    *cap = ncap;
    return 0;
}

static objkey key_of(const struct dl_phdr_info *info)
{
    return (objkey){info->dlpi_addr, (uintptr_t)info->dlpi_phdr};
}

static int is_seen(objkey k)
{
    for (size_t i = 0; i < nseen; i++) {
        if (seen[i].addr == k.addr && seen[i].phdr == k.phdr) {
            return 1;
        }
    }
    return 0;
}

/* Out of memory only means the object is scanned again next time. */
static void mark_seen(objkey k)
{
    if (grow((void **)&seen, &capseen, nseen, sizeof(objkey)) == 0) {
        seen[nseen++] = k;
    }
}

static void add_slot(scan *s, const struct dl_phdr_info *info, uintptr_t addr,
                     uintptr_t value, uintptr_t original, int relro, int home)
{
    if (s->cur_obj == SIZE_MAX) {
        size_t capkeys = s->capobjs;
        char *name = strdup(info->dlpi_name ? info->dlpi_name : "");
        if (name == NULL ||
            grow((void **)&s->keys, &capkeys, s->nobjs, sizeof(objkey)) < 0 ||
            grow((void **)&s->objs, &s->capobjs, s->nobjs, sizeof(char *)) <
                0) {
            free(name);
            s->oom = 1;
            return;
        }
        s->cur_obj = s->nobjs;
        s->keys[s->nobjs] = key_of(info);
        s->objs[s->nobjs++] = name;
    }
    if (grow((void **)&s->slots, &s->capslots, s->nslots, sizeof(slot)) < 0) {
        s->oom = 1;
        return;
    }
    s->slots[s->nslots++] =
        (slot){s->cur_obj, addr, value, home ? original : 0, relro, home};
}

/* Entries of the dynamic section hold run-time addresses once the loader
 * relocated them (glibc does, for a writable .dynamic), link-time ones
 * otherwise (the vDSO, read-only .dynamic): a value below the load bias
 * cannot be a run-time address of this object. */
static uintptr_t dyn_addr(const struct dl_phdr_info *info, uintptr_t v)
{
    return v < info->dlpi_addr ? v + info->dlpi_addr : v;
}

/* 1 if `addr` lies in one of the object's PT_LOAD segments. */
static int in_load(const struct dl_phdr_info *info, uintptr_t addr)
{
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && addr >= lo && addr < lo + ph->p_memsz) {
            return 1;
        }
    }
    return 0;
}

/* 1 if [addr, addr+8) lies in a writable PT_LOAD segment of the object. */
static int in_writable_load(const struct dl_phdr_info *info, uintptr_t addr)
{
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W) && addr >= lo &&
            addr + sizeof(uintptr_t) <= lo + ph->p_memsz) {
            return 1;
        }
    }
    return 0;
}

typedef struct dynview {
    const ElfW(Sym) * symtab;
    const char *strtab;
    size_t strsz;
    uintptr_t relro_lo, relro_hi; /* page-rounded down, as the loader */
} dynview;

static void scan_relocs(scan *s, const struct dl_phdr_info *info,
                        const dynview *dv, const ElfW(Rela) * rel,
                        size_t bytes, size_t ent)
{
    if (rel == NULL || ent < sizeof(ElfW(Rela))) {
        return;
    }
    for (size_t off = 0; off + ent <= bytes; off += ent) {
        const ElfW(Rela) *r = (const ElfW(Rela) *)((const char *)rel + off);
        unsigned long type = ELF64_R_TYPE(r->r_info);
        unsigned long sym = ELF64_R_SYM(r->r_info);
        if (sym == 0 || !(type == R_SLOT || type == R_GLOB ||
                          (type == R_ABS && r->r_addend == 0))) {
            continue;
        }
        ElfW(Word) name_off = dv->symtab[sym].st_name;
        if (dv->strsz != 0 && name_off >= dv->strsz) {
            continue;
        }
        const char *name = dv->strtab + name_off;
        for (int k = 0; k < ntargets; k++) {
            if (strcmp(name, targets[k].name) != 0) {
                continue;
            }
            uintptr_t addr = info->dlpi_addr + r->r_offset;
            if (addr % sizeof(uintptr_t) != 0 ||
                !in_writable_load(info, addr)) {
                atomic_fetch_add_explicit(&st_failures, 1,
                                          memory_order_relaxed);
                break;
            }
            int relro = addr >= dv->relro_lo && addr < dv->relro_hi;
            add_slot(s, info, addr, targets[k].wrapper, targets[k].original,
                     relro,
                     targets[k].original != 0 &&
                         in_load(info, targets[k].original));
            break;
        }
    }
}

static int scan_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    scan *s = arg;
    (void)size;
    if (is_seen(key_of(info))) {
        return 0;
    }
    const ElfW(Phdr) *dynph = NULL;
    dynview dv = {0};
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_DYNAMIC) {
            dynph = ph;
        } else if (ph->p_type == PT_GNU_RELRO) {
            dv.relro_lo = lo & ~(page - 1);
            dv.relro_hi = (lo + ph->p_memsz) & ~(page - 1);
        } else if (ph->p_type == PT_LOAD && s->self >= lo &&
                   s->self < lo + ph->p_memsz) {
            return 0; /* our own object: its slots stay the originals */
        }
    }
    if (dynph == NULL) {
        return 0;
    }
    const ElfW(Rela) *jmprel = NULL, *rela = NULL;
    size_t pltrelsz = 0, relasz = 0, relaent = sizeof(ElfW(Rela));
    long pltrel = DT_RELA;
    const ElfW(Dyn) *d = (const ElfW(Dyn) *)(info->dlpi_addr + dynph->p_vaddr);
    for (; d->d_tag != DT_NULL; d++) {
        switch (d->d_tag) {
        case DT_SYMTAB:
            dv.symtab = (const ElfW(Sym) *)dyn_addr(info, d->d_un.d_ptr);
            break;
        case DT_STRTAB:
            dv.strtab = (const char *)dyn_addr(info, d->d_un.d_ptr);
            break;
        case DT_STRSZ:
            dv.strsz = d->d_un.d_val;
            break;
        case DT_JMPREL:
            jmprel = (const ElfW(Rela) *)dyn_addr(info, d->d_un.d_ptr);
            break;
        case DT_PLTRELSZ:
            pltrelsz = d->d_un.d_val;
            break;
        case DT_PLTREL:
            pltrel = (long)d->d_un.d_val;
            break;
        case DT_RELA:
            rela = (const ElfW(Rela) *)dyn_addr(info, d->d_un.d_ptr);
            break;
        case DT_RELASZ:
            relasz = d->d_un.d_val;
            break;
        case DT_RELAENT:
            relaent = d->d_un.d_val;
            break;
        default:
            break;
        }
    }
    if (dv.symtab == NULL || dv.strtab == NULL) {
        return 0;
    }
    s->cur_obj = SIZE_MAX;
    if (pltrel == DT_RELA) {
        scan_relocs(s, info, &dv, jmprel, pltrelsz, sizeof(ElfW(Rela)));
    }
    scan_relocs(s, info, &dv, rela, relasz, relaent);
    if (s->oom) {
        return 1;
    }
    if (s->cur_obj == SIZE_MAX) {
        mark_seen(key_of(info)); /* nothing to rewrite: done for good */
    }
    return 0;
}

typedef struct counters {
    unsigned long long adds, subs;
} counters;

static int read_counters(struct dl_phdr_info *info, size_t size, void *arg)
{
    counters *c = arg;
    if (size >=
        offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) {
        c->adds = info->dlpi_adds;
        c->subs = info->dlpi_subs;
    }
    return 1; /* the counters are the same in every entry: stop */
}

/* Store `value` at the slot's address unless it is there already; the
 * page is made writable for the store if the loader made it read-only
 * (RELRO), and read-only again after it.  1 if stored, 0 if it was
 * already there, -1 if mprotect refused (nothing written).  The one place
 * that writes a GOT word: write_slot (a scan's rewrite, counted) and
 * route_homes_locked (a session's choice for the home slots, not a new
 * rewrite) both come here. */
static int store_slot(uintptr_t addr, uintptr_t value, int relro,
                      uintptr_t page)
{
    uintptr_t *p = (uintptr_t *)addr;
    if (__atomic_load_n(p, __ATOMIC_RELAXED) == value) {
        return 0;
    }
    void *pg = (void *)(addr & ~(page - 1));
    if (relro && mprotect(pg, page, PROT_READ | PROT_WRITE) != 0) {
        return -1;
    }
    __atomic_store_n(p, value, __ATOMIC_RELEASE);
    if (relro) {
        (void)mprotect(pg, page, PROT_READ);
    }
    return 1;
}

/* A scan's rewrite of one slot to its wrapper: 0 (counted in st_slots if
 * it was not already there from an earlier scan), or -1 if mprotect
 * refused. */
static int write_slot(const slot *sl, uintptr_t page)
{
    int r = store_slot(sl->addr, sl->value, sl->relro, page);
    if (r > 0) {
        atomic_fetch_add_explicit(&st_slots, 1, memory_order_relaxed);
    }
    return r < 0 ? -1 : 0;
}

#if PY_VERSION_HEX < 0x030D0000
static void remember_home(const slot *sl)
{
    for (int i = 0; i < nhomes; i++) {
        if (homes[i].addr == sl->addr) {
            return; /* found again by a rescan */
        }
    }
    if (nhomes < MAX_HOME_SLOTS) {
        homes[nhomes++] = *sl;
    }
}

/* Point every home slot at the wrapper (wrapped) or the original.  Each
 * store is one atomic word; GIL builds only (3.11/3.12), and the caller
 * holds the GIL, so no object is being created meanwhile anyway. */
static void route_homes_locked(int wrapped, uintptr_t page)
{
    homes_wrapped = wrapped;
    for (int i = 0; i < nhomes; i++) {
        const slot *sl = &homes[i];
        uintptr_t value = wrapped ? sl->value : sl->original;
        if (store_slot(sl->addr, value, sl->relro, page) < 0) {
            /* stays as it was: correct, only slower or faster */
            atomic_fetch_add_explicit(&st_failures, 1, memory_order_relaxed);
        }
    }
}
#else
static void remember_home(const slot *sl)
{
    (void)sl;
}
#endif

/* Scan under scan_lock; 0, or -1 on out of memory (nothing lost: the next
 * call scans again). */
static int rebind_locked(void)
{
    counters c = {0, 0};
    dl_iterate_phdr(read_counters, &c);
    if (c.adds != 0 && c.adds == last_adds) {
        return 0;
    }
    if (c.adds == 0 || c.subs != seen_subs) {
        nseen = 0; /* something was unloaded (or no counters): rescan all */
        seen_subs = c.subs;
    }
    scan s = {.self = (uintptr_t)&w_track, .cur_obj = SIZE_MAX};
    dl_iterate_phdr(scan_object, &s);
    int rc = s.oom ? -1 : 0;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    size_t i = 0;
    while (i < s.nslots) {
        size_t obj = s.slots[i].obj;
        const char *name = s.objs[obj];
        /* Pin: waits for a load in progress; NULL if it went away. */
        void *h = dlopen(name[0] ? name : NULL, RTLD_LAZY | RTLD_NOLOAD);
        int failed = 0;
        for (; i < s.nslots && s.slots[i].obj == obj; i++) {
            if (h == NULL || write_slot(&s.slots[i], page) < 0) {
                atomic_fetch_add_explicit(&st_failures, 1,
                                          memory_order_relaxed);
                failed = 1;
            } else if (s.slots[i].home) {
                atomic_store_explicit(&st_newref_home, 1,
                                      memory_order_relaxed);
                remember_home(&s.slots[i]);
            }
        }
        if (h != NULL) {
            dlclose(h);
        }
        if (!failed) {
            mark_seen(s.keys[obj]);
        }
    }
    for (size_t k = 0; k < s.nobjs; k++) {
        free(s.objs[k]);
    }
    free(s.objs);
    free(s.keys);
    free(s.slots);
#if PY_VERSION_HEX < 0x030D0000
    if (!homes_wrapped) {
        route_homes_locked(0, page); /* a rescan wrote the wrappers back */
    }
#endif
    atomic_fetch_add_explicit(&st_scans, 1, memory_order_relaxed);
    if (rc == 0) {
        last_adds = c.adds;
        atomic_store_explicit(&st_active, 1, memory_order_relaxed);
    }
    return rc;
}

static int do_rebind(void)
{
    pthread_mutex_lock(&scan_lock);
    int rc = rebind_locked();
    pthread_mutex_unlock(&scan_lock);
    return rc;
}

void ftmpy_capi_newref_route(int wrapped)
{
#if PY_VERSION_HEX < 0x030D0000
    pthread_mutex_lock(&scan_lock);
    route_homes_locked(wrapped, (uintptr_t)sysconf(_SC_PAGESIZE));
    pthread_mutex_unlock(&scan_lock);
#else
    (void)wrapped;
#endif
}

static int newref_home_wrapped(void)
{
#if PY_VERSION_HEX < 0x030D0000
    pthread_mutex_lock(&scan_lock);
    int w = nhomes > 0 && homes_wrapped;
    pthread_mutex_unlock(&scan_lock);
    return w;
#else
    return 0;
#endif
}

#else /* !FTMPY_CAN_REBIND */

void ftmpy_capi_newref_route(int wrapped)
{
    (void)wrapped;
}

static int newref_home_wrapped(void)
{
    return 0;
}

void ftmpy_capi_init(void)
{
    (void)w_track;
    (void)w_untrack;
    (void)w_gettb;
#if PY_VERSION_HEX < 0x030D0000
    (void)w_newref;
#if PY_VERSION_HEX >= 0x030C0000
    (void)w_newref_nototal;
#endif
#endif
    refuse("rewriting GOT slots is only implemented for ELF on Linux "
           "x86-64 and AArch64");
}

static int do_rebind(void)
{
    return 0;
}

#endif /* FTMPY_CAN_REBIND */

int ftmpy_capi_newref_home(void)
{
    return atomic_load_explicit(&st_newref_home, memory_order_relaxed);
}

/* A start() that re-stamps neither through the GOT nor through
 * newref_patch.c.  No warning: on a static interpreter other than the one
 * newref_patch.c knows it would fire in every traced process, and a
 * warning at start() perturbs what is traced (the warnings machinery
 * fills free lists and caches right before the session) and what the
 * program prints; _stats() and the README say it instead. */
void ftmpy_capi_newref_refused(void)
{
    atomic_fetch_add_explicit(&st_newref_refusals, 1, memory_order_relaxed);
}

int ftmpy_capi_rebind(void)
{
    if (!refused) {
        if (do_rebind() < 0) {
            /* out of memory: left as it was, the next start() retries */
            PyErr_Clear();
        }
        return 0;
    }
    atomic_fetch_add_explicit(&st_refusals, 1, memory_order_relaxed);
    if (!atomic_flag_test_and_set(&warned) &&
        PyErr_WarnFormat(PyExc_RuntimeWarning, 1,
                         "fasttracemalloc cannot route the C API "
                         "(PyTraceMalloc_Track/Untrack) to its engine: %s; "
                         "memory tracked by C extensions (numpy arrays, "
                         "...) is not traced",
                         reason) < 0) {
        return -1;
    }
    return 1;
}

/* ---- the extension-loader hook ---------------------------------------- */

/* The original ExtensionFileLoader.create_module (strong reference, kept
 * for the life of the process: the hook is never removed).  Written once,
 * by _capi_hook_loader during the package's import (the import lock
 * serialises it), BEFORE the wrapper is published on the class. */
static PyObject *orig_create_module;

#if FTMPY_CAN_REBIND
/* Open the extension `loader` is about to load with the interpreter's own
 * dlopen flags and rewrite its slots.  Returns the handle to close once
 * the interpreter has opened it too, or NULL (nothing opened: the
 * interpreter's own dlopen then reports any error).  Never raises. */
static void *preload(PyObject *loader)
{
    void *h = NULL;
    PyObject *path = PyObject_GetAttrString(loader, "path");
    PyObject *bytes = NULL;
    PyObject *getflags = PySys_GetObject("getdlopenflags"); /* borrowed */
    PyObject *flags = getflags ? PyObject_CallNoArgs(getflags) : NULL;
    if (path != NULL && flags != NULL && PyUnicode_FSConverter(path, &bytes)) {
        long fl = PyLong_AsLong(flags);
        if (!(fl == -1 && PyErr_Occurred()) && fl >= INT_MIN &&
            fl <= INT_MAX) {
            h = dlopen(PyBytes_AS_STRING(bytes), (int)fl);
            if (h != NULL) {
                (void)do_rebind();
            }
        }
    }
    PyErr_Clear();
    Py_XDECREF(bytes);
    Py_XDECREF(flags);
    Py_XDECREF(path);
    return h;
}
#endif

/* create_module(self, spec), installed as an instance method of
 * ExtensionFileLoader.  In C, so that it adds no Python frame to the
 * tracebacks of what the extension's init allocates (the builtin's show
 * importlib's frames only).  While tracing: preload (its own work runs
 * in the thread's "do not trace" scope), the original, then a rescan for
 * whatever the init loaded in turn.  Otherwise: the original alone. */
static PyObject *hook_create_module(PyObject *Py_UNUSED(self),
                                    PyObject *const *args, Py_ssize_t nargs)
{
    if (refused || !ftmpy_hooks_is_tracing() || nargs < 1) {
        return PyObject_Vectorcall(orig_create_module, args, (size_t)nargs,
                                   NULL);
    }
#if FTMPY_CAN_REBIND
    ftmpy_suppress_begin();
    void *h = preload(args[0]);
    ftmpy_suppress_end();
    PyObject *mod =
        PyObject_Vectorcall(orig_create_module, args, (size_t)nargs, NULL);
    if (h != NULL) {
        dlclose(h);
    }
    (void)do_rebind();
    return mod;
#else
    return PyObject_Vectorcall(orig_create_module, args, (size_t)nargs, NULL);
#endif
}

static PyMethodDef hook_def = {
    "create_module", (PyCFunction)(void (*)(void))hook_create_module,
    METH_FASTCALL,
    "create_module(self, spec)\n--\n\nfasttracemalloc's wrapper: routes "
    "the extension's C API tracing calls to the engine, then creates the "
    "module as the original does."};

/* _capi_hook_loader(cls): wrap cls.create_module (idempotent). */
static PyObject *py_hook_loader(PyObject *Py_UNUSED(mod), PyObject *cls)
{
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "_capi_hook_loader: a class");
        return NULL;
    }
    if (orig_create_module != NULL) {
        Py_RETURN_NONE; /* one loader class per process: already done */
    }
    PyObject *orig = PyObject_GetAttrString(cls, "create_module");
    if (orig == NULL) {
        return NULL;
    }
    PyObject *fn = PyCFunction_New(&hook_def, NULL);
    PyObject *meth = fn ? PyInstanceMethod_New(fn) : NULL;
    Py_XDECREF(fn);
    if (meth == NULL) {
        Py_DECREF(orig);
        return NULL;
    }
    orig_create_module = orig; /* keeps the reference */
    if (PyObject_SetAttrString(cls, "create_module", meth) < 0) {
        Py_DECREF(meth);
        orig_create_module = NULL;
        Py_DECREF(orig);
        return NULL;
    }
    Py_DECREF(meth);
    Py_RETURN_NONE;
}

static PyObject *py_rebind(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(a))
{
#if FTMPY_CAN_REBIND
    if (!refused) {
        (void)do_rebind();
    }
#endif
    Py_RETURN_NONE;
}

static PyMethodDef capi_methods[] = {
    {"_capi_hook_loader", py_hook_loader, METH_O,
     "_capi_hook_loader($module, cls, /)\n--\n\nWrap cls.create_module so "
     "that extensions loaded while tracing are rebound (private)."},
    {"_capi_rebind", py_rebind, METH_NOARGS,
     "_capi_rebind($module, /)\n--\n\nRewrite the C API slots of objects "
     "loaded since the last scan (private: tests, benchmarks)."},
    {NULL, NULL, 0, NULL},
};

int ftmpy_capi_add_functions(PyObject *mod)
{
    return PyModule_AddFunctions(mod, capi_methods);
}

int ftmpy_stats_put(PyObject *d, const char *key, PyObject *v)
{
    if (v == NULL) {
        return -1;
    }
    int rc = PyDict_SetItemString(d, key, v);
    Py_DECREF(v);
    return rc;
}

int ftmpy_capi_stats_into(PyObject *d)
{
#define U64(x)                                                                \
    PyLong_FromUnsignedLongLong(                                              \
        (unsigned long long)atomic_load_explicit(&(x), memory_order_relaxed))
    if (ftmpy_stats_put(
            d, "capi_rebound",
            PyBool_FromLong(
                !refused &&
                atomic_load_explicit(&st_active, memory_order_relaxed))) < 0 ||
        ftmpy_stats_put(d, "capi_scans", U64(st_scans)) < 0 ||
        ftmpy_stats_put(d, "capi_slots", U64(st_slots)) < 0 ||
        ftmpy_stats_put(d, "capi_slot_failures", U64(st_failures)) < 0 ||
        ftmpy_stats_put(d, "capi_refusals", U64(st_refusals)) < 0 ||
        ftmpy_stats_put(d, "newref_rebound",
                        PyBool_FromLong(atomic_load_explicit(
                            &st_newref_home, memory_order_relaxed))) < 0 ||
        ftmpy_stats_put(d, "newref_refusals", U64(st_newref_refusals)) < 0 ||
        ftmpy_stats_put(d, "newref_wrapped",
                        PyBool_FromLong(newref_home_wrapped())) < 0 ||
        ftmpy_stats_put(d, "capi_reason",
                        refused ? PyUnicode_FromString(reason)
                                : Py_NewRef(Py_None)) < 0) {
        return -1;
    }
#undef U64
    return 0;
}
