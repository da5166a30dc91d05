"""`evo compare`: evolution against backprop on the same architecture, split and seed.

For each seed both methods run from the same starting weights on the same
train/validation/test split; the held-out figure of each method's current
choice is traced against wall time and against sample-forward passes
(evolution: evaluations x samples per evaluation; backprop: samples seen x 2
for forward + backward). Output directory::

    report.md       the table (mean ± std over seeds)
    compare.json    every number, per seed and aggregated
    compare.png     test figure against wall time and against sample-forward passes
    evolution-seed<N>/, backprop-seed<N>/   the full run directories
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evo.config import RunConfig, apply_overrides, parse_config
from evo.files import atomic_write_json, atomic_write_text, new_run_dir
from evo.run import EvolutionRun
from evo.train import TrainingRun


@dataclass
class CompareResult:
    """Where the comparison went and its numbers."""

    out_dir: Path
    report: dict[str, Any]
    table: str


def _figure_keys(summary: dict[str, Any]) -> tuple[str, str]:
    """The held-out accuracy key and the held-out loss key of a task."""
    return "test_accuracy", ("test_loss" if "test_loss" in summary else "test_mse")


def _mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values) if len(values) > 1 else 0.0}


def compare(config: RunConfig, seeds: int = 1, out: str | Path | None = None, progress: bool = True) -> CompareResult:
    """Run both methods over ``seeds`` consecutive seeds and write the report."""
    configs = [parse_config(apply_overrides(config.to_dict(), seed=config.seed + i)) for i in range(seeds)]
    # Build (and so validate) everything for the first seed before any file is written.
    TrainingRun(configs[0], progress=False)
    EvolutionRun(configs[0], progress=False)
    out_dir = new_run_dir(out or config.out, f"{config.name}-compare")
    per_seed: list[dict[str, Any]] = []
    traces: dict[str, list[list[dict]]] = {"evolution": [], "backprop": []}
    for cfg in configs:
        evo_run = EvolutionRun(cfg, run_dir=out_dir / f"evolution-seed{cfg.seed}", progress=progress, trace_test=True)
        evo_result = evo_run.run()
        bp_run = TrainingRun(cfg, run_dir=out_dir / f"backprop-seed{cfg.seed}", progress=progress, trace_test=True)
        bp_result = bp_run.run()
        traces["evolution"].append(evo_run.test_trace)
        traces["backprop"].append(bp_run.test_trace)
        acc_key, loss_key = _figure_keys(evo_result.summary)
        per_seed.append(
            {
                "seed": cfg.seed,
                "evolution": {
                    "test_accuracy": evo_result.summary[acc_key],
                    "test_loss": evo_result.summary[loss_key],
                    "wall_seconds": evo_result.summary["wall_seconds"],
                    "sample_forward_passes": evo_result.summary["sample_forward_passes"],
                    "n_params": evo_result.summary["n_params"],
                    "generations": evo_result.summary["generations"],
                    "evaluations": evo_result.summary["evaluations"],
                    "run_dir": evo_result.run_dir.name,
                },
                "backprop": {
                    "test_accuracy": bp_result.summary[acc_key],
                    "test_loss": bp_result.summary[loss_key],
                    "wall_seconds": bp_result.summary["wall_seconds"],
                    "sample_forward_passes": bp_result.summary["sample_forward_passes"],
                    "n_params": bp_result.summary["n_params"],
                    "epochs": bp_result.summary["epochs"],
                    "run_dir": bp_result.run_dir.name,
                },
            }
        )
    loss_name = "test_loss" if loss_key == "test_loss" else "test_mse"
    aggregate = {}
    for method in ("evolution", "backprop"):
        aggregate[method] = {
            key: _mean_std([s[method][key] for s in per_seed])
            for key in ("test_accuracy", "test_loss", "wall_seconds", "sample_forward_passes")
        }
        aggregate[method]["n_params"] = per_seed[0][method]["n_params"]
    report = {
        "name": config.name,
        "seeds": [c.seed for c in configs],
        "task": configs[0].task.model_dump(mode="json"),
        "network": configs[0].network.model_dump(mode="json"),
        "strategy": configs[0].strategy.model_dump(mode="json", exclude_none=True),
        "train": configs[0].train.model_dump(mode="json"),
        "loss_reported": loss_name,
        "sample_forward_passes_counting": "evolution: evaluations x samples per evaluation; backprop: samples seen x 2 (forward + backward)",
        "aggregate": aggregate,
        "per_seed": per_seed,
        "traces": traces,
    }
    table = _table(config, aggregate, per_seed, loss_name)
    atomic_write_json(out_dir / "compare.json", report)
    atomic_write_text(out_dir / "report.md", table)
    _plot(traces, out_dir / "compare.png", config.name)
    return CompareResult(out_dir, report, table)


def _fmt(stat: dict[str, float], digits: int = 4, sci: bool = False) -> str:
    if sci:
        return f"{stat['mean']:.3g} ± {stat['std']:.2g}"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def _table(config: RunConfig, aggregate: dict, per_seed: list, loss_name: str) -> str:
    n = len(per_seed)
    lines = [
        f"# {config.name}: evolution ({config.strategy.type}) against backprop ({config.train.optimizer})",
        "",
        f"Same network, split and starting weights; mean ± std over {n} seed(s) ({', '.join(str(s['seed']) for s in per_seed)}).",
        "",
        f"| method | test accuracy | {loss_name.replace('_', ' ')} | training wall s | sample-forward passes | parameters |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for method, label in (("evolution", f"evolution ({config.strategy.type})"), ("backprop", f"backprop ({config.train.optimizer})")):
        a = aggregate[method]
        lines.append(
            f"| {label} | {_fmt(a['test_accuracy'])} | {_fmt(a['test_loss'], sci=True)} | {_fmt(a['wall_seconds'], 2)} | "
            f"{_fmt(a['sample_forward_passes'], sci=True)} | {a['n_params']} |"
        )
    lines += [
        "",
        "Sample-forward passes: evolution counts evaluations × samples per evaluation; backprop counts samples seen × 2 (forward + backward).",
        "",
    ]
    return "\n".join(lines)


def _plot(traces: dict[str, list[list[dict]]], path: Path, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
