/*
 * filenames.h -- a content-keyed table of filenames for kind-RESOLVED frame
 * records (frames.h), i.e. tracebacks captured without the GIL.
 *
 * Owns: a copy of each distinct filename's characters (kind, length, data),
 * numbered from 1 in order of first appearance; id 0 is "<unknown>".  Ids
 * are never reused or dropped (the set of source files of a process is
 * small), so a record holding an id never dangles.  Also owns, per id, one
 * Python str built on first query.
 *
 * Threads: ftmpy_filename_intern() may be called by any thread, with or
 * without the GIL (it reads only the immutable characters of a live str and
 * never calls into Python); ftmpy_filename_str() needs the GIL
 * (free-threaded builds: an attached thread holding the module lock,
 * module.c).  Both take `lock` (a pthread mutex, never held while calling
 * into Python or waiting on anything else; the path is rare: RAW
 * allocations by threads that released the GIL and, on free-threaded
 * builds, captures made while stop/clear runs).  fork(): the lock is held
 * across fork by pthread_atfork handlers so the child never inherits it
 * locked.
 */
#ifndef FTMPY_FILENAMES_H
#define FTMPY_FILENAMES_H

#include <Python.h>
#include <stdint.h>

int ftmpy_filenames_init(void);

/* Id of `str`'s content (a ready str); 0 ("<unknown>") if str is NULL.
 * Returns -1 (and *fid = 0) if the table cannot grow. */
int ftmpy_filename_intern(PyObject *str, uint32_t *fid);

/* New reference to the str for `fid`, or NULL with an exception set. */
PyObject *ftmpy_filename_str(uint32_t fid);

size_t ftmpy_filenames_count(void);
size_t ftmpy_filenames_bytes(void);

#endif /* FTMPY_FILENAMES_H */
