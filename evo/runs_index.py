"""Reading run directories without rebuilding anything: what `evo runs`, `evo show` and `evo compare RUN_DIR...` list.

A run directory is recognised by its files: ``config.toml`` with
``summary.json`` (finished), ``status.json`` (written while it runs) or a
checkpoint. A comparison (``compare.json``) or a seed sweep (``sweep.json``)
holds several run directories; it is listed as one line and `evo runs` on it
lists its members. Reading a run opens only small files (the summary, the
status, the config), so hundreds of runs list in well under a second.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from evo.run_status import read_status

#: the held-out figure a run is judged by, per task kind, in order of preference, with its short name
HEADLINE = (
    ("test_accuracy", "accuracy"),
    ("test_mean_return", "return"),
    ("test_nrmse", "NRMSE"),
    ("test_r2", "R2"),
    ("test_mse", "MSE"),
)
COLUMNS = ("name", "task", "method", "status", "generations", "best", "test", "wall")


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def is_run_dir(path: Path) -> bool:
    """A single run's directory (evolution or training)."""
    return (path / "config.toml").is_file() and not is_group_dir(path)


def is_group_dir(path: Path) -> bool:
    """A comparison or a seed sweep: a directory of run directories."""
    return (path / "compare.json").is_file() or (path / "sweep.json").is_file()


def headline(summary: dict[str, Any]) -> tuple[str, float] | None:
    """``(key, value)`` of the run's main held-out figure, if it has one."""
    for key, _ in HEADLINE:
        value = summary.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return key, float(value)
    return None


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """One run's row: name, task, method, status, generations (done / total), best fitness, headline test figure, wall time."""
    run_dir = Path(run_dir)
    config = _toml(run_dir / "config.toml")
    summary = _json(run_dir / "summary.json") or {}
    status = read_status(run_dir) or {}
    task = config.get("task", {})
    task_name = task.get("type", "?")
    if task_name == "control":
        task_name = task.get("env_id", "control")
    elif task_name == "dataset":
        task_name = f"dataset:{Path(str(task.get('path', ''))).name}"
    training = "method" in summary or status.get("kind") == "training"
    if training:
        method = summary.get("method", "backprop")
        optimizer = config.get("train", {}).get("optimizer", "adam")
        if method == "policy_gradient":  # updates, not epochs
            method = f"policy gradient (REINFORCE, {optimizer})"
            total = config.get("train", {}).get("iterations")
            done = summary.get("iterations", status.get("generation"))
        else:
            method = f"backprop ({optimizer})" if method == "backprop" else method
            total = config.get("train", {}).get("epochs")
            done = summary.get("epochs", status.get("generation"))
    else:
        method = f"evolution ({config.get('strategy', {}).get('type', '?')})"
        total = config.get("generations")
        done = summary.get("generations", status.get("generation"))
    if summary:
        state = "finished"
    elif status:
        state = status.get("status", "?")
    else:
        state = "incomplete" if (run_dir / "checkpoint" / "state.json").is_file() else "not started"
    if state != "finished" and done is None:
        checkpoint = _json(run_dir / "checkpoint" / "state.json") or {}
        done = checkpoint.get("generation")
    best = summary.get("best_fitness", status.get("best_fitness"))
    if summary.get("best_value") is not None:  # a function task: its value in the user's sign, not the internal fitness
        best = summary["best_value"]
    figure = headline(summary)
    return {
        "path": str(run_dir),
        "name": run_dir.name,
        "kind": "training" if training else "evolution",
        "task": task_name,
        "network": (config.get("network") or {}).get("type", "none" if (config.get("task") or {}).get("type") == "function" else "mlp"),
        "method": method,
        "seed": config.get("seed"),
        "status": state,
        "stopped_by": summary.get("stopped_by", status.get("stopped_by")),
        "generations": done,
        "total": total,
        "best_fitness": best,
        "test_metric": figure[0] if figure else None,
        "test_value": figure[1] if figure else None,
        "wall_seconds": summary.get("wall_seconds", status.get("wall_seconds")),
        "summary": summary,
    }


def read_group(group_dir: Path) -> dict[str, Any]:
    """A comparison or sweep as one row: its kind, members and (when written) the figures of its report."""
    kind = "sweep" if (group_dir / "sweep.json").is_file() else "comparison"
    members = member_dirs(group_dir)
    return {
        "path": str(group_dir),
        "name": group_dir.name,
        "kind": kind,
        "task": "",
        "network": "",
        "method": f"{kind} of {len(members)} runs",
        "seed": None,
        "status": "finished",
        "stopped_by": None,
        "generations": None,
        "total": None,
        "best_fitness": None,
        "test_metric": None,
        "test_value": None,
        "wall_seconds": None,
        "summary": {},
    }


def member_dirs(group_dir: Path) -> list[Path]:
    """The run directories inside a comparison or sweep (or any folder), sorted by name."""
    return sorted(p for p in Path(group_dir).iterdir() if p.is_dir() and is_run_dir(p))


def list_runs(folder: str | Path) -> list[dict[str, Any]]:
    """Rows for the run directories (and comparisons, sweeps) directly inside ``folder``, oldest name first."""
    folder = Path(folder)
    rows = []
    for path in sorted(folder.iterdir()):
        if not path.is_dir():
            continue
        if is_group_dir(path):
            rows.append(read_group(path))
        elif is_run_dir(path):
            rows.append(read_run(path))
    return rows


def format_cell(row: dict[str, Any], column: str) -> str:
    """One table cell of a run row."""
    if column == "generations":
        done, total = row["generations"], row["total"]
        return "" if done is None and total is None else f"{'?' if done is None else done}/{'?' if total is None else total}"
    if column == "best":
        value = row["best_fitness"]
        return "" if value is None else f"{value:.4g}"
    if column == "test":
        if row["test_value"] is None:
            return ""
        short = dict(HEADLINE)[row["test_metric"]]
        return f"{short} {row['test_value']:.4g}"
    if column == "wall":
        value = row["wall_seconds"]
        return "" if value is None else f"{value:.1f} s"
    if column == "status" and row.get("stopped_by") and row["status"] == "finished":
        return f"finished ({row['stopped_by']})"
    value = row.get(column)
    return "" if value is None else str(value)


def format_table(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> str:
    """A plain-text table with aligned columns."""
    cells = [[format_cell(r, c) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in cells]
    return "\n".join(lines)
