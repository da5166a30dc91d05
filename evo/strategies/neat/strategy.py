"""NEAT: NeuroEvolution of Augmenting Topologies, behind the ask/tell interface.

Stanley & Miikkulainen (2002), "Evolving Neural Networks through Augmenting
Topologies", Evolutionary Computation 10(2):99-127. Feedforward networks only.
The parts: :mod:`.innovation` (the registry of global innovation numbers),
:mod:`.genes` (genomes as flat rows plus node ids and innovations),
:mod:`.reproduction` (crossover and mutations), :mod:`.speciation`
(distance, species, fitness sharing, stagnation); selection by NSGA-II uses
:mod:`evo.strategies.pareto`, shared with :mod:`evo.strategies.cnn_arch`.

Every node computes ``act(bias + response * sum(w x))`` with ``response``
4.9 by default: the paper's steepened sigmoid ``1 / (1 + exp(-4.9 x))``
(applied to every node as there). Measured on XOR (100 seeds, population 150,
``benchmarks/neat_xor.py``): solved in 100/100 runs, 1,400 evaluations on
average (the paper: 4,755); with ``response = 1`` it needs 1,900, and 2,300
with ``threshold_step = 0.3`` instead of 0.1 (3-bit parity agrees on both).

Genomes travel in the fixed-length flat layout of :class:`networks.neat.NEATSpec`;
the strategy keeps, next to the flat rows, each slot's node id and each
connection slot's innovation number. The random state is a private
``numpy.random.Generator``.

``selection = "nsga2"`` replaces speciation and fitness sharing by NSGA-II
(Deb, Pratap, Agarwal & Meyarivan (2002), "A fast and elitist multiobjective
genetic algorithm: NSGA-II", IEEE Trans. Evolutionary Computation 6(2)) on
two objectives: maximise the task fitness, minimise the enabled-connection
count. Each generation the last survivors and their evaluated offspring are
pooled (exact duplicates dropped), NSGA-II keeps ``population`` of them, and
the next offspring come from the same NEAT crossover and mutations, each
parent the winner of a binary tournament on (front rank, crowding distance)
drawn from the private generator. Genomes with a failed (non-finite) fitness
survive only when too few finite ones exist. A Pareto archive of every genome
evaluated (non-dominated by fitness and connection count; a genome evaluated
again takes its latest fitness) is :meth:`NEAT.pareto_front`.
Measured on XOR (seeds 0-19, 30 generations, default parameters): with
population 150 all 20 runs solve it, after 16 generations on average
(speciation: about 10); with population 100 only 15 of 20 do, the others
stay at the empty network's 0.75, which dominates every structure that does
not yet beat it (speciation is what protects such new structure).
"""

from __future__ import annotations

import math
from functools import partial
from types import SimpleNamespace
from typing import Any

import numpy as np

from evo.strategies.base import Strategy, check_integer, check_number
from evo.strategies.neat.genes import Genes, minimal_genomes
from evo.strategies.neat.innovation import InnovationRegistry
from evo.strategies.neat.reproduction import crossover, mutate
from evo.strategies.neat.speciation import Species
from evo.strategies.pareto import ParetoArchive, nsga2_survivors, tournament_winners
from networks.neat import NEATSpec

_ALLOWED = (
    "n_inputs, n_outputs, max_nodes, max_connections, hidden_activation, c1, c2, c3, compatibility_threshold, "
    "target_species, threshold_step, threshold_min, normalize_min_genes, stagnation, elitism, "
    "elitism_min_species_size, survival_threshold, crossover_prob, interspecies_prob, disable_inherited_prob, "
    "weight_mutation_prob, weight_perturb_prob, weight_sigma, weight_init_std, bias_init_std, weight_max, "
    "add_connection_prob, add_node_prob, toggle_prob, add_connection_tries, response, selection"
)
SELECTIONS = ("speciation", "nsga2")

_number = partial(check_number, "neat")
_integer = partial(check_integer, "neat")


