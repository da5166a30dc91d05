"""Evolution strategies behind one ask/tell interface, and the registry that names them.

Adding a strategy is adding a module with a :class:`Strategy` subclass and one
line in :data:`STRATEGIES`; the tests run over every entry of the registry.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evo.strategies.base import Strategy
from evo.strategies.cmaes import CMAES
from evo.strategies.cnn_arch import ArchitectureSearch
from evo.strategies.ga import GeneticAlgorithm
from evo.strategies.openai_es import OpenAIES
from evo.strategies.snes import SNES

STRATEGIES: dict[str, type[Strategy]] = {
    GeneticAlgorithm.name: GeneticAlgorithm,
    CMAES.name: CMAES,
    SNES.name: SNES,
    OpenAIES.name: OpenAIES,
    ArchitectureSearch.name: ArchitectureSearch,
}


def make_strategy(name: str, n_params: int, population: int, seed: int, init: np.ndarray, **params: Any) -> Strategy:
    """Build the strategy registered as ``name``; ValueError for an unknown name or bad parameters."""
    try:
        cls = STRATEGIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown strategy {name!r}; allowed: {sorted(STRATEGIES)}") from None
    return cls(n_params, population, seed, init, **params)


__all__ = ["CMAES", "OpenAIES", "SNES", "STRATEGIES", "GeneticAlgorithm", "Strategy", "make_strategy"]
