"""What :mod:`evo.strategies.cmaes` adds to DEAP's CMA-ES: the active update and the stall tests that trigger IPOP restarts.

The update follows Hansen (2016), "The CMA Evolution Strategy: A Tutorial"
(arXiv:1604.00772), section 3 and table 1, with pycma's choices where the
tutorial leaves one open (``cmu`` with the 1/4 term, ``cs`` and ``damps``), so
that the same population size gives the same learning rates as pycma 4. It
works on the attributes of a ``deap.cma.Strategy`` (centroid, sigma, pc, ps,
C, B, diagD, BD, cond, update_count), so a checkpoint holds the same arrays
whichever update ran.

The stall tests are pycma's defaults (``tolfun``, ``tolx``, ``noeffectaxis``,
``noeffectcoord``, ``conditioncov``, ``tolstagnation``), see pycma's
``CMAOptions``; :class:`StallHistory` keeps the per-generation figures they need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

TOLFUN = 1e-11
TOLX_FACTOR = 1e-11  # times the initial sigma
CONDITION_LIMIT = 1e14


@dataclass(frozen=True)
class ActiveParams:
    """Weights (positive then negative, summing to ``1 - alpha``) and learning rates for one (n, lambda)."""

    weights: np.ndarray
    mu: int
    mueff: float
    c1: float
    cmu: float
    cc: float
    cs: float
    damps: float
    chi_n: float


def active_params(n: int, lam: int) -> ActiveParams:
    """The tutorial's table 1 with pycma's constants."""
    raw = math.log((lam + 1) / 2) - np.log(np.arange(1, lam + 1))
    mu = lam // 2
    positive, negative = raw[:mu], raw[mu:]
    mueff = positive.sum() ** 2 / (positive**2).sum()
    mueff_neg = negative.sum() ** 2 / (negative**2).sum() if negative.size and negative.sum() != 0 else 0.0
    alpha_cov = 2.0
    c1 = alpha_cov / ((n + 1.3) ** 2 + mueff)
    cmu = min(1 - c1, alpha_cov * (0.25 + mueff + 1 / mueff - 2) / ((n + 2) ** 2 + alpha_cov * mueff / 2))
    cc = (4 + mueff / n) / (n + 4 + 2 * mueff / n)
    cs = (mueff + 2) / (n + mueff + 3)
    damps = 1 + 2 * max(0.0, math.sqrt((mueff - 1) / (n + 1)) - 1) + cs
    alpha_mu = 1 + c1 / cmu
    alpha_mueff = 1 + 2 * mueff_neg / (mueff + 2)
    alpha_posdef = (1 - c1 - cmu) / (n * cmu)
    weights = np.empty(lam)
    weights[:mu] = positive / positive.sum()
    if negative.size:
        weights[mu:] = min(alpha_mu, alpha_mueff, alpha_posdef) * negative / np.abs(negative).sum()
    chi_n = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n**2))
    return ActiveParams(weights, mu, float(mueff), c1, cmu, cc, cs, damps, chi_n)


def active_update(es: Any, ranked: np.ndarray, p: ActiveParams) -> None:
    """One generation of the active CMA-ES on a ``deap.cma.Strategy`` ``es``; ``ranked`` holds the samples best first."""
    n = ranked.shape[1]
    old = np.asarray(es.centroid, dtype=np.float64)
    sigma = float(es.sigma)
    y = (ranked - old) / sigma  # (lambda, n)
    es.centroid = old + sigma * (p.weights[: p.mu] @ y[: p.mu])
    y_w = (es.centroid - old) / sigma
    inv_sqrt_c = (es.B / es.diagD) @ es.B.T  # C^-1/2
    es.ps = (1 - p.cs) * es.ps + math.sqrt(p.cs * (2 - p.cs) * p.mueff) * (inv_sqrt_c @ y_w)
    norm_ps = float(np.linalg.norm(es.ps))
    es.update_count += 1
    hsig = norm_ps / math.sqrt(1 - (1 - p.cs) ** (2 * es.update_count)) < (1.4 + 2 / (n + 1)) * p.chi_n
    es.pc = (1 - p.cc) * es.pc + hsig * math.sqrt(p.cc * (2 - p.cc) * p.mueff) * y_w
    # Negative weights are rescaled by the sample's Mahalanobis length, so a long failed step cannot wreck C.
    weights = p.weights.copy()
    negative = weights < 0
    if negative.any():
        lengths = np.sum((y[negative] @ inv_sqrt_c.T) ** 2, axis=1)
        weights[negative] *= n / np.maximum(lengths, 1e-300)
    delta_h = (1 - hsig) * p.cc * (2 - p.cc)
    es.C = (1 + p.c1 * delta_h - p.c1 - p.cmu * p.weights.sum()) * es.C + p.c1 * np.outer(es.pc, es.pc) + p.cmu * (weights * y.T) @ y
    es.C = (es.C + es.C.T) / 2  # keep it exactly symmetric against rounding
    # pycma caps one step of log(sigma) at 1.
    es.sigma = np.float64(sigma * math.exp(min(1.0, (p.cs / p.damps) * (norm_ps / p.chi_n - 1))))
    if not (np.all(np.isfinite(es.C)) and math.isfinite(float(es.sigma))):
        # A search that diverged (overflowing values at a stalled point): start its adaptation again where it stands.
        es.C, es.pc, es.ps, es.sigma = np.eye(n), np.zeros(n), np.zeros(n), np.float64(1.0)
    diag_d, b = np.linalg.eigh(es.C)
    top = float(diag_d.max())
    if not 1e-8 < top < 1e8:
        # sigma and the scale of C can drift apart (sigma up, C down) at a stalled point until one overflows;
        # moving the scale from C into sigma leaves the distribution sigma^2 C exactly where it is.
        es.C, es.pc, diag_d = es.C / top, es.pc / math.sqrt(top), diag_d / top
        es.sigma = np.float64(es.sigma * math.sqrt(top))
    order = np.argsort(diag_d)
    diag_d = np.sqrt(np.maximum(diag_d[order], 1e-300))
    es.B, es.diagD = b[:, order], diag_d
    es.BD = es.B * es.diagD
    es.cond = diag_d[-1] / diag_d[0]


class StallHistory:
    """Per-generation best and median fitness since the last (re)start, and the tests that say the search stalled."""

    def __init__(self, best: list[float] | None = None, median: list[float] | None = None) -> None:
        self.best = list(best or [])
        self.median = list(median or [])

    def record(self, fitness: np.ndarray) -> None:
        """Note one generation's fitness (maximised; failures at -inf)."""
        self.best.append(float(np.max(fitness)))
        self.median.append(float(np.median(fitness)))

    def stalled(self, es: Any, fitness: np.ndarray, sigma0: float) -> str | None:
        """The name of the first of pycma's termination tests that holds, else None."""
        n, lam, g = len(es.centroid), len(fitness), len(self.best)
        finite = fitness[np.isfinite(fitness)]
        window = 10 + math.ceil(30 * n / lam)
        if g >= window and finite.size == fitness.size:
            recent = np.asarray(self.best[-window:])
            if np.all(np.isfinite(recent)) and max(recent.max(), finite.max()) - min(recent.min(), finite.min()) < TOLFUN:
                return "tolfun"
        sigma = float(es.sigma)
        if np.all(sigma * np.maximum(np.abs(es.pc), np.sqrt(np.diag(es.C))) < TOLX_FACTOR * sigma0):
            return "tolx"
        axis = g % n
        centroid = np.asarray(es.centroid)
        if np.all(centroid == centroid + 0.1 * sigma * es.diagD[axis] * es.B[:, axis]):
            return "noeffectaxis"
        if np.any(centroid == centroid + 0.2 * sigma * np.sqrt(np.diag(es.C))):
            return "noeffectcoord"
        if float(es.cond) ** 2 > CONDITION_LIMIT:
            return "conditioncov"
        stagnation = int(100 + 100 * n**1.5 / lam)  # pycma's tolstagnation
        k = 20
        if g > stagnation + k:
            early, late = slice(-stagnation - k, -stagnation), slice(-k, None)
            if np.median(self.best[late]) <= np.median(self.best[early]) and np.median(self.median[late]) <= np.median(self.median[early]):
                return "tolstagnation"
        return None
