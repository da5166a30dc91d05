"""float32 against float64 evaluation (``network.dtype``): fitness throughput, and the accuracy evolution reaches.

Part 1, throughput: genomes per second of one fitness evaluation of
``--population`` (256) genomes, the way a run evaluates them
(``evo.evaluators.evaluate_chunk``: task, network and evaluator built from
the shipped config, only ``network.dtype`` and the population changed):

  (a) digits MLP 64-32-10 (``configs/digits-mlp-32.toml``: relu, softmax, a
      256-sample minibatch per generation);
  (b) digits CNN (``configs/digits-cnn.toml``: 8 filters 3x3, padding 1, relu,
      2x2 max pool, dense 10 softmax, a 256-sample minibatch).

float32 and float64 are timed in the same process, interleaved, best of
``--repeats``; the ratio float32/float64 is the speed-up (target >= 1.8x).
A float32 evaluation runs BLAS on one thread (what keeps it identical serial
and on Ray, see ``evo.evaluators.blas_for``); float64 runs with the
process's BLAS threads, unless ``--blas-threads`` sets them for both.

Part 2, accuracy: ``configs/digits-mlp.toml`` evolved twice with the same seed,
float64 and float32, for ``--generations`` (default 1000; ``--full`` for the
config's own 6000), printing each run's test_accuracy and the difference
(target: within 0.005). ``--skip-runs`` leaves this part out.

    python benchmarks/float32_speed.py [--population 256] [--repeats 20] [--generations 1000 | --full] [--skip-runs]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evo import load_config, run_evolution  # noqa: E402
from evo.build import build_network, build_task  # noqa: E402
from evo.evaluators import evaluate_chunk  # noqa: E402
from evo.seeding import generation_seed, individual_seeds  # noqa: E402


def with_dtype(config, dtype: str, **changes):
    """The config with ``network.dtype`` and the run-level ``changes`` (population goes to the strategy)."""
    network = config.network.model_copy(update={"dtype": dtype})
    update: dict = {"network": network}
    if "population" in changes:
        update["strategy"] = config.strategy.model_copy(update={"population": changes.pop("population")})
    update.update(changes)
    return config.model_copy(update=update)


def throughput(config_name: str, population: int, repeats: int) -> dict[str, float]:
    """Best seconds of one evaluation of ``population`` genomes, float64 and float32, interleaved."""
    base = load_config(ROOT / "configs" / config_name)
    setups = {}
    for dtype in ("float64", "float32"):
        config = with_dtype(base, dtype)
        task = build_task(config)
        network = build_network(config, task)
        setups[dtype] = (task, network)
    network64 = setups["float64"][1]
    genomes = network64.init_params(np.random.default_rng(0), population)
    seeds = individual_seeds(0, 0, population)
    best = {dtype: float("inf") for dtype in setups}
    fitness = {}
    for dtype, (task, network) in setups.items():  # warm-up: BLAS threads, the task's float32 copy of the data
        fitness[dtype] = evaluate_chunk(task, network, genomes, seeds, generation_seed(0, 0))[0]
    for r in range(repeats):
        for dtype, (task, network) in setups.items():
            start = time.perf_counter()
            evaluate_chunk(task, network, genomes, seeds, generation_seed(0, r))
            best[dtype] = min(best[dtype], time.perf_counter() - start)
    gap = float(np.max(np.abs(fitness["float32"] - fitness["float64"])))
    print(f"  {config_name}: {network64.n_params} weights, {population} genomes, {task.samples_per_evaluation()} samples, best of {repeats}")
    for dtype in setups:
        print(f"    {dtype}: {best[dtype] * 1e3:8.2f} ms = {population / best[dtype]:10,.0f} genomes/s")
    print(f"    speed-up float32/float64: {best['float64'] / best['float32']:.2f}x (target >= 1.8x); max |fitness difference| {gap:.2e}")
    return best


def accuracy(generations: int) -> None:
    """Evolve configs/digits-mlp.toml with float64 and float32 (same seed); print both test accuracies."""
    base = load_config(ROOT / "configs" / "digits-mlp.toml")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("float64", "float32"):
            config = with_dtype(base, dtype, generations=generations)
            start = time.perf_counter()
            summary = run_evolution(config, run_dir=Path(tmp) / dtype, progress=False).summary
            results[dtype] = summary["test_accuracy"]
            print(f"    {dtype}: test_accuracy {summary['test_accuracy']:.4f} ({time.perf_counter() - start:.0f} s)")
    difference = abs(results["float32"] - results["float64"])
    print(f"    |difference| {difference:.4f} (target <= 0.005): {'met' if difference <= 0.005 else 'NOT met'}")


def main(argv: list[str] | None = None) -> None:
    """Print the throughput of both dtypes for the MLP and the CNN, then the accuracy both reach."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=256, help="genomes per evaluation (default 256)")
    parser.add_argument("--repeats", type=int, default=20, help="timed evaluations per dtype, best is kept (default 20)")
    parser.add_argument("--generations", type=int, default=1000, help="generations of the accuracy runs (default 1000)")
    parser.add_argument("--full", action="store_true", help="accuracy runs as long as the config says (6000 generations)")
    parser.add_argument("--skip-runs", action="store_true", help="throughput only")
    parser.add_argument("--blas-threads", type=int, default=None, help="BLAS threads for both dtypes (default: the library's own)")
    args = parser.parse_args(argv)
    if args.blas_threads is not None:
        threadpool_limits(limits=args.blas_threads, user_api="blas")
    blas = ", ".join(f"{p['internal_api']} {p['num_threads']} thread(s)" for p in threadpool_info() if p["user_api"] == "blas")
    print(f"float32 vs float64 fitness evaluation (BLAS: {blas or 'unknown'}; float32 runs on one thread); load {os.getloadavg()[0]:.2f}")
    throughput("digits-mlp-32.toml", args.population, args.repeats)
    throughput("digits-cnn.toml", args.population, args.repeats)
    if not args.skip_runs:
        generations = None if args.full else args.generations
        print(f"  configs/digits-mlp.toml, seed 0, {generations or 'all (6000)'} generations, test_accuracy:")
        accuracy(generations or load_config(ROOT / "configs" / "digits-mlp.toml").generations)


if __name__ == "__main__":
    main()
