"""Box constraints ``lower <= x <= upper`` on a genome, shared by the strategies that honour them.

A strategy takes its bounds as the ``bounds`` parameter of its ``params_type``
(``param(None, config=False)``: the run supplies them from the task, the user
never writes them in ``[strategy]``), as ``(lower, upper)``: two arrays of
``n_params`` values, or two numbers for every gene. Each strategy handles them
its own standard way:

* ``ga``: DEAP's bounded operators, simulated binary crossover
  (``cxSimulatedBinaryBounded``) and polynomial mutation
  (``mutPolynomialBounded``), Deb & Agrawal (1995) / Deb (2001); the first
  population is uniform inside the box.
* ``cmaes``: repair (each sample projected onto the box, and the update
  learns from the repaired points, Hansen 2016, "The CMA Evolution Strategy:
  A Tutorial", appendix B) or resampling (a sample outside is drawn again, up
  to ``resample_limit`` times, then repaired).
* ``snes`` / ``openai_es`` / ``pgpe`` / ``crfmnes``: mirrored clipping: a sample outside is reflected
  at the bound it crossed (and clipped if it is still outside, far beyond the
  box); the update uses the noise that drew it, as without bounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Bounds = tuple[np.ndarray, np.ndarray]


def check_bounds(owner: str, bounds: Any, n_params: int) -> Bounds | None:
    """``(lower, upper)`` as finite float arrays of shape ``(n_params,)`` with lower < upper, or a ValueError; None stays None."""
    if bounds is None:
        return None
    try:
        lower, upper = bounds
        lower = np.broadcast_to(np.asarray(lower, dtype=np.float64), (n_params,)).copy()
        upper = np.broadcast_to(np.asarray(upper, dtype=np.float64), (n_params,)).copy()
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: bounds must be (lower, upper), each a number or {n_params} numbers, got {bounds!r}") from None
    if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))):
        raise ValueError(f"{owner}: bounds must be finite")
    if np.any(lower >= upper):
        i = int(np.argmax(lower >= upper))
        raise ValueError(f"{owner}: bounds need lower < upper for every gene; gene {i} has [{lower[i]}, {upper[i]}]")
    return lower, upper


def clip(x: np.ndarray, bounds: Bounds | None) -> np.ndarray:
    """``x`` projected onto the box (unchanged without bounds)."""
    if bounds is None:
        return x
    return np.clip(x, bounds[0], bounds[1])


def mirror(x: np.ndarray, bounds: Bounds | None) -> np.ndarray:
    """``x`` reflected at the bound it crossed, then clipped (a point more than a box width outside lands on the far bound)."""
    if bounds is None:
        return x
    lower, upper = bounds
    reflected = np.where(x < lower, 2.0 * lower - x, np.where(x > upper, 2.0 * upper - x, x))
    return np.clip(reflected, lower, upper)


def uniform_in(rng: np.random.Generator, bounds: Bounds, rows: int) -> np.ndarray:
    """``rows`` points drawn uniformly inside the box."""
    lower, upper = bounds
    return lower + (upper - lower) * rng.random((rows, lower.size))
