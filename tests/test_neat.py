"""NEAT: the flat genome layout, the population forward, the strategy's operators, resume and XOR."""

from __future__ import annotations

import json
import math
import zlib
from typing import Any

import numpy as np
import pytest

from evo.evaluators import RayEvaluator, SerialEvaluator
from evo.strategies.neat import NEAT, Genes, compatibility_distances, match_rows
from evo.strategies.neat.reproduction import crossover, mutate
from evo.tasks.boolean import ParityTask
from networks.activations import ACTIVATIONS
from networks.neat import (
    ACTIVATION_CODES,
    Conn,
    NEATSpec,
    load_graph_json,
)
from tests.helpers import XOR_SPEC, ask_tell, global_random_untouched, make_neat, to_disk_and_back, xor_fitness


def noise_fitness(genomes: np.ndarray) -> np.ndarray:
    """A deterministic fitness of the genome's bytes, to drive evolution without a task."""
    return np.array([(zlib.crc32(g.tobytes()) % 1000) / 1000.0 for g in genomes])


def growth_fitness(genomes: np.ndarray, spec: NEATSpec) -> np.ndarray:
    """Rewards size (plus noise), to push genomes to the capacity of the layout."""
    return spec.count_hidden(genomes) + 0.1 * spec.count_enabled(genomes) + noise_fitness(genomes)


def evolve(strategy: NEAT, generations: int, fitness=xor_fitness, spec: NEATSpec = XOR_SPEC) -> list[np.ndarray]:
    """Ask/tell for some generations; return the populations asked."""
    return ask_tell(strategy, generations, fitness)


def xor_by_hand() -> tuple[np.ndarray, np.ndarray]:
    """A hand-built XOR net (2 tanh hidden nodes) and its outputs computed by hand."""
    # Slots: 0, 1 inputs; 2 output; 3 = OR-ish, 4 = AND-ish hidden nodes.
    genome = XOR_SPEC.build_genome(
        connections=[(0, 3, 4.0), (1, 3, 4.0), (0, 4, 2.0), (1, 4, 2.0), (3, 2, 5.0), (4, 2, -5.0), (0, 2, 0.3, False)],
        n_hidden=2,
        biases=[0.0, 0.0, -5.0, -2.0, -6.0],
        responses=[1.0, 1.0, 1.0, 1.0, 2.0],
    )
    x = ParityTask(2).inputs
    h3 = np.tanh(-2.0 + 4.0 * x[:, 0] + 4.0 * x[:, 1])
    h4 = np.tanh(-6.0 + 2.0 * (2.0 * x[:, 0] + 2.0 * x[:, 1]))
    out = 1.0 / (1.0 + np.exp(-(-5.0 + 5.0 * h3 - 5.0 * h4)))
    return genome, out[:, None]


# ----------------------------------------------------------------- the network spec
def test_layout_and_encode_decode_round_trip() -> None:
    spec = NEATSpec(3, 2, max_nodes=10, max_connections=20)
    assert spec.n_params == 4 * (10 + 20)
    genome = spec.build_genome([(0, 5, 0.5), (5, 3, -1.25), (1, 4, 2.0, False)], n_hidden=1, biases=[0, 0, 0, 0.1, 0.2, -0.3])
    nodes, conns = spec.decode(genome)
    assert nodes.shape == (10, 4) and conns.shape == (20, 4)
    np.testing.assert_array_equal(spec.encode(nodes, conns), genome)
    np.testing.assert_array_equal(spec.encode(nodes[:6], conns[:3]), genome)  # padding is implicit
    assert conns[2, Conn.STATE] == -1.0 and conns[3, Conn.STATE] == 0.0
    assert (conns[0, Conn.IN], conns[0, Conn.OUT], conns[0, Conn.WEIGHT]) == (0.0, 5.0, 0.5)
    assert nodes[5, 1] == ACTIVATION_CODES["tanh"] and nodes[6, 0] == 0.0
    assert spec.count_hidden(genome) == 1 and spec.count_enabled(genome) == 2
    assert NEATSpec.from_description(json.loads(json.dumps(spec.describe()))) == spec
    assert spec.describe()["type"] == "neat"
    with pytest.raises(ValueError, match="holds"):
        spec.encode(np.zeros((11, 4)), conns)


