"""PGPE (ClipUp) and CR-FM-NES: what each promises, checked on the benchmark functions of evo.functions.

The registry-wide contract (determinism, exact resume, failures, parameter ranges, progress on a shifted
sphere) is tests/test_strategies.py's; here: CR-FM-NES converges like a covariance-adapting ES on the
sphere, on the ill-conditioned ellipsoid and on Rosenbrock; PGPE's symmetric samples, ClipUp's speed
limit, the step sizes' behaviour on linear and quadratic fitness, and progress on the sphere and ellipsoid.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from evo.functions import ellipsoid, rosenbrock, sphere
from evo.strategies import make_strategy
from evo.strategies.crfmnes import distance_weight_base, rank_weights


def minimise(strategy, f, generations: int) -> float:
    """Run ``generations`` ask/tell steps on ``-f`` and return ``f`` at the strategy's mean."""
    for _ in range(generations):
        genomes = strategy.ask()
        strategy.tell(genomes, -f(genomes))
    return float(f(strategy.best()[0]))


# ------------------------------------------------------------------ CR-FM-NES
@pytest.mark.parametrize(
    ("f", "n", "x0", "sigma", "generations", "target"),
    [
        (sphere, 40, 3.0, 2.0, 400, 1e-10),
        # Condition number 1e6: only a strategy that learns the axis scales (D) gets there in this budget.
        (ellipsoid, 30, 3.0, 2.0, 900, 1e-10),
        # The bent valley needs the rank-one direction v to follow it.
        (rosenbrock, 10, 0.0, 0.5, 1500, 1e-10),
    ],
    ids=["sphere", "ellipsoid", "rosenbrock"],
)
def test_crfmnes_converges(f, n: int, x0: float, sigma: float, generations: int, target: float) -> None:
    # Measured (seed 0, population 16): sphere 40-D 4e-15 after 400 generations; ellipsoid 30-D and
    # Rosenbrock 10-D below 1e-20 well inside their budgets. SNES stalls on the ellipsoid at this budget.
    strategy = make_strategy("crfmnes", n, 16, 0, np.full(n, x0), sigma=sigma)
    assert minimise(strategy, f, generations) < target


def test_crfmnes_learns_the_ellipsoid_axis_scales() -> None:
    n = 10
    strategy = make_strategy("crfmnes", n, 16, 1, np.full(n, 3.0), sigma=2.0)
    minimise(strategy, ellipsoid, 300)
    # f = sum 10^(6 i / (n-1)) x_i^2: the ideal scaling D_i is proportional to 10^(-3 i / (n-1)),
    # three decades from the first axis to the last.
    decades = np.log10(strategy.D_[0] / strategy.D_[-1])
    assert 2.0 < decades < 4.0, decades


def test_crfmnes_samples_are_mirrored_and_step_size_grows_on_a_slope() -> None:
    n = 20
    strategy = make_strategy("crfmnes", n, 10, 2, np.zeros(n), sigma=0.1)
    for _ in range(30):
        genomes = strategy.ask()
        np.testing.assert_allclose(genomes[:5] + genomes[5:], np.tile(2 * strategy.mean_, (5, 1)), atol=1e-12)
        strategy.tell(genomes, genomes.sum(axis=1))  # a linear slope: the mean should run, sigma grow
    assert strategy.sigma_ > 1.0
    assert strategy.mean_.sum() > 10.0


def test_crfmnes_weights_and_distance_base() -> None:
    w = rank_weights(10)
    assert math.isclose(w.sum(), 0.0, abs_tol=1e-12) and np.all(np.diff(w) <= 0) and w[-1] == -0.1
    for n in (2, 100, 10_000):
        a = distance_weight_base(n)
        assert math.isclose((1 + a * a) * math.exp(a * a / 2) / 0.24, 10 + n, rel_tol=1e-9)


def test_crfmnes_failures_rank_last_nearest_first() -> None:
    n = 8
    strategy = make_strategy("crfmnes", n, 8, 3, np.zeros(n), sigma=1.0)
    genomes = strategy.ask()
    fitness = -sphere(genomes)
    fitness[[1, 2, 6]] = -np.inf
    z = strategy._population_noise()
    order = strategy._ordered(fitness, z)
    assert set(order[-3:]) == {1, 2, 6}
    assert list(order[-3:]) == sorted([1, 2, 6], key=lambda i: np.sum(z[i] ** 2))
    strategy.tell(genomes, fitness)
    assert np.all(np.isfinite(strategy.ask()))


# ------------------------------------------------------------------ PGPE with ClipUp
def test_pgpe_samples_are_symmetric_pairs() -> None:
    strategy = make_strategy("pgpe", 12, 16, 0, np.ones(12), sigma=0.3)
    genomes = strategy.ask()
    np.testing.assert_allclose(genomes[:8] + genomes[8:], 2.0, atol=1e-12)


def test_pgpe_clipup_never_moves_the_mean_faster_than_max_speed() -> None:
    n, max_speed = 30, 0.2
    strategy = make_strategy("pgpe", n, 20, 1, np.zeros(n), sigma=0.5, max_speed=max_speed)
    steps = []
    for _ in range(40):
        before = strategy.mean_.copy()
        genomes = strategy.ask()
        strategy.tell(genomes, 1e6 * genomes[:, 0])  # a steep slope: the gradient's scale must not matter
        steps.append(np.linalg.norm(strategy.mean_ - before))
    assert max(steps) <= max_speed + 1e-12
    # Momentum builds the velocity up to the limit along a constant gradient.
    assert steps[-1] > 0.99 * max_speed
    assert strategy.mean_[0] > 0.8 * sum(steps)  # and it points along the slope


def test_pgpe_step_sizes_stay_on_a_slope_and_shrink_near_an_optimum() -> None:
    n = 20
    linear = make_strategy("pgpe", n, 20, 2, np.zeros(n), sigma=0.3)
    for _ in range(20):
        genomes = linear.ask()
        linear.tell(genomes, genomes @ np.arange(n))
    # On a linear fitness the pair f(m + e) + f(m - e) is constant: the centred ranks of a pair cancel,
    # so the sigma gradient is exactly zero.
    np.testing.assert_allclose(linear.sigma_, 0.3, rtol=1e-12)

    bowl = make_strategy("pgpe", n, 20, 2, np.zeros(n), sigma=0.3, max_speed=0.02)
    minimise(bowl, sphere, 200)
    assert np.mean(bowl.sigma_) < 0.1


@pytest.mark.parametrize(("f", "generations", "fraction"), [(sphere, 600, 1e-3), (ellipsoid, 1500, 1e-4)], ids=["sphere", "ellipsoid"])
def test_pgpe_approaches_the_optimum(f, generations: int, fraction: float) -> None:
    # ClipUp moves the mean by at most max_speed per step, so the mean ends in a ball of about that
    # radius around the optimum: a small speed for precision. Measured (seed 0): sphere 40-D from 356
    # to 0.02; ellipsoid 20-D from 1.6e7 to about 30.
    n = 40 if f is sphere else 20
    strategy = make_strategy("pgpe", n, 20, 0, np.full(n, 3.0), sigma=1.0, max_speed=0.05 if f is sphere else 0.5)
    start = float(f(np.full(n, 3.0)))
    assert minimise(strategy, f, generations) < fraction * start
