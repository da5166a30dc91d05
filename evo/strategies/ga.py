"""Genetic algorithm built from DEAP's operators, behind the ask/tell interface.

A generational GA in the style of DEAP's ``varAnd`` (Fortin et al., 2012,
"DEAP: Evolutionary Algorithms Made Easy", JMLR 13): tournament selection
(Miller & Goldberg, 1995), blend crossover BLX-alpha (Eshelman & Schaffer,
1993) or simulated binary crossover SBX (Deb & Agrawal, 1995), Gaussian
mutation, and elitism through a hall of fame (De Jong, 1975).

DEAP stays inside this module: individuals are a private ``list`` subclass,
and nothing is registered in ``deap.creator``. DEAP's operators draw from
Python's global :mod:`random`; this strategy swaps its own private state in
for each call and puts the caller's back afterwards, so its results depend
only on its seed, and other users of :mod:`random` are left undisturbed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from deap import base, tools

from evo.strategies.base import PrivateRandom, Strategy, random_state_from_json, random_state_to_json
from evo.strategies.params import param


class _MaxFitness(base.Fitness):
    """Single-objective fitness that DEAP maximises (positive weight)."""

    weights = (1.0,)


class _Individual(list):
    """A genome as the list of floats DEAP's operators edit in place, with its fitness."""

    def __init__(self, genes: Any = ()) -> None:
        super().__init__(genes)
        self.fitness = _MaxFitness()


def _individual(genes: list[float], fitness: float | None = None) -> _Individual:
    """An individual holding ``genes``, with ``fitness`` set when given."""
    ind = _Individual(genes)
    if fitness is not None:
        ind.fitness.values = (fitness,)
    return ind


@dataclass(frozen=True)
class GAParams:
    """The GA's parameters: defaults and allowed ranges."""

    sigma: float = param(0.1, gt=0.0, doc="standard deviation of the Gaussian mutation")
    indpb: float = param(0.1, ge=0.0, le=1.0, doc="probability that a mutation changes each gene")
    mutpb: float = param(1.0, ge=0.0, le=1.0, doc="probability that a child is mutated")
    cxpb: float = param(0.5, ge=0.0, le=1.0, doc="probability that a pair of children is crossed over")
    crossover: Literal["blend", "sbx"] = param("blend", doc="blend (BLX-alpha) or simulated binary crossover")
    alpha: float = param(0.5, ge=0.0, doc="BLX-alpha's extent beyond the parents")
    eta: float = param(15.0, gt=0.0, doc="SBX's crowding degree (large: children near their parents)")
    tournament_size: int = param(3, ge=1, doc="individuals per selection tournament")
    elite: int = param(2, ge=0, doc="hall-of-fame genomes copied unchanged into the next population (< population)")
    init_std: float = param(0.5, ge=0.0, doc="spread of the first population around init")


