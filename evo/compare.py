"""`evo compare`: evolution against its gradient-based (or closed-form) baseline, same footing.

For each seed every method runs on the same architecture, data split and
starting weights:

* labelled tasks: evolution against backprop (the trainer);
* echo-state networks: evolved reservoirs against the standard recipe (a
  random reservoir with default hyperparameters and the ridge readout in
  closed form) and against the recipe's readout trained by gradient descent.
  Each seed also moves the reservoir seed, so the spread over seeds is the
  spread over reservoirs.

The held-out figure of each method's current choice is traced against wall
time and against sample-forward passes (evolution: evaluations × samples
per evaluation; backprop: samples seen × 2 for forward + backward).
Output directory::

    report.md       the table (mean ± std over seeds; NRMSE also as median)
    compare.json    every number, per seed and aggregated
    compare.png     test figure against wall time and sample-forward passes (labelled tasks)
    <method>-seed<N>/   the full run directories
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evo.config import RunConfig, apply_overrides, parse_config
from evo.files import atomic_write_json, atomic_write_text, new_run_dir
from evo.run import EvolutionRun
from evo.train import ESNBaselineRun, TrainingRun

#: metric key -> (column title, number format)
SUPERVISED_METRICS = {
    "test_accuracy": ("test accuracy", "fixed"),
    "test_loss": ("test loss", "sci"),
    "wall_seconds": ("training wall s", "seconds"),
    "sample_forward_passes": ("sample-forward passes", "sci"),
    "n_params": ("parameters", "int"),
}
ESN_METRICS = {
    "test_nrmse": ("one-step test NRMSE", "sci"),
    "test_nrmse_free_run": ("closed-loop NRMSE (horizon)", "sci"),
    "wall_seconds": ("wall s", "seconds"),
    "sample_forward_passes": ("reservoir/readout sample passes", "sci"),
    "n_params": ("trained parameters", "int"),
}


@dataclass
class CompareResult:
    """Where the comparison went and its numbers."""

    out_dir: Path
    report: dict[str, Any]
    table: str


def _stats(values: list[float]) -> dict[str, float]:
    values = [float(v) for v in values]
    return {
        "mean": statistics.fmean(values),
        "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def _seed_configs(config: RunConfig, seeds: int) -> list[RunConfig]:
    out = []
    for i in range(seeds):
        data = apply_overrides(config.to_dict(), seed=config.seed + i)
        if data["network"]["type"] == "esn":
            data["network"]["seed"] = config.network.seed + i  # a new reservoir per seed
        out.append(parse_config(data))
    return out


def compare(config: RunConfig, seeds: int = 1, out: str | Path | None = None, progress: bool = True) -> CompareResult:
    """Run every method over ``seeds`` consecutive seeds and write the report."""
    configs = _seed_configs(config, seeds)
    timeseries = config.task.type == "timeseries"
    # Build (and so validate) everything for the first seed before any file is written.
    EvolutionRun(configs[0], progress=False)
    if not timeseries:
        TrainingRun(configs[0], progress=False)
    out_dir = new_run_dir(out or config.out, f"{config.name}-compare")
    per_seed: list[dict[str, Any]] = []
    traces: dict[str, list[list[dict]]] = {"evolution": [], "backprop": []}
    for cfg in configs:
        evo_run = EvolutionRun(cfg, run_dir=out_dir / f"evolution-seed{cfg.seed}", progress=progress, trace_test=True)
        evo_result = evo_run.run()
        s = evo_result.summary
        row: dict[str, Any] = {"seed": cfg.seed, "evolution": {**_pick(s), "generations": s["generations"], "evaluations": s["evaluations"]}}
        traces["evolution"].append(evo_run.test_trace)
        if timeseries:
            base = ESNBaselineRun(cfg, run_dir=out_dir / f"baselines-seed{cfg.seed}", progress=progress).run().summary
            data = evo_run.task.data
            recipe, gd = base["recipe"], base["gd_readout"]
            row["recipe"] = {**_pick(recipe), "sample_forward_passes": data.val_end}
            row["gd_readout"] = {**_pick(gd), "sample_forward_passes": data.val_end + 2 * gd["samples_seen"], "epochs": gd["epochs"]}
            row["evolution"]["n_params"] = recipe["n_params"] + s["n_params"]  # readout + the evolved genome
        else:
            bp_run = TrainingRun(cfg, run_dir=out_dir / f"backprop-seed{cfg.seed}", progress=progress, trace_test=True)
            bp = bp_run.run().summary
            traces["backprop"].append(bp_run.test_trace)
            row["backprop"] = {**_pick(bp), "epochs": bp["epochs"]}
        per_seed.append(row)
    metrics = ESN_METRICS if timeseries else SUPERVISED_METRICS
    methods = [m for m in ("evolution", "backprop", "recipe", "gd_readout") if m in per_seed[0]]
    aggregate = {
        method: {key: _stats([r[method][key] for r in per_seed if r[method].get(key) is not None]) for key in metrics if per_seed[0][method].get(key) is not None}
        for method in methods
    }
    labels = {
        "evolution": f"evolution ({config.strategy.type})",
        "backprop": f"backprop ({config.train.optimizer})",
        "recipe": "standard recipe (ridge readout)",
        "gd_readout": f"recipe + gradient-descent readout ({config.train.optimizer})",
    }
    report = {
        "name": config.name,
        "seeds": [c.seed for c in configs],
        "task": configs[0].task.model_dump(mode="json"),
        "network": configs[0].network.model_dump(mode="json"),
        "strategy": configs[0].strategy.model_dump(mode="json", exclude_none=True),
        "train": configs[0].train.model_dump(mode="json"),
        "methods": {m: labels[m] for m in methods},
        "sample_forward_passes_counting": (
            "evolution: evaluations x samples (reservoir steps) per evaluation; backprop: samples seen x 2 (forward + backward); "
            "ESN recipe: reservoir steps over washout+train+val; gradient-descent readout: those steps + readout samples seen x 2"
        ),
        "aggregate": aggregate,
        "per_seed": per_seed,
        "traces": traces,
    }
    table = _table(config, methods, labels, metrics, aggregate, per_seed, timeseries)
    atomic_write_json(out_dir / "compare.json", report)
    atomic_write_text(out_dir / "report.md", table)
    if not timeseries:
        _plot(traces, out_dir / "compare.png", config.name)
    return CompareResult(out_dir, report, table)


def _pick(summary: dict[str, Any]) -> dict[str, Any]:
    keys = set(SUPERVISED_METRICS) | set(ESN_METRICS) | {"test_mse"}
    picked = {k: summary[k] for k in keys if k in summary}
    if "test_loss" not in picked and "test_mse" in picked:
        picked["test_loss"] = picked["test_mse"]  # Boolean tasks: squared error is their loss
    return picked


def _format(stat: dict[str, float], kind: str, with_median: bool) -> str:
    if kind == "int":
        return f"{int(stat['mean'])}"
    if kind == "fixed":
        return f"{stat['mean']:.4f} ± {stat['std']:.4f}"
    if kind == "seconds":
        return f"{stat['mean']:.2f} ± {stat['std']:.2f}"
    text = f"{stat['mean']:.3g} ± {stat['std']:.2g}"
    return f"{text} (median {stat['median']:.3g})" if with_median else text


def _table(config, methods, labels, metrics, aggregate, per_seed, timeseries) -> str:
    n = len(per_seed)
    what = "reservoir seeds" if timeseries else "seeds"
    lines = [
        f"# {config.name}: {' vs '.join(labels[m] for m in methods)}",
        "",
        f"Same architecture, split and starting point; mean ± std over {n} {what} ({', '.join(str(r['seed']) for r in per_seed)}).",
        "",
        "| method | " + " | ".join(title for title, _ in metrics.values()) + " |",
        "| --- |" + " --- |" * len(metrics),
    ]
    for m in methods:
        cells = []
        for key, (_, kind) in metrics.items():
            stat = aggregate[m].get(key)
            cells.append("n/a" if stat is None else _format(stat, kind, with_median=timeseries and key.startswith("test_nrmse")))
        lines.append(f"| {labels[m]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Sample-forward passes: evolution counts evaluations × samples per evaluation; backprop counts samples seen × 2 (forward + backward).",
        "",
    ]
    return "\n".join(lines)


def _plot(traces: dict[str, list[list[dict]]], path: Path, name: str) -> None:
    import matplotlib.pyplot as plt

    from evo.plots import save_figure  # also selects the Agg backend

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    colours = {"evolution": "tab:orange", "backprop": "tab:blue"}
    for method, runs in traces.items():
        for i, trace in enumerate(runs):
            if not trace:
                continue
            acc = [r["test_accuracy"] for r in trace]
            label = method if i == 0 else None
            axes[0].plot([max(r["wall_seconds"], 1e-4) for r in trace], acc, color=colours[method], alpha=0.8, lw=1.2, label=label)
            axes[1].plot([max(r["sample_forward_passes"], 1) for r in trace], acc, color=colours[method], alpha=0.8, lw=1.2, label=label)
    for ax, xlabel in zip(axes, ("training wall seconds", "sample-forward passes")):
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.suptitle(f"{name}: evolution vs backprop (test figure of each method's current choice)")
    save_figure(fig, path)
