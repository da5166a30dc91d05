"""`evo predict RUN_DIR INPUT.csv|.npz`: the saved model on new data, preprocessing applied; accuracy when the file has labels.

Classification prints (or writes) one row per sample: the predicted label and
each class's probability; regression the predicted values; an echo-state
network reads a series and predicts each next step. Labels are found as the
run's own data file had them: the ``label_column`` of a CSV with one column
more than the model reads, the ``y`` array of an ``.npz``.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from evo.commands.common import Output, add_json, finite, int_in
from evo.config import ConfigError


def add_parser(sub: Any) -> None:
    """The `evo predict` options."""
    predict = sub.add_parser(
        "predict",
        help="run a saved model on new data (CSV or NPZ); prints or writes predictions, and accuracy when labelled",
        description=(
            "Loads RUN_DIR's model (network, parameters, the input preprocessing the task used, label names) and predicts "
            "for every sample of INPUT: a .csv (one sample per row, a header optional; a column more than the model reads "
            "holds labels) or an .npz (features under the run's x_key, default X; labels under y_key, default y). "
            "Raw inputs: the model applies the preprocessing itself (e.g. the digits' division by 16)."
        ),
    )
    predict.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (or a model.json)")
    predict.add_argument("input", metavar="INPUT", help="samples to predict: .csv or .npz")
    predict.add_argument("--out", metavar="FILE.csv", help="write the predictions here instead of printing them")
    predict.add_argument("--member", type=int_in(0), metavar="K", help="use Pareto-front member K (see `evo show RUN_DIR`)")
    predict.add_argument("--label-column", metavar="COL", help="CSV column holding the labels (name or index; default: the run's)")
    add_json(predict, "the predictions and figures")


def run(args: argparse.Namespace, out: Output) -> int:
    """Load, read, predict, report."""
    from networks.model import Classifier, Controller, SeriesPredictor, load_model

    try:
        model = load_model(args.run_dir, member=args.member)
    except ValueError as exc:
        raise ConfigError(f"config error: RUN_DIR: {exc}") from None
    if isinstance(model, Controller):
        raise ConfigError(
            f"config error: RUN_DIR: {args.run_dir} holds a control policy for {model.env_id}; use `evo rollout {args.run_dir}`"
        )
    try:
        if isinstance(model, SeriesPredictor):
            header, table, figures = _predict_series(model, Path(args.input))
        else:
            X, y = read_samples(Path(args.input), model, args.label_column)
            header, table, figures = _predict_samples(model, X, y, isinstance(model, Classifier))
    except ValueError as exc:
        raise ConfigError(f"config error: {str(exc).replace('task.path', 'INPUT').replace('task.column', 'INPUT')}") from None
    figures = {"samples": len(table), **figures}
    if args.out:
        from evo.files import atomic_write_text

        atomic_write_text(args.out, _csv(header, table))
        out.say(f"predictions: {args.out} ({len(table)} rows)")
    elif not out.json_mode:
        out.say(_csv(header, table).rstrip("\n"))
    out.say("  ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()))
    out.result(finite({**figures, "columns": header, "predictions": table if not args.out else None, "out": args.out}))
    return 0


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


# ------------------------------------------------------------------ reading
def read_samples(path: Path, model: Any, label_column: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Features ``(N, ...)`` and labels (or None) from a CSV or NPZ, laid out as the run's own data file was."""
    from evo.tasks.datafiles import data_file_format, read_csv, read_npz

    kind = data_file_format(path, field="INPUT")
    layout = model.preprocessing.file_format or {}
    if kind == "npz":
        x_keys = tuple(dict.fromkeys((layout.get("x_key", "X"), "X", "x", "inputs")))
        y_keys = tuple(dict.fromkeys((layout.get("y_key", "y"), "y", "labels", "targets")))
        (X,) = read_npz(path, x_keys, field="INPUT")
        with np.load(path, allow_pickle=False) as data:
            found = next((k for k in y_keys if k in data.files), None)
            y = np.asarray(data[found]) if found else None
        return np.asarray(X, dtype=np.float64), y
    with open(path, newline="") as fh:
        first = next((row for row in csv.reader(fh) if row and any(c.strip() for c in row)), None)
    if first is None:
        raise ValueError(f"INPUT = {str(path)!r}: the file is empty")
    width, n = len(first), model.n_features
    if width == n and label_column is None:
        table = read_csv(path, 0, "INPUT", text_column=False)
        return np.asarray([[float(c) for c in row] for row in table.rows]), None
    if width != n + 1:
        raise ValueError(f"INPUT = {str(path)!r}: {width} columns; the model reads {n} features (plus, optionally, one label column)")
    column: str | int = layout.get("label_column", -1) if label_column is None else label_column
    if isinstance(column, str) and column.lstrip("-").isdigit():
        column = int(column)
    table = read_csv(path, column, "--label-column", text_column=True)
    return table.other_floats(), table.picked()


