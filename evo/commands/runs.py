"""`evo runs [DIR]` lists run directories as a table; `evo show RUN_DIR` prints one of them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from evo.commands.common import Output, add_json, finite
from evo.config import ConfigError


def add_parser(sub: Any) -> None:
    """The `evo runs` and `evo show` options."""
    runs = sub.add_parser(
        "runs",
        help="list the run directories in a folder (default runs/) as a table",
        description=(
            "One line per run directory: name, task, method, status (finished, running, interrupted, killed, incomplete), "
            "generations (or epochs) done / configured, best fitness, headline test figure, wall time. "
            "A comparison or a seed sweep is one line; `evo runs` on it lists its members."
        ),
    )
    runs.add_argument("folder", nargs="?", default="runs", metavar="DIR", help="folder holding run directories (default: runs/)")
    add_json(runs, "a list of runs")
    from evo.commands.common import positive_int
    from evo.service.cli import add_client_options, add_runs_filters

    service = runs.add_argument_group("the service's runs (`evo serve`): any of these lists them instead of a folder")
    service.add_argument("--service", action="store_true", help="list the service's runs (EVO_SERVER, or --server)")
    add_client_options(service)
    add_runs_filters(service, positive_int)
    show = sub.add_parser(
        "show", help="print one run directory: status, figures, model, files", description="Everything a run directory says, in one page."
    )
    show.add_argument("run_dir", metavar="RUN_DIR")
    add_json(show, "the run's row and summary")


def run_runs(args: argparse.Namespace, out: Output) -> int:
    """The table (or JSON list) of runs under a folder, or the service's runs."""
    from evo.runs_index import format_table, list_runs

    if args.service or args.server or args.token or args.status or args.name:
        from evo.service.cli import run_service_command

        return run_service_command(args)

    folder = Path(args.folder)
    if not folder.is_dir():
        raise ConfigError(f"config error: runs: {str(folder)!r} is not a folder")
    rows = list_runs(folder)
    if out.json_mode:
        out.result(finite([{k: v for k, v in r.items() if k != "summary"} for r in rows]))
        return 0
    out.say(format_table(rows) if rows else f"no run directories in {folder}")
    return 0


def run_show(args: argparse.Namespace, out: Output) -> int:
    """One run (or a comparison / sweep: its report and members)."""
    from evo.runs_index import format_table, is_group_dir, is_run_dir, member_dirs, read_run

    path = Path(args.run_dir)
    if path.is_dir() and is_group_dir(path):
        members = [read_run(p) for p in member_dirs(path)]
        report = path / "report.md"
        if out.json_mode:
            data = json.loads((path / ("sweep.json" if (path / "sweep.json").is_file() else "compare.json")).read_text())
            out.result(
                finite({"path": str(path), "report": data, "members": [{k: v for k, v in r.items() if k != "summary"} for r in members]})
            )
            return 0
        out.say(report.read_text() if report.is_file() else f"{path}: no report.md yet")
        out.say(format_table(members))
        return 0
    if not path.is_dir() or not is_run_dir(path):
        raise ConfigError(f"config error: show: {str(path)!r} is not a run directory (no config.toml there)")
    row = read_run(path)
    model = _model_record(path)
    if out.json_mode:
        out.result(finite({**{k: v for k, v in row.items() if k != "summary"}, "summary": row["summary"], "model": model}))
        return 0
    for line in _show_lines(path, row, model):
        out.say(line)
    return 0


def _model_record(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((path / "model.json").read_text())
    except (OSError, ValueError):
        return None


def _show_lines(path: Path, row: dict[str, Any], model: dict[str, Any] | None) -> list[str]:
    from evo.runs_index import format_cell

    s = row["summary"]
    lines = [
        f"run        {path}",
        f"task       {row['task']}",
        f"method     {row['method']}   network {row['network']}   seed {row['seed']}",
        f"status     {format_cell(row, 'status')}   {'epochs' if row['kind'] == 'training' else 'generations'} {format_cell(row, 'generations')}"
        f"   wall {format_cell(row, 'wall')}",
    ]
    if row["best_fitness"] is not None:
        lines.append(f"best       fitness {row['best_fitness']:.6g}" + (f"   evaluations {s['evaluations']}" if "evaluations" in s else ""))
    figures = {k: v for k, v in s.items() if k.startswith(("test_", "val_")) and isinstance(v, (int, float)) and not isinstance(v, bool)}
    if figures:
        lines.append("figures    " + "  ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()))
    if model:
        prep = model.get("preprocessing") or {}
        lines.append(
            f"model      {model['network'].get('type')} network, {model.get('n_params')} parameters, outputs: "
            f"{model['outputs'].get('kind')} ({model.get('source', '')})"
        )
        lines.append(
            f"inputs     {prep.get('note') or 'used as they are'}" + (f", images {prep['image_shape']}" if prep.get("image_shape") else "")
        )
    front = sorted((path / "pareto_models").glob("member-*.json"))
    if front:
        lines.append(f"pareto     {len(front)} members (evo predict/export ... --member K, K = 0..{len(front) - 1})")
    pictures = sorted(p.name for p in path.glob("*.png"))
    if pictures:
        lines.append(f"plots      {', '.join(pictures)}")
    if row["status"] in ("interrupted", "killed", "incomplete", "not started") and row["kind"] == "evolution":
        lines.append(f"resume     evo run --resume {path}")
    return lines
