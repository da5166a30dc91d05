"""Discrete genomes for the GA: OneMax (binary), a 0/1 knapsack with a known optimum, a TSP with a known optimal tour."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import evo
from evo.strategies import make_strategy
from tests.helpers import to_disk_and_back

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import discrete  # noqa: E402 - the examples' problems, shared with the shipped configs


def test_onemax_reaches_the_optimum(tmp_path):
    result = evo.minimize(
        discrete.onemax, dimension=60, strategy="ga", representation="binary", maximize=True, target=60, budget=20_000, out=tmp_path
    )
    assert result.value == 60 and result.stopped_by == "target_fitness"
    assert result.solution.dtype.kind == "i" and set(result.solution.tolist()) == {1}


def test_knapsack_reaches_its_dynamic_programming_optimum(tmp_path):
    optimum = discrete.knapsack_optimum(*discrete.knapsack_instance(20, 3))
    result = evo.minimize(
        lambda bits: discrete.knapsack(bits, 20, 3),
        dimension=20,
        strategy="ga",
        representation="binary",
        maximize=True,
        budget=8_000,
        seed=1,
        out=tmp_path,
    )
    assert result.value == optimum


def test_tsp_on_a_circle_finds_the_polygon(tmp_path):
    result = evo.minimize(
        lambda order: discrete.tour_length(order, 10, 2),
        dimension=10,
        strategy="ga",
        representation="permutation",
        budget=6_000,
        seed=0,
        population=100,
        out=tmp_path,
    )
    assert sorted(result.solution.tolist()) == list(range(10))
    assert result.value == pytest.approx(discrete.optimal_tour_length(10))


@pytest.mark.parametrize(("representation", "bounds"), [("binary", None), ("integer", (-3, 4)), ("permutation", None)])
@pytest.mark.parametrize("crossover", [None, "uniform", "pmx"])
def test_every_generation_stays_valid_and_resumes_exactly(representation, bounds, crossover):
    if (crossover == "pmx") != (representation == "permutation") and crossover is not None:
        with pytest.raises(ValueError, match="does not fit"):
            make_strategy("ga", 12, 20, 0, np.zeros(12), representation=representation, bounds=bounds, crossover=crossover)
        return
    params = {"representation": representation, "bounds": bounds, "crossover": crossover}
    a = make_strategy("ga", 12, 20, 0, np.zeros(12), **params)
    target = np.arange(12)
    for generation in range(6):
        genomes = a.ask()
        if representation == "permutation":
            assert all(sorted(g) == list(range(12)) for g in genomes.astype(int).tolist())
        else:
            low, high = (0, 1) if bounds is None else bounds
            assert np.all(genomes == np.round(genomes)) and genomes.min() >= low and genomes.max() <= high
        a.tell(genomes, -np.abs(genomes - target).sum(axis=1))
        if generation == 2:
            b = make_strategy("ga", 12, 20, 0, np.zeros(12), **params)
            b.load_state_dict(to_disk_and_back(a.state_dict()))
    for _ in range(3):  # b resumed after generation 3 of 6: three more bring it level with a
        genomes = b.ask()
        b.tell(genomes, -np.abs(genomes - target).sum(axis=1))
    np.testing.assert_array_equal(a.ask(), b.ask())
    assert a.best()[1] == b.best()[1]


def test_integer_genomes_need_bounds_and_discrete_genomes_need_the_ga():
    with pytest.raises(ValueError, match="integer representation needs bounds"):
        make_strategy("ga", 4, 10, 0, np.zeros(4), representation="integer")
    with pytest.raises(evo.ConfigError, match="discrete genomes need strategy.type = 'ga'"):
        evo.minimize(discrete.onemax, dimension=8, strategy="cmaes", representation="binary", budget=10)


@pytest.mark.parametrize("strategy", ["ga", "cmaes", "snes", "openai_es"])
def test_every_strategy_keeps_real_genomes_inside_the_bounds(strategy, tmp_path):
    lower, upper = np.array([0.5, -1.0, 2.0]), np.array([1.0, 1.0, 3.0])
    s = make_strategy(strategy, 3, 16, 0, np.array([0.75, 0.0, 2.5]), bounds=(lower, upper), **({"sigma": 5.0} if strategy != "ga" else {}))
    for _ in range(10):
        genomes = s.ask()
        assert np.all(genomes >= lower) and np.all(genomes <= upper)
        s.tell(genomes, -np.sum((genomes - np.array([1.0, 1.0, 2.0])) ** 2, axis=1))  # optimum at the box's corner
    best, _ = s.best()
    assert np.all(best >= lower) and np.all(best <= upper)
