"""The architecture genes of a CNN search space genome: block fields, the pool size, a decoded architecture."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

#: Fields of a block slot's genes, in layout order.
BLOCK_FIELDS = ("active", "filters", "kernel", "pool")
ACTIVE, FILTERS, KERNEL, POOL = 0, 1, 2, 3  # their offsets within a slot
#: The only pool size (2 x 2 max pooling, skipped on maps smaller than that).
POOL_SIZE = 2


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or NumPy) and not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


class Architecture(NamedTuple):
    """A decoded architecture: blocks ``(slot, filters, kernel, pool)`` in order and hidden dense widths."""

    blocks: tuple[tuple[int, int, int, int], ...]
    hidden: tuple[int, ...]
