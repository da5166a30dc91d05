"""Loading and splitting labelled datasets: scikit-learn's digits and user files.

User files are ``.npz`` (arrays under ``x_key`` / ``y_key``, default ``X`` and
``y``) or ``.csv`` (one row per sample, the label in ``label_column``, a header
row optional). Splits are stratified and fixed by ``split_seed`` so every run,
evolved or trained, sees the same train / validation / test samples.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Split:
    """A fixed train / validation / test split with integer class labels."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    class_names: tuple[str, ...]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits, pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits as _load

    data = _load()
    return data.data.astype(np.float64) / 16.0, data.target.astype(np.int64)


def load_npz(path: Path, x_key: str = "X", y_key: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """Arrays ``x_key`` and ``y_key`` from an ``.npz`` file (no pickle allowed)."""
    with np.load(path, allow_pickle=False) as data:
        for key in (x_key, y_key):
            if key not in data.files:
                raise ValueError(f"task.path: {str(path)!r} has no array {key!r}; it holds {sorted(data.files)}")
        return np.asarray(data[x_key], dtype=np.float64), np.asarray(data[y_key])


def load_csv(path: Path, label_column: str | int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Numeric features and a label column from a ``.csv`` file, header row optional.

    ``label_column`` is a column index (negative counts from the end) or, when
    the file has a header row, a column name.
    """
    with open(path, newline="") as fh:
        rows = [row for row in csv.reader(fh) if row and any(cell.strip() for cell in row)]
    if not rows:
        raise ValueError(f"task.path = {str(path)!r}: the file is empty")
    width = len(rows[0])
    if isinstance(label_column, str):
        # A name needs a header row: the first row.
        if label_column not in [c.strip() for c in rows[0]]:
            raise ValueError(f"task.label_column = {label_column!r}: no such column; the first row is {rows[0]}")
        col = [c.strip() for c in rows[0]].index(label_column)
        rows = rows[1:]
    else:
        if not -width <= label_column < width:
            raise ValueError(f"task.label_column = {label_column}: out of range for {width} columns")
        col = label_column % width
        if not _is_numeric(cell for i, cell in enumerate(rows[0]) if i != col):
            rows = rows[1:]  # a header row
    labels, features = [], []
    for line_no, row in enumerate(rows, start=1):
        if len(row) != width:
            raise ValueError(f"task.path = {str(path)!r}: data row {line_no} has {len(row)} columns, expected {width}")
        labels.append(row[col].strip())
        try:
            features.append([float(cell) for i, cell in enumerate(row) if i != col])
        except ValueError as exc:
            raise ValueError(f"task.path = {str(path)!r}: data row {line_no}: non-numeric feature ({exc})") from None
    if not features:
        raise ValueError(f"task.path = {str(path)!r}: no data rows")
    return np.asarray(features, dtype=np.float64), np.asarray(labels)


def _is_numeric(cells) -> bool:
    try:
        for cell in cells:
            float(cell)
    except ValueError:
        return False
    return True


def load_dataset_file(path: str | Path, x_key: str = "X", y_key: str = "y", label_column: str | int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Dispatch on the file suffix; raises ValueError naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"task.path = {str(path)!r}: file does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        X, y = load_npz(path, x_key, y_key)
    elif suffix == ".csv":
        X, y = load_csv(path, label_column)
    else:
        raise ValueError(f"task.path = {str(path)!r}: unsupported format {suffix!r}; allowed: .npz, .csv")
    X = X.reshape(len(X), -1)
    if len(X) != len(y):
        raise ValueError(f"task.path = {str(path)!r}: {len(X)} samples but {len(y)} labels")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"task.path = {str(path)!r}: features contain NaN or infinity")
    return X, y


def encode_labels(y: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Map arbitrary labels to 0..K-1 (sorted order) and return the class names."""
    classes, codes = np.unique(y, return_inverse=True)
    return codes.astype(np.int64), tuple(str(c) for c in classes)


def stratified_split(
    X: np.ndarray, y: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> Split:
    """Fixed stratified split into train / validation / test."""
    from sklearn.model_selection import train_test_split

    codes, names = encode_labels(y)
    if len(names) < 2:
        raise ValueError("task: the dataset has fewer than 2 classes")
    counts = np.bincount(codes)
    stratify = codes if counts.min() >= 3 else None
    X_rest, X_test, y_rest, y_test = train_test_split(X, codes, test_size=test_fraction, random_state=seed, stratify=stratify)
    if val_fraction > 0:
        rel = val_fraction / (1.0 - test_fraction)
        strat_rest = y_rest if stratify is not None else None
        X_train, X_val, y_train, y_val = train_test_split(X_rest, y_rest, test_size=rel, random_state=seed, stratify=strat_rest)
    else:
        X_train, y_train = X_rest, y_rest
        X_val, y_val = X_rest[:0], y_rest[:0]
    return Split(X_train, y_train, X_val, y_val, X_test, y_test, len(names), names)