def test_activation_codes_index_the_shared_table_with_their_saved_numbers() -> None:
    # Saved genomes hold these numbers: they must never move, and each names an entry of networks.activations.
    assert ACTIVATION_CODES == {"identity": 0, "sigmoid": 1, "tanh": 2, "relu": 3, "leaky_relu": 4}
    assert set(ACTIVATION_CODES) == set(ACTIVATIONS)


def test_forward_of_a_hand_built_xor_net_matches_hand_computation() -> None:
    genome, expected = xor_by_hand()
    x = ParityTask(2).inputs
    np.testing.assert_allclose(XOR_SPEC.predict(genome, x), expected, rtol=1e-12, atol=1e-12)
    assert np.all((expected[:, 0] > 0.5) == (ParityTask(2).targets[:, 0] > 0.5))
    # Per-population inputs (P, B, n_in) give the same.
    np.testing.assert_allclose(XOR_SPEC.forward(genome[None], x[None])[0], expected, rtol=1e-12)


def test_population_forward_equals_one_at_a_time_bit_for_bit() -> None:
    strategy = make_neat(seed=1, population=40, add_node_prob=0.3, add_connection_prob=0.4)
    evolve(strategy, 8, noise_fitness)
    genomes = strategy.ask()
    assert len(set(XOR_SPEC.count_hidden(genomes).tolist())) > 1, "want varied topologies"
    x = np.random.default_rng(0).normal(size=(7, 2))
    together = XOR_SPEC.forward(genomes, x)
    alone = np.stack([XOR_SPEC.predict(g, x) for g in genomes])
    # Bit-identical, and so is any chunking: the evaluators rely on it.
    np.testing.assert_array_equal(together, alone)
    for size in (3, 7, 16):
        chunks = [XOR_SPEC.forward(genomes[i : i + size], x) for i in range(0, len(genomes), size)]
        np.testing.assert_array_equal(np.concatenate(chunks), together)
    reordered = np.random.default_rng(1).permutation(len(genomes))
    np.testing.assert_array_equal(XOR_SPEC.forward(genomes[reordered], x), together[reordered])


def test_blocked_scatter_add_changes_nothing(monkeypatch) -> None:
    import networks.neat.compiled as neat_module

    strategy = make_neat(seed=4, population=30, add_node_prob=0.3, add_connection_prob=0.4)
    evolve(strategy, 6, noise_fitness)
    genomes = strategy.ask()
    x = np.random.default_rng(2).normal(size=(5, 2))
    whole = XOR_SPEC.forward(genomes, x)
    monkeypatch.setattr(neat_module, "BLOCK_ELEMENTS", 12)  # a few connections per block
    np.testing.assert_array_equal(XOR_SPEC.forward(genomes, x), whole)


def test_softmax_and_identity_outputs() -> None:
    spec = NEATSpec(2, 3, output_activation="softmax")
    genomes = spec.init_params(np.random.default_rng(0), 4)
    out = spec.forward(genomes, np.ones((5, 2)))
    assert out.shape == (4, 5, 3)
    np.testing.assert_allclose(out.sum(axis=-1), 1.0)
    linear = NEATSpec(2, 1, output_activation="identity").build_genome([(0, 2, 2.0), (1, 2, -1.0)], biases=[0, 0, 0.5])
    np.testing.assert_allclose(NEATSpec(2, 1, output_activation="identity").predict(linear, np.array([[1.0, 3.0]])), [[-0.5]])


def test_a_cyclic_or_broken_genome_is_refused() -> None:
    cyclic = XOR_SPEC.build_genome([(0, 3, 1.0), (3, 4, 1.0), (4, 3, 1.0), (4, 2, 1.0)], n_hidden=2)
    good, _ = xor_by_hand()
    with pytest.raises(ValueError, match=r"\[1\].*cycle"):
        XOR_SPEC.forward(np.stack([good, cyclic]), np.ones((2, 2)))
    # The same genome with the back edge disabled runs.
    acyclic = XOR_SPEC.build_genome([(0, 3, 1.0), (3, 4, 1.0), (4, 3, 1.0, False), (4, 2, 1.0)], n_hidden=2)
    assert XOR_SPEC.predict(acyclic, np.ones((2, 2))).shape == (2, 1)
    dangling = XOR_SPEC.build_genome([(0, 7, 1.0)])
    with pytest.raises(ValueError, match="empty or out-of-range"):
        XOR_SPEC.predict(dangling, np.ones((1, 2)))


