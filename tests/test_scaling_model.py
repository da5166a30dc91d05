"""The maths of benchmarks/scaling_model.py: chunk sizing as the evaluator does it, T(W), E(W), the driver bottleneck."""

from __future__ import annotations

import math

import pytest

from benchmarks.scaling_model import (
    Costs,
    auto_chunk_size,
    driver_bottleneck,
    efficiency,
    max_useful_workers,
    predict,
    steady_chunk_size,
)
from evo.evaluators import RayEvaluator

COSTS = Costs(population=100, driver=0.010, chunk_fixed=0.002, per_individual=0.001, dispatch_driver=0.0005, dispatch_other=0.003)


@pytest.mark.parametrize("population", [1, 7, 50, 64, 1000])
@pytest.mark.parametrize("workers", [1, 2, 3, 8, 512])
@pytest.mark.parametrize("seconds", [None, 1e-6, 4e-4, 3e-3, 0.5])
def test_auto_chunk_size_is_the_evaluators_rule(population, workers, seconds):
    # The evaluator's own rule, without starting Ray: the model must follow it if it changes.
    evaluator = RayEvaluator.__new__(RayEvaluator)
    evaluator.chunk_size, evaluator.workers, evaluator.min_task_seconds = "auto", workers, 0.01
    evaluator._seconds_per_individual = seconds
    assert auto_chunk_size(population, workers, seconds, 0.01) == evaluator._chunk_size(population)


def test_generation_time_by_hand():
    # W = 4: chunks of 25 (10 ms needs 10 individuals at 1.08 ms each, fewer than 100 / 4), one round.
    p = predict(COSTS, 100, 4)
    assert (p.chunk, p.chunks, p.rounds) == (25, 4, 1)
    assert p.dispatch == pytest.approx(4 * 0.0005)
    assert p.compute == pytest.approx(0.002 + 25 * 0.001 + 0.003)
    assert p.total == pytest.approx(0.010 + 0.002 + 0.030)
    one = predict(COSTS, 100, 1)
    assert (one.chunk, one.chunks) == (100, 1)
    assert one.total == pytest.approx(0.010 + 0.0005 + 0.002 + 0.100 + 0.003)
    assert efficiency(COSTS, 100, 4) == pytest.approx(one.total / (4 * p.total))
    assert efficiency(COSTS, 100, 1) == pytest.approx(1.0)


def test_fewer_cores_than_workers_stretch_the_compute():
    alone, shared = predict(COSTS, 100, 4), predict(COSTS, 100, 4, cores=2)
    assert shared.compute == pytest.approx(2 * alone.compute)
    assert shared.serial == pytest.approx(alone.serial)
    assert predict(COSTS, 100, 2, cores=2).compute == pytest.approx(predict(COSTS, 100, 2).compute)


def test_serialisation_grows_the_driver_part_with_the_chunk():
    costs = Costs(100, 0.0, 0.0, 0.001, 0.0005, 0.0, ser_driver_fixed=1e-5, ser_driver_per_individual=1e-6, ser_worker_per_individual=2e-6)
    p = predict(costs, 100, 4, chunk=25)
    assert p.dispatch == pytest.approx(4 * (0.0005 + 24 * 1e-6))
    assert p.compute == pytest.approx(25 * 0.001 + 24 * 2e-6)


def test_small_chunks_stop_at_min_task_seconds():
    # 1 ms an individual: a 10 ms chunk holds 10, so 100 individuals make at most 10 chunks whatever W.
    costs = Costs(100, 0.001, 0.0, 0.001, 0.0001, 0.001)
    assert steady_chunk_size(costs, 100, 512) == 10
    assert max_useful_workers(costs, 100) == 10
    assert predict(costs, 100, 512).chunks == 10
    assert efficiency(costs, 100, 512) == pytest.approx(efficiency(costs, 100, 10) * 10 / 512)


def test_steady_chunk_size_counts_each_chunks_fixed_part():
    # A chunk's fixed 8 ms inflates the measured time per individual of small chunks, so "auto" settles on larger ones.
    costs = Costs(1000, 0.0, 0.008, 0.0001, 0.0, 0.0)
    chunk = steady_chunk_size(costs, 1000, 1000)
    seconds = (math.ceil(1000 / chunk) * 0.008 + 1000 * 0.0001) / 1000
    assert auto_chunk_size(1000, 1000, seconds) == chunk  # a fixed point of the evaluator's rule
    assert chunk > 1


def test_driver_bottleneck_is_where_serial_reaches_parallel():
    costs = Costs(1024, 0.050, 0.0, 0.005, 0.001, 0.002)
    w = driver_bottleneck(costs, 1024)
    assert w is not None and w > 1
    before, at = predict(costs, 1024, w - 1), predict(costs, 1024, w)
    assert before.serial < before.compute and at.serial >= at.compute
    # A driver that does almost nothing: compute stays ahead until the chunks run out.
    assert driver_bottleneck(Costs(64, 1e-6, 0.0, 0.05, 1e-6, 0.0), 64) is None
