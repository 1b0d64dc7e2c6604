/*
 * pickle_scan.c -- the opcode check of the safe snapshot loader, in C
 * (python/fasttracemalloc/_safeload.py).
 *
 * Owns: _pickle_scan(data), which walks a pickle's opcode stream without
 * executing any of it and raises ValueError (with the offset and why)
 * unless every opcode up to STOP is one a snapshot file can need and
 * every argument is well formed and inside the data.  The safe loader
 * runs it first, then unpickles the same bytes with the C unpickler
 * (_pickle.Unpickler with find_class restricted): about 15 times faster
 * than pickle's pure-Python unpickler, which it used for every file
 * before.
 *
 * Why the pure-Python unpickler was needed, and why this check makes the C
 * one safe for these files: the C unpickler's memo is an array indexed by
 * the file's PUT/BINPUT/LONG_BINPUT arguments, so a 6-byte LONG_BINPUT
 * with index 2**31 grows it to gigabytes (found by the fuzzer).  Here:
 *   - every memo store must use an index no larger than the number of
 *     stores before it (what every pickler writes: 0, 1, 2, ...), so the
 *     memo never has more slots than the file has store opcodes;
 *   - every length-prefixed argument (FRAME, LONG1/LONG4, the unicode
 *     forms) must fit in the bytes that remain, and every line argument
 *     must end with a newline inside the data, so no read is sized by the
 *     file beyond the file;
 *   - any opcode outside the allowed set is refused by its byte, before
 *     its argument would have to be understood: the scanner knows the
 *     argument format of exactly the opcodes it allows, so it cannot
 *     drift out of step with the unpickler on an allowed stream.
 * The allowed set is the one _safeload.py documents (ints, str, None,
 * booleans, tuples, lists, dicts, the memo, globals, REDUCE/NEWOBJ/BUILD,
 * PROTO/FRAME); which globals may be named stays find_class's job.
 * FRAME's contents are scanned as part of the stream (framing only groups
 * opcodes; an opcode may not span two frames, but the unpickler checks
 * that, and a frame boundary inside an argument is harmless here).
 *
 * Threads: no shared state; reads its argument only (the caller holds a
 * reference; bytes are immutable).
 */
#include <Python.h>

#include <stdint.h>
#include <string.h>

#include "pickle_scan.h"

/* Argument formats of the allowed opcodes. */
enum {
    A_NONE,  /* no argument */
    A_U1,    /* 1-byte unsigned */
    A_U2,    /* 2-byte */
    A_U4,    /* 4-byte */
    A_U8,    /* 8-byte (FRAME's length) */
    A_LINE,  /* up to and including a newline */
    A_LINE2, /* two lines (GLOBAL) */
    A_LEN1,  /* 1-byte length, then that many bytes */
    A_LEN4,  /* 4-byte little-endian length, then the bytes */
    A_LEN8,  /* 8-byte little-endian length, then the bytes */
};

/* What an opcode does to the memo. */
enum { M_NO, M_STORE, M_FETCH };

typedef struct op {
    unsigned char arg;
    unsigned char memo;
    unsigned char allowed;
} op;

static op ops[256];

static void allow(unsigned char code, unsigned char arg, unsigned char memo)
{
    ops[code].arg = arg;
    ops[code].memo = memo;
    ops[code].allowed = 1;
}

static void init_ops(void)
{
    static int done;
    if (done) {
        return;
    }
    allow(0x80, A_U1, M_NO);      /* PROTO */
    allow(0x95, A_U8, M_NO);      /* FRAME */
    allow('.', A_NONE, M_NO);     /* STOP */
    allow('(', A_NONE, M_NO);     /* MARK */
    allow('0', A_NONE, M_NO);     /* POP */
    allow('1', A_NONE, M_NO);     /* POP_MARK */
    allow('2', A_NONE, M_NO);     /* DUP */
    allow('N', A_NONE, M_NO);     /* NONE */
    allow(0x88, A_NONE, M_NO);    /* NEWTRUE */
    allow(0x89, A_NONE, M_NO);    /* NEWFALSE */
    allow('I', A_LINE, M_NO);     /* INT */
    allow('J', A_U4, M_NO);       /* BININT */
    allow('K', A_U1, M_NO);       /* BININT1 */
    allow('M', A_U2, M_NO);       /* BININT2 */
    allow('L', A_LINE, M_NO);     /* LONG */
    allow(0x8a, A_LEN1, M_NO);    /* LONG1 */
    allow(0x8b, A_LEN4, M_NO);    /* LONG4 */
    allow('V', A_LINE, M_NO);     /* UNICODE */
    allow(0x8c, A_LEN1, M_NO);    /* SHORT_BINUNICODE */
    allow('X', A_LEN4, M_NO);     /* BINUNICODE */
    allow(0x8d, A_LEN8, M_NO);    /* BINUNICODE8 */
    allow(')', A_NONE, M_NO);     /* EMPTY_TUPLE */
    allow('t', A_NONE, M_NO);     /* TUPLE */
    allow(0x85, A_NONE, M_NO);    /* TUPLE1 */
    allow(0x86, A_NONE, M_NO);    /* TUPLE2 */
    allow(0x87, A_NONE, M_NO);    /* TUPLE3 */
    allow(']', A_NONE, M_NO);     /* EMPTY_LIST */
    allow('l', A_NONE, M_NO);     /* LIST */
    allow('a', A_NONE, M_NO);     /* APPEND */
    allow('e', A_NONE, M_NO);     /* APPENDS */
    allow('}', A_NONE, M_NO);     /* EMPTY_DICT */
    allow('d', A_NONE, M_NO);     /* DICT */
    allow('s', A_NONE, M_NO);     /* SETITEM */
    allow('u', A_NONE, M_NO);     /* SETITEMS */
    allow('g', A_LINE, M_FETCH);  /* GET */
    allow('h', A_U1, M_FETCH);    /* BINGET */
    allow('j', A_U4, M_FETCH);    /* LONG_BINGET */
    allow('p', A_LINE, M_STORE);  /* PUT */
    allow('q', A_U1, M_STORE);    /* BINPUT */
    allow('r', A_U4, M_STORE);    /* LONG_BINPUT */
    allow(0x94, A_NONE, M_STORE); /* MEMOIZE (index: the memo's size) */
    allow('c', A_LINE2, M_NO);    /* GLOBAL */
    allow(0x93, A_NONE, M_NO);    /* STACK_GLOBAL */
    allow('R', A_NONE, M_NO);     /* REDUCE */
    allow(0x81, A_NONE, M_NO);    /* NEWOBJ */
    allow('b', A_NONE, M_NO);     /* BUILD */
    done = 1;
}

