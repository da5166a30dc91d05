"""Benchmark functions, usable as fitness callables: ``callable = "evo.functions:rastrigin"``.

Each takes one solution ``(n,)`` (and returns a float) or a population
``(P, n)`` (and returns ``(P,)``), so it works with ``vectorized`` either way.
All are minimised, with f* = 0 at x* = 0 (Rosenbrock: at x* = 1), as in the
definitions of Hansen et al., "Real-Parameter Black-Box Optimization
Benchmarking: Noiseless Functions Definitions" (BBOB, 2009) without their
shifts and rotations, and in pycma's ``cma.ff``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["BENCHMARKS", "ackley", "ellipsoid", "rastrigin", "rosenbrock", "sphere"]


def _rows(x: np.ndarray) -> tuple[np.ndarray, bool]:
    x = np.asarray(x, dtype=np.float64)
    return (x[None], True) if x.ndim == 1 else (x, False)


def _out(values: np.ndarray, single: bool) -> np.ndarray | float:
    return float(values[0]) if single else values


def sphere(x: np.ndarray) -> np.ndarray | float:
    """sum x_i^2."""
    X, single = _rows(x)
    return _out(np.sum(X * X, axis=1), single)


def ellipsoid(x: np.ndarray) -> np.ndarray | float:
    """sum 10^(6 (i-1)/(n-1)) x_i^2: axis scales spanning 1e3, condition number 1e6 (BBOB f2's scaling)."""
    X, single = _rows(x)
    n = X.shape[1]
    scales = 10.0 ** (6.0 * np.arange(n) / max(n - 1, 1))
    return _out(np.sum(scales * X * X, axis=1), single)


def rosenbrock(x: np.ndarray) -> np.ndarray | float:
    """sum 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2: a bent valley, optimum at x = 1."""
    X, single = _rows(x)
    return _out(np.sum(100.0 * (X[:, 1:] - X[:, :-1] ** 2) ** 2 + (1.0 - X[:, :-1]) ** 2, axis=1), single)


def rastrigin(x: np.ndarray) -> np.ndarray | float:
    """10 n + sum x_i^2 - 10 cos(2 pi x_i): about 10^n local minima on a sphere's bowl."""
    X, single = _rows(x)
    return _out(10.0 * X.shape[1] + np.sum(X * X - 10.0 * np.cos(2.0 * math.pi * X), axis=1), single)


def ackley(x: np.ndarray) -> np.ndarray | float:
    """-20 exp(-0.2 sqrt(mean x^2)) - exp(mean cos(2 pi x)) + 20 + e: a flat plate with a deep hole."""
    X, single = _rows(x)
    a = -20.0 * np.exp(-0.2 * np.sqrt(np.mean(X * X, axis=1)))
    b = -np.exp(np.mean(np.cos(2.0 * math.pi * X), axis=1))
    return _out(np.maximum(a + b + 20.0 + math.e, 0.0), single)


#: name -> (function, the optimum x* as a function of n, the usual search box)
BENCHMARKS = {
    "sphere": (sphere, np.zeros, (-5.0, 5.0)),
    "ellipsoid": (ellipsoid, np.zeros, (-5.0, 5.0)),
    "rosenbrock": (rosenbrock, np.ones, (-5.0, 5.0)),
    "rastrigin": (rastrigin, np.zeros, (-5.12, 5.12)),
    "ackley": (ackley, np.zeros, (-32.768, 32.768)),
}
