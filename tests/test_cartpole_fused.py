"""The fused CartPole step (evo.envs.cartpole) against gymnasium's CartPole-v1, and the control task that uses it."""

from __future__ import annotations

import math
import warnings

import gymnasium
import numpy as np
import pytest

from evo.build import build_network, build_task
from evo.config import parse_config
from evo.envs import cartpole
from evo.envs.cartpole import CartPoleBatch, gymnasium_reset_states
from evo.seeding import individual_seeds, mix
from evo.tasks.control import ControlTask
from networks.mlp import MLP
from networks.rnn import RNN

NET = MLP((4, 16, 2), activation="tanh", output_activation="identity")


def test_constants_are_gymnasiums() -> None:
    env = gymnasium.make("CartPole-v1").unwrapped
    for ours, theirs in [
        (cartpole.GRAVITY, env.gravity),
        (cartpole.MASS_CART, env.masscart),
        (cartpole.MASS_POLE, env.masspole),
        (cartpole.TOTAL_MASS, env.total_mass),
        (cartpole.LENGTH, env.length),
        (cartpole.POLEMASS_LENGTH, env.polemass_length),
        (cartpole.FORCE_MAG, env.force_mag),
        (cartpole.TAU, env.tau),
        (cartpole.THETA_THRESHOLD, env.theta_threshold_radians),
        (cartpole.X_THRESHOLD, env.x_threshold),
    ]:
        assert ours == theirs
    assert env.kinematics_integrator == "euler"


def test_reset_states_are_gymnasiums() -> None:
    env = gymnasium.make("CartPole-v1")
    seeds = [0, 1, 7, 12345, 2**31 - 2]
    states = gymnasium_reset_states(seeds)
    for seed, state in zip(seeds, states, strict=True):
        obs, _ = env.reset(seed=seed)
        assert np.array_equal(state, env.unwrapped.state)
        assert np.array_equal(obs, state.astype(np.float32))
    assert np.all(np.abs(states) <= 0.05)


def test_one_step_from_wide_states_is_gymnasiums_bit_for_bit() -> None:
    # Far from upright and fast, where every rounding of the equations shows (near rest, the +-10 N force
    # absorbs the small terms' last bits): 20,000 states through gymnasium's vector env, 300 through its single env.
    rng = np.random.default_rng(3)
    n = 20_000
    states = rng.uniform(-1.0, 1.0, (n, 4)) * [3.0, 5.0, math.pi, 20.0]
    actions = rng.integers(0, 2, n)
    batch = CartPoleBatch(states, 500)
    terminated = batch.step(actions).copy()
    vector = gymnasium.make_vec("CartPole-v1", num_envs=n, vectorization_mode="vector_entry_point")
    vector.reset(seed=0)
    vector.unwrapped.state = states.T.copy()
    obs, reward, gym_terminated, _, _ = vector.step(actions)
    assert np.array_equal(batch.state, vector.unwrapped.state.T)
    assert np.array_equal(batch.observations, obs.astype(np.float64))
    assert np.array_equal(terminated, gym_terminated) and 0 < terminated.sum() < n
    single = gymnasium.make("CartPole-v1").unwrapped
    for i in range(300):
        single.reset(seed=i)
        single.state = states[i].copy()
        obs_i, _, terminated_i, _, _ = single.step(int(actions[i]))
        assert np.array_equal(batch.state[i], single.state) and np.array_equal(batch.observations[i], obs_i.astype(np.float64))
        assert terminated[i] == terminated_i


