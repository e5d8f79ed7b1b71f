# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled depth-frame decode and diff-lane encoder; the reference is core/events.py's
decode_depth_frame and core/avro_binary.py's encode_diff, and core/depth_codec.py names both.

decode_depth_frame scans a depthUpdate frame's JSON once: the ids and times, each level's price
and quantity as a double, and (for the diff lane) the levels' strings as sent, written straight
into their Avro encoding (what avro_binary.string_pairs makes of them), with no Python string per
level. It takes only the shape Binance sends: the known keys, each once, plain integers, price
and quantity strings of the form 123.456 (JSON's number grammar without sign or exponent), price
> 0, everything finite. Any other frame, and any frame that would raise BadEvent, is handed to
the reference decoder, which gives the outcome: so both agree by construction on everything
unusual, and the tests compare them on everything usual.

A string's double is float()'s correctly rounded value: from the digits directly when the
mantissa has at most 53 bits and at most 22 decimals (one exact division: Clinger's fast path,
as msgspec does it), else PyOS_string_to_double, which float() uses.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.conversion cimport PyOS_string_to_double
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeASCII
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport realloc
from libc.string cimport memcpy, memmove

from orderbook_pipeline.core._book cimport levels_from

from orderbook_pipeline.core.avro_binary import encode_diff as _encode_diff_reference
from orderbook_pipeline.core.events import DiffEvent
from orderbook_pipeline.core.events import decode_depth_frame as _decode_reference

ctypedef const unsigned char* cstr

cdef double[23] _POW10
cdef int _i
_POW10[0] = 1.0
for _i in range(1, 23):
    _POW10[_i] = _POW10[_i - 1] * 10.0

cdef double _MAX_VALUE = 1e300  # the reference's bound: prices and quantities < 1e300

# The diff lane's Avro bytes are written here, then copied into one bytes object per event.
cdef unsigned char* _scratch = NULL
cdef Py_ssize_t _scratch_cap = 0
# The levels' doubles, (price, quantity) pairs, bids then asks: copied into the event's two
# _book.Levels (the compiled book reads them without a Python float or tuple per level).
cdef double* _pairs = NULL
cdef Py_ssize_t _pairs_cap = 0

# Keys of a depthUpdate payload, as bits: each may appear once.
cdef enum:
    K_E = 1
    K_T = 2
    K_s = 4
    K_U = 8
    K_u = 16
    K_pu = 32
    K_b = 64
    K_a = 128
    K_e = 256
    K_REQUIRED = K_e | K_E | K_s | K_U | K_u | K_b | K_a


cdef struct Scan:
    cstr p
    cstr end
    bint keep
    unsigned char* w  # the diff lane's next byte in _scratch (when keep)
    double* v  # the next level's (price, quantity) in _pairs


cdef inline void _ws(Scan* s) noexcept:
    cdef unsigned char c
    while s.p < s.end:
        c = s.p[0]
        if c == 32 or c == 10 or c == 13 or c == 9:
            s.p += 1
        else:
            return


cdef inline bint _take(Scan* s, unsigned char c) noexcept:
    """Skip whitespace, then the byte c; False if the next byte is another."""
    if s.p < s.end and s.p[0] == c:  # compact JSON, the usual case: no whitespace to skip
        s.p += 1
        return True
    _ws(s)
    if s.p < s.end and s.p[0] == c:
        s.p += 1
        return True
    return False


cdef inline Py_ssize_t _plain_string(Scan* s, cstr* start) noexcept:
    """A string of printable ASCII without escapes (after whitespace): its length, -1 if not."""
    cdef unsigned char c
    if not _take(s, 34):  # '"'
        return -1
    start[0] = s.p
    while s.p < s.end:
        c = s.p[0]
        if c == 34:
            s.p += 1
            return s.p - 1 - start[0]
        if c == 92 or c < 32 or c > 126:  # an escape, a control byte or non-ASCII
            return -1
        s.p += 1
    return -1


cdef inline bint _uint(Scan* s, int64_t* out) noexcept:
    """A JSON integer >= 0 of at most 18 digits (after whitespace)."""
    cdef int64_t v = 0
    cdef cstr start
    _ws(s)
    start = s.p
    while s.p < s.end and 48 <= s.p[0] <= 57:
        v = v * 10 + (s.p[0] - 48)
        s.p += 1
        if s.p - start > 18:
            return False
    if s.p == start or (start[0] == 48 and s.p - start > 1):  # no digits, or a leading zero
        return False
    if s.p < s.end and (s.p[0] == 46 or s.p[0] == 101 or s.p[0] == 69):  # '.', 'e', 'E'
        return False
    out[0] = v
    return True


cdef inline unsigned char* _varint(unsigned char* w, uint64_t z) noexcept:
    while z >= 0x80:
        w[0] = <unsigned char>((z & 0x7F) | 0x80)
        w += 1
        z >>= 7
    w[0] = <unsigned char>z
    return w + 1


cdef inline unsigned char* _long(unsigned char* w, int64_t n) noexcept:
    return _varint(w, (<uint64_t>n << 1) ^ <uint64_t>(n >> 63))


cdef inline bint _number(Scan* s, double* out) noexcept:
    """A price or quantity string: digits, optionally '.' and digits (after whitespace)."""
    cdef cstr start
    cdef cstr int_end
    cdef cstr p
    cdef uint64_t mantissa = 0
    cdef Py_ssize_t digits, decimals = 0, length
    cdef char* endptr
    cdef double v
    if not _take(s, 34):
        return False
    # The digit loops read ahead without a bound: the frame ends in a NUL (see _frame), which
    # is no digit. p is a local so that the compiler keeps it in a register.
    p = start = s.p
    while <unsigned char>(p[0] - 48) < 10:
        mantissa = mantissa * 10 + (p[0] - 48)  # wraps past 19 digits: then not used
        p += 1
    int_end = p
    digits = int_end - start
    if digits == 0 or (start[0] == 48 and digits > 1):
        return False
    if p[0] == 46:  # p <= end, and end[0] is the NUL
        p += 1
        while <unsigned char>(p[0] - 48) < 10:
            mantissa = mantissa * 10 + (p[0] - 48)
            p += 1
        decimals = p - int_end - 1
        if decimals == 0:
            return False
        digits += decimals
    if p >= s.end or p[0] != 34:  # an exponent, a sign, anything else: the reference's
        return False
    length = p - start
    s.p = p + 1
    if digits <= 19 and mantissa < (<uint64_t>1 << 53) and decimals <= 22:
        v = <double>mantissa / _POW10[decimals]  # both exact: one correctly rounded division
    else:
        v = PyOS_string_to_double(<const char*>start, &endptr, NULL)  # stops at the '"'
        if <cstr>endptr != start + length:
            return False
    if not v < _MAX_VALUE:
        return False
    out[0] = v
    if s.keep:
        s.w = _long(s.w, length)
        memcpy(s.w, start, length)
        s.w += length
    return True


cdef bint _levels(Scan* s) noexcept:
    """A side's [[price, quantity], ...]: written to s.v as pairs of doubles; for the diff lane
    also as Avro's array of {px, qty} strings. False: not the fast path's shape."""
    cdef unsigned char* count_at = s.w
    cdef Py_ssize_t n = 0
    cdef unsigned char head[10]
    cdef unsigned char* head_end
    cdef double px, qty
    if not _take(s, 91):  # '['
        return False
    if s.keep:
        s.w += 10  # room for the count, known at the end
    if _take(s, 93):  # ']'
        if s.keep:
            s.w = count_at
            s.w[0] = 0
            s.w += 1
        return True
    while True:
        if not _take(s, 91) or not _number(s, &px) or not _take(s, 44):
            return False
        if not _number(s, &qty) or not _take(s, 93):
            return False
        if not px > 0.0:
            return False
        s.v[0] = px
        s.v[1] = qty
        s.v += 2
        n += 1
        if _take(s, 44):
            continue
        if _take(s, 93):
            break
        return False
    if s.keep:
        head_end = _long(head, n)
        memmove(count_at + (head_end - head), count_at + 10, s.w - (count_at + 10))
        memcpy(count_at, head, head_end - head)
        s.w -= 10 - (head_end - head)
        s.w[0] = 0  # the array's end
        s.w += 1
    return True


cdef object _payload(Scan* s, object symbols, object ingest_us, bint with_prev_id):
    """The depthUpdate object: a DiffEvent, or None for the reference to decide."""
    cdef unsigned int seen = 0, key
    cdef unsigned char c
    cdef cstr name
    cdef cstr sym = NULL
    cdef cstr value
    cdef Py_ssize_t name_len, sym_len = 0, value_len
    cdef int64_t event_ms = 0, transaction_ms = 0, first_id = 0, last_id = 0, prev_id = 0
    cdef double* bids = NULL
    cdef double* asks = NULL
    cdef Py_ssize_t nbids = 0, nasks = 0
    cdef unsigned char* raw_start = s.w
    cdef bint ok
    if not _take(s, 123):  # '{'
        return None
    while True:
        name_len = _plain_string(s, &name)
        if name_len < 0 or not _take(s, 58):  # ':'
            return None
        c = name[0] if name_len == 1 else 0
        if c == 69:  # E
            key = K_E
            ok = _uint(s, &event_ms)
        elif c == 84:  # T
            key = K_T
            ok = _uint(s, &transaction_ms)
        elif c == 115:  # s
            key = K_s
            sym_len = _plain_string(s, &sym)
            ok = sym_len >= 0
        elif c == 85:  # U
            key = K_U
            ok = _uint(s, &first_id)
        elif c == 117:  # u
            key = K_u
            ok = _uint(s, &last_id)
        elif c == 98:  # b: the diff lane writes the bids first, so they must come first
            key = K_b
            bids = s.v
            ok = not (seen & K_a) and _levels(s)
            nbids = (s.v - bids) // 2
        elif c == 97:  # a
            key = K_a
            asks = s.v
            ok = (seen & K_b) != 0 and _levels(s)
            nasks = (s.v - asks) // 2
        elif c == 101:  # e
            key = K_e
            value_len = _plain_string(s, &value)
            ok = value_len == 11 and (<const char*>value)[:11] == b"depthUpdate"
        elif name_len == 2 and name[0] == 112 and name[1] == 117:  # pu
            key = K_pu
            ok = _uint(s, &prev_id)
        else:
            return None
        if not ok or seen & key:
            return None
        seen |= key
        if _take(s, 44):  # ','
            continue
        if _take(s, 125):  # '}'
            break
        return None
    if (seen & K_REQUIRED) != K_REQUIRED or last_id < first_id:
        return None
    if with_prev_id and not (seen & K_pu):
        return None
    symbol = PyUnicode_DecodeASCII(<const char*>sym, sym_len, NULL)
    if symbol not in symbols:
        return None
    raw = PyBytes_FromStringAndSize(<const char*>raw_start, s.w - raw_start) if s.keep else None
    return DiffEvent(
        symbol,
        event_ms,
        first_id,
        last_id,
        levels_from(bids, nbids),
        levels_from(asks, nasks),
        prev_id if with_prev_id else None,
        transaction_ms if seen & K_T else None,
        ingest_us,
        raw,
    )


cdef object _frame(cstr data, Py_ssize_t size, object symbols, object ingest_us,
                   bint with_prev_id, bint keep, bint combined):
    global _scratch, _scratch_cap, _pairs, _pairs_cap
    cdef Scan s
    cdef unsigned int seen = 0
    cdef cstr name
    cdef cstr value
    cdef Py_ssize_t name_len
    cdef unsigned char* grown
    cdef double* grown_pairs
    cdef Py_ssize_t pairs_needed = size // 4 + 4  # a level takes >= 9 bytes: ["1","0"],
    ev = None
    if _pairs_cap < pairs_needed:
        grown_pairs = <double*>realloc(_pairs, pairs_needed * sizeof(double))
        if grown_pairs == NULL:
            raise MemoryError()
        _pairs, _pairs_cap = grown_pairs, pairs_needed
    if keep and _scratch_cap < 2 * size + 64:  # an Avro level is at most twice its JSON
        grown = <unsigned char*>realloc(_scratch, 2 * size + 64)
        if grown == NULL:
            raise MemoryError()
        _scratch, _scratch_cap = grown, 2 * size + 64
    # data[size] is a NUL (bytes and str's UTF-8 both end in one): _number's digit loops rely
    # on it to stop without a bound check.
    s.p, s.end, s.keep, s.w, s.v = data, data + size, keep, _scratch, _pairs
    if not combined:
        ev = _payload(&s, symbols, ingest_us, with_prev_id)
    else:
        if not _take(&s, 123):
            return None
        while True:
            name_len = _plain_string(&s, &name)
            if name_len < 0 or not _take(&s, 58):
                return None
            if name_len == 6 and (<const char*>name)[:6] == b"stream" and not seen & 1:
                seen |= 1
                if _plain_string(&s, &value) < 0:
                    return None
            elif name_len == 4 and (<const char*>name)[:4] == b"data" and not seen & 2:
                seen |= 2
                ev = _payload(&s, symbols, ingest_us, with_prev_id)
                if ev is None:
                    return None
            else:
                return None
            if _take(&s, 44):
                continue
            if _take(&s, 125):
                break
            return None
        if seen != 3:
            return None
    _ws(&s)
    if s.p != s.end:
        return None
    return ev


def decode_depth_frame(
    frame,
    symbols,
    ingest_us,
    bint with_prev_id,
    bint keep_strings=True,
    bint combined=True,
):
    """core/events.py's decode_depth_frame, compiled for the shape Binance sends (the same
    result, the same exceptions: anything else is decoded by the reference)."""
    cdef const char* data
    cdef Py_ssize_t size
    if type(frame) is bytes:
        data, size = PyBytes_AS_STRING(frame), PyBytes_GET_SIZE(frame)
    elif type(frame) is str:
        data = PyUnicode_AsUTF8AndSize(frame, &size)
    else:
        return _decode_reference(frame, symbols, ingest_us, with_prev_id, keep_strings, combined)
    ev = _frame(<cstr>data, size, symbols, ingest_us, with_prev_id, keep_strings, combined)
    if ev is None:
        return _decode_reference(frame, symbols, ingest_us, with_prev_id, keep_strings, combined)
    return ev


cdef bytes _diff(bytes prefix, int64_t event_us, object transaction_us, int64_t ingest_us,
                 int64_t first_id, int64_t last_id, object prev_id, bytes raw_levels,
                 bytes suffix):
    cdef unsigned char head[64]
    cdef unsigned char* w = head
    cdef Py_ssize_t np = PyBytes_GET_SIZE(prefix), nh, nr = PyBytes_GET_SIZE(raw_levels)
    cdef Py_ssize_t ns = PyBytes_GET_SIZE(suffix)
    cdef char* out
    w = _long(w, event_us)
    if transaction_us is None:
        w[0] = 0
        w += 1
    else:
        w[0] = 2
        w = _long(w + 1, <int64_t>transaction_us)
    w = _long(w, ingest_us)
    w = _long(w, first_id)
    w = _long(w, last_id)
    if prev_id is None:
        w[0] = 0
        w += 1
    else:
        w[0] = 2
        w = _long(w + 1, <int64_t>prev_id)
    nh = w - head
    record = PyBytes_FromStringAndSize(NULL, np + nh + nr + ns)
    out = PyBytes_AS_STRING(record)
    memcpy(out, PyBytes_AS_STRING(prefix), np)
    memcpy(out + np, head, nh)
    memcpy(out + np + nh, PyBytes_AS_STRING(raw_levels), nr)
    memcpy(out + np + nh + nr, PyBytes_AS_STRING(suffix), ns)
    return record


def encode_diff(
    bytes prefix,
    event_us,
    transaction_us,
    ingest_us,
    first_id,
    last_id,
    prev_id,
    bytes raw_levels,
    bytes suffix,
):
    """core/avro_binary.py's encode_diff, compiled (the same bytes; a value outside a signed
    64-bit long, which Avro cannot hold, is left to the reference)."""
    try:
        return _diff(prefix, event_us, transaction_us, ingest_us, first_id, last_id, prev_id,
                     raw_levels, suffix)
    except OverflowError:
        return _encode_diff_reference(prefix, event_us, transaction_us, ingest_us, first_id,
                                      last_id, prev_id, raw_levels, suffix)
