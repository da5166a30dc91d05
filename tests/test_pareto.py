"""The shared NSGA-II / Pareto-archive module: survivors, tournaments, thinning and the archive's rules."""

from __future__ import annotations

import math

import numpy as np

from evo.strategies.pareto import (
    ParetoArchive,
    Survivors,
    non_dominated,
    nsga2_survivors,
    thin_by_crowding,
    tournament_winners,
)


def test_survivors_are_the_best_fronts_and_failures_only_fill_up() -> None:
    fitness = np.array([0.9, 0.5, -np.inf, 0.7, 0.2, 0.6])
    complexity = np.array([9, 1, 0, 5, 1, 8])
    # Front 0: (0.9, 9), (0.5, 1), (0.7, 5); front 1: (0.6, 8), (0.2, 1) is dominated by (0.5, 1).
    top = nsga2_survivors(fitness, complexity, 3)
    assert sorted(top.index.tolist()) == [0, 1, 3] and np.all(top.rank == 0)
    assert math.isinf(top.crowding[top.index.tolist().index(0)])  # an extreme of its front
    in_order = nsga2_survivors(fitness, complexity, 3, pool_order=True)
    assert in_order.index.tolist() == [0, 1, 3]
    # More survivors than finite points: the failure comes last, ranked inf with crowding 0.
    everyone = nsga2_survivors(fitness, complexity, 6)
    assert everyone.index[-1] == 2 and everyone.rank[-1] == math.inf and everyone.crowding[-1] == 0.0
    assert set(everyone.index.tolist()) == set(range(6))
    fallback = nsga2_survivors(fitness, complexity, 6, candidates=np.array([0, 1, 2]), fallback=np.array([4, 5, 2]))
    assert fallback.index.tolist()[2:] == [4, 5, 2]


def test_tournaments_prefer_the_lower_front_then_the_larger_crowding_and_ties_go_to_the_first() -> None:
    survivors = Survivors(np.arange(4), np.array([0.0, 0.0, 1.0, 0.0]), np.array([1.0, 2.0, np.inf, 1.0]))
    first = np.array([0, 2, 0, 3, 1])
    second = np.array([1, 0, 3, 0, 2])
    assert tournament_winners(survivors, first, second).tolist() == [1, 0, 0, 3, 1]


def test_thinning_keeps_the_fittest_and_the_extremes() -> None:
    fitness = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    complexity = np.array([1, 2, 3, 4, 5, 60])
    front = non_dominated(fitness, complexity)
    kept = thin_by_crowding(fitness, complexity, front, 3)
    assert len(kept) == 3 and kept[0] == 0 and kept[-1] == 5
    np.testing.assert_array_equal(thin_by_crowding(fitness, complexity, front, 10), front)


def test_archive_takes_each_genomes_latest_evaluation() -> None:
    archive = ParetoArchive(2)
    genomes = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    archive.update(genomes, np.array([0.5, 0.8, 0.1]), np.array([1, 3, 0]))
    assert archive.fitness.tolist() == [0.1, 0.5, 0.8] and archive.complexity.tolist() == [0, 1, 3]
    # Genome 1 evaluated again, worse: its new value replaces the old one, and it leaves the front.
    archive.update(genomes[1:2], np.array([0.3]), np.array([3]))
    assert archive.fitness.tolist() == [0.1, 0.5]
    # A failed re-evaluation takes a genome off the archive too.
    archive.update(genomes[:1], np.array([-np.inf]), np.array([1]))
    assert archive.fitness.tolist() == [0.1]
    genome, value = archive.best()
    np.testing.assert_array_equal(genome, genomes[2])
    assert value == 0.1
    restored = ParetoArchive(2)
    restored.load_state_dict(archive.state_dict())
    assert restored.members()[0]["fitness"] == 0.1 and ParetoArchive(2).best() is None
