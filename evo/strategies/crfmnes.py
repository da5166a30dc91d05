"""CR-FM-NES: the Fast Moving Natural Evolution Strategy with a restricted covariance, pure NumPy.

Nomura & Ono (2022), "Fast Moving Natural Evolution Strategy for
High-Dimensional Problems", IEEE CEC 2022, arXiv:2201.11422. The search
distribution is N(mean, sigma² D (I + v vᵀ) D): a diagonal scaling ``D`` and
one rank-one direction ``v`` (the restricted representation of Akimoto et
al.'s VD-CMA), so a generation costs O(population x n_params) time and O(n)
memory. On top of the natural-gradient updates of ``D`` and ``v`` (with the
exact inverse Fisher information of that family, the paper's Alg. 1) come the
parts of FM-NES (Beyer's "fast moving" NES, Nomura & Ono 2021):

* an evolution path ``p_sigma`` tells whether the mean is *moving* (``|p_sigma|
  >= E|N(0, I)|``), *stagnating* or *converging*, and chooses the step-size
  learning rate for each case;
* while it moves, the weights favour samples far from the mean among the
  good ones (distance weights), which makes the steps long, and the step size
  may not shrink;
* a rank-one evolution path ``p_c`` feeds the covariance like CMA-ES's.

Mirrored sampling, sampled weights and learning rates are the paper's
(its Table 1 and the authors' reference code, nomuramasahir0/crfmnes).
Fitness is maximised here; a failed evaluation (``-inf``) counts as an
infeasible sample: ranked after every feasible one, the infeasible ones by
their distance from the mean, and the learning rates use the number of
feasible samples, as in the paper's constraint handling. Samples of equal
fitness share their weight. For ``n_params <= 5`` the paper's rank-one
learning rate ``c1`` would be negative; it is 0 there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from evo.strategies.mean_search import MeanSearch
from evo.strategies.params import param


def distance_weight_base(n: int) -> float:
    """The ``h^-1(n)`` of the distance weights: the root ``a > 0`` of ``(1 + a²) exp(a² / 2) / 0.24 = 10 + n``.

    The left side grows with ``a`` and is below ``10 + n`` at 0, so bisection finds the one root for any
    ``n`` (the reference code's Newton steps overshoot for small ``n``).
    """

    def excess(a: float) -> float:
        return (1.0 + a * a) * math.exp(a * a / 2.0) / 0.24 - 10.0 - n

    low, high = 0.0, 1.0
    while excess(high) < 0.0:
        low, high = high, 2.0 * high
    for _ in range(100):
        middle = 0.5 * (low + high)
        if excess(middle) < 0.0:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def rank_weights(population: int) -> np.ndarray:
    """The NES rank weights by rank (best first): ``max(0, ln(λ/2 + 1) - ln i)``, normalised, minus ``1/λ`` (they sum to 0)."""
    raw = np.maximum(0.0, math.log(population / 2 + 1) - np.log(np.arange(1, population + 1)))
    return raw / raw.sum() - 1.0 / population


@dataclass(frozen=True)
class CRFMNESParams:
    """CR-FM-NES's parameters: defaults and allowed ranges."""

    sigma: float = param(0.1, gt=0.0, doc="initial overall step size")
    lr_mean: float = param(1.0, gt=0.0, doc="learning rate of the mean (the paper's eta_m = 1)")
    bounds: Any = param(None, config=False, doc="(lower, upper) of every gene (from the task): samples are mirrored into the box")


class CRFMNES(MeanSearch, name="crfmnes", params_type=CRFMNESParams, default_population=50):
    """CR-FM-NES: restricted covariance D (I + v vᵀ) D, FM-NES step-size control, mirrored sampling."""

    params: CRFMNESParams

    def _setup(self) -> None:
        super()._setup()
        if self.population % 2:
            raise ValueError(f"crfmnes: mirrored sampling needs an even population, got {self.population}")
        n, lam = self.n_params, self.population
        w = rank_weights(lam)
        self.rank_weights = w
        self.mu_eff = 1.0 / float(np.sum((w + 1.0 / lam) ** 2))
        self.c_sigma = (self.mu_eff + 2.0) / (n + self.mu_eff + 5.0)
        self.c_c = (4.0 + self.mu_eff / n) / (n + 4.0 + 2.0 * self.mu_eff / n)
        self.c1_cma = 2.0 / ((n + 1.3) ** 2 + self.mu_eff)
        self.chi_n = math.sqrt(n) * (1.0 - 1.0 / (4.0 * n) + 1.0 / (21.0 * n * n))
        self.h_inv = distance_weight_base(n)
        self.sigma_ = float(self.params.sigma)
        self.D_ = np.ones(n)
        self.v_ = self.rng_.standard_normal(n) / math.sqrt(n)
        self.p_sigma_ = np.zeros(n)
        self.p_c_ = np.zeros(n)

    # ------------------------------------------------------------------ learning rates (λ_F: feasible samples)
    def _eta_stagnating(self, feasible: int) -> float:
        return math.tanh((0.024 * feasible + 0.7 * self.n_params + 20.0) / (self.n_params + 12.0))

    def _eta_converging(self, feasible: int) -> float:
        return 2.0 * math.tanh((0.025 * feasible + 0.75 * self.n_params + 10.0) / (self.n_params + 4.0))

    def _c1(self, feasible: int) -> float:
        return max(0.0, self.c1_cma * (self.n_params - 5) / 6.0 * feasible / self.population)

    def _eta_b(self, feasible: int) -> float:
        return math.tanh((min(0.02 * feasible, 3.0 * math.log(self.n_params)) + 5.0) / (0.23 * self.n_params + 25.0))

    # ------------------------------------------------------------------ ask / tell
    def _population_noise(self) -> np.ndarray:
        """The pending population's standard-normal ``z``: first half drawn, second half its mirror."""
        half = self._draw_noise(self.population // 2)
        return np.concatenate([half, -half])

    def _shape(self, z: np.ndarray) -> np.ndarray:
        """``y = (I + v vᵀ)^(1/2) z`` row by row: ``z + (sqrt(1 + |v|²) - 1) v̂ (v̂ᵀ z)``."""
        norm_v = float(np.linalg.norm(self.v_))
        v_hat = self.v_ / norm_v
        return z + (math.sqrt(1.0 + norm_v * norm_v) - 1.0) * np.outer(z @ v_hat, v_hat)

    def _sample(self) -> np.ndarray:
        """Genomes ``mean + sigma D y``."""
        return self.mean_ + self.sigma_ * self.D_ * self._shape(self._population_noise())

    def _ordered(self, fitness: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Indices best first; failed samples (-inf) last, the nearer to the mean first."""
        order = np.argsort(-fitness, kind="stable")
        failed = ~np.isfinite(fitness[order])
        if failed.any():
            tail = order[failed]
            order[failed] = tail[np.argsort(np.sum(z[tail] ** 2, axis=1), kind="stable")]
        return order

    @staticmethod
    def _share_ties(weights: np.ndarray, fitness: np.ndarray) -> np.ndarray:
        """Equal finite fitness, equal weight (the mean of the group's): the index order must not steer the search."""
        finite = np.isfinite(fitness)
        values, group = np.unique(fitness[finite], return_inverse=True)
        if values.size == group.size:
            return weights
        shared = weights.copy()
        shared[finite] = (np.bincount(group, weights=weights[finite]) / np.bincount(group))[group]
        return shared

    def _update(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """One CR-FM-NES generation (the paper's Alg. 2), from the ranks of the pending population."""
        n, lam = self.n_params, self.population
        z_all = self._population_noise()
        y_all = self._shape(z_all)
        x_all = self.mean_ + self.sigma_ * self.D_ * y_all  # the samples before any bounds: the update follows the noise
        order = self._ordered(fitness, z_all)
        z, y, x = z_all[order], y_all[order], x_all[order]
        fit_sorted = fitness[order]
        feasible = int(np.isfinite(fitness).sum())

        norm_v = float(np.linalg.norm(self.v_))
        norm_v2 = norm_v * norm_v
        v_hat = self.v_ / norm_v

        w_rank = self._share_ties(self.rank_weights, fit_sorted)
        self.p_sigma_ = (1.0 - self.c_sigma) * self.p_sigma_ + math.sqrt(self.c_sigma * (2.0 - self.c_sigma) * self.mu_eff) * (w_rank @ z)
        norm_ps = float(np.linalg.norm(self.p_sigma_))
        moving = norm_ps >= self.chi_n
        if moving:
            # Distance weights: among the good samples, the far ones count more (long steps while the mean moves).
            alpha = self.h_inv * min(1.0, math.sqrt(lam / n)) * math.sqrt(feasible / lam)
            raw = (self.rank_weights + 1.0 / lam) * np.exp(alpha * np.linalg.norm(z, axis=1))
            weights = self._share_ties(raw / raw.sum() - 1.0 / lam, fit_sorted)
            eta_sigma = 1.0
        else:
            weights = w_rank
            eta_sigma = self._eta_stagnating(feasible) if norm_ps >= 0.1 * self.chi_n else self._eta_converging(feasible)

        # Mean and the rank-one evolution path.
        step = weights @ (x - self.mean_)
        self.p_c_ = (1.0 - self.c_c) * self.p_c_ + math.sqrt(self.c_c * (2.0 - self.c_c) * self.mu_eff) * step / self.sigma_
        self.mean_ = self.mean_ + self.params.lr_mean * step

        # Natural gradients of D and v (the paper's Alg. 1), over the samples and the path p_c / D.
        ys = np.vstack([y, self.p_c_ / self.D_])  # (λ + 1, n)
        gamma = 1.0 + norm_v2
        v_hat2 = v_hat * v_hat
        alpha_vd = min(1.0, math.sqrt(norm_v2 * norm_v2 + (2.0 * gamma - math.sqrt(gamma)) / float(v_hat2.max())) / (2.0 + norm_v2))
        y_dot_v = ys @ v_hat  # (λ + 1,)
        t = ys * y_dot_v[:, None] - np.outer(y_dot_v**2 + gamma, v_hat) / 2.0
        b = -(1.0 - alpha_vd**2) * norm_v2 * norm_v2 / gamma + 2.0 * alpha_vd**2
        h_inv = 1.0 / (2.0 - (b + 2.0 * alpha_vd**2) * v_hat2)
        s = ys * ys - (norm_v2 / gamma) * (ys * v_hat) * y_dot_v[:, None] + 1.0
        s = s - (alpha_vd / gamma) * ((2.0 + norm_v2) * t * v_hat - norm_v2 * np.outer(t @ v_hat, v_hat2))
        h_v2 = h_inv * v_hat2
        s = s * h_inv - (b / (1.0 + b * float(v_hat2 @ h_v2))) * np.outer(s @ h_v2, h_v2)
        t = t - alpha_vd * ((2.0 + norm_v2) * s * v_hat - np.outer(s @ v_hat2, v_hat))
        extended = np.append(self._eta_b(feasible) * weights, (1.0 if moving else 0.0) * self._c1(feasible))
        old_log_det = (np.sum(np.log(self.D_)) + 0.5 * math.log(gamma)) / n
        self.v_ = self.v_ + (extended @ t) / norm_v
        self.D_ = self.D_ + (extended @ s) * self.D_
        new_log_det = (np.sum(np.log(self.D_)) + 0.5 * math.log(1.0 + float(self.v_ @ self.v_))) / n

        # Step size: the FM-NES rule; while moving it may only grow.
        g_sigma = float(weights @ (np.sum(z * z, axis=1) - n)) / n
        frozen = moving and g_sigma < 0.0
        self.sigma_ = self.sigma_ * math.exp((0.0 if frozen else eta_sigma / 2.0 * g_sigma) + old_log_det)
        self.D_ = self.D_ / math.exp(new_log_det)

    # ------------------------------------------------------------------ state
    def _state_dict(self) -> dict[str, Any]:
        """Mean, sigma, D, v, both evolution paths and RNG state."""
        return {
            **self._search_state(),
            "sigma": self.sigma_,
            "D": self.D_.copy(),
            "v": self.v_.copy(),
            "p_sigma": self.p_sigma_.copy(),
            "p_c": self.p_c_.copy(),
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_state_dict` returned."""
        arrays = {name: np.array(state[name], dtype=np.float64) for name in ("mean", "D", "v", "p_sigma", "p_c")}
        for name, value in arrays.items():
            if value.shape != (self.n_params,):
                raise ValueError(f"crfmnes: saved {name} has shape {value.shape}, expected ({self.n_params},)")
        self._load_search_state(state, arrays["mean"])
        self.sigma_ = float(state["sigma"])
        self.D_, self.v_, self.p_sigma_, self.p_c_ = arrays["D"], arrays["v"], arrays["p_sigma"], arrays["p_c"]
