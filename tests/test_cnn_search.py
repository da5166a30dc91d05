"""CNN architecture search: the search space's genome layout, the cnn_arch strategy, the training task."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from evo.evaluators import RayEvaluator, SerialEvaluator
from evo.strategies import STRATEGIES, make_strategy
from evo.strategies.cnn_arch import ArchitectureSearch
from evo.strategies.pareto import non_dominated
from evo.tasks.arch_training import ArchitectureTrainingTask
from evo.tasks.classification import ClassificationTask
from evo.tasks.datasets import DIGITS_IMAGE_SHAPE, load_digits, stratified_split
from networks.cnn import CNN, ConvBlock
from networks.cnn_search import BLOCK_FIELDS, CNNSearchSpace
from tests.helpers import to_disk_and_back

# A space small enough for fast tests, large enough to have every kind of choice.
SMALL = dict(
    input_shape=(1, 8, 8), n_outputs=10, max_blocks=3, filter_choices=(2, 4, 8), kernel_choices=(3, 5), max_dense=2, dense_choices=(8, 16)
)


@pytest.fixture(scope="module")
def space() -> CNNSearchSpace:
    return CNNSearchSpace(**SMALL)


@pytest.fixture(scope="module")
def digits() -> ClassificationTask:
    X, y = load_digits()
    split = stratified_split(X, y, 0.15, 0.2, 0, image_shape=DIGITS_IMAGE_SHAPE)
    return ClassificationTask(split, name="digits", batch_size=256)


def build(space: CNNSearchSpace, seed: int = 0, population: int = 12, **params) -> ArchitectureSearch:
    init = space.init_params(np.random.default_rng(1000 + seed), 1)[0]
    return make_strategy("cnn_arch", space.n_params, population, seed, init, space=space, **params)


def toy_fitness(space: CNNSearchSpace, genomes: np.ndarray) -> np.ndarray:
    """A cheap deterministic fitness that rewards some weights and a mid-sized network."""
    weights = genomes[:, space.n_arch_genes : space.n_arch_genes + 50].sum(axis=1)
    return weights - 1e-4 * np.abs(space.complexity(genomes) - 3000)


def check_genome(space: CNNSearchSpace, genome: np.ndarray) -> None:
    """The architecture genes are exact, in range, and the genome decodes to a valid CNN of the space."""
    genes = genome[: space.n_arch_genes]
    assert np.all(genes == np.rint(genes))
    slots = genes[: len(BLOCK_FIELDS) * space.max_blocks].reshape(space.max_blocks, len(BLOCK_FIELDS))
    assert set(slots[:, 0]) <= {0.0, 1.0} and slots[:, 0].sum() >= 1
    assert np.all((slots[:, 1] >= 0) & (slots[:, 1] < len(space.filter_choices)))
    assert np.all((slots[:, 2] >= 0) & (slots[:, 2] < len(space.kernel_choices)))
    assert set(slots[:, 3]) <= {0.0, 1.0}
    assert 0 <= genes[space.dense_count_gene] <= space.max_dense
    cnn, params = space.decode(genome)
    assert 1 <= len(cnn.conv_blocks) <= space.max_blocks and len(cnn.hidden) <= space.max_dense
    assert all(b.filters in space.filter_choices and b.kernel_size in space.kernel_choices for b in cnn.conv_blocks)
    assert all(w in space.dense_choices for w in cnn.hidden)
    assert params.shape == (cnn.n_params,) and np.all(np.isfinite(params))


# ----------------------------------------------------------------- the space
def test_decode_encode_round_trip(space: CNNSearchSpace) -> None:
    rng = np.random.default_rng(0)
    for genome in space.init_params(rng, 20):
        cnn, params = space.decode(genome)
        slots = tuple(s for s, *_ in space.architecture(genome).blocks)
        again = space.encode(cnn, params, slots=slots)
        cnn2, params2 = space.decode(again)
        assert cnn2 == cnn
        np.testing.assert_array_equal(params2, params)
        # Blocks packed into the first slots: the same network, other slab regions.
        cnn3, params3 = space.decode(space.encode(cnn, params))
        assert cnn3 == cnn
        np.testing.assert_array_equal(params3, params)
    assert json.loads(json.dumps(space.decode_description(genome))) == cnn.describe()
    assert CNNSearchSpace.from_description(json.loads(json.dumps(space.describe()))) == space
    assert space.describe()["type"] == "cnn_search" and space.describe()["n_params"] == space.n_params


def test_encode_refuses_networks_outside_the_space(space: CNNSearchSpace) -> None:
    def cnn(**block) -> CNN:
        fields = dict(filters=4, kernel_size=3, padding="same", pool=2) | block
        return CNN((1, 8, 8), (ConvBlock(**fields),), 10, (), "relu", "softmax")

    for bad, match in ((cnn(filters=6), "filters"), (cnn(kernel_size=7), "kernel_size"), (cnn(padding=1), "same"), (cnn(pool=3), "pool")):
        with pytest.raises(ValueError, match=match):
            space.encode(bad, np.zeros(bad.n_params))
    wide = CNN((1, 8, 8), (ConvBlock(4, 3, padding="same"),), 10, (12,), "relu", "softmax")
    with pytest.raises(ValueError, match="width 12"):
        space.encode(wide, np.zeros(wide.n_params))


def test_resizing_keeps_the_overlapping_weights(space: CNNSearchSpace) -> None:
    rng = np.random.default_rng(1)
    net = CNN((1, 8, 8), (ConvBlock(4, 3, padding="same", pool=2), ConvBlock(4, 3, padding="same")), 10, (8,), "relu", "softmax")
    genome = space.init_params(rng, 1)[0]  # a full random slab, so unused entries are not zeros
    base = space.encode(net, net.init_params(rng, 1)[0])
    genome[: space.n_arch_genes] = base[: space.n_arch_genes]
    genome[space.gather_indices(base)] = base[space.gather_indices(base)]
    old = net.unflatten(space.decode(genome)[1][None])

    grown = genome.copy()
    grown[space.block_gene(0, "filters")] = 2  # 4 -> 8 filters
    grown[space.block_gene(1, "kernel")] = 1  # 3x3 -> 5x5
    grown[space.dense_width_gene(0)] = 1  # 8 -> 16 units
    cnn, params = space.decode(grown)
    assert [b.filters for b in cnn.conv_blocks] == [8, 4] and cnn.conv_blocks[1].kernel_size == 5 and cnn.hidden == (16,)
    new = cnn.unflatten(params[None])
    np.testing.assert_array_equal(new[0][0][:, :4], old[0][0])  # block 0: the first 4 filters
    np.testing.assert_array_equal(new[0][1][:, :4], old[0][1])
    np.testing.assert_array_equal(new[1][0][:, :, :4, 1:4, 1:4], old[1][0])  # block 1: first 4 channels, centre 3x3
    np.testing.assert_array_equal(new[1][1], old[1][1])
    # Dense: the first layer reads the same (4, 4, 4) maps; the first 8 units are kept.
    np.testing.assert_array_equal(new[2][0][:, :, :8], old[2][0])
    np.testing.assert_array_equal(new[3][0][:, :8, :], old[3][0])  # output layer: the first 8 inputs

    shrunk = grown.copy()
    shrunk[space.block_gene(1, "filters")] = 0  # block 1: 4 -> 2 filters; the dense head reads 2 channels now
    small = space.decode(shrunk)
    layers = small[0].unflatten(small[1][None])
    np.testing.assert_array_equal(layers[1][0], new[1][0][:, :2])
    np.testing.assert_array_equal(layers[2][0], new[2][0].reshape(1, 4, 4, 4, 16)[:, :2].reshape(1, 32, 16))


def test_pooling_is_skipped_where_the_map_is_too_small() -> None:
    space = CNNSearchSpace((1, 8, 8), 3, max_blocks=4, filter_choices=(2,), kernel_choices=(3,), max_dense=0)
    net = CNN(
        (1, 8, 8),
        tuple(ConvBlock(2, 3, padding="same", pool=2) for _ in range(3)) + (ConvBlock(2, 3, padding="same"),),
        3,
        (),
        "relu",
        "softmax",
    )
    genome = space.encode(net, np.zeros(net.n_params))
    genome[space.block_gene(3, "pool")] = 1.0  # a fourth pool would act on a 1x1 map
    cnn, _ = space.decode(genome)
    assert [b.pool for b in cnn.conv_blocks] == [2, 2, 2, 0]
    genome[: 4 * len(BLOCK_FIELDS) : len(BLOCK_FIELDS)] = 0.0  # no active block: slot 0 is used
    assert len(space.decode(genome)[0].conv_blocks) == 1


def test_forward_grouped_by_architecture_equals_one_at_a_time(space: CNNSearchSpace) -> None:
    rng = np.random.default_rng(2)
    genomes = space.init_params(rng, 10)
    genomes = np.concatenate(
        [genomes, genomes[[0, 3, 3]] + rng.normal(0, 0.1, (3, space.n_params)) * (np.arange(space.n_params) >= space.n_arch_genes)]
    )
    x = rng.random((17, 64))
    out = space.forward(genomes, x)
    assert out.shape == (13, 17, 10)
    assert len(space.group_by_architecture(genomes)) < len(genomes)
    for i, genome in enumerate(genomes):
        cnn, params = space.decode(genome)
        np.testing.assert_allclose(out[i], cnn.forward(params[None], x.reshape(17, 1, 8, 8))[0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(space.predict(genome, x), out[i], rtol=1e-12, atol=1e-14)
    per_genome = space.forward(genomes[:3], np.stack([x, 2 * x, 3 * x]))
    np.testing.assert_allclose(per_genome[1], space.forward(genomes[1:2], 2 * x)[0], rtol=1e-12)
    np.testing.assert_array_equal(space.complexity(genomes), [space.decode(g)[0].n_params for g in genomes])


# ----------------------------------------------------------------- the strategy
def test_registered() -> None:
    assert STRATEGIES["cnn_arch"] is ArchitectureSearch


@pytest.mark.parametrize("mode", ["evolve_weights", "train_weights"])
def test_mutations_stay_within_the_space(space: CNNSearchSpace, mode: str) -> None:
    strategy = build(space, population=16, mode=mode, p_add_block=0.5, p_remove_block=0.5, p_resize=0.7, p_pool=0.5, p_dense=0.7)
    rng = np.random.default_rng(3)
    seen = set()
    for _ in range(25):
        genomes = strategy.ask()
        for genome in genomes[1:] if strategy.generation_ == 0 else genomes:
            check_genome(space, genome)
            seen.add(space.architecture(genome))
        strategy.tell(genomes, rng.normal(size=len(genomes)))
    assert len(seen) > 40  # the mutations do move through the space
    assert {len(a.blocks) for a in seen} == {1, 2, 3} and {len(a.hidden) for a in seen} == {0, 1, 2}


def test_add_block_keeps_every_other_weight_and_initialises_the_new_slot(space: CNNSearchSpace) -> None:
    strategy = build(
        space, population=8, mode="train_weights", elite=0, p_add_block=1.0, p_remove_block=0.0, p_resize=0.0, p_pool=0.0, p_dense=0.0
    )
    parents = strategy.ask()
    strategy.tell(parents, np.zeros(len(parents)))
    for child in strategy.ask():
        explained = False
        for parent in parents:
            changed = np.flatnonzero(parent != child)
            if changed.size == 0:  # a parent whose slots were all in use: nothing to add
                explained = len(space.architecture(parent).blocks) == space.max_blocks
            else:
                slot = int(changed[0]) // len(BLOCK_FIELDS)
                w_off, _, b_off, b_size = space.block_region(slot)
                in_slot = (changed < len(BLOCK_FIELDS) * (slot + 1)) | ((changed >= w_off) & (changed < b_off + b_size))
                explained = (
                    parent[space.block_gene(slot, "active")] == 0.0
                    and child[space.block_gene(slot, "active")] == 1.0
                    and bool(np.all(in_slot))
                    and not np.any(child[b_off : b_off + b_size])  # fresh biases are zero
                )
            if explained:
                break
        assert explained


@pytest.mark.parametrize("selection", ["tournament", "nsga2"])
def test_determinism_and_bit_exact_resume(space: CNNSearchSpace, selection: str) -> None:
    def run(strategy: ArchitectureSearch, generations: int) -> list[np.ndarray]:
        asked = []
        for _ in range(generations):
            genomes = strategy.ask()
            asked.append(genomes)
            fitness = toy_fitness(space, genomes)
            fitness[::5] = -np.inf  # failures are part of the state too
            strategy.tell(genomes, fitness)
        return asked

    expected = run(build(space, seed=3, selection=selection), 6)
    again = run(build(space, seed=3, selection=selection), 6)
    for a, b in zip(expected, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(build(space, seed=4, selection=selection).ask(), expected[0])

    interrupted = build(space, seed=3, selection=selection)
    run(interrupted, 3)
    resumed = build(space, seed=99, selection=selection)
    resumed.load_state_dict(to_disk_and_back(interrupted.state_dict()))
    for want, got in zip(expected[3:], run(resumed, 3)):
        np.testing.assert_array_equal(want, got)
    uninterrupted = build(space, seed=3, selection=selection)
    run(uninterrupted, 6)
    np.testing.assert_array_equal(uninterrupted.best()[0], resumed.best()[0])
    assert uninterrupted.best()[1] == resumed.best()[1]
    for a, b in zip(uninterrupted.pareto_front(), resumed.pareto_front()):
        np.testing.assert_array_equal(a["genome"], b["genome"])
        assert (a["fitness"], a["complexity"]) == (b["fitness"], b["complexity"])
    fresh = build(space, seed=5, selection=selection)
    other = build(space, seed=6, selection=selection)
    other.load_state_dict(to_disk_and_back(fresh.state_dict()))  # before the first tell
    np.testing.assert_array_equal(fresh.ask(), other.ask())


def test_failed_evaluations_never_win(space: CNNSearchSpace) -> None:
    for selection in ("tournament", "nsga2"):
        strategy = build(space, seed=2, selection=selection)
        failed = set()
        for generation in range(6):
            genomes = strategy.ask()
            fitness = toy_fitness(space, genomes) + 100.0
            fitness[generation % 3 :: 3] = -np.inf if generation % 2 else np.nan
            if generation == 3:
                fitness[:] = -np.inf  # a generation of only failures
            failed.update(g.tobytes() for g in genomes[~np.isfinite(fitness)])
            strategy.tell(genomes, fitness)
        genome, value = strategy.best()
        assert math.isfinite(value) and genome.tobytes() not in failed
        assert all(math.isfinite(entry["fitness"]) for entry in strategy.pareto_front())
        assert np.all(np.isfinite(strategy.ask()))


def test_nsga2_front_is_non_dominated_and_covers_everything_evaluated(space: CNNSearchSpace) -> None:
    strategy = build(space, seed=1, population=16, selection="nsga2", pareto_size=1000)
    evaluated_f, evaluated_c = [], []
    previous = None
    for _ in range(8):
        genomes = strategy.ask()
        if previous is not None:
            # The survivors (half the population) are asked again, unchanged: re-evaluated with their offspring.
            assert {g.tobytes() for g in genomes[:8]} <= {g.tobytes() for g in previous}
        fitness = toy_fitness(space, genomes)  # deterministic: a re-evaluation gives the same value
        evaluated_f.append(fitness)
        evaluated_c.append(space.complexity(genomes))
        strategy.tell(genomes, fitness)
        previous = genomes
    front = strategy.pareto_front()
    assert len(front) >= 2
    points = [(e["fitness"], e["complexity"]) for e in front]
    for e in front:
        assert e["complexity"] == space.complexity(e["genome"][None])[0]
    for i, (fi, ci) in enumerate(points):
        for j, (fj, cj) in enumerate(points):
            assert i == j or not (fj >= fi and cj <= ci and (fj > fi or cj < ci)), f"{points[j]} dominates {points[i]}"
    assert [c for _, c in points] == sorted(c for _, c in points)
    # Every evaluated genome is weakly dominated by some front member.
    for f, c in zip(np.concatenate(evaluated_f), np.concatenate(evaluated_c)):
        assert any(fj >= f and cj <= c for fj, cj in points)
    np.testing.assert_array_equal(non_dominated(np.array([1.0, 2.0, 2.0, -np.inf, 0.5]), np.array([5, 5, 9, 1, 5])), [1])

    thin = build(space, seed=1, population=16, selection="nsga2", pareto_size=3)
    for _ in range(8):
        genomes = thin.ask()
        thin.tell(genomes, toy_fitness(space, genomes))
    assert len(thin.pareto_front()) <= 3


@pytest.mark.parametrize(
    "bad",
    [dict(mode="backprop"), dict(selection="spea2"), dict(elite=12), dict(p_resize=1.5), dict(weight_sigma=-1.0), dict(no_such=1)],
    ids=lambda b: next(iter(b)),
)
def test_bad_parameters_raise(space: CNNSearchSpace, bad: dict) -> None:
    with pytest.raises(ValueError, match=f"cnn_arch: .*{next(iter(bad))}"):
        build(space, **bad)
    with pytest.raises(ValueError, match="cnn_arch: space"):
        make_strategy("cnn_arch", space.n_params, 8, 0, np.zeros(space.n_params))
    with pytest.raises(ValueError, match="n_params"):
        make_strategy("cnn_arch", space.n_params + 1, 8, 0, np.zeros(space.n_params + 1), space=space)


# ----------------------------------------------------------------- on digits
def test_evolve_weights_improves_on_digits(digits: ClassificationTask) -> None:
    space = CNNSearchSpace((1, 8, 8), 10, max_blocks=2, filter_choices=(4, 8), max_dense=1, dense_choices=(16, 32))
    strategy = build(space, seed=0, population=16, selection="tournament", elite=2)
    evaluator = SerialEvaluator(run_seed=0)
    best_per_generation = []
    for _ in range(20):
        genomes = strategy.ask()
        # Always generation 1's minibatch: a fixed fitness, so the elites make the best monotone.
        fitness = evaluator.evaluate(digits, space, genomes, 1).fitness
        strategy.tell(genomes, fitness)
        best_per_generation.append(fitness.max())
    assert np.all(np.diff(best_per_generation) >= 0), best_per_generation
    # Measured over seeds 0-5: +0.05 to +0.18 (mean log-likelihood, from about -2.3) in 20 generations.
    assert best_per_generation[-1] > best_per_generation[0] + 0.03, best_per_generation
    assert strategy.best()[1] == best_per_generation[-1]


def test_training_task_scores_a_reasonable_architecture(digits: ClassificationTask) -> None:
    space = CNNSearchSpace((1, 8, 8), 10, max_blocks=2, filter_choices=(4, 8), max_dense=1, dense_choices=(16, 32))
    net = CNN((1, 8, 8), (ConvBlock(8, 3, padding="same", pool=2),), 10, (32,), "relu", "softmax")
    rng = np.random.default_rng(0)
    genomes = np.stack([space.encode(net, net.init_params(rng, 1)[0]) for _ in range(2)] + list(space.init_params(rng, 2)))
    task = ArchitectureTrainingTask(digits, epochs=2, lr=1e-2)
    seeds = np.array([11, 12, 13, 14], dtype=np.uint64)
    fitness = task.evaluate(space, genomes, seeds, 0)
    # Measured 0.88-0.94 over init seeds 0-5.
    assert np.all(fitness[:2] > 0.8), fitness
    # Chunk independence: alone or in any company, a genome's fitness depends on its genome and seed only.
    np.testing.assert_array_equal(task.evaluate(space, genomes[2:3], seeds[2:3], 99), fitness[2:3])
    chunked = SerialEvaluator(run_seed=7, chunk_size=1).evaluate(task, space, genomes, 1).fitness
    np.testing.assert_array_equal(chunked, SerialEvaluator(run_seed=7).evaluate(task, space, genomes, 1).fitness)
    # Validation and test report the same trained network; retraining (cache cleared) gives the same figures.
    test = task.test(space, genomes[0], 123)
    val = task.validate(space, genomes[0], 456)
    task._cache.clear()
    assert task.test(space, genomes[0], 789) == test and task.validate(space, genomes[0], 0) == val
    assert test["test_accuracy"] > 0.8 and test["test_n_params"] == space.decode(genomes[0])[0].n_params
    assert task.samples_per_evaluation() == 2 * len(digits.split.y_train) + len(digits.split.y_val)


def test_train_weights_search_runs_and_records_a_front(digits: ClassificationTask) -> None:
    space = CNNSearchSpace((1, 8, 8), 10, max_blocks=2, filter_choices=(4, 8), kernel_choices=(3,), max_dense=1, dense_choices=(16,))
    task = ArchitectureTrainingTask(digits, epochs=1, lr=1e-2, max_train=400)
    strategy = build(space, seed=0, population=6, mode="train_weights", selection="nsga2")
    evaluator = SerialEvaluator(run_seed=0)
    for generation in range(1, 4):
        genomes = strategy.ask()
        strategy.tell(genomes, evaluator.evaluate(task, space, genomes, generation).fitness)
    front = strategy.pareto_front()
    assert front and all(0.0 < e["fitness"] <= 1.0 for e in front)
    assert strategy.best()[1] == max(e["fitness"] for e in front)
    # Measured 0.80: one epoch of backprop inside the fitness lifts the best well above chance (0.10).
    assert max(e["fitness"] for e in front) > 0.5
    # Along the front, a larger network must be more accurate.
    assert all(a["complexity"] < b["complexity"] and a["fitness"] < b["fitness"] for a, b in zip(front, front[1:]))


def test_ray_ships_search_genomes_with_identical_fitness(ray_local, digits: ClassificationTask) -> None:
    space = CNNSearchSpace((1, 8, 8), 10, max_blocks=2, filter_choices=(4, 8), max_dense=1, dense_choices=(16, 32))
    genomes = space.init_params(np.random.default_rng(4), 10)
    training = ArchitectureTrainingTask(digits, epochs=1, lr=1e-2, max_train=200)
    evaluator = RayEvaluator(run_seed=1, workers=2, chunk_size=3)
    try:
        for task in (digits, training):
            serial = SerialEvaluator(run_seed=1).evaluate(task, space, genomes, 5)
            distributed = evaluator.evaluate(task, space, genomes, 5)
            np.testing.assert_array_equal(serial.fitness, distributed.fitness)
            assert serial.failures == distributed.failures == 0
    finally:
        evaluator.close()


def test_search_space_declares_its_capabilities(space: CNNSearchSpace) -> None:
    from networks.spec import Decodable, GraphExportable, HasComplexity, NetworkSpec, Trainable

    assert {Decodable, HasComplexity} <= set(CNNSearchSpace.__mro__)  # declared, not merely matching
    assert isinstance(space, NetworkSpec) and not isinstance(space, (Trainable, GraphExportable))
