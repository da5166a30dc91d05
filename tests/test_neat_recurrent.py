"""Recurrent NEAT: synchronous steps as neat-python's RecurrentNetwork, state carried per episode, batched over the
population, mutations that close cycles, and saved graphs that keep their recurrent edges and run with NumPy alone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evo import parse_config, run_evolution
from evo.build import build_network, build_strategy, build_task
from networks import network_from_description
from networks.neat import NEATSpec, RecurrentNEATSpec, load_graph_json
from networks.neat.compiled import compile_population
from networks.spec import Recurrent
from networks.stack import bind_genomes
from tests.helpers import assert_png, make_neat


def neat_python_steps(spec, genome, inputs):
    """neat-python's RecurrentNetwork.activate, written out: two value buffers, every node from the previous one."""
    nodes, conns = spec.decode(genome)
    alive = [i for i in range(spec.max_nodes) if nodes[i, 0] > 0.5]
    links = {i: [(int(c[1]), c[3]) for c in conns if c[0] > 0.5 and int(c[2]) == i] for i in alive}
    acts = {0: lambda z: z, 1: lambda z: 1 / (1 + np.exp(-z)), 2: np.tanh}
    values = [dict.fromkeys(alive, 0.0), dict.fromkeys(alive, 0.0)]
    active, outputs = 0, []
    for x in inputs:
        ivalues, ovalues = values[active], values[1 - active]
        active = 1 - active
        for i, v in enumerate(x):
            ivalues[i] = ovalues[i] = v
        for i in alive[spec.n_inputs :]:
            code = (
                {"identity": 0, "sigmoid": 1, "tanh": 2}[spec.output_activation] if i < spec.n_inputs + spec.n_outputs else int(nodes[i, 1])
            )
            ovalues[i] = acts[code](nodes[i, 2] + nodes[i, 3] * sum(ivalues[j] * w for j, w in links[i]))
        outputs.append([ovalues[spec.n_inputs + k] for k in range(spec.n_outputs)])
    return np.array(outputs)


def loop_genome(spec: RecurrentNEATSpec) -> np.ndarray:
    """2 inputs, 1 output, 2 hidden: a self-loop on the output, a cycle between the hidden nodes, one disabled link."""
    return spec.build_genome(
        [(0, 3, 0.7), (1, 4, -1.1), (3, 4, 0.9), (4, 3, -0.6), (3, 2, 1.3), (2, 2, 0.5), (4, 2, 0.4), (0, 2, 2.0, False)],
        n_hidden=2,
        biases=[0, 0, 0.1, -0.2, 0.3],
        activations=["identity", "identity", "identity", "tanh", "sigmoid"],
        responses=[1, 1, 1.5, 1, 0.8],
    )


def test_steps_are_neat_pythons_synchronous_updates():
    spec = RecurrentNEATSpec(2, 1, max_nodes=6, max_connections=10, output_activation="tanh")
    genome = loop_genome(spec)
    with pytest.raises(ValueError, match="cycle"):
        compile_population(NEATSpec(2, 1, 6, 10, "tanh"), genome[None])  # the feedforward pass refuses it
    inputs = np.random.default_rng(0).normal(size=(7, 2))
    expected = neat_python_steps(spec, genome, inputs)
    stack = bind_genomes(spec, np.stack([genome, genome]))
    got = np.array([stack.forward(np.broadcast_to(x, (2, 1, 2)))[:, 0] for x in inputs])  # (T, P, n_out)
    np.testing.assert_allclose(got[:, 0], expected, rtol=1e-12)
    np.testing.assert_array_equal(got[:, 0], got[:, 1])
    # Through the protocol's step as well, and the first step is the one-step forward.
    state = spec.initial_state(1, 1)
    for t, x in enumerate(inputs):
        state, out = spec.step(genome[None], state, x[None, None])
        np.testing.assert_allclose(out[0, 0], expected[t], rtol=1e-12)
    np.testing.assert_allclose(spec.predict(genome, inputs[:1]), expected[:1], rtol=1e-12)


