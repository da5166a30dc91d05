"""NEAT extras: the backward pass (finite differences, fine-tuning with the Trainer) and NSGA-II selection."""

from __future__ import annotations

import json
import math
import zlib

import numpy as np
import pytest

from evo.strategies.neat import NEAT
from evo.strategies.pareto import non_dominated
from evo.tasks.boolean import ParityTask
from networks.neat import (
    ACTIVATION_CODES,
    Conn,
    NEATSpec,
    Node,
)
from networks.trainer import Trainer
from tests.helpers import XOR_SPEC, global_random_untouched, make_neat, to_disk_and_back, xor_fitness


def trainable_mask(spec: NEATSpec, genome: np.ndarray) -> np.ndarray:
    """True on the entries a gradient may touch: enabled connection weights, biases of existing non-input nodes."""
    mask = np.zeros(spec.n_params, dtype=bool)
    nodes, conns = spec.split(genome)
    mask_nodes, mask_conns = spec.split(mask)
    mask_conns[:, Conn.WEIGHT] = conns[:, Conn.STATE] > 0.5
    mask_nodes[spec.n_inputs :, Node.BIAS] = nodes[spec.n_inputs :, Node.EXISTS] > 0.5
    return mask


def evolved_genome(spec: NEATSpec, seed: int) -> np.ndarray:
    """A genome grown by several generations of mutation, with mixed smooth activations, responses and biases."""
    strategy = make_neat(spec, seed=seed, population=20, add_node_prob=0.5, add_connection_prob=0.6, toggle_prob=0.1)
    rng = np.random.default_rng(seed)
    for _ in range(8):
        genomes = strategy.ask()
        strategy.tell(genomes, spec.count_hidden(genomes) + rng.random(len(genomes)))  # rewards growth
    genomes = strategy.ask()
    genome = genomes[int(np.argmax(spec.count_hidden(genomes)))].copy()
    nodes, conns = spec.split(genome)
    hidden = np.flatnonzero(nodes[:, Node.EXISTS] > 0.5)[spec.n_inputs + spec.n_outputs :]
    smooth = [ACTIVATION_CODES[a] for a in ("tanh", "sigmoid", "identity")]
    nodes[hidden, Node.ACTIVATION] = rng.choice(smooth, size=len(hidden))
    nodes[spec.n_inputs :, Node.RESPONSE] = np.where(
        nodes[spec.n_inputs :, Node.EXISTS] > 0.5, rng.uniform(0.5, 2.0, spec.max_nodes - spec.n_inputs), 0.0
    )
    nodes[spec.n_inputs :, Node.BIAS] = np.where(
        nodes[spec.n_inputs :, Node.EXISTS] > 0.5, rng.normal(0, 0.5, spec.max_nodes - spec.n_inputs), 0.0
    )
    enabled = conns[:, Conn.STATE] > 0.5
    conns[enabled, Conn.WEIGHT] = rng.normal(0.0, 0.8, enabled.sum())
    assert spec.count_hidden(genome) >= 3 and (conns[:, Conn.STATE] < -0.5).any(), "want hidden nodes and disabled genes"
    assert spec.compile(genome[None]).depth >= 3
    return genome


