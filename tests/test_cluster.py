"""A 2-node Ray cluster on loopback gives the serial results, and survives losing a node."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import ray
from ray.cluster_utils import Cluster

from evo import parse_config, run_evolution
from evo.evaluators import RayEvaluator, SerialEvaluator
from evo.tasks.boolean import ParityTask
from networks import MLP
from tests.helpers import CARTPOLE, metrics_without_time

# Workers cannot import this test module: ship its classes by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class SlowParity(ParityTask):
    """XOR whose every chunk takes a while, so a node can be lost while it works.

    Each attempt at a chunk leaves a file (named by the chunk's first seed, the process and the node) before it
    sleeps, so the test can count the attempts: a lost chunk shows up twice, on two nodes.
    """

    attempts_dir = ""

    def evaluate(self, network, genomes, seeds, generation_seed):
        if self.attempts_dir:
            node = ray.get_runtime_context().get_node_id()
            (Path(self.attempts_dir) / f"{int(seeds[0])}-{os.getpid()}-{node}").touch()
        time.sleep(2.0)
        return super().evaluate(network, genomes, seeds, generation_seed)


def _attempts(folder: Path) -> dict[str, list[tuple[str, str]]]:
    """Chunk (first seed) -> the (pid, node id) of every attempt at it."""
    out: dict[str, list[tuple[str, str]]] = {}
    for f in folder.iterdir():
        chunk, pid, node = f.name.split("-", 2)
        out.setdefault(chunk, []).append((pid, node))
    return out


def _lose_a_node_mid_generation(cluster, worker, ray_dir: Path, mode: str) -> None:
    task, net = SlowParity(2), MLP((2, 4, 1), "tanh", "sigmoid")
    genomes = net.init_params(np.random.default_rng(0), 8)
    ray_dir.mkdir()
    expected = SerialEvaluator(run_seed=0).evaluate(task, net, genomes, generation=1).fitness
    task.attempts_dir = str(ray_dir)
    evaluator = RayEvaluator(run_seed=0, workers=2, address=cluster.address, chunk_size=4, max_retries=3, mode=mode)
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(result=evaluator.evaluate(task, net, genomes, generation=1)))
    thread.start()
    deadline = time.monotonic() + 60
    while len(list(ray_dir.iterdir())) < 2 and time.monotonic() < deadline:  # both chunks are running
        time.sleep(0.05)
    assert len(_attempts(ray_dir)) == 2, f"{mode}: the two chunks never ran at the same time"
    cluster.remove_node(worker)
    thread.join(timeout=120)
    assert not thread.is_alive()
    np.testing.assert_array_equal(outcome["result"].fitness, expected)
    assert outcome["result"].failures == 0
    # The chunk on the lost node ran twice (once per node), the other once: a retry, not just equal results.
    attempts = _attempts(ray_dir)
    assert sorted(len(a) for a in attempts.values()) == [1, 2], (mode, attempts)
    (retried,) = [a for a in attempts.values() if len(a) == 2]
    (kept,) = [a for a in attempts.values() if len(a) == 1]
    assert worker.node_id in {node for _, node in retried}  # it first ran on the lost node...
    assert retried[0][1] != retried[1][1]  # ...and again on a surviving one
    assert kept[0][1] != worker.node_id  # the chunk that ran once was never on the lost node
    evaluator.close()


def test_two_node_cluster_matches_serial_and_survives_losing_a_node(tmp_path):
    if ray.is_initialized():
        ray.shutdown()  # the cluster needs its own driver connection
    reference = run_evolution(parse_config(CARTPOLE), run_dir=tmp_path / "serial")
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": 80 * 1024 * 1024, "include_dashboard": False},
    )
    try:
        worker = cluster.add_node(num_cpus=1, object_store_memory=80 * 1024 * 1024)
        cluster.wait_for_nodes()
        config = parse_config({**CARTPOLE, "evaluator": {"type": "ray", "workers": 2, "address": cluster.address, "chunk_size": 3}})
        result = run_evolution(config, run_dir=tmp_path / "cluster")
        assert result.summary["evaluator"]["nodes"] == 2
        assert metrics_without_time(result.run_dir) == metrics_without_time(reference.run_dir)

        # Lose the worker node while both chunks of a generation are running: the lost chunk is retried on the head
        # (tasks: Ray retries the task; actors: Ray restarts the lost actor on the head and retries its call).
        for mode in ("tasks", "actors"):
            if mode != "tasks":
                worker = cluster.add_node(num_cpus=1, object_store_memory=80 * 1024 * 1024)
                cluster.wait_for_nodes()
            _lose_a_node_mid_generation(cluster, worker, tmp_path / f"attempts-{mode}", mode)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
