"""Shared parts of the strategies that search around a mean with Gaussian noise (SNES, OpenAI-ES, PGPE, CR-FM-NES).

They report the mean (never evaluated itself) and keep the pending population
as its noise; a checkpoint stores the RNG state from before that noise was
drawn instead of the noise, so a restored strategy redraws exactly the same
population. The best sample and the generation count are the base class's.

With ``bounds`` (a ``(lower, upper)`` parameter the run supplies from the
task) a sample outside the box is mirrored back into it
(:func:`evo.strategies.bounds.mirror`); the update still uses the noise that
drew it, and the reported mean is clipped into the box.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from evo.strategies.base import Strategy
from evo.strategies.bounds import check_bounds, clip, mirror


class MeanSearch(Strategy):
    """Base of SNES, OpenAI-ES, PGPE and CR-FM-NES: the mean, the pending noise, their state."""

    def _setup(self) -> None:
        """The mean at ``init`` (clipped into the bounds) and the noise generator; a subclass's ``_setup`` calls this first."""
        self.bounds = check_bounds(self.name, getattr(self.params, "bounds", None), self.n_params)
        self.mean_ = clip(self.init.copy(), self.bounds)
        self.rng_ = np.random.Generator(np.random.PCG64(self.seed))
        # Standard-normal noise behind the pending population (what ask() drew).
        self._noise: np.ndarray | None = None
        self._rng_state_before_ask: Mapping[str, Any] | None = None

    def _draw_noise(self, rows: int) -> np.ndarray:
        """The pending noise ``(rows, n_params)``, drawn once per generation."""
        if self._noise is None:
            self._rng_state_before_ask = self.rng_.bit_generator.state
            self._noise = self.rng_.standard_normal((rows, self.n_params))
        return self._noise

    def _ask(self) -> np.ndarray:
        """The subclass's samples, mirrored into the box when there is one."""
        return mirror(self._sample(), self.bounds)

    def _sample(self) -> np.ndarray:
        """The pending population before any bounds are applied (subclass hook)."""
        raise NotImplementedError

    def _tell(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """The subclass's update of the distribution, then the pending noise dropped."""
        self._update(genomes, fitness)
        self._noise = None
        self._rng_state_before_ask = None

    def _update(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """Move the distribution (subclass hook; arguments as :meth:`Strategy._tell` receives them)."""
        raise NotImplementedError

    def best(self) -> tuple[np.ndarray, float]:
        """The distribution's mean, and the best fitness measured so far.

        The mean itself is never evaluated: the fitness is that of
        :meth:`best_sample`'s genome (-inf before any finite fitness).
        """
        return clip(self.mean_.copy(), self.bounds), self._best_fitness

    def _search_state(self) -> dict[str, Any]:
        """Mean and RNG state (the subclass adds its own arrays)."""
        # A pending population is redrawn after a restore from the RNG state before it.
        rng_state = self._rng_state_before_ask if self._noise is not None else self.rng_.bit_generator.state
        return {"mean": self.mean_.copy(), "rng_state": rng_state}

    def _load_search_state(self, state: dict[str, Any], mean: np.ndarray) -> None:
        """Restore what :meth:`_search_state` saved (``mean`` already checked by the subclass)."""
        self.mean_ = mean
        self.rng_.bit_generator.state = state["rng_state"]
        self._noise = None
        self._rng_state_before_ask = None