def run_both(policy: str, seed: int, n: int, max_steps: int) -> tuple[np.ndarray, int]:
    """Step ``n`` episodes in one CartPoleBatch and in ``n`` gymnasium envs side by side, asserting equality
    of states, observations, rewards and flags at every step; return the episode lengths and the truncated count."""
    rng = np.random.default_rng(seed)
    seeds = [int(s) for s in rng.integers(0, 2**31 - 1, n)]
    envs = [gymnasium.make("CartPole-v1", max_episode_steps=max_steps) for _ in range(n)]
    gym_obs = np.array([env.reset(seed=s)[0] for env, s in zip(envs, seeds, strict=True)])
    batch = CartPoleBatch(gymnasium_reset_states(seeds), max_steps)
    assert np.array_equal(batch.observations, gym_obs.astype(np.float64))
    # A random linear policy per episode: push right when w . obs + b > 0 (some balance for the whole limit).
    weights = rng.normal(0.0, 1.0, (n, 4)) * [0.5, 1.0, 10.0, 3.0]
    biases = rng.normal(0.0, 0.1, n)
    lengths = np.zeros(n, dtype=int)
    truncations = 0
    live = np.ones(n, dtype=bool)
    while live.any():
        if policy == "random":
            actions = rng.integers(0, 2, n)
        else:
            actions = (np.einsum("ni,ni->n", batch.observations, weights) + biases > 0).astype(np.int64)
        terminated = batch.step(actions).copy()
        for i in np.flatnonzero(live):
            obs, reward, gym_terminated, gym_truncated, _ = envs[i].step(int(actions[i]))
            # The float64 state too, bit for bit (observations round it to float32, which could hide a difference).
            assert np.array_equal(batch.state[i], envs[i].unwrapped.state), (i, lengths[i])
            assert np.array_equal(batch.observations[i], obs.astype(np.float64)), (i, lengths[i])
            assert reward == cartpole.REWARD
            assert terminated[i] == gym_terminated
            assert (batch.truncated and not terminated[i]) == (gym_truncated and not gym_terminated)
            lengths[i] += 1
            if gym_terminated or gym_truncated:
                truncations += bool(gym_truncated)
                live[i] = False
                if not gym_terminated:
                    batch.retire(np.array([i]))  # the caller ends a truncated episode
        # A retired slot never reports termination again, and live matches ours.
        assert not np.any(terminated & ~np.isin(np.arange(n), np.flatnonzero(batch.live | terminated)))
        assert np.array_equal(batch.live, live)
    assert batch.elapsed == lengths.max()
    return lengths, truncations


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("policy", ["random", "linear"])
def test_fused_steps_match_gymnasium_step_by_step(policy: str, seed: int) -> None:
    lengths, truncations = run_both(policy, seed, n=200, max_steps=500)
    assert lengths.min() < 20  # episodes that fall quickly...
    if policy == "linear":
        assert truncations > 0 and lengths.max() == 500  # ...and some that balance to the limit
        assert len(np.unique(lengths)) > 20


def test_fused_steps_match_gymnasium_with_a_short_time_limit() -> None:
    lengths, truncations = run_both("linear", 5, n=100, max_steps=40)
    assert truncations > 10 and lengths.max() == 40 and lengths.min() < 40


def test_keep_narrows_the_batch_without_changing_the_episodes() -> None:
    states = gymnasium_reset_states(range(6))
    whole, narrowed = CartPoleBatch(states, 500), CartPoleBatch(states, 500)
    actions = np.array([0, 1, 1, 0, 1, 0])
    slots = np.array([1, 4, 5])
    for step in range(30):
        if step == 10:
            narrowed.keep(slots)
        a = actions if step < 10 else actions[slots]
        whole.step(actions)
        narrowed.step(a)
        mine = whole.observations if step < 10 else whole.observations[slots]
        assert np.array_equal(narrowed.observations, mine)
        assert np.array_equal(narrowed.live, whole.live if step < 10 else whole.live[slots])


def test_bad_initial_states_are_refused() -> None:
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        CartPoleBatch(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="max_steps = 0"):
        CartPoleBatch(np.zeros((3, 4)), 0)


def late_breaker(network: MLP) -> np.ndarray:
    """A 4-16-2 genome whose outputs overflow to +-inf a few steps into each episode (not at its first step).

    Output 0 is 16 x 2e307 x tanh(theta_dot): it pushes the pole the way it already falls, and once
    |theta_dot| passes about 0.63 the sum overflows.
    """
    W1, W2 = np.zeros((4, 16)), np.zeros((16, 2))
    W1[3] = 1.0
    W2[:, 0] = 2e307
    return np.concatenate([W1.ravel(), np.zeros(16), W2.ravel(), np.zeros(2)])


def mixed_population(network, n: int, seed: int) -> np.ndarray:
    """Random genomes (short episodes), noisy balancers (long ones), a NaN genome (row 3) and, for the
    4-16-2 MLP, one that breaks mid-episode (row 5)."""
    rng = np.random.default_rng(seed)
    genomes = network.init_params(rng, n)
    if isinstance(network, MLP) and network.layer_sizes[0] == 4:
        good = np.zeros(network.n_params)
        hidden = network.shapes[0][1]
        good[[0, hidden, 2 * hidden, 3 * hidden]] = [0.01, 0.1, 1.0, 0.5]
        good[network.offsets[1] + 1] = 1.0
        genomes[::4] = good + rng.normal(0.0, 0.1, size=(len(genomes[::4]), network.n_params))
        if network.layer_sizes == (4, 16, 2):
            genomes[5] = late_breaker(network)
    genomes[3, 2] = np.nan
    return genomes


