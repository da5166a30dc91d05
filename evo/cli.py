"""`evo`: the command line.

    evo run [CONFIG.toml] [--seed N] [--generations N] [--population N]
            [--workers N] [--ray-address ADDR] [--out DIR] [--resume RUN_DIR]
    evo train CONFIG.toml [--seed N] [--epochs N] [--out DIR] [--init-from RUN_DIR]
    evo compare CONFIG.toml [--seeds N] [--seed N] [--generations N] [--epochs N] [--out DIR]
    evo serve | submit | runs | status | watch | stop | cancel | resume | fetch   (the service: see evo.service.cli)

Exit status 0 on success, 2 on bad input (with one line per problem), 1 on
an unexpected error.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Sequence
from typing import NoReturn

from evo.config import ConfigError, apply_overrides, field_bounds, load_config, parse_config
from evo.service.cli import SERVICE_COMMANDS, add_service_commands, run_service_command


def _int_in(low: int, high: int | None = None):
    """An argparse type: an integer in ``[low, high]``, with a one-line error otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is not {'>= ' + str(low) if high is None else f'in [{low}, {high}]'}")
        return value

    return parse


def _config_int(path: str):
    """An argparse type for an option that sets the config field at ``path``: the config's own range."""
    low, high = field_bounds(path)
    return _int_in(int(low) if low is not None else -(2**63), int(high) if high is not None else None)


