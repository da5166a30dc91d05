"""OpenAI-ES, pure NumPy.

Salimans, Ho, Chen, Sidor & Sutskever (2017), "Evolution Strategies as a
Scalable Alternative to Reinforcement Learning", arXiv:1703.03864. A fixed
isotropic Gaussian around the mean, mirrored (antithetic) sampling, fitness
replaced by centred ranks, and the resulting gradient estimate fed to Adam
(Kingma & Ba, 2015) with L2 weight decay, as in the authors' reference code
(openai/evolution-strategies-starter).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from evo.strategies.base import check_number
from evo.strategies.mean_search import MeanSearch


def _number(name: str, value: Any, low: float, high: float = math.inf, low_open: bool = True) -> float:
    return check_number("openai_es", name, value, low=low, high=high, low_open=low_open, high_open=True)

ADAM_EPSILON = 1e-8


def centered_ranks(fitness: np.ndarray) -> np.ndarray:
    """Ranks scaled to [-0.5, 0.5], best highest; ties share their mean rank; -inf ranks last."""
    fitness = np.where(np.isnan(fitness), -np.inf, np.asarray(fitness, dtype=np.float64))
    n = fitness.size
    ranks = np.empty(n)
    ranks[np.argsort(fitness, kind="stable")] = np.arange(n, dtype=np.float64)
    # Equal fitness must mean equal weight, or the index order would steer the search.
    _, tie_group = np.unique(fitness, return_inverse=True)
    ranks = (np.bincount(tie_group, weights=ranks) / np.bincount(tie_group))[tie_group]
    return ranks / max(n - 1, 1) - 0.5




class OpenAIES(MeanSearch):
    """OpenAI-ES: antithetic sampling, centred ranks, Adam on the mean, fixed sigma."""

    name = "openai_es"

    def __init__(
        self,
        n_params: int,
        population: int,
        seed: int,
        init: np.ndarray,
        *,
        sigma: float = 0.02,
        lr: float = 0.01,
        beta1: float = 0.9,
        beta2: float = 0.999,
        weight_decay: float = 0.005,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ValueError(
                f"openai_es: unknown parameter(s) {sorted(unknown)}; allowed: sigma, lr, beta1, beta2, weight_decay"
            )
        for label, value, low in (("n_params", n_params, 1), ("population", population, 2), ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"openai_es: {label} must be an integer >= {low}, got {value!r}")
        if population % 2:
            raise ValueError(f"openai_es: antithetic sampling needs an even population, got {population}")
        init = np.asarray(init, dtype=np.float64)
        if init.shape != (n_params,) or not np.all(np.isfinite(init)):
            raise ValueError(f"openai_es: init must be a finite array of shape ({n_params},), got shape {init.shape}")
        super().__init__(
            n_params,
            population,
            seed,
            init,
            sigma=_number("sigma", sigma, 0.0),
            lr=_number("lr", lr, 0.0),
            beta1=_number("beta1", beta1, 0.0, 1.0, low_open=False),
            beta2=_number("beta2", beta2, 0.0, 1.0, low_open=False),
            weight_decay=_number("weight_decay", weight_decay, 0.0, low_open=False),
        )
        self._start_search()  # the pending noise is half the population; the other half is its mirror
        # Adam moments and step count.
        self.adam_m_ = np.zeros(self.n_params)
        self.adam_v_ = np.zeros(self.n_params)
        self.adam_t_ = 0

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> np.ndarray:
        """Genomes ``mean ± sigma * noise`` (first half +, second half −); the same until :meth:`tell`."""
        step = self.params["sigma"] * self._draw_noise(self.population // 2)
        return np.concatenate([self.mean_ + step, self.mean_ - step])

    def tell(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """One Adam step on the mean along the centred-rank gradient estimate."""
        if self._noise is None:
            raise RuntimeError("openai_es: tell() called without a pending ask()")
        genomes, fitness = self.check_tell(genomes, fitness)
        fitness = np.where(np.isnan(fitness), -np.inf, fitness)
        shaped = centered_ranks(fitness)
        half = self.population // 2
        # Fitness-ascent direction; like the reference code, not divided by sigma
        # (Adam is scale-free and lr absorbs it).
        ascent = (shaped[:half] - shaped[half:]) @ self._noise / self.population
        p = self.params
        # Adam minimises, so it gets the loss gradient: -ascent plus the L2 term.
        grad = -ascent + p["weight_decay"] * self.mean_
        self.adam_t_ += 1
        self.adam_m_ = p["beta1"] * self.adam_m_ + (1.0 - p["beta1"]) * grad
        self.adam_v_ = p["beta2"] * self.adam_v_ + (1.0 - p["beta2"]) * grad * grad
        step_size = p["lr"] * math.sqrt(1.0 - p["beta2"] ** self.adam_t_) / (1.0 - p["beta1"] ** self.adam_t_)
        self.mean_ = self.mean_ - step_size * self.adam_m_ / (np.sqrt(self.adam_v_) + ADAM_EPSILON)

        self._finish_tell(genomes, fitness)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Mean, Adam moments, RNG state, best sample and generation."""
        return {**self._search_state(), "adam_m": self.adam_m_.copy(), "adam_v": self.adam_v_.copy(), "adam_t": self.adam_t_}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        arrays = {name: np.array(state[name], dtype=np.float64) for name in ("mean", "adam_m", "adam_v")}
        for name, value in arrays.items():
            if value.shape != (self.n_params,):
                raise ValueError(f"openai_es: saved {name} has shape {value.shape}, expected ({self.n_params},)")
        self._load_search_state(state, arrays["mean"])
        self.adam_m_, self.adam_v_ = arrays["adam_m"], arrays["adam_v"]
        self.adam_t_ = int(state["adam_t"])
