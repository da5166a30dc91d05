"""Figures written into run directories (matplotlib, no screen needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save_figure(fig, path: str | Path) -> None:
    """Lay out, write through a temporary file (readers never see half a PNG) and close."""
    fig.tight_layout()
    tmp = Path(path).with_name(f".{Path(path).name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def fitness_axis_label(task: dict) -> str:
    """What a run's fitness measures, from its task's description (the y axis of its fitness curve)."""
    kind, fitness = task.get("kind"), task.get("fitness")
    if kind == "control":
        return f"fitness: mean episode return ({task.get('episodes', '?')} episodes)"
    if kind == "timeseries":
        return "fitness: -log10 validation NRMSE (one step)" if fitness == "log_nrmse" else "fitness: -validation NRMSE (one step)"
    labels = {
        "cross_entropy": "fitness: mean log-likelihood of the training labels",
        "accuracy": "fitness: training accuracy",
        "val_accuracy_after_training": "fitness: validation accuracy after training",
        "mse": "fitness: -mean squared error (training)",
    }
    if fitness in labels:
        return labels[fitness]
    if "bits" in task:
        return "fitness: 1 - mean squared error on the truth table"
    return "fitness"


def plot_fitness_curve(rows: list[dict], path: str | Path, title: str, y_label: str = "fitness") -> None:
    """Best, mean ± std and best-so-far fitness per generation; ``y_label`` says what fitness measures."""
    gens = [r["generation"] for r in rows]
    best = [_f(r["best"]) for r in rows]
    mean = [_f(r["mean"]) for r in rows]
    std = [_f(r["std"]) for r in rows]
    best_so_far = [_f(r["best_so_far"]) for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    lo = [m - s for m, s in zip(mean, std)]
    hi = [m + s for m, s in zip(mean, std)]
    ax.fill_between(gens, lo, hi, alpha=0.2, color="tab:blue", label="mean ± std")
    ax.plot(gens, mean, color="tab:blue", lw=1.2, label="mean")
    ax.plot(gens, best, color="tab:orange", lw=1.0, label="best of generation")
    ax.plot(gens, best_so_far, color="tab:red", lw=1.5, ls="--", label="best so far")
    ax.set_xlabel("generation")
    ax.set_ylabel(y_label)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    save_figure(fig, path)


def _f(value) -> float:
    return float("nan") if value is None or value == "" else float(value)


#: what a front's size axis counts, per network type
SIZE_LABELS = {
    "neat": "size: enabled connections",
    "cnn_search": "size: parameters of the decoded CNN",
    "esn": "size: expected recurrent edges of the reservoir",
}
HELD_OUT_LABELS = {
    "test_accuracy": "test accuracy",
    "test_mean_return": "test mean episode return",
    "test_nrmse": "test NRMSE (one step)",
    "test_r2": "test R²",
    "test_mse": "test mean squared error",
}


def plot_pareto_front(rows: list[dict], path: str | Path, title: str, fitness_label: str = "fitness", size_label: str = "size") -> None:
    """The front at a glance: fitness (red steps) and the held-out figure (blue, right axis) against size, each member numbered.

    Member ``#k`` is the model ``evo predict/export RUN_DIR --member k`` uses;
    up and to the left is better (fitter and smaller).
    """
    order = sorted(range(len(rows)), key=lambda i: rows[i]["complexity"])
    sizes = [rows[i]["complexity"] for i in order]
    fitness = [rows[i]["fitness"] for i in order]
    fig, ax = plt.subplots(figsize=(7.5, 4.4), dpi=110)
    ax.step(sizes, fitness, where="post", color="tab:red", alpha=0.5)
    ax.scatter(sizes, fitness, color="tab:red", zorder=3, label=fitness_label)
    for i, x, y in zip(order, sizes, fitness):
        ax.annotate(f"#{i}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color="tab:red")
    ax.set_xlabel(size_label)
    ax.set_ylabel(fitness_label, color="tab:red")
    held_out = next((k for k in HELD_OUT_LABELS if k in rows[0]), None)
    if held_out:
        other = ax.twinx()
        other.plot(sizes, [rows[i][held_out] for i in order], color="tab:blue", marker="s", ls=":", label=HELD_OUT_LABELS[held_out])
        other.set_ylabel(HELD_OUT_LABELS[held_out], color="tab:blue")
        other.legend(loc="lower center", fontsize=8)
    if min(sizes) > 0:  # an empty network (size 0) has no place on a log axis
        ax.set_xscale("log")
    ax.set_title(f"{title}\n{len(rows)} members; better is up and to the left; #k = --member k", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    save_figure(fig, path)


def plot_loss_curve(history: list[dict], path: str | Path, title: str, loss: str = "loss") -> None:
    """Training and (when there is one) validation loss per epoch, on a log scale; nothing for an empty history."""
    if not history:
        return
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    epochs = [r["epoch"] for r in history]
    ax.plot(epochs, [r["train_loss"] for r in history], label="training loss")
    if history[0].get("val_loss") is not None:
        ax.plot(epochs, [r["val_loss"] for r in history], label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel({"cross_entropy": "cross-entropy loss", "mse": "mean squared error"}.get(loss, loss))
    ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)
