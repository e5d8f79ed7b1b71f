# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled order book and L2 encoder: the same public behaviour as core/book.py and
core/avro_binary.L2Encoder (the readable reference), with the levels in C arrays of doubles.

Each side is one sorted array cut into blocks of up to BLOCK_MAX levels (4 kB of doubles),
keyed so that ascending is best first (bids store -price, which is exact). A change finds its
block by a scan from the best end (most changes are near the touch: one or two compares) and
its slot by bisection; a new or deleted level moves at most one block's tail. A full block
splits, a nearly empty one joins its neighbour, so the side holds ~14-16 bytes a level plus
one partly filled block. Reading the top N walks the first block or two.

L2Encoder.encode_book writes the L2 records of every configured depth straight from the
arrays, byte for byte what the Python encoder writes: mid, spread_bps and imbalance are the
same double expressions in the same order, and the quantity sums add left to right from 0.0
(as Python 3.11's sum() does). The module must be compiled without floating-point
contraction (setup.py passes -ffp-contract=off), or `s += p * q` could become a fused
multiply-add with a different rounding.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.math cimport isfinite
from libc.stdlib cimport qsort
from libc.string cimport memcpy, memmove

import sys

from orderbook_pipeline.core.avro_binary import encode_string
from orderbook_pipeline.core.book import BadLevel

if sys.byteorder != "little":  # the records' doubles are copied as they are in memory
    raise ImportError("the compiled core writes little-endian doubles: big-endian machine")

ctypedef struct Pair:
    double key
    double qty


cdef int _by_key(const void* a, const void* b) noexcept nogil:
    cdef double x = (<const Pair*>a).key
    cdef double y = (<const Pair*>b).key
    return (x > y) - (x < y)


@cython.freelist(16)
cdef class Levels:
    """One side of a diff event from the compiled decoder: the (price, quantity) pairs as C
    doubles, which BookSide.apply reads directly. To Python it is a read-only sequence of
    (float, float) tuples, equal to the list the reference decoder gives."""

    def __dealloc__(self):
        PyMem_Free(self.d)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self.n))]
        cdef Py_ssize_t k = i
        if k < 0:
            k += self.n
        if not 0 <= k < self.n:
            raise IndexError("level index out of range")
        return (self.d[2 * k], self.d[2 * k + 1])

    def __iter__(self):
        cdef Py_ssize_t k
        for k in range(self.n):
            yield (self.d[2 * k], self.d[2 * k + 1])

    def __eq__(self, other):
        if isinstance(other, (Levels, list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None

    def __repr__(self):  # the reference decoder's list, as it prints
        return repr(list(self))

    def __reduce__(self):
        return (_levels_from_list, (list(self),))


def _levels_from_list(pairs):
    """A Levels holding `pairs` ((price, quantity) numbers): for pickling and tests."""
    cdef Py_ssize_t n = len(pairs), k
    cdef Levels lv = levels_from(NULL, 0)
    if n:
        lv.d = <double*>PyMem_Malloc(2 * n * sizeof(double))
        if lv.d == NULL:
            raise MemoryError()
        for k in range(n):
            lv.d[2 * k] = pairs[k][0]
            lv.d[2 * k + 1] = pairs[k][1]
        lv.n = n
    return lv


cdef Levels levels_from(const double* pairs, Py_ssize_t n):
    """A Levels owning a copy of n (price, quantity) pairs."""
    cdef Levels lv = Levels.__new__(Levels)
    lv.d = NULL
    lv.n = 0
    if n:
        lv.d = <double*>PyMem_Malloc(2 * n * sizeof(double))
        if lv.d == NULL:
            raise MemoryError()
        memcpy(lv.d, pairs, 2 * n * sizeof(double))
        lv.n = n
    return lv


cdef inline int _block_of(Block** blocks, int nblocks, double key) noexcept:
    """The block a key is in or belongs in (the first whose last key is >= it, else the last
    block): scanned from the best end, where most changes are. Needs nblocks > 0."""
    cdef int i = 0, last = nblocks - 1
    while i < last and blocks[i].key[blocks[i].n - 1] < key:
        i += 1
    return i


cdef inline int _lower_bound(Block* b, double key) noexcept:
    """The first position in the block whose key is >= key (b.n if none)."""
    cdef int lo = 0, hi = b.n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if b.key[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef class BookSide:
    """One side. Bids and asks differ only in the sign of the stored key."""

    def __cinit__(self, bint is_bid, int min_region=50, int region=128,
                  int block_levels=BLOCK_MAX):
        # min_region and region are the Python reference's tuning; blocks need neither.
        if not 2 <= block_levels <= BLOCK_MAX:
            raise ValueError(f"block_levels must be in [2, {BLOCK_MAX}], got {block_levels}")
        self.is_bid = is_bid
        self.sign = -1.0 if is_bid else 1.0
        self.split_at = block_levels
        self.blocks = NULL
        self.nblocks = 0
        self.cap_blocks = 0
        self.count = 0

    def __dealloc__(self):
        self._clear()
        PyMem_Free(self.blocks)

    cdef void _clear(self) noexcept:
        cdef int i
        for i in range(self.nblocks):
            PyMem_Free(self.blocks[i])
        self.nblocks = 0
        self.count = 0

    cdef int _insert_block(self, int at, Block* b) except -1:
        cdef Block** grown
        if self.nblocks == self.cap_blocks:
            grown = <Block**>PyMem_Realloc(self.blocks, (2 * self.cap_blocks + 4) * sizeof(Block*))
            if grown == NULL:
                raise MemoryError()
            self.blocks = grown
            self.cap_blocks = 2 * self.cap_blocks + 4
        memmove(&self.blocks[at + 1], &self.blocks[at], (self.nblocks - at) * sizeof(Block*))
        self.blocks[at] = b
        self.nblocks += 1
        return 0

    cdef void _remove_block(self, int at) noexcept:
        PyMem_Free(self.blocks[at])
        memmove(&self.blocks[at], &self.blocks[at + 1], (self.nblocks - at - 1) * sizeof(Block*))
        self.nblocks -= 1

    cdef int _set(self, double price, double qty) except -1:
        """Absolute quantity at a price (0 deletes; deleting an absent price does nothing)."""
        cdef double key = self.sign * price
        cdef int i, lo, half
        cdef Block* b
        cdef Block* other
        if self.nblocks == 0:
            if qty == 0.0:
                return 0
            b = <Block*>PyMem_Malloc(sizeof(Block))
            if b == NULL:
                raise MemoryError()
            b.n = 1
            b.key[0] = key
            b.qty[0] = qty
            self._insert_block(0, b)
            self.count = 1
            return 0
        i = _block_of(self.blocks, self.nblocks, key)
        b = self.blocks[i]
        lo = _lower_bound(b, key)
        if lo < b.n and b.key[lo] == key:
            if qty != 0.0:
                b.qty[lo] = qty
                return 0
            b.n -= 1
            self.count -= 1
            memmove(&b.key[lo], &b.key[lo + 1], (b.n - lo) * sizeof(double))
            memmove(&b.qty[lo], &b.qty[lo + 1], (b.n - lo) * sizeof(double))
            if b.n == 0:
                self._remove_block(i)
            elif b.n <= self.split_at // 4:
                self._join(i)
            return 0
        if qty == 0.0:
            return 0
        if b.n >= self.split_at:  # full: move its upper half into a new block after it
            other = <Block*>PyMem_Malloc(sizeof(Block))
            if other == NULL:
                raise MemoryError()
            half = b.n // 2
            other.n = b.n - half
            memcpy(other.key, &b.key[half], other.n * sizeof(double))
            memcpy(other.qty, &b.qty[half], other.n * sizeof(double))
            b.n = half
            try:
                self._insert_block(i + 1, other)
            except MemoryError:
                b.n += other.n
                PyMem_Free(other)
                raise
            if lo > half:
                b = other
                lo -= half
        memmove(&b.key[lo + 1], &b.key[lo], (b.n - lo) * sizeof(double))
        memmove(&b.qty[lo + 1], &b.qty[lo], (b.n - lo) * sizeof(double))
        b.key[lo] = key
        b.qty[lo] = qty
        b.n += 1
        self.count += 1
        return 0

    cdef void _join(self, int i) noexcept:
        """Fold a thin block into a neighbour when both fit in half a block (bounds the
        number of blocks, and so the memory, after deep levels are deleted)."""
        cdef Block* b = self.blocks[i]
        cdef Block* other
        cdef int limit = self.split_at // 2
        if i + 1 < self.nblocks and b.n + self.blocks[i + 1].n <= limit:
            other = self.blocks[i + 1]
            memcpy(&b.key[b.n], other.key, other.n * sizeof(double))
            memcpy(&b.qty[b.n], other.qty, other.n * sizeof(double))
            b.n += other.n
            self._remove_block(i + 1)
        elif i > 0 and b.n + self.blocks[i - 1].n <= limit:
            other = self.blocks[i - 1]
            memcpy(&other.key[other.n], b.key, b.n * sizeof(double))
            memcpy(&other.qty[other.n], b.qty, b.n * sizeof(double))
            other.n += b.n
            self._remove_block(i)

    cdef Py_ssize_t _top(self, Py_ssize_t n, double* px, double* qty) noexcept:
        """The n best levels (fewer on a thinner side) into px / qty, best first."""
        cdef Py_ssize_t got = 0
        cdef int i = 0, j, take
        cdef Block* b
        cdef double sign = self.sign
        while got < n and i < self.nblocks:
            b = self.blocks[i]
            take = b.n if b.n < n - got else <int>(n - got)
            for j in range(take):
                px[got + j] = sign * b.key[j]
                qty[got + j] = b.qty[j]
            got += take
            i += 1
        return got

    # --- whole-side operations -------------------------------------------------------------
    def clear(self):
        self._clear()

    def load(self, levels):
        """Replace the side with a snapshot's levels (zero quantities are skipped)."""
        self._clear()
        cdef list kept = []
        cdef double p, q
        for lvl in levels:
            p = lvl[0]
            q = lvl[1]
            if q != 0.0:
                kept.append((p, q))
        cdef Py_ssize_t n = len(kept), k, j, fill
        if not n:
            return
        cdef Pair* pairs = <Pair*>PyMem_Malloc(n * sizeof(Pair))
        if pairs == NULL:
            raise MemoryError()
        cdef Block* b
        try:
            for k in range(n):
                p, q = kept[k]
                if not (isfinite(p) and isfinite(q) and p > 0.0 and q >= 0.0):
                    raise BadLevel("a snapshot holds a NaN, infinite, negative or zero-priced level")
                pairs[k].key = self.sign * p
                pairs[k].qty = q
            qsort(pairs, n, sizeof(Pair), _by_key)
            for k in range(1, n):
                if pairs[k].key == pairs[k - 1].key:
                    raise BadLevel("a snapshot lists the same price twice")
            # Blocks filled to 7/8: room for new levels before the first splits.
            fill = max(1, self.split_at * 7 // 8)
            k = 0
            while k < n:
                b = <Block*>PyMem_Malloc(sizeof(Block))
                if b == NULL:
                    raise MemoryError()
                b.n = <int>min(fill, n - k)
                for j in range(b.n):
                    b.key[j] = pairs[k + j].key
                    b.qty[j] = pairs[k + j].qty
                try:
                    self._insert_block(self.nblocks, b)
                except MemoryError:
                    PyMem_Free(b)
                    raise
                k += b.n
            self.count = n
        except BaseException:
            self._clear()
            raise
        finally:
            PyMem_Free(pairs)

    # --- per-event updates -----------------------------------------------------------------
    def apply(self, levels):
        """Absolute quantities at prices (0 deletes), validated when the event was decoded:
        a Levels from the compiled decoder, or any iterable of (price, quantity)."""
        self._apply(levels)

    cdef int _apply(self, object levels) except -1:
        cdef tuple t
        cdef Levels lv
        cdef Py_ssize_t k
        if type(levels) is Levels:
            lv = <Levels>levels
            for k in range(lv.n):
                self._set(lv.d[2 * k], lv.d[2 * k + 1])
            return 0
        for item in levels:
            if type(item) is tuple and len(<tuple>item) == 2:
                t = <tuple>item
                self._set(t[0], t[1])
            else:
                p, q = item
                self._set(p, q)
        return 0

    # --- reads ------------------------------------------------------------------------------
    def best(self):
        if self.nblocks == 0:
            return None
        return self.sign * self.blocks[0].key[0]

    def top_prices(self, Py_ssize_t n):
        """The n best prices, best first (fewer if the side is thinner)."""
        return self.top_lists(n)[0]

    def top_lists(self, Py_ssize_t n):
        """(prices, quantities) of the n best levels, best first, as two lists."""
        cdef list px = [], qty = []
        cdef int i = 0, j
        cdef Block* b
        cdef double sign = self.sign
        while n > 0 and i < self.nblocks:
            b = self.blocks[i]
            for j in range(b.n if b.n < n else n):
                px.append(sign * b.key[j])
                qty.append(b.qty[j])
            n -= b.n
            i += 1
        return px, qty

    def quantities(self, prices):
        """The quantities at `prices` (levels the side holds: KeyError otherwise), in order."""
        return [self._quantity(p) for p in prices]

    cdef double _quantity(self, double price) except? -1.0:
        cdef double key = self.sign * price
        cdef int lo
        cdef Block* b
        if self.nblocks:
            b = self.blocks[_block_of(self.blocks, self.nblocks, key)]
            lo = _lower_bound(b, key)
            if lo < b.n and b.key[lo] == key:
                return b.qty[lo]
        raise KeyError(price)


    def top(self, Py_ssize_t n):
        px, qty = self.top_lists(n)
        return list(zip(px, qty))

    def levels(self):
        """Every level of the side, best first."""
        return self.top(self.count)

    def sums_within(self, double bound):
        """(sum of qty, sum of px * qty, number of levels) over the levels at or better than
        `bound` (bids: px >= bound, asks: px <= bound). See sums_within_many."""
        return self.sums_within_many((bound,))[0]

    def sums_within_many(self, bounds):
        """sums_within for each bound, in the order given: one running sum over the levels
        best first (qty and px * qty added left to right from 0.0), read at each bound."""
        cdef Py_ssize_t nb = len(bounds), j = 0, c = 0
        cdef list keys = [self.sign * <double>b for b in bounds]
        cdef list order = sorted(range(nb), key=keys.__getitem__)
        cdef list out = [None] * nb
        cdef double sq = 0.0, sn = 0.0, limit, k, sign = self.sign
        cdef int i, m
        cdef Block* blk
        if not nb:
            return out
        limit = keys[order[0]]
        for i in range(self.nblocks):
            blk = self.blocks[i]
            for m in range(blk.n):
                k = blk.key[m]
                while k > limit:
                    out[order[j]] = (sq, sn, c)
                    j += 1
                    if j == nb:
                        return out
                    limit = keys[order[j]]
                sq += blk.qty[m]
                sn += (sign * k) * blk.qty[m]
                c += 1
        while j < nb:
            out[order[j]] = (sq, sn, c)
            j += 1
        return out

    def __len__(self):
        return self.count


cdef class OrderBook:
    def __init__(self, int max_depth=50, int block_levels=BLOCK_MAX):
        self.bids = BookSide(True, block_levels=block_levels)
        self.asks = BookSide(False, block_levels=block_levels)
        self.last_update_id = 0

    def load(self, long long last_update_id, bids, asks):
        self.bids.load(bids)
        self.asks.load(asks)
        self.last_update_id = last_update_id

    def clear(self):
        self.bids._clear()
        self.asks._clear()
        self.last_update_id = 0

    def apply(self, bids, asks, long long last_update_id):
        self.bids._apply(bids)
        self.asks._apply(asks)
        self.last_update_id = last_update_id

    def is_crossed(self):
        """True when the best bid is at or above the best ask: never a valid book."""
        cdef BookSide b = self.bids, a = self.asks
        # A bid's key is -price: best bid >= best ask is -key_bid >= key_ask.
        return b.nblocks > 0 and a.nblocks > 0 and -b.blocks[0].key[0] >= a.blocks[0].key[0]


# --- the L2 records --------------------------------------------------------------------------
cdef inline Py_ssize_t _varint(unsigned char* out, unsigned long long z) noexcept:
    cdef Py_ssize_t i = 0
    while z >= 0x80:
        out[i] = <unsigned char>((z & 0x7F) | 0x80)
        z >>= 7
        i += 1
    out[i] = <unsigned char>z
    return i + 1


cdef inline Py_ssize_t _long(unsigned char* out, long long n) noexcept:
    return _varint(out, (<unsigned long long>n << 1) ^ <unsigned long long>(n >> 63))


cdef inline void _levels(unsigned char* out, unsigned char side, Py_ssize_t n,
                         const double* px, const double* qty) noexcept:
    cdef Py_ssize_t i
    for i in range(n):
        out[17 * i] = side
        memcpy(&out[17 * i + 1], &px[i], 8)
        memcpy(&out[17 * i + 9], &qty[i], 8)


cdef class L2Encoder:
    """L2 records of one (venue, symbol, burst): one per configured depth for each event,
    read straight from a compiled OrderBook (avro_binary.L2Encoder is the reference)."""

    cdef readonly tuple depths
    cdef readonly int max_depth
    cdef readonly Py_ssize_t bid_levels  # levels of each side in the deepest record last encoded
    cdef readonly Py_ssize_t ask_levels
    cdef bytes _prefix
    cdef bytes _suffix
    cdef double* _px  # scratch: bid prices, bid quantities, ask prices, ask quantities
    cdef unsigned char* _bytes  # scratch: the encoded levels, bids then asks

    def __cinit__(self, str venue, str symbol, depths, str burst_id):
        self.depths = tuple(sorted(depths))
        if not self.depths or self.depths[0] <= 0:
            raise ValueError(f"depths must be positive, got {depths!r}")
        self.max_depth = self.depths[len(self.depths) - 1]
        self._prefix = encode_string(venue) + encode_string(symbol)
        self._suffix = encode_string(burst_id)
        if len(self._prefix) > 64:  # the head is assembled in a 128-byte buffer
            raise ValueError(f"venue and symbol too long for an L2 record: {venue!r} {symbol!r}")
        self._px = <double*>PyMem_Malloc(4 * self.max_depth * sizeof(double))
        self._bytes = <unsigned char*>PyMem_Malloc(2 * 17 * self.max_depth)
        if self._px == NULL or self._bytes == NULL:
            raise MemoryError()

    def __dealloc__(self):
        PyMem_Free(self._px)
        PyMem_Free(self._bytes)

    def encode_book(self, OrderBook book, long long event_us, long long ingest_us,
                    long long first_id, long long last_id, prev_id,
                    bint gap_detected, bint recovered):
        """One encoded record per depth (ascending) from the book's best levels, or None when
        either side is empty."""
        cdef int m = self.max_depth
        cdef double* bpx = self._px
        cdef double* bqty = self._px + m
        cdef double* apx = self._px + 2 * m
        cdef double* aqty = self._px + 3 * m
        cdef Py_ssize_t nb_all = book.bids._top(m, bpx, bqty)
        cdef Py_ssize_t na_all = book.asks._top(m, apx, aqty)
        self.bid_levels = nb_all
        self.ask_levels = na_all
        if nb_all == 0 or na_all == 0:
            return None
        cdef unsigned char head[128]
        cdef Py_ssize_t hn = len(self._prefix), sn = len(self._suffix)
        memcpy(head, PyBytes_AS_STRING(self._prefix), hn)  # venue + symbol: short names
        hn += _long(&head[hn], event_us)
        hn += _long(&head[hn], ingest_us)
        hn += _long(&head[hn], first_id)
        hn += _long(&head[hn], last_id)
        if prev_id is None:
            head[hn] = 0
            hn += 1
        else:
            head[hn] = 2
            hn += 1
            hn += _long(&head[hn], prev_id)
        cdef unsigned char* bids = self._bytes
        cdef unsigned char* asks = self._bytes + 17 * m
        _levels(bids, 0, nb_all, bpx, bqty)
        _levels(asks, 2, na_all, apx, aqty)
        cdef double best_bid = bpx[0], best_ask = apx[0]
        cdef double mid = (best_bid + best_ask) / 2
        cdef double spread_bps = (best_ask - best_bid) / mid * 1e4
        cdef double bid_sum = 0.0, ask_sum = 0.0, imbalance
        cdef Py_ssize_t nb, na, done_b = 0, done_a = 0, size, at
        cdef unsigned char counts[24]
        cdef Py_ssize_t dn, cn
        cdef unsigned char* out
        cdef list records = []
        cdef bytes rec
        cdef bytes suffix = self._suffix
        for depth_obj in self.depths:
            depth = <Py_ssize_t>depth_obj
            nb = nb_all if nb_all < depth else depth
            na = na_all if na_all < depth else depth
            # Running sums: each depth's is the left-to-right sum of its first nb quantities.
            while done_b < nb:
                bid_sum += bqty[done_b]
                done_b += 1
            while done_a < na:
                ask_sum += aqty[done_a]
                done_a += 1
            imbalance = (bid_sum - ask_sum) / (bid_sum + ask_sum)
            dn = _long(counts, depth)
            cn = _long(&counts[dn], nb + na)
            size = hn + dn + cn + 17 * (nb + na) + 1 + 26 + sn
            rec = PyBytes_FromStringAndSize(NULL, size)
            out = <unsigned char*>PyBytes_AS_STRING(rec)
            memcpy(out, head, hn)
            at = hn
            memcpy(&out[at], counts, dn + cn)
            at += dn + cn
            memcpy(&out[at], bids, 17 * nb)
            at += 17 * nb
            memcpy(&out[at], asks, 17 * na)
            at += 17 * na
            out[at] = 0  # the levels array's end
            memcpy(&out[at + 1], &mid, 8)
            memcpy(&out[at + 9], &spread_bps, 8)
            memcpy(&out[at + 17], &imbalance, 8)
            out[at + 25] = gap_detected
            out[at + 26] = recovered
            memcpy(&out[at + 27], PyBytes_AS_STRING(suffix), sn)
            records.append(rec)
        return records
