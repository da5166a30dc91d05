"""Digits fitness throughput: population-batched evaluation vs a per-individual loop.

``--population`` (256) MLPs 64-32-10 (tanh hidden, softmax out) scored on the
whole training split of scikit-learn's digits (``stratified_split(X, y, 0.1,
0.2, 0)``), fitness = mean log-likelihood of the true class:

(a) ``ClassificationTask.evaluate`` on the whole (P, n_params) stack: one
    batched ``matmul`` per layer for the population.
(b) the loop a plain DEAP user writes: ``network.predict`` per genome, then the
    same log-likelihood computation.

Reports genomes per second for both and their ratio, best of ``--repeats``
(the two sides interleaved), and checks that both give the same fitness.

Both sides are BLAS-bound (the same 256 ``(B x 64) @ (64 x 32)`` products), so
the figures swing with the BLAS thread count when other processes share the
cores: ``--blas-threads 1`` gives steadier numbers on a busy machine.

    python benchmarks/throughput_digits.py --population 256 [--blas-threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from evo.seeding import individual_seeds  # noqa: E402
from evo.tasks.classification import ClassificationTask  # noqa: E402
from evo.tasks.datasets import load_digits, stratified_split  # noqa: E402
from networks.mlp import MLP  # noqa: E402

# Same floor as ClassificationTask: a probability of 0 would make log-likelihood -inf.
LOG_CLIP = 1e-12


def run_batched(task: ClassificationTask, network: MLP, genomes: np.ndarray, seeds: np.ndarray) -> tuple[np.ndarray, float]:
    """Fitness and seconds for one population-batched evaluation."""
    start = time.perf_counter()
    fitness = task.evaluate(network, genomes, seeds, 0)
    return fitness, time.perf_counter() - start


def run_loop(network: MLP, genomes: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Fitness and seconds for the per-individual loop: one ``predict`` per genome."""
    start = time.perf_counter()
    rows = np.arange(len(y))
    fitness = np.empty(len(genomes))
    for i, genome in enumerate(genomes):
        probs = network.predict(genome, X)  # (B, 10)
        fitness[i] = np.mean(np.log(np.clip(probs[rows, y], LOG_CLIP, 1.0)))
    return fitness, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    """Time both ways of scoring the population and print genomes/s and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=256, help="genomes scored per evaluation (default 256)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats, best is kept (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the genomes")
    parser.add_argument("--blas-threads", type=int, default=None, help="BLAS threads (default: the library's own setting)")
    args = parser.parse_args(argv)
    if args.blas_threads is not None:
        threadpool_limits(limits=args.blas_threads, user_api="blas")
    blas = ", ".join(f"{p['internal_api']} {p['num_threads']} thread(s)" for p in threadpool_info() if p["user_api"] == "blas")

    X, y = load_digits()
    split = stratified_split(X, y, 0.1, 0.2, 0)
    task = ClassificationTask(split, name="digits")  # full-batch cross-entropy fitness
    network = MLP((64, 32, 10), activation="tanh", output_activation="softmax")
    genomes = network.init_params(np.random.default_rng(args.seed), args.population)
    seeds = individual_seeds(args.seed, 0, args.population)
    X_train, y_train = split.X_train, split.y_train

    run_batched(task, network, genomes, seeds)  # warm-up (BLAS threads, page faults)
    run_loop(network, genomes[:8], X_train, y_train)
    batched_runs, loop_runs = [], []
    for _ in range(args.repeats):  # interleaved, so both sides see the same machine load
        batched_runs.append(run_batched(task, network, genomes, seeds))
        loop_runs.append(run_loop(network, genomes, X_train, y_train))
    batched_fitness, batched_s = min(batched_runs, key=lambda r: r[1])
    loop_fitness, loop_s = min(loop_runs, key=lambda r: r[1])

    P = args.population
    samples = len(y_train)
    difference = float(np.max(np.abs(batched_fitness - loop_fitness)))
    print(f"digits, {P} MLPs 64-32-10 (tanh, softmax), full training split: {samples} samples, best of {args.repeats}")
    print(f"  BLAS: {blas or 'unknown'}")
    print(
        f"  (a) batched ClassificationTask.evaluate: {batched_s:7.3f} s = {P / batched_s:10,.0f} genomes/s "
        f"({P * samples / batched_s:12,.0f} sample-forwards/s)"
    )
    print(
        f"  (b) per-individual loop (predict):       {loop_s:7.3f} s = {P / loop_s:10,.0f} genomes/s "
        f"({P * samples / loop_s:12,.0f} sample-forwards/s)"
    )
    print(f"  speed-up batched/loop: {loop_s / batched_s:.2f}x")
    print(f"  same fitness: max |difference| = {difference:.3g}" + (" (bit-identical)" if difference == 0 else ""))


if __name__ == "__main__":
    main()
