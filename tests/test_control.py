"""Control task on real gymnasium environments (no mocks)."""

from __future__ import annotations

import json
import pickle

import gymnasium
import numpy as np
import pytest

from evo.seeding import mix, to_int32_seed
from evo.tasks.control import ControlTask, episode_keys, vector_initial_states
from networks.mlp import MLP

CARTPOLE_NET = MLP((4, 16, 2), activation="tanh", output_activation="identity")


def random_genomes(network: MLP, n: int, seed: int = 0) -> np.ndarray:
    """Random genomes; CartPole returns from these range from ~8 to 500."""
    return network.init_params(np.random.default_rng(seed), n)


def linear_controller() -> tuple[MLP, np.ndarray]:
    """A 4-2 MLP that pushes right when 0.01 x + 0.1 x_dot + theta + 0.5 theta_dot > 0."""
    network = MLP((4, 2), output_activation="identity")
    genome = np.zeros(network.n_params)
    # W is (4 x 2) row-major: column 1 (push right) sits at flat indices 1, 3, 5, 7; column 0 stays 0.
    genome[[1, 3, 5, 7]] = [0.01, 0.1, 1.0, 0.5]
    return network, genome


@pytest.fixture(scope="module")
def cartpole() -> ControlTask:
    return ControlTask("CartPole-v1", episodes=3)


def test_cartpole_spec(cartpole: ControlTask) -> None:
    assert (cartpole.n_inputs, cartpole.n_outputs) == (4, 2)
    assert cartpole.output_activation == "identity"
    assert cartpole.kind == "control" and cartpole.name == "CartPole-v1"
    assert cartpole.max_steps == 500 and cartpole.vectorized
    assert cartpole.samples_per_evaluation() == 3
    description = cartpole.describe()
    json.dumps(description)
    assert description["env_id"] == "CartPole-v1" and description["action"] == "discrete"


def test_cartpole_fitness_shape_and_range(cartpole: ControlTask) -> None:
    genomes = random_genomes(CARTPOLE_NET, 20)
    fitness = cartpole.evaluate(CARTPOLE_NET, genomes, np.arange(20, dtype=np.uint64), 0)
    assert fitness.shape == (20,)
    assert np.all(fitness >= 1) and np.all(fitness <= 500)
    assert len(np.unique(fitness)) > 1


def test_chunking_does_not_change_fitness(cartpole: ControlTask) -> None:
    genomes = random_genomes(CARTPOLE_NET, 12, seed=3)
    seeds = mix(42, np.arange(12, dtype=np.uint64))
    whole = cartpole.evaluate(CARTPOLE_NET, genomes, seeds, 0)
    chunked = np.concatenate(
        [
            cartpole.evaluate(CARTPOLE_NET, genomes[:5], seeds[:5], 0),
            cartpole.evaluate(CARTPOLE_NET, genomes[5:], seeds[5:], 0),
        ]
    )
    assert np.array_equal(whole, chunked)
    # One at a time too, in reverse order: still the same numbers.
    single = [cartpole.evaluate(CARTPOLE_NET, genomes[i : i + 1], seeds[i : i + 1], 0)[0] for i in reversed(range(12))]
    assert np.array_equal(whole, np.array(single[::-1]))


def test_same_seeds_same_fitness_different_seeds_differ(cartpole: ControlTask) -> None:
    genomes = random_genomes(CARTPOLE_NET, 12, seed=5)
    seeds = np.arange(12, dtype=np.uint64)
    first = cartpole.evaluate(CARTPOLE_NET, genomes, seeds, 0)
    again = cartpole.evaluate(CARTPOLE_NET, genomes, seeds.copy(), 123)
    other = cartpole.evaluate(CARTPOLE_NET, genomes, seeds + 1000, 0)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_good_controller_balances_and_zero_genome_does_not() -> None:
    task = ControlTask("CartPole-v1", episodes=10, test_episodes=100)
    network, genome = linear_controller()
    genomes = np.stack([genome, np.zeros_like(genome)])
    fitness = task.evaluate(network, genomes, np.array([1, 2], dtype=np.uint64), 0)
    assert fitness[0] >= 475
    assert fitness[1] < 50  # always pushing left drops the pole within a few dozen steps
    figures = task.test(network, genome, seed=987654321)
    assert figures["test_episodes"] == 100
    assert figures["test_mean_return"] >= 475
    assert figures["test_std_return"] >= 0


