"""Regression on a user's tabular data: identity outputs, fitness = -mean squared error.

The network reads standardised features and predicts standardised targets
(both scalings fitted on the training split, recorded in the run's model, so
a saved network maps raw features to targets in the user's units). Fitness
is minus the mean squared error on the training split (or on one minibatch
per generation, drawn from the generation seed as for classification);
validation and test figures are in the user's units: ``test_mse``,
``test_rmse`` and ``test_r2`` (the coefficient of determination,
scikit-learn's ``r2_score``, averaged over the outputs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from evo.tasks.base import Task
from networks.preprocessing import Preprocessing


@dataclass(frozen=True)
class RegressionSplit:
    """Train / validation / test arrays, features and targets ``(N, outputs)`` both as the network sees them."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    preprocessing: Preprocessing


def regression_split(
    X: np.ndarray, y: np.ndarray, val_fraction: float, test_fraction: float, seed: int, standardize: bool, file_format: dict[str, Any]
) -> RegressionSplit:
    """A fixed random split; features (and targets) standardised on the training rows when ``standardize``."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    if not np.all(np.isfinite(y)):
        raise ValueError("task.path: regression targets contain NaN or infinity")
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=test_fraction, random_state=seed)
    if val_fraction > 0:
        rel = val_fraction / (1.0 - test_fraction)
        X_train, X_val, y_train, y_val = train_test_split(X_rest, y_rest, test_size=rel, random_state=seed)
    else:
        X_train, y_train, X_val, y_val = X_rest, y_rest, X_rest[:0], y_rest[:0]
    if len(X_train) < 2:
        raise ValueError(f"task: the split leaves {len(X_train)} training row(s); regression needs at least 2")
    if standardize:
        features, targets = StandardScaler().fit(X_train), StandardScaler().fit(y_train)
        preprocessing = Preprocessing(
            n_features=X.shape[1],
            offset=features.mean_,
            scale=features.scale_,
            target_offset=targets.mean_,
            target_scale=targets.scale_,
            note="features and targets standardised on the training split (scikit-learn StandardScaler)",
            file_format=file_format,
        )
    else:
        preprocessing = Preprocessing(n_features=X.shape[1], note="features and targets used as they are", file_format=file_format)
    return RegressionSplit(
        preprocessing.apply(X_train),
        preprocessing.apply_target(y_train),
        preprocessing.apply(X_val),
        preprocessing.apply_target(y_val),
        preprocessing.apply(X_test),
        preprocessing.apply_target(y_test),
        preprocessing,
    )


class RegressionTask(Task):
    """Predict real targets with identity outputs; fitness = -MSE in the network's (standardised) units."""

    kind = "regression"
    output_activation = "identity"
    baseline = "backprop_regression"

    def __init__(self, split: RegressionSplit, name: str = "dataset", batch_size: int | None = None) -> None:
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"task.batch_size = {batch_size!r}: must be >= 1 (or omitted for the whole training set)")
        self.split = split
        self.name = name
        self.batch_size = batch_size if batch_size and batch_size < len(split.X_train) else None
        self.n_inputs = int(split.X_train.shape[1])
        self.n_outputs = int(split.y_train.shape[1])

    def _batch(self, network, generation_seed: int) -> tuple[np.ndarray, np.ndarray]:
        X, y = self.as_network_dtype(network, "X_train", self.split.X_train), self.split.y_train
        if self.batch_size is None:
            return X, y
        idx = np.random.default_rng(generation_seed).choice(len(X), size=self.batch_size, replace=False)
        return X[idx], y[idx]

    def evaluate(self, network, genomes, seeds, generation_seed) -> np.ndarray:
        """Minus the mean squared error of each genome on this generation's batch."""
        X, y = self._batch(network, generation_seed)
        out = network.forward(genomes, X)  # (P, B, outputs)
        return -np.mean((out - y[None]) ** 2, axis=(1, 2))

    def _figures(self, network, genome: np.ndarray, X: np.ndarray, y: np.ndarray, prefix: str) -> dict[str, float]:
        """MSE, RMSE and R^2 in the user's units."""
        p = self.split.preprocessing
        predicted = p.invert_target(network.forward(np.asarray(genome)[None], self.as_network_dtype(network, f"X_{prefix}", X))[0])
        truth = p.invert_target(y)
        mse = float(np.mean((predicted - truth) ** 2))
        variance = np.var(truth, axis=0)
        r2 = 1.0 - np.mean((predicted - truth) ** 2, axis=0) / np.where(variance > 0, variance, np.nan)
        return {
            f"{prefix}_mse": mse,
            f"{prefix}_rmse": float(np.sqrt(mse)),
            f"{prefix}_r2": float(np.nanmean(r2)) if np.any(variance > 0) else float("nan"),
            f"{prefix}_samples": int(len(y)),
        }

    def test(self, network, genome, seed) -> dict[str, float]:
        """MSE, RMSE and R^2 on the held-out test split."""
        return self._figures(network, genome, self.split.X_test, self.split.y_test, "test")

    def validate(self, network, genome, seed) -> dict[str, float]:
        """Minus the validation MSE is the score."""
        if len(self.split.y_val) == 0:
            return {}
        figures = self._figures(network, genome, self.split.X_val, self.split.y_val, "val")
        score = -figures["val_mse"]
        return {"val_score": score if np.isfinite(score) else -np.inf, **figures}

    def samples_per_evaluation(self) -> int:
        """Samples each fitness evaluation forwards."""
        return self.batch_size or len(self.split.y_train)

    def preprocessing(self) -> Preprocessing:
        """The standardisation of features and targets (or none)."""
        return self.split.preprocessing

    def outputs(self) -> dict[str, Any]:
        """Real values in the user's units once the target scaling is inverted."""
        return {"kind": "regression", "activation": self.output_activation, "outputs": self.n_outputs}

    def describe(self) -> dict:
        """Name, split sizes and the scaling."""
        s = self.split
        return {
            "name": self.name,
            "kind": self.kind,
            "fitness": "neg_mse",
            "batch_size": self.batch_size,
            "n_train": len(s.y_train),
            "n_val": len(s.y_val),
            "n_test": len(s.y_test),
            "n_features": self.n_inputs,
            "n_outputs": self.n_outputs,
            "preprocessing": s.preprocessing.describe(),
        }
