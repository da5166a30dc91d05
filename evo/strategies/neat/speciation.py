"""NEAT's speciation: compatibility distance, species, explicit fitness sharing, stagnation, parent selection.

* The compatibility distance ``delta = c1 E / N + c2 D / N + c3 W`` (E excess,
  D disjoint genes, W mean weight difference of matching genes, N the larger
  genome's gene count, 1 below ``normalize_min_genes`` genes). A genome joins
  the closest species whose representative (a random member of the previous
  generation) is within the threshold, else founds a new species. The
  threshold moves by ``threshold_step`` each generation toward
  ``target_species`` species.
* Explicit fitness sharing: a species' offspring are proportional to the sum
  of its members' adjusted fitness ``(f - f_min) / species size`` (shifted by
  the generation's worst finite fitness so any fitness scale works).
* Species of at least ``elitism_min_species_size`` keep their ``elitism`` best
  unchanged (the generation's champion always survives); parents come from the
  best ``survival_threshold`` of a species (another species' with
  ``interspecies_prob``); species that have not improved for ``stagnation``
  generations die, except the best one.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from networks.neat import (
    Conn,
    NEATSpec,
)


def compatibility_distances(
    innov_a: np.ndarray,
    weight_a: np.ndarray,
    innov_b: np.ndarray,
    weight_b: np.ndarray,
    c1: float,
    c2: float,
    c3: float,
    normalize_min_genes: int,
) -> np.ndarray:
    """NEAT distance ``(Pa, Pb)`` between genomes given as padded innovation rows (-1 empty) and their weights."""
    valid_a, valid_b = innov_a >= 0, innov_b >= 0
    universe = np.unique(np.concatenate([innov_a[valid_a], innov_b[valid_b]]))
    K = len(universe)

    def dense(innov: np.ndarray, weight: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        present = np.zeros((len(innov), K), dtype=bool)
        dense_w = np.zeros((len(innov), K))
        rows, cols = np.nonzero(valid)
        k = np.searchsorted(universe, innov[rows, cols])
        present[rows, k] = True
        dense_w[rows, k] = weight[rows, cols]
        return present, dense_w

    pa, wa = dense(innov_a, weight_a, valid_a)
    pb, wb = dense(innov_b, weight_b, valid_b)
    na, nb = pa.sum(axis=1), pb.sum(axis=1)
    matching = pa.astype(np.float64) @ pb.T.astype(np.float64)
    if len(pa) * len(pb) * K <= 1_000_000:
        both = pa[:, None, :] & pb[None, :, :]
        weight_diff = np.where(both, np.abs(wa[:, None, :] - wb[None, :, :]), 0.0).sum(axis=2)
    else:  # one representative at a time keeps memory flat
        weight_diff = np.empty((len(pa), len(pb)))
        for s in range(len(pb)):
            weight_diff[:, s] = np.where(pa & pb[s], np.abs(wa - wb[s]), 0.0).sum(axis=1)
    # Excess genes lie beyond the other genome's last innovation; the columns are sorted by innovation.
    last_a = np.where(na > 0, K - 1 - np.argmax(pa[:, ::-1], axis=1), 0)
    last_b = np.where(nb > 0, K - 1 - np.argmax(pb[:, ::-1], axis=1), 0)
    cum_a, cum_b = np.cumsum(pa, axis=1), np.cumsum(pb, axis=1)
    excess = (na[:, None] - cum_a[:, last_b]) + (nb[None, :] - cum_b[:, last_a].T)
    disjoint = na[:, None] + nb[None, :] - 2 * matching - excess
    mean_diff = weight_diff / np.maximum(matching, 1.0)
    size = np.maximum(na[:, None], nb[None, :]).astype(np.float64)
    size = np.where(size < normalize_min_genes, 1.0, size)
    return c1 * excess / size + c2 * disjoint / size + c3 * mean_diff


def largest_remainder(shares: np.ndarray, total: int) -> np.ndarray:
    """Integers proportional to ``shares`` summing to ``total`` (Hamilton's method, ties to the lower index)."""
    exact = shares / shares.sum() * total
    counts = np.floor(exact).astype(np.int64)
    short = total - int(counts.sum())
    if short > 0:
        counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    return counts


class Parents(NamedTuple):
    """The next generation's plan: elites copied unchanged, parent pairs (``b = -1``: no crossover), representatives."""

    elites: np.ndarray  # rows kept unchanged
    a: np.ndarray  # first parent of each child
    b: np.ndarray  # second parent, or -1
    representatives: np.ndarray  # one random member row per surviving species


class Species:
    """The species table (ids, best fitness ever, generation of the last improvement) and the moving threshold.

    ``p`` holds NEAT's parameters (:class:`evo.strategies.neat.NEAT`'s).
    """

    def __init__(self, spec: NEATSpec, p: Any) -> None:
        self.spec, self.p = spec, p
        self.threshold = p.compatibility_threshold
        self.next_id = 0
        # Sorted by id.
        self.ids = np.zeros(0, dtype=np.int64)
        self.best = np.zeros(0)
        self.improved = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def distances(self, flat_a: np.ndarray, innov_a: np.ndarray, flat_b: np.ndarray, innov_b: np.ndarray) -> np.ndarray:
        """Compatibility distances ``(Pa, Pb)`` between two stacks of genomes (flat rows and innovations)."""
        p = self.p
        width = max(int((innov_a >= 0).sum(axis=1).max(initial=0)), int((innov_b >= 0).sum(axis=1).max(initial=0)), 1)
        return compatibility_distances(
            innov_a[:, :width],
            self.spec.split(flat_a)[1][:, :width, Conn.WEIGHT],
            innov_b[:, :width],
            self.spec.split(flat_b)[1][:, :width, Conn.WEIGHT],
            p.c1,
            p.c2,
            p.c3,
            p.normalize_min_genes,
        )

    def speciate(
        self, flat: np.ndarray, innov: np.ndarray, reps: tuple[np.ndarray, np.ndarray, np.ndarray] | None, generation: int
    ) -> np.ndarray:
        """Species id of every genome (``reps``: ids, flat rows, innovations); founds new species, drops empty ones, moves the threshold."""
        P = len(flat)
        assign = np.full(P, -1, dtype=np.int64)
        if reps is not None and len(reps[0]):
            rep_ids, rep_flat, rep_innov = reps
            d = self.distances(flat, innov, rep_flat, rep_innov)
            closest = np.argmin(d, axis=1)
            ok = d[np.arange(P), closest] < self.threshold
            assign[ok] = rep_ids[closest[ok]]
        remaining = np.flatnonzero(assign < 0)
        new_ids = []
        while len(remaining):
            founder = remaining[0]
            d = self.distances(flat[remaining], innov[remaining], flat[founder : founder + 1], innov[founder : founder + 1])[:, 0]
            sid = self.next_id
            self.next_id += 1
            new_ids.append(sid)
            assign[remaining[d < self.threshold]] = sid
            assign[founder] = sid
            remaining = remaining[assign[remaining] < 0]
        # The table keeps surviving species (with their history) and the new ones, sorted by id.
        alive = np.isin(self.ids, assign)
        self.ids = np.concatenate([self.ids[alive], np.array(new_ids, dtype=np.int64)])
        self.best = np.concatenate([self.best[alive], np.full(len(new_ids), -np.inf)])
        self.improved = np.concatenate([self.improved[alive], np.full(len(new_ids), generation, dtype=np.int64)])
        if len(self.ids) < self.p.target_species:
            self.threshold = max(self.threshold - self.p.threshold_step, self.p.threshold_min)
        elif len(self.ids) > self.p.target_species:
            self.threshold += self.p.threshold_step
        return assign

    def select_parents(
        self, species_of: np.ndarray, fitness: np.ndarray, champion: int, generation: int, rng: np.random.Generator
    ) -> Parents:
        """Record each species' progress, drop stagnant ones, share the offspring out and pick elites and parents."""
        p, P = self.p, len(fitness)
        finite = np.isfinite(fitness)
        index = np.searchsorted(self.ids, species_of)
        S = len(self.ids)
        sizes = np.bincount(index, minlength=S)
        species_max = np.full(S, -np.inf)
        np.maximum.at(species_max, index, fitness)
        improved = species_max > self.best
        self.best = np.where(improved, species_max, self.best)
        self.improved = np.where(improved, generation, self.improved)
        alive = (sizes > 0) & (generation - self.improved < p.stagnation)
        best_species = int(np.argmax(species_max)) if champion < 0 else int(index[champion])
        alive[best_species] = True

        # Explicit fitness sharing: the sum of (f - f_min) / size over a species is its mean shifted fitness.
        f_min = fitness[finite].min() if finite.any() else 0.0
        adjusted = np.where(finite, fitness - f_min, 0.0)
        shared = np.bincount(index, weights=adjusted, minlength=S) / np.maximum(sizes, 1)
        shares = np.where(alive, shared, 0.0)
        if shares.sum() <= 0:
            shares = np.where(alive, sizes, 0).astype(np.float64)
        counts = largest_remainder(shares, P)
        if champion >= 0 and counts[best_species] == 0:
            counts[int(np.argmax(counts))] -= 1
            counts[best_species] = 1

        order = np.argsort(-np.where(finite, fitness, -np.inf), kind="stable")  # best first, failures last
        elites: list[int] = []
        parent_a: list[np.ndarray] = []
        parent_b: list[np.ndarray] = []
        rep_rows = []
        grouped = order[np.argsort(index[order], kind="stable")]  # by species, best first within each
        starts = np.concatenate([[0], np.cumsum(sizes)])
        for s in range(S):
            members = grouped[starts[s] : starts[s + 1]]
            if alive[s] and len(members):  # the representative for the next speciation: a random member
                rep_rows.append(members[rng.integers(len(members))])
            if counts[s] == 0:
                continue
            n_finite = int(finite[members].sum())
            n_elite = min(p.elitism, counts[s]) if len(members) >= p.elitism_min_species_size else 0
            if s == best_species and champion >= 0:
                n_elite = max(n_elite, 1)
            n_elite = min(n_elite, n_finite)
            elites.extend(members[:n_elite].tolist())
            pool_size = min(len(members), max(2, math.ceil(p.survival_threshold * len(members))))
            pool = members[: min(pool_size, n_finite)] if n_finite else members[:pool_size]
            n_child = int(counts[s]) - n_elite
            if n_child == 0:
                continue
            first = rng.integers(len(pool), size=n_child)
            a = pool[first]
            b = pool[(first + 1 + rng.integers(len(pool) - 1, size=n_child)) % len(pool)] if len(pool) > 1 else a.copy()
            cross = (rng.random(n_child) < p.crossover_prob) & (len(pool) > 1)
            inter = rng.random(n_child) < p.interspecies_prob
            if inter.any():
                others = np.flatnonzero((index != s) & finite)
                if len(others):
                    b = np.where(inter, others[rng.integers(len(others), size=n_child)], b)
                    cross |= inter
            parent_a.append(a)
            parent_b.append(np.where(cross, b, -1))
        return Parents(
            np.array(elites, dtype=np.int64),
            np.concatenate(parent_a) if parent_a else np.zeros(0, dtype=np.int64),
            np.concatenate(parent_b) if parent_b else np.zeros(0, dtype=np.int64),
            np.array(rep_rows, dtype=np.int64),
        )

    def state_dict(self) -> dict[str, Any]:
        """The table, the threshold and the next id."""
        return {
            "species_ids": self.ids.copy(),
            "species_best": self.best.copy(),
            "species_improved": self.improved.copy(),
            "threshold": np.array(self.threshold),
            "next_species_id": self.next_id,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.ids = np.array(state["species_ids"], dtype=np.int64).reshape(-1)
        self.best = np.array(state["species_best"], dtype=np.float64).reshape(-1)
        self.improved = np.array(state["species_improved"], dtype=np.int64).reshape(-1)
        self.threshold = float(np.asarray(state["threshold"]))
        self.next_id = int(state["next_species_id"])