def test_graph_json_standalone_inference_and_drawing_agree_with_forward(tmp_path) -> None:
    strategy = make_neat(seed=2, population=40, add_node_prob=0.3, add_connection_prob=0.4)
    evolve(strategy, 10, noise_fitness)
    genomes = strategy.ask()
    genome = genomes[int(np.argmax(XOR_SPEC.count_hidden(genomes)))]
    assert XOR_SPEC.count_hidden(genome) >= 2
    path = XOR_SPEC.save_graph(genome, tmp_path / "net.json")
    graph = json.loads(path.read_text())
    assert graph["type"] == "neat-graph"
    assert len(graph["connections"]) == XOR_SPEC.count_enabled(genome)
    assert {n["kind"] for n in graph["nodes"]} == {"input", "output", "hidden"}
    net = load_graph_json(path)
    x = np.random.default_rng(1).uniform(-2, 2, size=(9, 2))
    np.testing.assert_allclose(net(x), XOR_SPEC.predict(genome, x), rtol=1e-12, atol=1e-14)
    png = XOR_SPEC.draw(genome, tmp_path / "net.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000


# ----------------------------------------------------------------- strategy invariants
def _full_graph_is_acyclic(conns: np.ndarray) -> bool:
    """Kahn's algorithm over every present gene, enabled or disabled."""
    present = conns[conns[:, Conn.STATE] != 0]
    edges = [(int(a), int(b)) for a, b in present[:, [Conn.IN, Conn.OUT]].tolist()]
    nodes = {n for e in edges for n in e}
    indegree = {n: 0 for n in nodes}
    for _, b in edges:
        indegree[b] += 1
    ready = [n for n, d in indegree.items() if d == 0]
    seen = 0
    while ready:
        n = ready.pop()
        seen += 1
        for a, b in edges:
            if a == n:
                indegree[b] -= 1
                if indegree[b] == 0:
                    ready.append(b)
    return seen == len(nodes)


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_no_cycles_and_consistent_innovations_after_many_mutations(seed: int) -> None:
    spec = NEATSpec(3, 2, max_nodes=24, max_connections=60)
    strategy = make_neat(spec, seed=seed, population=40, add_node_prob=0.5, add_connection_prob=0.9, toggle_prob=0.3, interspecies_prob=0.2)
    registry: dict[tuple[int, int], int] = {}
    for _ in range(40):
        genomes = strategy.ask()
        spec.forward(genomes, np.ones((2, 3)))  # raises on any cycle
        for row in range(len(genomes)):
            _, conns = spec.decode(genomes[row])
            assert _full_graph_is_acyclic(conns)
            n = int((strategy.innov_[row] >= 0).sum())
            assert np.all(conns[:n, Conn.STATE] != 0) and np.all(conns[n:, Conn.STATE] == 0)
            assert np.all(conns[:n, Conn.OUT] >= spec.n_inputs)  # nothing flows into an input
            assert not np.any((conns[:n, Conn.IN] >= spec.n_inputs) & (conns[:n, Conn.IN] < spec.n_inputs + spec.n_outputs))
            ids = strategy.node_ids_[row]
            innov = strategy.innov_[row, :n]
            assert len(set(innov.tolist())) == n, "an innovation appears twice in a genome"
            for (a, b), k in zip(conns[:n, [Conn.IN, Conn.OUT]].astype(int).tolist(), innov.tolist()):
                assert registry.setdefault((int(ids[a]), int(ids[b])), k) == k, "same connection, two innovations"
        strategy.tell(genomes, growth_fitness(genomes, spec))
    # Growth reached the capacity of the layout and stopped there.
    hidden, genes = spec.count_hidden(strategy.ask()), (strategy.innov_ >= 0).sum(axis=1)
    assert hidden.max() == spec.max_nodes - 5 or genes.max() >= spec.max_connections - 1
    assert genes.max() <= spec.max_connections


def test_crossover_aligns_genes_by_innovation_number() -> None:
    spec = NEATSpec(2, 1, max_nodes=8, max_connections=10)
    strategy = make_neat(spec, population=2, disable_inherited_prob=1.0)
    # Parent 0 (fitter): innovations 0, 1, 2, 5 (5 disjoint: 2 -> node 3 split);  parent 1: 0, 1, 3, 4, 6, 7.
    fit = spec.build_genome([(0, 2, 1.0), (1, 2, 2.0), (0, 3, 3.0), (3, 2, 4.0)], n_hidden=1, biases=[0, 0, 0.5, 0.7])
    mate = spec.build_genome(
        [(0, 2, -1.0), (1, 2, -2.0, False), (1, 3, -3.0), (3, 2, -4.0), (0, 4, -5.0), (4, 2, -6.0)],
        n_hidden=2,
        biases=[0, 0, -0.5, -0.7, -0.9],
    )
    strategy.pop_ = np.stack([fit, mate])
    strategy.node_ids_ = np.full((2, 8), -1)
    strategy.node_ids_[0, :4] = [0, 1, 2, 3]
    strategy.node_ids_[1, :5] = [0, 1, 2, 3, 9]
    strategy.innov_ = np.full((2, 10), -1)
    strategy.innov_[0, :4] = [0, 1, 2, 5]
    strategy.innov_[1, :6] = [0, 1, 3, 4, 6, 7]
    fitness = np.array([1.0, 0.5])
    seen_weights: list[set[float]] = [set() for _ in range(4)]
    for order in ((0, 1), (1, 0)):  # the fitter parent gives the structure whichever comes first
        for _ in range(40):
            flat, nodes, innov = crossover(
                spec,
                strategy.genes,
                np.array([order[0]]),
                np.array([order[1]]),
                fitness,
                strategy.rng_,
                strategy.params.disable_inherited_prob,
            )
            np.testing.assert_array_equal(innov[0], strategy.innov_[0])
            np.testing.assert_array_equal(nodes[0], strategy.node_ids_[0])
            node_rows, conns = spec.decode(flat[0])
            np.testing.assert_array_equal(conns[:4, [Conn.IN, Conn.OUT]], [[0, 2], [1, 2], [0, 3], [3, 2]])
            for j in range(4):
                seen_weights[j].add(float(conns[j, Conn.WEIGHT]))
            assert conns[1, Conn.STATE] == -1.0  # disabled in the mate, disable_inherited_prob = 1
            assert conns[0, Conn.STATE] == conns[2, Conn.STATE] == conns[3, Conn.STATE] == 1.0
            assert node_rows[2, 2] in (0.5, -0.5) and node_rows[3, 2] in (0.7, -0.7)  # matching nodes 2 and 3
            assert node_rows[4, 0] == 0.0  # the mate's extra node is not inherited
    assert seen_weights[0] == {1.0, -1.0} and seen_weights[1] == {2.0, -2.0}  # matching: either parent
    assert seen_weights[2] == {3.0} and seen_weights[3] == {4.0}  # disjoint/excess: the fitter parent


def test_match_rows_and_compatibility_distance_by_hand() -> None:
    a = np.array([[0, 1, 2, 5, -1], [4, 3, -1, -1, -1]])
    b = np.array([[5, 0, 3, -1, -1], [3, 4, 9, -1, -1]])
    np.testing.assert_array_equal(match_rows(a, b), [[1, -1, -1, 0, -1], [1, 0, -1, -1, -1]])
    innov_a = np.array([[0, 1, 2, 5, 8]])
    weight_a = np.array([[1.0, 1.0, 1.0, 1.0, 1.0]])
    innov_b = np.array([[0, 1, 3, 4, -1]])
    weight_b = np.array([[0.5, 3.0, 0.0, 0.0, 0.0]])
    # Matching 0, 1 (|0.5| + |2| -> mean 1.25); disjoint 2 (a), 3, 4 (b); excess 5, 8 (a, beyond b's last = 4).
    d = compatibility_distances(innov_a, weight_a, innov_b, weight_b, c1=1.0, c2=2.0, c3=0.4, normalize_min_genes=20)
    assert d.shape == (1, 1)
    assert math.isclose(d[0, 0], 1.0 * 2 + 2.0 * 3 + 0.4 * 1.25)
    d = compatibility_distances(innov_a, weight_a, innov_b, weight_b, c1=1.0, c2=2.0, c3=0.4, normalize_min_genes=0)
    assert math.isclose(d[0, 0], (2 + 6) / 5 + 0.4 * 1.25)
    np.testing.assert_allclose(compatibility_distances(innov_b, weight_b, innov_a, weight_a, 1.0, 2.0, 0.4, 20), d * 0 + 1.0 * 2 + 6 + 0.5)


def test_identical_genomes_share_a_species_and_distant_ones_do_not() -> None:
    spec = NEATSpec(2, 1, max_nodes=30, max_connections=60)
    strategy = make_neat(spec, population=20, compatibility_threshold=3.0, add_node_prob=1.0, add_connection_prob=1.0)
    near = strategy.pop_[0].copy()
    far = strategy.pop_[1].copy()
    rows = np.array([0] * 10 + [1] * 10)
    # Grow genome 1 well away from genome 0 (many disjoint genes).
    flat, nodes, innov = strategy.pop_[1:2].copy(), strategy.node_ids_[1:2].copy(), strategy.innov_[1:2].copy()
    for _ in range(4):  # to about 12 genes: below normalize_min_genes, distances are not divided by size
        mutate(spec, Genes(flat, nodes, innov), strategy.params, strategy.registry, strategy.rng_)
    far = flat[0]
    population = np.stack([near if r == 0 else far for r in rows])
    innovations = np.stack([strategy.innov_[0] if r == 0 else innov[0] for r in rows])
    strategy.species.threshold = 3.0
    species = strategy.species.speciate(population, innovations, None, strategy.generation_)
    assert len(set(species[:10].tolist())) == 1 and len(set(species[10:].tolist())) == 1
    assert species[0] != species[10]
    d = strategy.species.distances(population[:1], innovations[:1], population[10:11], innovations[10:11])
    assert d[0, 0] > 3.0


def test_threshold_moves_toward_the_target_number_of_species() -> None:
    many = make_neat(population=60, target_species=2, compatibility_threshold=0.05, threshold_min=0.01, threshold_step=0.2)
    start = 0.05
    assert many.n_species > 2 and many.compatibility_threshold > start  # too many species: the threshold rises
    few = make_neat(population=60, target_species=20, compatibility_threshold=50.0, threshold_step=0.5)
    assert few.n_species == 1 and few.compatibility_threshold == 49.5  # too few: it falls
    evolve(few, 5)
    assert few.compatibility_threshold < 49.5 - 4 * 0.5 + 1e-9
    strategy = make_neat(population=60, target_species=4, threshold_step=0.3)
    counts = []
    for _ in range(30):
        evolve(strategy, 1)
        counts.append(strategy.n_species)
    assert abs(np.mean(counts[-10:]) - 4) <= 3


# ----------------------------------------------------------------- determinism and resume
def test_same_seed_same_run_other_seed_other_run() -> None:
    first, second = evolve(make_neat(seed=7), 6), evolve(make_neat(seed=7), 6)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], evolve(make_neat(seed=8), 1)[0])
    strategy = make_neat(seed=7)
    np.testing.assert_array_equal(strategy.ask(), strategy.ask())


