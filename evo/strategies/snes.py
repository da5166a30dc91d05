"""Separable Natural Evolution Strategy (SNES), pure NumPy.

Schaul, Glasmachers & Schmidhuber (2011), "High Dimensions and Heavy Tails
for Natural Evolution Strategies", GECCO. The search distribution is a
Gaussian with a diagonal covariance, N(mean, diag(sigma²)); its mean and
per-parameter step sizes follow the natural gradient of the expected
rank-based utility. Cost per generation is O(population x n_params), which
makes it the strategy for large genomes. Mirrored (antithetic) sampling,
Brockhoff et al. (2010), is on by default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from evo.strategies.mean_search import MeanSearch
from evo.strategies.params import param


def nes_utilities(fitness: np.ndarray) -> np.ndarray:
    """Rank-based NES fitness shaping (Wierstra et al. 2014, eq. 26); ties share their mean utility.

    The best individual gets the largest utility, the worse half the same
    small negative one, and the utilities sum to zero. -inf ranks last.
    """
    fitness = np.where(np.isnan(fitness), -np.inf, np.asarray(fitness, dtype=np.float64))
    n = fitness.size
    ranks = np.arange(1, n + 1)
    raw = np.maximum(0.0, math.log(n / 2 + 1) - np.log(ranks))
    by_rank = raw / raw.sum() - 1.0 / n
    utilities = np.empty(n)
    utilities[np.argsort(-fitness, kind="stable")] = by_rank
    # Equal fitness must mean equal utility, or the index order would steer the search.
    _, tie_group = np.unique(fitness, return_inverse=True)
    tie_mean = np.bincount(tie_group, weights=utilities) / np.bincount(tie_group)
    return tie_mean[tie_group]


@dataclass(frozen=True)
class SNESParams:
    """SNES's parameters: defaults and allowed ranges."""

    sigma: float = param(0.1, gt=0.0, doc="initial step size of every parameter")
    lr_mean: float = param(1.0, gt=0.0, doc="learning rate of the mean")
    lr_sigma: float | None = param(None, gt=0.0, doc="learning rate of the step sizes; unset: (3 + ln n) / (5 sqrt n), the paper's")
    antithetic: bool = param(True, doc="mirrored sampling (needs an even population)")
    weight_decay: float = param(0.0, ge=0.0, doc="L2 pull of the mean towards zero")


class SNES(MeanSearch, name="snes", params_type=SNESParams, default_population=50):
    """Separable NES: diagonal Gaussian search distribution, natural-gradient updates."""

    params: SNESParams

    def _setup(self) -> None:
        super()._setup()
        if self.params.antithetic and self.population % 2:
            raise ValueError(f"snes: antithetic sampling needs an even population, got {self.population}")
        #: The step sizes' learning rate in use (the given one, or the paper's default for n_params).
        lr_sigma = self.params.lr_sigma
        self.lr_sigma = (3.0 + math.log(self.n_params)) / (5.0 * math.sqrt(self.n_params)) if lr_sigma is None else lr_sigma
        self.sigma_ = np.full(self.n_params, self.params.sigma)

    # ------------------------------------------------------------------ ask / tell
    def _ask(self) -> np.ndarray:
        """Genomes ``mean + sigma * noise``."""
        return self.mean_ + self.sigma_ * self._population_noise()

    def _population_noise(self) -> np.ndarray:
        """The pending population's standard-normal noise, mirrored when antithetic."""
        if self.params.antithetic:
            half = self._draw_noise(self.population // 2)
            return np.concatenate([half, -half])
        return self._draw_noise(self.population)

    def _update(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """Natural-gradient step on mean and sigma from the ranks of the pending population."""
        utilities = nes_utilities(fitness)
        noise = self._population_noise()
        # Natural gradients in the local coordinates of the distribution (paper, Alg. 2).
        grad_mean = utilities @ noise
        grad_sigma = utilities @ (noise * noise) - utilities.sum()
        p = self.params
        self.mean_ = self.mean_ + p.lr_mean * (self.sigma_ * grad_mean - p.weight_decay * self.mean_)
        self.sigma_ = self.sigma_ * np.exp(0.5 * self.lr_sigma * grad_sigma)

    # ------------------------------------------------------------------ state
    def _state_dict(self) -> dict[str, Any]:
        """Mean, sigma and RNG state."""
        return {**self._search_state(), "sigma": self.sigma_.copy()}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_state_dict` returned."""
        mean = np.array(state["mean"], dtype=np.float64)
        sigma = np.array(state["sigma"], dtype=np.float64)
        if mean.shape != (self.n_params,) or sigma.shape != (self.n_params,):
            raise ValueError(f"snes: saved mean/sigma have shapes {mean.shape}/{sigma.shape}, expected ({self.n_params},)")
        self._load_search_state(state, mean)
        self.sigma_ = sigma
