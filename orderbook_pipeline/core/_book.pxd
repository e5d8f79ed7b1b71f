# The compiled order book (core/_book.pyx): declared here so that other compiled modules can
# cimport it and read a side's levels without Python calls.

cdef enum:
    BLOCK_MAX = 256  # levels a block can hold (4 kB of doubles)

ctypedef struct Block:
    int n
    double key[BLOCK_MAX]  # ascending: the best level first (bids store -price)
    double qty[BLOCK_MAX]


cdef class Levels:
    # A diff event's side as decoded by core/depth_scan.pyx: pairs (price, quantity) of C
    # doubles, d[2 * i] and d[2 * i + 1], in the frame's order (no Python float per level).
    cdef double* d
    cdef Py_ssize_t n


cdef Levels levels_from(const double* pairs, Py_ssize_t n)


cdef class BookSide:
    cdef Block** blocks
    cdef int nblocks
    cdef int cap_blocks
    cdef int split_at  # a block this full splits before an insert (tests use small blocks)
    cdef Py_ssize_t count
    cdef double sign  # -1.0 for bids: key = sign * price, ascending = best first
    cdef readonly bint is_bid

    cdef void _clear(self) noexcept
    cdef int _insert_block(self, int at, Block* b) except -1
    cdef void _remove_block(self, int at) noexcept
    cdef void _join(self, int i) noexcept
    cdef double _quantity(self, double price) except? -1.0
    cdef int _set(self, double price, double qty) except -1
    cdef Py_ssize_t _top(self, Py_ssize_t n, double* px, double* qty) noexcept
    cdef int _apply(self, object levels) except -1


cdef class OrderBook:
    cdef readonly BookSide bids
    cdef readonly BookSide asks
    cdef public long long last_update_id
