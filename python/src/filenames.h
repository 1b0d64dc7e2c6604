/*
 * filenames.h -- a content-keyed table of filenames for kind-RESOLVED frame
 * records (frames.h), i.e. tracebacks captured without the GIL.
 *
 * Owns: a copy of each distinct filename's characters (kind, length, data),
 * numbered from 1 in order of first appearance; id 0 is "<unknown>".  Ids
 * are never reused or dropped (the set of source files of a process is
 * small), so a record holding an id never dangles.  Also owns, per id, one
 * reference to a Python str of that content: the first one a capture saw
 * (ftmpy_filename_hold, as the builtin holds it), or one built on first
 * query; dropped by stop/clear_traces.
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

/* Keep a reference to `str` (the object whose content `fid` names) as
 * the entry's str, unless the entry has one already.  This is what the
 * builtin does: it holds the first str object seen for each filename
 * until clear_traces()/stop(), so that object stays alive (and traced)
 * under both.  Requires a thread that may take references (GIL held;
 * free-threaded: attached). */
void ftmpy_filename_hold(uint32_t fid, PyObject *str);

/* Drop every entry's str (stop/clear_traces; GIL held, free-threaded: the
 * module lock, with no capture inside the code-set gate).  Queries build
 * the strs they need again. */
void ftmpy_filenames_drop_strs(void);

/* New reference to the str for `fid`, or NULL with an exception set. */
PyObject *ftmpy_filename_str(uint32_t fid);

size_t ftmpy_filenames_count(void);
size_t ftmpy_filenames_bytes(void);

#endif /* FTMPY_FILENAMES_H */
