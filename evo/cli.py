"""`evo`: the command line, a thin dispatcher over :mod:`evo.commands` (one module per command).

    evo run [CONFIG.toml] [--seed N] [--seeds N] [--generations N] [--population N]
            [--workers N] [--ray-address ADDR] [--out DIR] [--resume RUN_DIR]
    evo train CONFIG.toml [--seed N] [--epochs N] [--out DIR] [--init-from RUN_DIR]
    evo compare CONFIG.toml [--seeds N] [--seed N] [--generations N] [--epochs N] [--out DIR]
    evo compare RUN_DIR RUN_DIR ... [--out DIR]
    evo predict RUN_DIR INPUT.csv|.npz [--out predictions.csv] [--member K]
    evo rollout RUN_DIR [--episodes N] [--seed N] [--video FILE.mp4|.gif]
    evo export RUN_DIR --format onnx [--out model.onnx]
    evo runs [DIR]                      (with --server/--status/--name/--service: the service's runs)
    evo show RUN_DIR
    evo serve | submit | status | watch | stop | cancel | resume | fetch   (the service: see evo.service.cli)

Every command takes ``--json``: standard output then holds one JSON document
and nothing else. Exit status 0 on success, 2 on bad input (with one line per
problem), 1 on an unexpected error, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from evo.commands import COMMANDS, command_function, command_module
from evo.commands.common import Output, int_in, positive_int
from evo.config import ConfigError
from evo.service.cli import SERVICE_COMMANDS, add_service_commands, run_service_command


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse already exits 2; keep it one line
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The `evo` argument parser with its subcommands."""
    parser = _Parser(
        prog="evo",
        description="Neuroevolution of NumPy networks: DEAP strategies, population-batched tasks, Ray evaluation.",
        epilog="Run `evo COMMAND --help` for a command's options. Configs live in configs/*.toml (commented).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    added: set[str] = set()
    for name in COMMANDS:
        module = command_module(name)
        if module.__name__ not in added:  # a module may add several commands (runs and show)
            module.add_parser(sub)
            added.add(module.__name__)
    add_service_commands(sub, positive_int, int_in(0), exclude=tuple(COMMANDS))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `evo` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    out = Output(getattr(args, "json", False))
    try:
        if args.command not in COMMANDS and args.command in SERVICE_COMMANDS:
            return run_service_command(args)
        return int(command_function(args.command)(args, out))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a command that can be resumed says how itself
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
