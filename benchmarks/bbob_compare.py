"""Our CMA-ES and SNES side by side with pycma (the `cma` package) on sphere, ellipsoid and Rosenbrock, and IPOP on Rastrigin.

For each function and dimension, every optimiser starts from the same point
(uniform in [-1, 1]^n, drawn from the seed) with the same step size (1.0) and
the same population (4 + 3 ln n, rounded up to even for SNES's mirrored
sampling), through its ask/tell interface, until f - f* <= 1e-8 or the
budget. Printed: the median evaluations over the seeds (a run that misses the
target counts as infinite, so the median is finite only if most succeed), the
successes, and the ratio of ours to pycma's. Then IPOP-CMA-ES (``restarts``)
on 10-D Rastrigin from a uniform point of [-5.12, 5.12]^n with sigma 2: the
share of seeds that reach 1e-8, against pycma's own IPOP (``cma.fmin``
with ``restarts``, ``incpopsize=2``).

    python benchmarks/bbob_compare.py                  # 10-D and 40-D, 15 seeds (about 10 min on 2 cores)
    python benchmarks/bbob_compare.py --dims 10 --seeds 5 --no-ipop
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evo.functions import ellipsoid, rastrigin, rosenbrock, sphere  # noqa: E402
from evo.strategies import make_strategy  # noqa: E402

FUNCTIONS = {"sphere": (sphere, 0.0), "ellipsoid": (ellipsoid, 0.0), "rosenbrock": (rosenbrock, 0.0)}
TARGET = 1e-8


def _ours(kind: str, f, n: int, seed: int, x0: np.ndarray, budget: int) -> float:
    lam = 4 + int(3 * math.log(n))
    if kind == "snes":
        s = make_strategy("snes", n, lam + lam % 2, seed, x0, sigma=1.0)
    else:
        s = make_strategy("cmaes", n, lam, seed, x0, sigma=1.0, active=kind == "cmaes-active")
    evaluations = 0
    with np.errstate(all="ignore"):  # a run stuck in Rosenbrock's local minimum may overflow before its budget ends
        while evaluations < budget:
            genomes = s.ask()
            values = f(genomes)
            evaluations += len(values)
            if values.min() <= TARGET:
                return evaluations
            s.tell(genomes, -values)
    return math.inf


def _pycma(f, n: int, seed: int, x0: np.ndarray, budget: int) -> float:
    import cma

    options = {"verbose": -9, "seed": seed + 1, "tolfun": 0, "tolx": 0, "tolfunhist": 0, "tolflatfitness": 10**9, "tolstagnation": 10**9}
    es = cma.CMAEvolutionStrategy(x0, 1.0, options)
    evaluations = 0
    while evaluations < budget and not es.stop():
        X = es.ask()
        values = f(np.asarray(X))
        evaluations += len(values)
        if values.min() <= TARGET:
            return evaluations
        es.tell(X, values.tolist())
    return math.inf


def one_run(job: tuple[str, str, int, int]) -> tuple[str, str, int, int, float]:
    """Evaluations one optimiser needs on one function, dimension and seed."""
    kind, name, n, seed = job
    f, _ = FUNCTIONS[name]
    x0 = np.random.default_rng(1000 + seed).uniform(-1, 1, n)
    budget = 200 * n * n if kind != "snes" else 300 * n * n
    result = _pycma(f, n, seed, x0, budget) if kind == "pycma" else _ours(kind, f, n, seed, x0, budget)
    return kind, name, n, seed, result


def ipop_run(job: tuple[str, int]) -> tuple[str, int, float, int]:
    """One IPOP run on 10-D Rastrigin: (who, seed, best value, evaluations)."""
    who, seed = job
    n = 10
    x0 = np.random.default_rng(2000 + seed).uniform(-5.12, 5.12, n)
    if who == "pycma":
        import cma

        res = cma.fmin(
            rastrigin, x0, 2.0, {"verbose": -9, "seed": seed + 1, "ftarget": TARGET, "maxfevals": 1_000_000}, restarts=9, incpopsize=2
        )
        return who, seed, float(res[1]), int(res[3])
    s = make_strategy("cmaes", n, 4 + int(3 * math.log(n)), seed, x0, sigma=2.0, active=True, restarts=9)
    evaluations, best = 0, math.inf
    while evaluations < 1_000_000 and s.stop_reason() is None:
        genomes = s.ask()
        values = rastrigin(genomes)
        evaluations += len(values)
        best = min(best, float(values.min()))
        if best <= TARGET:
            break
        s.tell(genomes, -values)
    return who, seed, best, evaluations


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def main() -> None:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[10, 40])
    parser.add_argument("--seeds", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-ipop", action="store_true")
    args = parser.parse_args()
    kinds = ["pycma", "cmaes-active", "cmaes", "snes"]
    jobs = [(k, name, n, seed) for n in args.dims for name in FUNCTIONS for k in kinds for seed in range(args.seeds)]
    results: dict[tuple[str, str, int], list[float]] = {}
    with ProcessPoolExecutor(args.workers) as pool:
        for kind, name, n, _, evaluations in pool.map(one_run, jobs, chunksize=4):
            results.setdefault((kind, name, n), []).append(evaluations)
        print(f"median evaluations to f - f* <= 1e-8 over {args.seeds} seeds (successes); ratio = ours / pycma")
        print(f"{'function':<11} {'n':>3} " + " ".join(f"{k:>22}" for k in kinds))
        for n in args.dims:
            for name in FUNCTIONS:
                base = _median(results[("pycma", name, n)])
                cells = []
                for k in kinds:
                    runs = results[(k, name, n)]
                    median = _median(runs)
                    ok = sum(math.isfinite(r) for r in runs)
                    ratio = "" if k == "pycma" else f" {median / base:5.2f}x"
                    cells.append(f"{median:>9.0f} ({ok:>2}){ratio}")
                print(f"{name:<11} {n:>3} " + " ".join(f"{c:>22}" for c in cells))
        if not args.no_ipop:
            outcome: dict[str, list[tuple[float, int]]] = {}
            for who, _, best, evaluations in pool.map(ipop_run, [(w, s) for w in ("ours", "pycma") for s in range(args.seeds)]):
                outcome.setdefault(who, []).append((best, evaluations))
            for who, runs in outcome.items():
                hits = [e for b, e in runs if b <= TARGET]
                label = "cmaes active + restarts = 9" if who == "ours" else "pycma fmin(restarts = 9, incpopsize = 2)"
                print(
                    f"IPOP 10-D Rastrigin, {label}: {len(hits)}/{len(runs)} seeds reach 1e-8"
                    f" (median evaluations of those {_median(hits):.0f})"
                )


if __name__ == "__main__":
    main()
