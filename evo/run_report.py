"""`evo compare RUN_DIR RUN_DIR ...` and the seed sweep's report: finished runs side by side, curves overlaid.

Any finished runs can be compared: GA against CMA-ES, two seeds, evolution
against backprop. Runs with the same method (and network) form a group,
reported as mean ± std over its members. The curves put every run's
validation figure against wall time and against sample-forward passes, and
evolution's best-so-far fitness against the generation. Output::

    report.md      one row per run, then one per group (mean ± std)
    compare.json   every number
    compare.png    the overlaid curves
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evo.files import atomic_write_json, atomic_write_text
from evo.reporters import read_csv_numbers
from evo.runs_index import HEADLINE, is_run_dir, read_run

#: validation figure per headline test figure: its column and the axis label
VALIDATION = {
    "test_accuracy": ("val_accuracy", "validation accuracy"),
    "test_mean_return": ("val_mean_return", "validation mean episode return"),
    "test_nrmse": ("val_nrmse", "validation NRMSE (one step)"),
    "test_r2": ("val_r2", "validation R²"),
    "test_mse": ("val_mse", "validation mean squared error"),
}
LOWER_IS_BETTER = {"test_nrmse", "test_mse", "test_loss"}


def finished_runs(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Rows of the given run directories; ValueError naming any that is not a finished run."""
    rows = []
    for path in map(Path, paths):
        if not path.is_dir() or not is_run_dir(path):
            raise ValueError(f"{path}: not a run directory (no config.toml there, or a comparison of several)")
        row = read_run(path)
        if row["status"] != "finished":
            raise ValueError(f"{path}: the run is {row['status']}, not finished (resume it with `evo run --resume {path}`)")
        rows.append(row)
    return rows


def _label(row: dict[str, Any], networks: set[str]) -> str:
    return row["method"] + (f", {row['network']}" if len(networks) > 1 else "")


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.pstdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def compare_runs(
    paths: Sequence[str | Path], out_dir: Path, title: str | None = None, kind: str = "comparison"
) -> tuple[dict[str, Any], str]:
    """Write report.md, compare.json and compare.png for finished runs into ``out_dir``; return the report and its table."""
    rows = finished_runs(paths)
    networks = {r["network"] for r in rows}
    tasks = sorted({r["task"] for r in rows})
    metric = next((key for key, _ in HEADLINE if all(r["summary"].get(key) is not None for r in rows)), None)
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(_label(row, networks), []).append(row)
    keys = [k for k in (metric, "best_fitness", "wall_seconds", "sample_forward_passes", "n_params") if k]
    aggregate: dict[str, dict[str, Any]] = {}
    for label, members in groups.items():
        aggregate[label] = {}
        for key in keys:
            values = [float(m["summary"][key]) for m in members if isinstance(m["summary"].get(key), (int, float))]
            if values:
                aggregate[label][key] = _stats(values)
    report = {
        "kind": kind,
        "title": title or f"{len(rows)} runs",
        "tasks": tasks,
        "headline": metric,
        "runs": [{k: v for k, v in r.items() if k != "summary"} | {"figures": _figures(r["summary"])} for r in rows],
        "groups": {label: [m["path"] for m in members] for label, members in groups.items()},
        "aggregate": aggregate,
    }
    table = _table(report, rows, groups, networks, metric)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "compare.json", report)
    atomic_write_text(out_dir / "report.md", table)
    plot_runs(rows, groups, networks, metric, out_dir / "compare.png", str(report["title"]))
    return report, table