def test_the_saved_graph_keeps_its_cycles_and_runs_with_numpy_alone(tmp_path):
    spec = RecurrentNEATSpec(2, 1, max_nodes=6, max_connections=10, output_activation="tanh")
    genome = loop_genome(spec)
    path = spec.save_graph(genome, tmp_path / "graph.json")
    graph = json.loads(path.read_text())
    assert graph["recurrent"] is True
    assert {(c["in"], c["out"]) for c in graph["connections"]} >= {(2, 2), (3, 4), (4, 3)}
    assert {n["id"]: n["level"] for n in graph["nodes"]} == {0: 0, 1: 0, 2: 2, 3: 1, 4: 1}  # the direct 0 -> 2 link is disabled
    net = load_graph_json(path)
    inputs = np.random.default_rng(1).normal(size=(6, 3, 2))  # 6 steps of a batch of 3 sequences
    expected = [neat_python_steps(spec, genome, inputs[:, b]) for b in range(3)]
    for t in range(6):
        np.testing.assert_allclose(net(inputs[t]), np.stack([e[t] for e in expected]), rtol=1e-12)
    net.reset()
    np.testing.assert_allclose(net(inputs[0]), np.stack([e[0] for e in expected]), rtol=1e-12)
    assert_png(spec.draw(genome, tmp_path / "graph.png"), min_bytes=5_000)


def test_mutations_close_cycles_and_the_population_runs_batched():
    spec = RecurrentNEATSpec(3, 2, max_nodes=16, max_connections=48)
    strategy = make_neat(spec, seed=4, population=40, feed_forward=False, add_connection_prob=0.6, add_node_prob=0.2)
    rng = np.random.default_rng(2)
    for _ in range(6):
        genomes = strategy.ask()
        strategy.tell(genomes, rng.normal(size=len(genomes)))
    genomes = strategy.ask()
    cyclic = 0
    for g in genomes:
        try:
            compile_population(NEATSpec(3, 2, 16, 48), g[None])
        except ValueError:
            cyclic += 1
    assert cyclic > 5, "recurrent NEAT should have grown cycles or self-connections"
    _, conns = spec.split(genomes)
    enabled = conns[..., 0] > 0.5
    assert (enabled & (conns[..., 1] == conns[..., 2])).any(), "and some self-connections"
    assert (enabled & (conns[..., 1] >= 3) & (conns[..., 1] < 5)).any(), "and connections out of the outputs"
    # One batched pass over the population equals each genome alone, step after step.
    x = rng.normal(size=(5, len(genomes), 4, 3))
    whole, parts = bind_genomes(spec, genomes), [bind_genomes(spec, genomes[i : i + 1]) for i in (0, 7, 39)]
    for t in range(5):
        out = whole.forward(x[t])
        for part, i in zip(parts, (0, 7, 39)):
            np.testing.assert_array_equal(part.forward(x[t, i : i + 1])[0], out[i])
    # A feedforward NEAT never closes a cycle under the same mutation rates.
    ff = make_neat(NEATSpec(3, 2, 16, 48), seed=4, population=40, add_connection_prob=0.6, add_node_prob=0.2)
    for _ in range(6):
        g = ff.ask()
        ff.tell(g, rng.normal(size=len(g)))
    compile_population(NEATSpec(3, 2, 16, 48), ff.ask())


def test_keep_moves_each_genomes_node_values_with_it():
    spec = RecurrentNEATSpec(2, 1, max_nodes=6, max_connections=10, output_activation="tanh")
    genomes = np.stack(
        [spec.init_params(np.random.default_rng(0), 1)[0], spec.init_params(np.random.default_rng(1), 1)[0], loop_genome(spec)]
    )
    x = np.random.default_rng(3).normal(size=(4, 3, 2, 2))
    stack, alone = bind_genomes(spec, genomes), bind_genomes(spec, genomes[2:])
    for t in range(2):
        stack.forward(x[t])
        alone.forward(x[t, 2:])
    stack.keep(np.array([2]))
    for t in range(2, 4):
        np.testing.assert_array_equal(stack.forward(x[t, 2:]), alone.forward(x[t, 2:]))


def test_config_feed_forward_false_runs_a_control_task_with_memory(tmp_path):
    config = parse_config(
        {
            "name": "rneat-test",
            "generations": 3,
            "network": {"type": "neat", "feed_forward": False, "max_nodes": 12, "max_connections": 40},
            "task": {"type": "control", "env_id": "CartPole-v1", "observe": [0, 2], "episodes": 2, "max_steps": 200, "test_episodes": 3},
            "strategy": {"type": "neat", "population": 20, "add_connection_prob": 0.5},
        }
    )
    task = build_task(config)
    network = build_network(config, task)
    assert isinstance(network, RecurrentNEATSpec) and isinstance(network, Recurrent) and network.describe()["feed_forward"] is False
    assert network_from_description(network.describe()) == network
    assert build_strategy(config, network).params.feed_forward is False
    result = run_evolution(config, run_dir=tmp_path / "run")
    graph = json.loads((result.run_dir / "best_genome_graph.json").read_text())
    assert graph["recurrent"] is True and result.summary["test_mean_return"] > 0