def single_env_return(network: MLP, genome: np.ndarray, initial_state: np.ndarray, max_steps: int) -> float:
    """Reference rollout in one plain CartPole env started from ``initial_state``, one predict per step."""
    env = gymnasium.make("CartPole-v1", max_episode_steps=max_steps)
    env.reset(seed=0)
    env.unwrapped.state = np.array(initial_state, dtype=np.float64)
    obs = np.array(initial_state, dtype=np.float32)
    total, done = 0.0, False
    while not done:
        action = int(np.argmax(network.predict(genome, obs[None].astype(np.float64))[0]))
        obs, reward, terminated, truncated, _ = env.step(action)
        total += reward
        done = terminated or truncated
    env.close()
    return total


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("max_steps", [60, 500])
def test_vector_path_matches_single_env_and_skips_autoreset_step(max_steps: int, fused: bool) -> None:
    # Mixed lengths: episodes end on their own, at the limit, and at different steps,
    # so the NEXT_STEP autoreset step after each end is exercised (gymnasium's vector env; the fused one retires them).
    task = ControlTask("CartPole-v1", max_steps=max_steps, fused=fused)
    assert (task.fused_env is not None) == fused
    _, good = linear_controller()
    network = MLP((4, 2), output_activation="identity")
    genomes = np.vstack([random_genomes(network, 5, seed=11), good[None]])
    seeds = np.arange(6, dtype=np.uint64) + 77
    episodes = 2
    returns = task.episode_returns(network, genomes, seeds, episodes)
    assert returns.shape == (6, episodes)
    assert np.all(returns <= max_steps)
    assert np.all(returns[-1] == max_steps)

    states = vector_initial_states("CartPole-v1", episode_keys(seeds, episodes)).reshape(6, episodes, 4)
    assert np.all(np.abs(states) <= 0.05)
    expected = np.array([[single_env_return(network, genomes[i], states[i, e], max_steps) for e in range(episodes)] for i in range(6)])
    assert np.array_equal(returns, expected)


def test_task_pickles_for_ray_workers(cartpole: ControlTask) -> None:
    # Ray ships the task to workers by pickle: no env may ride along, and scores must not change.
    genomes = random_genomes(CARTPOLE_NET, 4)
    copy = pickle.loads(pickle.dumps(cartpole))
    seeds = np.arange(4)
    assert np.array_equal(copy.evaluate(CARTPOLE_NET, genomes, seeds, 0), cartpole.evaluate(CARTPOLE_NET, genomes, seeds, 0))


def test_max_steps_overrides_time_limit() -> None:
    network, genome = linear_controller()
    task = ControlTask("CartPole-v1", episodes=2, max_steps=600)
    assert task.evaluate(network, genome[None], np.array([3]), 0)[0] == 600


def test_nan_genome_gets_nan_fitness_not_a_crash(cartpole: ControlTask) -> None:
    genomes = random_genomes(CARTPOLE_NET, 3)
    genomes[1, 0] = np.nan
    fitness = cartpole.evaluate(CARTPOLE_NET, genomes, np.arange(3), 0)
    assert np.isnan(fitness[1]) and np.all(np.isfinite(fitness[[0, 2]]))


def test_pendulum_box_actions_generic_path() -> None:
    task = ControlTask("Pendulum-v1", episodes=2, max_steps=50)
    assert not task.vectorized
    assert (task.n_inputs, task.n_outputs, task.output_activation) == (3, 1, "tanh")
    assert task.describe()["action"] == "box"
    network = MLP((3, 8, 1), output_activation="tanh")
    genomes = random_genomes(network, 6, seed=2)
    genomes[4] *= 1e6  # saturated tanh: actions pinned at the limits, still finite
    genomes[5, 3] = np.nan
    seeds = np.arange(6, dtype=np.uint64)
    fitness = task.evaluate(network, genomes, seeds, 0)
    assert fitness.shape == (6,)
    assert np.all(np.isfinite(fitness[:5])) and np.all(fitness[:5] <= 0)
    assert np.isnan(fitness[5])
    # Chunking and repetition give the same numbers on the generic path too.
    chunked = np.concatenate([task.evaluate(network, genomes[:2], seeds[:2], 0), task.evaluate(network, genomes[2:], seeds[2:], 0)])
    assert np.array_equal(fitness, chunked, equal_nan=True)
    assert not np.array_equal(fitness[:5], task.evaluate(network, genomes, seeds + 50, 0)[:5])


