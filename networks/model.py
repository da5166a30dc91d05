"""A saved model: the network, its parameters, the input preprocessing and what the outputs mean, in two files.

Every run directory holds one (``model.json`` + ``model.npz``; a Pareto
front's members under ``pareto_models/``), and :func:`load_model` turns it
back into an object that answers in the user's terms::

    from networks import load_model
    model = load_model("runs/digits-mlp-20250101-120000")
    model.predict(raw_pixels)            # class labels; predict_proba for the probabilities
    policy = load_model("runs/cartpole-...")
    policy.reset(); action = policy.act(observation)

``model.json`` (format ``evo-model``, version 1)::

    network        the spec's describe() (networks.network_from_description rebuilds it)
    preprocessing  networks.preprocessing.Preprocessing.to_dict(): raw inputs -> network inputs
    outputs        kind: classification | regression | control | timeseries, and how outputs become answers
    task, source, figures   where it came from and what it scored on held-out data

``model.npz`` holds ``params``, the flat parameter vector. Nothing is pickled.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from networks.preprocessing import Preprocessing
from networks.spec import NetworkSpec

MODEL_FORMAT = "evo-model"
MODEL_VERSION = 1
MODEL_FILE = "model.json"
PARETO_MODELS = "pareto_models"

__all__ = [
    "MODEL_FILE",
    "PARETO_MODELS",
    "Classifier",
    "Controller",
    "Model",
    "Regressor",
    "SeriesPredictor",
    "load_model",
    "model_from_files",
    "save_model",
]


def save_model(stem: str | Path, spec: NetworkSpec, params: np.ndarray, preprocessing: Preprocessing, outputs: dict, **info: Any) -> Path:
    """Write ``<stem>.json`` and ``<stem>.npz`` atomically (npz first: a reader that finds the JSON finds the parameters)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    npz, meta = stem.with_name(stem.name + ".npz"), stem.with_name(stem.name + ".json")
    tmp = npz.with_name(f".{npz.name}.tmp.npz")
    np.savez(tmp, params=np.asarray(params, dtype=np.float64))
    os.replace(tmp, npz)
    record = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "network": spec.describe(),
        "n_params": int(spec.n_params),
        "params_file": npz.name,
        "preprocessing": preprocessing.to_dict(),
        "outputs": outputs,
        **info,
    }
    text = json.dumps(_plain(record), indent=2, sort_keys=True) + "\n"
    tmp_meta = meta.with_name(f".{meta.name}.tmp")
    tmp_meta.write_text(text)
    os.replace(tmp_meta, meta)
    return meta


