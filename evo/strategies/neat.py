"""NEAT: NeuroEvolution of Augmenting Topologies, behind the ask/tell interface.

Stanley & Miikkulainen (2002), "Evolving Neural Networks through Augmenting
Topologies", Evolutionary Computation 10(2):99-127. Feedforward networks only.

* Genes carry global innovation numbers from a per-run registry: the same
  structural change (a connection between the same two node ids, or the k-th
  split of the same connection) gets the same number wherever and whenever it
  happens, so crossover can align genomes gene by gene.
* Mutations: weights (each genome with ``weight_mutation_prob``; each of its
  weights and biases perturbed by N(0, ``weight_sigma``) with
  ``weight_perturb_prob``, else drawn anew), add a connection (never one that
  closes a cycle, checked over enabled *and* disabled genes, so re-enabling a
  gene is always safe), add a node by splitting an enabled connection (the old
  one disabled, in -> new weight 1, new -> out the old weight), toggle a
  connection's enabled flag. A growth that would exceed ``max_nodes`` or
  ``max_connections`` simply does not happen.
* Crossover aligns genes by innovation number: matching genes are inherited
  from either parent at random, disjoint and excess genes from the fitter
  one (ties: a random parent counts as fitter); a gene disabled in either
  parent is disabled in the child with ``disable_inherited_prob``.
* Speciation by the compatibility distance
  ``delta = c1 E / N + c2 D / N + c3 W`` (E excess, D disjoint genes, W mean
  weight difference of matching genes, N the larger genome's gene count, 1
  below ``normalize_min_genes`` genes). A genome joins the closest species
  whose representative (a random member of the previous generation) is within
  the threshold, else founds a new species. The threshold moves by
  ``threshold_step`` each generation toward ``target_species`` species.
* Explicit fitness sharing: a species' offspring are proportional to the sum
  of its members' adjusted fitness ``(f - f_min) / species size`` (shifted by
  the generation's worst finite fitness so any fitness scale works).
  Species of at least ``elitism_min_species_size`` keep their ``elitism`` best
  unchanged (the generation's champion always survives); parents come from the
  best ``survival_threshold`` of a species; species that have not improved for
  ``stagnation`` generations die, except the best one.

Every node computes ``act(bias + response * sum(w x))`` with ``response``
4.9 by default: the paper's steepened sigmoid ``1 / (1 + exp(-4.9 x))``
(applied to every node as there). Measured on XOR (100 seeds, population 150,
``benchmarks/neat_xor.py``): solved in 100/100 runs, 1,400 evaluations on
average (the paper: 4,755); with ``response = 1`` it needs 1,900, and 2,300
with ``threshold_step = 0.3`` instead of 0.1 (3-bit parity agrees on both).

Genomes travel in the fixed-length flat layout of :class:`networks.neat.NEATSpec`;
the strategy keeps, next to the flat rows, each slot's node id and each
connection slot's innovation number. DEAP's variation operators are not used:
they work on one individual's list at a time and know nothing of innovation
numbers, while NEAT's genes must be aligned by innovation; instead every
variation step (crossover, weight and bias mutation) is one vectorised NumPy
operation over the whole brood, and only the rare structural mutations run
per genome. The random state is a private ``numpy.random.Generator``.

``selection = "nsga2"`` replaces speciation and fitness sharing by NSGA-II
(Deb, Pratap, Agarwal & Meyarivan (2002), "A fast and elitist multiobjective
genetic algorithm: NSGA-II", IEEE Trans. Evolutionary Computation 6(2)) on
two objectives: maximise the task fitness, minimise the enabled-connection
count. Each generation the last survivors and their evaluated offspring are
pooled (exact duplicates dropped), ``deap.tools.selNSGA2`` keeps
``population`` of them, and the next offspring come from the same NEAT
crossover and mutations, each parent the winner of a binary tournament on
(front rank, crowding distance) drawn from the private generator (DEAP's
``selTournamentDCD`` would draw from the global ``random``). Genomes with a
failed (non-finite) fitness survive only when too few finite ones exist. A
Pareto archive of every genome evaluated (non-dominated by fitness and
connection count; a genome evaluated again takes its latest fitness) is
:meth:`NEAT.pareto_front`. DEAP stays inside this module: a local
``Fitness`` class with weights ``(1, -1)``, nothing in ``deap.creator``.
Measured on XOR (seeds 0-19, 30 generations, default parameters): with
population 150 all 20 runs solve it, after 16 generations on average
(speciation: about 10); with population 100 only 15 of 20 do, the others
stay at the empty network's 0.75, which dominates every structure that does
not yet beat it (speciation is what protects such new structure).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np
from deap import base, tools

from evo.strategies.base import MultiObjective, Strategy, check_integer, check_number, non_dominated
from networks.neat import (
    ACTIVATION_CODES,
    CONN_IN,
    CONN_OUT,
    CONN_STATE,
    CONN_WEIGHT,
    DISABLED,
    ENABLED,
    NODE_ACTIVATION,
    NODE_BIAS,
    NODE_EXISTS,
    NODE_RESPONSE,
    NEATSpec,
)

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


class _FitnessComplexity(base.Fitness):
    """NSGA-II objectives: maximise the task fitness, minimise the enabled-connection count."""

    weights = (1.0, -1.0)


class _Individual:
    """Index of a candidate in the selection pool, with the DEAP fitness object selection reads."""

    __slots__ = ("fitness", "index")

    def __init__(self, index: int, fitness_value: float, complexity: int) -> None:
        self.index = index
        self.fitness = _FitnessComplexity()
        self.fitness.values = (fitness_value, float(complexity))




def match_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each row pair, the column of ``b`` holding the id at ``a[r, j]`` (-1: none; ids < 0 are empty).

    Ids are unique within a row. One sort for all rows: ``row * M + id`` keys.
    """
    n, width = a.shape
    if n == 0 or width == 0 or b.shape[1] == 0:
        return np.full(a.shape, -1, dtype=np.int64)
    span = int(max(a.max(), b.max(), 0)) + 2
    offset = np.arange(n, dtype=np.int64)[:, None] * span
    keys_b = np.where(b >= 0, offset + b, -1).ravel()
    order = np.argsort(keys_b, kind="stable")
    sorted_b = keys_b[order]
    keys_a = np.where(a >= 0, offset + a, -2).ravel()
    pos = np.minimum(np.searchsorted(sorted_b, keys_a), len(sorted_b) - 1)
    hit = sorted_b[pos] == keys_a
    return np.where(hit, order[pos] % b.shape[1], -1).reshape(a.shape)


