"""Time-series tasks for echo-state networks: data, splits, NRMSE, two evolution modes.

Data
----
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

Figures
-------
NRMSE (Jaeger): ``sqrt(mean((y - d)^2) / var(d))``; fitness is
``-log10(NRMSE)`` (default) or ``-NRMSE``, maximised. The reservoir is run
teacher-forced once over the segments in order (its state flows from one
segment into the next), the ridge readout is fitted on ``train`` only, fitness
is the one-step NRMSE on ``val``; ``test`` is only read by :meth:`test`,
which reports the one-step NRMSE on ``test`` and, for an autonomous series,
the closed-loop NRMSE at step ``horizon`` (84, Jaeger 2001/2004's NRMSE84):
from ``starts`` (20) start points spread over ``test``, each with its
teacher-forced state, the ESN runs free for ``horizon`` steps (all start
points batched) and the errors at the last step are normalised by the
variance of the test targets.

Modes
-----
(a) :class:`ESNHyperparameterTask` -- a genome is 5 unconstrained numbers
    mapped to reservoir hyperparameters (see :class:`HyperparameterSpace`).
(b) :class:`ESNWeightsTask` -- a genome is a small reservoir's nonzero
    recurrent weights plus its input weights on a fixed sparsity pattern.

Both build their own model from the genome: the ``network`` argument of
:meth:`evaluate` / :meth:`test` / :meth:`validate` is ignored. Fitness is a
deterministic function of the genome (fixed reservoir seeds, no sampling),
so ``seeds`` is not used and no chunking of a population can change it. All
reservoirs of a chunk run together as one block-diagonal sparse system
(:class:`networks.esn.ReservoirStack`); only building each reservoir (its
pattern and its spectral radius) and its ridge solve are per individual.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.signal import lfilter

from evo.tasks.base import Task
from networks.esn import (
    STATE_BLOCK,
    Reservoir,
    ReservoirStack,
    ReservoirWeights,
    RidgeAccumulator,
    closed_loop,
    nrmse,
    readout_features,
)

# --------------------------------------------------------------------------- #
# The default recipe: a 500-unit reservoir for one-step Mackey-Glass prediction
# on standardised data (measured in benchmarks/esn_speed.py).
# --------------------------------------------------------------------------- #
DEFAULT_RESERVOIR = Reservoir()
DEFAULT_RIDGE = 1e-8
DEFAULT_WASHOUT = 200

#: Rows (reservoirs x units) of one block-diagonal stack in a fitness call.
STACK_ROWS = 4096


# --------------------------------------------------------------------------- #
# Series generators and loading
# --------------------------------------------------------------------------- #
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
    if not path.is_file():
        raise ValueError(f"task.path = {str(path)!r}: file does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            names = [key] if key is not None else ["series", "y"]
            found = next((k for k in names if k in data.files), None)
            if found is None:
                wanted = " or ".join(map(repr, names))
                raise ValueError(f"task.path = {str(path)!r}: no array named {wanted}; it holds {sorted(data.files)}")
            series = np.asarray(data[found], dtype=np.float64)
        if series.ndim == 2 and 1 in series.shape:
            series = series.reshape(-1)
        if series.ndim != 1:
            raise ValueError(f"task.path = {str(path)!r}: array {found!r} has shape {series.shape}; expected one value per step")
    elif suffix == ".csv":
        series = _load_csv_column(path, column)
    else:
        raise ValueError(f"task.path = {str(path)!r}: unsupported format {suffix!r}; allowed: .npz, .csv")
    if len(series) < 2:
        raise ValueError(f"task.path = {str(path)!r}: fewer than 2 values")
    if not np.all(np.isfinite(series)):
        raise ValueError(f"task.path = {str(path)!r}: the series contains NaN or infinity")
    return series


def _load_csv_column(path: Path, column: str | int | None) -> np.ndarray:
    with open(path, newline="") as fh:
        rows = [[c.strip() for c in row] for row in csv.reader(fh) if row and any(c.strip() for c in row)]
    if not rows:
        raise ValueError(f"task.path = {str(path)!r}: the file is empty")
    header = None
    try:
        [float(c) for c in rows[0]]
    except ValueError:
        header, rows = rows[0], rows[1:]
    width = len(header) if header is not None else len(rows[0]) if rows else 0
    if column is None:
        if width != 1:
            raise ValueError(f"task.column: {str(path)!r} has {width} columns {header or ''}; name the one to use")
        col = 0
    elif isinstance(column, str):
        if header is None or column not in header:
            raise ValueError(f"task.column = {column!r}: no such column; the header is {header}")
        col = header.index(column)
    else:
        if not -width <= column < width:
            raise ValueError(f"task.column = {column}: out of range for {width} columns")
        col = column % width
    values = []
    for line_no, row in enumerate(rows, start=1):
        try:
            values.append(float(row[col]))
        except (ValueError, IndexError):
            raise ValueError(f"task.path = {str(path)!r}: data row {line_no}: no numeric value in column {col}") from None
    return np.asarray(values)


# --------------------------------------------------------------------------- #
# Splits
# --------------------------------------------------------------------------- #
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


def split_series(
    series: np.ndarray, washout: int, n_train: int, n_val: int, n_test: int, source: dict | None = None
) -> SeriesSplit:
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
        mg = {"tau": 17.0, "beta": 0.2, "gamma": 0.1, "n_exp": 10.0, "dt": 1.0, "x0": 1.2, "seed": None, "substeps": 10, "discard": 500}
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


# --------------------------------------------------------------------------- #
# Fitting and scoring stacks of reservoirs on a split
# --------------------------------------------------------------------------- #
def _fit_on_train(data: SeriesSplit, stack: ReservoirStack, ridges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Teacher-forced run over washout + train, ridge readouts: ``W_out`` ``(P, n_out, F)`` and the final states ``(P, 1, units)``."""
    n_in, n_out = data.inputs.shape[1], data.targets.shape[1]
    acc = RidgeAccumulator(stack.P, 1 + n_in + stack.units, n_out)
    t = 0
    last = None
    for block in stack.iter_states(data.inputs[None, : data.train_end], block=STATE_BLOCK):
        L = block.shape[2]
        lo, hi = max(data.washout, t), t + L
        if hi > lo:
            acc.add(readout_features(data.inputs[lo:hi], block[:, 0, lo - t : hi - t]), data.targets[lo:hi])
        last = block[:, :, -1]
        t += L
    return acc.solve(ridges), last


