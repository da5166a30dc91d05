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
from dataclasses import dataclass
from typing import Any

import numpy as np

from evo.strategies.mean_search import MeanSearch
from evo.strategies.params import param

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


@dataclass(frozen=True)
class OpenAIESParams:
    """OpenAI-ES's parameters: defaults and allowed ranges."""

    sigma: float = param(0.02, gt=0.0, doc="standard deviation of the fixed sampling noise")
    lr: float = param(0.01, gt=0.0, doc="Adam's learning rate")
    beta1: float = param(0.9, ge=0.0, lt=1.0, doc="Adam's first-moment decay")
    beta2: float = param(0.999, ge=0.0, lt=1.0, doc="Adam's second-moment decay")
    weight_decay: float = param(0.005, ge=0.0, doc="L2 pull of the mean towards zero")


class OpenAIES(MeanSearch, name="openai_es", params_type=OpenAIESParams, default_population=50):
    """OpenAI-ES: antithetic sampling, centred ranks, Adam on the mean, fixed sigma."""

    params: OpenAIESParams

    def _setup(self) -> None:
        super()._setup()
        if self.population % 2:
            raise ValueError(f"openai_es: antithetic sampling needs an even population, got {self.population}")
        # The pending noise is half the population; the other half is its mirror. Adam moments and step count:
        self.adam_m_ = np.zeros(self.n_params)
        self.adam_v_ = np.zeros(self.n_params)
        self.adam_t_ = 0

    # ------------------------------------------------------------------ ask / tell
    def _ask(self) -> np.ndarray:
        """Genomes ``mean ± sigma * noise`` (first half +, second half −)."""
        step = self.params.sigma * self._draw_noise(self.population // 2)
        return np.concatenate([self.mean_ + step, self.mean_ - step])

    def _update(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """One Adam step on the mean along the centred-rank gradient estimate."""
        shaped = centered_ranks(fitness)
        half = self.population // 2
        # Fitness-ascent direction; like the reference code, not divided by sigma
        # (Adam is scale-free and lr absorbs it).
        ascent = (shaped[:half] - shaped[half:]) @ self._noise / self.population
        p = self.params
        # Adam minimises, so it gets the loss gradient: -ascent plus the L2 term.
        grad = -ascent + p.weight_decay * self.mean_
        self.adam_t_ += 1
        self.adam_m_ = p.beta1 * self.adam_m_ + (1.0 - p.beta1) * grad
        self.adam_v_ = p.beta2 * self.adam_v_ + (1.0 - p.beta2) * grad * grad
        step_size = p.lr * math.sqrt(1.0 - p.beta2**self.adam_t_) / (1.0 - p.beta1**self.adam_t_)
        self.mean_ = self.mean_ - step_size * self.adam_m_ / (np.sqrt(self.adam_v_) + ADAM_EPSILON)

    # ------------------------------------------------------------------ state
    def _state_dict(self) -> dict[str, Any]:
        """Mean, Adam moments and RNG state."""
        return {**self._search_state(), "adam_m": self.adam_m_.copy(), "adam_v": self.adam_v_.copy(), "adam_t": self.adam_t_}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_state_dict` returned."""
        arrays = {name: np.array(state[name], dtype=np.float64) for name in ("mean", "adam_m", "adam_v")}
        for name, value in arrays.items():
            if value.shape != (self.n_params,):
                raise ValueError(f"openai_es: saved {name} has shape {value.shape}, expected ({self.n_params},)")
        self._load_search_state(state, arrays["mean"])
        self.adam_m_, self.adam_v_ = arrays["adam_m"], arrays["adam_v"]
        self.adam_t_ = int(state["adam_t"])
