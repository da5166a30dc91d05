"""Echo-state network on Mackey-Glass: median figures over reservoir seeds.

For the standard recipe (the config's [network] hyperparameters) and, when a
run directory of a hyperparameter evolution is given, for the evolved
hyperparameters: build the reservoir with each of ``--seeds`` reservoir
seeds, fit the ridge readout teacher-forced on the training segment, and
report the one-step test NRMSE and the closed-loop NRMSE at the horizon (84
steps, 20 start points), median and range over the seeds.

    python benchmarks/esn_seeds.py configs/mackey-glass-esn.toml [--run RUN_DIR] [--seeds 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

from evo import load_config
from evo.baselines.esn import recipe_reservoir
from evo.build import build_network, build_task
from evo.files import load_npz
from evo.tasks.timeseries import score_on_test


def _row(name: str, results: list[dict]) -> str:
    one = [r["test_nrmse"] for r in results]
    free = [r["test_nrmse_free_run"] for r in results]
    return (
        f"  {name:34s} one-step median {statistics.median(one):.3g} [{min(one):.3g}, {max(one):.3g}]   "
        f"NRMSE84 median {statistics.median(free):.3g} [{min(free):.3g}, {max(free):.3g}]"
    )


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--run", help="run directory of `evo run` on this config (hyperparameters mode)")
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    config = load_config(args.config)
    task = build_task(config)
    network = build_network(config, task)
    data = task.data
    base = recipe_reservoir(config, task.n_inputs)
    print(f"Mackey-Glass ({json.dumps(data.source)}), {base.units} units, {args.seeds} reservoir seeds")
    t0 = time.perf_counter()
    recipe = [score_on_test(data, base.replace(seed=s).build(), config.network.ridge, task.horizon, task.starts) for s in range(args.seeds)]
    print(_row("standard recipe", recipe) + f"   ({(time.perf_counter() - t0) / args.seeds:.2f} s per reservoir)")
    if args.run:
        genome = load_npz(Path(args.run) / "best_genome.npz")["params"]
        encoding = network.encoding
        evolved = []
        for s in range(args.seeds):
            _, weights, ridge = replace(encoding, seed=s).reservoir(genome)
            evolved.append(score_on_test(data, weights, ridge, task.horizon, task.starts))
        hp = network.decoded(genome)  # topology mode: with the size, and the edges of seed network.seed
        print(_row("evolved hyperparameters", evolved))
        print("  evolved: " + ", ".join(f"{k} {v:.4g}" for k, v in hp.items()))


if __name__ == "__main__":
    main()
