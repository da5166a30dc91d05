"""NEAT through configs: runs, saved graphs, resume, pairing errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evo import ConfigError, EvolutionRun, parse_config, run_evolution
from networks.neat import load_graph_json
from tests.helpers import XOR_NEAT, assert_png, metrics_without_time


def test_neat_solves_xor_and_saves_a_standalone_graph(tmp_path):
    result = run_evolution(parse_config(XOR_NEAT), run_dir=tmp_path / "r")
    assert result.summary["test_accuracy"] == 1.0
    d = result.run_dir
    assert_png(d / "best_genome_graph.png", min_bytes=1000)
    graph = json.loads((d / "best_genome_graph.json").read_text())
    assert graph["nodes"] and graph["connections"]
    # Inference from the JSON alone, no evolution code, agrees with the spec's forward pass.
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    standalone = load_graph_json(d / "best_genome_graph.json")(x)
    np.testing.assert_allclose(standalone, result.network.predict(result.best_genome, x), rtol=1e-12, atol=1e-12)
    assert list(standalone[:, 0] > 0.5) == [False, True, True, False]


def test_neat_resume_matches_an_uninterrupted_run(tmp_path):
    base = {**XOR_NEAT, "generations": 6, "target_fitness": None, "checkpoint_every": 3}
    straight = run_evolution(parse_config(base), run_dir=tmp_path / "straight")
    run_evolution(parse_config({**base, "generations": 3}), run_dir=tmp_path / "resumed")
    resumed = EvolutionRun.resume(tmp_path / "resumed", generations=6, progress=False).run()
    assert metrics_without_time(resumed.run_dir) == metrics_without_time(straight.run_dir)


def test_neat_on_cartpole_through_a_config(tmp_path):
    config = parse_config(
        {
            **XOR_NEAT,
            "generations": 3,
            "target_fitness": None,
            "task": {"type": "control", "env_id": "CartPole-v1", "episodes": 2, "max_steps": 200, "test_episodes": 5},
            "strategy": {"type": "neat", "population": 30},
        }
    )
    result = run_evolution(config, run_dir=tmp_path / "c")
    assert 150 <= result.summary["test_mean_return"] <= 200  # NEAT balances the pole within 3 generations
    assert result.summary["network"]["type"] == "neat"


def test_topology_strategies_need_their_networks():
    with pytest.raises(ConfigError, match="strategy 'neat' needs network.type = 'neat'"):
        parse_config({**XOR_NEAT, "network": {"hidden": [4]}})
    with pytest.raises(ConfigError, match="needs network.type = 'neat'"):
        parse_config({**XOR_NEAT, "strategy": {"type": "cmaes"}})


def test_cnn_architecture_search_writes_a_pareto_front(tmp_path):
    config = parse_config(
        {
            "name": "arch-test",
            "seed": 0,
            "generations": 3,
            "network": {"type": "cnn_search", "max_blocks": 2, "filter_choices": [2, 4], "dense_choices": [8]},
            "task": {"type": "digits", "batch_size": 64},
            "strategy": {"type": "cnn_arch", "population": 8, "selection": "nsga2"},
        }
    )
    result = run_evolution(config, run_dir=tmp_path / "a")
    front = json.loads((result.run_dir / "pareto_front.json").read_text())
    assert front and front == result.summary["pareto_front"]
    assert_png(result.run_dir / "pareto_front.png")
    for a in front:  # nobody on the front is beaten on both objectives by another member
        assert not any(
            b["fitness"] >= a["fitness"]
            and b["complexity"] <= a["complexity"]
            and b != a
            and (b["fitness"] > a["fitness"] or b["complexity"] < a["complexity"])
            for b in front
        )
    assert max(a["fitness"] for a in front) <= result.summary["best_fitness"]
    # The saved genomes reproduce the reported figures: size, and test accuracy recomputed from the decoded CNN.
    from evo.tasks.datasets import load_digits, stratified_split

    genomes = np.load(result.run_dir / "pareto_front.npz")["genomes"]
    assert genomes.shape == (len(front), result.network.n_params)
    np.testing.assert_array_equal(result.network.complexity(genomes), [a["complexity"] for a in front])
    X, y = load_digits()
    split = stratified_split(X, y, 0.1, 0.2, 0)
    for genome, a in zip(genomes, front):
        cnn, params = result.network.decode(genome)
        assert a["test_accuracy"] == np.mean(cnn.predict(params, split.X_test).argmax(axis=1) == split.y_test)
    architecture = json.loads((result.run_dir / "best_genome.json").read_text())["architecture"]
    assert architecture["type"] == "cnn"


def test_evolved_neat_graph_is_fine_tuned_by_backprop(tmp_path):
    from evo.train import TrainingRun

    evolved = run_evolution(parse_config(XOR_NEAT), run_dir=tmp_path / "evolved")
    config = parse_config({**XOR_NEAT, "train": {"lr": 0.05, "batch_size": 4, "epochs": 200, "weight_decay": 0.0, "patience": 0}})
    tuned = TrainingRun(config, run_dir=tmp_path / "tuned", progress=False, init_from=evolved.run_dir).run()
    assert tuned.summary["test_accuracy"] == 1.0
    assert tuned.summary["test_mse"] < evolved.summary["test_mse"]
    spec = evolved.network
    # Backprop changed weights and biases only: the graph's structure is untouched.
    assert spec.count_enabled(tuned.params[None])[0] == spec.count_enabled(evolved.best_genome[None])[0]
    assert spec.count_hidden(tuned.params[None])[0] == spec.count_hidden(evolved.best_genome[None])[0]


def test_train_weights_search_saves_the_trained_network(tmp_path):
    from evo.tasks.datasets import load_digits, stratified_split
    from networks import network_from_description

    config = parse_config(
        {
            "name": "arch-train-test",
            "seed": 0,
            "generations": 1,
            "network": {"type": "cnn_search", "max_blocks": 1, "filter_choices": [4], "dense_choices": [8], "max_dense": 1},
            "task": {"type": "digits", "val_fraction": 0.15},
            "strategy": {"type": "cnn_arch", "population": 3, "mode": "train_weights", "train_epochs": 1},
        }
    )
    result = run_evolution(config, run_dir=tmp_path / "t")
    d = result.run_dir
    net = network_from_description(json.loads((d / "best_trained.json").read_text())["network"])
    params = np.load(d / "best_trained.npz")["params"]
    X, y = load_digits()
    split = stratified_split(X, y, 0.15, 0.2, 0)
    accuracy = float(np.mean(net.predict(params, split.X_test).argmax(1) == split.y_test))
    assert accuracy == pytest.approx(result.summary["test_accuracy"])