def test_resume_is_bit_identical_through_npz_and_json() -> None:
    params = dict(add_node_prob=0.3, add_connection_prob=0.4, toggle_prob=0.05)
    uninterrupted = make_neat(seed=3, **params)
    expected = evolve(uninterrupted, 12)
    interrupted = make_neat(seed=3, **params)
    evolve(interrupted, 6)
    resumed = make_neat(seed=99, **params)  # a different seed: all must come from the state
    resumed.load_state_dict(to_disk_and_back(interrupted.state_dict()))
    for want, got in zip(expected[6:], evolve(resumed, 6)):
        np.testing.assert_array_equal(want, got)
    np.testing.assert_array_equal(uninterrupted.best()[0], resumed.best()[0])
    assert uninterrupted.best()[1] == resumed.best()[1]
    state_a, state_b = uninterrupted.state_dict(), resumed.state_dict()
    assert set(state_a) == set(state_b)
    for key in state_a:
        np.testing.assert_equal(state_a[key], state_b[key])


def test_resume_between_ask_and_tell_and_before_the_first_tell() -> None:
    original = make_neat(seed=4)
    resumed = make_neat(seed=5)
    resumed.load_state_dict(to_disk_and_back(original.state_dict()))
    np.testing.assert_array_equal(original.ask(), resumed.ask())
    assert resumed.best()[1] == -math.inf  # nothing measured yet
    evolve(original, 2)
    pending = original.ask()
    resumed = make_neat(seed=5)
    resumed.load_state_dict(to_disk_and_back(original.state_dict()))
    np.testing.assert_array_equal(pending, resumed.ask())
    original.tell(pending, xor_fitness(pending))
    resumed.tell(pending, xor_fitness(pending))
    np.testing.assert_array_equal(original.ask(), resumed.ask())


