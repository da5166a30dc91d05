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
from typing import Any

import numpy as np

from evo.strategies.base import check_number
from evo.strategies.mean_search import MeanSearch


def _number(name: str, value: Any, low: float, low_open: bool = True) -> float:
    return check_number("snes", name, value, low=low, low_open=low_open)


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




class SNES(MeanSearch):
    """Separable NES: diagonal Gaussian search distribution, natural-gradient updates."""

    name = "snes"

    def __init__(
        self,
        n_params: int,
        population: int,
        seed: int,
        init: np.ndarray,
        *,
        sigma: float = 0.1,
        lr_mean: float = 1.0,
        lr_sigma: float | None = None,
        antithetic: bool = True,
        weight_decay: float = 0.0,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ValueError(
                f"snes: unknown parameter(s) {sorted(unknown)}; "
                "allowed: sigma, lr_mean, lr_sigma, antithetic, weight_decay"
            )
        for label, value, low in (("n_params", n_params, 1), ("population", population, 2), ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"snes: {label} must be an integer >= {low}, got {value!r}")
        init = np.asarray(init, dtype=np.float64)
        if init.shape != (n_params,) or not np.all(np.isfinite(init)):
            raise ValueError(f"snes: init must be a finite array of shape ({n_params},), got shape {init.shape}")
        if not isinstance(antithetic, (bool, np.bool_)):
            raise ValueError(f"snes: antithetic must be true or false, got {antithetic!r}")
        if antithetic and population % 2:
            raise ValueError(f"snes: antithetic sampling needs an even population, got {population}")
        if lr_sigma is None:
            lr_sigma = (3.0 + math.log(n_params)) / (5.0 * math.sqrt(n_params))  # the paper's default
        super().__init__(
            n_params,
            population,
            seed,
            init,
            sigma=_number("sigma", sigma, 0.0),
            lr_mean=_number("lr_mean", lr_mean, 0.0),
            lr_sigma=_number("lr_sigma", lr_sigma, 0.0),
            antithetic=bool(antithetic),
            weight_decay=_number("weight_decay", weight_decay, 0.0, low_open=False),
        )
        self._start_search()
        self.sigma_ = np.full(self.n_params, self.params["sigma"])

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> np.ndarray:
        """Genomes ``mean + sigma * noise``, ``(population, n_params)``; the same until :meth:`tell`."""
        return self.mean_ + self.sigma_ * self._population_noise()

    def _population_noise(self) -> np.ndarray:
        """The pending population's standard-normal noise, mirrored when antithetic."""
        if self.params["antithetic"]:
            half = self._draw_noise(self.population // 2)
            return np.concatenate([half, -half])
        return self._draw_noise(self.population)

    def tell(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """Natural-gradient step on mean and sigma from the ranks of the pending population."""
        if self._noise is None:
            raise RuntimeError("snes: tell() called without a pending ask()")
        genomes, fitness = self.check_tell(genomes, fitness)
        fitness = np.where(np.isnan(fitness), -np.inf, fitness)
        utilities = nes_utilities(fitness)
        noise = self._population_noise()
        # Natural gradients in the local coordinates of the distribution (paper, Alg. 2).
        grad_mean = utilities @ noise
        grad_sigma = utilities @ (noise * noise) - utilities.sum()
        p = self.params
        self.mean_ = self.mean_ + p["lr_mean"] * (self.sigma_ * grad_mean - p["weight_decay"] * self.mean_)
        self.sigma_ = self.sigma_ * np.exp(0.5 * p["lr_sigma"] * grad_sigma)

        self._finish_tell(genomes, fitness)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Mean, sigma, RNG state, best sample and generation."""
        return {**self._search_state(), "sigma": self.sigma_.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        mean = np.array(state["mean"], dtype=np.float64)
        sigma = np.array(state["sigma"], dtype=np.float64)
        if mean.shape != (self.n_params,) or sigma.shape != (self.n_params,):
            raise ValueError(
                f"snes: saved mean/sigma have shapes {mean.shape}/{sigma.shape}, expected ({self.n_params},)"
            )
        self._load_search_state(state, mean)
        self.sigma_ = sigma
