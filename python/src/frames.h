/*
 * frames.h -- the interpreter-version-neutral view of a thread's Python
 * stack, used by the allocation hooks (hooks.c) and the query side
 * (resolve.c).
 *
 * Owns nothing.  Every function that needs the interpreter's private frame
 * layout (or any other API that differs between interpreter versions) is
 * implemented in ONE file per interpreter family -- frames_py311.c,
 * frames_py312.c, frames_py313.c (3.13 and 3.13t), frames_py314.c (3.14
 * and 3.15) -- chosen by python/CMakeLists.txt; those are the only files
 * compiled with Py_BUILD_CORE, and nothing else in the extension tests
 * PY_VERSION_HEX.
 *
 * Frame record (ftm_frame, 16 bytes, opaque to the engine), two kinds told
 * apart by the low two bits of `a`:
 *   kind SHAPE     a = (shape id << 2) | 2 (shapes.h), b = the byte
 *                  distance from the code object's start to the frame's
 *                  instruction pointer (the interpreter's lasti, offset by
 *                  ftmpy_code_unit0()).  Captured with the GIL held
 *                  (free-threaded: attached, inside the code-set gate);
 *                  names no object, so it stays exact after the code
 *                  object died.  The line is decoded only when a query
 *                  needs it (shapes.h).
 *   kind RESOLVED  a = (filename id << 1) | 1 (filenames.c), b = line
 *                  number.  Captured WITHOUT the GIL (RAW domain), where no
 *                  shape may be looked up: the line is decoded right there
 *                  from the live, immutable code object and the filename
 *                  is copied by content, so the record owns no pointer.
 * The walk itself (ftmpy_walk) produces raw records, a = the code object's
 * address, b = its instruction pointer | generator bit, which the capture
 * keeps only to compare the next walk with (hooks.c) and never hands to
 * the engine.
 * FTMPY_FRAME_UNKNOWN (filename id 0 = "<unknown>", line 0) stands for an
 * empty stack, as the builtin's ("<unknown>", 0).
 *
 * Threads: ftmpy_walk() reads only the calling thread's own frame chain,
 * which nothing else mutates while that thread runs C code (with or without
 * the GIL).  ftmpy_tstate_current() is only meaningful with the GIL held.
 */
#ifndef FTMPY_FRAMES_H
#define FTMPY_FRAMES_H

#include <Python.h>
#include <stdint.h>

#include "fasttracemalloc.h"

/* PyRefTracer_SetTracer (public from 3.13): the object-creation event that
 * lets a third party re-stamp objects handed out from free lists.  The one
 * public-API availability test outside the frames files. */
#if PY_VERSION_HEX >= 0x030D0000
#define FTMPY_HAVE_REFTRACER 1
#else
#define FTMPY_HAVE_REFTRACER 0
#endif

#define FTMPY_KIND_RESOLVED ((uint64_t)1)
#define FTMPY_RESOLVED_A(fid) ((((uint64_t)(fid)) << 1) | FTMPY_KIND_RESOLVED)
#define FTMPY_FRAME_IS_RESOLVED(f) (((f)->a & FTMPY_KIND_RESOLVED) != 0)
#define FTMPY_FRAME_FID(f) ((uint32_t)((f)->a >> 1))
#define FTMPY_KIND_SHAPE ((uint64_t)2)
#define FTMPY_SHAPE_A(id) ((((uint64_t)(id)) << 2) | FTMPY_KIND_SHAPE)
#define FTMPY_FRAME_IS_SHAPE(f) (((f)->a & 3) == FTMPY_KIND_SHAPE)
#define FTMPY_FRAME_SHAPE(f) ((uint32_t)((f)->a >> 2))

/* Thread state of the GIL holder (the caller must hold the GIL).  From
 * 3.12 on this is the calling thread's attached thread state (NULL when it
 * holds no GIL), which is the same thing for every caller that holds it. */
PyThreadState *ftmpy_tstate_current(void);

/* The calling thread's own thread state (NULL if it has none); never the
 * GIL holder's unless that is the caller. */
PyThreadState *ftmpy_tstate_own(void);

/* Walk `ts`'s frame chain from the most recent frame, skipping incomplete
 * frames, as the builtin does.  Writes the raw record (above) of the k-th
 * complete frame into frames[k] for k < scap (scap >= limit: the records
 * past `limit` are a comparison shadow, never given to the engine), and
 * returns the number of complete frames on the whole stack, capped at
 * FTM_MAX_NFRAME (the caller stores min(result, limit) of them).  For
 * every k < limit whose raw record it writes, it also sets cooked[k].b to
 * the kind-SHAPE `b` of that frame; cooked[k].a is the caller's.
 *
 * frames[] holds the previous capture on entry.  If `trust`, a frame whose
 * record equals the previous record at the same position is known complete
 * (and cooked[k] left as it was) without reading its code object
 * (completeness is a function of the code object, the instruction pointer
 * and the generator bit); this is only sound if every code object named
 * in frames[0..scap) is still the object that was there when the record
 * was written (the caller starts over after any code object died:
 * codeset.h).  Bits are OR-ed into *changed: 1 if the record at position 0
 * differs from the previous one, 2 if one at positions 1..limit-1 does.
 * Every position < limit whose code pointer changed is appended to
 * newcode[] (*n_newcode counts them).  ts == NULL walks nothing.
 */
uint32_t ftmpy_walk(PyThreadState *ts, ftm_frame *frames, ftm_frame *cooked,
                    uint32_t scap, uint32_t limit, int trust, int *changed,
                    uint16_t *newcode, uint32_t *n_newcode);

/* The raw record ftmpy_walk() would store at position 0 for `ts`'s chain
 * right now (the most recent complete frame), written to *top; {0, 0} if
 * there is none.  Reads at most the frames above the first complete one;
 * caller's own chain, as ftmpy_walk. */
void ftmpy_peek(PyThreadState *ts, ftm_frame *top);

/* Byte distance from a code object's start to its first code unit. */
size_t ftmpy_code_unit0(void);

/* Arrange for on_death() to be called, by the deallocating thread, each
 * time a code object is deallocated, before its memory is freed (3.12+:
 * a code watcher; 3.11: the code type's deallocator, interposed once and
 * never removed).  GIL held (free-threaded: attached), once.  0 on
 * success, -1 if no notification can be had (no Python exception set). */
int ftmpy_code_watch(void (*on_death)(void));

/* Line number of a raw record, as the builtin computes it (negative
 * -> 0).  Needs only that the code object is alive; no GIL needed. */
int ftmpy_frame_line(const ftm_frame *f);

/* The code object's filename if it is a ready str, else NULL (borrowed). */
PyObject *ftmpy_code_filename(PyObject *code);

/* Non-zero once the runtime is finalizing (no thread state may be trusted
 * then).  Any thread, no GIL needed. */
int ftmpy_is_finalizing(void);

/* Bytes the interpreter allocates in front of an object of this type (GC
 * header, managed-dict pointers): the object's allocation starts that far
 * before the object. */
size_t ftmpy_object_preheader(PyTypeObject *type);

#endif /* FTMPY_FRAMES_H */
