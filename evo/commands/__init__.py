"""The `evo` subcommands, one module each: ``add_parser(subparsers)`` declares it, ``run(args, out)`` carries it out.

:mod:`evo.cli` is the dispatcher; adding a command is adding a module here
and its name to :data:`COMMANDS`. Every command takes ``--json``: then
standard output carries one JSON document and nothing else (the human lines
go to standard error, see :class:`evo.commands.common.Output`).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from types import ModuleType

#: command name -> "module:function" under evo.commands (a module's add_parser declares all of its commands)
COMMANDS: dict[str, str] = {
    "run": "run:run",
    "train": "train:run",
    "compare": "compare:run",
    "predict": "predict:run",
    "rollout": "rollout:run",
    "export": "export:run",
    "runs": "runs:run_runs",
    "show": "runs:run_show",
}


def command_module(name: str) -> ModuleType:
    """The module that implements command ``name``."""
    return import_module(f"evo.commands.{COMMANDS[name].partition(':')[0]}")


def command_function(name: str) -> Callable[..., int]:
    """The function that carries out command ``name``: ``f(args, out) -> exit status``."""
    function: Callable[..., int] = getattr(command_module(name), COMMANDS[name].partition(":")[2])
    return function