class NEAT(Strategy):
    """NEAT over fixed-length flat genomes (layout of :class:`networks.neat.NEATSpec`).

    ``n_inputs``, ``n_outputs``, ``max_nodes`` and ``max_connections`` must be
    those of the NEATSpec that evaluates the genomes (``n_params`` is checked
    against them); ``hidden_activation`` names new hidden nodes' activation.
    Speciation: ``c1``, ``c2``, ``c3``, ``normalize_min_genes`` (the distance's
    N is 1 below it), ``compatibility_threshold`` (start),
    ``target_species`` (default ``max(2, round(population / 15))``),
    ``threshold_step``, ``threshold_min``. Selection: ``stagnation``,
    ``elitism`` (kept per species of at least ``elitism_min_species_size``),
    ``survival_threshold``, ``crossover_prob``, ``interspecies_prob``,
    ``disable_inherited_prob``. Mutation (per child): ``weight_mutation_prob``,
    then per weight and bias ``weight_perturb_prob`` of N(0, ``weight_sigma``)
    else a fresh N(0, ``weight_init_std``) (biases N(0, ``bias_init_std``)),
    values clipped to +-``weight_max``; ``add_connection_prob`` (up to
    ``add_connection_tries`` random pairs), ``add_node_prob``, ``toggle_prob``.
    ``response`` is written into every node. ``init`` (a flat genome) gives
    the mean of the first input -> output weights and output biases.
    ``selection``: ``"speciation"`` (the NEAT paper's) or ``"nsga2"`` (see the
    module docstring; the speciation, stagnation, elitism, ``survival_threshold``
    and ``interspecies_prob`` parameters are then unused).
    """

    name = "neat"

    def __init__(
        self,
        n_params: int,
        population: int,
        seed: int,
        init: np.ndarray,
        *,
        n_inputs: int | None = None,
        n_outputs: int | None = None,
        max_nodes: int = 64,
        max_connections: int = 256,
        hidden_activation: str = "tanh",
        c1: float = 1.0,
        c2: float = 1.0,
        c3: float = 0.4,
        compatibility_threshold: float = 3.0,
        target_species: int | None = None,
        threshold_step: float = 0.1,
        threshold_min: float = 0.3,
        normalize_min_genes: int = 20,
        stagnation: int = 15,
        elitism: int = 1,
        elitism_min_species_size: int = 5,
        survival_threshold: float = 0.2,
        crossover_prob: float = 0.75,
        interspecies_prob: float = 0.001,
        disable_inherited_prob: float = 0.75,
        weight_mutation_prob: float = 0.8,
        weight_perturb_prob: float = 0.9,
        weight_sigma: float = 0.5,
        weight_init_std: float = 1.0,
        bias_init_std: float = 1.0,
        weight_max: float = 8.0,
        add_connection_prob: float = 0.1,
        add_node_prob: float = 0.05,
        toggle_prob: float = 0.0,
        add_connection_tries: int = 20,
        response: float = 4.9,
        selection: str = "speciation",
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ValueError(f"neat: unknown parameter(s) {sorted(unknown)}; allowed: {_ALLOWED}")
        if selection not in SELECTIONS:
            raise ValueError(f"neat: selection must be one of {list(SELECTIONS)}, got {selection!r}")
        if n_inputs is None or n_outputs is None:
            raise ValueError("neat: n_inputs and n_outputs are required (they must match the NEATSpec network)")
        n_params = _integer("n_params", n_params, 1)
        population = _integer("population", population, 2)
        seed = _integer("seed", seed, 0)
        try:
            spec = NEATSpec(
                _integer("n_inputs", n_inputs, 1),
                _integer("n_outputs", n_outputs, 1),
                _integer("max_nodes", max_nodes, 2),
                _integer("max_connections", max_connections, 1),
                hidden_activation=hidden_activation,
            )
        except ValueError as exc:
            raise ValueError(f"neat: {exc}") from None
        if n_params != spec.n_params:
            raise ValueError(
                f"neat: n_params = {n_params} does not match the NEAT layout of max_nodes = {spec.max_nodes} and "
                f"max_connections = {spec.max_connections} ({spec.n_params} values)"
            )
        init = np.asarray(init, dtype=np.float64)
        if init.shape != (n_params,) or not np.all(np.isfinite(init)):
            raise ValueError(f"neat: init must be a finite array of shape ({n_params},), got shape {init.shape}")
        if target_species is None:
            target_species = max(2, round(population / 15))
        super().__init__(
            n_params,
            population,
            seed,
            init,
            n_inputs=spec.n_inputs,
            n_outputs=spec.n_outputs,
            max_nodes=spec.max_nodes,
            max_connections=spec.max_connections,
            hidden_activation=hidden_activation,
            c1=_number("c1", c1, 0.0),
            c2=_number("c2", c2, 0.0),
            c3=_number("c3", c3, 0.0),
            compatibility_threshold=_number("compatibility_threshold", compatibility_threshold, 0.0, low_open=True),
            target_species=_integer("target_species", target_species, 1),
            threshold_step=_number("threshold_step", threshold_step, 0.0),
            threshold_min=_number("threshold_min", threshold_min, 0.0, low_open=True),
            normalize_min_genes=_integer("normalize_min_genes", normalize_min_genes, 0),
            stagnation=_integer("stagnation", stagnation, 1),
            elitism=_integer("elitism", elitism, 0),
            elitism_min_species_size=_integer("elitism_min_species_size", elitism_min_species_size, 1),
            survival_threshold=_number("survival_threshold", survival_threshold, 0.0, 1.0, low_open=True),
            crossover_prob=_number("crossover_prob", crossover_prob, 0.0, 1.0),
            interspecies_prob=_number("interspecies_prob", interspecies_prob, 0.0, 1.0),
            disable_inherited_prob=_number("disable_inherited_prob", disable_inherited_prob, 0.0, 1.0),
            weight_mutation_prob=_number("weight_mutation_prob", weight_mutation_prob, 0.0, 1.0),
            weight_perturb_prob=_number("weight_perturb_prob", weight_perturb_prob, 0.0, 1.0),
            weight_sigma=_number("weight_sigma", weight_sigma, 0.0),
            weight_init_std=_number("weight_init_std", weight_init_std, 0.0),
            bias_init_std=_number("bias_init_std", bias_init_std, 0.0),
            weight_max=_number("weight_max", weight_max, 0.0, low_open=True),
            add_connection_prob=_number("add_connection_prob", add_connection_prob, 0.0, 1.0),
            add_node_prob=_number("add_node_prob", add_node_prob, 0.0, 1.0),
            toggle_prob=_number("toggle_prob", toggle_prob, 0.0, 1.0),
            add_connection_tries=_integer("add_connection_tries", add_connection_tries, 1),
            response=_number("response", response),
            selection=selection,
        )
        self.spec = spec
        self.p = SimpleNamespace(**self.params)
        self.rng_ = np.random.default_rng(self.seed)
        self.generation_ = 0
        self.best_genome_: np.ndarray | None = None
        self.best_fitness_ = math.nan
        self.registry = InnovationRegistry(spec.n_inputs + spec.n_outputs)
        self.species = Species(spec, self.p)
        # NSGA-II: the last survivors (evaluated) and the Pareto archive of every genome evaluated.
        self.parents_ = Genes(
            np.zeros((0, spec.n_params)), np.zeros((0, spec.max_nodes), dtype=np.int64), np.zeros((0, spec.max_connections), dtype=np.int64)
        )
        self.parent_fitness_ = np.zeros(0)
        self.archive = ParetoArchive(spec.n_params)
        p = self.p
        first = minimal_genomes(
            spec, self.registry, self.init, population, self.rng_, p.response, p.bias_init_std, p.weight_init_std, p.weight_max
        )
        self.pop_, self.node_ids_, self.innov_ = first
        if self.nsga2:
            self.species_of_ = np.zeros(population, dtype=np.int64)
        else:
            self.species_of_ = self.species.speciate(self.pop_, self.innov_, None, self.generation_)

    @property
    def nsga2(self) -> bool:
        """Whether selection is NSGA-II (else speciation)."""
        return self.params["selection"] == "nsga2"

    @property
    def genes(self) -> Genes:
        """The current population: flat rows, node ids, innovations."""
        return Genes(self.pop_, self.node_ids_, self.innov_)

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> np.ndarray:
        """Genomes ``(population, n_params)`` to evaluate next (the same until :meth:`tell`)."""
        return self.pop_.copy()

    def tell(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """Record fitness, then breed the next generation (speciated, or by NSGA-II survival and tournaments)."""
        genomes, fitness = self.check_tell(genomes, fitness)
        if not np.array_equal(genomes, self.pop_):
            raise ValueError("neat: tell must receive the genomes of the last ask (NEAT tracks their genes)")
        fitness = np.where(np.isnan(fitness), -np.inf, fitness)
        finite = np.isfinite(fitness)
        if finite.any():
            champion = int(np.argmax(np.where(finite, fitness, -np.inf)))
            if not fitness[champion] <= self.best_fitness_:  # also true while best is nan
                self.best_fitness_ = float(fitness[champion])
                self.best_genome_ = self.pop_[champion].copy()
        else:
            champion = -1
        if self.nsga2:
            self.archive.update(self.pop_, fitness, self.spec.complexity(self.pop_))
            self._nsga2_reproduce(fitness)
        else:
            self._reproduce(fitness, champion)
        self.generation_ += 1

    # ------------------------------------------------------------------ reproduction
    def _crossover(self, a: np.ndarray, b: np.ndarray, fitness: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Children of population rows ``a`` and ``b`` (``b = -1``: a copy of ``a``), genes aligned by innovation number."""
        return crossover(self.spec, self.genes, a, b, fitness, self.rng_, self.p.disable_inherited_prob)

    def _mutate(self, flat: np.ndarray, node_ids: np.ndarray, innov: np.ndarray) -> None:
        """Mutate the genomes in place: weights and biases, toggles, then structural growth."""
        mutate(self.spec, Genes(flat, node_ids, innov), self.p, self.registry, self.rng_)

    def _reproduce(self, fitness: np.ndarray, champion: int) -> None:
        """Speciated reproduction: elites and children by fitness sharing, then the children speciated."""
        current = self.genes
        plan = self.species.select_parents(self.species_of_, fitness, champion, self.generation_, self.rng_)
        children = crossover(self.spec, current, plan.a, plan.b, fitness, self.rng_, self.p.disable_inherited_prob)
        mutate(self.spec, children, self.p, self.registry, self.rng_)
        new = Genes.concatenate([current.take(plan.elites), children])
        rows = plan.representatives
        reps = (self.species_of_[rows], current.flat[rows], current.innov[rows])
        self.species_of_ = self.species.speciate(new.flat, new.innov, reps, self.generation_)
        self.pop_, self.node_ids_, self.innov_ = new

    def _nsga2_reproduce(self, fitness: np.ndarray) -> None:
        """Survivors of parents + offspring by NSGA-II, then offspring from binary (rank, crowding) tournaments."""
        P, rng = self.population, self.rng_
        pool = Genes.concatenate([self.parents_, self.genes])
        pool_fitness = np.concatenate([self.parent_fitness_, fitness])
        # A clone of a survivor would count twice: keep the first copy (the parent) of equal genomes.
        _, first = np.unique(pool.flat, axis=0, return_index=True)
        unique = np.zeros(len(pool.flat), dtype=bool)
        unique[first] = True
        finite = np.isfinite(pool_fitness)
        # Too few finite genomes: failures, then duplicates, fill up (ranked last).
        fallback = np.concatenate([np.flatnonzero(unique & ~finite), np.flatnonzero(~unique)])
        survivors = nsga2_survivors(
            pool_fitness, self.spec.complexity(pool.flat), P, candidates=np.flatnonzero(unique), fallback=fallback, pool_order=True
        )
        draw = rng.integers(P, size=(2, 2 * P))
        winners = tournament_winners(survivors, draw[0], draw[1])
        a, b = winners[:P], winners[P:]
        b = np.where(rng.random(P) < self.p.crossover_prob, b, -1)
        self.parents_ = pool.take(survivors.index)
        self.parent_fitness_ = pool_fitness[survivors.index]
        children = crossover(self.spec, self.parents_, a, b, self.parent_fitness_, rng, self.p.disable_inherited_prob)
        mutate(self.spec, children, self.p, self.registry, rng)
        self.pop_, self.node_ids_, self.innov_ = children
        self.species_of_ = np.zeros(P, dtype=np.int64)

    def pareto_front(self) -> list[dict[str, Any]]:
        """The Pareto archive (NSGA-II mode; empty under speciation), by increasing complexity.

        One dict per member: ``genome`` (flat array), ``fitness`` (float),
        ``complexity`` (enabled connections, int), ``hidden_nodes`` (int).
        """
        hidden = self.spec.count_hidden(self.archive.genomes)
        return [member | {"hidden_nodes": int(h)} for member, h in zip(self.archive.members(), hidden)]

    # ------------------------------------------------------------------ results
    def best(self) -> tuple[np.ndarray, float]:
        """The best genome ever evaluated and its fitness (the first genome and ``nan`` before any tell)."""
        if self.best_genome_ is None:
            return self.pop_[0].copy(), math.nan
        return self.best_genome_.copy(), self.best_fitness_

    def best_sample(self) -> tuple[np.ndarray, float]:
        """The best evaluated genome and its fitness (for NEAT, the same as :meth:`best`)."""
        return self.best()

    @property
    def n_species(self) -> int:
        """Number of species in the current population (0 under NSGA-II selection)."""
        return len(self.species)

    @property
    def compatibility_threshold(self) -> float:
        """The current speciation threshold."""
        return self.species.threshold

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Population with node ids and innovations, species, registry, best genome and RNG state.

        Under NSGA-II also ``selection``, the survivors (``parents``, their node
        ids, innovations and fitness) and the Pareto archive (``archive``,
        ``archive_fitness``, ``archive_complexity``); a speciation state has exactly the keys it always had.
        """
        return {
            "population": self.pop_.copy(),
            "node_ids": self.node_ids_.copy(),
            "innovations": self.innov_.copy(),
            "species_of": self.species_of_.copy(),
            **self.species.state_dict(),
            **self.registry.state_dict(),
            "best_genome": (self.best_genome_ if self.best_genome_ is not None else np.zeros((0,))).copy(),
            "best_fitness": np.array(self.best_fitness_),
            "rng_state": self.rng_.bit_generator.state,
            "generation": self.generation_,
        } | (
            {
                "selection": "nsga2",
                "parents": self.parents_.flat.copy(),
                "parent_node_ids": self.parents_.node_ids.copy(),
                "parent_innovations": self.parents_.innov.copy(),
                "parent_fitness": self.parent_fitness_.copy(),
                **self.archive.state_dict(),
            }
            if self.nsga2
            else {}
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        P, spec = self.population, self.spec
        saved_selection = str(state.get("selection", "speciation"))
        if saved_selection != self.params["selection"]:
            raise ValueError(f"neat: the state was saved with selection = {saved_selection!r}, this strategy uses {self.params['selection']!r}")
        population = np.asarray(state["population"], dtype=np.float64)
        if population.shape != (P, self.n_params):
            raise ValueError(f"neat: saved population has shape {population.shape}, expected ({P}, {self.n_params})")
        self.pop_ = population.copy()
        self.node_ids_ = np.array(state["node_ids"], dtype=np.int64).reshape(P, spec.max_nodes)
        self.innov_ = np.array(state["innovations"], dtype=np.int64).reshape(P, spec.max_connections)
        self.species_of_ = np.array(state["species_of"], dtype=np.int64).reshape(P)
        self.species.load_state_dict(state)
        self.registry.load_state_dict(state)
        best = np.asarray(state["best_genome"], dtype=np.float64)
        self.best_genome_ = best.copy() if best.size else None
        self.best_fitness_ = float(np.asarray(state["best_fitness"]))
        self.rng_ = np.random.default_rng()
        self.rng_.bit_generator.state = state["rng_state"]
        self.generation_ = int(state["generation"])
        if self.nsga2:
            self.parents_ = Genes(
                np.asarray(state["parents"], dtype=np.float64).reshape(-1, self.n_params).copy(),
                np.array(state["parent_node_ids"], dtype=np.int64).reshape(-1, spec.max_nodes),
                np.array(state["parent_innovations"], dtype=np.int64).reshape(-1, spec.max_connections),
            )
            self.parent_fitness_ = np.asarray(state["parent_fitness"], dtype=np.float64).reshape(-1).copy()
            archive = np.asarray(state["archive"], dtype=np.float64).reshape(-1, self.n_params)
            self.archive.load_state_dict(state, complexity=spec.complexity(archive))
