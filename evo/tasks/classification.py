"""Supervised classification: digits or a user's dataset, softmax outputs.

Fitness is the mean log-likelihood (negative softmax cross-entropy) or the
accuracy on the training split, on the whole split or on a minibatch drawn
once per generation from the generation seed, so every individual of a
generation is scored on the same samples (common random numbers; chunking
cannot change it). The validation split picks the best genome; the test split
is touched only by :meth:`test`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from evo.tasks.base import Task
from evo.tasks.datasets import Split
from networks.losses import LOG_CLIP, cross_entropy_from_probs
from networks.preprocessing import Preprocessing


class ClassificationTask(Task):
    """Classify feature vectors into ``n_classes`` with a softmax network."""

    kind = "classification"
    output_activation = "softmax"

    def __init__(self, split: Split, name: str = "dataset", fitness: str = "cross_entropy", batch_size: int | None = None) -> None:
        if fitness not in ("cross_entropy", "accuracy"):
            raise ValueError(f"task.fitness = {fitness!r}: allowed 'cross_entropy', 'accuracy'")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"task.batch_size = {batch_size!r}: must be >= 1 (or omitted for the whole training set)")
        self.split = split
        self.name = name
        self.fitness = fitness
        self.batch_size = batch_size if batch_size and batch_size < len(split.X_train) else None
        self.n_inputs = int(split.X_train.shape[1])
        self.n_outputs = int(split.n_classes)
        #: (C, H, W) when the samples are images (what a CNN needs), else None
        self.input_shape = split.image_shape
        # A one-channel image is read by a recurrent network row by row (digits: 8 steps of 8 pixels).
        if split.image_shape is not None and split.image_shape[0] == 1:
            self.sequence_steps = int(split.image_shape[1])

    def _batch(self, network, generation_seed: int) -> tuple[np.ndarray, np.ndarray]:
        X, y = self.as_network_dtype(network, "X_train", self.split.X_train), self.split.y_train
        if self.batch_size is None:
            return X, y
        idx = np.random.default_rng(generation_seed).choice(len(X), size=self.batch_size, replace=False)
        return X[idx], y[idx]

    def evaluate(self, network, genomes, seeds, generation_seed) -> np.ndarray:
        """Mean log-likelihood (or accuracy) of each genome on this generation's batch."""
        X, y = self._batch(network, generation_seed)
        probs = network.forward(genomes, X)  # (P, B, K), in the network's dtype
        if self.fitness == "accuracy":
            return np.mean(np.argmax(probs, axis=2) == y[None], axis=1)
        picked = np.take_along_axis(probs, y[None, :, None], axis=2)[..., 0]
        # The mean accumulates in float64 whatever the network computed in (for float64: as it always did).
        return np.log(np.clip(picked, LOG_CLIP, 1.0)).mean(axis=1, dtype=np.float64)

    def _figures(self, network, genome: np.ndarray, X: np.ndarray, y: np.ndarray, prefix: str) -> dict[str, float]:
        probs = network.forward(np.asarray(genome)[None], self.as_network_dtype(network, f"X_{prefix}", X))[0]
        return {
            f"{prefix}_accuracy": float(np.mean(np.argmax(probs, axis=1) == y)),
            f"{prefix}_loss": cross_entropy_from_probs(probs, y),
            f"{prefix}_samples": int(len(y)),
        }

    def test(self, network, genome, seed) -> dict[str, float]:
        """Accuracy and cross-entropy on the held-out test split."""
        return self._figures(network, genome, self.split.X_test, self.split.y_test, "test")

    def validate(self, network, genome, seed) -> dict[str, float]:
        """Accuracy on the validation split (ties broken by its cross-entropy)."""
        if len(self.split.y_val) == 0:
            return {}
        figures = self._figures(network, genome, self.split.X_val, self.split.y_val, "val")
        return {"val_score": figures["val_accuracy"] - 1e-3 * figures["val_loss"], **figures}

    def samples_per_evaluation(self) -> int:
        """Samples each fitness evaluation forwards."""
        return self.batch_size or len(self.split.y_train)

    def preprocessing(self) -> Preprocessing:
        """The split's recorded scaling (pixels / 16 for digits...), with the image shape and the class names."""
        s = self.split
        base = s.preprocessing if s.preprocessing is not None else Preprocessing(note="features used as they are")
        return replace(base, n_features=self.n_inputs, image_shape=s.image_shape, label_names=s.class_names)

    def outputs(self) -> dict[str, Any]:
        """Class probabilities (softmax): the answer is the class of the largest."""
        return {
            "kind": "classification",
            "decision": "argmax",
            "activation": self.output_activation,
            "labels": list(self.split.class_names),
        }

    def describe(self) -> dict:
        """Name, fitness, split sizes and classes."""
        s = self.split
        return {
            "name": self.name,
            "kind": self.kind,
            "fitness": self.fitness,
            "batch_size": self.batch_size,
            "n_train": len(s.y_train),
            "n_val": len(s.y_val),
            "n_test": len(s.y_test),
            "n_features": self.n_inputs,
            "image_shape": list(s.image_shape) if s.image_shape else None,
            "classes": list(s.class_names),
        }
