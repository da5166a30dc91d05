"""Double pole balancing, with and without velocities: success rate and evaluations to solve, beside published figures.

For each config (shipped in configs/: an evolved recurrent network or
recurrent NEAT, on ``DoublePole-v0`` or ``DoublePoleNoVel-v0``) and each of
``--seeds`` seeds, the strategy runs generation by generation, exactly as
``evo run`` builds it (task, network, strategy and serial evaluator from the
config), until the benchmark's criterion holds for the generation's
champion (:meth:`evo.tasks.double_pole.DoublePoleTask.solved`): balanced
100,000 steps from the standard start (with velocities, the fitness episode
itself: up to 100,000 steps); without velocities the champion whose
1,000-step fitness episode never failed is run on the 625 generalisation
starts, must hold at least 200, and then must balance 100,000 steps (a
champion already tested, e.g. an elite kept unchanged, is not tested again).
Evaluations count whole generations up to and including the solving one (the
tests are not counted, as in the literature). A run that has not solved
within ``--max-evaluations`` counts as a failure. For the solved
no-velocity runs the generalisation score of the winner is reported too.

Published means (evaluations to solve; failures aside), with and without
velocities (Gruau's anti-wiggle fitness):

  NEAT    3,600 /  33,184   Stanley & Miikkulainen 2002, Tables 2 and 3
  ESP     3,800 / 169,466   Stanley & Miikkulainen 2002, Tables 2 and 3
  CoSyNE    954 /   1,249   Gomez, Schmidhuber & Miikkulainen 2008 (cited from memory, not checked here)
  CMA-ES    895 /   6,061   Igel 2003, as the issue gives them (not checked here)

Runs are independent: ``--jobs`` runs that many seeds at once in separate
processes (each run's numbers are the same serial or parallel).
``--jsonl FILE`` appends each run as it ends (one JSON object a line), so a
long benchmark split over several processes (``--first-seed``) or cut short
keeps what it finished; ``--report FILE...`` prints the table from such files
without running anything.

    python benchmarks/double_pole.py configs/double-pole-neat.toml configs/double-pole-novel-neat.toml --seeds 20 --jobs 2
    python benchmarks/double_pole.py --report runs-a.jsonl runs-b.jsonl
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from evo.build import build_evaluator, build_network, build_strategy, build_task  # noqa: E402
from evo.config import apply_overrides, parse_config, read_toml  # noqa: E402

#: (method, mean evaluations) per task; the figures the issue compares against (see the module docstring)
PUBLISHED = {
    "DoublePole-v0": (("NEAT", 3_600), ("ESP", 3_800), ("CoSyNE", 954), ("CMA-ES", 895)),
    "DoublePoleNoVel-v0": (("NEAT", 33_184), ("ESP", 169_466), ("CoSyNE", 1_249), ("CMA-ES", 6_061)),
}


def solve(config_path: str, seed: int, max_evaluations: int) -> dict:
    """One run: evaluations to solve (None when it did not within the budget) and the winner's test figures."""
    config = parse_config(apply_overrides(read_toml(config_path), seed=seed))
    task, started = build_task(config), time.perf_counter()
    network = build_network(config, task)
    strategy, evaluator = build_strategy(config, network), build_evaluator(config)
    evaluations, generation, tested = 0, 0, set()
    run = {"config": config_path, "env_id": task.env_id, "seed": seed}
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
                    return {**run, "evaluations": evaluations, "generations": generation, "seconds": time.perf_counter() - started}
                continue
            key = np.asarray(genomes[best], dtype=np.float64).tobytes()
            if fitness[best] < 0.1 or key in tested:  # its 1,000-step episode failed, or it was tested already
                continue
            tested.add(key)
            solved, figures = task.solved(network, genomes[best])
            if solved:
                return {
                    **run,
                    "evaluations": evaluations,
                    "generations": generation,
                    "seconds": time.perf_counter() - started,
                    "champions_tested": len(tested),
                    **figures,
                }
        return {**run, "evaluations": None, "generations": generation, "seconds": time.perf_counter() - started}
    finally:
        task.close()


def _solve(job: tuple[str, int, int]) -> dict:
    return solve(*job)


def describe(config_path: str) -> str:
    """A short name of the method a config runs: recurrent NEAT, or the cell and size and its strategy."""
    data = read_toml(config_path)
    network, strategy = data.get("network", {}), data.get("strategy", {})
    if network.get("type") == "neat":
        name = "recurrent NEAT" if network.get("feed_forward") is False else "NEAT"
    else:
        name = f"{network.get('cell', 'lstm')} {network.get('hidden')}"
    return f"{name} + {strategy.get('type')} (pop {strategy.get('population')})"


def table(runs: list[dict]) -> str:
    """Per config: success rate, evaluations to solve, the winners' generalisation, and the published figures beside them."""
    lines = []
    for path in dict.fromkeys(r["config"] for r in runs):
        mine = sorted((r for r in runs if r["config"] == path), key=lambda r: r["seed"])
        env_id = mine[0]["env_id"]
        solved = [r for r in mine if r["evaluations"] is not None]
        velocities = "with velocities" if env_id == "DoublePole-v0" else "without velocities"
        lines.append(f"{path}: {describe(path)}, {env_id} ({velocities})")
        line = f"  solved {len(solved)}/{len(mine)} (seeds {mine[0]['seed']}..{mine[-1]['seed']})"
        if solved:
            evals = [r["evaluations"] for r in solved]
            mean = statistics.fmean(evals)
            line += (
                f"; evaluations to solve: mean {mean:,.0f}, median {statistics.median(evals):,.0f}, min {min(evals):,}, max {max(evals):,}"
            )
            if "test_generalization" in solved[0]:
                scores = [r["test_generalization"] for r in solved]
                line += f"; generalisation of the winners {statistics.fmean(scores):.0f}/625 (min {min(scores)}, max {max(scores)})"
        line += f"; seconds per run {statistics.fmean(r['seconds'] for r in mine):.0f}"
        lines.append(line)
        published = PUBLISHED[env_id]
        lines.append("  published mean evaluations: " + ", ".join(f"{name} {value:,}" for name, value in published))
        if solved:
            best_name, best = min(published, key=lambda p: p[1])
            neat = dict(published)["NEAT"]
            lines.append(f"  ours / NEAT = {mean / neat:.2f}; ours / best published ({best_name} {best:,}) = {mean / best:.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--max-evaluations", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, in separate processes")
    parser.add_argument("--jsonl", help="append every run's numbers here, one JSON object a line, as each run ends")
    parser.add_argument("--report", nargs="+", metavar="FILE", help="print the table from --jsonl files; run nothing")
    args = parser.parse_args()
    if args.report:
        runs = []
        for path in args.report:
            with open(path) as fh:
                runs += [json.loads(line) for line in fh if line.strip()]
        print(table(runs))
        return
    if not args.configs:
        parser.error("give at least one config (or --report FILE...)")
    jobs = [(path, seed, args.max_evaluations) for path in args.configs for seed in range(args.first_seed, args.first_seed + args.seeds)]
    runs = []
    with multiprocessing.get_context("spawn").Pool(args.jobs) if args.jobs > 1 else _Serial() as pool:
        for run in pool.imap(_solve, jobs):
            runs.append(run)
            print(f"  {json.dumps(run)}", flush=True)
            if args.jsonl:
                with open(args.jsonl, "a") as fh:
                    fh.write(json.dumps(run) + "\n")
    print(table(runs), flush=True)


class _Serial:
    """The pool interface, in this process."""

    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def imap(self, fn, items):
        return map(fn, items)


if __name__ == "__main__":
    main()