def _predict_after_train(
    data: SeriesSplit, stack: ReservoirStack, W_out: np.ndarray, state: np.ndarray, end: int, keep: Sequence[int] = ()
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """One-step outputs ``(P, end - train_end, n_out)`` continuing from the end of train, and the states at steps ``keep``."""
    start = data.train_end
    outputs = np.empty((stack.P, end - start, W_out.shape[1]))
    wanted = set(keep)
    kept: dict[int, np.ndarray] = {}
    t = start
    for block in stack.iter_states(data.inputs[None, start:end], initial_state=state, block=STATE_BLOCK):
        L = block.shape[2]
        X = readout_features(data.inputs[t : t + L], block[:, 0])
        outputs[:, t - start : t - start + L] = X @ W_out.transpose(0, 2, 1)
        for i in [i for i in wanted if t <= i < t + L]:
            kept[i] = block[:, 0, i - t].copy()
        t += L
    return outputs, kept


def _log_fitness(values: np.ndarray, kind: str) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.log10(values) if kind == "log_nrmse" else -values


class _ESNTask(Task):
    """Shared parts of the two ESN modes: data, scoring, test figures."""

    kind = "timeseries"
    output_activation = "identity"

    def __init__(self, data: SeriesSplit | None, fitness: str, horizon: int, starts: int) -> None:
        if fitness not in ("log_nrmse", "nrmse"):
            raise ValueError(f"task.fitness = {fitness!r}: allowed 'log_nrmse' (-log10 NRMSE), 'nrmse' (-NRMSE)")
        self.data = data if data is not None else make_series_split()
        self.fitness = fitness
        self.horizon = int(horizon)
        self.starts = int(starts)
        if self.data.autonomous and (self.horizon < 1 or self.starts < 1 or self.data.n_test < self.horizon + self.starts):
            raise ValueError(
                f"free run: need horizon >= 1, starts >= 1 and n_test >= horizon + starts; "
                f"got {self.horizon}, {self.starts}, n_test {self.data.n_test}"
            )
        self.n_inputs = int(self.data.inputs.shape[1])
        self.n_outputs = int(self.data.targets.shape[1])

    # ---------------------------------------------------- mode specifics
    def _reservoirs(self, genomes: np.ndarray) -> tuple[list[ReservoirWeights], np.ndarray, int]:
        """Weights of every reservoir, one ridge per reservoir, reservoirs per genome."""
        raise NotImplementedError

    def units_per_genome(self) -> int:
        """Reservoir units one genome runs (all its reservoirs)."""
        raise NotImplementedError

    def _check(self, genomes: np.ndarray) -> np.ndarray:
        genomes = np.asarray(genomes, dtype=np.float64)
        if genomes.ndim == 1:
            genomes = genomes[None]
        if genomes.ndim != 2 or genomes.shape[1] != self.genome_size:
            raise ValueError(f"expected genomes of shape (P, {self.genome_size}), got {genomes.shape}")
        return genomes

    # ------------------------------------------------------------ scoring
    def val_nrmse(self, genomes: np.ndarray) -> np.ndarray:
        """One-step validation NRMSE ``(P,)`` (mean over a genome's reservoirs)."""
        genomes = self._check(genomes)
        target = self.data.targets[self.data.train_end : self.data.val_end]
        var = float(np.var(target))
        errors = []
        # Stacks of at most ~STACK_ROWS rows keep the block-diagonal system in
        # cache; grouping never changes an individual's numbers.
        group = max(1, STACK_ROWS // (self.units_per_genome()))
        for lo in range(0, len(genomes), group):
            weights, ridges, per_genome = self._reservoirs(genomes[lo : lo + group])
            stack = ReservoirStack(weights)
            W_out, state = _fit_on_train(self.data, stack, ridges)
            outputs, _ = _predict_after_train(self.data, stack, W_out, state, self.data.val_end)
            err = np.sqrt(np.mean((outputs - target[None]) ** 2, axis=(1, 2)) / var)
            errors.append(err.reshape(-1, per_genome).mean(axis=1))
        return np.concatenate(errors)

    def evaluate(self, network, genomes, seeds, generation_seed) -> np.ndarray:
        """``-log10`` (or minus) the one-step validation NRMSE of each genome; ``network`` and seeds unused."""
        return _log_fitness(self.val_nrmse(genomes), self.fitness)

    def validate(self, network, genome, seed) -> dict[str, float]:
        """The fitness figure itself (the validation segment is what fitness reads)."""
        error = float(self.val_nrmse(np.asarray(genome)[None])[0])
        return {"val_score": float(_log_fitness(np.array([error]), self.fitness)[0]), "val_nrmse": error}

    def test(self, network, genome, seed) -> dict[str, float]:
        """One-step NRMSE on the test segment and, for an autonomous series, the free-run NRMSE at ``horizon``."""
        genome = self._check(np.asarray(genome))[0:1]
        weights, ridges, _ = self._reservoirs(genome)
        return score_on_test(self.data, weights[0], float(ridges[0]), self.horizon, self.starts)

    def samples_per_evaluation(self) -> int:
        """Reservoir steps per fitness evaluation."""
        return self.data.val_end

    def _describe_common(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "fitness": self.fitness,
            "data": self.data.describe(),
            "free_run": {"horizon": self.horizon, "starts": self.starts},
        }


def free_run_starts(data: SeriesSplit, horizon: int, starts: int) -> np.ndarray:
    """Start steps of the closed-loop test, evenly spread over the test segment."""
    stride = max(1, (data.n_test - horizon) // starts)
    return data.val_end + stride * np.arange(starts)


def score_on_test(
    data: SeriesSplit, weights: ReservoirWeights, ridge: float, horizon: int = 84, starts: int = 20, W_out: np.ndarray | None = None
) -> dict[str, float]:
    """Fit the readout on train; one-step NRMSE on val and test; closed-loop NRMSE at ``horizon`` (autonomous series).

    ``W_out`` ``(n_out, 1 + n_in + units)``, if given, is used instead of the
    ridge readout (e.g. a readout trained by gradient descent).
    """
    stack = ReservoirStack([weights])
    ridge_W_out, state = _fit_on_train(data, stack, np.array([ridge]))
    W_out = ridge_W_out if W_out is None else np.asarray(W_out, dtype=np.float64)[None]
    points = free_run_starts(data, horizon, starts) if data.autonomous else np.zeros(0, dtype=int)
    outputs, kept = _predict_after_train(data, stack, W_out, state, data.test_end, keep=points.tolist())
    val_out = outputs[0, : data.n_val]
    test_out = outputs[0, data.n_val :]
    figures = {
        "val_nrmse": nrmse(val_out, data.targets[data.train_end : data.val_end]),
        "test_nrmse": nrmse(test_out, data.targets[data.val_end : data.test_end]),
        "test_steps": int(data.n_test),
    }
    if data.autonomous:
        last_states = np.stack([kept[int(i)][0] for i in points])  # (starts, units)
        last_inputs = data.inputs[points]  # (starts, n_in)
        free = closed_loop(stack, W_out[0], horizon, last_states, last_inputs)  # (starts, horizon, n_out)
        truth = data.targets[points + horizon - 1]
        figures["test_nrmse_free_run"] = nrmse(free[:, -1], truth, variance=float(np.var(data.targets[data.val_end : data.test_end])))
        figures["free_run_horizon"] = int(horizon)
        figures["free_run_starts"] = int(starts)
    return figures


# --------------------------------------------------------------------------- #
# Mode (a): evolve hyperparameters
# --------------------------------------------------------------------------- #
def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1.0 - p))


@dataclass(frozen=True)
class HyperparameterSpace:
    """Unconstrained genes ``z`` (5) -> reservoir hyperparameters, by these transforms:

    * ``spectral_radius = max_spectral_radius * sigmoid(z0)``
    * ``leak_rate = max(sigmoid(z1), 1e-3)``
    * ``input_scaling = 10 ** clip(z2, -4, 2)``
    * ``connectivity = degree / units`` with ``degree`` (expected nonzeros per
      row) ``= d_min * (d_max / d_min) ** sigmoid(z3)``, log-uniform over
      ``degree_range``, at most 1
    * ``ridge = 10 ** clip(z4, -16, 4)``
    """

    units: int = 500
    max_spectral_radius: float = 3.0
    degree_range: tuple[float, float] = (1.0, 50.0)

    names = ("spectral_radius", "leak_rate", "input_scaling", "connectivity", "ridge")

    def decode(self, z: np.ndarray) -> dict[str, float]:
        """Hyperparameters of one genome."""
        z = np.asarray(z, dtype=np.float64).reshape(-1)
        d_min, d_max = self.degree_range
        degree = d_min * (d_max / d_min) ** float(_sigmoid(z[3]))
        return {
            "spectral_radius": float(self.max_spectral_radius * _sigmoid(z[0])),
            "leak_rate": float(max(_sigmoid(z[1]), 1e-3)),
            "input_scaling": float(10.0 ** np.clip(z[2], -4.0, 2.0)),
            "connectivity": float(min(1.0, degree / self.units)),
            "ridge": float(10.0 ** np.clip(z[4], -16.0, 4.0)),
        }

    def encode(self, spectral_radius: float, leak_rate: float, input_scaling: float, connectivity: float, ridge: float) -> np.ndarray:
        """The genome that decodes to these hyperparameters (inverse of :meth:`decode` inside its ranges)."""
        d_min, d_max = self.degree_range
        degree = connectivity * self.units
        return np.array(
            [
                _logit(spectral_radius / self.max_spectral_radius),
                _logit(leak_rate),
                math.log10(input_scaling),
                _logit(math.log(degree / d_min) / math.log(d_max / d_min)),
                math.log10(ridge),
            ]
        )


class ESNHyperparameterTask(_ESNTask):
    """Mode (a): a genome is 5 unconstrained genes decoded by :class:`HyperparameterSpace`.

    Each individual's reservoir is built from its hyperparameters and the
    task's fixed ``reservoir_seed`` (``n_reservoirs`` > 1: seeds
    ``reservoir_seed + j``, fitness averaged). A fixed seed makes fitness a
    noise-free function of the hyperparameters: two genomes differ only by
    what they encode, and since the pattern is nested in the connectivity and
    spectral radius / input scaling are pure rescalings, nearby genomes give
    nearby reservoirs. The test figures use the first seed's reservoir.
    """

    name = "esn_hyperparameters"

    def __init__(
        self,
        data: SeriesSplit | None = None,
        units: int = DEFAULT_RESERVOIR.units,
        bias_scaling: float = DEFAULT_RESERVOIR.bias_scaling,
        reservoir_seed: int = 0,
        n_reservoirs: int = 1,
        fitness: str = "log_nrmse",
        horizon: int = 84,
        starts: int = 20,
        max_spectral_radius: float = 3.0,
        degree_range: tuple[float, float] = (1.0, 50.0),
    ) -> None:
        super().__init__(data, fitness, horizon, starts)
        if n_reservoirs < 1:
            raise ValueError(f"task.n_reservoirs = {n_reservoirs}: must be >= 1")
        if not 0 < degree_range[0] < degree_range[1]:
            raise ValueError(f"task.degree_range = {degree_range}: need 0 < low < high")
        self.space = HyperparameterSpace(int(units), float(max_spectral_radius), (float(degree_range[0]), float(degree_range[1])))
        self.units = int(units)
        self.bias_scaling = float(bias_scaling)
        self.reservoir_seed = int(reservoir_seed)
        self.n_reservoirs = int(n_reservoirs)
        self.genome_size = len(HyperparameterSpace.names)

    @property
    def n_params(self) -> int:
        """Alias of ``genome_size``."""
        return self.genome_size

    def initial_genome(self, rng: np.random.Generator | None = None) -> np.ndarray:
        """The default recipe's genes (deterministic; ``rng`` is accepted for interface symmetry)."""
        r = DEFAULT_RESERVOIR
        connectivity = r.connectivity * r.units / self.units
        return self.space.encode(r.spectral_radius, r.leak_rate, r.input_scaling, connectivity, DEFAULT_RIDGE)

    def reservoir(self, genome: np.ndarray, j: int = 0) -> tuple[Reservoir, float]:
        """The ``j``-th reservoir of a genome and its ridge."""
        hp = self.space.decode(genome)
        res = Reservoir(
            units=self.units,
            connectivity=hp["connectivity"],
            spectral_radius=hp["spectral_radius"],
            input_scaling=hp["input_scaling"],
            leak_rate=hp["leak_rate"],
            bias_scaling=self.bias_scaling,
            seed=self.reservoir_seed + j,
            n_inputs=self.n_inputs,
        )
        return res, hp["ridge"]

    def units_per_genome(self) -> int:
        """Reservoir units one genome runs (all its reservoirs)."""
        return self.units * self.n_reservoirs

    def _reservoirs(self, genomes):
        weights, ridges = [], []
        for genome in genomes:
            for j in range(self.n_reservoirs):
                res, ridge = self.reservoir(genome, j)
                weights.append(res.build())
                ridges.append(ridge)
        return weights, np.asarray(ridges), self.n_reservoirs

    def test(self, network, genome, seed) -> dict[str, float]:
        """Test figures (see :func:`score_on_test`) plus the decoded hyperparameters."""
        figures = super().test(network, genome, seed)
        return {**figures, **{f"hp_{k}": v for k, v in self.space.decode(genome).items()}}

    def describe(self) -> dict:
        """Data, genes and their transforms, reservoir seeds."""
        return {
            **self._describe_common(),
            "mode": "hyperparameters",
            "genes": list(HyperparameterSpace.names),
            "transforms": (HyperparameterSpace.__doc__ or "").strip(),
            "units": self.units,
            "bias_scaling": self.bias_scaling,
            "max_spectral_radius": self.space.max_spectral_radius,
            "degree_range": list(self.space.degree_range),
            "reservoir_seed": self.reservoir_seed,
            "n_reservoirs": self.n_reservoirs,
            "genome_size": self.genome_size,
        }


class ESNTopologyTask(ESNHyperparameterTask):
    """Mode (c): the hyperparameters plus the reservoir's topology, its size and its edges.

    Genes: the five of :class:`HyperparameterSpace` and a sixth for the size,
    ``units = round(min_units * (max_units / min_units) ** sigmoid(z5))`` (log-uniform).
    The connectivity gene sets the expected number of edges per unit; since a
    reservoir's sparsity pattern thresholds one fixed uniform key per position,
    raising it adds edges and lowering it removes them, every other edge
    staying in place. Genomes of different sizes are scored in separate stacks
    (one per size), which never changes an individual's numbers.
    """

    name = "esn_topology"

    def __init__(self, data: SeriesSplit | None = None, min_units: int = 50, max_units: int = 500, **kwargs) -> None:
        if not 2 <= int(min_units) < int(max_units):
            raise ValueError(f"task.min_units / max_units = {min_units} / {max_units}: need 2 <= min_units < max_units")
        super().__init__(data, units=int(max_units), **kwargs)
        self.min_units, self.max_units = int(min_units), int(max_units)
        self.genome_size = len(HyperparameterSpace.names) + 1

    def units_of(self, genome: np.ndarray) -> int:
        """Reservoir size a genome encodes."""
        z = float(np.asarray(genome, dtype=np.float64).reshape(-1)[5])
        return int(round(self.min_units * (self.max_units / self.min_units) ** float(_sigmoid(np.array(z)))))

    def space_of(self, genome: np.ndarray) -> HyperparameterSpace:
        """The hyperparameter transforms at the genome's own size (connectivity = degree / units)."""
        return HyperparameterSpace(self.units_of(genome), self.space.max_spectral_radius, self.space.degree_range)

    def initial_genome(self, rng: np.random.Generator | None = None) -> np.ndarray:
        """The default recipe's hyperparameters, at a size inside the range."""
        return np.concatenate([super().initial_genome(rng), [2.0]])  # ~380 units of 50..500: room both ways

    def reservoir(self, genome: np.ndarray, j: int = 0) -> tuple[Reservoir, float]:
        """The ``j``-th reservoir of a genome (its own size) and its ridge."""
        genome = np.asarray(genome, dtype=np.float64).reshape(-1)
        units = self.units_of(genome)
        hp = self.space_of(genome).decode(genome[:5])
        res = Reservoir(
            units=units, connectivity=hp["connectivity"], spectral_radius=hp["spectral_radius"], input_scaling=hp["input_scaling"],
            leak_rate=hp["leak_rate"], bias_scaling=self.bias_scaling, seed=self.reservoir_seed + j, n_inputs=self.n_inputs,
        )
        return res, hp["ridge"]

    def val_nrmse(self, genomes: np.ndarray) -> np.ndarray:
        """One-step validation NRMSE ``(P,)``, genomes grouped by reservoir size."""
        genomes = self._check(genomes)
        sizes = np.array([self.units_of(g) for g in genomes])
        errors = np.empty(len(genomes))
        for units in np.unique(sizes):
            idx = np.flatnonzero(sizes == units)
            errors[idx] = super().val_nrmse(genomes[idx])
        return errors

    def complexity(self, genomes: np.ndarray) -> np.ndarray:
        """Expected recurrent edges of each genome's reservoir."""
        genomes = self._check(genomes)
        return np.array([self.units_of(g) * self.space_of(g).decode(g[:5])["connectivity"] * self.units_of(g) for g in genomes])

    def test(self, network, genome, seed) -> dict[str, float]:
        """Test figures, the decoded hyperparameters and the size."""
        genome = np.asarray(genome, dtype=np.float64).reshape(-1)
        weights, ridges, _ = self._reservoirs(genome[None])
        figures = score_on_test(self.data, weights[0], float(ridges[0]), self.horizon, self.starts)
        hp = self.space_of(genome).decode(genome[:5])
        return {**figures, **{f"hp_{k}": v for k, v in hp.items()}, "hp_units": self.units_of(genome), "hp_edges": int(weights[0].W.nnz)}

    def describe(self) -> dict:
        """As the hyperparameter task, plus the size gene's range."""
        return {**super().describe(), "mode": "topology", "min_units": self.min_units, "max_units": self.max_units, "genome_size": self.genome_size}


# --------------------------------------------------------------------------- #
# Mode (b): evolve the weights of a small reservoir
# --------------------------------------------------------------------------- #
class ESNWeightsTask(_ESNTask):
    """Mode (b): a genome is ``[W nonzeros (CSR order), W_in row-major]`` on the seed's fixed pattern.

    The bias, leak rate and ridge stay fixed; the readout is refitted by
    ridge regression inside every fitness evaluation. ``rescale=True``
    rescales each genome's ``W`` to ``reservoir.spectral_radius`` (one
    eigen-solve per individual); by default the weights are used as they are.
    """

    name = "esn_weights"

    def __init__(
        self,
        data: SeriesSplit | None = None,
        reservoir: Reservoir | None = None,
        ridge: float = DEFAULT_RIDGE,
        rescale: bool = False,
        fitness: str = "log_nrmse",
        horizon: int = 84,
        starts: int = 20,
    ) -> None:
        super().__init__(data, fitness, horizon, starts)
        if reservoir is None:
            reservoir = DEFAULT_RESERVOIR.replace(units=100, connectivity=0.1)
        if reservoir.n_inputs != self.n_inputs:
            reservoir = reservoir.replace(n_inputs=self.n_inputs)
        if not ridge >= 0:
            raise ValueError(f"task.ridge = {ridge!r}: must be >= 0")
        self.reservoir_spec = reservoir
        self.ridge = float(ridge)
        self.rescale = bool(rescale)
        self.genome_size = reservoir.n_weights

    @property
    def n_params(self) -> int:
        """Alias of ``genome_size``."""
        return self.genome_size

    def initial_genome(self, rng: np.random.Generator | None = None) -> np.ndarray:
        """The seed's own weights (spectral radius already set; deterministic, ``rng`` unused)."""
        return self.reservoir_spec.weight_vector()

    def units_per_genome(self) -> int:
        """Reservoir units one genome runs."""
        return self.reservoir_spec.units

    def _reservoirs(self, genomes):
        weights = [self.reservoir_spec.weights_from_vector(g, rescale=self.rescale) for g in genomes]
        return weights, np.full(len(genomes), self.ridge), 1

    def describe(self) -> dict:
        """Data, the reservoir's hyperparameters and the genome layout."""
        return {
            **self._describe_common(),
            "mode": "weights",
            "reservoir": self.reservoir_spec.describe(),
            "ridge": self.ridge,
            "rescale": self.rescale,
            "genome_size": self.genome_size,
            "layout": "[W nonzeros in CSR (row-major) order of the seed's pattern, W_in (units x n_in) row-major]",
        }
