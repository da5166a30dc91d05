"""`evo run`: one evolution run, a resumed one, or a seed sweep (``--seeds N``) with an aggregated report."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

from evo.commands.common import Output, add_run_dir_options, config_int, held_out_line, int_in
from evo.config import ConfigError, RunConfig, apply_overrides, load_config, parse_config
from evo.reporters import Reporter, RunInfo, RunState


class AnnounceStart(Reporter):
    """Says where the run directory is as soon as it exists (not only at the end)."""

    def __init__(self, out: Output) -> None:
        self.out = out

    def on_start(self, run: RunInfo, state: RunState) -> None:
        """One line naming the directory."""
        verb = f"resumed at generation {state.generation}" if run.resumed else "started"
        self.out.say(f"run directory: {run.run_dir} ({verb})")


def add_parser(sub: Any) -> None:
    """The `evo run` options."""
    run = sub.add_parser(
        "run",
        help="launch (or resume) an evolution run, or a seed sweep, from a TOML config",
        description=(
            "Evolve a network as the config says and write a run directory "
            "(config.toml, metrics.csv, model.json/.npz, best_genome.npz/.json, fitness.png, summary.json, checkpoint/). "
            "With no CONFIG, runs the embedded default: CartPole-v1 with CMA-ES on a local Ray instance. "
            "With --seeds N, runs seeds SEED..SEED+N-1 into one sweep directory and reports mean ± std."
        ),
    )
    run.add_argument("config", nargs="?", help="path to a run config (.toml); omit for the embedded default")
    run.add_argument("--seed", type=config_int("seed"), help="run seed (same config + seed = same results)")
    run.add_argument("--seeds", type=int_in(1, 1000), help="a seed sweep: N runs with consecutive seeds, one directory each, and a report")
    run.add_argument("--generations", type=config_int("generations"), help="number of generations to run (with --resume: the new total)")
    run.add_argument("--population", type=config_int("strategy.population"), help="individuals per generation")
    run.add_argument(
        "--workers",
        type=config_int("evaluator.workers"),
        help="evaluate on Ray with this many workers (local instance unless --ray-address); may change on --resume",
    )
    run.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="join this Ray cluster (e.g. 127.0.0.1:6379 or 'auto'); RAY_ADDRESS works too; may change on --resume",
    )
    run.add_argument(
        "--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint (or from the start if it has none)"
    )
    add_run_dir_options(run, "the run's summary.json; a sweep's report")


#: `evo run` options that override the config setting of the same name
RUN_OVERRIDES = ("seed", "generations", "population", "workers", "ray_address", "out")


def _config(args: argparse.Namespace) -> RunConfig:
    overrides = {name: getattr(args, name) for name in RUN_OVERRIDES}
    if args.config is None:
        from evo.defaults import DEFAULT_CONFIG_TOML

        return parse_config(apply_overrides(tomllib.loads(DEFAULT_CONFIG_TOML), **overrides))
    return load_config(args.config, **overrides)


def run(args: argparse.Namespace, out: Output) -> int:
    """Run, resume or sweep; a Ctrl-C names the directory to resume."""
    from evo.run import EvolutionRun

    announce = [AnnounceStart(out)]
    if args.resume:
        fixed = {"CONFIG": args.config, "--seed": args.seed, "--seeds": args.seeds, "--population": args.population, "--out": args.out}
        given = [name for name, value in fixed.items() if value is not None]
        if given:
            raise ConfigError(
                f"config error: --resume takes the run's own config; {', '.join(given)} cannot change "
                "(allowed with --resume: --generations, --workers, --ray-address)"
            )
        evolution = EvolutionRun.resume(
            args.resume,
            generations=args.generations,
            progress=not args.no_progress,
            reporters=announce,
            workers=args.workers,
            ray_address=args.ray_address,
        )
    elif args.seeds is not None and args.seeds > 1:
        return _sweep(_config(args), args.seeds, args, out)
    else:
        evolution = EvolutionRun(_config(args), progress=not args.no_progress, reporters=announce)
    try:
        result = evolution.run()
    except KeyboardInterrupt:
        _interrupted(evolution.run_dir, out)
        return 130
    _report(result.summary, result.run_dir, out)
    out.result(result.summary)
    return 0


def _interrupted(run_dir: Path | None, out: Output) -> None:
    if run_dir is None:
        out.say("interrupted before the run directory was written: nothing to resume")
    else:
        out.say(f"interrupted: continue with `evo run --resume {run_dir}` (from its last checkpoint, or from the start if it has none)")


def _report(s: dict[str, Any], run_dir: Path, out: Output) -> None:
    out.say(f"run directory: {run_dir}")
    out.say(
        f"generations {s['generations']}  evaluations {s['evaluations']}  wall {s['wall_seconds']:.1f} s  "
        + (f"best value {s['best_value']:.6g}" if s.get("best_value") is not None else f"best fitness {s['best_fitness']:.6g}")
        + f"  failures {s['failures']}"
    )
    out.say(held_out_line(s))


def _sweep(config: RunConfig, seeds: int, args: argparse.Namespace, out: Output) -> int:
    """``seeds`` runs with consecutive seeds into ``<out>/<name>-seeds-<time>/seed<N>/``, then sweep.json and the report."""
    from evo.files import atomic_write_json, new_run_dir
    from evo.run import EvolutionRun
    from evo.run_report import compare_runs

    configs = [parse_config(apply_overrides(config.to_dict(), seed=config.seed + i)) for i in range(seeds)]
    first = EvolutionRun(configs[0], progress=False)  # builds (validates) before any file is written
    first.task.close()
    sweep_dir = new_run_dir(config.out, f"{config.name}-seeds")
    atomic_write_json(sweep_dir / "sweep.json", {"name": config.name, "seeds": [c.seed for c in configs], "status": "running"})
    out.say(f"sweep directory: {sweep_dir} ({seeds} seeds)")
    run_dirs = []
    for cfg in configs:
        evolution = EvolutionRun(cfg, run_dir=sweep_dir / f"seed{cfg.seed}", progress=not args.no_progress, reporters=[AnnounceStart(out)])
        try:
            result = evolution.run()
        except KeyboardInterrupt:
            _interrupted(evolution.run_dir, out)
            return 130
        out.say(f"seed {cfg.seed}: {held_out_line(result.summary)}")
        run_dirs.append(result.run_dir)
    report, table = compare_runs(run_dirs, sweep_dir, f"{config.name}: {seeds} seeds ({configs[0].seed}..{configs[-1].seed})", kind="sweep")
    atomic_write_json(sweep_dir / "sweep.json", {"name": config.name, "seeds": [c.seed for c in configs], "status": "finished", **report})
    out.say(table)
    out.say(f"sweep directory: {sweep_dir}")
    out.result({"sweep_dir": str(sweep_dir), **report})
    return 0
