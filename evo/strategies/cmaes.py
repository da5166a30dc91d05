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

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from deap import cma

from evo.strategies.base import Strategy
from evo.strategies.params import param

#: NumPy's legacy MT19937 state: ("MT19937", keys, pos, has_gauss, cached_gaussian)
LegacyState = tuple[str, np.ndarray, int, int, float]

# Attributes of deap.cma.Strategy that change after construction. Everything
# else (weights, mu, cs, damps, ...) follows from (n_params, population, sigma).
_CMA_STATE = ("centroid", "sigma", "pc", "ps", "C", "diagD", "B", "BD", "cond", "update_count")


class _Individual(np.ndarray):
    """A genome row with the ``fitness`` that ``cma.Strategy.update`` sorts on.

    DEAP sorts ``key=ind.fitness, reverse=True``; with a plain float that
    puts the highest fitness first, i.e. CMA-ES maximises, and -inf sorts last.
    """

    fitness: float


@dataclass(frozen=True)
class CMAESParams:
    """CMA-ES's parameters: defaults and allowed ranges."""

    sigma: float = param(0.5, gt=0.0, doc="initial step size")


class CMAES(Strategy, name="cmaes", params_type=CMAESParams, default_population=16):
    """CMA-ES with full covariance, from DEAP; fitness is maximised."""

    params: CMAESParams

    def _setup(self) -> None:
        sigma = self.params.sigma
        self.cma_ = cma.Strategy(centroid=self.init.copy(), sigma=sigma, lambda_=self.population)
        # DEAP turns sigma into np.float64 at the first update; use that type from
        # the start so a restored strategy computes with exactly the same scalars.
        self.cma_.sigma = np.float64(sigma)
        # Private legacy MT19937 state (the global-RNG API DEAP calls), seeded
        # through SeedSequence so any 64-bit seed works.
        self._np_state = _legacy_tuple(np.random.RandomState(np.random.MT19937(self.seed)).get_state(legacy=True))
        # RNG state just before the pending population was drawn: saving that
        # (not the pending genomes) lets a restored run redraw them exactly.
        self._np_state_before_ask: LegacyState | None = None
        self._sampled: np.ndarray | None = None

    # ------------------------------------------------------------------ ask / tell
    def _ask(self) -> np.ndarray:
        """Genomes sampled from N(centroid, sigma² C), drawn once per generation."""
        if self._sampled is None:
            self._np_state_before_ask = self._np_state
            with self._private_numpy_random():
                rows = self.cma_.generate(np.asarray)
            self._sampled = np.asarray(rows, dtype=np.float64).reshape(self.population, self.n_params)
        return self._sampled.copy()

    def _tell(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """Rank the genomes by fitness and update centroid, step size and covariance."""
        # -inf (a failure) sorts last and only enters recombination if over half the population failed.
        individuals = []
        for row, value in zip(genomes.copy().view(_Individual), fitness.tolist()):
            row.fitness = value
            individuals.append(row)
        self.cma_.update(individuals)
        self.cma_.centroid = np.asarray(self.cma_.centroid, dtype=np.float64)
        self._sampled = None
        self._np_state_before_ask = None

    @contextmanager
    def _private_numpy_random(self) -> Iterator[None]:
        """Run DEAP on this strategy's own global-NumPy-RNG state, then restore the caller's."""
        caller_state = np.random.get_state(legacy=True)
        np.random.set_state(self._np_state)
        try:
            yield
        finally:
            self._np_state = _legacy_tuple(np.random.get_state(legacy=True))
            np.random.set_state(caller_state)

    # ------------------------------------------------------------------ results
    def best(self) -> tuple[np.ndarray, float]:
        """The centroid (the distribution's mean), and the best fitness measured so far.

        The centroid itself is never evaluated: the fitness is that of
        :meth:`best_sample`'s genome (-inf before any finite fitness).
        """
        return np.array(self.cma_.centroid, dtype=np.float64), self._best_fitness

    # ------------------------------------------------------------------ state
    def _state_dict(self) -> dict[str, Any]:
        """CMA state and private RNG state."""
        # A pending population is not saved: the RNG state from before it was
        # drawn is, so the restored strategy's next ask() draws it again.
        before_ask = self._np_state_before_ask  # set and cleared together with the pending population
        rng_state = before_ask if self._sampled is not None and before_ask is not None else self._np_state
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
        )
        return state

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_state_dict` returned."""
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
        self._sampled = None


def _legacy_tuple(state: dict[str, Any] | LegacyState) -> LegacyState:
    """``get_state(legacy=True)`` of an MT19937 generator, which is always the tuple form."""
    if not isinstance(state, tuple):
        raise TypeError(f"expected a legacy MT19937 state tuple, got {type(state).__name__}")
    return state
