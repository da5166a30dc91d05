"""Shared parts of the strategies that search around a mean with Gaussian noise (SNES, OpenAI-ES).

They report the mean (never evaluated itself), remember the best sample they
were told about, and keep the pending population as its noise; a checkpoint
stores the RNG state from before that noise was drawn instead of the noise,
so a restored strategy redraws exactly the same population.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from evo.strategies.base import Strategy


class MeanSearch(Strategy):
    """Base of SNES and OpenAI-ES: the mean, the pending noise, the best sample, their state."""

    def _start_search(self) -> None:
        """Call at the end of ``__init__``: mean at ``init``, own RNG, nothing pending."""
        self.mean_ = self.init.copy()
        self.rng_ = np.random.Generator(np.random.PCG64(self.seed))
        # Standard-normal noise behind the pending population (what ask() drew).
        self._noise: np.ndarray | None = None
        self._rng_state_before_ask: dict[str, Any] | None = None
        self._best_genome = self.init.copy()
        self._best_fitness = -math.inf
        self.generation_ = 0

    def _draw_noise(self, rows: int) -> np.ndarray:
        """The pending noise ``(rows, n_params)``, drawn once per generation."""
        if self._noise is None:
            self._rng_state_before_ask = self.rng_.bit_generator.state
            self._noise = self.rng_.standard_normal((rows, self.n_params))
        return self._noise

    def _finish_tell(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """After the update: remember the best sample, drop the pending noise, count the generation."""
        top = int(np.argmax(fitness))
        if fitness[top] > self._best_fitness:
            self._best_genome, self._best_fitness = genomes[top].copy(), float(fitness[top])
        self._noise = None
        self._rng_state_before_ask = None
        self.generation_ += 1

    def best(self) -> tuple[np.ndarray, float]:
        """The distribution's mean and ``nan``: the mean itself is never evaluated."""
        return self.mean_.copy(), math.nan

    def best_sample(self) -> tuple[np.ndarray, float]:
        """The best evaluated genome so far and its fitness (``init``, -inf before any tell)."""
        return self._best_genome.copy(), self._best_fitness

    def _search_state(self) -> dict[str, Any]:
        """Mean, RNG state, best sample and generation (the subclass adds its own arrays)."""
        # A pending population is redrawn after a restore from the RNG state before it.
        rng_state = self._rng_state_before_ask if self._noise is not None else self.rng_.bit_generator.state
        return {
            "mean": self.mean_.copy(),
            "rng_state": rng_state,
            "best_genome": self._best_genome.copy(),
            "best_fitness": np.array(self._best_fitness),  # may be -inf: kept out of JSON
            "generation": self.generation_,
        }

    def _load_search_state(self, state: dict[str, Any], mean: np.ndarray) -> None:
        """Restore what :meth:`_search_state` saved (``mean`` already checked by the subclass)."""
        self.mean_ = mean
        self.rng_.bit_generator.state = state["rng_state"]
        self._noise = None
        self._rng_state_before_ask = None
        self._best_genome = np.array(state["best_genome"], dtype=np.float64)
        self._best_fitness = float(np.asarray(state["best_fitness"]))
        self.generation_ = int(state["generation"])
