"""CMA-ES (DEAP's ``cma.Strategy``) behind the ask/tell interface.

Covariance Matrix Adaptation Evolution Strategy: Hansen & Ostermeier (2001),
"Completely Derandomized Self-Adaptation in Evolution Strategies",
Evolutionary Computation 9(2); with the rank-mu update of Hansen, Müller &
Koumoutsakos (2003), Evolutionary Computation 11(1). The full covariance
matrix is ``n_params x n_params`` with an eigendecomposition per generation,
so this suits genomes of up to a few hundred weights.

DEAP's ``generate`` draws from NumPy's *global* legacy RNG; this strategy
swaps its own MT19937 state in for that call and restores the caller's
afterwards, so its samples depend only on its seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from deap import cma

from evo.strategies.base import Strategy

# Attributes of deap.cma.Strategy that change after construction. Everything
# else (weights, mu, cs, damps, ...) follows from (n_params, population, sigma).
_CMA_STATE = ("centroid", "sigma", "pc", "ps", "C", "diagD", "B", "BD", "cond", "update_count")


class _Individual(np.ndarray):
    """A genome row with the ``fitness`` that ``cma.Strategy.update`` sorts on.

    DEAP sorts ``key=ind.fitness, reverse=True``; with a plain float that
    puts the highest fitness first, i.e. CMA-ES maximises, and -inf sorts last.
    """

    fitness: float


class CMAES(Strategy):
    """CMA-ES with full covariance, from DEAP; fitness is maximised."""

    name = "cmaes"

    def __init__(
        self, n_params: int, population: int, seed: int, init: np.ndarray, *, sigma: float = 0.5, **unknown: Any
    ) -> None:
        if unknown:
            raise ValueError(f"cmaes: unknown parameter(s) {sorted(unknown)}; allowed: sigma")
        for label, value, low in (("n_params", n_params, 1), ("population", population, 2), ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"cmaes: {label} must be an integer >= {low}, got {value!r}")
        init = np.asarray(init, dtype=np.float64)
        if init.shape != (n_params,) or not np.all(np.isfinite(init)):
            raise ValueError(f"cmaes: init must be a finite array of shape ({n_params},), got shape {init.shape}")
        try:
            sigma = float(sigma)
        except (TypeError, ValueError):
            raise ValueError(f"cmaes: sigma must be a number, got {sigma!r}") from None
        if not (math.isfinite(sigma) and sigma > 0.0):
            raise ValueError(f"cmaes: sigma must be finite and > 0, got {sigma!r}")
        super().__init__(n_params, population, seed, init, sigma=sigma)

        self.cma_ = cma.Strategy(centroid=self.init.copy(), sigma=sigma, lambda_=self.population)
        # DEAP turns sigma into np.float64 at the first update; use that type from
        # the start so a restored strategy computes with exactly the same scalars.
        self.cma_.sigma = np.float64(sigma)
        # Private legacy MT19937 state (the global-RNG API DEAP calls), seeded
        # through SeedSequence so any 64-bit seed works.
        self._np_state: tuple = np.random.RandomState(np.random.MT19937(self.seed)).get_state(legacy=True)
        # RNG state just before the pending population was drawn: saving that
        # (not the pending genomes) lets a restored run redraw them exactly.
        self._np_state_before_ask: tuple | None = None
        self._pending: np.ndarray | None = None
        self._best_genome = self.init.copy()
        self._best_fitness = -math.inf
        self.generation_ = 0

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> np.ndarray:
        """Genomes ``(population, n_params)`` sampled from N(centroid, sigma² C); the same until :meth:`tell`."""
        if self._pending is None:
            self._np_state_before_ask = self._np_state
            with self._private_numpy_random():
                rows = self.cma_.generate(np.asarray)
            self._pending = np.asarray(rows, dtype=np.float64).reshape(self.population, self.n_params)
        return self._pending.copy()

    def tell(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """Rank the genomes by fitness and update centroid, step size and covariance."""
        if self._pending is None:
            raise RuntimeError("cmaes: tell() called without a pending ask()")
        genomes, fitness = self.check_tell(genomes, fitness)
        # NaN cannot be sorted; a failed evaluation is the worst. -inf sorts
        # fine and only enters recombination if over half the population failed.
        fitness = np.where(np.isnan(fitness), -np.inf, fitness)
        individuals = []
        for row, value in zip(genomes.copy().view(_Individual), fitness.tolist()):
            row.fitness = value
            individuals.append(row)
        self.cma_.update(individuals)
        self.cma_.centroid = np.asarray(self.cma_.centroid, dtype=np.float64)

        top = int(np.argmax(fitness))
        if fitness[top] > self._best_fitness:
            self._best_genome, self._best_fitness = genomes[top].copy(), float(fitness[top])
        self._pending = None
        self._np_state_before_ask = None
        self.generation_ += 1

    @contextmanager
    def _private_numpy_random(self) -> Iterator[None]:
        """Run DEAP on this strategy's own global-NumPy-RNG state, then restore the caller's."""
        caller_state = np.random.get_state(legacy=True)
        np.random.set_state(self._np_state)
        try:
            yield
        finally:
            self._np_state = np.random.get_state(legacy=True)
            np.random.set_state(caller_state)

    # ------------------------------------------------------------------ results
    def best(self) -> tuple[np.ndarray, float]:
        """The centroid (the distribution's mean) and ``nan``: the centroid itself is never evaluated."""
        return np.array(self.cma_.centroid, dtype=np.float64), math.nan

    def best_sample(self) -> tuple[np.ndarray, float]:
        """The best evaluated genome so far and its fitness (``init``, -inf before any tell)."""
        return self._best_genome.copy(), self._best_fitness

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """CMA state, private RNG state, best sample and generation."""
        # A pending population is not saved: the RNG state from before it was
        # drawn is, so the restored strategy's next ask() draws it again.
        rng_state = self._np_state_before_ask if self._pending is not None else self._np_state
        _, keys, pos, has_gauss, cached_gaussian = rng_state
        cma_state = {name: getattr(self.cma_, name) for name in _CMA_STATE}
        state: dict[str, Any] = {
            f"cma_{name}": np.array(value, dtype=np.float64, copy=True)
            for name, value in cma_state.items()
            if name not in ("update_count",)
        }
        state.update(
            cma_update_count=int(cma_state["update_count"]),
            np_random_keys=np.array(keys, dtype=np.uint32, copy=True),
            np_random_pos=int(pos),
            np_random_has_gauss=int(has_gauss),
            np_random_cached_gaussian=float(cached_gaussian),
            best_genome=self._best_genome.copy(),
            best_fitness=np.array(self._best_fitness),  # may be -inf: kept out of JSON
            generation=self.generation_,
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        centroid = np.asarray(state["cma_centroid"], dtype=np.float64)
        if centroid.shape != (self.n_params,):
            raise ValueError(f"cmaes: saved centroid has shape {centroid.shape}, expected ({self.n_params},)")
        for name in _CMA_STATE:
            if name == "update_count":
                self.cma_.update_count = int(state["cma_update_count"])
            elif name in ("sigma", "cond"):
                setattr(self.cma_, name, np.float64(np.asarray(state[f"cma_{name}"])))
            else:
                setattr(self.cma_, name, np.array(state[f"cma_{name}"], dtype=np.float64, copy=True))
        self._np_state = (
            "MT19937",
            np.array(state["np_random_keys"], dtype=np.uint32, copy=True),
            int(state["np_random_pos"]),
            int(state["np_random_has_gauss"]),
            float(state["np_random_cached_gaussian"]),
        )
        self._np_state_before_ask = None
        self._pending = None
        self._best_genome = np.array(state["best_genome"], dtype=np.float64, copy=True)
        self._best_fitness = float(np.asarray(state["best_fitness"]))
        self.generation_ = int(state["generation"])
