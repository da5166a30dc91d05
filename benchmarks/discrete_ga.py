"""The GA's discrete genomes: OneMax-100 against DEAP's own OneMax example, and the knapsack and tour-length gaps.

* OneMax-100: evaluations until a generation holds the all-ones string, for
  DEAP's example (``examples/ga/onemax.py``: population 300, two-point
  crossover with probability 0.5, bit-flip mutation of probability 0.2 per
  child and 0.05 per bit, tournaments of 3; its loop evaluates only the
  changed individuals, and we count those) and for ours (``ga`` with
  ``representation = "binary"`` and its defaults: population 100, two-point
  crossover 0.5, one expected flip per child (indpb = 1/n), tournaments of 3,
  2 elites), both run here on the same seeds.
* 0/1 knapsack (30 items, capacity half the total weight): the gap to the
  optimum found by dynamic programming after 10,000 evaluations.
* Travelling salesman on 20 cities around a circle: the gap of the best tour
  to the polygon's perimeter (optimal by construction) after 60,000 evaluations.

    python benchmarks/discrete_ga.py              # 15 seeds, about 2 min on one core
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

import numpy as np
from deap import base, creator, tools

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

import discrete  # noqa: E402

from evo.strategies import make_strategy  # noqa: E402


def deap_onemax(seed: int, n: int = 100, max_evaluations: int = 200_000) -> int:
    """DEAP's OneMax example, counting evaluations until the optimum appears."""
    if not hasattr(creator, "FitnessMaxOneMax"):
        creator.create("FitnessMaxOneMax", base.Fitness, weights=(1.0,))
        creator.create("IndividualOneMax", list, fitness=creator.FitnessMaxOneMax)
    rng = random.Random(seed)
    random.seed(seed)
    toolbox = base.Toolbox()
    toolbox.register("individual", tools.initRepeat, creator.IndividualOneMax, lambda: rng.randint(0, 1), n)
    population = [toolbox.individual() for _ in range(300)]
    evaluations = 0
    for ind in population:
        ind.fitness.values = (sum(ind),)
        evaluations += 1
    while evaluations < max_evaluations:
        if max(ind.fitness.values[0] for ind in population) == n:
            return evaluations
        chosen = tools.selTournament(population, len(population), tournsize=3)
        offspring = []
        for parent in chosen:  # toolbox.clone: a copy that keeps its measured fitness until it changes
            child = creator.IndividualOneMax(parent)
            child.fitness.values = parent.fitness.values
            offspring.append(child)
        for child1, child2 in zip(offspring[::2], offspring[1::2]):
            if random.random() < 0.5:
                tools.cxTwoPoint(child1, child2)
                del child1.fitness.values
                del child2.fitness.values
        for mutant in offspring:
            if random.random() < 0.2:
                tools.mutFlipBit(mutant, indpb=0.05)
                del mutant.fitness.values
        for ind in offspring:
            if not ind.fitness.valid:
                ind.fitness.values = (sum(ind),)
                evaluations += 1
        population[:] = offspring
    return max_evaluations


def our_onemax(seed: int, n: int = 100, max_evaluations: int = 200_000) -> int:
    """Our GA with binary genomes and its defaults."""
    s = make_strategy("ga", n, 100, seed, np.zeros(n), representation="binary")
    evaluations = 0
    while evaluations < max_evaluations:
        genomes = s.ask()
        fitness = genomes.sum(axis=1)
        evaluations += len(genomes)
        if fitness.max() == n:
            return evaluations
        s.tell(genomes, fitness)
    return max_evaluations


def best_after(f, n: int, representation: str, budget: int, seed: int, population: int = 100, **params) -> float:
    """The best value (maximised) our GA finds within the budget."""
    s = make_strategy("ga", n, population, seed, np.zeros(n), representation=representation, **params)
    evaluations, best = 0, -np.inf
    while evaluations < budget:
        genomes = s.ask()
        fitness = np.array([f(g.astype(int)) for g in genomes])
        evaluations += len(genomes)
        best = max(best, float(fitness.max()))
        s.tell(genomes, fitness)
    return best


def main() -> None:
    """Run the three problems and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=15)
    args = parser.parse_args()
    seeds = range(args.seeds)
    theirs = [deap_onemax(s) for s in seeds]
    ours = [our_onemax(s) for s in seeds]
    print(
        f"OneMax-100, evaluations to the optimum over {args.seeds} seeds: DEAP's example median {statistics.median(theirs):.0f} "
        f"(min {min(theirs)}, max {max(theirs)}); ours median {statistics.median(ours):.0f} (min {min(ours)}, max {max(ours)}); "
        f"ratio {statistics.median(ours) / statistics.median(theirs):.2f}"
    )
    values, weights, capacity = discrete.knapsack_instance(30, 0)
    optimum = discrete.knapsack_optimum(values, weights, capacity)
    gaps = [(optimum - best_after(discrete.knapsack, 30, "binary", 10_000, s)) / optimum for s in seeds]
    print(
        f"knapsack 30 items (optimum {optimum:.0f}), 10,000 evaluations: relative gap median {statistics.median(gaps):.4f}, "
        f"max {max(gaps):.4f}, optimum reached in {sum(g == 0 for g in gaps)}/{len(gaps)} seeds"
    )
    best_tour = discrete.optimal_tour_length(20)
    tour_gaps = [
        max(
            0.0,
            (-best_after(lambda o: -discrete.tour_length(o), 20, "permutation", 60_000, s, population=200, tournament_size=5) - best_tour)
            / best_tour,
        )
        for s in seeds
    ]
    print(
        f"TSP 20 cities on a circle (optimal tour {best_tour:.4f}), 60,000 evaluations: relative gap median "
        f"{statistics.median(tour_gaps):.4f}, max {max(tour_gaps):.4f}, optimal in {sum(g < 1e-9 for g in tour_gaps)}/{len(tour_gaps)} seeds"
    )


if __name__ == "__main__":
    main()