class GeneticAlgorithm(Strategy, PrivateRandom, name="ga", params_type=GAParams, default_population=100):
    """Generational GA: tournament selection, blend/SBX crossover, Gaussian mutation, elitism."""

    params: GAParams

    def _setup(self) -> None:
        self.elite = self.params.elite
        if self.elite >= self.population:
            raise ValueError(f"ga: elite must be smaller than population ({self.population}), got {self.elite}")

        # The first population comes from a throwaway Generator: it is stored
        # in the state, so the Generator never needs to be.
        rng = np.random.default_rng(self.seed)
        first = self.init + self.params.init_std * rng.standard_normal((self.population, self.n_params))
        first[0] = self.init  # the given starting point is always evaluated
        self.population_: np.ndarray = first
        # Private state of Python's `random`, which DEAP's operators use.
        self._py_state: tuple = random.Random(self.seed).getstate()
        # DEAP's HallOfFame cannot update when empty-sized, so keep at least one.
        self.hall_of_fame_ = tools.HallOfFame(max(self.elite, 1))

    # ------------------------------------------------------------------ ask / tell
    def _ask(self) -> np.ndarray:
        """The population bred by the last tell (the first one before any)."""
        return self.population_.copy()

    def _tell(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """Record fitness, update the hall of fame and breed the next population."""
        individuals = [_individual(g, f) for g, f in zip(genomes.tolist(), fitness.tolist())]
        with self._private_random():
            # Failed genomes never enter the hall of fame, so never become best() or elites.
            self.hall_of_fame_.update([ind for ind in individuals if math.isfinite(ind.fitness.values[0])])
            self.population_ = self._breed(individuals)

    def _breed(self, individuals: list[_Individual]) -> np.ndarray:
        """Next population: hall-of-fame elites unchanged, then varied tournament winners."""
        p = self.params
        # The hall of fame may hold fewer than `elite` distinct genomes (duplicates are kept once).
        elites = [list(ind) for ind in self.hall_of_fame_[: self.elite]]
        n_offspring = self.population - len(elites)
        winners = tools.selTournament(individuals, n_offspring, tournsize=p.tournament_size)
        offspring = [_Individual(w) for w in winners]  # copies: operators edit in place
        for first, second in zip(offspring[0::2], offspring[1::2]):
            if random.random() < p.cxpb:
                if p.crossover == "blend":
                    tools.cxBlend(first, second, alpha=p.alpha)
                else:
                    tools.cxSimulatedBinary(first, second, eta=p.eta)
        for child in offspring:
            if random.random() < p.mutpb:
                tools.mutGaussian(child, mu=0.0, sigma=p.sigma, indpb=p.indpb)
        return np.array(elites + offspring, dtype=np.float64).reshape(self.population, self.n_params)

    # ------------------------------------------------------------------ results
    def best(self) -> tuple[np.ndarray, float]:
        """The hall of fame's best genome and its fitness as measured (``init`` and -inf before any finite fitness).

        Of equal fitnesses the hall of fame keeps the latest, so its genome may
        differ from :meth:`best_sample`'s (the first); a re-evaluated elite keeps
        its first measurement.
        """
        if len(self.hall_of_fame_) == 0:
            return self.best_sample()
        top = self.hall_of_fame_[0]
        return np.array(top, dtype=np.float64), float(top.fitness.values[0])

    # ------------------------------------------------------------------ state
    def _state_dict(self) -> dict[str, Any]:
        """Population to evaluate, `random` state and hall of fame."""
        hof = list(self.hall_of_fame_)
        hof_genomes = np.array([list(ind) for ind in hof], dtype=np.float64).reshape(len(hof), self.n_params)
        return {
            "population": self.population_.copy(),
            "py_random_state": random_state_to_json(self._py_state),
            "hall_of_fame_genomes": hof_genomes,
            "hall_of_fame_fitness": np.array([ind.fitness.values[0] for ind in hof], dtype=np.float64),
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_state_dict` returned."""
        population = np.asarray(state["population"], dtype=np.float64)
        if population.shape != (self.population, self.n_params):
            raise ValueError(f"ga: saved population has shape {population.shape}, expected ({self.population}, {self.n_params})")
        genomes = np.asarray(state["hall_of_fame_genomes"], dtype=np.float64).reshape(-1, self.n_params)
        fitness = np.asarray(state["hall_of_fame_fitness"], dtype=np.float64).reshape(-1)
        hof = tools.HallOfFame(max(self.elite, 1))
        # Rebuild DEAP's two parallel lists directly, so ties keep their saved order
        # (re-inserting could reorder equal fitnesses): items best first, keys ascending.
        hof.items = [_individual(g, f) for g, f in zip(genomes.tolist(), fitness.tolist())]
        hof.keys = [ind.fitness for ind in reversed(hof.items)]
        self.population_ = population.copy()
        self._py_state = random_state_from_json(state["py_random_state"])
        self.hall_of_fame_ = hof
