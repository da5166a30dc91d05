"""PGPE with the ClipUp optimiser, pure NumPy.

Sehnke, Osendorfer, Rückstieß, Graves, Peters & Schmidhuber (2010),
"Parameter-exploring policy gradients", Neural Networks 23(4). The search
distribution is a Gaussian with a diagonal covariance, N(mean, diag(sigma²));
its mean and per-parameter step sizes follow the likelihood-ratio gradient of
the expected fitness, estimated with symmetric sampling (each perturbation
``eps`` is evaluated at ``mean + eps`` and ``mean - eps``, §2.3 of the paper):

    g_mean  = 1/K sum_k eps_k (u+_k - u-_k) / 2
    g_sigma = 1/K sum_k ((u+_k + u-_k) / 2) (eps_k² - sigma²) / sigma

over the K = population / 2 pairs, with the fitness replaced by centred ranks
``u`` in [-0.5, 0.5] (they sum to zero, which makes them their own baseline;
this shaping is the one of Salimans et al. 2017 and of Toklu et al. 2020).

The mean moves with ClipUp: Toklu, Liskowski & Srivastava (2020), "ClipUp: a
simple and powerful optimizer for distribution-based policy evolution", PPSN
XVI, arXiv:2008.02387. The gradient is normalised to unit length, added to a
velocity with heavy-ball momentum, and the velocity is clipped to
``max_speed``; so every step of the mean has a length of at most
``max_speed``, whatever the scale of the fitness. The paper recommends
``step_size = max_speed / 2`` and momentum 0.9, the defaults here. The step
sizes take a plain gradient step (``lr_sigma``), each limited to a relative
change of ``sigma_max_change`` per generation, as in the authors' EvoTorch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from evo.strategies.mean_search import MeanSearch
from evo.strategies.openai_es import centered_ranks
from evo.strategies.params import param

#: A step size never falls below this (a sigma of 0 would stop the search for good).
SIGMA_FLOOR = 1e-12


@dataclass(frozen=True)
class PGPEParams:
    """PGPE's parameters: defaults and allowed ranges."""

    sigma: float = param(0.1, gt=0.0, doc="initial step size of every parameter")
    max_speed: float = param(0.15, gt=0.0, doc="ClipUp: the largest length of one step of the mean")
    step_size: float | None = param(
        None, gt=0.0, doc="ClipUp: length of the normalised gradient added to the velocity; unset: max_speed / 2"
    )
    momentum: float = param(0.9, ge=0.0, lt=1.0, doc="ClipUp: heavy-ball momentum of the velocity")
    lr_sigma: float = param(0.1, ge=0.0, doc="learning rate of the step sizes (0 keeps them fixed)")
    sigma_max_change: float = param(0.2, gt=0.0, lt=1.0, doc="largest relative change of a step size in one generation")
    weight_decay: float = param(0.0, ge=0.0, lt=1.0, doc="decoupled L2: the mean shrinks by this fraction every generation")
    bounds: Any = param(None, config=False, doc="(lower, upper) of every gene (from the task): samples are mirrored into the box")


class PGPE(MeanSearch, name="pgpe", params_type=PGPEParams, default_population=50):
    """PGPE: symmetric sampling, centred ranks, ClipUp on the mean, adaptive diagonal sigma."""

    params: PGPEParams

    def _setup(self) -> None:
        super()._setup()
        if self.population % 2:
            raise ValueError(f"pgpe: symmetric sampling needs an even population, got {self.population}")
        p = self.params
        #: The ClipUp step size in use (the given one, or the paper's max_speed / 2).
        self.step_size = p.max_speed / 2.0 if p.step_size is None else p.step_size
        self.sigma_ = np.full(self.n_params, p.sigma)
        self.velocity_ = np.zeros(self.n_params)

    # ------------------------------------------------------------------ ask / tell
    def _sample(self) -> np.ndarray:
        """Genomes ``mean ± sigma * noise`` (first half +, second half −)."""
        step = self.sigma_ * self._draw_noise(self.population // 2)
        return np.concatenate([self.mean_ + step, self.mean_ - step])

    def _update(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """ClipUp step of the mean and a bounded gradient step of sigma, from the centred ranks of the pairs."""
        p = self.params
        shaped = centered_ranks(fitness)
        half = self.population // 2
        plus, minus = shaped[:half], shaped[half:]
        noise = self._noise  # standard normal; the perturbation is eps = sigma * noise
        assert noise is not None
        eps = self.sigma_ * noise
        grad_mean = (0.5 * (plus - minus)) @ eps / half
        # (eps² - sigma²) / sigma = sigma (noise² - 1)
        grad_sigma = (0.5 * (plus + minus)) @ (noise * noise - 1.0) * self.sigma_ / half

        norm = float(np.linalg.norm(grad_mean))
        if norm > 0.0:  # all fitness equal: no direction, the velocity coasts on
            self.velocity_ = p.momentum * self.velocity_ + self.step_size * grad_mean / norm
        else:
            self.velocity_ = p.momentum * self.velocity_
        speed = float(np.linalg.norm(self.velocity_))
        if speed > p.max_speed:
            self.velocity_ = self.velocity_ * (p.max_speed / speed)
        self.mean_ = (1.0 - p.weight_decay) * self.mean_ + self.velocity_

        change = np.clip(p.lr_sigma * grad_sigma, -p.sigma_max_change * self.sigma_, p.sigma_max_change * self.sigma_)
        self.sigma_ = np.maximum(self.sigma_ + change, SIGMA_FLOOR)

    # ------------------------------------------------------------------ state
    def _state_dict(self) -> dict[str, Any]:
        """Mean, sigma, ClipUp velocity and RNG state."""
        return {**self._search_state(), "sigma": self.sigma_.copy(), "velocity": self.velocity_.copy()}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_state_dict` returned."""
        arrays = {name: np.array(state[name], dtype=np.float64) for name in ("mean", "sigma", "velocity")}
        for name, value in arrays.items():
            if value.shape != (self.n_params,):
                raise ValueError(f"pgpe: saved {name} has shape {value.shape}, expected ({self.n_params},)")
        self._load_search_state(state, arrays["mean"])
        self.sigma_, self.velocity_ = arrays["sigma"], arrays["velocity"]