def _same_label(value: Any) -> str:
    """A label as text, numbers normalised (``3``, ``3.0`` and ``"3"`` are one label)."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else repr(number)


# ------------------------------------------------------------------ predicting
def _predict_samples(model: Any, X: np.ndarray, y: np.ndarray | None, classify: bool) -> tuple[list[str], list[list[Any]], dict[str, Any]]:
    figures: dict[str, Any] = {}
    if classify:
        proba = model.predict_proba(X)
        labels = model.labels
        predicted = labels[model.predict_index(X)]
        names = [str(v) for v in labels]
        header = ["prediction"] + [f"p_{name}" for name in names] + (["label"] if y is not None else [])
        rows = [[p] + [float(v) for v in row] for p, row in zip(predicted.tolist(), proba)]
        if y is not None:
            truth = [_same_label(v) for v in y]
            for row, t in zip(rows, truth):
                row.append(t)
            correct = [_same_label(p) == t for p, t in zip(predicted, truth)]
            figures["accuracy"] = float(np.mean(correct))
            unknown = sorted(set(truth) - {_same_label(n) for n in names})
            if unknown:
                figures["unknown_labels"] = ", ".join(unknown[:5])
        return header, rows, figures
    values = np.asarray(model.predict(X), dtype=np.float64)
    values = values.reshape(len(values), -1)
    header = [f"prediction_{i}" for i in range(values.shape[1])] if values.shape[1] > 1 else ["prediction"]
    rows = [list(map(float, v)) for v in values]
    if y is not None:
        target = np.asarray(y, dtype=np.float64).reshape(len(values), -1)
        err = values - target
        figures["mse"] = float(np.mean(err**2))
        var = float(np.var(target))
        figures["r2"] = 1.0 - figures["mse"] / var if var > 0 else math.nan
        header += ["target"] if target.shape[1] == 1 else [f"target_{i}" for i in range(target.shape[1])]
        for row, values in zip(rows, target):
            row.extend(map(float, values))
    return header, rows, figures


def _predict_series(model: Any, path: Path) -> tuple[list[str], list[list[Any]], dict[str, Any]]:
    from evo.tasks.series import load_series

    series = load_series(path)
    predicted = np.asarray(model.predict(series), dtype=np.float64).reshape(len(series), -1)[:, 0]
    rows = [[t, float(u), float(p)] for t, (u, p) in enumerate(zip(series, predicted))]
    figures: dict[str, Any] = {}
    washout = int(model.outputs_meaning.get("washout", 0))
    if model.outputs_meaning.get("autonomous") and len(series) > washout + 2:
        # The series predicts itself: prediction t is for value t + 1, scored after the washout.
        guess, truth = predicted[washout:-1], series[washout + 1 :]
        figures["nrmse_one_step"] = float(np.sqrt(np.mean((guess - truth) ** 2) / np.var(truth)))
        figures["scored_from_step"] = washout + 1
    return ["step", "value", "prediction_next"], rows, figures