def reference_returns(env_id: str, network: MLP, genome: np.ndarray, seed: int, episodes: int, max_steps: int) -> list[float]:
    """One gymnasium env, one episode after the other: reset with the episode's seed, act by the argmax, sum rewards."""
    env = gymnasium.make(env_id, max_episode_steps=max_steps)
    returns = []
    for e in range(episodes):
        obs, _ = env.reset(seed=to_int32_seed(mix(seed, e)))  # episode e of an individual: key mix(seed, e)
        total = 0.0
        for _ in range(max_steps):
            action = int(np.argmax(network.predict(genome, np.asarray(obs, dtype=np.float64)[None])[0]))
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        returns.append(total)
    env.close()
    return returns


def test_lunar_lander_generic_path() -> None:
    task = ControlTask("LunarLander-v3", episodes=2, max_steps=120, test_episodes=3)
    assert (task.n_inputs, task.n_outputs, task.action_kind) == (8, 4, "discrete")
    network = MLP((8, 8, 4), output_activation="identity")
    genomes = random_genomes(network, 3, seed=4)
    fitness = task.evaluate(network, genomes, np.arange(3), 0)
    assert fitness.shape == (3,)
    # The batched, compacted rollout gives each genome the mean return of its own plain episodes.
    expected = [np.mean(reference_returns("LunarLander-v3", network, genomes[i], i, 2, 120)) for i in range(3)]
    np.testing.assert_allclose(fitness, expected, rtol=1e-9)
    assert len(set(fitness.tolist())) == 3  # three genomes, three different scores
    figures = task.test(network, genomes[0], seed=5)
    test_returns = reference_returns("LunarLander-v3", network, genomes[0], 5, 3, 120)
    assert figures["test_episodes"] == 3
    np.testing.assert_allclose(figures["test_mean_return"], np.mean(test_returns), rtol=1e-9)
    np.testing.assert_allclose(figures["test_std_return"], np.std(test_returns), rtol=1e-9, atol=1e-9)


def test_unknown_env_id_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"'Foo-v0' is not registered.*registry"):
        ControlTask("Foo-v0")


def test_discrete_observation_space_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"'FrozenLake-v1'.*Discrete.*Box"):
        ControlTask("FrozenLake-v1")


def test_bad_episode_counts_are_rejected() -> None:
    with pytest.raises(ValueError, match="episodes"):
        ControlTask("CartPole-v1", episodes=0)
    with pytest.raises(ValueError, match="max_steps"):
        ControlTask("CartPole-v1", max_steps=0)


