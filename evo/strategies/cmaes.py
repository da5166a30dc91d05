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

Options beyond DEAP's update (all off by default, so a run's numbers stay
those of DEAP's CMA-ES):

* ``active = true``: the active covariance update (Jastrebski & Arnold 2006,
  "Improving Evolution Strategies through Active Covariance Matrix
  Adaptation", CEC) with the weights and learning rates of Hansen (2016),
  "The CMA Evolution Strategy: A Tutorial", arXiv:1604.00772, the defaults
  of pycma: the worst half of each generation gets negative weights, so the
  covariance shrinks along directions that failed, which is what makes
  ill-conditioned problems (the ellipsoid) markedly cheaper.
* ``restarts = N``: IPOP-CMA-ES (Auger & Hansen 2005, "A Restart CMA
  Evolution Strategy With Increasing Population Size", CEC): when a run
  stalls (pycma's termination tests: tolfun, tolx, no effect of an axis or a
  coordinate, condition number, stagnation) it starts again with
  ``popsize_factor`` times the population, from a random point in the box
  (or the starting point), up to N times; once the last one stalls the
  strategy says so (:meth:`CMAES.stop_reason`) and the run ends.
* bounds (from the task): ``bounds_handling = "repair"`` projects each
  sample onto the box and the update learns from the repaired points;
  ``"resample"`` draws a sample outside again (up to ``resample_limit``
  times) before repairing it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from deap import cma

from evo.strategies.base import Strategy
from evo.strategies.bounds import check_bounds, clip
from evo.strategies.cma_extras import StallHistory, active_params, active_update
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
    active: bool = param(False, doc="active covariance update with pycma's learning rates (Hansen 2016)")
    restarts: int = param(0, ge=0, le=20, doc="IPOP restarts with a growing population once the search stalls")
    popsize_factor: float = param(2.0, gt=1.0, le=10.0, doc="population multiplier at each restart")
    bounds_handling: Literal["repair", "resample"] = param("repair", doc="samples outside the bounds: projected, or drawn again")
    resample_limit: int = param(100, ge=1, le=10000, doc="draws of a sample outside the bounds before it is repaired")
    bounds: Any = param(None, config=False, doc="(lower, upper) of every gene (from the task); None: unbounded")


class CMAES(Strategy, name="cmaes", params_type=CMAESParams, default_population=16):
    """CMA-ES with full covariance, from DEAP; fitness is maximised. Optional active update, IPOP restarts and bounds."""

    params: CMAESParams

    def _setup(self) -> None:
        self.bounds = check_bounds(self.name, self.params.bounds, self.n_params)
        self.init = clip(self.init, self.bounds)
        self.cma_ = self._new_cma(self.init, self.population)
        # Private legacy MT19937 state (the global-RNG API DEAP calls), seeded
        # through SeedSequence so any 64-bit seed works.
        self._np_state = _legacy_tuple(np.random.RandomState(np.random.MT19937(self.seed)).get_state(legacy=True))
        # RNG state just before the pending population was drawn: saving that
        # (not the pending genomes) lets a restored run redraw them exactly.
        self._np_state_before_ask: LegacyState | None = None
        self._sampled: np.ndarray | None = None
        #: IPOP: restarts made so far, why the last run stalled, and the figures the stall tests read
        self.restarts_done_ = 0
        self.stalled_: str | None = None
        self._history = StallHistory()

    def _new_cma(self, centroid: np.ndarray, population: int) -> cma.Strategy:
        es = cma.Strategy(centroid=centroid.copy(), sigma=self.params.sigma, lambda_=population)
        # DEAP turns sigma into np.float64 at the first update; use that type from
        # the start so a restored strategy computes with exactly the same scalars.
        es.sigma = np.float64(self.params.sigma)
        self._active = active_params(self.n_params, population) if self.params.active else None
        return es

    # ------------------------------------------------------------------ ask / tell
    def _ask(self) -> np.ndarray:
        """Genomes sampled from N(centroid, sigma² C), drawn once per generation (repaired or resampled into the bounds)."""
        if self._sampled is None:
            self._np_state_before_ask = self._np_state
            with self._private_numpy_random():
                rows = np.asarray(self.cma_.generate(np.asarray), dtype=np.float64).reshape(self.population, self.n_params)
                if self.bounds is not None and self.params.bounds_handling == "resample":
                    rows = self._resample(rows)
            self._sampled = clip(rows, self.bounds)
        return self._sampled.copy()

    def _resample(self, rows: np.ndarray) -> np.ndarray:
        """Rows outside the bounds drawn again from the same distribution, up to ``resample_limit`` times each."""
        assert self.bounds is not None
        lower, upper = self.bounds
        for _ in range(self.params.resample_limit):
            outside = np.flatnonzero(np.any((rows < lower) | (rows > upper), axis=1))
            if outside.size == 0:
                break
            z = np.random.standard_normal((outside.size, self.n_params))
            rows[outside] = self.cma_.centroid + self.cma_.sigma * (z @ self.cma_.BD.T)
        return rows

    def _tell(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """Rank the genomes by fitness and update centroid, step size and covariance; restart if the search stalled."""
        # -inf (a failure) sorts last and only enters recombination if over half the population failed.
        if self._active is not None:
            order = np.argsort(-fitness, kind="stable")
            active_update(self.cma_, genomes[order], self._active)
        else:
            individuals = []
            for row, value in zip(genomes.copy().view(_Individual), fitness.tolist()):
                row.fitness = value
                individuals.append(row)
            self.cma_.update(individuals)
        self.cma_.centroid = np.asarray(self.cma_.centroid, dtype=np.float64)
        self._sampled = None
        self._np_state_before_ask = None
        if self.params.restarts > 0 and self.stalled_ is None:
            self._history.record(fitness)
            why = self._history.stalled(self.cma_, fitness, self.params.sigma)
            if why is not None:
                self._restart(why)

    def _restart(self, why: str) -> None:
        """IPOP: a fresh distribution with a larger population, from a random point of the box (or init); or stop."""
        if self.restarts_done_ >= self.params.restarts:
            self.stalled_ = why
            return
        self.restarts_done_ += 1
        self.population = int(round(self.population * self.params.popsize_factor))
        centroid = self.init
        if self.bounds is not None:
            with self._private_numpy_random():
                centroid = self.bounds[0] + (self.bounds[1] - self.bounds[0]) * np.random.random_sample(self.n_params)
        self.cma_ = self._new_cma(centroid, self.population)
        self._history = StallHistory()

    def stop_reason(self) -> str | None:
        """Why the search is over: the last IPOP run stalled (``cmaes: tolfun after 3 restarts``); None otherwise."""
        if self.stalled_ is None:
            return None
        return f"cmaes: {self.stalled_} after {self.restarts_done_} restart(s)"

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
        """The centroid (the distribution's mean, clipped into the bounds), and the best fitness measured so far.

        The centroid itself is never evaluated: the fitness is that of
        :meth:`best_sample`'s genome (-inf before any finite fitness).
        """
        return clip(np.array(self.cma_.centroid, dtype=np.float64), self.bounds), self._best_fitness

    # ------------------------------------------------------------------ state
    def _state_dict(self) -> dict[str, Any]:
        """CMA state and private RNG state (and, with restarts, the population and the stall history)."""
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
        if self.params.restarts > 0:
            state.update(
                ipop_population=self.population,
                ipop_restarts_done=self.restarts_done_,
                ipop_stalled=self.stalled_ or "",
                ipop_history_best=np.array(self._history.best, dtype=np.float64),
                ipop_history_median=np.array(self._history.median, dtype=np.float64),
            )
        return state

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_state_dict` returned."""
        centroid = np.asarray(state["cma_centroid"], dtype=np.float64)
        if centroid.shape != (self.n_params,):
            raise ValueError(f"cmaes: saved centroid has shape {centroid.shape}, expected ({self.n_params},)")
        if "ipop_population" in state:
            self.population = int(state["ipop_population"])
            self.restarts_done_ = int(state["ipop_restarts_done"])
            self.stalled_ = str(state["ipop_stalled"]) or None
            self._history = StallHistory(np.asarray(state["ipop_history_best"]).tolist(), np.asarray(state["ipop_history_median"]).tolist())
            self.cma_ = self._new_cma(centroid, self.population)
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
