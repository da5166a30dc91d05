"""`evo compare`: a config (evolution and its baseline, run now) or finished run directories (any of them, side by side)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from evo.commands.common import Output, add_json, config_int, positive_int
from evo.config import ConfigError, load_config


def add_parser(sub: Any) -> None:
    """The `evo compare` options."""
    comp = sub.add_parser(
        "compare",
        help="evolve and backprop-train one config side by side, or compare finished run directories",
        description=(
            "`evo compare CONFIG.toml`: runs evolution and the task's baseline (backprop; for an ESN its standard recipe) "
            "on the config's architecture, split and seed, and writes report.md (table), compare.json (every number) and "
            "compare.png (test figure against wall time and sample-forward passes) into one directory. "
            "`evo compare RUN_DIR RUN_DIR ...`: compares finished runs (GA against CMA-ES, two seeds, evolution against "
            "backprop) in one report with overlaid curves, written to --out (default: a new runs/compare-<time>/)."
        ),
    )
    comp.add_argument("sources", nargs="+", metavar="CONFIG.toml | RUN_DIR", help="one config, or two or more finished run directories")
    comp.add_argument(
        "--seeds",
        type=positive_int,
        default=1,
        help="(config) repeat both methods over N consecutive seeds and report mean ± std (default 1)",
    )
    comp.add_argument("--seed", type=config_int("seed"), help="(config) first seed")
    comp.add_argument("--generations", type=config_int("generations"), help="(config) evolution generations")
    comp.add_argument("--epochs", type=config_int("train.epochs"), help="(config) backprop maximum epochs")
    comp.add_argument("--iterations", type=config_int("train.iterations"), help="(config) control tasks: policy-gradient updates")
    comp.add_argument("--out", metavar="DIR", help="parent folder of the comparison directory (default: runs/)")
    comp.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_json(comp, "compare.json")


def run(args: argparse.Namespace, out: Output) -> int:
    """Dispatch on what was given: directories or a config."""
    sources = [Path(s) for s in args.sources]
    if all(p.is_dir() for p in sources):
        return _compare_dirs(sources, args, out)
    if len(sources) != 1 or sources[0].is_dir():
        raise ConfigError(
            f"config error: compare: give one CONFIG.toml, or two or more run directories; got {', '.join(map(str, sources))}"
        )
    return _compare_config(args, out)


def _compare_dirs(sources: list[Path], args: argparse.Namespace, out: Output) -> int:
    from evo.files import new_run_dir
    from evo.run_report import compare_runs, finished_runs

    config_only = {
        "--seeds": args.seeds != 1,
        "--seed": args.seed,
        "--generations": args.generations,
        "--epochs": args.epochs,
        "--iterations": args.iterations,
    }
    given = [k for k, v in config_only.items() if v not in (None, False)]
    if given:
        raise ConfigError(f"config error: compare RUN_DIR...: {', '.join(given)} apply to a config only (these runs are finished)")
    if len(sources) < 2:
        raise ConfigError("config error: compare: give two or more run directories (or one CONFIG.toml)")
    try:
        finished_runs(sources)  # every directory checked before anything is written
    except ValueError as exc:
        raise ConfigError(f"config error: compare: {exc}") from None
    out_dir = new_run_dir(args.out or "runs", "compare")
    report, table = compare_runs(sources, out_dir, f"{len(sources)} runs compared")
    out.say(table)
    out.say(f"comparison directory: {out_dir}")
    out.result({"out_dir": str(out_dir), **report})
    return 0


def _compare_config(args: argparse.Namespace, out: Output) -> int:
    from evo.commands.train import with_epochs
    from evo.compare import compare

    config = with_epochs(
        load_config(args.sources[0], seed=args.seed, generations=args.generations, out=args.out), args.epochs, args.iterations
    )
    try:
        result = compare(config, seeds=args.seeds, progress=not args.no_progress)
    except KeyboardInterrupt:
        out.say("interrupted: the comparison stopped; its finished run directories stay; run `evo compare` again for the report")
        return 130
    out.say(result.table)
    out.say(f"comparison directory: {result.out_dir}")
    out.result({"out_dir": str(result.out_dir), **result.report})
    return 0
