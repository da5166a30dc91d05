"""Evolution strategies behind one ask/tell interface, and the registry that names them.

Adding a strategy is adding a module with a :class:`Strategy` subclass (its
name, a ``params_type`` dataclass of defaults and ranges, ``_setup``,
``_ask``/``_tell``, see :mod:`evo.strategies.base`) and one line in a registry; the run config's
section for it is built from that dataclass. :data:`VECTOR_STRATEGIES` work on any flat genome (the
shared tests run over all of them); :data:`TOPOLOGY_STRATEGIES` evolve a
network's structure and need its spec's parameters (``n_inputs``, ``space``...).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evo.strategies.base import Strategy
from evo.strategies.cmaes import CMAES
from evo.strategies.cnn_arch import ArchitectureSearch
from evo.strategies.crfmnes import CRFMNES
from evo.strategies.ga import GeneticAlgorithm
from evo.strategies.neat import NEAT
from evo.strategies.openai_es import OpenAIES
from evo.strategies.pgpe import PGPE
from evo.strategies.snes import SNES

VECTOR_STRATEGIES: dict[str, type[Strategy]] = {
    GeneticAlgorithm.name: GeneticAlgorithm,
    CMAES.name: CMAES,
    SNES.name: SNES,
    OpenAIES.name: OpenAIES,
    PGPE.name: PGPE,
    CRFMNES.name: CRFMNES,
}
TOPOLOGY_STRATEGIES: dict[str, type[Strategy]] = {
    NEAT.name: NEAT,
    ArchitectureSearch.name: ArchitectureSearch,
}
STRATEGIES: dict[str, type[Strategy]] = {**VECTOR_STRATEGIES, **TOPOLOGY_STRATEGIES}


def make_strategy(name: str, n_params: int, population: int, seed: int, init: np.ndarray, **params: Any) -> Strategy:
    """Build the strategy registered as ``name``; ValueError for an unknown name or bad parameters."""
    try:
        cls = STRATEGIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown strategy {name!r}; allowed: {sorted(STRATEGIES)}") from None
    return cls(n_params, population, seed, init, **params)


__all__ = [
    "CMAES",
    "CRFMNES",
    "NEAT",
    "OpenAIES",
    "PGPE",
    "SNES",
    "STRATEGIES",
    "TOPOLOGY_STRATEGIES",
    "VECTOR_STRATEGIES",
    "ArchitectureSearch",
    "GeneticAlgorithm",
    "Strategy",
    "make_strategy",
]
