# cython: language_level=3, boundscheck=False, wraparound=False
"""The compiled form of core/avro_record.py's generated encoders: the same field program run in
C, writing into one buffer (no bytes object per field, no join).

`Program(ops, enums, names)(prefix, *values)` encodes `values` in the order of `ops` (one op
byte per field, OPTIONAL | kind) after `prefix`; `enums[i]` is the {symbol: bytes} table of an
enum field; the values may also be given by field name (slower), as to the Python encoder. avro_record.record_encoder builds the program from a lane's field list and falls back
to the pure-Python encoder, the reference, where this module is not built; the tests compare
both byte for byte.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.float cimport PyFloat_AsDouble
from cpython.long cimport PyLong_AsLongLong
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject_IsTrue
from cpython.tuple cimport PyTuple_GET_SIZE
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy

import sys

if sys.byteorder != "little":  # doubles are copied as they lie in memory
    raise ImportError("avro_record_c encodes doubles little-endian only")

# Op kinds (avro_record.py OPS holds the same numbers).
DEF LONG = 0
DEF STRING = 1
DEF DOUBLE = 2
DEF BOOLEAN = 3
DEF ENUM = 4
DEF STRING_PAIRS = 5
DEF OPTIONAL = 16
DEF STACK = 512


cdef struct Buf:
    char *p
    Py_ssize_t n
    Py_ssize_t cap
    bint heap


cdef int _grow(Buf *b, Py_ssize_t extra) except -1:
    cdef Py_ssize_t cap = b.cap
    cdef char *p
    while cap < b.n + extra:
        cap *= 2
    if b.heap:
        p = <char *>PyMem_Realloc(b.p, cap)
    else:
        p = <char *>PyMem_Malloc(cap)
        if p != NULL:
            memcpy(p, b.p, b.n)
    if p == NULL:
        raise MemoryError()
    b.p, b.cap, b.heap = p, cap, True
    return 0


cdef inline int _put(Buf *b, const char *data, Py_ssize_t size) except -1:
    if b.n + size > b.cap:
        _grow(b, size)
    memcpy(b.p + b.n, data, size)
    b.n += size
    return 0


cdef inline int _byte(Buf *b, char c) except -1:
    if b.n + 1 > b.cap:
        _grow(b, 1)
    b.p[b.n] = c
    b.n += 1
    return 0


cdef inline int _long(Buf *b, int64_t v) except -1:
    cdef uint64_t z = (<uint64_t>v << 1) ^ <uint64_t>(v >> 63)
    if b.n + 10 > b.cap:
        _grow(b, 10)
    cdef char *p = b.p + b.n
    cdef Py_ssize_t i = 0
    while z >= 0x80:
        p[i] = <char>((z & 0x7F) | 0x80)
        z >>= 7
        i += 1
    p[i] = <char>z
    b.n += i + 1
    return 0


cdef inline int _string(Buf *b, object text) except -1:
    cdef Py_ssize_t size
    cdef const char *data = PyUnicode_AsUTF8AndSize(text, &size)
    _long(b, size)
    _put(b, data, size)
    return 0


cdef inline int _double(Buf *b, object value) except -1:
    cdef double d = PyFloat_AsDouble(value)  # raises (TypeError) for a non-number
    _put(b, <const char *>&d, 8)
    return 0


cdef int _pairs(Buf *b, object levels) except -1:
    cdef Py_ssize_t n = len(levels)
    if n == 0:
        _byte(b, 0)
        return 0
    _long(b, n)
    for level in levels:
        px, qty = level
        _string(b, px)
        _string(b, qty)
    _byte(b, 0)
    return 0


cdef class Program:
    cdef bytes ops
    cdef tuple enums
    cdef tuple names
    cdef Py_ssize_t n

    def __init__(self, bytes ops, tuple enums, tuple names):
        if not len(ops) == len(enums) == len(names):
            raise ValueError("one enum table (or None) and one name per op")
        self.ops = ops
        self.enums = enums
        self.names = names
        self.n = len(ops)

    def __call__(self, bytes prefix, *values, **named):
        cdef Py_ssize_t n = self.n
        if named:
            values = self._by_name(values, named)
        if PyTuple_GET_SIZE(values) != n:
            raise TypeError(f"expected {n} field values, got {PyTuple_GET_SIZE(values)}")
        cdef char stack[STACK]
        cdef Buf b
        b.p, b.n, b.cap, b.heap = stack, 0, STACK, False
        cdef const unsigned char *ops = <const unsigned char *>PyBytes_AS_STRING(self.ops)
        cdef unsigned char op
        cdef Py_ssize_t i
        try:
            _put(&b, PyBytes_AS_STRING(prefix), PyBytes_GET_SIZE(prefix))
            for i in range(n):
                op = ops[i]
                value = values[i]
                if op & OPTIONAL:
                    if value is None:
                        _byte(&b, 0)
                        continue
                    _byte(&b, 2)
                    op &= ~OPTIONAL
                if op == LONG:
                    _long(&b, PyLong_AsLongLong(value))
                elif op == STRING:
                    _string(&b, value)
                elif op == DOUBLE:
                    _double(&b, value)
                elif op == BOOLEAN:
                    _byte(&b, 1 if PyObject_IsTrue(value) else 0)
                elif op == ENUM:
                    code = (<dict>self.enums[i])[value]
                    _put(&b, PyBytes_AS_STRING(code), PyBytes_GET_SIZE(code))
                else:
                    _pairs(&b, value)
            return PyBytes_FromStringAndSize(b.p, b.n)
        finally:
            if b.heap:
                PyMem_Free(b.p)

    def _by_name(self, tuple values, dict named):
        """Positional and named values in field order (a TypeError as a function raises)."""
        out = list(values)
        for name in self.names[len(values):]:
            try:
                out.append(named.pop(name))
            except KeyError:
                raise TypeError(f"missing field value {name!r}") from None
        if named:
            raise TypeError(f"unexpected keyword argument {next(iter(named))!r}")
        return tuple(out)