def compatibility_distances(
    innov_a: np.ndarray, weight_a: np.ndarray, innov_b: np.ndarray, weight_b: np.ndarray,
    c1: float, c2: float, c3: float, normalize_min_genes: int,
) -> np.ndarray:
    """NEAT distance ``(Pa, Pb)`` between genomes given as padded innovation rows (-1 empty) and their weights."""
    valid_a, valid_b = innov_a >= 0, innov_b >= 0
    universe = np.unique(np.concatenate([innov_a[valid_a], innov_b[valid_b]]))
    K = len(universe)

    def dense(innov: np.ndarray, weight: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        present = np.zeros((len(innov), K), dtype=bool)
        dense_w = np.zeros((len(innov), K))
        rows, cols = np.nonzero(valid)
        k = np.searchsorted(universe, innov[rows, cols])
        present[rows, k] = True
        dense_w[rows, k] = weight[rows, cols]
        return present, dense_w

    pa, wa = dense(innov_a, weight_a, valid_a)
    pb, wb = dense(innov_b, weight_b, valid_b)
    na, nb = pa.sum(axis=1), pb.sum(axis=1)
    matching = pa.astype(np.float64) @ pb.T.astype(np.float64)
    if len(pa) * len(pb) * K <= 1_000_000:
        both = pa[:, None, :] & pb[None, :, :]
        weight_diff = np.where(both, np.abs(wa[:, None, :] - wb[None, :, :]), 0.0).sum(axis=2)
    else:  # one representative at a time keeps memory flat
        weight_diff = np.empty((len(pa), len(pb)))
        for s in range(len(pb)):
            weight_diff[:, s] = np.where(pa & pb[s], np.abs(wa - wb[s]), 0.0).sum(axis=1)
    # Excess genes lie beyond the other genome's last innovation; the columns are sorted by innovation.
    last_a = np.where(na > 0, K - 1 - np.argmax(pa[:, ::-1], axis=1), 0)
    last_b = np.where(nb > 0, K - 1 - np.argmax(pb[:, ::-1], axis=1), 0)
    cum_a, cum_b = np.cumsum(pa, axis=1), np.cumsum(pb, axis=1)
    excess = (na[:, None] - cum_a[:, last_b]) + (nb[None, :] - cum_b[:, last_a].T)
    disjoint = na[:, None] + nb[None, :] - 2 * matching - excess
    mean_diff = weight_diff / np.maximum(matching, 1.0)
    size = np.maximum(na[:, None], nb[None, :]).astype(np.float64)
    size = np.where(size < normalize_min_genes, 1.0, size)
    return c1 * excess / size + c2 * disjoint / size + c3 * mean_diff


def _largest_remainder(shares: np.ndarray, total: int) -> np.ndarray:
    """Integers proportional to ``shares`` summing to ``total`` (Hamilton's method, ties to the lower index)."""
    exact = shares / shares.sum() * total
    counts = np.floor(exact).astype(np.int64)
    short = total - int(counts.sum())
    if short > 0:
        counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    return counts


class NEAT(Strategy, MultiObjective):
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
        self.rng_ = np.random.default_rng(self.seed)
        self.generation_ = 0
        self.threshold_ = self.params["compatibility_threshold"]
        self.best_genome_: np.ndarray | None = None
        self.best_fitness_ = math.nan
        # Innovation registry: (in node id, out node id) -> innovation; connection innovation -> node ids of its splits.
        self._connection_innovations: dict[tuple[int, int], int] = {}
        self._split_nodes: dict[int, list[int]] = {}
        self.next_innovation_ = 0
        self.next_node_id_ = spec.n_inputs + spec.n_outputs
        self.next_species_id_ = 0
        # Species table, sorted by id: best fitness ever and the generation it last improved.
        self.species_ids_ = np.zeros(0, dtype=np.int64)
        self.species_best_ = np.zeros(0)
        self.species_improved_ = np.zeros(0, dtype=np.int64)
        # NSGA-II: the last survivors (evaluated) and the Pareto archive of every genome evaluated.
        self.parents_ = np.zeros((0, spec.n_params))
        self.parent_node_ids_ = np.zeros((0, spec.max_nodes), dtype=np.int64)
        self.parent_innov_ = np.zeros((0, spec.max_connections), dtype=np.int64)
        self.parent_fitness_ = np.zeros(0)
        self.archive_ = np.zeros((0, spec.n_params))
        self.archive_fitness_ = np.zeros(0)
        self._initial_population()

    @property
    def nsga2(self) -> bool:
        """Whether selection is NSGA-II (else speciation)."""
        return self.params["selection"] == "nsga2"

    # ------------------------------------------------------------------ genes
    def _innovation(self, in_id: int, out_id: int) -> int:
        """Innovation number of the connection gene in_id -> out_id (new number the first time)."""
        key = (in_id, out_id)
        number = self._connection_innovations.get(key)
        if number is None:
            number = self.next_innovation_
            self._connection_innovations[key] = number
            self.next_innovation_ += 1
        return number

    def _split_node_id(self, connection_innovation: int, present: set[int]) -> int:
        """Node id for splitting this connection: the first of its registered splits the genome lacks, else a new one."""
        ids = self._split_nodes.setdefault(connection_innovation, [])
        for node_id in ids:
            if node_id not in present:
                return node_id
        node_id = self.next_node_id_
        self.next_node_id_ += 1
        ids.append(node_id)
        return node_id

    def _initial_population(self) -> None:
        """Minimal genomes: every input connected to every output, weights around ``init``'s, random biases."""
        spec, p = self.spec, self.params
        n_in, n_out, P = spec.n_inputs, spec.n_outputs, self.population
        mean_w = np.zeros((n_in, n_out))
        mean_b = np.zeros(n_out)
        nodes0, conns0 = spec.decode(self.init)
        for state, src, dst, w in conns0.tolist():
            if state > 0.5 and 0 <= src < n_in and n_in <= dst < n_in + n_out and src == int(src) and dst == int(dst):
                mean_w[int(src), int(dst) - n_in] = w
        if nodes0[n_in : n_in + n_out, NODE_EXISTS].all():
            mean_b = nodes0[n_in : n_in + n_out, NODE_BIAS].copy()
        self.pop_ = np.zeros((P, spec.n_params))
        self.node_ids_ = np.full((P, spec.max_nodes), -1, dtype=np.int64)
        self.innov_ = np.full((P, spec.max_connections), -1, dtype=np.int64)
        nodes, conns = spec.split(self.pop_)
        n_io = n_in + n_out
        nodes[:, :n_io, NODE_EXISTS] = 1.0
        nodes[:, :n_in, NODE_RESPONSE] = 1.0  # inputs pass their value through; the field is unused there
        nodes[:, n_in:n_io, NODE_RESPONSE] = p["response"]
        nodes[:, n_in:n_io, NODE_BIAS] = mean_b + p["bias_init_std"] * self.rng_.standard_normal((P, n_out))
        self.node_ids_[:, :n_io] = np.arange(n_io)
        k = 0
        for i in range(n_in):
            for o in range(n_out):
                conns[:, k, CONN_STATE] = ENABLED
                conns[:, k, CONN_IN] = i
                conns[:, k, CONN_OUT] = n_in + o
                self.innov_[:, k] = self._innovation(i, n_in + o)
                k += 1
        conns[:, :k, CONN_WEIGHT] = np.clip(
            mean_w.ravel() + p["weight_init_std"] * self.rng_.standard_normal((P, k)), -p["weight_max"], p["weight_max"]
        )
        if self.nsga2:
            self.species_of_ = np.zeros(P, dtype=np.int64)
        else:
            self.species_of_ = self._speciate(self.pop_, self.innov_, reps=None)

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
            self._update_archive(self.pop_, fitness)
            self._nsga2_reproduce(fitness)
        else:
            self._reproduce(fitness, champion)
        self.generation_ += 1

    # ------------------------------------------------------------------ speciation
    def _connection_weights(self, flat: np.ndarray, width: int) -> np.ndarray:
        _, conns = self.spec.split(flat)
        return conns[:, :width, CONN_WEIGHT]

    def _distances(self, flat_a, innov_a, flat_b, innov_b) -> np.ndarray:
        p = self.params
        width = max(int((innov_a >= 0).sum(axis=1).max(initial=0)), int((innov_b >= 0).sum(axis=1).max(initial=0)), 1)
        return compatibility_distances(
            innov_a[:, :width], self._connection_weights(flat_a, width),
            innov_b[:, :width], self._connection_weights(flat_b, width),
            p["c1"], p["c2"], p["c3"], p["normalize_min_genes"],
        )

    def _speciate(self, flat: np.ndarray, innov: np.ndarray, reps: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> np.ndarray:
        """Species id of every genome; founds new species, drops empty ones, moves the threshold."""
        P = len(flat)
        assign = np.full(P, -1, dtype=np.int64)
        if reps is not None and len(reps[0]):
            rep_ids, rep_flat, rep_innov = reps
            d = self._distances(flat, innov, rep_flat, rep_innov)
            closest = np.argmin(d, axis=1)
            ok = d[np.arange(P), closest] < self.threshold_
            assign[ok] = rep_ids[closest[ok]]
        remaining = np.flatnonzero(assign < 0)
        new_ids = []
        while len(remaining):
            founder = remaining[0]
            d = self._distances(flat[remaining], innov[remaining], flat[founder : founder + 1], innov[founder : founder + 1])[:, 0]
            sid = self.next_species_id_
            self.next_species_id_ += 1
            new_ids.append(sid)
            assign[remaining[d < self.threshold_]] = sid
            assign[founder] = sid
            remaining = remaining[assign[remaining] < 0]
        # The table keeps surviving species (with their history) and the new ones, sorted by id.
        alive = np.isin(self.species_ids_, assign)
        self.species_ids_ = np.concatenate([self.species_ids_[alive], np.array(new_ids, dtype=np.int64)])
        self.species_best_ = np.concatenate([self.species_best_[alive], np.full(len(new_ids), -np.inf)])
        self.species_improved_ = np.concatenate(
            [self.species_improved_[alive], np.full(len(new_ids), self.generation_, dtype=np.int64)]
        )
        n_species = len(self.species_ids_)
        target, step = self.params["target_species"], self.params["threshold_step"]
        if n_species < target:
            self.threshold_ = max(self.threshold_ - step, self.params["threshold_min"])
        elif n_species > target:
            self.threshold_ += step
        return assign

    # ------------------------------------------------------------------ reproduction
    def _reproduce(self, fitness: np.ndarray, champion: int) -> None:
        p, rng, P = self.params, self.rng_, self.population
        finite = np.isfinite(fitness)
        index = np.searchsorted(self.species_ids_, self.species_of_)
        S = len(self.species_ids_)
        sizes = np.bincount(index, minlength=S)
        species_max = np.full(S, -np.inf)
        np.maximum.at(species_max, index, fitness)
        improved = species_max > self.species_best_
        self.species_best_ = np.where(improved, species_max, self.species_best_)
        self.species_improved_ = np.where(improved, self.generation_, self.species_improved_)
        alive = (sizes > 0) & (self.generation_ - self.species_improved_ < p["stagnation"])
        best_species = int(np.argmax(species_max)) if champion < 0 else int(index[champion])
        alive[best_species] = True

        # Explicit fitness sharing: the sum of (f - f_min) / size over a species is its mean shifted fitness.
        f_min = fitness[finite].min() if finite.any() else 0.0
        adjusted = np.where(finite, fitness - f_min, 0.0)
        shared = np.bincount(index, weights=adjusted, minlength=S) / np.maximum(sizes, 1)
        shares = np.where(alive, shared, 0.0)
        if shares.sum() <= 0:
            shares = np.where(alive, sizes, 0).astype(np.float64)
        counts = _largest_remainder(shares, P)
        if champion >= 0 and counts[best_species] == 0:
            counts[int(np.argmax(counts))] -= 1
            counts[best_species] = 1

        # Representatives for the next speciation: a random member of each surviving species.
        order = np.argsort(-np.where(finite, fitness, -np.inf), kind="stable")  # best first, failures last
        elites: list[int] = []
        parent_a: list[np.ndarray] = []
        parent_b: list[np.ndarray] = []
        rep_rows = []
        grouped = order[np.argsort(index[order], kind="stable")]  # by species, best first within each
        starts = np.concatenate([[0], np.cumsum(sizes)])
        for s in range(S):
            members = grouped[starts[s] : starts[s + 1]]
            if alive[s] and len(members):
                rep_rows.append(members[rng.integers(len(members))])
            if counts[s] == 0:
                continue
            n_finite = int(finite[members].sum())
            n_elite = min(p["elitism"], counts[s]) if len(members) >= p["elitism_min_species_size"] else 0
            if s == best_species and champion >= 0:
                n_elite = max(n_elite, 1)
            n_elite = min(n_elite, n_finite)
            elites.extend(members[:n_elite].tolist())
            pool_size = min(len(members), max(2, math.ceil(p["survival_threshold"] * len(members))))
            pool = members[: min(pool_size, n_finite)] if n_finite else members[:pool_size]
            n_child = int(counts[s]) - n_elite
            if n_child == 0:
                continue
            first = rng.integers(len(pool), size=n_child)
            a = pool[first]
            if len(pool) > 1:
                b = pool[(first + 1 + rng.integers(len(pool) - 1, size=n_child)) % len(pool)]
            else:
                b = a.copy()
            cross = (rng.random(n_child) < p["crossover_prob"]) & (len(pool) > 1)
            inter = rng.random(n_child) < p["interspecies_prob"]
            if inter.any():
                others = np.flatnonzero((index != s) & finite)
                if len(others):
                    b = np.where(inter, others[rng.integers(len(others), size=n_child)], b)
                    cross |= inter
            parent_a.append(a)
            parent_b.append(np.where(cross, b, -1))
        a = np.concatenate(parent_a) if parent_a else np.zeros(0, dtype=np.int64)
        b = np.concatenate(parent_b) if parent_b else np.zeros(0, dtype=np.int64)
        child_flat, child_nodes, child_innov = self._crossover(a, b, fitness)
        self._mutate(child_flat, child_nodes, child_innov)
        elites_arr = np.array(elites, dtype=np.int64)
        new_flat = np.concatenate([self.pop_[elites_arr], child_flat])
        new_nodes = np.concatenate([self.node_ids_[elites_arr], child_nodes])
        new_innov = np.concatenate([self.innov_[elites_arr], child_innov])
        rep_rows_arr = np.array(rep_rows, dtype=np.int64)
        reps = (self.species_of_[rep_rows_arr], self.pop_[rep_rows_arr], self.innov_[rep_rows_arr])
        self.species_of_ = self._speciate(new_flat, new_innov, reps)
        self.pop_, self.node_ids_, self.innov_ = new_flat, new_nodes, new_innov

    def _crossover(self, a: np.ndarray, b: np.ndarray, fitness: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Children of parents ``a`` and ``b`` (``b = -1``: a copy of ``a``), genes aligned by innovation number."""
        spec, rng = self.spec, self.rng_
        # The fitter parent gives the structure (ties: either at random).
        cross = np.flatnonzero(b >= 0)
        fa, fb = fitness[a[cross]], fitness[b[cross]]
        swap = (fb > fa) | ((fb == fa) & (rng.random(len(cross)) < 0.5))
        fit = a.copy()
        fit[cross[swap]] = b[cross[swap]]
        other = b.copy()
        other[cross[swap]] = a[cross[swap]]
        flat = self.pop_[fit]  # fancy indexing copies
        nodes = self.node_ids_[fit]
        innov = self.innov_[fit]
        if len(cross) == 0:
            return flat, nodes, innov
        mate = other[cross]
        child_nodes, child_conns = spec.split(flat)
        mate_nodes, mate_conns = spec.split(self.pop_)
        rows = cross[:, None]
        mate_rows = mate[:, None]
        # Connection genes: matching ones take the mate's weight half the time.
        width = max(int((innov[cross] >= 0).sum(axis=1).max()), 1)
        match = match_rows(innov[cross, :width], self.innov_[mate, :width])
        has = match >= 0
        safe = np.maximum(match, 0)
        mate_w = mate_conns[mate_rows, safe, CONN_WEIGHT]
        mate_state = mate_conns[mate_rows, safe, CONN_STATE]
        take = has & (rng.random(has.shape) < 0.5)
        state = child_conns[rows, np.arange(width), CONN_STATE]
        weight = child_conns[rows, np.arange(width), CONN_WEIGHT]
        child_conns[rows, np.arange(width), CONN_WEIGHT] = np.where(take, mate_w, weight)
        disabled = (state == DISABLED) | (has & (mate_state == DISABLED))
        stays_off = rng.random(has.shape) < self.params["disable_inherited_prob"]
        child_conns[rows, np.arange(width), CONN_STATE] = np.where(disabled, np.where(stays_off, DISABLED, ENABLED), state)
        # Node genes (same node id): bias, response and activation from the mate half the time.
        n_width = int((nodes[cross] >= 0).sum(axis=1).max())
        node_match = match_rows(nodes[cross, :n_width], self.node_ids_[mate, :n_width])
        node_take = (node_match >= 0) & (rng.random(node_match.shape) < 0.5)
        node_take[:, : spec.n_inputs] = False
        safe = np.maximum(node_match, 0)
        slots = np.arange(n_width)
        for f in (NODE_ACTIVATION, NODE_BIAS, NODE_RESPONSE):
            child_nodes[rows, slots, f] = np.where(node_take, mate_nodes[mate_rows, safe, f], child_nodes[rows, slots, f])
        return flat, nodes, innov

    def _mutate(self, flat: np.ndarray, node_ids: np.ndarray, innov: np.ndarray) -> None:
        """Mutate the children in place: weights and biases (vectorised), toggles, then structural growth."""
        p, rng, spec = self.params, self.rng_, self.spec
        n = len(flat)
        if n == 0:
            return
        nodes, conns = spec.split(flat)
        wmax = p["weight_max"]
        mutated = rng.random(n) < p["weight_mutation_prob"]
        width = max(int((innov >= 0).sum(axis=1).max()), 1)
        self._perturb(conns[:, :width, CONN_WEIGHT], (innov[:, :width] >= 0) & mutated[:, None], p["weight_init_std"])
        n_width = int((node_ids >= 0).sum(axis=1).max())
        node_mask = (node_ids[:, :n_width] >= 0) & mutated[:, None]
        node_mask[:, : spec.n_inputs] = False
        self._perturb(nodes[:, :n_width, NODE_BIAS], node_mask, p["bias_init_std"])
        if p["toggle_prob"] > 0:
            toggled = np.flatnonzero(rng.random(n) < p["toggle_prob"])
            n_conns = (innov[toggled] >= 0).sum(axis=1)
            slots = (rng.random(len(toggled)) * n_conns).astype(np.int64)
            conns[toggled, slots, CONN_STATE] *= -1.0
        add_node = rng.random(n) < p["add_node_prob"]
        add_conn = rng.random(n) < p["add_connection_prob"]
        for r in np.flatnonzero(add_node | add_conn).tolist():
            if add_node[r]:
                self._add_node(nodes[r], conns[r], node_ids[r], innov[r])
            if add_conn[r]:
                self._add_connection(nodes[r], conns[r], node_ids[r], innov[r])
        np.clip(conns[..., CONN_WEIGHT], -wmax, wmax, out=conns[..., CONN_WEIGHT])
        np.clip(nodes[..., NODE_BIAS], -wmax, wmax, out=nodes[..., NODE_BIAS])

    def _perturb(self, values: np.ndarray, mask: np.ndarray, init_std: float) -> None:
        """In place where ``mask``: add N(0, weight_sigma) with weight_perturb_prob, else draw N(0, init_std)."""
        p, rng = self.params, self.rng_
        noise = rng.standard_normal(values.shape)
        perturb = rng.random(values.shape) < p["weight_perturb_prob"]
        new = np.where(perturb, values + p["weight_sigma"] * noise, init_std * noise)
        values[...] = np.where(mask, new, values)

    def _add_node(self, nodes: np.ndarray, conns: np.ndarray, node_ids: np.ndarray, innov: np.ndarray) -> None:
        """Split a random enabled connection in -> out into in -> new (weight 1) and new -> out (old weight)."""
        spec = self.spec
        n_nodes = int((node_ids >= 0).sum())
        n_conns = int((innov >= 0).sum())
        if n_nodes >= spec.max_nodes or n_conns + 2 > spec.max_connections:
            return
        enabled = np.flatnonzero(conns[:n_conns, CONN_STATE] == ENABLED)
        if len(enabled) == 0:
            return
        j = int(enabled[self.rng_.integers(len(enabled))])
        src, dst, weight = int(conns[j, CONN_IN]), int(conns[j, CONN_OUT]), float(conns[j, CONN_WEIGHT])
        new_id = self._split_node_id(int(innov[j]), set(node_ids[:n_nodes].tolist()))
        conns[j, CONN_STATE] = DISABLED
        nodes[n_nodes] = (1.0, ACTIVATION_CODES[self.params["hidden_activation"]], 0.0, self.params["response"])
        node_ids[n_nodes] = new_id
        conns[n_conns] = (ENABLED, src, n_nodes, 1.0)
        innov[n_conns] = self._innovation(int(node_ids[src]), new_id)
        conns[n_conns + 1] = (ENABLED, n_nodes, dst, weight)
        innov[n_conns + 1] = self._innovation(new_id, int(node_ids[dst]))

    def _add_connection(self, nodes: np.ndarray, conns: np.ndarray, node_ids: np.ndarray, innov: np.ndarray) -> None:
        """Connect two unconnected nodes, never closing a cycle; re-enable the gene if it exists disabled."""
        spec, rng = self.spec, self.rng_
        n_nodes = int((node_ids >= 0).sum())
        n_conns = int((innov >= 0).sum())
        n_in, n_io = spec.n_inputs, spec.n_inputs + spec.n_outputs
        sources = list(range(n_in)) + list(range(n_io, n_nodes))  # outputs feed nothing
        n_targets = n_nodes - n_in
        genes = {(int(c[CONN_IN]), int(c[CONN_OUT])): k for k, c in enumerate(conns[:n_conns].tolist())}
        outgoing: dict[int, list[int]] = {}
        for src, dst in genes:
            outgoing.setdefault(src, []).append(dst)
        for _ in range(self.params["add_connection_tries"]):
            src = sources[int(rng.integers(len(sources)))]
            dst = n_in + int(rng.integers(n_targets))
            if src == dst:
                continue
            existing = genes.get((src, dst))
            if existing is not None:
                if conns[existing, CONN_STATE] == DISABLED:
                    conns[existing, CONN_STATE] = ENABLED
                    return
                continue
            if n_conns >= spec.max_connections or self._reaches(outgoing, dst, src):
                continue
            conns[n_conns] = (ENABLED, src, dst, self.params["weight_init_std"] * rng.standard_normal())
            innov[n_conns] = self._innovation(int(node_ids[src]), int(node_ids[dst]))
            return

    @staticmethod
    def _reaches(outgoing: dict[int, list[int]], start: int, goal: int) -> bool:
        """Whether ``goal`` is reachable from ``start`` along genes (enabled or not)."""
        stack, seen = [start], {start}
        while stack:
            node = stack.pop()
            if node == goal:
                return True
            for nxt in outgoing.get(node, ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return False

    # ------------------------------------------------------------------ NSGA-II
    def _nsga2_reproduce(self, fitness: np.ndarray) -> None:
        """Survivors of parents + offspring by ``selNSGA2``, then offspring from binary (rank, crowding) tournaments."""
        p, rng, P = self.params, self.rng_, self.population
        pool_flat = np.concatenate([self.parents_, self.pop_])
        pool_nodes = np.concatenate([self.parent_node_ids_, self.node_ids_])
        pool_innov = np.concatenate([self.parent_innov_, self.innov_])
        pool_fitness = np.concatenate([self.parent_fitness_, fitness])
        # A clone of a survivor would count twice: keep the first copy (the parent) of equal genomes.
        _, first = np.unique(pool_flat, axis=0, return_index=True)
        unique = np.zeros(len(pool_flat), dtype=bool)
        unique[first] = True
        finite = np.isfinite(pool_fitness)
        complexity = self.spec.complexity(pool_flat)
        candidates = [_Individual(int(i), float(pool_fitness[i]), int(complexity[i])) for i in np.flatnonzero(unique & finite)]
        if len(candidates) >= P:
            survivors = tools.selNSGA2(candidates, P)
        else:
            survivors = candidates
        # Rank and crowding distance among the survivors, for the mating tournament.
        rank, crowding = {}, {}
        if survivors:
            for r, front in enumerate(tools.sortNondominated(survivors, len(survivors))):
                tools.emo.assignCrowdingDist(front)
                for ind in front:
                    rank[ind.index], crowding[ind.index] = r, ind.fitness.crowding_dist
        chosen = sorted(rank)  # pool order: deterministic, independent of DEAP's internal order
        if len(chosen) < P:  # too few finite genomes: failures (then duplicates) fill up, ranked last
            rest = [int(i) for i in np.concatenate([np.flatnonzero(unique & ~finite), np.flatnonzero(~unique)])]
            for i in rest[: P - len(chosen)]:
                rank[i], crowding[i] = math.inf, 0.0
                chosen.append(i)
        chosen_arr = np.array(chosen, dtype=np.int64)
        ranks = np.array([rank[i] for i in chosen], dtype=np.float64)
        crowd = np.array([crowding[i] for i in chosen], dtype=np.float64)
        # Binary tournaments: lower front first, then the larger crowding distance; ties to the first drawn.
        draw = rng.integers(P, size=(2, 2 * P))
        r0, r1, c0, c1 = ranks[draw[0]], ranks[draw[1]], crowd[draw[0]], crowd[draw[1]]
        first_wins = (r0 < r1) | ((r0 == r1) & (c0 >= c1))
        winners = np.where(first_wins, draw[0], draw[1])
        a, b = winners[:P], winners[P:]
        cross = rng.random(P) < p["crossover_prob"]
        b = np.where(cross, b, -1)
        # The NEAT operators read their parents from pop_ / node_ids_ / innov_: the survivors.
        self.parents_ = pool_flat[chosen_arr]
        self.parent_node_ids_ = pool_nodes[chosen_arr]
        self.parent_innov_ = pool_innov[chosen_arr]
        self.parent_fitness_ = pool_fitness[chosen_arr]
        self.pop_, self.node_ids_, self.innov_ = self.parents_, self.parent_node_ids_, self.parent_innov_
        child_flat, child_nodes, child_innov = self._crossover(a, b, self.parent_fitness_)
        self._mutate(child_flat, child_nodes, child_innov)
        self.pop_, self.node_ids_, self.innov_ = child_flat, child_nodes, child_innov
        self.species_of_ = np.zeros(P, dtype=np.int64)

    def _update_archive(self, genomes: np.ndarray, fitness: np.ndarray) -> None:
        """Merge this generation's finite evaluations into the archive and keep its non-dominated points.

        An archived genome evaluated again takes its latest fitness (with a
        noisy task a lucky evaluation does not stay on the front forever).
        """
        finite = np.isfinite(fitness)
        genomes, fitness = genomes[finite], fitness[finite]
        latest = {g.tobytes() for g in genomes}
        stale = np.array([g.tobytes() in latest for g in self.archive_], dtype=bool).reshape(-1)
        all_genomes = np.concatenate([self.archive_[~stale], genomes])
        all_fitness = np.concatenate([self.archive_fitness_[~stale], fitness])
        keep = non_dominated(all_fitness, self.spec.complexity(all_genomes))
        self.archive_ = all_genomes[keep].copy()
        self.archive_fitness_ = all_fitness[keep].copy()

    def pareto_front(self) -> list[dict[str, Any]]:
        """The Pareto archive (NSGA-II mode; empty under speciation), by increasing complexity.

        One dict per member: ``genome`` (flat array), ``fitness`` (float),
        ``complexity`` (enabled connections, int), ``hidden_nodes`` (int).
        """
        complexity = self.spec.complexity(self.archive_)
        hidden = self.spec.count_hidden(self.archive_)
        return [
            {"genome": g.copy(), "fitness": float(f), "complexity": int(c), "hidden_nodes": int(h)}
            for g, f, c, h in zip(self.archive_, self.archive_fitness_, complexity, hidden)
        ]

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
        return len(self.species_ids_)

    @property
    def compatibility_threshold(self) -> float:
        """The current speciation threshold."""
        return self.threshold_

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Population with node ids and innovations, species, registry, best genome and RNG state.

        Under NSGA-II also ``selection``, the survivors (``parents``, their node
        ids, innovations and fitness) and the Pareto archive (``archive``,
        ``archive_fitness``); a speciation state has exactly the keys it always had.
        """
        connections = np.array(
            [[i, o, v] for (i, o), v in self._connection_innovations.items()], dtype=np.int64
        ).reshape(-1, 3)
        splits = np.array(
            [[k, node_id] for k, ids in self._split_nodes.items() for node_id in ids], dtype=np.int64
        ).reshape(-1, 2)
        return {
            "population": self.pop_.copy(),
            "node_ids": self.node_ids_.copy(),
            "innovations": self.innov_.copy(),
            "species_of": self.species_of_.copy(),
            "species_ids": self.species_ids_.copy(),
            "species_best": self.species_best_.copy(),
            "species_improved": self.species_improved_.copy(),
            "registry_connections": connections,
            "registry_splits": splits,
            "best_genome": (self.best_genome_ if self.best_genome_ is not None else np.zeros((0,))).copy(),
            "best_fitness": np.array(self.best_fitness_),
            "threshold": np.array(self.threshold_),
            "rng_state": self.rng_.bit_generator.state,
            "generation": self.generation_,
            "next_innovation": self.next_innovation_,
            "next_node_id": self.next_node_id_,
            "next_species_id": self.next_species_id_,
        } | (
            {
                "selection": "nsga2",
                "parents": self.parents_.copy(),
                "parent_node_ids": self.parent_node_ids_.copy(),
                "parent_innovations": self.parent_innov_.copy(),
                "parent_fitness": self.parent_fitness_.copy(),
                "archive": self.archive_.copy(),
                "archive_fitness": self.archive_fitness_.copy(),
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
        self.species_ids_ = np.array(state["species_ids"], dtype=np.int64).reshape(-1)
        self.species_best_ = np.array(state["species_best"], dtype=np.float64).reshape(-1)
        self.species_improved_ = np.array(state["species_improved"], dtype=np.int64).reshape(-1)
        connections = np.asarray(state["registry_connections"], dtype=np.int64).reshape(-1, 3)
        self._connection_innovations = {(int(i), int(o)): int(v) for i, o, v in connections.tolist()}
        self._split_nodes = {}
        for k, node_id in np.asarray(state["registry_splits"], dtype=np.int64).reshape(-1, 2).tolist():
            self._split_nodes.setdefault(int(k), []).append(int(node_id))
        best = np.asarray(state["best_genome"], dtype=np.float64)
        self.best_genome_ = best.copy() if best.size else None
        self.best_fitness_ = float(np.asarray(state["best_fitness"]))
        self.threshold_ = float(np.asarray(state["threshold"]))
        self.rng_ = np.random.default_rng()
        self.rng_.bit_generator.state = state["rng_state"]
        self.generation_ = int(state["generation"])
        self.next_innovation_ = int(state["next_innovation"])
        self.next_node_id_ = int(state["next_node_id"])
        self.next_species_id_ = int(state["next_species_id"])
        if self.nsga2:
            self.parents_ = np.asarray(state["parents"], dtype=np.float64).reshape(-1, self.n_params).copy()
            self.parent_node_ids_ = np.array(state["parent_node_ids"], dtype=np.int64).reshape(-1, spec.max_nodes)
            self.parent_innov_ = np.array(state["parent_innovations"], dtype=np.int64).reshape(-1, spec.max_connections)
            self.parent_fitness_ = np.asarray(state["parent_fitness"], dtype=np.float64).reshape(-1).copy()
            self.archive_ = np.asarray(state["archive"], dtype=np.float64).reshape(-1, self.n_params).copy()
            self.archive_fitness_ = np.asarray(state["archive_fitness"], dtype=np.float64).reshape(-1).copy()