static uint64_t le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

/* A memo index written as text (PUT/GET): decimal digits, optionally
 * signed, then the newline.  Returns -1 if it is not one. */
static int64_t text_index(const unsigned char *p, size_t n)
{
    size_t i = 0;
    if (i < n && (p[i] == '+' || p[i] == '-')) {
        if (p[i] == '-') {
            return -1;
        }
        i++;
    }
    if (i >= n) {
        return -1;
    }
    int64_t v = 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9' || v > (INT64_C(1) << 40)) {
            return -1;
        }
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

static PyObject *refuse(size_t at, unsigned char code, const char *why)
{
    PyErr_Format(PyExc_ValueError, "offset %zu, opcode 0x%02x: %s", at,
                 (unsigned)code, why);
    return NULL;
}

PyObject *ftmpy_pickle_scan(PyObject *Py_UNUSED(mod), PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    init_ops();
    const unsigned char *d = view.buf;
    size_t n = (size_t)view.len;
    size_t i = 0;
    uint64_t stores = 0; /* memo slots the unpickler can have */
    PyObject *res = NULL;
    while (i < n) {
        size_t at = i;
        unsigned char code = d[i++];
        const op *o = &ops[code];
        if (!o->allowed) {
            res = refuse(at, code, "an opcode a snapshot never needs");
            goto done;
        }
        size_t rest = n - i;
        uint64_t index = 0;
        int has_index = 0;
        switch (o->arg) {
        case A_NONE:
            break;
        case A_U1:
        case A_U2:
        case A_U4:
        case A_U8: {
            size_t w = o->arg == A_U1   ? 1
                       : o->arg == A_U2 ? 2
                       : o->arg == A_U4 ? 4
                                        : 8;
            if (rest < w) {
                res = refuse(at, code, "argument cut short");
                goto done;
            }
            index = le(d + i, (int)w);
            has_index = 1;
            if (code == 0x95 && index > rest - w) {
                res = refuse(at, code, "frame longer than the data");
                goto done;
            }
            i += w;
            break;
        }
        case A_LINE:
        case A_LINE2: {
            int lines = o->arg == A_LINE2 ? 2 : 1;
            for (int k = 0; k < lines; k++) {
                const unsigned char *nl = memchr(d + i, '\n', n - i);
                if (nl == NULL) {
                    res = refuse(at, code, "line argument without newline");
                    goto done;
                }
                size_t len = (size_t)(nl - (d + i));
                if (o->memo != M_NO) {
                    int64_t v = text_index(d + i, len);
                    if (v < 0) {
                        res = refuse(at, code, "memo index is not a number");
                        goto done;
                    }
                    index = (uint64_t)v;
                    has_index = 1;
                }
                i += len + 1;
            }
            break;
        }
        case A_LEN1:
        case A_LEN4:
        case A_LEN8: {
            size_t w = o->arg == A_LEN1 ? 1 : o->arg == A_LEN4 ? 4 : 8;
            if (rest < w) {
                res = refuse(at, code, "length cut short");
                goto done;
            }
            uint64_t len = le(d + i, (int)w);
            if (len > rest - w) {
                res = refuse(at, code, "length beyond the data");
                goto done;
            }
            i += w + (size_t)len;
            break;
        }
        default:
            res = refuse(at, code, "internal: unknown argument format");
            goto done;
        }
        if (o->memo == M_STORE) {
            if (code == 0x94) {
                stores++; /* MEMOIZE: index = the memo's current size */
            } else if (!has_index || index > stores) {
                res = refuse(at, code, "memo index beyond the stores so far");
                goto done;
            } else if (index == stores) {
                stores++;
            }
        } else if (o->memo == M_FETCH && (!has_index || index >= stores)) {
            res = refuse(at, code, "memo fetch of a slot never stored");
            goto done;
        }
        if (code == '.') {
            res = Py_NewRef(Py_None); /* STOP: the unpickler ends here */
            goto done;
        }
    }
    PyErr_SetString(PyExc_ValueError, "no STOP opcode: the data is cut short");
done:
    PyBuffer_Release(&view);
    return res;
}
