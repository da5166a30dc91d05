"""Gradient-descent trainer: time per epoch against PyTorch and scikit-learn, and digits accuracy.

Part 1, speed. One epoch of a 64-32-10 MLP (ReLU hidden, softmax output with
cross-entropy), Adam (lr 1e-3), batch 32, shuffled each epoch, on the 1,437
training samples of scikit-learn's digits (pixels / 16; the 80 % part of a
stratified 80/20 split with ``random_state=0``). Best of ``--epochs`` epochs for:

  * ours: ``networks.trainer.Trainer`` (float64 NumPy, no weight decay, no
    validation), the per-epoch ``seconds`` it records;
  * PyTorch on the CPU with ``torch.set_num_threads(1)``, the idiomatic loop
    (``randperm`` + tensor slices, ``zero_grad`` / ``backward`` / ``step``),
    in float32 (its default) and float64 (our precision), when ``import torch``
    works -- it is not a dependency of this project;
  * scikit-learn's ``MLPClassifier(hidden_layer_sizes=(32,), solver='adam',
    batch_size=32, max_iter=1)``, one ``partial_fit`` call (one epoch).

All three run in the same process with BLAS limited to one thread
(threadpoolctl), so the figures compare per-step overheads and kernels on an
equal footing.

Part 2, accuracy. The trainer with its defaults on the project's digits split
(``evo.tasks.datasets.stratified_split(X, y, 0.1, 0.2, 0)``: 1,257 train / 180
validation / 360 test), early stopping on the validation loss; test accuracy
for ``--seeds`` seeds (target >= 0.965).

    python benchmarks/trainer_epoch.py [--epochs 20] [--seeds 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from networks.mlp import MLP  # noqa: E402
from networks.trainer import Trainer  # noqa: E402

LAYERS = (64, 32, 10)
BATCH = 32
LR = 1e-3


def digits_80() -> tuple[np.ndarray, np.ndarray]:
    """The 1,437-sample 80 % part of a stratified 80/20 split of digits (X / 16)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    X, y = data.data / 16.0, data.target
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    return X_train.astype(np.float64), y_train.astype(np.int64)


def time_ours(X: np.ndarray, y: np.ndarray, epochs: int) -> float:
    """Best seconds per epoch of our Trainer."""
    net = MLP(LAYERS, "relu", "softmax")
    trainer = Trainer(net, "cross_entropy", "adam", lr=LR, batch_size=BATCH, epochs=epochs, weight_decay=0.0, patience=None, seed=0)
    trainer.fit(X, y)
    return min(row["seconds"] for row in trainer.history_)


def time_torch(X: np.ndarray, y: np.ndarray, epochs: int, dtype_name: str) -> float | None:
    """Best seconds per epoch of the same training in PyTorch (CPU, 1 thread), or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    torch.manual_seed(0)
    dtype = getattr(torch, dtype_name)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)).to(dtype)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt = torch.as_tensor(X, dtype=dtype)
    yt = torch.as_tensor(y, dtype=torch.long)
    gen = torch.Generator().manual_seed(0)
    n = len(Xt)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(n, generator=gen)
        X_epoch, y_epoch = Xt[order], yt[order]
        for lo in range(0, n, BATCH):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(X_epoch[lo : lo + BATCH]), y_epoch[lo : lo + BATCH])
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return min(times)


def time_sklearn(X: np.ndarray, y: np.ndarray, epochs: int) -> float:
    """Best seconds of one ``partial_fit`` (one epoch) of scikit-learn's MLPClassifier."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(32,), solver="adam", batch_size=BATCH, max_iter=1, learning_rate_init=LR, random_state=0)
    classes = np.unique(y)
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.partial_fit(X, y, classes=classes)  # first call initialises; not timed
        for _ in range(epochs):
            start = time.perf_counter()
            clf.partial_fit(X, y)
            times.append(time.perf_counter() - start)
    return min(times)


def speed(epochs: int) -> None:
    """Part 1: ms per epoch and ratios."""
    X, y = digits_80()
    print(
        f"Part 1: one epoch, {len(X)} digits samples, MLP {'-'.join(map(str, LAYERS))} relu/softmax, Adam, batch {BATCH}, "
        f"best of {epochs} epochs, BLAS and torch on 1 thread"
    )
    ours = time_ours(X, y, epochs)
    sk = time_sklearn(X, y, epochs)
    t32 = time_torch(X, y, epochs, "float32")
    t64 = time_torch(X, y, epochs, "float64") if t32 is not None else None
    print(f"  ours (NumPy float64)          {ours * 1e3:7.2f} ms/epoch")
    if t32 is None:
        print("  PyTorch not installed; skipping the comparison")
    else:
        import torch

        print(f"  PyTorch {torch.__version__} float32   {t32 * 1e3:7.2f} ms/epoch")
        print(f"  PyTorch {torch.__version__} float64   {t64 * 1e3:7.2f} ms/epoch")
    print(f"  scikit-learn MLPClassifier    {sk * 1e3:7.2f} ms/epoch (partial_fit)")
    if t32 is not None:
        print(f"  ours / PyTorch float32 = {ours / t32:.2f}   ours / PyTorch float64 = {ours / t64:.2f}   (target <= 1.0)")
    print(f"  ours / scikit-learn    = {ours / sk:.2f}")


def accuracy(n_seeds: int) -> None:
    """Part 2: test accuracy on the project's digits split with the Trainer's defaults."""
    from evo.tasks.datasets import load_digits, stratified_split

    X, y = load_digits()
    split = stratified_split(X, y, 0.1, 0.2, 0)
    probe = Trainer(MLP(LAYERS, "relu", "softmax"))
    settings = {k: getattr(probe, k) for k in ("optimizer", "lr", "batch_size", "epochs", "weight_decay", "dropout", "patience")}
    print(
        f"\nPart 2: digits split stratified_split(X, y, 0.1, 0.2, 0): {len(split.y_train)} train / "
        f"{len(split.y_val)} val / {len(split.y_test)} test; MLP {'-'.join(map(str, LAYERS))} relu/softmax"
    )
    print(f"  Trainer defaults: {settings} (lr None = Adam's 1e-3)")
    accuracies = []
    for seed in range(n_seeds):
        start = time.perf_counter()
        trainer = Trainer(MLP(LAYERS, "relu", "softmax"), seed=seed).fit(split.X_train, split.y_train, split.X_val, split.y_val)
        acc = trainer.score(split.X_test, split.y_test)
        accuracies.append(acc)
        best = trainer.history_[trainer.best_epoch_ - 1] if trainer.best_epoch_ else {}
        print(
            f"  seed {seed}: test accuracy {acc:.4f}  (best epoch {trainer.best_epoch_}, val accuracy "
            f"{best.get('val_accuracy', float('nan')):.4f}, {len(trainer.history_)} epochs, "
            f"{time.perf_counter() - start:.2f} s)"
        )
    print(f"  test accuracy: mean {np.mean(accuracies):.4f}, min {np.min(accuracies):.4f}  (target >= 0.965)")


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=20, help="epochs timed per contender (best one reported)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds for the accuracy part")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        speed(args.epochs)
        accuracy(args.seeds)


if __name__ == "__main__":
    main()