def _plain(obj: Any) -> Any:
    """JSON-able: NumPy scalars and arrays as Python numbers and lists, non-finite floats as null."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj


# ------------------------------------------------------------------ loading
def load_model(path: str | Path, member: int | None = None) -> Model:
    """The model of a run directory (or of a ``model.json``), ready to ``predict`` or ``act``; ``member``: a Pareto-front member."""
    path = Path(path)
    if member is not None:
        run_dir = path if path.is_dir() else path.parent
        meta = run_dir / PARETO_MODELS / f"member-{int(member):03d}.json"
        if not meta.is_file():
            front = sorted((run_dir / PARETO_MODELS).glob("member-*.json"))
            raise ValueError(
                f"{run_dir}: no Pareto-front member {member}"
                + (f"; members 0..{len(front) - 1}" if front else " (this run has no Pareto front)")
            )
        return model_from_files(meta)
    if path.is_file():
        return model_from_files(path)
    if not path.is_dir():
        raise ValueError(f"{path}: no such run directory or model file")
    if (path / MODEL_FILE).is_file():
        return model_from_files(path / MODEL_FILE)
    return _legacy_model(path)


def model_from_files(meta: str | Path) -> Model:
    """A model from its ``.json`` record and the ``.npz`` beside it."""
    from networks import network_from_description

    meta = Path(meta)
    try:
        record = json.loads(meta.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{meta}: not a readable model file ({exc})") from None
    if record.get("format") != MODEL_FORMAT or int(record.get("version", 0)) > MODEL_VERSION:
        raise ValueError(f"{meta}: not an {MODEL_FORMAT} file of version <= {MODEL_VERSION}")
    with np.load(meta.with_name(record.get("params_file", meta.stem + ".npz")), allow_pickle=False) as data:
        params = np.asarray(data["params"], dtype=np.float64)
    spec = network_from_description(record["network"])
    return _model_class(record["outputs"].get("kind"))(spec, params, Preprocessing.from_dict(record.get("preprocessing")), record)


def _legacy_model(run_dir: Path) -> Model:
    """A run directory written before model.json existed: the network from best_trained / best_genome, preprocessing unknown."""
    from networks import network_from_description
    from networks.spec import Decodable

    stem = next((run_dir / s for s in ("best_trained", "best_genome") if (run_dir / f"{s}.json").is_file()), None)
    if stem is None:
        raise ValueError(f"{run_dir}: no model.json (nor best_genome.json) there; is it a run directory? (a comparison holds several)")
    described = json.loads(stem.with_suffix(".json").read_text())
    with np.load(stem.with_suffix(".npz"), allow_pickle=False) as data:
        params = np.asarray(data["params"], dtype=np.float64)
    spec = network_from_description(described["network"])
    if isinstance(spec, Decodable):
        spec, params = spec.decode(params)
    warnings.warn(
        f"{run_dir}: written before models were saved with their preprocessing; inputs are fed to the network as they are",
        stacklevel=3,
    )
    kind = (described.get("task") or {}).get("kind", "regression")
    outputs = {"kind": kind if kind in ("classification", "timeseries") else "regression", "decision": "argmax"}
    return _model_class(outputs["kind"])(spec, params, Preprocessing(n_features=spec.n_inputs), {"outputs": outputs, **described})


def _model_class(kind: str | None) -> type[Model]:
    classes: dict[str | None, type[Model]] = {
        "classification": Classifier,
        "regression": Regressor,
        "control": Controller,
        "timeseries": SeriesPredictor,
    }
    if kind not in classes:
        raise ValueError(f"model outputs.kind = {kind!r}: not known; allowed: {sorted(k for k in classes if k)}")
    return classes[kind]


# ------------------------------------------------------------------ models
class Model:
    """A network with its parameters, preprocessing and output meaning; subclasses answer per kind of task."""

    kind = "model"

    def __init__(self, spec: NetworkSpec, params: np.ndarray, preprocessing: Preprocessing, record: dict[str, Any]) -> None:
        if params.shape != (spec.n_params,):
            raise ValueError(f"model parameters: expected shape ({spec.n_params},), got {params.shape}")
        self.spec = spec
        self.params = params
        self.preprocessing = preprocessing
        self.record = record
        self.outputs_meaning: dict[str, Any] = dict(record.get("outputs", {}))

    @property
    def n_features(self) -> int:
        """Raw features per sample the model reads."""
        return self.preprocessing.n_features or self.spec.n_inputs

    def forward(self, X: np.ndarray) -> np.ndarray:
        """The network's outputs ``(N, n_outputs)`` for raw samples ``(N, ...)`` (preprocessing applied)."""
        return self.spec.predict(self.params, self.preprocessing.apply(X))

    def describe(self) -> str:
        """One line: what the model is."""
        net = self.record.get("network", {})
        return (
            f"{self.kind} model: {net.get('type', '?')} network, {self.spec.n_params} parameters; inputs: {self.preprocessing.describe()}"
        )


class Classifier(Model):
    """Class labels from probabilities (softmax argmax) or from one sigmoid output above a threshold."""

    kind = "classification"

    @property
    def labels(self) -> np.ndarray:
        """The class labels, as integers when every label is one (digits' ``"0".."9"``), else strings."""
        names = self.preprocessing.label_names or tuple(self.outputs_meaning.get("labels") or ())
        if not names:
            names = tuple(str(i) for i in range(max(self.spec.n_outputs, 2)))
        try:
            return np.array([int(n) for n in names])
        except ValueError:
            return np.array(names)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, n_classes)`` (a single sigmoid output ``p`` gives ``[1 - p, p]``)."""
        out = self.forward(X)
        if self.outputs_meaning.get("decision") == "threshold":
            p = out[:, 0]
            return np.stack([1.0 - p, p], axis=1)
        return out

    def predict_index(self, X: np.ndarray) -> np.ndarray:
        """Class indices ``(N,)``: argmax, or ``output > threshold`` for one sigmoid output."""
        out = self.forward(X)
        if self.outputs_meaning.get("decision") == "threshold":
            return (out[:, 0] > float(self.outputs_meaning.get("threshold", 0.5))).astype(np.int64)
        return np.argmax(out, axis=1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class labels ``(N,)`` of raw samples."""
        return self.labels[self.predict_index(X)]


