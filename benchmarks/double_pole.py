"""Double pole balancing, with and without velocities: success rate and evaluations to solve, beside published figures.

For each config (shipped in configs/: an evolved recurrent network or
recurrent NEAT, on ``DoublePole-v0`` or ``DoublePoleNoVel-v0``) and each of
``--seeds`` seeds, the strategy runs generation by generation, exactly as
``evo run`` builds it (task, network, strategy and serial evaluator from the
config), until the benchmark's criterion holds for the generation's
champion (:meth:`evo.tasks.double_pole.DoublePoleTask.solved`): balanced
100,000 steps from the standard start (with velocities, the fitness episode
itself: up to 100,000 steps); without velocities the champion whose
1,000-step fitness episode never failed is run for 100,000 steps, then on the
625 generalisation starts, and must hold at least 200. Evaluations count
whole generations up to and including the solving one (the tests are not
counted, as in the literature). A run that has not solved within
``--max-evaluations`` counts as a failure. For the solved no-velocity runs
the generalisation score of the winner is reported too.

Published means (evaluations; failures aside):

  with velocities / without (Gruau's anti-wiggle fitness)
  ESP   3,800 / 169,466    (Stanley & Miikkulainen 2002, Table 2)
  NEAT  3,600 /  33,184    (Stanley & Miikkulainen 2002, Table 2)

    python benchmarks/double_pole.py configs/double-pole-rnn.toml configs/double-pole-novel-rnn.toml [--seeds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from evo.build import build_evaluator, build_network, build_strategy, build_task  # noqa: E402
from evo.config import apply_overrides, parse_config, read_toml  # noqa: E402

PUBLISHED = {"DoublePole-v0": {"ESP": 3_800, "NEAT": 3_600}, "DoublePoleNoVel-v0": {"ESP": 169_466, "NEAT": 33_184}}


def solve(config_path: str, seed: int, max_evaluations: int) -> dict:
    """One run: evaluations to solve (None when it did not within the budget) and the winner's test figures."""
    config = parse_config(apply_overrides(read_toml(config_path), seed=seed))
    task, started = build_task(config), time.perf_counter()
    network = build_network(config, task)
    strategy, evaluator = build_strategy(config, network), build_evaluator(config)
    evaluations, generation = 0, 0
    try:
        while evaluations < max_evaluations:
            genomes = strategy.ask()
            fitness = evaluator.evaluate(task, network, genomes, generation).fitness
            strategy.tell(genomes, fitness)
            evaluations += len(genomes)
            generation += 1
            best = int(np.argmax(np.where(np.isfinite(fitness), fitness, -np.inf)))
            if task.velocities:
                if fitness[best] >= task.long_steps:
                    return {"seed": seed, "evaluations": evaluations, "generations": generation, "seconds": time.perf_counter() - started}
                continue
            if fitness[best] < 0.1:  # its 1,000-step episode failed: no test
                continue
            solved, figures = task.solved(network, genomes[best])
            if solved:
                return {
                    "seed": seed,
                    "evaluations": evaluations,
                    "generations": generation,
                    "seconds": time.perf_counter() - started,
                    **figures,
                }
        return {"seed": seed, "evaluations": None, "generations": generation, "seconds": time.perf_counter() - started}
    finally:
        task.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--max-evaluations", type=int, default=100_000)
    parser.add_argument("--json", help="write every run's numbers here")
    args = parser.parse_args()
    results = {}
    for path in args.configs:
        env_id = read_toml(path)["task"]["env_id"]
        runs = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            runs.append(solve(path, seed, args.max_evaluations))
            print(f"  {path} seed {seed}: {runs[-1]}", flush=True)
        solved = [r for r in runs if r["evaluations"] is not None]
        line = f"{path} ({env_id}): solved {len(solved)}/{len(runs)}"
        if solved:
            evals = [r["evaluations"] for r in solved]
            line += f"; evaluations mean {statistics.fmean(evals):,.0f} median {statistics.median(evals):,.0f} (min {min(evals):,}, max {max(evals):,})"
            if "test_generalization" in solved[0]:
                scores = [r["test_generalization"] for r in solved]
                line += f"; generalisation of the winners {statistics.fmean(scores):.0f}/625 (min {min(scores)}, max {max(scores)})"
            line += f"; seconds per run {statistics.fmean(r['seconds'] for r in runs):.1f}"
        published = ", ".join(f"{k} {v:,}" for k, v in PUBLISHED[env_id].items())
        print(line + f"\n    published: {published}", flush=True)
        results[path] = runs
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
