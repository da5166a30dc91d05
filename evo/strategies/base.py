"""The strategy interface: ask for a population, tell its fitness.

Strategies keep DEAP inside themselves; everything outside passes NumPy arrays.
Every strategy owns its random state and can save it to (and restore it from)
plain arrays and JSON, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class Strategy(ABC):
    """Ask/tell optimiser over flat float genomes; fitness is maximised.

    Constructor arguments: ``n_params``, ``population`` (individuals per
    generation), ``seed`` (int), ``init`` (``(n_params,)`` starting point or
    centre), plus the strategy's own keyword parameters.
    """

    name: str = "strategy"

    def __init__(self, n_params: int, population: int, seed: int, init: np.ndarray, **params: Any) -> None:
        self.n_params = int(n_params)
        self.population = int(population)
        self.seed = int(seed)
        self.init = np.asarray(init, dtype=np.float64)
        self.params = params

    @abstractmethod
    def ask(self) -> np.ndarray:
        """Genomes ``(population, n_params)`` to evaluate next."""

    @abstractmethod
    def tell(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """Update with the fitness ``(population,)`` of the genomes from :meth:`ask`.

        Failed evaluations arrive as ``-inf``.
        """

    @abstractmethod
    def best(self) -> tuple[np.ndarray, float]:
        """The genome to report and deploy, and its fitness (``nan`` if not measured).

        A GA returns its hall of fame's best; a distribution strategy its mean.
        """

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """State as ``{name: ndarray | JSON-able}``, enough to resume exactly."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
