/*
 * shapes.h -- a content-keyed table of code-object "shapes": what turning
 * a (code object, instruction offset) pair into the builtin's (filename,
 * lineno) needs, copied out of the code object so that nothing of it has
 * to stay alive.
 *
 * A shape is (filename id (filenames.h), co_firstlineno, a copy of the
 * co_linetable bytes).  Two code objects with equal shapes give every
 * offset the same (filename, line), so kind-SHAPE frame records (frames.h)
 * name a shape id instead of a code object: a record outlives its code
 * object, an address reused by a later code object can never be confused
 * with it, and code generated again and again (exec of the same source,
 * namedtuple, dataclasses) maps to ONE shape, so its tracebacks intern to
 * the same engine ids instead of growing the pool at each generation.
 *
 * Owns: the shapes of one code epoch (codeset.h), numbered from 1 in order
 * of first appearance; ftmpy_shapes_clear() drops them all (stop and
 * clear_traces, when the engine's tracebacks that name them are gone).
 *
 * Line numbers: ftmpy_shape_line() decodes the copied location table
 * (the format CPython 3.11 to 3.15 share: one entry per run of code
 * units, a header byte with bit 7 set, the kind in bits 3-6 and the run
 * length - 1 in bits 0-2, then the kind's varints) exactly as
 * PyCode_Addr2Line does: a negative address gives co_firstlineno, an
 * address in a run without a line or past the end gives -1.
 *
 * Threads: every function may be called by any thread (intern: from
 * allocation hooks, with the GIL or, free-threaded, attached and inside
 * the code-set gate; lookups: queries).  One pthread mutex guards the
 * table (held across fork() by atfork handlers), never held while calling
 * into Python.  ftmpy_shapes_clear() needs the caller to guarantee that no
 * id it drops is still in use (codeset.h: gate closed, nobody inside).
 * Memory comes from libc.
 */
#ifndef FTMPY_SHAPES_H
#define FTMPY_SHAPES_H

#include <stddef.h>
#include <stdint.h>

int ftmpy_shapes_init(void);

/* Id (>= 1) of the shape (fid, firstlineno, linetable[0..len)), made if
 * new; 0 if the table cannot grow (nothing changed). */
uint32_t ftmpy_shape_intern(uint32_t fid, int firstlineno,
                            const uint8_t *linetable, size_t len);

/* Filename id and line of byte address `addr` (from the start of the
 * code's first code unit) in shape `id`, as PyCode_Addr2Line gives it
 * (may be negative: "no line").  -1 if `id` is unknown, else 0. */
int ftmpy_shape_line(uint32_t id, int64_t addr, uint32_t *fid, int *line);

/* Drop every shape (ids restart from 1). */
void ftmpy_shapes_clear(void);

size_t ftmpy_shapes_count(void);
size_t ftmpy_shapes_bytes(void);

/* The decoder on its own (tests of the format go through the extension's
 * differential tests; this is the function they exercise). */
int ftmpy_linetable_line(const uint8_t *lt, size_t len, int firstlineno,
                         int64_t addr);

#endif /* FTMPY_SHAPES_H */
