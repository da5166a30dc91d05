"""Echo-state networks: training time against reservoirpy, and the default recipe's accuracy.

Part 1, speed. Train one 500-unit reservoir on Mackey-Glass (tau = 17,
``mackey_glass(3101, discard=500)``, standardised): 3,000 teacher-forced steps
(the first 100 left out of the fit as washout) and a ridge readout
(``ridge=1e-8``). The timed unit is the whole training: build the reservoir
(pattern, values, spectral-radius rescaling with ARPACK), run it, solve the
readout. Best of ``--repeats`` for:

  * ours: ``networks.esn.ESN(Reservoir(), ridge=1e-8, washout=100).fit(u, y)``
    (connectivity 0.02, spectral radius 1, leak 0.3, input scaling 0.5);
  * reservoirpy (when ``import reservoirpy`` works -- it is not a dependency
    of this project): ``Reservoir(units=500, lr=0.3, sr=1.0,
    input_scaling=0.5, rc_connectivity=0.02, input_connectivity=1.0,
    W=uniform, Win=uniform) >> Ridge(ridge=1e-8)``, ``fit(u, y, warmup=100)``:
    the same sizes, sparsity and kinds of weights.

Both run in the same process with BLAS limited to ``--threads`` threads
(threadpoolctl), after one untimed warm-up call each.

Part 2, accuracy. The default recipe at 500 units on the project's
Mackey-Glass split (``make_series_split()``: washout 200, train 3,000,
val 1,000, test 2,000) for ``--seeds`` reservoir seeds: the one-step test
NRMSE and the free-run NRMSE84 (20 start points in the test segment, batched),
median and range.

Part 3, population batching. Fitness of ``--population`` genomes of the
hyperparameter task (mode a, 500 units) and of the weights task (mode b,
100 units, genome ~1,100 long): all reservoirs run as one block-diagonal
system versus one individual at a time (the same numbers, checked).

    python benchmarks/esn_speed.py [--repeats 7] [--seeds 10] [--threads 1] [--population 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from evo.tasks.series import mackey_glass, make_series_split  # noqa: E402
from evo.tasks.timeseries import TimeSeriesTask, score_on_test  # noqa: E402
from networks.esn import DEFAULT_RIDGE, ESN, ESNSpec, HyperparameterEncoding, Reservoir, WeightsEncoding  # noqa: E402

UNITS = 500
STEPS = 3000
WASHOUT = 100


def training_data() -> tuple[np.ndarray, np.ndarray]:
    """3,000 standardised Mackey-Glass inputs and their next values."""
    s = mackey_glass(STEPS + 1, discard=500)
    s = (s - s.mean()) / s.std()
    return s[:-1, None], s[1:, None]


def best_of(fn, repeats: int) -> float:
    """Smallest wall time of ``repeats`` calls, after one untimed warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def time_ours(u: np.ndarray, y: np.ndarray, repeats: int) -> tuple[float, dict[str, float]]:
    """Best seconds to build and train our ESN, and a breakdown of one training."""
    reservoir = Reservoir(units=UNITS, seed=0)

    def train():
        return ESN(reservoir, ridge=DEFAULT_RIDGE, washout=WASHOUT).fit(u, y)

    seconds = best_of(train, repeats)
    # Breakdown (best of repeats for each part).
    build = best_of(reservoir.build, repeats)
    esn = train()
    run = best_of(lambda: esn.run(u), repeats)
    return seconds, {"build": build, "run": run, "readout": max(0.0, seconds - build - run)}


def time_reservoirpy(u: np.ndarray, y: np.ndarray, repeats: int) -> float | None:
    """Best seconds to build and train the same ESN in reservoirpy, or None without it."""
    try:
        import reservoirpy  # noqa: F401
        from reservoirpy import mat_gen
        from reservoirpy.nodes import Reservoir as RpyReservoir
        from reservoirpy.nodes import Ridge
    except ImportError:
        return None

    def train():
        reservoir = RpyReservoir(
            units=UNITS,
            lr=0.3,
            sr=1.0,
            input_scaling=0.5,
            rc_connectivity=0.02,
            input_connectivity=1.0,
            W=mat_gen.uniform,
            Win=mat_gen.uniform,
            seed=0,
        )
        esn = reservoir >> Ridge(ridge=DEFAULT_RIDGE)
        esn.fit(u, y, warmup=WASHOUT)
        return esn

    return best_of(train, repeats)


