"""Series for time-series tasks: generated (Mackey-Glass, NARMA-10) or loaded, and split into segments.

* :func:`mackey_glass` -- the Mackey-Glass delay differential equation
  (Mackey & Glass, Science 197, 1977)
  ``dx/dt = beta x(t - tau) / (1 + x(t - tau)^n_exp) - gamma x(t)``,
  integrated by RK4 with step ``dt / substeps`` (default 0.1), the delayed
  value at the half step linearly interpolated, and sampled every ``dt``.
  ``tau = 17`` is the mildly chaotic benchmark of Jaeger & Haas (2004).
* :func:`narma10` -- the tenth-order NARMA system (Atiya & Parlos, 2000).
* :func:`load_series` -- a user's ``.npz`` (array ``series`` or ``y``) or
  ``.csv`` (one column, or a named / indexed one).

A :class:`SeriesSplit` lays a series out as consecutive segments
``washout | train | val | test``, standardised with the mean and standard
deviation of ``washout + train``. An *autonomous* series (Mackey-Glass, a
user's series) has input ``s[t]`` and target ``s[t + 1]`` (one-step-ahead
prediction); NARMA-10 has input ``u[t]`` and target ``y[t + 1]`` (which the
NARMA update computes from ``u[t]``, ``u[t - 9]`` and past ``y``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import lfilter

from evo.tasks.datafiles import data_file_format, read_csv, read_npz

#: Steps at the start of a split that only warm a model's state up.
DEFAULT_WASHOUT = 200


def mackey_glass(
    n: int,
    tau: float = 17.0,
    beta: float = 0.2,
    gamma: float = 0.1,
    n_exp: float = 10.0,
    dt: float = 1.0,
    x0: float = 1.2,
    seed: int | None = None,
    substeps: int = 10,
    discard: int = 0,
) -> np.ndarray:
    """``n`` samples, every ``dt``, of the Mackey-Glass equation; see the module docstring.

    The history on ``[-tau, 0)`` is ``x0`` (``seed=None``) or ``x0 + 0.2 (U - 0.5)``
    drawn from ``seed``; ``x(0) = x0``. The first ``discard`` samples (the
    transient off the attractor) are dropped. ``tau / (dt / substeps)`` must
    be a whole number of integration steps.
    """
    if n < 1 or substeps < 1 or discard < 0:
        raise ValueError(f"mackey_glass: need n >= 1, substeps >= 1, discard >= 0; got n={n}, substeps={substeps}, discard={discard}")
    if not (tau > 0 and dt > 0 and gamma >= 0):
        raise ValueError(f"mackey_glass: need tau > 0, dt > 0, gamma >= 0; got tau={tau}, dt={dt}, gamma={gamma}")
    h = dt / substeps
    delay = tau / h
    d = int(round(delay))
    if abs(delay - d) > 1e-9 * max(1.0, delay):
        raise ValueError(f"mackey_glass: tau / (dt / substeps) = {delay} must be a whole number of integration steps")
    steps = (discard + n - 1) * substeps
    # buf[i] is x at time (i - d) * h: the history occupies buf[0 : d + 1].
    buf = np.empty(d + steps + 1)
    if seed is None:
        buf[:d] = x0
    else:
        buf[:d] = x0 + 0.2 * (np.random.default_rng(seed).random(d) - 0.5)
    buf[d] = x0

    def forcing(z: np.ndarray) -> np.ndarray:
        return beta * z / (1.0 + z**n_exp)

    def rk4_affine(x, f0, fm, f1):
        """RK4 step of dx/dt = f(t) - gamma x, affine in (x, f0, fm, f1)."""
        k1 = f0 - gamma * x
        k2 = fm - gamma * (x + 0.5 * h * k1)
        k3 = fm - gamma * (x + 0.5 * h * k2)
        k4 = f1 - gamma * (x + h * k3)
        return x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)

    # Over any d consecutive steps the delayed values are already known, so
    # the RK4 steps form a linear recurrence x[k+1] = A x[k] + B[k], solved by
    # one lfilter call per block instead of a Python loop per step.
    A = float(rk4_affine(1.0, 0.0, 0.0, 0.0))
    k = 0
    while k < steps:
        L = min(d, steps - k)
        z = buf[k : k + L + 1]  # x(t - tau) at steps k..k+L
        f_ends = forcing(z)
        f_mid = forcing(0.5 * (z[:-1] + z[1:]))
        B = rk4_affine(0.0, f_ends[:-1], f_mid, f_ends[1:])
        x_start = buf[d + k]
        buf[d + k + 1 : d + k + L + 1] = lfilter([1.0], [1.0, -A], B, zi=[A * x_start])[0]
        k += L
    samples = buf[d::substeps]
    return samples[discard : discard + n].copy()


def narma10(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """NARMA-10 inputs ``u ~ U[0, 0.5]`` and outputs ``y`` (``n`` each), ``y[0..9] = 0``.

    ``y[t+1] = 0.3 y[t] + 0.05 y[t] sum_{i=0..9} y[t-i] + 1.5 u[t-9] u[t] + 0.1``.
    """
    if n < 11:
        raise ValueError(f"narma10: n = {n}: need at least 11 steps")
    u = np.random.default_rng(seed).uniform(0.0, 0.5, size=n)
    uu = u.tolist()
    y = [0.0] * n
    for t in range(9, n - 1):
        window = y[t - 9] + y[t - 8] + y[t - 7] + y[t - 6] + y[t - 5] + y[t - 4] + y[t - 3] + y[t - 2] + y[t - 1] + y[t]
        y[t + 1] = 0.3 * y[t] + 0.05 * y[t] * window + 1.5 * uu[t - 9] * uu[t] + 0.1
    return u, np.asarray(y)


def load_series(path: str | Path, column: str | int | None = None, key: str | None = None) -> np.ndarray:
    """A 1-D float series from ``.npz`` (array ``key``, else ``series`` or ``y``) or ``.csv``.

    A ``.csv`` has one value per row (a header row optional); with several
    columns, ``column`` (a header name or an index) picks one.
    """
    path = Path(path)
    if data_file_format(path) == "npz":
        (series,) = read_npz(path, key if key is not None else ("series", "y"))
        series = np.asarray(series, dtype=np.float64)
        if series.ndim == 2 and 1 in series.shape:
            series = series.reshape(-1)
        if series.ndim != 1:
            raise ValueError(f"task.path = {str(path)!r}: the series array has shape {series.shape}; expected one value per step")
    else:
        series = read_csv(path, column, column_field="task.column").picked_floats()
    if len(series) < 2:
        raise ValueError(f"task.path = {str(path)!r}: fewer than 2 values")
    if not np.all(np.isfinite(series)):
        raise ValueError(f"task.path = {str(path)!r}: the series contains NaN or infinity")
    return series


@dataclass(frozen=True)
class SeriesSplit:
    """Inputs ``(T, n_in)`` and targets ``(T, n_out)`` in consecutive segments washout | train | val | test."""

    inputs: np.ndarray
    targets: np.ndarray
    washout: int
    n_train: int
    n_val: int
    n_test: int
    autonomous: bool
    source: dict = field(default_factory=dict)

    @property
    def train_end(self) -> int:
        """End (exclusive) of the training segment."""
        return self.washout + self.n_train

    @property
    def val_end(self) -> int:
        """End (exclusive) of the validation segment."""
        return self.train_end + self.n_val

    @property
    def test_end(self) -> int:
        """End (exclusive) of the test segment."""
        return self.val_end + self.n_test

    def describe(self) -> dict:
        """Sizes and where the data came from."""
        return {
            "source": self.source,
            "autonomous": self.autonomous,
            "washout": self.washout,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "n_test": self.n_test,
            "n_inputs": int(self.inputs.shape[1]),
            "n_outputs": int(self.targets.shape[1]),
        }


def _standardise(x: np.ndarray, fit_rows: int) -> tuple[np.ndarray, float, float]:
    mean, std = float(np.mean(x[:fit_rows])), float(np.std(x[:fit_rows]))
    if std <= 0.0:
        raise ValueError("the series is constant over its training segment")
    return (x - mean) / std, mean, std


def split_series(series: np.ndarray, washout: int, n_train: int, n_val: int, n_test: int, source: dict | None = None) -> SeriesSplit:
    """Autonomous split: input ``s[t]``, target ``s[t + 1]``; needs ``washout + n_train + n_val + n_test + 1`` values."""
    series = np.asarray(series, dtype=np.float64).reshape(-1)
    need = washout + n_train + n_val + n_test + 1
    _check_sizes(washout, n_train, n_val, n_test)
    if len(series) < need:
        raise ValueError(f"the series has {len(series)} values; washout + n_train + n_val + n_test + 1 = {need} are needed")
    z, mean, std = _standardise(series[:need], washout + n_train)
    src = {**(source or {}), "standardised": {"mean": mean, "std": std}}
    return SeriesSplit(z[:-1, None].copy(), z[1:, None].copy(), washout, n_train, n_val, n_test, True, src)


def split_input_output(
    u: np.ndarray, y: np.ndarray, washout: int, n_train: int, n_val: int, n_test: int, source: dict | None = None
) -> SeriesSplit:
    """Driven split: input ``u[t]``, target ``y[t + 1]``; ``u`` and ``y`` standardised separately."""
    u = np.asarray(u, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    _check_sizes(washout, n_train, n_val, n_test)
    need = washout + n_train + n_val + n_test + 1
    if len(u) != len(y) or len(u) < need:
        raise ValueError(f"u and y need {need} values each; got {len(u)} and {len(y)}")
    fit = washout + n_train
    zu, mu, su = _standardise(u[: need - 1], fit)
    zy, my, sy = _standardise(y[1:need], fit)
    src = {**(source or {}), "standardised": {"u_mean": mu, "u_std": su, "y_mean": my, "y_std": sy}}
    return SeriesSplit(zu[:, None].copy(), zy[:, None].copy(), washout, n_train, n_val, n_test, False, src)


def _check_sizes(washout: int, n_train: int, n_val: int, n_test: int) -> None:
    if washout < 0 or n_train < 1 or n_val < 1 or n_test < 1:
        raise ValueError(f"segments: need washout >= 0 and n_train, n_val, n_test >= 1; got {washout}, {n_train}, {n_val}, {n_test}")


def make_series_split(
    series: str = "mackey_glass",
    washout: int = DEFAULT_WASHOUT,
    n_train: int = 3000,
    n_val: int = 1000,
    n_test: int = 2000,
    path: str | Path | None = None,
    column: str | int | None = None,
    key: str | None = None,
    **params,
) -> SeriesSplit:
    """A split of ``"mackey_glass"`` (``params`` go to :func:`mackey_glass`; default ``discard=500``),
    ``"narma10"`` (``seed``) or ``"file"`` (``path``, ``column``, ``key``)."""
    total = washout + n_train + n_val + n_test + 1
    if series == "mackey_glass":
        # Defaults, then the caller's values (checked by mackey_glass itself).
        mg: dict[str, Any] = {
            "tau": 17.0,
            "beta": 0.2,
            "gamma": 0.1,
            "n_exp": 10.0,
            "dt": 1.0,
            "x0": 1.2,
            "seed": None,
            "substeps": 10,
            "discard": 500,
        }
        unknown = set(params) - set(mg)
        if unknown:
            raise ValueError(f"mackey_glass: unknown parameters {sorted(unknown)}; allowed: {sorted(mg)}")
        mg.update(params)
        values = mackey_glass(total, **mg)
        return split_series(values, washout, n_train, n_val, n_test, {"series": "mackey_glass", **mg})
    if series == "narma10":
        unknown = set(params) - {"seed"}
        if unknown:
            raise ValueError(f"narma10: unknown parameters {sorted(unknown)}; allowed: ['seed']")
        seed = int(params.get("seed", 0))
        u, y = narma10(total, seed)
        return split_input_output(u, y, washout, n_train, n_val, n_test, {"series": "narma10", "seed": seed})
    if series == "file":
        if path is None:
            raise ValueError("task.path: required for series = 'file'")
        if params:
            raise ValueError(f"series = 'file': unknown parameters {sorted(params)}; allowed: path, column, key")
        values = load_series(path, column, key)
        return split_series(values, washout, n_train, n_val, n_test, {"series": "file", "path": str(path), "column": column, "key": key})
    raise ValueError(f"task.series = {series!r}: allowed 'mackey_glass', 'narma10', 'file'")
