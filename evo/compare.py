"""`evo compare`: evolution against its gradient-based (or closed-form) baseline, same footing.

For each seed every method runs on the same architecture, data split and
starting weights: evolution, and the baseline the task names
(:mod:`evo.baselines`): backprop (the trainer) for labelled tasks; for
echo-state networks the standard recipe (a random reservoir with default
hyperparameters and the ridge readout in closed form) and the recipe's
readout trained by gradient descent. The baseline also says which metrics
the table shows and what the seeds vary.

The held-out figure of each method's current choice is traced against wall
time and against sample-forward passes (evolution: evaluations × samples
per evaluation; backprop: samples seen × 2 for forward + backward).
Output directory::

    report.md       the table (mean ± std over seeds; NRMSE also as median)
    compare.json    every number, per seed and aggregated
    compare.png     test figure against wall time and sample-forward passes (a closed-form baseline: one point per seed)
    <method>-seed<N>/   the full run directories
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evo.baselines import Baseline, baseline_for, pick_figures
from evo.config import RunConfig, apply_overrides, parse_config
from evo.files import atomic_write_json, atomic_write_text, new_run_dir
from evo.run import EvolutionRun


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


def _seed_configs(config: RunConfig, seeds: int, baseline: Baseline) -> list[RunConfig]:
    return [parse_config(baseline.seed_config(apply_overrides(config.to_dict(), seed=config.seed + i), i)) for i in range(seeds)]


def compare(config: RunConfig, seeds: int = 1, out: str | Path | None = None, progress: bool = True) -> CompareResult:
    """Run every method over ``seeds`` consecutive seeds and write the report."""
    # Build (and so validate) everything for the first seed before any file is written.
    probe = EvolutionRun(config, progress=False)
    baseline = baseline_for(probe.task)
    configs = _seed_configs(config, seeds, baseline)
    baseline.make_run(configs[0], probe.task, progress=False)
    out_dir = new_run_dir(out or config.out, f"{config.name}-compare")
    per_seed: list[dict[str, Any]] = []
    traces: dict[str, list[list[dict]]] = {"evolution": []}
    for cfg in configs:
        evo_run = EvolutionRun(cfg, run_dir=out_dir / f"evolution-seed{cfg.seed}", progress=progress, trace_test=True)
        evo_result = evo_run.run()
        s = evo_result.summary
        row: dict[str, Any] = {
            "seed": cfg.seed,
            "evolution": {**pick_figures(s, baseline.metrics), "generations": s["generations"], "evaluations": s["evaluations"]},
        }
        traces["evolution"].append(evo_run.test_trace)
        figures, method_traces = baseline.compare_rows(cfg, out_dir, progress, s)
        for method, values in figures.items():
            row[method] = {**row.get(method, {}), **values}
        for method, trace in method_traces.items():
            traces.setdefault(method, []).append(trace)
        per_seed.append(row)
    metrics = baseline.metrics
    labels = {"evolution": f"evolution ({config.strategy.type})", **baseline.labels(config)}
    methods = list(labels)
    aggregate = {
        method: {
            key: _stats([r[method][key] for r in per_seed if r[method].get(key) is not None])
            for key in metrics
            if per_seed[0][method].get(key) is not None
        }
        for method in methods
    }
    report = {
        "name": config.name,
        "seeds": [c.seed for c in configs],
        "task": configs[0].task.model_dump(mode="json"),
        "network": configs[0].network.model_dump(mode="json"),
        "strategy": configs[0].strategy.model_dump(mode="json", exclude_none=True),
        "train": configs[0].train.model_dump(mode="json"),
        "methods": labels,
        "sample_forward_passes_counting": baseline.passes_counting,
        "aggregate": aggregate,
        "per_seed": per_seed,
        "traces": traces,
    }
    table = _table(config, methods, labels, aggregate, per_seed, baseline)
    atomic_write_json(out_dir / "compare.json", report)
    atomic_write_text(out_dir / "report.md", table)
    if baseline.plotted_metric is not None:
        # A method with no trace along its run (the ESN recipe: one closed-form fit) is one point per seed.
        points = {
            m: [(r[m].get("wall_seconds"), r[m].get("sample_forward_passes"), r[m].get(baseline.plotted_metric)) for r in per_seed]
            for m in methods
            if not any(traces.get(m, [])) and m in per_seed[0]
        }
        _plot(traces, out_dir / "compare.png", config.name, baseline.plotted_metric, labels, points)
    return CompareResult(out_dir, report, table)


def _format(stat: dict[str, float], kind: str, with_median: bool) -> str:
    if kind == "int":
        return f"{int(stat['mean'])}"
    if kind == "fixed":
        return f"{stat['mean']:.4f} ± {stat['std']:.4f}"
    if kind == "seconds":
        return f"{stat['mean']:.2f} ± {stat['std']:.2f}"
    text = f"{stat['mean']:.3g} ± {stat['std']:.2g}"
    return f"{text} (median {stat['median']:.3g})" if with_median else text


def _table(config: RunConfig, methods: list[str], labels: dict[str, str], aggregate: dict, per_seed: list[dict], baseline: Baseline) -> str:
    n = len(per_seed)
    metrics, what = baseline.metrics, baseline.spread
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
            cells.append("n/a" if stat is None else _format(stat, kind, with_median=key in baseline.median_metrics))
        lines.append(f"| {labels[m]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Sample-forward passes: {baseline.passes_counting}.",
        "",
    ]
    return "\n".join(lines)


def _plot(
    traces: dict[str, list[list[dict]]],
    path: Path,
    name: str,
    metric: str,
    labels: dict[str, str],
    points: dict[str, list[tuple]] | None = None,
) -> None:
    import matplotlib.pyplot as plt

    from evo.plots import HELD_OUT_LABELS, save_figure  # also selects the Agg backend

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    palette = ["tab:orange", "tab:blue", "tab:green", "tab:purple", "tab:brown"]
    colours = {method: palette[i % len(palette)] for i, method in enumerate(labels)}
    for method, runs in traces.items():
        for i, trace in enumerate(runs):
            if not trace:
                continue
            values = [r[metric] for r in trace]
            label = labels.get(method, method) if i == 0 else None
            style = {"color": colours.get(method), "alpha": 0.8, "lw": 1.2, "marker": "o", "markersize": 3, "label": label}
            axes[0].plot([max(r["wall_seconds"], 1e-4) for r in trace], values, **style)
            axes[1].plot([max(r["sample_forward_passes"], 1) for r in trace], values, **style)
    for method, seeds in (points or {}).items():
        kept = [(w, p, v) for w, p, v in seeds if w is not None and p is not None and v is not None]
        if kept:
            style = {"color": colours.get(method), "marker": "D", "s": 36, "zorder": 3, "label": labels.get(method, method)}
            axes[0].scatter([max(w, 1e-4) for w, _, _ in kept], [v for _, _, v in kept], **style)
            axes[1].scatter([max(p, 1) for _, p, _ in kept], [v for _, _, v in kept], **style)
    for ax, xlabel in zip(axes, ("training wall seconds", "sample-forward passes")):
        ax.set_xscale("log")
        if metric in ("test_nrmse", "test_nrmse_free_run", "test_mse", "test_loss"):
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(HELD_OUT_LABELS.get(metric, metric.replace("_", " ")))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{name}: the held-out figure of each method's current choice", fontsize=10)
    save_figure(fig, path)
