"""First-order optimisers over a flat parameter vector, updated in place.

Each optimiser's ``step(params, grad)`` changes ``params`` in place with
in-place NumPy operations on state buffers allocated once (on the first step,
shaped like ``params``), so a training step allocates nothing here.
``state_dict`` / ``load_state_dict`` hold plain arrays (no pickle needed to
checkpoint them: ``np.savez`` works).

- SGD with momentum, in the form PyTorch uses: ``v = mu v + g``;
  ``p -= lr v`` (or ``p -= lr (g + mu v)`` with Nesterov momentum,
  Sutskever et al. 2013).
- Adam: Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015
  (Algorithm 1, with the bias corrections folded into the step size).
"""

from __future__ import annotations

import math

import numpy as np


def _check_finite_positive(name: str, value: float) -> float:
    if not (isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} = {value!r}: must be a finite number > 0")
    return float(value)


def _check_unit(name: str, value: float) -> float:
    if not (isinstance(value, (int, float, np.floating, np.integer)) and 0.0 <= value < 1.0):
        raise ValueError(f"{name} = {value!r}: must be in [0, 1)")
    return float(value)


class SGD:
    """Stochastic gradient descent with (optionally Nesterov) momentum."""

    def __init__(self, lr: float, momentum: float = 0.9, nesterov: bool = False) -> None:
        self.lr = _check_finite_positive("lr", lr)
        self.momentum = _check_unit("momentum", momentum)
        if nesterov and self.momentum == 0.0:
            raise ValueError("nesterov = True needs momentum > 0")
        self.nesterov = bool(nesterov)
        self.velocity: np.ndarray | None = None
        self._scratch: np.ndarray | None = None

    def step(self, params: np.ndarray, grad: np.ndarray) -> None:
        """One update of ``params`` (in place) along ``grad``."""
        if self.momentum == 0.0:
            params -= self.lr * grad
            return
        v, tmp = self._buffers(params)
        v *= self.momentum
        v += grad
        if self.nesterov:
            np.multiply(v, self.momentum, out=tmp)
            tmp += grad
        else:
            np.copyto(tmp, v)
        tmp *= self.lr
        params -= tmp

    def _buffers(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Velocity and scratch buffers, allocated like ``params`` on the first step."""
        if self.velocity is None or self._scratch is None:
            self.velocity = np.zeros_like(params)
            self._scratch = np.empty_like(params)
        return self.velocity, self._scratch

    def state_dict(self) -> dict[str, np.ndarray]:
        """The momentum buffer (empty before the first step)."""
        return {"velocity": np.array([]) if self.velocity is None else self.velocity.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore a buffer from :meth:`state_dict`."""
        velocity = np.asarray(state["velocity"], dtype=float)
        self.velocity = None if velocity.size == 0 else velocity.copy()
        self._scratch = None if velocity.size == 0 else np.empty_like(velocity)


class Adam:
    """Adam: per-parameter steps from bias-corrected first and second moment estimates."""

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        self.lr = _check_finite_positive("lr", lr)
        self.beta1 = _check_unit("beta1", beta1)
        self.beta2 = _check_unit("beta2", beta2)
        self.eps = _check_finite_positive("eps", eps)
        self.t = 0
        self.m: np.ndarray | None = None
        self.v: np.ndarray | None = None
        self._scratch: np.ndarray | None = None

    def step(self, params: np.ndarray, grad: np.ndarray) -> None:
        """One update of ``params`` (in place) along ``grad``."""
        m, v, tmp = self._buffers(params)
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        # m += (1 - b1)(g - m)  is  m = b1 m + (1 - b1) g, in place.
        np.subtract(grad, m, out=tmp)
        tmp *= 1.0 - b1
        m += tmp
        # v = b2 v + (1 - b2) g^2
        np.multiply(grad, grad, out=tmp)
        tmp *= 1.0 - b2
        v *= b2
        v += tmp
        # p -= lr * m_hat / (sqrt(v_hat) + eps), with m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t).
        correction2 = math.sqrt(1.0 - b2**self.t)
        step_size = self.lr / (1.0 - b1**self.t)
        np.sqrt(v, out=tmp)
        tmp *= 1.0 / correction2
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= step_size
        params -= tmp

    def _buffers(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """First and second moments and a scratch buffer, allocated like ``params`` on the first step."""
        if self.m is None or self.v is None or self._scratch is None:
            self.m = np.zeros_like(params)
            self.v = np.zeros_like(params)
            self._scratch = np.empty_like(params)
        return self.m, self.v, self._scratch

    def state_dict(self) -> dict[str, np.ndarray]:
        """Step count and both moment estimates (empty before the first step)."""
        empty = np.array([])
        return {
            "t": np.array(self.t),
            "m": empty if self.m is None else self.m.copy(),
            "v": empty if self.v is None else self.v.copy(),
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore step count and moments from :meth:`state_dict`."""
        m = np.asarray(state["m"], dtype=float)
        v = np.asarray(state["v"], dtype=float)
        if m.shape != v.shape:
            raise ValueError(f"Adam state: m {m.shape} and v {v.shape} differ in shape")
        self.t = int(state["t"])
        if m.size == 0:
            self.m = self.v = self._scratch = None
        else:
            self.m, self.v, self._scratch = m.copy(), v.copy(), np.empty_like(m)


OPTIMIZERS = {"sgd": SGD, "adam": Adam}
