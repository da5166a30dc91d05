"""Two-objective selection shared by the topology strategies: maximise fitness, minimise complexity.

NSGA-II (Deb, Pratap, Agarwal & Meyarivan (2002), "A fast and elitist
multiobjective genetic algorithm: NSGA-II", IEEE Trans. Evolutionary
Computation 6(2)): non-dominated sorting into fronts, crowding distance within
a front, survival of the best ``k`` by (front, crowding distance), and binary
tournaments on the same key. DEAP does the sorting and the crowding (its
``sortNondominated``, ``assignCrowdingDist`` and ``selNSGA2``) behind a NumPy
interface: points go in as index, fitness and complexity arrays, indices come
out. DEAP stays inside this module (a local ``Fitness`` with weights
``(1, -1)``, nothing in ``deap.creator``), and none of it draws random numbers.

The rules both :mod:`evo.strategies.neat` and :mod:`evo.strategies.cnn_arch` follow:

* Only finite fitness is ranked. A failed (non-finite) point survives only
  when too few finite ones exist, after every finite one, with rank ``inf``
  and crowding distance 0.
* A tournament between two drawn points goes to the lower front, then to the
  larger crowding distance; a full tie goes to the first drawn.
* The Pareto archive keeps the non-dominated set of everything evaluated; a
  genome evaluated again takes its latest evaluation (a failed one takes it
  off the archive), so with a noisy fitness a lucky evaluation does not stay on
  the front forever; an optional size cap thins the front by crowding
  distance, the fittest point always kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from deap import base, tools


class _FitnessComplexity(base.Fitness):
    """The two objectives: maximise the task fitness, minimise the complexity."""

    weights = (1.0, -1.0)


class _Point:
    """A point by its index, with the DEAP fitness object DEAP's selection reads."""

    __slots__ = ("fitness", "index")

    def __init__(self, index: int, fitness: float, complexity: float) -> None:
        self.index = index
        self.fitness = _FitnessComplexity()
        self.fitness.values = (fitness, complexity)


def non_dominated(fitness: np.ndarray, complexity: np.ndarray) -> np.ndarray:
    """Indices of the points no other point dominates (fitness up, complexity down), by increasing complexity.

    Of points with equal objectives only the first (lowest index) is kept;
    non-finite fitness never qualifies; along the result the fitness strictly rises.
    """
    fitness = np.asarray(fitness, dtype=np.float64)
    candidates = np.flatnonzero(np.isfinite(fitness))
    if len(candidates) == 0:
        return np.zeros(0, dtype=np.int64)
    complexity = np.asarray(complexity)[candidates]
    order = candidates[np.lexsort((candidates, -fitness[candidates], complexity))]
    ranked = fitness[order]
    best_before = np.maximum.accumulate(np.concatenate([[-np.inf], ranked[:-1]]))
    return order[ranked > best_before].astype(np.int64)


@dataclass(frozen=True)  # not a NamedTuple: its ``index`` field would shadow tuple.index
class Survivors:
    """Who survives NSGA-II selection, with the (front rank, crowding distance) its tournaments compare."""

    index: np.ndarray  # (k,) int: indices into the points selected from
    rank: np.ndarray  # (k,) float: front number (0 best); inf for a failed point kept to fill up
    crowding: np.ndarray  # (k,) float: crowding distance within its front; 0 for a failed point


def nsga2_survivors(
    fitness: np.ndarray,
    complexity: np.ndarray,
    k: int,
    candidates: np.ndarray | None = None,
    fallback: np.ndarray | None = None,
    pool_order: bool = False,
) -> Survivors:
    """The ``k`` survivors of NSGA-II among ``candidates`` (default: every point), each with its rank and crowding.

    Finite candidates are ranked: all of them survive when there are at most
    ``k``, else DEAP's ``selNSGA2`` keeps ``k``. Rank and crowding distance
    are then those of non-dominated sorting *among the survivors*. Too few
    finite candidates: the shortfall comes from ``fallback`` in its order
    (default: the non-finite candidates by index). Survivors come in DEAP's
    selection order, or by index with ``pool_order`` (the fallback last either way).
    """
    fitness = np.asarray(fitness, dtype=np.float64)
    complexity = np.asarray(complexity)
    candidates = np.arange(len(fitness)) if candidates is None else np.asarray(candidates, dtype=np.int64)
    finite = candidates[np.isfinite(fitness[candidates])]
    points = [_Point(int(i), float(fitness[i]), float(complexity[i])) for i in finite]
    survivors = tools.selNSGA2(points, k) if len(points) >= k else points
    rank: dict[int, float] = {}
    crowding: dict[int, float] = {}
    if survivors:
        for r, front in enumerate(tools.sortNondominated(survivors, len(survivors))):
            tools.emo.assignCrowdingDist(front)
            for point in front:
                rank[point.index], crowding[point.index] = r, point.fitness.crowding_dist
    chosen = sorted(rank) if pool_order else [point.index for point in survivors]
    if len(chosen) < k:
        if fallback is None:
            fallback = candidates[~np.isfinite(fitness[candidates])]
        for i in np.asarray(fallback, dtype=np.int64)[: k - len(chosen)].tolist():
            rank[i], crowding[i] = math.inf, 0.0
            chosen.append(i)
    return Survivors(
        np.array(chosen, dtype=np.int64),
        np.array([rank[i] for i in chosen], dtype=np.float64),
        np.array([crowding[i] for i in chosen], dtype=np.float64),
    )


