"""Recycled work arrays: a recurrent layer's step records and gradients without fresh memory pages on every call.

A fresh large NumPy array costs more than its arithmetic. Once a process has
freed more than about twice its largest block, the C allocator hands the
memory back to the system, and the next call's arrays start on new pages, each
one a page fault when first written (about 4 us each on a virtual machine: 3 ms
for the 2344 faults of one LSTM training step of 32 steps x 64 sequences x 128
units, a third of a 1 x 32 x 32 step). :func:`scratch` hands out an array that
an earlier call used, of the same shape, but only once nothing else holds it:
its reference count says so (a cache, a view or a slice that is still alive
counts, since a view holds its base array), so no caller ever sees numbers it
still holds change. The arrays come uninitialised, as from ``np.empty``.

One pool per thread, of at most :data:`MAX_ARRAYS` arrays and
:data:`MAX_BYTES` bytes; when full it forgets them all and starts over
(forgetting an array only means a later call allocates afresh; whoever holds
it keeps it).
"""

from __future__ import annotations

import sys
import threading

import numpy as np
from numpy.typing import DTypeLike

#: Arrays kept per thread: a trainer's step of a few layers holds its forward records twice (the last
#: step's cache is alive while the next forward runs) plus the backward's, and evaluation adds its own shapes.
MAX_ARRAYS = 24
#: Bytes kept per thread (a larger array is handed out but not kept).
MAX_BYTES = 64 << 20


def _references(arrays: list[np.ndarray], k: int) -> int:
    """The reference count of ``arrays[k]``: the list's own, the call's argument, and any holder's."""
    return sys.getrefcount(arrays[k])


#: What :func:`_references` reads for an array that nothing outside the pool holds (measured, not assumed).
_FREE = _references([np.empty(1)], 0)


class _Pool(threading.local):
    def __init__(self) -> None:
        self.by_shape: dict[tuple[tuple[int, ...], str], list[np.ndarray]] = {}
        self.count = 0
        self.nbytes = 0


_POOL = _Pool()


def scratch(shape: tuple[int, ...], dtype: DTypeLike = np.float64) -> np.ndarray:
    """An uninitialised array of ``shape`` and ``dtype`` (float64 by default): one an earlier call used when nothing holds it any more, else a new one."""
    pool = _POOL
    key = (shape, np.dtype(dtype).str)
    arrays = pool.by_shape.get(key)
    if arrays is not None:
        for k in range(len(arrays)):
            if _references(arrays, k) <= _FREE:
                return arrays[k]
    array = np.empty(shape, dtype=dtype)
    if array.nbytes <= MAX_BYTES:
        if pool.count >= MAX_ARRAYS or pool.nbytes + array.nbytes > MAX_BYTES:
            clear_scratch()  # full: start over (the arrays in use stay with their holders)
        pool.by_shape.setdefault(key, []).append(array)
        pool.count += 1
        pool.nbytes += array.nbytes
    return array


def clear_scratch() -> None:
    """Forget this thread's recycled arrays (those still in use stay with their holders)."""
    _POOL.by_shape.clear()
    _POOL.count = _POOL.nbytes = 0
