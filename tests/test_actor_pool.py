"""The warm Ray actor pool: serial fitness for any chunk size, the payload kept across generations, lost actors survived,
and environments reused across generations giving the numbers of fresh ones."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import ray

from evo import parse_config, run_evolution
from evo.evaluators import RayEvaluator, SerialEvaluator
from evo.tasks import control_envs
from evo.tasks.boolean import ParityTask
from evo.tasks.control import ControlTask
from networks import MLP
from tests.helpers import CARTPOLE, metrics_without_time

# Workers cannot import this test module: ship its classes by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

LUNAR_NET = MLP((8, 6, 4), "tanh", "identity")
CARTPOLE_NET = MLP((4, 5, 2), "tanh", "identity")


class SlowParity(ParityTask):
    """XOR whose chunks take a while and leave a file per attempt (first seed and process id), so an actor can be
    killed while it works and the attempts counted afterwards."""

    attempts_dir = ""

    def evaluate(self, network, genomes, seeds, generation_seed):
        if self.attempts_dir:
            (Path(self.attempts_dir) / f"{int(seeds[0])}-{os.getpid()}").touch()
            time.sleep(1.5)
        return super().evaluate(network, genomes, seeds, generation_seed)


def _attempts(folder: Path) -> dict[str, list[str]]:
    """Chunk (first seed) -> the process id of every attempt at it."""
    out: dict[str, list[str]] = {}
    for f in folder.iterdir():
        chunk, pid = f.name.split("-")
        out.setdefault(chunk, []).append(pid)
    return out


@pytest.mark.parametrize("env_id", ["CartPole-v1", "LunarLander-v3"])
def test_the_pool_gives_serial_fitness_for_any_chunk_size_and_keeps_its_payload(ray_local, env_id):
    task = ControlTask(env_id, episodes=2, max_steps=120)
    net = CARTPOLE_NET if env_id == "CartPole-v1" else LUNAR_NET
    genomes = net.init_params(np.random.default_rng(1), 12)
    serial = SerialEvaluator(run_seed=4)
    expected = {g: serial.evaluate(task, net, genomes, generation=g).fitness for g in (1, 2, 3)}
    for chunk in (1, 5, "auto"):
        pool = RayEvaluator(run_seed=4, workers=2, chunk_size=chunk)
        try:
            for g in (1, 2, 3):
                np.testing.assert_array_equal(pool.evaluate(task, net, genomes, generation=g).fitness, expected[g], err_msg=str((chunk, g)))
            info = pool.actor_info()
            # Each actor fetched and deserialised the task once, then reused it (and its envs) for every later chunk.
            assert len(info) == 2 and len({i["pid"] for i in info}) == 2
            assert all(i["loads"] == 1 for i in info), info
            assert sum(i["chunks"] for i in info) == pool.tasks_submitted
        finally:
            pool.close()


def test_a_new_task_or_network_reaches_the_warm_actors(ray_local):
    net = MLP((2, 4, 1), "tanh", "sigmoid")
    genomes = net.init_params(np.random.default_rng(0), 6)
    pool = RayEvaluator(run_seed=0, workers=2, chunk_size=3)
    try:
        for bits in (2, 3):  # parity of 2 then 3 bits: a different task object, and a different network
            task, network = ParityTask(bits), MLP((bits, 4, 1), "tanh", "sigmoid")
            g = network.init_params(np.random.default_rng(0), 6)
            expected = SerialEvaluator(run_seed=0).evaluate(task, network, g, generation=1).fitness
            np.testing.assert_array_equal(pool.evaluate(task, network, g, generation=1).fitness, expected)
            np.testing.assert_array_equal(pool.evaluate(task, network, g, generation=1).fitness, expected)
        assert pool.payload_version == 2
        # Once per payload an actor worked on, not once per chunk (8 chunks in all); on a busy machine one actor may take them all.
        info = pool.actor_info()
        assert all(i["loads"] <= 2 for i in info) and max(i["loads"] for i in info) == 2
        assert all(i["version"] == 2 for i in info if i["loads"])
        del genomes
    finally:
        pool.close()


@pytest.mark.parametrize("restart", [True, False])
def test_an_actor_killed_mid_generation_is_survived_with_identical_fitness(ray_local, tmp_path, restart):
    """Killed with a restart allowed, Ray restarts the actor and retries its chunk; killed for good, the pool replaces it."""
    task, net = SlowParity(2), MLP((2, 4, 1), "tanh", "sigmoid")
    genomes = net.init_params(np.random.default_rng(0), 8)
    expected = SerialEvaluator(run_seed=0).evaluate(task, net, genomes, generation=1).fitness
    pool = RayEvaluator(run_seed=0, workers=2, chunk_size=4, max_retries=2)
    try:
        attempts_dir = tmp_path / "attempts"
        attempts_dir.mkdir()
        task.attempts_dir = str(attempts_dir)  # before the first evaluate: the actors keep the task they were sent
        pool.evaluate(task, net, genomes, generation=0)  # start the actors
        victim, survivor = pool._actors
        victim_pid = ray.get(victim.info.remote())["pid"]
        for f in attempts_dir.iterdir():
            f.unlink()
        outcome = {}
        thread = threading.Thread(target=lambda: outcome.update(result=pool.evaluate(task, net, genomes, generation=1)))
        thread.start()
        deadline = time.monotonic() + 60
        while len(list(attempts_dir.iterdir())) < 2 and time.monotonic() < deadline:  # both chunks are running
            time.sleep(0.02)
        assert len(_attempts(attempts_dir)) == 2, "the two chunks never ran at the same time"
        ray.kill(victim, no_restart=not restart)
        thread.join(timeout=120)
        assert not thread.is_alive()
        np.testing.assert_array_equal(outcome["result"].fitness, expected)
        assert outcome["result"].failures == 0
        # The victim's chunk ran twice, in two processes; the other once.
        attempts = _attempts(attempts_dir)
        assert sorted(len(a) for a in attempts.values()) == [1, 2], attempts
        (retried,) = [a for a in attempts.values() if len(a) == 2]
        assert str(victim_pid) in retried and len(set(retried)) == 2
        assert pool.chunks_resubmitted == (0 if restart else 1)  # Ray's own retry, or the pool's
        assert (pool._actors[0] is victim) == restart
        # The restarted or new actor fetched the payload afresh; the survivor still holds its first copy.
        info = pool.actor_info()
        assert info[0]["loads"] == 1 and info[0]["pid"] != victim_pid
        assert info[1]["loads"] == 1 and pool._actors[1] is survivor
    finally:
        pool.close()


def test_actor_and_task_modes_match_serial_in_a_whole_run(tmp_path, ray_local):
    reference = run_evolution(parse_config(CARTPOLE), run_dir=tmp_path / "serial")
    for mode in ("actors", "tasks"):
        config = parse_config({**CARTPOLE, "evaluator": {"type": "ray", "workers": 2, "chunk_size": 5, "mode": mode}})
        result = run_evolution(config, run_dir=tmp_path / mode)
        assert result.summary["evaluator"]["mode"] == mode
        assert metrics_without_time(result.run_dir) == metrics_without_time(reference.run_dir), mode


def test_bad_mode_is_a_config_error():
    from evo import ConfigError

    with pytest.raises(ConfigError, match=r"evaluator.mode"):
        parse_config({**CARTPOLE, "evaluator": {"type": "ray", "mode": "threads"}})
    with pytest.raises(ValueError, match="mode = 'threads'"):
        RayEvaluator(run_seed=0, mode="threads")


# ------------------------------------------------------ environments reused
@pytest.mark.parametrize("env_id", ["CartPole-v1", "LunarLander-v3"])
def test_reused_environments_give_the_returns_of_fresh_ones(env_id):
    """An env is reset with each episode's seed, so one that already ran other episodes (a warm actor's, generation
    after generation) gives exactly the returns of one just made."""
    net = CARTPOLE_NET if env_id == "CartPole-v1" else LUNAR_NET
    task = ControlTask(env_id, episodes=2, max_steps=150, fused=False)  # gymnasium's envs (CartPole's fused step keeps none)
    genomes = net.init_params(np.random.default_rng(2), 10)
    seeds = np.arange(10, dtype=np.uint64) * 7 + 1

    task.close()  # no cached env of this configuration: everything is made now
    fresh = task.episode_returns(net, genomes, seeds, 2)
    key = control_envs._cache_key(task.env_id, task.max_steps, task.env_kwargs)
    made = (control_envs._single_envs.get(key, []), [k for k in control_envs._vector_envs if k[:3] == key])
    assert made[0] or made[1]
    # Other genomes and seeds in between, as other generations and chunks would leave the envs.
    for other in range(3):
        task.episode_returns(net, net.init_params(np.random.default_rng(10 + other), 7), seeds[:7] + 100 + other, 2)
    reused = task.episode_returns(net, genomes, seeds, 2)
    np.testing.assert_array_equal(reused, fresh)
    # And the envs really were the cached ones, not new ones.
    if made[0]:
        assert all(a is b for a, b in zip(made[0], control_envs._single_envs[key]))
    task.close()