# The losses, written out here rather than taken from networks.losses.
def mse(outputs: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    diff = outputs - targets
    return float(np.mean(diff**2)), 2.0 * diff / diff.size


def cross_entropy_on_logits(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(labels))
    d = np.exp(log_p)
    d[rows, labels] -= 1.0
    return float(-log_p[rows, labels].mean()), d / len(labels)


CASES = {
    # output activation, whether the outputs are logits, loss
    "sigmoid-mse": ("sigmoid", True, "mse"),
    "softmax-cross_entropy": ("softmax", True, "ce"),
    "softmax_probabilities-mse": ("softmax", False, "mse"),
    "tanh-mse": ("tanh", True, "mse"),
    "identity-mse": ("identity", True, "mse"),
}


# ----------------------------------------------------------------- backward pass
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_gradient_matches_finite_differences(case: str, seed: int) -> None:
    output_activation, return_logits, loss_name = CASES[case]
    spec = NEATSpec(3, 3, max_nodes=24, max_connections=60, output_activation=output_activation)
    genome = evolved_genome(spec, seed)
    rng = np.random.default_rng(100 + seed)
    X = rng.normal(size=(6, 3))
    if loss_name == "ce":
        targets = rng.integers(0, 3, size=6)
        loss = cross_entropy_on_logits
    else:
        targets = rng.random((6, 3))
        loss = mse

    def loss_of(params: np.ndarray) -> float:
        return loss(spec.forward_train(params, X, return_logits=return_logits)[0], targets)[0]

    outputs, cache = spec.forward_train(genome, X, return_logits=return_logits)
    _, d_out = loss(outputs, targets)
    buffer = np.full(spec.n_params, 7.0)  # garbage: backward must overwrite every entry
    grad = spec.backward(genome, cache, d_out, out=buffer)
    assert grad is buffer and grad.dtype == np.float64 and grad.shape == (spec.n_params,)
    trainable = trainable_mask(spec, genome)
    # Exactly zero on every structural, empty, disabled and input-bias entry.
    assert np.all(grad[~trainable] == 0.0)
    numeric = np.zeros(spec.n_params)
    eps = 1e-6
    for i in np.flatnonzero(trainable):
        step = np.zeros(spec.n_params)
        step[i] = eps
        numeric[i] = (loss_of(genome + step) - loss_of(genome - step)) / (2 * eps)
    relative = np.linalg.norm(grad - numeric) / (np.linalg.norm(grad) + np.linalg.norm(numeric))
    assert relative < 1e-6, relative
    assert np.count_nonzero(grad) > 0.8 * trainable.sum()  # the check is not vacuous


def test_forward_train_agrees_with_forward_and_refuses_dropout() -> None:
    spec = NEATSpec(3, 3, max_nodes=24, max_connections=60, output_activation="softmax")
    genome = evolved_genome(spec, 2)
    X = np.random.default_rng(0).normal(size=(5, 3))
    logits, _ = spec.forward_train(genome, X)
    probabilities, _ = spec.forward_train(genome, X, return_logits=False)
    np.testing.assert_array_equal(probabilities, spec.predict(genome, X))
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), probabilities, rtol=1e-12)
    with pytest.raises(ValueError, match="dropout"):
        spec.forward_train(genome, X, dropout=0.5, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="shape"):
        spec.forward_train(genome, X[:, :2])


def test_weight_mask_is_every_connection_weight_slot() -> None:
    spec = NEATSpec(2, 1, max_nodes=6, max_connections=9)
    mask = spec.weight_mask()
    assert mask.dtype == bool and mask.shape == (spec.n_params,)
    nodes, conns = spec.split(mask)
    assert conns[:, Conn.WEIGHT].all() and mask.sum() == spec.max_connections and not nodes.any()


def test_complexity_counts_enabled_connections() -> None:
    spec = NEATSpec(2, 1, max_nodes=8, max_connections=10)
    genome = spec.build_genome([(0, 3, 1.0), (1, 3, 1.0), (3, 2, 1.0), (0, 2, 1.0, False)], n_hidden=1)
    complexity = spec.complexity(np.stack([genome, spec.init_params(np.random.default_rng(0))[0]]))
    assert complexity.tolist() == [3, 2] and complexity.dtype == np.int64


def test_trainer_fine_tunes_a_neat_genome_on_xor_without_touching_its_structure() -> None:
    spec = NEATSpec(2, 1, max_nodes=8, max_connections=12)
    task = ParityTask(2)
    # The XOR topology (two tanh hidden nodes, a disabled gene) with weights far too small to work.
    genome = spec.build_genome(
        [(0, 3, 4.0), (1, 3, 4.0), (0, 4, 2.0), (1, 4, 2.0), (3, 2, 5.0), (4, 2, -5.0), (0, 2, 0.3, False)],
        n_hidden=2,
        biases=[0.0, 0.0, -5.0, -2.0, -6.0],
        responses=[1.0, 1.0, 1.0, 1.0, 2.0],
    )
    nodes, conns = spec.split(genome)
    conns[:, Conn.WEIGHT] *= 0.1
    nodes[:, Node.BIAS] *= 0.1
    before = task.test(spec, genome, 0)
    assert before["test_accuracy"] < 1.0 and before["test_mse"] > 0.24
    trainer = Trainer(spec, loss="mse", lr=0.05, batch_size=4, epochs=300, patience=None, seed=0)  # default L2 1e-3
    trainer.fit(task.inputs, task.targets, init_params=genome)
    assert trainer.history_[-1]["train_loss"] < 0.1 * trainer.history_[0]["train_loss"]
    tuned = trainer.params_
    assert task.test(spec, tuned, 0)["test_accuracy"] == 1.0
    # Structure unchanged: only enabled weights and non-input biases moved (a disabled gene's weight may decay).
    _, tuned_conns = spec.split(tuned)
    disabled_weight = np.zeros(spec.n_params, dtype=bool)
    spec.split(disabled_weight)[1][:, Conn.WEIGHT] = conns[:, Conn.STATE] < -0.5
    fixed = ~trainable_mask(spec, genome) & ~disabled_weight
    np.testing.assert_array_equal(tuned[fixed], genome[fixed])
    assert np.all(tuned_conns[conns[:, Conn.STATE] == 0.0, Conn.WEIGHT] == 0.0)  # empty slots stay exactly 0
    np.testing.assert_array_equal(spec.compile(tuned[None]).level, spec.compile(genome[None]).level)
    assert spec.complexity(tuned[None])[0] == spec.complexity(genome[None])[0]