_positive_int = _int_in(1)
_non_negative_int = _int_in(0)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse already exits 2; keep it one line
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The `evo` argument parser with its subcommands."""
    parser = _Parser(
        prog="evo",
        description="Neuroevolution of NumPy networks: DEAP strategies, population-batched tasks, Ray evaluation.",
        epilog="Run `evo run --help` for the options of a run. Configs live in configs/*.toml (commented).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser(
        "run",
        help="launch (or resume) an evolution run from a TOML config",
        description=(
            "Evolve a network as the config says and write a run directory "
            "(config.toml, metrics.csv, best_genome.npz/.json, fitness.png, summary.json, checkpoint/). "
            "With no CONFIG, runs the embedded default: CartPole-v1 with CMA-ES on a local Ray instance."
        ),
    )
    run.add_argument("config", nargs="?", help="path to a run config (.toml); omit for the embedded default")
    run.add_argument("--seed", type=_config_int("seed"), help="run seed (same config + seed = same results)")
    run.add_argument("--generations", type=_config_int("generations"), help="number of generations to run (with --resume: the new total)")
    run.add_argument("--population", type=_config_int("strategy.population"), help="individuals per generation")
    run.add_argument(
        "--workers",
        type=_config_int("evaluator.workers"),
        help="evaluate on Ray with this many workers (local instance unless --ray-address)",
    )
    run.add_argument("--ray-address", metavar="ADDR", help="join this Ray cluster (e.g. 127.0.0.1:6379 or 'auto'); RAY_ADDRESS works too")
    run.add_argument("--out", metavar="DIR", help="parent folder of the run directory (default: runs/)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--json", action="store_true", help="print summary.json to stdout at the end")

    train = sub.add_parser(
        "train",
        help="train the config's network by backprop on the same task and split",
        description=(
            "Gradient-descent baseline: the config's network, data split and starting weights, trained with the "
            "[train] section's settings (optimizer, lr, batch_size, epochs, weight_decay, dropout, patience). "
            "Writes a run directory like `evo run` (metrics per epoch, best_genome, summary.json with test figures)."
        ),
    )
    train.add_argument("config", help="path to a run config (.toml) with a labelled task (xor, parity, digits, dataset)")
    train.add_argument("--seed", type=_config_int("seed"), help="seed for the starting weights and minibatch order")
    train.add_argument("--epochs", type=_config_int("train.epochs"), help="maximum number of epochs (early stopping may end sooner)")
    train.add_argument("--out", metavar="DIR", help="parent folder of the run directory (default: runs/)")
    train.add_argument("--init-from", metavar="RUN_DIR", help="start from RUN_DIR's best genome (fine-tune an evolved network)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--json", action="store_true", help="print summary.json to stdout at the end")

    comp = sub.add_parser(
        "compare",
        help="evolve and backprop-train the same network on the same split; write a side-by-side report",
        description=(
            "Runs evolution and backprop on the config's architecture, split and seed, and writes report.md "
            "(table), compare.json (every number) and compare.png (test figure against wall time and "
            "sample-forward passes) into one directory."
        ),
    )
    comp.add_argument("config", help="path to a run config (.toml) with a labelled task")
    comp.add_argument(
        "--seeds", type=_positive_int, default=1, help="repeat both methods over N consecutive seeds and report mean ± std (default 1)"
    )
    comp.add_argument("--seed", type=_config_int("seed"), help="first seed")
    comp.add_argument("--generations", type=_config_int("generations"), help="evolution generations")
    comp.add_argument("--epochs", type=_config_int("train.epochs"), help="backprop maximum epochs")
    comp.add_argument("--out", metavar="DIR", help="parent folder of the comparison directory (default: runs/)")
    comp.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_service_commands(sub, _positive_int, _non_negative_int)
    return parser


def _load_run_config(args: argparse.Namespace):
    overrides = dict(
        seed=args.seed,
        generations=args.generations,
        population=args.population,
        workers=args.workers,
        ray_address=args.ray_address,
        out=args.out,
    )
    if args.config is None:
        from evo.defaults import DEFAULT_CONFIG_TOML

        return parse_config(apply_overrides(tomllib.loads(DEFAULT_CONFIG_TOML), **overrides))
    return load_config(args.config, **overrides)


def cmd_run(args: argparse.Namespace) -> int:
    """`evo run`."""
    from evo.run import EvolutionRun

    if args.resume:
        if args.config or any(v is not None for v in (args.seed, args.population, args.workers, args.ray_address, args.out)):
            raise ConfigError("config error: --resume takes the run's own config; only --generations may change")
        run = EvolutionRun.resume(args.resume, generations=args.generations, progress=not args.no_progress)
    else:
        run = EvolutionRun(_load_run_config(args), progress=not args.no_progress)
    result = run.run()
    s = result.summary
    print(f"run directory: {result.run_dir}")
    print(
        f"generations {s['generations']}  evaluations {s['evaluations']}  wall {s['wall_seconds']:.1f} s  "
        f"best fitness {s['best_fitness']:.6g}  failures {s['failures']}"
    )
    _print_figures(s)
    if args.json:
        print(json.dumps(s, indent=2, default=str))
    return 0


def _with_epochs(config, epochs):
    if epochs is None:
        return config
    data = config.to_dict()
    data.setdefault("train", {})["epochs"] = epochs
    return parse_config(data)


def _print_figures(summary: dict) -> None:
    figures = {k: v for k, v in summary.items() if k.startswith("test_") and isinstance(v, (int, float))}
    print("held-out: " + "  ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()))


def cmd_train(args: argparse.Namespace) -> int:
    """`evo train`: the baseline the config's task names (backprop, or an ESN's recipe)."""
    from evo.baselines import baseline_for, make_training_run

    config = _with_epochs(load_config(args.config, seed=args.seed, out=args.out), args.epochs)
    run = make_training_run(config, progress=not args.no_progress, init_from=args.init_from)
    result = run.run()
    s = result.summary
    print(f"run directory: {result.run_dir}")
    for line in baseline_for(run.task).summary_lines(s):
        print(line)
    if args.json:
        print(json.dumps(s, indent=2, default=str))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """`evo compare`."""
    from evo.compare import compare

    config = _with_epochs(load_config(args.config, seed=args.seed, generations=args.generations, out=args.out), args.epochs)
    result = compare(config, seeds=args.seeds, progress=not args.no_progress)
    print(result.table)
    print(f"comparison directory: {result.out_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `evo` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "run":
            return cmd_run(args)
        if args.command == "train":
            return cmd_train(args)
        if args.command in SERVICE_COMMANDS:
            return run_service_command(args)
        if args.command == "compare":
            return cmd_compare(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the last checkpoint can be resumed with `evo run --resume RUN_DIR`", file=sys.stderr)
        return 130
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
