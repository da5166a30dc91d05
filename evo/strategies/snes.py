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

from evo.strategies.base import Strategy, check_number


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




class SNES(Strategy):
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
        self.mean_ = self.init.copy()
        self.sigma_ = np.full(self.n_params, self.params["sigma"])
        self.rng_ = np.random.Generator(np.random.PCG64(self.seed))
        # Standard-normal noise behind the pending population, and the RNG state
        # before it was drawn (saved instead of the noise, which can be large).
        self._noise: np.ndarray | None = None
        self._rng_state_before_ask: dict[str, Any] | None = None
        self._best_genome = self.init.copy()
        self._best_fitness = -math.inf
        self.generation_ = 0

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> np.ndarray:
        """Genomes ``mean + sigma * noise``, ``(population, n_params)``; the same until :meth:`tell`."""
        if self._noise is None:
            self._rng_state_before_ask = self.rng_.bit_generator.state
            if self.params["antithetic"]:
                half = self.rng_.standard_normal((self.population // 2, self.n_params))
                self._noise = np.concatenate([half, -half])
            else:
                self._noise = self.rng_.standard_normal((self.population, self.n_params))
        return self.mean_ + self.sigma_ * self._noise

    def tell(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """Natural-gradient step on mean and sigma from the ranks of the pending population."""
        if self._noise is None:
            raise RuntimeError("snes: tell() called without a pending ask()")
        genomes, fitness = self.check_tell(genomes, fitness)
        fitness = np.where(np.isnan(fitness), -np.inf, fitness)
        utilities = nes_utilities(fitness)
        noise = self._noise
        # Natural gradients in the local coordinates of the distribution (paper, Alg. 2).
        grad_mean = utilities @ noise
        grad_sigma = utilities @ (noise * noise) - utilities.sum()
        p = self.params
        self.mean_ = self.mean_ + p["lr_mean"] * (self.sigma_ * grad_mean - p["weight_decay"] * self.mean_)
        self.sigma_ = self.sigma_ * np.exp(0.5 * p["lr_sigma"] * grad_sigma)

        top = int(np.argmax(fitness))
        if fitness[top] > self._best_fitness:
            self._best_genome, self._best_fitness = genomes[top].copy(), float(fitness[top])
        self._noise = None
        self._rng_state_before_ask = None
        self.generation_ += 1

    # ------------------------------------------------------------------ results
    def best(self) -> tuple[np.ndarray, float]:
        """The distribution's mean and ``nan``: the mean itself is never evaluated."""
        return self.mean_.copy(), math.nan

    def best_sample(self) -> tuple[np.ndarray, float]:
        """The best evaluated genome so far and its fitness (``init``, -inf before any tell)."""
        return self._best_genome.copy(), self._best_fitness

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Mean, sigma, RNG state, best sample and generation."""
        # A pending population is redrawn after a restore from the RNG state before it.
        rng_state = self._rng_state_before_ask if self._noise is not None else self.rng_.bit_generator.state
        return {
            "mean": self.mean_.copy(),
            "sigma": self.sigma_.copy(),
            "rng_state": rng_state,
            "best_genome": self._best_genome.copy(),
            "best_fitness": np.array(self._best_fitness),  # may be -inf: kept out of JSON
            "generation": self.generation_,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        mean = np.array(state["mean"], dtype=np.float64)
        sigma = np.array(state["sigma"], dtype=np.float64)
        if mean.shape != (self.n_params,) or sigma.shape != (self.n_params,):
            raise ValueError(
                f"snes: saved mean/sigma have shapes {mean.shape}/{sigma.shape}, expected ({self.n_params},)"
            )
        self.mean_, self.sigma_ = mean, sigma
        self.rng_.bit_generator.state = state["rng_state"]
        self._noise = None
        self._rng_state_before_ask = None
        self._best_genome = np.array(state["best_genome"], dtype=np.float64)
        self._best_fitness = float(np.asarray(state["best_fitness"]))
        self.generation_ = int(state["generation"])