# ----------------------------------------------------------------- NSGA-II
def run_nsga2(seed: int, population: int, generations: int, fitness=xor_fitness) -> tuple[NEAT, list[np.ndarray], list[np.ndarray]]:
    """An NSGA-II NEAT run; returns the strategy and every population asked with its fitness."""
    strategy = make_neat(seed=seed, population=population, selection="nsga2")
    asked, scores = [], []
    for _ in range(generations):
        genomes = strategy.ask()
        f = fitness(genomes)
        asked.append(genomes)
        scores.append(f)
        strategy.tell(genomes, f)
    return strategy, asked, scores


def test_nsga2_on_xor_keeps_a_non_dominated_archive_that_solves_it() -> None:
    strategy, asked, scores = run_nsga2(seed=2, population=150, generations=30)
    front = strategy.pareto_front()
    assert front and all(set(m) == {"genome", "fitness", "complexity", "hidden_nodes"} for m in front)
    complexity = np.array([m["complexity"] for m in front])
    fitness = np.array([m["fitness"] for m in front])
    assert np.all(np.diff(complexity) > 0) and np.all(np.diff(fitness) > 0)  # sorted, and each step pays off
    for m in front:
        assert m["complexity"] == XOR_SPEC.count_enabled(m["genome"]) and m["hidden_nodes"] == XOR_SPEC.count_hidden(m["genome"])
    # No member dominates another, and none of everything evaluated dominates a member.
    everything = np.concatenate(asked)
    all_fitness = np.concatenate(scores)
    all_complexity = XOR_SPEC.complexity(everything)
    for m in front:
        dominated = (
            (all_fitness >= m["fitness"])
            & (all_complexity <= m["complexity"])
            & ((all_fitness > m["fitness"]) | (all_complexity < m["complexity"]))
        )
        assert not dominated.any()
    # The archive is exactly the front of everything evaluated (objectives compared).
    reference = non_dominated(all_fitness, all_complexity)
    np.testing.assert_array_equal(all_complexity[reference], complexity)
    np.testing.assert_array_equal(all_fitness[reference], fitness)
    task = ParityTask(2)
    solving = [m for m in front if task.test(XOR_SPEC, m["genome"], 0)["test_accuracy"] == 1.0]
    assert solving and min(m["hidden_nodes"] for m in solving) >= 1
    assert len(set(complexity.tolist())) >= 4
    genome, best = strategy.best()
    assert best == all_fitness.max() == fitness.max()
    assert task.test(XOR_SPEC, genome, 0)["test_accuracy"] == 1.0
    assert strategy.n_species == 0


def test_nsga2_resume_is_bit_identical_through_npz_and_json() -> None:
    uninterrupted, expected, _ = run_nsga2(seed=5, population=40, generations=12)
    interrupted, _, _ = run_nsga2(seed=5, population=40, generations=6)
    resumed = make_neat(seed=99, population=40, selection="nsga2")
    resumed.load_state_dict(to_disk_and_back(interrupted.state_dict()))
    for want in expected[6:]:
        got = resumed.ask()
        np.testing.assert_array_equal(want, got)
        resumed.tell(got, xor_fitness(got))
    np.testing.assert_array_equal(uninterrupted.best()[0], resumed.best()[0])
    state_a, state_b = uninterrupted.state_dict(), resumed.state_dict()
    assert set(state_a) == set(state_b) and {"archive", "archive_fitness", "parents", "parent_fitness"} <= set(state_a)
    for key in state_a:
        np.testing.assert_equal(state_a[key], state_b[key])
    for a, b in zip(uninterrupted.pareto_front(), resumed.pareto_front()):
        np.testing.assert_array_equal(a["genome"], b["genome"])
        assert a["fitness"] == b["fitness"]
    # A state of the other selection mode is refused, either way round.
    with pytest.raises(ValueError, match="selection"):
        make_neat(population=40).load_state_dict(interrupted.state_dict())
    with pytest.raises(ValueError, match="selection"):
        make_neat(population=40, selection="nsga2").load_state_dict(make_neat(population=40).state_dict())