def test_leaves_global_random_states_alone() -> None:
    with global_random_untouched():
        evolve(make_neat(seed=2), 3)


# ----------------------------------------------------------------- failures and validation
def test_failures_never_win_and_an_all_failed_generation_is_survived() -> None:
    strategy = make_neat(seed=1)
    failed: set[bytes] = set()
    for _ in range(8):
        genomes = strategy.ask()
        fitness = xor_fitness(genomes)
        # Failure is a property of the genome: an elite that failed once fails again.
        crc = np.array([zlib.crc32(g.tobytes()) for g in genomes])
        fitness[crc % 3 == 0] = -np.inf
        fitness[crc % 7 == 0] = np.nan
        failed.update(g.tobytes() for g in genomes[~np.isfinite(fitness)])
        strategy.tell(genomes, fitness)
    genome, value = strategy.best()
    assert math.isfinite(value) and genome.tobytes() not in failed
    genomes = strategy.ask()
    strategy.tell(genomes, np.full(len(genomes), -np.inf))
    evolve(strategy, 2)
    assert np.all(np.isfinite(strategy.ask()))
    with pytest.raises(ValueError, match="last ask"):
        strategy.tell(strategy.ask() + 1.0, np.zeros(strategy.population))


@pytest.mark.parametrize(
    "bad",
    [
        dict(no_such_param=1),
        dict(c3=-1.0),
        dict(survival_threshold=0.0),
        dict(add_node_prob=1.5),
        dict(weight_sigma=float("nan")),
        dict(stagnation=0),
        dict(max_nodes=2),
    ],
    ids=lambda b: next(iter(b)),
)
def test_bad_params_raise_naming_neat_and_the_field(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=f"neat: .*{next(iter(bad))}"):
        make_neat(**bad) if "max_nodes" not in bad else NEAT(4 * (2 + 256), 10, 0, np.zeros(4 * 258), n_inputs=2, n_outputs=1, **bad)


