"""The linear readout: features ``[1, u, x]``, ridge regression in closed form, and the closed loop.

The output is a linear readout of the features ``[1, u[t], x[t]]`` (bias,
input, state): ``y[t] = W_out [1; u[t]; x[t]]``. ``W_out`` is fitted in
closed form by ridge regression on teacher-forced states:
``W_out^T = (X^T X + ridge I)^{-1} X^T Y`` (normal equations, solved by
Cholesky). Every feature, the bias included, is regularised.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import scipy.linalg

from networks.esn.stack import STATE_BLOCK, ReservoirStack, as_sequences


def readout_features(inputs: np.ndarray, states: np.ndarray) -> np.ndarray:
    """Features ``[1, u, x]``: inputs ``(..., n_in)`` and states ``(..., units)`` -> ``(..., 1 + n_in + units)``."""
    inputs = np.asarray(inputs, dtype=np.float64)
    states = np.asarray(states, dtype=np.float64)
    lead = np.broadcast_shapes(inputs.shape[:-1], states.shape[:-1])
    out = np.empty(lead + (1 + inputs.shape[-1] + states.shape[-1],))
    n_in = inputs.shape[-1]
    out[..., 0] = 1.0
    out[..., 1 : 1 + n_in] = inputs
    out[..., 1 + n_in :] = states
    return out


class RidgeAccumulator:
    """Normal equations ``X^T X``, ``X^T Y`` of P readouts, accumulated block by block."""

    def __init__(self, P: int, n_features: int, n_outputs: int) -> None:
        self.gram = np.zeros((P, n_features, n_features))
        self.cross = np.zeros((P, n_features, n_outputs))
        self.samples = 0

    def add(self, features: np.ndarray, targets: np.ndarray) -> None:
        """Add rows: features ``(P, N, F)``, targets ``(N, n_out)`` (shared) or ``(P, N, n_out)``."""
        if features.shape[1] == 0:
            return
        Xt = features.transpose(0, 2, 1)
        self.gram += Xt @ features  # per reservoir, a symmetric rank-N update
        self.cross += Xt @ targets
        self.samples += features.shape[1]

    def solve(self, ridge: float | np.ndarray) -> np.ndarray:
        """``W_out`` ``(P, n_out, F)``; ``ridge`` a scalar or one per readout."""
        P, F, _ = self.gram.shape
        ridges = np.broadcast_to(np.asarray(ridge, dtype=np.float64), (P,))
        return np.stack([solve_ridge(self.gram[p], self.cross[p], float(ridges[p])) for p in range(P)])


def solve_ridge(gram: np.ndarray, cross: np.ndarray, ridge: float) -> np.ndarray:
    """``W_out`` ``(n_out, F)`` from ``(gram + ridge I) W_out^T = cross`` (Cholesky; least squares if not positive definite)."""
    A = gram + ridge * np.eye(gram.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        try:
            return scipy.linalg.solve(A, cross, assume_a="pos", check_finite=False).T
        except (np.linalg.LinAlgError, ValueError):
            # Numerically indefinite (ridge too small for the conditioning).
            return np.linalg.lstsq(A, cross, rcond=None)[0].T


def fit_readout(states: np.ndarray, targets: np.ndarray, ridge: float, washout: int = 0, inputs: np.ndarray | None = None) -> np.ndarray:
    """Ridge readout ``W_out`` ``(n_out, F)`` on features ``[1, u, x]`` (``[1, x]`` without ``inputs``).

    ``states`` ``(S, T, units)`` (or ``(T, units)``), ``targets`` and
    ``inputs`` with the same leading axes; the first ``washout`` steps of every
    sequence are left out.
    """
    states = np.asarray(states, dtype=np.float64)
    if states.ndim == 2:
        states = states[None]
    S, T, _ = states.shape
    Y, _ = as_sequences(targets, "targets")
    if Y.shape[:2] != (S, T):
        raise ValueError(f"targets: expected leading shape {(S, T)}, got {Y.shape}")
    if inputs is None:
        U = np.zeros((S, T, 0))
    else:
        U, _ = as_sequences(inputs, "inputs")
        if U.shape[:2] != (S, T):
            raise ValueError(f"inputs: expected leading shape {(S, T)}, got {U.shape}")
    if not 0 <= washout < T:
        raise ValueError(f"washout = {washout}: must be in [0, {T}) for sequences of {T} steps")
    X = readout_features(U[:, washout:], states[:, washout:]).reshape(1, S * (T - washout), -1)
    acc = RidgeAccumulator(1, X.shape[2], Y.shape[2])
    acc.add(X, Y[:, washout:].reshape(S * (T - washout), -1))
    return acc.solve(ridge)[0]


def predict_readout(W_out: np.ndarray, states: np.ndarray, inputs: np.ndarray | None = None) -> np.ndarray:
    """Outputs ``(..., n_out)`` of readout ``W_out`` ``(n_out, F)`` on states ``(..., units)``."""
    states = np.asarray(states, dtype=np.float64)
    if inputs is None:
        inputs = np.zeros(states.shape[:-1] + (0,))
    return readout_features(inputs, states) @ W_out.T


def nrmse(prediction: np.ndarray, target: np.ndarray, variance: float | None = None) -> float:
    """Normalised root-mean-square error (Jaeger): ``sqrt(mean((y - d)^2) / var(d))``.

    ``variance`` overrides ``var(target)`` (e.g. the variance of the whole
    signal when ``target`` is a handful of values).
    """
    prediction = np.asarray(prediction, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    var = float(np.var(target)) if variance is None else float(variance)
    if var <= 0.0:
        raise ValueError("nrmse: the target has zero variance")
    return float(np.sqrt(np.mean((prediction - target) ** 2) / var))


def closed_loop(stack: ReservoirStack, W_out: np.ndarray, steps: int, states: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """Free run of one reservoir (``stack.P == 1``) and readout ``W_out`` ``(n_out, F)``, batched over S start points.

    ``states`` ``(S, units)`` are the states after reading ``inputs``
    ``(S, n_in)``; each step's output is the next input. Returns
    ``(S, steps, n_out)``.
    """
    if stack.P != 1:
        raise ValueError(f"closed_loop runs one reservoir; the stack holds {stack.P}")
    n_out = W_out.shape[0]
    if n_out != stack.n_inputs:
        raise ValueError(f"closed loop: the readout has {n_out} outputs but the reservoir reads {stack.n_inputs} inputs")
    x = np.asarray(states, dtype=np.float64).reshape(-1, stack.units)
    u = np.asarray(inputs, dtype=np.float64).reshape(-1, stack.n_inputs)
    if x.shape[0] != u.shape[0]:
        raise ValueError(f"closed loop: {x.shape[0]} states but {u.shape[0]} inputs")
    steps = int(steps)
    out = np.empty((x.shape[0], steps, n_out))
    # A poor readout can make the loop diverge (the input feeds back
    # linearly): that is a result (inf / nan errors), not a failure.
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(steps):
            u = predict_readout(W_out, x, u)  # the next input
            out[:, k] = u
            if k + 1 < steps:
                x = stack.step(x[None], u[None])[0]
    return out


# --------------------------------------------------------------------------- #
# A stack of reservoirs on one series: fit on a leading segment, then go on
# --------------------------------------------------------------------------- #
def fit_readouts(
    stack: ReservoirStack, inputs: np.ndarray, targets: np.ndarray, washout: int, ridges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Teacher-forced run of every reservoir over ``inputs`` ``(T, n_in)`` and one ridge readout each.

    Steps before ``washout`` are left out of the fit. Returns ``W_out``
    ``(P, n_out, 1 + n_in + units)`` and the final states ``(P, 1, units)``
    (where :func:`predict_onwards` continues). States stream in blocks of
    :data:`STATE_BLOCK` steps, so memory does not grow with ``T``.
    """
    n_in, n_out = inputs.shape[1], targets.shape[1]
    acc = RidgeAccumulator(stack.P, 1 + n_in + stack.units, n_out)
    t = 0
    last = None
    for block in stack.iter_states(inputs[None], block=STATE_BLOCK):
        L = block.shape[2]
        lo, hi = max(washout, t), t + L
        if hi > lo:
            acc.add(readout_features(inputs[lo:hi], block[:, 0, lo - t : hi - t]), targets[lo:hi])
        last = block[:, :, -1]
        t += L
    if last is None:
        raise ValueError("fit_readouts: inputs hold no time steps")
    return acc.solve(ridges), last


def predict_onwards(
    stack: ReservoirStack, W_out: np.ndarray, state: np.ndarray, inputs: np.ndarray, keep: Sequence[int] = ()
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """One-step outputs ``(P, L, n_out)`` for inputs ``(L, n_in)`` from states ``(P, 1, units)``, and the states at steps ``keep``.

    ``W_out`` ``(P, n_out, F)`` holds one readout per reservoir; the states
    kept are ``(P, units)`` after reading ``inputs[i]``, keyed by ``i``.
    """
    L_total = len(inputs)
    outputs = np.empty((stack.P, L_total, W_out.shape[1]))
    wanted = set(keep)
    kept: dict[int, np.ndarray] = {}
    t = 0
    for block in stack.iter_states(inputs[None], initial_state=state, block=STATE_BLOCK):
        L = block.shape[2]
        X = readout_features(inputs[t : t + L], block[:, 0])
        outputs[:, t : t + L] = X @ W_out.transpose(0, 2, 1)
        for i in [i for i in wanted if t <= i < t + L]:
            kept[i] = block[:, 0, i - t].copy()
        t += L
    return outputs, kept