def recipe_figures(seeds: int) -> list[dict[str, float]]:
    """Test figures of the default recipe for reservoir seeds 0..seeds-1."""
    data = make_series_split()
    return [score_on_test(data, Reservoir(units=UNITS, seed=s).build(), DEFAULT_RIDGE) for s in range(seeds)]


def population_timing(task: TimeSeriesTask, spec: ESNSpec, population: int, sigma: float) -> tuple[float, float, bool]:
    """Seconds to score a population batched, and one individual at a time; same numbers?"""
    rng = np.random.default_rng(0)
    genomes = spec.initial_genome()[None] + sigma * rng.normal(size=(population, spec.n_params))
    seeds = np.arange(population, dtype=np.uint64)
    task.evaluate(spec, genomes[:1], seeds[:1], 0)  # warm-up
    start = time.perf_counter()
    batched = task.evaluate(spec, genomes, seeds, 0)
    t_batched = time.perf_counter() - start
    start = time.perf_counter()
    single = np.concatenate([task.evaluate(spec, genomes[i : i + 1], seeds[i : i + 1], 0) for i in range(population)])
    t_single = time.perf_counter() - start
    return t_batched, t_single, bool(np.array_equal(batched, single))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads for both libraries")
    parser.add_argument("--population", type=int, default=20)
    args = parser.parse_args()

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=args.threads):
        u, y = training_data()
        print(
            f"== Part 1: train one ESN ({UNITS} units, Mackey-Glass, {STEPS} teacher-forced steps, ridge readout), "
            f"best of {args.repeats}, {args.threads} BLAS thread(s)"
        )
        ours, parts = time_ours(u, y, args.repeats)
        print(
            f"ours         {ours * 1e3:8.1f} ms   (build {parts['build'] * 1e3:.1f} ms, run {parts['run'] * 1e3:.1f} ms, "
            f"readout ~{parts['readout'] * 1e3:.1f} ms)"
        )
        theirs = time_reservoirpy(u, y, args.repeats)
        if theirs is None:
            print("reservoirpy  skipped: `import reservoirpy` failed (pip install reservoirpy to compare; not a dependency)")
        else:
            import reservoirpy

            print(f"reservoirpy  {theirs * 1e3:8.1f} ms   (version {reservoirpy.__version__})")
            print(f"ratio ours / reservoirpy = {ours / theirs:.2f}  (target <= 1)")

        print(
            f"\n== Part 2: default recipe, {UNITS} units, Mackey-Glass split washout 200 / train 3000 / val 1000 / test 2000, "
            f"{args.seeds} reservoir seeds"
        )
        figures = recipe_figures(args.seeds)
        one = np.array([f["test_nrmse"] for f in figures])
        free = np.array([f["test_nrmse_free_run"] for f in figures])
        print(f"recipe: {Reservoir().describe()} ridge={DEFAULT_RIDGE}")
        print(f"one-step test NRMSE   median {np.median(one):.2e}  (min {one.min():.2e}, max {one.max():.2e})")
        print(f"free-run NRMSE84      median {np.median(free):.2e}  (min {free.min():.2e}, max {free.max():.2e}; 20 start points)")

        if args.population > 0:
            print(f"\n== Part 3: fitness of {args.population} genomes (washout 200 + train 3000 + val 1000 steps)")
            task = TimeSeriesTask(make_series_split())
            for label, spec, sigma in [
                (f"mode (a) hyperparameters, {UNITS} units", ESNSpec(HyperparameterEncoding(units=UNITS)), 0.2),
                ("mode (b) weights, 100 units", ESNSpec(WeightsEncoding()), 0.01),
            ]:
                batched, single, same = population_timing(task, spec, args.population, sigma)
                print(
                    f"{label:38s} block-diagonal {batched:5.2f} s   one at a time {single:5.2f} s   "
                    f"speed-up {single / batched:.2f}x   identical fitness: {same}"
                )


if __name__ == "__main__":
    main()
