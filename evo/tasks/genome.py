"""The space of a task whose genome is the solution: its dimension, bounds and representation.

It stands where a network spec would for tasks that declare
:class:`~evo.tasks.base.DefinesGenome`: the run reads ``n_params`` and
``describe()`` from it, draws the starting point with ``init_params``, hands
the strategy its bounds and representation, and the task reads solutions
through :meth:`GenomeSpace.decode` (whole numbers as ``int64``).

Representations:

* ``real``: floats, in ``[lower, upper]`` when bounded;
* ``binary``: 0/1 (bounds are implied);
* ``integer``: whole numbers in ``[lower, upper]`` (inclusive; bounds required);
* ``permutation``: an ordering of ``0 .. dimension-1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

REPRESENTATIONS = ("real", "binary", "integer", "permutation")


@dataclass(frozen=True, eq=False)
class GenomeSpace:
    """Dimension, optional box ``lower <= x <= upper``, representation and optional starting point ``x0``."""

    dimension: int
    #: a number or ``dimension`` numbers (stored as an array)
    lower: Any = None
    upper: Any = None
    representation: str = "real"
    x0: Any = None
    dtype = "float64"  # what a network spec would compute in; a solution has no forward pass (not a field)

    def __post_init__(self) -> None:
        if self.representation not in REPRESENTATIONS:
            raise ValueError(f"task.representation = {self.representation!r}: allowed {list(REPRESENTATIONS)}")
        if int(self.dimension) < 1:
            raise ValueError(f"task.dimension = {self.dimension!r}: must be >= 1")
        object.__setattr__(self, "dimension", int(self.dimension))
        n = self.dimension
        lower, upper = self.lower, self.upper
        if self.representation == "binary":
            lower, upper = np.zeros(n), np.ones(n)
        if (lower is None) != (upper is None):
            raise ValueError("task.bounds: give both lower and upper")
        if lower is not None and upper is not None and self.representation != "permutation":
            lower = np.broadcast_to(np.asarray(lower, dtype=np.float64), (n,)).copy()
            upper = np.broadcast_to(np.asarray(upper, dtype=np.float64), (n,)).copy()
            if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))) or np.any(lower >= upper):
                raise ValueError(f"task.bounds: need finite lower < upper for every dimension, got {lower.tolist()} and {upper.tolist()}")
            if self.representation == "integer" and not (np.all(lower == np.round(lower)) and np.all(upper == np.round(upper))):
                raise ValueError("task.bounds: integer genomes need whole-number bounds")
        else:
            lower = upper = None
        if self.representation == "integer" and lower is None:
            raise ValueError("task.bounds: an integer representation needs bounds = [low, high]")
        if self.representation == "real" and lower is None and self.x0 is None:
            raise ValueError("task.bounds: a real-valued problem needs bounds = [low, high] or a starting point x0")
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        if self.x0 is not None:
            x0 = np.asarray(self.x0, dtype=np.float64).reshape(-1)
            if x0.shape != (n,) or not np.all(np.isfinite(x0)):
                raise ValueError(f"task.x0: needs {n} finite numbers, got {np.asarray(self.x0).tolist()!r}")
            if lower is not None and upper is not None and (np.any(x0 < lower) or np.any(x0 > upper)):
                raise ValueError("task.x0: lies outside the bounds")
            object.__setattr__(self, "x0", x0)

    @property
    def n_params(self) -> int:
        """Genes per genome."""
        return self.dimension

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(lower, upper)`` or None (unbounded reals, permutations)."""
        return None if self.lower is None or self.upper is None else (self.lower, self.upper)

    @property
    def discrete(self) -> bool:
        """Whether solutions are whole numbers."""
        return self.representation != "real"

    def init_params(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` starting genomes: ``x0`` if given, else uniform in the box (reals), random bits, integers or permutations."""
        shape = (n, self.dimension)
        if self.x0 is not None:
            return np.tile(self.x0, (n, 1))
        if self.representation == "permutation":
            return np.argsort(rng.random(shape), axis=1).astype(np.float64)
        assert self.lower is not None and self.upper is not None
        if self.discrete:
            return rng.integers(self.lower.astype(np.int64), self.upper.astype(np.int64) + 1, size=shape).astype(np.float64)
        return self.lower + (self.upper - self.lower) * rng.random(shape)

    def decode(self, genomes: np.ndarray) -> np.ndarray:
        """Genomes as the user's solutions ``(P, dimension)``: floats, or ``int64`` for discrete representations."""
        genomes = np.asarray(genomes, dtype=np.float64)
        return np.rint(genomes).astype(np.int64) if self.discrete else genomes

    def describe(self) -> dict[str, Any]:
        """JSON-able: what a genome is (recorded in ``best_genome.json`` and the summary as the "network")."""
        return {
            "type": "solution",
            "representation": self.representation,
            "dimension": self.dimension,
            "lower": None if self.lower is None else self.lower.tolist(),
            "upper": None if self.upper is None else self.upper.tolist(),
            "x0": None if self.x0 is None else self.x0.tolist(),
        }