def tournament_winners(survivors: Survivors, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Positions (into ``survivors``) of the winners of binary tournaments between ``first[i]`` and ``second[i]``.

    The lower front wins, then the larger crowding distance; a full tie goes to
    ``first``. The caller draws the pairs from its own random state.
    """
    first, second = np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64)
    r0, r1 = survivors.rank[first], survivors.rank[second]
    c0, c1 = survivors.crowding[first], survivors.crowding[second]
    first_wins = (r0 < r1) | ((r0 == r1) & (c0 >= c1))
    return np.where(first_wins, first, second)


def thin_by_crowding(fitness: np.ndarray, complexity: np.ndarray, front: np.ndarray, size: int) -> np.ndarray:
    """At most ``size`` of the points ``front`` (mutually non-dominated, by increasing complexity); the fittest stays.

    The others are kept by DEAP's ``selNSGA2`` on one front, i.e. by crowding
    distance, which keeps the extremes. The result is sorted by (complexity, -fitness).
    """
    front = np.asarray(front, dtype=np.int64)
    if len(front) <= size:
        return front
    fittest, rest = int(front[-1]), front[:-1]
    points = [_Point(int(i), float(fitness[i]), float(complexity[i])) for i in rest]
    chosen = [point.index for point in tools.selNSGA2(points, size - 1)] + [fittest]
    return np.asarray(sorted(chosen, key=lambda i: (complexity[i], -fitness[i])), dtype=np.int64)


class ParetoArchive:
    """The non-dominated set (fitness up, complexity down) of every genome evaluated, by increasing complexity.

    ``max_size`` (None: unbounded) caps it by :func:`thin_by_crowding`.
    Arrays: ``genomes (n, n_params)``, ``fitness (n,)``, ``complexity (n,)`` int.
    """

    def __init__(self, n_params: int, max_size: int | None = None) -> None:
        self.max_size = max_size
        self.genomes = np.zeros((0, n_params))
        self.fitness = np.zeros(0)
        self.complexity = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.fitness)

    def update(self, genomes: np.ndarray, fitness: np.ndarray, complexity: np.ndarray) -> None:
        """Merge one generation's evaluations: each genome's latest evaluation replaces an archived one."""
        latest = {g.tobytes() for g in genomes}
        stale = np.array([g.tobytes() in latest for g in self.genomes], dtype=bool).reshape(-1)
        all_genomes = np.concatenate([self.genomes[~stale], genomes])
        all_fitness = np.concatenate([self.fitness[~stale], fitness])
        all_complexity = np.concatenate([self.complexity[~stale], np.asarray(complexity, dtype=np.int64)])
        keep = non_dominated(all_fitness, all_complexity)
        if self.max_size is not None:
            keep = thin_by_crowding(all_fitness, all_complexity, keep, self.max_size)
        self.genomes = all_genomes[keep].copy()
        self.fitness = all_fitness[keep].copy()
        self.complexity = all_complexity[keep].astype(np.int64)

    def best(self) -> tuple[np.ndarray, float] | None:
        """The fittest member and its fitness (the most complex one: fitness rises along the front); None when empty."""
        if len(self) == 0:
            return None
        i = int(np.argmax(self.fitness))
        return self.genomes[i].copy(), float(self.fitness[i])

    def members(self) -> list[dict[str, Any]]:
        """One ``{"genome", "fitness", "complexity"}`` dict per member, by increasing complexity."""
        return [
            {"genome": g.copy(), "fitness": float(f), "complexity": int(c)} for g, f, c in zip(self.genomes, self.fitness, self.complexity)
        ]

    def state_dict(self) -> dict[str, np.ndarray]:
        """``archive``, ``archive_fitness`` and ``archive_complexity`` arrays."""
        return {"archive": self.genomes.copy(), "archive_fitness": self.fitness.copy(), "archive_complexity": self.complexity.copy()}

    def load_state_dict(self, state: dict[str, Any], complexity: np.ndarray | None = None) -> None:
        """Restore :meth:`state_dict`'s arrays; ``complexity`` stands in for a state saved without them."""
        self.genomes = np.asarray(state["archive"], dtype=np.float64).reshape(-1, self.genomes.shape[1]).copy()
        self.fitness = np.asarray(state["archive_fitness"], dtype=np.float64).reshape(-1).copy()
        saved = state.get("archive_complexity", complexity)
        self.complexity = np.asarray(saved, dtype=np.int64).reshape(-1).copy()
