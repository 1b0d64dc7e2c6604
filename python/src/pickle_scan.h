/*
 * pickle_scan.h -- the opcode check of the safe snapshot loader
 * (pickle_scan.c has the contract).  Any thread; the GIL (attached).
 */
#ifndef FTMPY_PICKLE_SCAN_H
#define FTMPY_PICKLE_SCAN_H

#include <Python.h>

/* _pickle_scan(data): None if `data` (any bytes-like object) is a pickle
 * stream made only of the opcodes a snapshot file needs, with every
 * argument inside the data and memo indices no larger than the stores
 * before them; else ValueError("offset N, opcode 0xXX: why"). */
PyObject *ftmpy_pickle_scan(PyObject *mod, PyObject *arg);

#endif /* FTMPY_PICKLE_SCAN_H */
