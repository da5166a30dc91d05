"""Control with memory: the observation mask, and recurrent networks whose state lives as long as their episode."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

from evo import ConfigError, parse_config
from evo.build import build_network, build_task
from evo.seeding import mix
from evo.tasks.control import ControlTask, episode_keys, vector_initial_states
from networks.mlp import MLP
from networks.rnn import RNN

MASKED = {
    "name": "masked-test",
    "generations": 2,
    "network": {"type": "rnn", "cell": "elman", "hidden": [5]},
    "task": {"type": "control", "env_id": "CartPole-v1", "observe": [0, 2], "episodes": 2, "test_episodes": 5},
    "strategy": {"type": "cmaes", "population": 8, "sigma": 0.5},
}


@pytest.fixture(scope="module")
def masked() -> ControlTask:
    return ControlTask("CartPole-v1", episodes=3, observe=[0, 2])


def test_the_mask_sets_the_network_inputs_and_refuses_bad_indices(masked):
    assert masked.n_inputs == 2 and masked.describe()["observe"] == [0, 2]
    network = build_network(parse_config(MASKED), build_task(parse_config(MASKED)))
    assert isinstance(network, RNN) and (network.input_size, network.steps) == (2, 1)
    for bad in ([0, 4], [1, 1], []):
        with pytest.raises(ValueError, match=r"task.observe = .*distinct observation indices in 0..3"):
            ControlTask("CartPole-v1", observe=bad)
    with pytest.raises(ConfigError, match="task.observe"):
        build_task(parse_config({**MASKED, "task": {**MASKED["task"], "observe": [7]}}))


@pytest.mark.parametrize("vectorized", [True, False])
def test_the_network_sees_only_the_observed_values(masked, vectorized):
    """A network on [x, theta] scores exactly as the full-observation network whose velocity weights are zero."""
    small, full = MLP((2, 2)), MLP((4, 2))
    genomes = small.init_params(np.random.default_rng(0), 6)
    wide = np.zeros((6, full.n_params))
    wide[:, [0, 1, 4, 5]] = genomes[:, :4]  # rows 0 and 2 of the 4 x 2 weight matrix
    wide[:, 8:] = genomes[:, 4:]
    seeds = mix(5, np.arange(6, dtype=np.uint64))
    task, plain = ControlTask("CartPole-v1", episodes=3, observe=[0, 2]), ControlTask("CartPole-v1", episodes=3)
    task.vectorized = plain.vectorized = vectorized
    np.testing.assert_array_equal(task.episode_returns(small, genomes, seeds, 3), plain.episode_returns(full, wide, seeds, 3))


def _by_hand(network: RNN, genome: np.ndarray, key: int) -> float:
    """One masked episode in a single gymnasium env, the network's state carried by hand from step to step."""
    env = gymnasium.make("CartPole-v1", disable_env_checker=True)
    env.reset(seed=0)
    start = vector_initial_states("CartPole-v1", np.array([key]))[0]
    env.unwrapped.state = start.copy()
    obs = start.astype(np.float32).astype(np.float64)
    state = network.initial_state(1, 1)
    total = 0.0
    for _ in range(500):
        state, out = network.step(genome[None], state, obs[[0, 2]][None, None])
        obs, reward, terminated, truncated, _ = env.step(int(np.argmax(out[0, 0])))
        obs = np.asarray(obs, dtype=np.float64)
        total += reward
        if terminated or truncated:
            break
    return total


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
def test_a_recurrent_policy_keeps_its_state_for_its_episode_only(masked, cell):
    network = RNN(2, (4,), 2, cell=cell)
    genomes = network.init_params(np.random.default_rng(1), 5) * 3.0
    seeds = mix(9, np.arange(5, dtype=np.uint64))
    returns = masked.episode_returns(network, genomes, seeds, 3)
    keys = episode_keys(seeds, 3)
    for i in (0, 3):
        for e in range(3):
            assert returns[i, e] == _by_hand(network, genomes[i], int(keys[i, e]))
    # Compaction moves each episode's state with it; fitness is the same either way, and so is any chunking.
    fixed = ControlTask("CartPole-v1", episodes=3, observe=[0, 2], compaction=False)
    np.testing.assert_array_equal(fixed.episode_returns(network, genomes, seeds, 3), returns)
    np.testing.assert_array_equal(masked.episode_returns(network, genomes[2:4], seeds[2:4], 3), returns[2:4])


def test_a_saved_masked_controller_reads_the_observations_it_was_evolved_on(tmp_path):
    from evo import run_evolution
    from evo.rollouts import run_episodes
    from networks.model import load_model

    result = run_evolution(parse_config({**MASKED, "seed": 3, "out": str(tmp_path)}))
    model = load_model(result.run_dir)
    assert model.outputs_meaning["observe"] == [0, 2]
    obs = np.array([0.1, -0.7, 0.02, 0.9])
    model.reset()
    expected = int(model.forward(obs[[0, 2]].reshape(1, 2)).argmax())
    model.reset()
    assert model.act(obs) == expected
    episodes = run_episodes(model, 2, seed=0)
    assert [e["steps"] for e in episodes] and all(e["steps"] >= 1 for e in episodes)