def _figures(summary: dict[str, Any]) -> dict[str, Any]:
    keep = ("best_fitness", "wall_seconds", "evaluations", "sample_forward_passes", "n_params", "generations", "epochs", "iterations")
    return {
        k: v for k, v in summary.items() if (k.startswith("test_") or k in keep) and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def _number(value: Any, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _table(report: dict, rows: list[dict], groups: dict[str, list[dict]], networks: set[str], metric: str | None) -> str:
    lines = [f"# {report['title']}", ""]
    if len(report["tasks"]) > 1:
        lines += [f"Note: these runs are on different tasks ({', '.join(report['tasks'])}); their figures do not compare directly.", ""]
    head = metric.replace("test_", "test ") if metric else "test"
    better = " (lower is better)" if metric in LOWER_IS_BETTER else ""
    lines += [
        f"| run | method | seed | {head}{better} | best fitness | generations / epochs | wall s | parameters |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        s = r["summary"]
        steps = s.get("generations", s.get("epochs", s.get("iterations")))
        lines.append(
            f"| {r['name']} | {_label(r, networks)} | {_number(r['seed'])} | {_number(s.get(metric) if metric else None)} | "
            f"{_number(s.get('best_fitness'))} | {_number(steps)} | {_number(s.get('wall_seconds'), 3)} | {_number(s.get('n_params'))} |"
        )
    lines += ["", f"Per method, mean ± std over its runs ({'; '.join(f'{k}: {len(v)}' for k, v in groups.items())}):", ""]
    lines += [f"| method | {head} | best fitness | wall s |", "| --- | --- | --- | --- |"]
    for label, stats in report["aggregate"].items():
        cells = []
        for key in (metric, "best_fitness", "wall_seconds"):
            st = stats.get(key) if key else None
            cells.append("n/a" if not st else f"{st['mean']:.4g} ± {st['std']:.2g}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ curves
def _curves(row: dict[str, Any], metric: str | None) -> dict[str, list]:
    """Validation figure against wall time and passes, and best-so-far fitness against generation, from the run's CSV files."""
    run_dir, s = Path(row["path"]), row["summary"]
    column = VALIDATION.get(metric or "", (None, None))[0]
    out: dict[str, list] = {"wall": [], "passes": [], "value": [], "generation": [], "best_so_far": []}
    try:
        metrics = read_csv_numbers(run_dir / "metrics.csv")
    except (OSError, ValueError):
        return out
    if row["kind"] == "training":
        for m in metrics:
            if column and m.get(column) is not None:
                out["wall"].append(m.get("wall_seconds"))
                out["passes"].append(m.get("sample_forward_passes"))
                out["value"].append(m[column])
        return out
    per_eval = (s.get("sample_forward_passes") or 0) / max(s.get("evaluations") or 1, 1)
    by_gen = {int(m["generation"]): m for m in metrics}
    out["generation"] = list(by_gen)
    out["best_so_far"] = [m.get("best_so_far") for m in by_gen.values()]
    try:
        validations = read_csv_numbers(run_dir / "validation.csv")
    except (OSError, ValueError):
        validations = []
    for v in validations:
        at = by_gen.get(int(v["generation"]))
        if at is not None and column and v.get(column) is not None:
            out["wall"].append(at.get("wall_seconds"))
            out["passes"].append((at.get("evaluations") or 0) * per_eval)
            out["value"].append(v[column])
    return out


def plot_runs(rows: list[dict], groups: dict[str, list[dict]], networks: set[str], metric: str | None, path: Path, title: str) -> None:
    """Validation figure vs wall seconds and vs sample-forward passes; best-so-far fitness vs generation (evolution)."""
    import matplotlib.pyplot as plt

    from evo.plots import fitness_axis_label, save_figure

    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colour = {label: colours[i % len(colours)] for i, label in enumerate(groups)}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), dpi=100)
    y_label = VALIDATION.get(metric or "", (None, "validation figure"))[1]
    seen: set[str] = set()
    for row in rows:
        label = _label(row, networks)
        c = _curves(row, metric)
        legend = None if label in seen else label
        seen.add(label)
        if c["value"]:
            axes[0].plot([max(w or 0, 1e-4) for w in c["wall"]], c["value"], color=colour[label], lw=1.2, alpha=0.85, label=legend)
            axes[1].plot([max(p or 0, 1) for p in c["passes"]], c["value"], color=colour[label], lw=1.2, alpha=0.85, label=legend)
        if c["generation"]:
            axes[2].plot(c["generation"], c["best_so_far"], color=colour[label], lw=1.2, alpha=0.85, label=legend)
    for ax, xlabel in zip(axes[:2], ("wall seconds", "sample-forward passes")):
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(y_label)
        if metric in LOWER_IS_BETTER:
            ax.set_yscale("log")
    axes[2].set_xlabel("generation")
    kinds = {row["summary"].get("task", {}).get("kind") for row in rows if row["kind"] == "evolution"}
    axes[2].set_ylabel(fitness_axis_label(rows[0]["summary"].get("task", {})) if len(kinds) == 1 else "fitness (best so far)")
    axes[2].set_title("evolution: best so far", fontsize=9)
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    save_figure(fig, path)
