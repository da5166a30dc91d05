"""What every command shares: the JSON-or-human output, argparse types and the parser class."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from evo.config import field_bounds


class Output:
    """Where a command's words go: human lines to stdout, or with ``--json`` to stderr while stdout gets only the JSON."""

    def __init__(self, json_mode: bool = False) -> None:
        self.json_mode = bool(json_mode)

    def say(self, line: str = "") -> None:
        """A line for people (stderr under ``--json``)."""
        print(line, file=sys.stderr if self.json_mode else sys.stdout, flush=True)

    def result(self, document: Any) -> None:
        """The command's JSON document on stdout (only under ``--json``)."""
        if self.json_mode:
            print(json.dumps(document, indent=2, default=_default, allow_nan=False), flush=True)


def _default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def finite(obj: Any) -> Any:
    """JSON-safe: NaN and infinities become null (strict JSON has no words for them)."""
    import math

    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def int_in(low: int, high: int | None = None):
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


def config_int(path: str):
    """An argparse type for an option that sets the config field at ``path``: the config's own range."""
    low, high = field_bounds(path)
    return int_in(int(low) if low is not None else -(2**63), int(high) if high is not None else None)


positive_int = int_in(1)


def add_json(parser: argparse.ArgumentParser, what: str) -> None:
    """The ``--json`` option every command has."""
    parser.add_argument("--json", action="store_true", help=f"print only JSON on stdout ({what}); human lines go to stderr")


def add_run_dir_options(parser: argparse.ArgumentParser, json_what: str) -> None:
    """--out, --no-progress and --json of a command that writes a run directory (`evo run`, `evo train`)."""
    parser.add_argument("--out", metavar="DIR", help="parent folder of the run directory (default: runs/)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_json(parser, json_what)


def held_out_line(summary: dict) -> str:
    """The ``test_*`` figures of a summary on one line."""
    figures = {k: v for k, v in summary.items() if k.startswith("test_") and isinstance(v, (int, float)) and not isinstance(v, bool)}
    return "held-out: " + "  ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())