@pytest.mark.parametrize(
    ("env_id", "episodes", "max_steps", "compaction"),
    [
        ("CartPole-v1", 1, None, True),
        ("CartPole-v1", 3, None, True),
        ("CartPole-v1", 2, 60, False),
        ("CartPole-v1", 2, 1000, True),
        ("CartPole-v0", 2, None, True),
    ],
)
def test_task_fitness_is_the_gymnasium_paths(env_id: str, episodes: int, max_steps: int | None, compaction: bool) -> None:
    genomes = mixed_population(NET, 48, seed=episodes)
    seeds = individual_seeds(3, 1, 48)
    fused = ControlTask(env_id, episodes=episodes, max_steps=max_steps, compaction=compaction)
    vector = ControlTask(env_id, episodes=episodes, max_steps=max_steps, compaction=compaction, fused=False)
    assert fused.fused_env is CartPoleBatch and vector.fused_env is None
    assert fused.describe()["fused"] and not vector.describe()["fused"]
    ours, theirs = fused.episode_returns(NET, genomes, seeds, episodes), vector.episode_returns(NET, genomes, seeds, episodes)
    assert np.isnan(ours[[3, 5]]).all() and np.isfinite(np.delete(ours, [3, 5], axis=0)).all()
    assert np.nanmin(ours) < 20 and np.nanmax(ours) == fused.max_steps
    assert np.array_equal(ours, theirs, equal_nan=True)
    assert np.array_equal(fused.evaluate(NET, genomes, seeds, 0), vector.evaluate(NET, genomes, seeds, 0), equal_nan=True)
    # Any chunking of the population gives the same fitness.
    halves = np.concatenate([fused.evaluate(NET, genomes[:17], seeds[:17], 0), fused.evaluate(NET, genomes[17:], seeds[17:], 0)])
    assert np.array_equal(halves, fused.evaluate(NET, genomes, seeds, 0), equal_nan=True)


@pytest.mark.parametrize("network", ["mlp", "lstm", "neat"])
def test_task_fitness_is_the_gymnasium_paths_with_masks_and_memory(network: str) -> None:
    config = {
        "name": "fused-test",
        "network": {"type": "mlp", "hidden": [8]},
        "task": {"type": "control", "env_id": "CartPole-v1", "episodes": 3, "observe": [0, 2]},
        "strategy": {"type": "cmaes", "population": 8},
    }
    if network == "lstm":
        config["network"] = {"type": "rnn", "cell": "lstm", "hidden": [4]}
    elif network == "neat":
        config["network"] = {"type": "neat", "max_nodes": 16, "max_connections": 32}
        config["strategy"] = {"type": "neat", "population": 8}
        config["task"].pop("observe")
    parsed = parse_config(config)
    task = build_task(parsed)
    net = build_network(parsed, task)
    assert isinstance(task, ControlTask) and task.fused_env is CartPoleBatch
    if network == "lstm":
        assert isinstance(net, RNN)
    rng = np.random.default_rng(4)
    genomes = net.init_params(rng, 24)
    if network != "neat":
        genomes *= rng.uniform(0.5, 4.0, (24, 1))  # a spread of behaviours
    seeds = mix(11, np.arange(24, dtype=np.uint64))
    vector = ControlTask("CartPole-v1", episodes=3, observe=task.observe, fused=False)
    ours, theirs = task.episode_returns(net, genomes, seeds, 3), vector.episode_returns(net, genomes, seeds, 3)
    assert len(np.unique(ours)) > 3
    assert np.array_equal(ours, theirs, equal_nan=True)


def test_env_kwargs_or_a_foreign_id_keep_gymnasium() -> None:
    assert ControlTask("CartPole-v1", env_kwargs={"sutton_barto_reward": True}).fused_env is None
    assert ControlTask("CartPole-v1", fused=False).fused_env is None
    assert ControlTask("Acrobot-v1").fused_env is None
    assert ControlTask("CartPole-v1").fused_env is CartPoleBatch


def test_a_long_time_limit_stays_finite_and_exact() -> None:
    # One balancer for 3000 steps beside episodes that fell at once: their retired slots are stepped all along.
    genomes = mixed_population(NET, 8, seed=2)
    genomes[3] = genomes[5] = genomes[0]  # no broken genome here
    seeds = np.arange(8, dtype=np.uint64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or invalid-value warning
        ours = ControlTask("CartPole-v1", episodes=2, max_steps=3000).episode_returns(NET, genomes, seeds, 2)
    theirs = ControlTask("CartPole-v1", episodes=2, max_steps=3000, fused=False).episode_returns(NET, genomes, seeds, 2)
    assert ours.max() == 3000 and ours.min() < 50
    assert np.array_equal(ours, theirs)
    assert all(math.isfinite(v) for v in ours.reshape(-1))
