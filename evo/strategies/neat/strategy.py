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

import dataclasses
from typing import Any

import numpy as np

from evo.strategies.base import MultiObjective, Strategy
from evo.strategies.neat.genes import Genes, minimal_genomes
from evo.strategies.neat.innovation import InnovationRegistry
from evo.strategies.neat.params import NEATParams
from evo.strategies.neat.reproduction import crossover, mutate
from evo.strategies.neat.speciation import Species
from evo.strategies.pareto import ParetoArchive, nsga2_survivors, tournament_winners
from networks.neat import NEATSpec


class NEAT(Strategy, MultiObjective, name="neat", params_type=NEATParams, default_population=150):
    """NEAT over fixed-length flat genomes (layout of :class:`networks.neat.NEATSpec`).

    Parameters: :class:`~evo.strategies.neat.params.NEATParams` (the layout
    ``n_inputs`` ... ``hidden_activation`` must be the evaluating NEATSpec's;
    ``n_params`` is checked against it). ``init`` (a flat genome) gives the
    mean of the first input -> output weights and output biases. Under
    ``selection = "nsga2"`` (see the module docstring) the speciation,
    stagnation, elitism, ``survival_threshold`` and ``interspecies_prob``
    parameters are unused. :meth:`best` is the best genome evaluated so far.
    """

    params: NEATParams

    def _setup(self) -> None:
        p = self.params
        if p.n_inputs is None or p.n_outputs is None:
            raise ValueError("neat: n_inputs and n_outputs are required (they must match the NEATSpec network)")
        try:
            spec = NEATSpec(p.n_inputs, p.n_outputs, p.max_nodes, p.max_connections, hidden_activation=p.hidden_activation)
        except ValueError as exc:
            raise ValueError(f"neat: {exc}") from None
        if self.n_params != spec.n_params:
            raise ValueError(
                f"neat: n_params = {self.n_params} does not match the NEAT layout of max_nodes = {spec.max_nodes} and "
                f"max_connections = {spec.max_connections} ({spec.n_params} values)"
            )
        if p.target_species is None:
            self.params = p = dataclasses.replace(p, target_species=max(2, round(self.population / 15)))
        self.spec = spec
        self.rng_ = np.random.default_rng(self.seed)
        self.registry = InnovationRegistry(spec.n_inputs + spec.n_outputs)
        self.species = Species(spec, p)
        # NSGA-II: the last survivors (evaluated, with their fitness) and the Pareto archive of every genome evaluated.
        self.parents_ = Genes(
            np.zeros((0, spec.n_params)), np.zeros((0, spec.max_nodes), dtype=np.int64), np.zeros((0, spec.max_connections), dtype=np.int64)
        )
        self.parent_fitness_ = np.zeros(0)
        self.archive = ParetoArchive(spec.n_params)
        first = minimal_genomes(
            spec, self.registry, self.init, self.population, self.rng_, p.response, p.bias_init_std, p.weight_init_std, p.weight_max
        )
        self.pop_, self.node_ids_, self.innov_ = first
        if self.nsga2:
            self.species_of_ = np.zeros(self.population, dtype=np.int64)
        else:
            self.species_of_ = self.species.speciate(self.pop_, self.innov_, None, self.generation_)

    @property
    def nsga2(self) -> bool:
        """Whether selection is NSGA-II (else speciation)."""
        return self.params.selection == "nsga2"

    @property
    def genes(self) -> Genes:
        """The current population: flat rows, node ids, innovations."""
        return Genes(self.pop_, self.node_ids_, self.innov_)

    # ------------------------------------------------------------------ ask / tell
    def _ask(self) -> np.ndarray:
        """The current population's flat rows (the same until :meth:`tell`)."""
        return self.pop_.copy()

    def _tell(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """Breed the next generation (speciated, or by NSGA-II survival and tournaments)."""
        if not np.array_equal(genomes, self.pop_):
            raise ValueError("neat: tell must receive the genomes of the last ask (NEAT tracks their genes)")
        if self.nsga2:
            self.archive.update(self.pop_, fitness, self.spec.complexity(self.pop_))
            self._nsga2_reproduce(fitness)
        else:
            finite = np.isfinite(fitness)
            champion = int(np.argmax(np.where(finite, fitness, -np.inf))) if finite.any() else -1
            self._reproduce(fitness, champion)

    # ------------------------------------------------------------------ reproduction
    def _reproduce(self, fitness: np.ndarray, champion: int) -> None:
        """Speciated reproduction: elites and children by fitness sharing, then the children speciated."""
        current = self.genes
        plan = self.species.select_parents(self.species_of_, fitness, champion, self.generation_, self.rng_)
        children = crossover(self.spec, current, plan.a, plan.b, fitness, self.rng_, self.params.disable_inherited_prob)
        mutate(self.spec, children, self.params, self.registry, self.rng_)
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
        b = np.where(rng.random(P) < self.params.crossover_prob, b, -1)
        self.parents_ = pool.take(survivors.index)
        self.parent_fitness_ = pool_fitness[survivors.index]
        children = crossover(self.spec, self.parents_, a, b, self.parent_fitness_, rng, self.params.disable_inherited_prob)
        mutate(self.spec, children, self.params, self.registry, rng)
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
    @property
    def n_species(self) -> int:
        """Number of species in the current population (0 under NSGA-II selection)."""
        return len(self.species)

    @property
    def compatibility_threshold(self) -> float:
        """The current speciation threshold."""
        return self.species.threshold

    # ------------------------------------------------------------------ state
    def _state_dict(self) -> dict[str, Any]:
        """Population with node ids and innovations, species, registry and RNG state (the base adds the best genome).

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
            "rng_state": self.rng_.bit_generator.state,
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

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_state_dict` returned."""
        P, spec = self.population, self.spec
        saved_selection = str(state.get("selection", "speciation"))
        if saved_selection != self.params.selection:
            raise ValueError(
                f"neat: the state was saved with selection = {saved_selection!r}, this strategy uses {self.params.selection!r}"
            )
        population = np.asarray(state["population"], dtype=np.float64)
        if population.shape != (P, self.n_params):
            raise ValueError(f"neat: saved population has shape {population.shape}, expected ({P}, {self.n_params})")
        self.pop_ = population.copy()
        self.node_ids_ = np.array(state["node_ids"], dtype=np.int64).reshape(P, spec.max_nodes)
        self.innov_ = np.array(state["innovations"], dtype=np.int64).reshape(P, spec.max_connections)
        self.species_of_ = np.array(state["species_of"], dtype=np.int64).reshape(P)
        self.species.load_state_dict(state)
        self.registry.load_state_dict(state)
        self.rng_ = np.random.default_rng()
        self.rng_.bit_generator.state = state["rng_state"]
        if self.nsga2:
            self.parents_ = Genes(
                np.asarray(state["parents"], dtype=np.float64).reshape(-1, self.n_params).copy(),
                np.array(state["parent_node_ids"], dtype=np.int64).reshape(-1, spec.max_nodes),
                np.array(state["parent_innovations"], dtype=np.int64).reshape(-1, spec.max_connections),
            )
            self.parent_fitness_ = np.asarray(state["parent_fitness"], dtype=np.float64).reshape(-1).copy()
            archive = np.asarray(state["archive"], dtype=np.float64).reshape(-1, self.n_params)
            self.archive.load_state_dict(state, complexity=spec.complexity(archive))
