"""CNN architecture search: evolve the architecture (and, optionally, the weights) of a CNN.

Genomes are the fixed-length flat vectors of :class:`networks.cnn_search.CNNSearchSpace`:
architecture genes followed by a weight slab sized for the largest
architecture, so the run loop, the evaluators and the checkpoints handle them
like any other genome.

Variation is mutation only (as in regularized/aging evolution, Real et al.,
2019, "Regularized Evolution for Image Classifier Architecture Search", AAAI,
and in LEMONADE, Elsken et al., 2019, ICLR); each offspring independently:

* adds a block (``p_add_block``): activates a random free slot with random
  filters/kernel/pool genes and fresh He-initialised weights in its slab;
* removes a block (``p_remove_block``): deactivates a random active slot (its
  weights stay dormant in the slab; at least one block always remains);
* resizes a block (``p_resize``): filters one step up or down the choices, or
  another kernel size; the slab is kept, so the overlapping weights (first
  filters, first channels, centre taps) are inherited;
* toggles a block's pooling (``p_pool``);
* changes the dense head (``p_dense``): adds a hidden layer (the new output
  layer gets fresh weights), removes the last one, or resizes one;
* in ``mode="evolve_weights"`` also gets a Gaussian weight mutation
  ``N(0, weight_sigma)`` on each entry of its *active* slab region (the
  weights its decoded CNN uses) with probability ``weight_indpb``. In
  ``mode="train_weights"`` the weights are left to the fitness (see
  :class:`evo.tasks.arch_training.ArchitectureTrainingTask`, which trains each
  genome from its inherited weights: a Baldwinian search, the genome keeps the
  untrained weights).

Selection:

* ``"tournament"``: generational; the ``elite`` best of the evaluated
  population are copied unchanged (and so re-evaluated next generation), the
  rest are mutated winners of DEAP's ``selTournament``.
* ``"nsga2"``: NSGA-II (Deb et al., 2002, "A Fast and Elitist Multiobjective
  Genetic Algorithm: NSGA-II", IEEE TEC 6(2)) on two objectives, maximise the
  fitness and minimise the complexity (parameter count of the decoded CNN,
  computed here from the genome, so the task need not know it). DEAP's
  ``selNSGA2`` (non-dominated sorting, then crowding distance) keeps the best
  half of the evaluated population; the survivors are asked again next
  generation alongside as many offspring, mutated winners of binary
  tournaments on (front rank, crowding distance). That is NSGA-II's
  (mu + lambda) survival with mu = lambda = population / 2, except that the
  survivors are *re-evaluated* every generation: every comparison then uses
  fitness measured under the same conditions (this generation's minibatch,
  fresh training seeds), so a lucky evaluation of a noisy fitness cannot keep
  an individual alive on its own. Failed evaluations (``-inf``) survive only
  when there are not enough finite ones.

Whatever the selection, the strategy keeps a Pareto archive
(:meth:`ArchitectureSearch.pareto_front`): the non-dominated set (fitness up,
complexity down) of *every genome evaluated so far* with a finite fitness,
at most ``pareto_size`` entries (thinned by crowding distance, the fittest
always kept). A genome evaluated again (an elite, a survivor) is archived with
its *latest* evaluation. :meth:`best` is the archive's fittest genome: the best
fitness evaluated so far, by each genome's latest evaluation.

DEAP stays inside this module (private individual and fitness classes,
nothing registered in ``deap.creator``). Random state: a private
``numpy.random.Generator`` for the mutations and a private Python
:mod:`random` state swapped in around DEAP's selection calls (as in
:mod:`evo.strategies.ga`); both are saved in :meth:`state_dict`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from deap import base, tools

from evo.strategies.base import MultiObjective, PrivateRandom, Strategy, random_state_from_json, random_state_to_json
from evo.strategies.params import PROBABILITY, param
from evo.strategies.pareto import ParetoArchive, nsga2_survivors, tournament_winners
from networks.cnn_search import CNNSearchSpace


class _MaxFitness(base.Fitness):
    weights = (1.0,)


class _Individual:
    """Index of a candidate in the selection pool, with the DEAP fitness object selection reads."""

    __slots__ = ("fitness", "index")

    def __init__(self, index: int, fitness: float) -> None:
        self.index = index
        self.fitness = _MaxFitness()
        self.fitness.values = (fitness,)


@dataclass(frozen=True)
class ArchitectureSearchParams:
    """``cnn_arch``'s parameters: defaults and allowed ranges (``space`` comes from the run's network)."""

    space: CNNSearchSpace | dict | None = param(  # noqa: RUF009 - param() returns a dataclasses.field
        None, config=False, doc="the run's CNNSearchSpace (or its describe() dict); required"
    )
    mode: Literal["evolve_weights", "train_weights"] = param(
        "evolve_weights", doc="evolve the weights with the architecture, or train them by backprop inside the fitness"
    )
    selection: Literal["tournament", "nsga2"] = param("tournament", doc="generational tournaments, or NSGA-II on (fitness, parameters)")
    tournament_size: int = param(3, ge=1, doc="individuals per tournament (tournament selection)")
    elite: int = param(2, ge=0, doc="best genomes copied unchanged (tournament selection; < population)")
    p_add_block: float = param(0.15, **PROBABILITY, doc="probability that an offspring gains a conv block")
    p_remove_block: float = param(0.1, **PROBABILITY, doc="probability that an offspring loses a conv block")
    p_resize: float = param(0.3, **PROBABILITY, doc="probability that an offspring resizes a block's filters or kernel")
    p_pool: float = param(0.1, **PROBABILITY, doc="probability that an offspring toggles a block's pooling")
    p_dense: float = param(0.15, **PROBABILITY, doc="probability that an offspring changes the dense head")
    weight_sigma: float = param(0.05, ge=0.0, doc="std of the Gaussian weight mutation (evolve_weights)")
    weight_indpb: float = param(0.1, **PROBABILITY, doc="probability that the weight mutation changes each used weight")
    pareto_size: int = param(32, ge=1, doc="most entries the Pareto archive keeps")


class ArchitectureSearch(
    Strategy, MultiObjective, PrivateRandom, name="cnn_arch", params_type=ArchitectureSearchParams, default_population=20
):
    """Evolution of CNN architectures (and weights) over :class:`CNNSearchSpace` genomes; tournament or NSGA-II.

    ``space`` is the run's network spec (required; its ``n_params`` is the
    genome length). ``mode``: ``"evolve_weights"`` (Gaussian weight mutation
    too) or ``"train_weights"`` (architecture mutations only; pair it with
    :class:`~evo.tasks.arch_training.ArchitectureTrainingTask`).
    ``selection``: ``"tournament"`` (uses ``tournament_size`` and ``elite``)
    or ``"nsga2"`` (half the population survives; those two are unused).
    ``p_*`` are per-offspring probabilities of each structural mutation;
    ``weight_sigma``/``weight_indpb`` the Gaussian weight mutation;
    ``pareto_size`` caps the Pareto archive.
    """

    params: ArchitectureSearchParams
    #: The keyword through which the run loop must pass its network spec (the CNNSearchSpace).
    network_argument = "space"

    def _setup(self) -> None:
        space = self.params.space
        if isinstance(space, dict):
            space = CNNSearchSpace.from_description(space)
        if not isinstance(space, CNNSearchSpace):
            raise ValueError(  # noqa: TRY004 - a bad parameter value, like every other
                f"cnn_arch: space must be the run's network spec, a networks.cnn_search.CNNSearchSpace (or its describe() dict), got {space!r}"
            )
        if self.n_params != space.n_params:
            raise ValueError(f"cnn_arch: n_params = {self.n_params} does not match the search space's genome length {space.n_params}")
        if self.params.elite >= self.population:
            raise ValueError(f"cnn_arch: elite must be smaller than population ({self.population}), got {self.params.elite}")
        self.space = space
        self.rng_ = np.random.default_rng(self.seed)
        first = space.init_params(self.rng_, self.population)
        first[0] = self.init  # the given starting point is always evaluated
        self.population_: np.ndarray = first
        self._py_state: tuple = random.Random(self.seed).getstate()
        # Pareto archive over everything evaluated (each genome with its latest evaluation).
        self.archive = ParetoArchive(self.n_params, max_size=self.params.pareto_size)

    # ------------------------------------------------------------------ ask / tell
    def _ask(self) -> np.ndarray:
        """The population to evaluate next (the same until :meth:`tell`)."""
        return self.population_.copy()

    def _tell(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """Update the Pareto archive, then select and mutate the next population."""
        complexity = self._complexity(genomes)
        self.archive.update(genomes, fitness, complexity)
        with self._private_random():
            if self.params.selection == "nsga2":
                parents = self._nsga2_parents(genomes, fitness, complexity)
            else:
                parents = self._tournament_parents(genomes, fitness)
        self.population_ = parents

    def _complexity(self, genomes: np.ndarray) -> np.ndarray:
        """Parameter counts; a genome that does not decode (non-finite genes) counts as the largest."""
        try:
            return self.space.complexity(genomes)
        except ValueError:
            out = np.empty(len(genomes), dtype=np.int64)
            for i, genome in enumerate(genomes):
                try:
                    out[i] = self.space.complexity(genome[None])[0]
                except ValueError:
                    out[i] = self.space.n_params
            return out

    def _tournament_parents(self, genomes: np.ndarray, fitness: np.ndarray) -> np.ndarray:
        """Elites unchanged, then mutated tournament winners."""
        finite = np.flatnonzero(np.isfinite(fitness))
        # Best first; ties keep population order (stable sort).
        ranked = finite[np.argsort(-fitness[finite], kind="stable")]
        elites = ranked[: self.params.elite]
        individuals = [_Individual(i, f) for i, f in enumerate(fitness.tolist())]
        winners = tools.selTournament(individuals, self.population - len(elites), tournsize=self.params.tournament_size)
        children = genomes[[w.index for w in winners]].copy()
        for child in children:
            self._mutate(child)
        return np.concatenate([genomes[elites], children]) if len(elites) else children

    def _nsga2_parents(self, genomes: np.ndarray, fitness: np.ndarray, complexity: np.ndarray) -> np.ndarray:
        """NSGA-II survival of half the evaluated population, then mutated binary-tournament winners fill the rest."""
        survivors = nsga2_survivors(fitness, complexity, self.population // 2)
        n = len(survivors.index)
        draws = np.array([(random.randrange(n), random.randrange(n)) for _ in range(self.population - n)], dtype=np.int64).reshape(-1, 2)
        picks = survivors.index[tournament_winners(survivors, draws[:, 0], draws[:, 1])]
        children = genomes[picks].copy()
        for child in children:
            self._mutate(child)
        return np.concatenate([genomes[survivors.index], children])

    # ------------------------------------------------------------------ mutation
    def _canonical(self, genome: np.ndarray) -> None:
        """Rewrite the architecture genes as the exact integers/flags they decode to (same network), in place."""
        space = self.space
        arch = space.architecture(genome[: space.n_arch_genes])
        n_f, n_k, n_d = len(space.filter_choices), len(space.kernel_choices), len(space.dense_choices)
        active = {slot for slot, *_ in arch.blocks}
        for s in range(space.max_blocks):
            g = genome[space.block_gene(s, "active") : space.block_gene(s, "pool") + 1]
            g[0] = 1.0 if s in active else 0.0
            g[1] = np.clip(np.rint(g[1]), 0, n_f - 1)
            g[2] = np.clip(np.rint(g[2]), 0, n_k - 1)
            g[3] = 1.0 if g[3] > 0.5 else 0.0
        genome[space.dense_count_gene] = len(arch.hidden)
        for p in range(space.max_dense):
            i = space.dense_width_gene(p)
            genome[i] = np.clip(np.rint(genome[i]), 0, n_d - 1)

    def _step_index(self, value: float, n_choices: int) -> float:
        """A neighbouring choice index (one step up or down, turned back at the ends)."""
        if n_choices < 2:
            return value
        step = 1 if self.rng_.random() < 0.5 else -1
        new = value + step
        return float(value - step if new < 0 or new > n_choices - 1 else new)

    def _mutate(self, genome: np.ndarray) -> None:
        """Structural mutations, then (evolve_weights) the Gaussian weight mutation; in place, within the space's limits."""
        space, p, rng = self.space, self.params, self.rng_
        self._canonical(genome)
        draws = rng.random(5)  # one draw per mutation kind, whatever happens
        active_gene = [space.block_gene(s, "active") for s in range(space.max_blocks)]

        def active_slots() -> list[int]:
            return [s for s in range(space.max_blocks) if genome[active_gene[s]] > 0.5]

        if draws[0] < p.p_add_block:
            free = [s for s in range(space.max_blocks) if genome[active_gene[s]] <= 0.5]
            if free:
                s = int(free[rng.integers(len(free))])
                genome[space.block_gene(s, "active")] = 1.0
                genome[space.block_gene(s, "filters")] = rng.integers(len(space.filter_choices))
                genome[space.block_gene(s, "kernel")] = rng.integers(len(space.kernel_choices))
                genome[space.block_gene(s, "pool")] = rng.integers(2)
                space.reinit_block(genome, s, rng)
        if draws[1] < p.p_remove_block:
            slots = active_slots()
            if len(slots) >= 2:
                genome[active_gene[slots[rng.integers(len(slots))]]] = 0.0
        if draws[2] < p.p_resize:
            slots = active_slots()
            s = slots[rng.integers(len(slots))]
            resize_filters = len(space.kernel_choices) < 2 or (len(space.filter_choices) >= 2 and rng.random() < 0.5)
            if resize_filters:
                i = space.block_gene(s, "filters")
                genome[i] = self._step_index(genome[i], len(space.filter_choices))
            else:
                i = space.block_gene(s, "kernel")
                others = [k for k in range(len(space.kernel_choices)) if k != int(genome[i])]
                genome[i] = others[rng.integers(len(others))]
        if draws[3] < p.p_pool:
            slots = active_slots()
            i = space.block_gene(slots[rng.integers(len(slots))], "pool")
            genome[i] = 1.0 - genome[i]
        if draws[4] < p.p_dense and space.max_dense > 0:
            count = int(genome[space.dense_count_gene])
            n_d = len(space.dense_choices)
            ops = [op for op, ok in (("add", count < space.max_dense), ("remove", count > 0), ("resize", count > 0 and n_d > 1)) if ok]
            op = ops[rng.integers(len(ops))]
            if op == "add":
                genome[space.dense_width_gene(count)] = rng.integers(n_d)
                genome[space.dense_count_gene] = count + 1
                space.reinit_dense(genome, count + 1, rng)  # the output layer moves to a fresh position
            elif op == "remove":
                genome[space.dense_count_gene] = count - 1
            else:
                i = space.dense_width_gene(int(rng.integers(count)))
                genome[i] = self._step_index(genome[i], n_d)
        if p.mode == "evolve_weights" and p.weight_sigma > 0 and p.weight_indpb > 0:
            used = space.gather_indices(genome)
            hit = used[rng.random(len(used)) < p.weight_indpb]
            genome[hit] += p.weight_sigma * rng.standard_normal(len(hit))

    # ------------------------------------------------------------------ Pareto archive
    def pareto_front(self) -> list[dict[str, Any]]:
        """The Pareto archive by increasing complexity: ``{"genome", "fitness", "complexity"}`` per entry.

        The non-dominated set (fitness maximised, complexity = decoded
        parameter count minimised) of every genome evaluated so far with a
        finite fitness, thinned to ``pareto_size`` entries by crowding distance.
        """
        return self.archive.members()

    # ------------------------------------------------------------------ results
    def best(self) -> tuple[np.ndarray, float]:
        """The fittest genome of the Pareto archive: the best fitness evaluated so far by each genome's latest evaluation.

        Before any finite fitness: the best-so-far sample (``init``, ``-inf``).
        """
        best = self.archive.best()
        return self.best_sample() if best is None else best

    # ------------------------------------------------------------------ state
    def _state_dict(self) -> dict[str, Any]:
        """Population to evaluate, random states and the Pareto archive (which holds the best genome)."""
        return {
            "population": self.population_.copy(),
            "py_random_state": random_state_to_json(self._py_state),
            "numpy_random_state": _bit_generator_state_to_json(self.rng_.bit_generator.state),
            **self.archive.state_dict(),
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_state_dict` returned."""
        population = np.asarray(state["population"], dtype=np.float64)
        if population.shape != (self.population, self.n_params):
            raise ValueError(f"cnn_arch: saved population has shape {population.shape}, expected ({self.population}, {self.n_params})")
        self.population_ = population.copy()
        self._py_state = random_state_from_json(state["py_random_state"])
        rng = np.random.default_rng()
        rng.bit_generator.state = _bit_generator_state_from_json(state["numpy_random_state"])
        self.rng_ = rng
        self.archive.load_state_dict(state)


def _bit_generator_state_to_json(state: Mapping[str, Any]) -> dict:
    """A NumPy bit generator's state (nested dicts of ints and strings) as JSON-able data."""
    return {
        k: (_bit_generator_state_to_json(v) if isinstance(v, dict) else (int(v) if isinstance(v, (int, np.integer)) else v))
        for k, v in state.items()
    }


def _bit_generator_state_from_json(data: dict) -> dict:
    """Inverse of :func:`_bit_generator_state_to_json` (JSON keeps Python ints exact)."""
    return {k: (_bit_generator_state_from_json(v) if isinstance(v, dict) else v) for k, v in data.items()}
