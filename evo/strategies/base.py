"""The strategy interface: ask for a population, tell its fitness; the base class does the bookkeeping.

Strategies keep DEAP inside themselves; everything outside passes NumPy arrays.
Every strategy owns its random state and can save it to (and restore it from)
plain arrays and JSON, so a resumed run continues exactly where it stopped.

The template (what a subclass writes, and what the base does around it):

* In the class statement, ``class CMAES(Strategy, name="cmaes", params_type=CMAESParams, default_population=16)``:

  * ``name``: the registry's name, also the prefix of every error message;
  * ``params_type``: a frozen dataclass of the strategy's own parameters, each
    declared with :func:`evo.strategies.params.param` (type, default, range,
    one-line doc);
  * ``default_population``: the run config's default population.

  They become class attributes of those names.
* ``_setup()``: the base's ``__init__`` checks the common arguments
  (``n_params`` >= 1, ``population`` in :data:`POPULATION`, ``seed`` >= 0,
  ``init`` finite of shape ``(n_params,)``) and the keyword parameters against
  ``params_type`` (unknown name, wrong type or out of range: a ValueError
  naming the strategy and the parameter), stores ``self.params`` as the
  dataclass instance, then calls ``_setup()``, where the subclass checks what
  spans several values (e.g. ``elite < population``) and builds its state.
* ``_ask() -> ndarray``: the pending population ``(population, n_params)``; it
  must return the same genomes until the next tell. :meth:`ask` calls it and
  marks the population as pending.
* ``_tell(genomes, fitness)``: the update. It receives float64 arrays of the
  shapes ``(population, n_params)`` and ``(population,)``, already checked,
  with every non-finite fitness (NaN, ±inf: a failed evaluation) already
  replaced by ``-inf``; it is only called with a population pending. After it,
  the base updates the best-so-far sample and counts the generation (``generation_``).
* ``_state_dict() -> dict`` / ``_load_state_dict(state)``: the subclass's own
  state (``{name: ndarray | JSON-able}``); the base adds and restores the
  best-so-far sample (``best_genome``, ``best_fitness``) and ``generation``.
  Nothing is pending after a restore: the next ask draws the same population again.
* ``best()``: by default the best-so-far sample. A subclass overrides it when
  it reports another genome (a GA its hall of fame's best, a distribution
  strategy its mean), and it must return a measured fitness where one exists
  (never ``nan``); before any tell the fitness is ``-inf``.

The four hooks ``_ask``, ``_tell``, ``_state_dict`` and ``_load_state_dict`` are abstract: a subclass that lacks one
cannot be built; ``_setup`` does nothing by default.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from evo.strategies.params import Range, check_integer, check_number, check_params

__all__ = [
    "POPULATION",
    "PrivateRandom",
    "Strategy",
    "check_common",
    "check_integer",
    "check_number",
    "random_state_from_json",
    "random_state_to_json",
]

#: Individuals per generation, for every strategy, the run config and the CLI.
_POPULATION_MIN, _POPULATION_MAX = 2, 1_000_000
POPULATION = Range(ge=_POPULATION_MIN, le=_POPULATION_MAX)


def check_common(owner: str, n_params: Any, population: Any, seed: Any, init: Any) -> tuple[int, int, int, np.ndarray]:
    """The constructor arguments every strategy shares, checked: (n_params, population, seed, init)."""
    n_params = check_integer(owner, "n_params", n_params, 1)
    population = check_integer(owner, "population", population, _POPULATION_MIN, _POPULATION_MAX)
    seed = check_integer(owner, "seed", seed, 0)
    init = np.asarray(init, dtype=np.float64)
    if init.shape != (n_params,) or not np.all(np.isfinite(init)):
        raise ValueError(f"{owner}: init must be a finite array of shape ({n_params},), got shape {init.shape}")
    return n_params, population, seed, init


def random_state_to_json(state: tuple) -> list:
    """Python ``random.getstate()`` as JSON-able lists."""
    version, internal, gauss_next = state
    return [int(version), [int(x) for x in internal], gauss_next]


def random_state_from_json(data: list) -> tuple:
    """Inverse of :func:`random_state_to_json`."""
    version, internal, gauss_next = data
    return (int(version), tuple(int(x) for x in internal), None if gauss_next is None else float(gauss_next))


class PrivateRandom:
    """Mixin of a strategy whose DEAP operators draw from Python's ``random``: it keeps its own state of it in ``_py_state``."""

    _py_state: tuple

    @contextmanager
    def _private_random(self) -> Iterator[None]:
        """Run DEAP's operators on this strategy's own `random` state, then restore the caller's."""
        caller_state = random.getstate()
        random.setstate(self._py_state)
        try:
            yield
        finally:
            self._py_state = random.getstate()
            random.setstate(caller_state)


