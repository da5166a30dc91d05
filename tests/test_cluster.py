"""A 2-node Ray cluster on loopback gives the serial results, and survives losing a node."""

from __future__ import annotations

import sys
import threading
import time

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
    """XOR whose every chunk takes a while, so a node can be lost while it works."""

    def evaluate(self, network, genomes, seeds, generation_seed):
        time.sleep(2.0)
        return super().evaluate(network, genomes, seeds, generation_seed)


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

        # Lose the worker node while both chunks of a generation are running: the lost chunk is retried on the head.
        task, net = SlowParity(2), MLP((2, 4, 1), "tanh", "sigmoid")
        genomes = net.init_params(np.random.default_rng(0), 8)
        expected = SerialEvaluator(run_seed=0).evaluate(task, net, genomes, generation=1).fitness
        evaluator = RayEvaluator(run_seed=0, workers=2, address=cluster.address, chunk_size=4, max_retries=3)
        outcome = {}
        thread = threading.Thread(target=lambda: outcome.update(result=evaluator.evaluate(task, net, genomes, generation=1)))
        thread.start()
        time.sleep(1.0)
        cluster.remove_node(worker)
        thread.join(timeout=120)
        assert not thread.is_alive()
        np.testing.assert_array_equal(outcome["result"].fitness, expected)
        assert outcome["result"].failures == 0
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