class ForwardOnly:
    """A network that is not an MLP to the task: only ``forward`` (the generic policy path)."""

    def __init__(self, network: MLP) -> None:
        self.network = network
        self.n_params = network.n_params

    def forward(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        return self.network.forward(params, x)


def mixed_population(network: MLP, n: int, seed: int) -> np.ndarray:
    """Random genomes (mostly short episodes), noisy balancers (long ones) and one NaN genome."""
    rng = np.random.default_rng(seed)
    genomes = random_genomes(network, n, seed)
    good = np.zeros(network.n_params)
    hidden = network.shapes[0][1]
    good[[0, hidden, 2 * hidden, 3 * hidden]] = [0.01, 0.1, 1.0, 0.5]
    good[network.offsets[1] + 1] = 1.0
    genomes[::4] = good + rng.normal(0.0, 0.1, size=(len(genomes[::4]), network.n_params))
    genomes[3, 5] = np.nan
    return genomes


@pytest.mark.parametrize("episodes", [1, 3])
def test_compaction_gives_the_same_returns_as_the_fixed_shape_batch(episodes: int) -> None:
    # 40 individuals with lengths from ~8 to 500 steps: the batch narrows several times.
    genomes = mixed_population(CARTPOLE_NET, 40, seed=8)
    seeds = mix(7, np.arange(40, dtype=np.uint64))
    compacted = ControlTask("CartPole-v1").episode_returns(CARTPOLE_NET, genomes, seeds, episodes)
    fixed = ControlTask("CartPole-v1", compaction=False).episode_returns(CARTPOLE_NET, genomes, seeds, episodes)
    assert np.isnan(compacted[3]).all()
    assert np.nanmin(compacted) < 20 and np.nanmax(compacted) == 500
    assert np.array_equal(compacted, fixed, equal_nan=True)
    # The network's own forward (not the task's cached MLP layers) gives the same numbers too.
    generic = ControlTask("CartPole-v1").episode_returns(ForwardOnly(CARTPOLE_NET), genomes, seeds, episodes)
    assert np.array_equal(compacted, generic, equal_nan=True)


def test_compaction_narrows_the_vector_env_and_keeps_it_consistent() -> None:
    task = ControlTask("CartPole-v1", episodes=2, max_steps=300, fused=False)
    genomes = mixed_population(CARTPOLE_NET, 32, seed=9)
    task.close()  # start from an empty cache for this configuration
    task.evaluate(CARTPOLE_NET, genomes, np.arange(32), 0)
    from evo.tasks import control_envs

    prefix = control_envs._cache_key("CartPole-v1", 300, {})
    sizes = sorted(key[3] for key in control_envs._vector_envs if key[:3] == prefix)
    assert sizes[-1] == 64 and len(sizes) > 2  # the full batch, then ladder sizes (rows x 2 episodes)
    for key in (k for k in control_envs._vector_envs if k[:3] == prefix):
        core = control_envs._vector_envs[key].unwrapped
        n = key[3]
        assert core.num_envs == n and core.action_space.shape == (n,)
        assert core.state.shape == (4, n) and core.steps.shape == (n,) and core.prev_done.shape == (n,)
    task.close()


def test_compaction_on_the_generic_path_gives_the_same_returns() -> None:
    # LunarLander episodes end at different steps (crashes), so the batch narrows.
    network = MLP((8, 8, 4), output_activation="identity")
    genomes = random_genomes(network, 8, seed=6)
    genomes[2, 1] = np.nan
    seeds = np.arange(8, dtype=np.uint64) + 5
    on = ControlTask("LunarLander-v3", max_steps=200).episode_returns(network, genomes, seeds, 2)
    off = ControlTask("LunarLander-v3", max_steps=200, compaction=False).episode_returns(network, genomes, seeds, 2)
    assert np.isnan(on[2]).all() and np.all(np.isfinite(np.delete(on, 2, axis=0)))
    assert np.array_equal(on, off, equal_nan=True)


def test_validate_scores_fresh_seeded_episodes() -> None:
    network, genome = linear_controller()
    task = ControlTask("CartPole-v1", episodes=2, test_episodes=5)
    assert task.val_episodes == 20 and task.describe()["val_episodes"] == 20
    figures = task.validate(network, genome, seed=31)
    assert set(figures) == {"val_score", "val_mean_return", "val_episodes"}
    assert figures["val_episodes"] == 20
    assert figures["val_score"] == figures["val_mean_return"] >= 475
    json.dumps(figures)
    # The validation episodes are the genome's episodes under that seed, nothing else.
    expected = task.episode_returns(network, genome[None], np.array([31]), 20)[0].mean()
    assert figures["val_mean_return"] == expected
    assert task.validate(network, genome, seed=31) == figures

    weak = genome.copy()
    weak[[1, 3]] = [0.5, 0.0]  # mostly reacts to the cart position: falls, at seed-dependent times
    small = ControlTask("CartPole-v1", val_episodes=3)
    a, b = small.validate(network, weak, seed=1), small.validate(network, weak, seed=2)
    assert a["val_episodes"] == 3 and a["val_mean_return"] != b["val_mean_return"]

    broken = genome.copy()
    broken[0] = np.nan
    figures = small.validate(network, broken, seed=1)
    assert figures["val_score"] == -np.inf and np.isnan(figures["val_mean_return"])
    with pytest.raises(ValueError, match="val_episodes"):
        ControlTask("CartPole-v1", val_episodes=0)