def test_layout_mismatch_and_missing_sizes_raise() -> None:
    with pytest.raises(ValueError, match="n_params"):
        NEAT(XOR_SPEC.n_params + 4, 10, 0, np.zeros(XOR_SPEC.n_params + 4), n_inputs=2, n_outputs=1)
    with pytest.raises(ValueError, match="n_inputs"):
        NEAT(XOR_SPEC.n_params, 10, 0, np.zeros(XOR_SPEC.n_params))
    with pytest.raises(ValueError, match="init"):
        NEAT(XOR_SPEC.n_params, 10, 0, np.zeros(3), n_inputs=2, n_outputs=1)
    with pytest.raises(ValueError, match="population"):
        make_neat(population=1)


def test_init_gives_the_mean_of_the_first_weights() -> None:
    init = XOR_SPEC.build_genome([(0, 2, 5.0), (1, 2, -5.0)], biases=[0, 0, 1.0])
    strategy = NEAT(XOR_SPEC.n_params, 200, 0, init, n_inputs=2, n_outputs=1, weight_init_std=0.1, bias_init_std=0.1)
    _, conns = XOR_SPEC.split(strategy.ask())
    np.testing.assert_allclose(conns[:, :2, Conn.WEIGHT].mean(axis=0), [5.0, -5.0], atol=0.05)


