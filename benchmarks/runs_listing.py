"""`evo runs` on a folder of 200 run directories: time to list them, against reading the bare files in the same run.

Makes one real evolution run (XOR, a few generations) and one backprop run,
then copies them into ``--runs`` directories (a mix of finished evolution and
training runs, and runs left "running" by a process that is gone), and times:

  * the listing itself (``evo.runs_index.list_runs`` + the table), median of ``--repeat``;
  * the baseline: reading every directory's summary.json, status.json and
    config.toml and nothing else (the least any listing must do), same repeats;
  * the whole command as a user runs it, ``python -m evo.cli runs DIR``
    (interpreter start and imports included), against ``python -c pass``.

Target: under 1 s for 200 directories.

    python benchmarks/runs_listing.py [--runs 200] [--repeat 7]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_runs(folder: Path, count: int) -> None:
    """``count`` run directories: copies of a real evolution run, a real training run, and 'killed' ones."""
    from evo import parse_config, run_evolution
    from evo.train import TrainingRun

    xor = {
        "name": "xor",
        "generations": 5,
        "network": {"hidden": [4]},
        "task": {"type": "xor"},
        "strategy": {"type": "cmaes", "population": 8},
        "train": {"epochs": 3},
    }
    seeds = Path(tempfile.mkdtemp())
    evolution = run_evolution(parse_config(xor), run_dir=seeds / "evolution").run_dir
    training = TrainingRun(parse_config(xor), run_dir=seeds / "training", progress=False).run().run_dir
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for i in range(count):
        source = training if i % 4 == 1 else evolution
        target = folder / f"run-{i:04d}"
        shutil.copytree(source, target)
        if i % 10 == 3:  # killed mid-run: no summary, a status naming a process that no longer exists
            (target / "summary.json").unlink()
            status = json.loads((target / "status.json").read_text())
            (target / "status.json").write_text(json.dumps({**status, "status": "running", "pid": dead.pid}))
    shutil.rmtree(seeds)


def bare_read(folder: Path) -> int:
    """The least a listing reads: each directory's small files, parsed."""
    n = 0
    for path in sorted(folder.iterdir()):
        for name in ("summary.json", "status.json"):
            with contextlib.suppress(OSError):
                json.loads((path / name).read_text())
        with open(path / "config.toml", "rb") as fh:
            tomllib.load(fh)
        n += 1
    return n


def timed(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        function()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    """Make the folder, time the three things, print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    from evo.runs_index import format_table, list_runs

    folder = Path(tempfile.mkdtemp()) / "runs"
    folder.mkdir()
    try:
        make_runs(folder, args.runs)
        listing = timed(lambda: format_table(list_runs(folder)), args.repeat)
        baseline = timed(lambda: bare_read(folder), args.repeat)
        env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
        command = timed(
            lambda: subprocess.run([sys.executable, "-m", "evo.cli", "runs", str(folder)], check=True, capture_output=True, env=env), 3
        )
        start = timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), 3)
        statuses = sorted({r["status"] for r in list_runs(folder)})
        print(f"{args.runs} run directories ({', '.join(statuses)}):")
        print(
            f"  listing (list_runs + table)      {listing * 1000:8.1f} ms   {listing / baseline:5.2f}x the bare file reads ({baseline * 1000:.1f} ms)"
        )
        print(f"  `evo runs DIR` as a command      {command * 1000:8.1f} ms   (python start alone: {start * 1000:.1f} ms)")
        print(f"  target < 1 s: {'met' if command < 1.0 else 'NOT met'}")
    finally:
        shutil.rmtree(folder.parent)


if __name__ == "__main__":
    main()
