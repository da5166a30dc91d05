"""Discrete problems for the GA's binary, integer and permutation genomes (see onemax.toml, knapsack.toml, tsp.toml).

Each has an optimum known in advance, so a run's gap to it is a plain number.
"""

from __future__ import annotations

import numpy as np


def onemax(bits: np.ndarray) -> float:
    """The number of ones (maximise; optimum = the length)."""
    return float(np.sum(bits))


def knapsack_instance(items: int = 30, instance: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """(values, weights, capacity) of a random 0/1 knapsack; capacity half the total weight."""
    rng = np.random.default_rng(instance)
    values = rng.integers(10, 100, items).astype(float)
    weights = rng.integers(5, 60, items).astype(float)
    return values, weights, float(weights.sum() // 2)


def knapsack_optimum(values: np.ndarray, weights: np.ndarray, capacity: float) -> float:
    """The best value by dynamic programming over integer weights."""
    best = np.zeros(int(capacity) + 1)
    for v, w in zip(values, weights.astype(int)):
        best[w:] = np.maximum(best[w:], best[:-w] + v) if w > 0 else best + v
    return float(best[-1])


def knapsack(bits: np.ndarray, items: int = 30, instance: int = 0) -> float:
    """Total value of the chosen items (maximise); over capacity: minus the excess weight, so any feasible choice beats it."""
    values, weights, capacity = knapsack_instance(items, instance)
    weight = float(bits @ weights)
    return float(bits @ values) if weight <= capacity else capacity - weight


def circle_cities(cities: int = 20, instance: int = 0) -> np.ndarray:
    """Cities on the unit circle in shuffled order: the optimal tour visits them around it, length 2 n sin(pi / n)."""
    angles = 2 * np.pi * np.arange(cities) / cities
    order = np.random.default_rng(instance).permutation(cities)
    return np.column_stack([np.cos(angles), np.sin(angles)])[order]


def tour_length(order: np.ndarray, cities: int = 20, instance: int = 0) -> float:
    """Length of the closed tour visiting the cities in ``order`` (minimise)."""
    points = circle_cities(cities, instance)[np.asarray(order)]
    return float(np.sum(np.linalg.norm(points - np.roll(points, -1, axis=0), axis=1)))


def optimal_tour_length(cities: int = 20) -> float:
    """The perimeter of the regular polygon the cities form."""
    return float(2 * cities * np.sin(np.pi / cities))