# ----------------------------------------------------------------- it works
def test_neat_solves_xor_on_several_seeds_through_the_serial_evaluator() -> None:
    task = ParityTask(2)
    generations_needed = []
    for seed in range(10):
        strategy = NEAT(XOR_SPEC.n_params, 150, seed, np.zeros(XOR_SPEC.n_params), n_inputs=2, n_outputs=1)
        evaluator = SerialEvaluator(run_seed=seed, chunk_size=37)  # chunks must not matter
        for generation in range(1, 101):
            genomes = strategy.ask()
            result = evaluator.evaluate(task, XOR_SPEC, genomes, generation)
            strategy.tell(genomes, result.fitness)
            genome, _ = strategy.best()
            if task.test(XOR_SPEC, genome, 0)["test_accuracy"] == 1.0:
                generations_needed.append(generation)
                break
        else:
            pytest.fail(f"seed {seed}: XOR not solved in 100 generations")
    # The NEAT paper needs 32 generations on average (4,755 evaluations at population 150).
    assert np.mean(generations_needed) < 32


def test_ray_evaluator_ships_flat_neat_genomes_with_identical_fitness(ray_local) -> None:
    strategy = make_neat(seed=3, population=40, add_node_prob=0.3, add_connection_prob=0.4)
    evolve(strategy, 6, noise_fitness)
    genomes = strategy.ask()
    task = ParityTask(2)
    serial = SerialEvaluator(run_seed=1).evaluate(task, XOR_SPEC, genomes, 7)
    evaluator = RayEvaluator(run_seed=1, workers=2, chunk_size=9)
    try:
        distributed = evaluator.evaluate(task, XOR_SPEC, genomes, 7)
    finally:
        evaluator.close()
    np.testing.assert_array_equal(serial.fitness, distributed.fitness)
    assert serial.failures == distributed.failures == 0


# ----------------------------------------------------------------- the unchanged run loop
def _neat_run(run, population: int = 40):
    """Swap a NEATSpec and a NEAT strategy into a built EvolutionRun (the run loop itself is untouched)."""
    spec = NEATSpec(run.task.n_inputs, run.task.n_outputs, output_activation=run.task.output_activation)
    run.network = spec
    run.strategy = NEAT(spec.n_params, population, 11, np.zeros(spec.n_params), n_inputs=spec.n_inputs, n_outputs=spec.n_outputs)
    return run.run()


def test_the_run_loop_evolves_checkpoints_and_resumes_neat_exactly(tmp_path) -> None:
    from evo import EvolutionRun, parse_config
    from tests.helpers import XOR, metrics_without_time

    base = {k: v for k, v in XOR.items() if k != "target_fitness"} | {"generations": 10, "checkpoint_every": 2}
    straight = _neat_run(EvolutionRun(parse_config(base), run_dir=tmp_path / "straight", progress=False))
    first = _neat_run(EvolutionRun(parse_config({**base, "generations": 4}), run_dir=tmp_path / "resumed", progress=False))
    assert len(first.metrics) == 4
    resumed = _neat_run(EvolutionRun.resume(tmp_path / "resumed", generations=10, progress=False))
    assert metrics_without_time(resumed.run_dir) == metrics_without_time(straight.run_dir)
    np.testing.assert_array_equal(resumed.best_genome, straight.best_genome)
    saved = json.loads((straight.run_dir / "best_genome.json").read_text())
    assert saved["network"]["type"] == "neat"
    spec = NEATSpec.from_description(saved["network"])
    assert spec.predict(straight.best_genome, ParityTask(2).inputs).shape == (4, 1)
    assert straight.summary["test_accuracy"] >= 0.75


def test_neat_spec_declares_its_capabilities() -> None:
    from networks.spec import Decodable, GraphExportable, HasComplexity, NetworkSpec, Trainable

    assert {Trainable, GraphExportable, HasComplexity} <= set(NEATSpec.__mro__)  # declared, not merely matching
    assert isinstance(XOR_SPEC, NetworkSpec) and not isinstance(XOR_SPEC, Decodable)