class Regressor(Model):
    """Values in the user's units (the target scaling undone)."""

    kind = "regression"

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``(N,)`` for one output, else ``(N, n_outputs)``."""
        out = self.preprocessing.invert_target(self.forward(X))
        return out[:, 0] if out.shape[1] == 1 else out


class Controller(Model):
    """A policy for the run's gymnasium environment: observation in, action out, state kept between steps."""

    kind = "control"

    def __init__(self, spec: NetworkSpec, params: np.ndarray, preprocessing: Preprocessing, record: dict[str, Any]) -> None:
        super().__init__(spec, params, preprocessing, record)
        o = self.outputs_meaning
        self.env_id: str = o.get("env_id", "")
        self.env_kwargs: dict[str, Any] = dict(o.get("env_kwargs") or {})
        self.max_steps: int | None = o.get("max_steps")
        self.reset()

    def reset(self) -> None:
        """Start a new episode: forget any recurrent state (feedforward networks keep none)."""
        self.state: np.ndarray | None = None

    def actions(self, outputs: np.ndarray) -> np.ndarray:
        """Env actions ``(N, ...)`` from network outputs ``(N, n_outputs)``, as the task mapped them in training."""
        o = self.outputs_meaning
        if o.get("action") == "discrete":
            return outputs.argmax(axis=1) + int(o.get("action_start", 0))
        low, high = np.asarray(o["low"], dtype=np.float64), np.asarray(o["high"], dtype=np.float64)
        scaled = np.clip(low + (outputs + 1.0) * 0.5 * (high - low), low, high)
        return scaled.astype(o.get("dtype", "float32")).reshape((len(outputs), *o.get("shape", [low.size])))

    def act(self, observation: np.ndarray) -> Any:
        """The action for one observation (an int for a discrete space, an array for a box); a batch ``(N, obs)`` gives ``(N, ...)``."""
        obs = np.asarray(observation, dtype=np.float64)
        shape = tuple(self.outputs_meaning.get("observation_shape") or (self.n_features,))
        single = obs.shape == shape
        batch = obs.reshape(1, -1) if single else obs.reshape(len(obs), -1)
        observe = self.outputs_meaning.get("observe")
        if observe is not None:  # the task's observation mask (``task.observe``): the network reads those indices only
            batch = batch[:, np.asarray(observe, dtype=np.intp)]
        actions = self.actions(self.forward(batch))
        if not single:
            return actions
        return int(actions[0]) if self.outputs_meaning.get("action") == "discrete" else actions[0]


class SeriesPredictor(Model):
    """An echo-state network: one-step-ahead predictions over a series, and closed-loop continuation."""

    kind = "timeseries"

    def _series(self, series: np.ndarray) -> np.ndarray:
        u = np.asarray(series, dtype=np.float64)
        u = u.reshape(-1, 1) if u.ndim == 1 else u
        if u.ndim != 2 or u.shape[1] != self.spec.n_inputs:
            raise ValueError(f"series: expected shape (T,) or (T, {self.spec.n_inputs}), got {np.shape(series)}")
        return self.preprocessing.apply(u)

    def predict(self, series: np.ndarray) -> np.ndarray:
        """Prediction of step ``t + 1`` after reading steps ``0..t`` (teacher-forced, from a zero state), in the series' units.

        The first ``washout`` predictions (``outputs["washout"]``) still remember the arbitrary zero start.
        """
        out = self.spec.predict(self.params, self._series(series))
        out = self.preprocessing.invert_target(out)
        return out[:, 0] if out.shape[1] == 1 else out

    def generate(self, series: np.ndarray, steps: int) -> np.ndarray:
        """Read ``series``, then run ``steps`` steps in closed loop (each prediction fed back as the next input)."""
        from networks.esn import ReservoirStack, closed_loop

        if not self.outputs_meaning.get("autonomous", True):
            raise ValueError("generate: this series is driven by another input; the model cannot feed its predictions back")
        u = self._series(series)
        weights = self.spec.weights(self.params)  # type: ignore[attr-defined]
        stack = ReservoirStack([weights])
        states = stack.run(u[None])[0, 0]
        W_out = self.spec.split(self.params)[0]  # type: ignore[attr-defined]
        free = closed_loop(stack, W_out, int(steps), states[-1:], u[-1:])[0]
        out = self.preprocessing.invert_target(free)
        return out[:, 0] if out.shape[1] == 1 else out