def test_nsga2_survives_failures_and_leaves_global_random_states_alone() -> None:
    def flaky(genomes: np.ndarray) -> np.ndarray:
        """XOR fitness, but a third of the genomes fail (-inf) and some give NaN: a property of the genome."""
        f = xor_fitness(genomes)
        crc = np.array([zlib.crc32(g.tobytes()) for g in genomes])
        f[crc % 3 == 0] = -np.inf
        f[crc % 7 == 0] = np.nan
        return f

    with global_random_untouched():
        strategy, asked, scores = run_nsga2(seed=3, population=30, generations=8, fitness=flaky)
    failed = {g.tobytes() for genomes, f in zip(asked, scores) for g, v in zip(genomes, f) if not np.isfinite(v)}
    front = strategy.pareto_front()
    assert front and all(np.isfinite(m["fitness"]) and m["genome"].tobytes() not in failed for m in front)
    assert math.isfinite(strategy.best()[1])
    genomes = strategy.ask()
    strategy.tell(genomes, np.full(len(genomes), -np.inf))  # an all-failed generation
    assert np.all(np.isfinite(strategy.ask()))


def test_selection_option_and_unchanged_default() -> None:
    with pytest.raises(ValueError, match="neat: selection"):
        make_neat(selection="tournament")
    default = make_neat(seed=4)
    assert default.params.selection == "speciation" and default.pareto_front() == []
    assert not {"archive", "parents", "selection"} & set(default.state_dict())
    a, b = make_neat(seed=4, population=40, selection="nsga2"), make_neat(seed=4, population=40, selection="nsga2")
    for _ in range(3):
        ga, gb = a.ask(), b.ask()
        np.testing.assert_array_equal(ga, gb)
        a.tell(ga, xor_fitness(ga))
        b.tell(gb, xor_fitness(gb))


def test_non_dominated_by_hand() -> None:
    fitness = np.array([0.5, 0.9, 0.5, 0.7, 0.9, 0.2, 0.95])
    complexity = np.array([2, 5, 2, 3, 4, 0, 9])
    # (0.2, 0) < (0.5, 2; the first of two equal points) < (0.7, 3) < (0.9, 4) < (0.95, 9); (0.9, 5) is dominated.
    assert non_dominated(fitness, complexity).tolist() == [5, 0, 3, 4, 6]
    assert non_dominated(np.zeros(0), np.zeros(0)).tolist() == []


def test_the_run_loop_writes_the_pareto_front_and_resumes_nsga2_exactly(tmp_path) -> None:
    from evo import EvolutionRun, parse_config
    from tests.helpers import XOR_NEAT, metrics_without_time

    config = {
        **XOR_NEAT,
        "name": "xor-neat-nsga2",
        "seed": 1,
        "generations": 8,
        "target_fitness": None,
        "checkpoint_every": 2,
        "network": {**XOR_NEAT["network"], "max_connections": 40},
        "strategy": {"type": "neat", "population": 40, "selection": "nsga2"},
    }
    straight = EvolutionRun(parse_config(config), run_dir=tmp_path / "straight", progress=False).run()
    EvolutionRun(parse_config({**config, "generations": 4}), run_dir=tmp_path / "resumed", progress=False).run()
    resumed = EvolutionRun.resume(tmp_path / "resumed", generations=8, progress=False).run()
    assert metrics_without_time(resumed.run_dir) == metrics_without_time(straight.run_dir)
    rows = json.loads((straight.run_dir / "pareto_front.json").read_text())
    assert rows and {"fitness", "complexity", "hidden_nodes", "test_accuracy"} <= set(rows[0])
    assert json.loads((resumed.run_dir / "pareto_front.json").read_text()) == rows


def test_blocked_backward_gives_the_same_gradient(monkeypatch) -> None:
    import networks.neat.compiled as neat_module

    spec = NEATSpec(3, 3, max_nodes=24, max_connections=60, output_activation="softmax")
    genome = evolved_genome(spec, 3)
    X = np.random.default_rng(4).normal(size=(5, 3))
    labels = np.array([0, 2, 1, 1, 0])
    outputs, cache = spec.forward_train(genome, X)
    whole = spec.backward(genome, cache, cross_entropy_on_logits(outputs, labels)[1])
    monkeypatch.setattr(neat_module, "BLOCK_ELEMENTS", 12)  # a few connections per block
    outputs_blocked, cache = spec.forward_train(genome, X)
    np.testing.assert_array_equal(outputs_blocked, outputs)
    np.testing.assert_allclose(spec.backward(genome, cache, cross_entropy_on_logits(outputs, labels)[1]), whole, rtol=1e-12, atol=1e-15)
