"""Architecture search with trained weights: the fitness of a genome is its CNN's accuracy after a short training.

What architecture-search users expect (e.g. Real et al., 2019; Elsken et al.,
2019): each candidate architecture is trained by gradient descent for a small
budget of epochs and scored on the validation split. Here the genome is a
:class:`networks.cnn_search.CNNSearchSpace` genome; it is decoded and trained
by :class:`networks.trainer.Trainer` (Adam, no early stopping) *starting from
the weights it inherited in its slab*, so a mutated child starts where its
parent's genome left off. The trained weights are not written back (the task
only returns fitness): the search is Baldwinian, the genome keeps its
untrained weights and the trained network is recomputed when needed.

Determinism and chunk independence: the fitness of genome ``i`` depends only
on the genome and ``seeds[i]`` (the trainer's seed: minibatch order; the
initial weights come from the genome), never on its chunk-mates or where it
ran. Training is a per-genome loop, unavoidably: each genome trains alone.

The trained network reported by :meth:`ArchitectureTrainingTask.validate` and
:meth:`ArchitectureTrainingTask.test` is trained with ``final_seed`` (default
0; ``None``: the seed the caller passes), so by default the validation and the
test figures describe the *same* trained network, a pure function of the
genome. It is trained once and cached (a small LRU keyed by the genome's bytes
and the seed); :meth:`ArchitectureTrainingTask.trained` returns it for saving.
Because fitness is itself a validation score here, the run loop's choice of
the best genome by validation is not independent of the search; the test
split stays untouched until :meth:`test`.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from typing import Any

import numpy as np

from evo.tasks.base import Task, TrainsWeights
from evo.tasks.classification import ClassificationTask
from networks.cnn import CNN
from networks.preprocessing import Preprocessing
from networks.trainer import Trainer

_LOG_CLIP = 1e-12
#: Weight of the validation loss in the fitness: breaks accuracy ties, never outweighs one sample.
LOSS_TIE_BREAK = 1e-3


class ArchitectureTrainingTask(Task, TrainsWeights):
    """Fitness = validation accuracy (minus ``1e-3`` x validation loss) of each genome's CNN after ``epochs`` of training."""

    def __init__(
        self,
        inner: ClassificationTask,
        epochs: int = 3,
        batch_size: int = 64,
        lr: float = 3e-3,
        max_train: int | None = None,
        weight_decay: float = 0.0,
        final_seed: int | None = 0,
        cache_size: int = 8,
    ) -> None:
        if not isinstance(inner, ClassificationTask):
            raise ValueError(f"arch_training: inner must be a ClassificationTask, got {type(inner).__name__}")
        for name, value in (("epochs", epochs), ("batch_size", batch_size), ("cache_size", cache_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < (0 if name == "cache_size" else 1):
                raise ValueError(f"arch_training: {name} = {value!r}; must be an integer >= {0 if name == 'cache_size' else 1}")
        if max_train is not None and (isinstance(max_train, bool) or not isinstance(max_train, (int, np.integer)) or max_train < 1):
            raise ValueError(f"arch_training: max_train = {max_train!r}; must be an integer >= 1 or None (the whole training split)")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"arch_training: lr = {lr!r}; must be a finite number > 0")
        if (
            isinstance(weight_decay, bool)
            or not isinstance(weight_decay, (int, float))
            or not (math.isfinite(weight_decay) and weight_decay >= 0)
        ):
            raise ValueError(f"arch_training: weight_decay = {weight_decay!r}; must be a finite number >= 0")
        if final_seed is not None and (isinstance(final_seed, bool) or not isinstance(final_seed, (int, np.integer)) or final_seed < 0):
            raise ValueError(f"arch_training: final_seed = {final_seed!r}; must be an integer >= 0 or None")
        if len(inner.split.y_val) == 0:
            raise ValueError("arch_training: the inner task has no validation split (task.val_fraction = 0); fitness is scored on it")
        self.inner = inner
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.max_train = None if max_train is None else int(max_train)
        self.weight_decay = float(weight_decay)
        self.final_seed = None if final_seed is None else int(final_seed)
        self.cache_size = int(cache_size)
        self.name = inner.name
        self.kind = inner.kind
        self.n_inputs = inner.n_inputs
        self.n_outputs = inner.n_outputs
        self.output_activation = inner.output_activation
        self.input_shape = inner.input_shape
        split = inner.split
        # The training split is already shuffled by the stratified split: its first max_train samples are a fixed random subset.
        n = len(split.y_train) if self.max_train is None else min(self.max_train, len(split.y_train))
        self._X_train, self._y_train = split.X_train[:n], split.y_train[:n]
        self._cache: OrderedDict[tuple[bytes, int], tuple[CNN, np.ndarray]] = OrderedDict()

    # ------------------------------------------------------------------ training
    def _train(self, network, genome: np.ndarray, seed: int) -> tuple[CNN, np.ndarray]:
        """Decode a genome and train its CNN from the inherited weights; ``(cnn, trained params)``."""
        cnn, params = network.decode(genome)
        trainer = Trainer(
            cnn,
            loss="cross_entropy",
            optimizer="adam",
            lr=self.lr,
            batch_size=self.batch_size,
            epochs=self.epochs,
            weight_decay=self.weight_decay,
            patience=None,  # a fixed budget: no validation pass per epoch, the last weights are kept
            seed=int(seed),
        )
        trainer.fit(self._X_train, self._y_train, init_params=params)
        return cnn, trainer.params_

    def trained(self, network, genome: np.ndarray, seed: int | None = None) -> tuple[CNN, np.ndarray]:
        """The CNN of a genome and its trained parameters, as :meth:`validate` and :meth:`test` report them (cached).

        ``seed`` is used only when ``final_seed`` is None.
        """
        seed = self.final_seed if self.final_seed is not None else int(seed if seed is not None else 0)
        genome = np.ascontiguousarray(genome, dtype=np.float64)
        key = (hashlib.sha256(genome.tobytes()).digest(), seed)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        result = self._train(network, genome, seed)
        if self.cache_size:
            self._cache[key] = result
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return result

    @staticmethod
    def _figures(cnn: CNN, params: np.ndarray, X: np.ndarray, y: np.ndarray, prefix: str) -> dict[str, float]:
        probs = cnn.forward(params[None], X)[0]
        picked = probs[np.arange(len(y)), y]
        return {
            f"{prefix}_accuracy": float(np.mean(np.argmax(probs, axis=1) == y)),
            f"{prefix}_loss": float(-np.mean(np.log(np.clip(picked, _LOG_CLIP, 1.0)))),
            f"{prefix}_samples": len(y),
        }

    # ------------------------------------------------------------------ Task interface
    def evaluate(self, network, genomes, seeds, generation_seed) -> np.ndarray:
        """Validation accuracy minus ``1e-3`` x validation loss of each genome's CNN after training with ``seeds[i]``."""
        genomes = np.asarray(genomes, dtype=np.float64)
        seeds = np.asarray(seeds).reshape(-1)
        if len(seeds) != len(genomes):
            raise ValueError(f"arch_training: {len(genomes)} genomes but {len(seeds)} seeds")
        split = self.inner.split
        fitness = np.empty(len(genomes))
        for i, genome in enumerate(genomes):
            cnn, params = self._train(network, genome, int(seeds[i]))
            figures = self._figures(cnn, params, split.X_val, split.y_val, "val")
            fitness[i] = figures["val_accuracy"] - LOSS_TIE_BREAK * figures["val_loss"]
        return fitness

    def validate(self, network, genome, seed) -> dict[str, float]:
        """Validation figures of the genome's trained CNN (see :meth:`trained`), with ``val_score`` as fitness defines it."""
        cnn, params = self.trained(network, genome, seed)
        split = self.inner.split
        figures = self._figures(cnn, params, split.X_val, split.y_val, "val")
        return {"val_score": figures["val_accuracy"] - LOSS_TIE_BREAK * figures["val_loss"], **figures}

    def test(self, network, genome, seed) -> dict[str, float]:
        """Test accuracy and cross-entropy of the genome's trained CNN (the same network :meth:`validate` reports)."""
        cnn, params = self.trained(network, genome, seed)
        split = self.inner.split
        return {**self._figures(cnn, params, split.X_test, split.y_test, "test"), "test_n_params": int(cnn.n_params)}

    def preprocessing(self) -> Preprocessing:
        """The inner task's."""
        return self.inner.preprocessing()

    def outputs(self) -> dict[str, Any]:
        """The inner task's."""
        return self.inner.outputs()

    def samples_per_evaluation(self) -> int:
        """Sample passes per fitness evaluation: the training epochs (forward + backward) plus the validation forward."""
        return self.epochs * len(self._y_train) + len(self.inner.split.y_val)

    def describe(self) -> dict[str, Any]:
        """The inner task's description plus the training budget."""
        return {
            **self.inner.describe(),
            "fitness": "val_accuracy_after_training",
            "training": {
                "epochs": self.epochs,
                "batch_size": self.batch_size,
                "lr": self.lr,
                "optimizer": "adam",
                "weight_decay": self.weight_decay,
                "max_train": self.max_train,
                "n_train_used": len(self._y_train),
                "final_seed": self.final_seed,
            },
        }