class Strategy(ABC):
    """Ask/tell optimiser over flat float genomes; fitness is maximised.

    Constructor arguments: ``n_params``, ``population`` (individuals per
    generation), ``seed`` (int), ``init`` (``(n_params,)`` starting point or
    centre), plus the strategy's own keyword parameters (its ``params_type``).
    See the module docstring for what a subclass implements.
    """

    name: ClassVar[str] = "strategy"
    #: Frozen dataclass of the strategy's own parameters (defaults and ranges); every subclass names one.
    params_type: ClassVar[type]
    #: The run config's default population for this strategy.
    default_population: ClassVar[int] = 50

    def __init_subclass__(
        cls, name: str | None = None, params_type: type | None = None, default_population: int | None = None, **kwargs: Any
    ) -> None:
        """A strategy names itself, its parameters' dataclass and its default population in its class statement."""
        super().__init_subclass__(**kwargs)
        if name is not None:
            cls.name = name
        if params_type is not None:
            cls.params_type = params_type
        if default_population is not None:
            cls.default_population = default_population

    def __init__(self, n_params: int, population: int, seed: int, init: np.ndarray, **params: Any) -> None:
        self.n_params, self.population, self.seed, self.init = check_common(self.name, n_params, population, seed, init)
        self.params: Any = check_params(self.name, self.params_type, params)
        # Best-so-far sample: the genome with the highest finite fitness told so far (the first of equals).
        self._best_genome = self.init.copy()
        self._best_fitness = -math.inf
        self._pending = False
        self.generation_ = 0
        self._setup()

    def _setup(self) -> None:
        """The subclass's own checks and state, once the arguments and ``self.params`` are checked (subclass hook)."""

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> np.ndarray:
        """Genomes ``(population, n_params)`` to evaluate next (the same until :meth:`tell`)."""
        genomes = np.asarray(self._ask(), dtype=np.float64)
        if genomes.shape != (self.population, self.n_params):
            raise RuntimeError(f"{self.name}: _ask returned shape {genomes.shape}, expected ({self.population}, {self.n_params})")
        self._pending = True
        return genomes

    def tell(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """Update with the fitness ``(population,)`` of the genomes from :meth:`ask`; non-finite fitness counts as ``-inf``."""
        if not self._pending:
            raise RuntimeError(f"{self.name}: tell() called without a pending ask()")
        genomes, fitness = self.check_tell(genomes, fitness)
        # A failed evaluation (NaN, or an infinity no real fitness reaches) is simply the worst.
        fitness = np.where(np.isfinite(fitness), fitness, -np.inf)
        self._tell(genomes, fitness)
        top = int(np.argmax(fitness))
        if fitness[top] > self._best_fitness:
            self._best_genome, self._best_fitness = genomes[top].copy(), float(fitness[top])
        self._pending = False
        self.generation_ += 1

    def check_tell(self, genomes: np.ndarray, fitness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``genomes`` and ``fitness`` as float arrays of the shapes :meth:`ask` gave, or a ValueError."""
        genomes = np.asarray(genomes, dtype=np.float64)
        fitness = np.asarray(fitness, dtype=np.float64)
        if genomes.shape != (self.population, self.n_params) or fitness.shape != (self.population,):
            raise ValueError(
                f"{self.name}: tell expects genomes ({self.population}, {self.n_params}) and fitness ({self.population},), "
                f"got {genomes.shape} and {fitness.shape}"
            )
        return genomes, fitness

    @abstractmethod
    def _ask(self) -> np.ndarray:
        """The pending population (subclass hook; see the module docstring)."""

    @abstractmethod
    def _tell(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """The update from checked arrays, failures at -inf (subclass hook; see the module docstring)."""

    # ------------------------------------------------------------------ results
    def best(self) -> tuple[np.ndarray, float]:
        """The genome to report and deploy, and its measured fitness; here the best-so-far sample (``init``, -inf before any tell)."""
        return self.best_sample()

    def best_sample(self) -> tuple[np.ndarray, float]:
        """The best evaluated genome so far and its fitness (``init`` and -inf before any finite fitness)."""
        return self._best_genome.copy(), self._best_fitness

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """State as ``{name: ndarray | JSON-able}``, enough to resume exactly."""
        return {
            **self._state_dict(),
            "best_genome": self._best_genome.copy(),
            "best_fitness": np.array(self._best_fitness),  # may be -inf: kept out of JSON
            "generation": self.generation_,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned; nothing is pending afterwards."""
        self._load_state_dict(state)
        if "best_genome" in state:  # checkpoints from before the base tracked it lack it
            best_genome = np.array(state["best_genome"], dtype=np.float64)
            if best_genome.shape != (self.n_params,):
                raise ValueError(f"{self.name}: saved best_genome has shape {best_genome.shape}, expected ({self.n_params},)")
            self._best_genome, self._best_fitness = best_genome, float(np.asarray(state["best_fitness"]))
        self.generation_ = int(state["generation"])
        self._pending = False

    @abstractmethod
    def _state_dict(self) -> dict[str, Any]:
        """The subclass's own state (subclass hook)."""

    @abstractmethod
    def _load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the subclass's own state (subclass hook)."""


@runtime_checkable
class MultiObjective(Protocol):
    """A strategy that keeps a Pareto archive of fitness against size, declared among its bases."""

    def pareto_front(self) -> list[dict[str, Any]]:
        """The archive by increasing complexity, one ``{"genome", "fitness", "complexity", ...}`` per member; empty if none is kept."""
        ...
