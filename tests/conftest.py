"""Shared fixtures: one loopback-only local Ray instance per test session."""

from __future__ import annotations

import os

import pytest

# Every Ray process binds to 127.0.0.1: no traffic to any other address.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.fixture()
def ray_local():
    """A 2-CPU local Ray instance, started once and shared (ray.init costs seconds)."""
    import ray

    if not ray.is_initialized():
        from evo.evaluators import start_local_ray

        start_local_ray(num_cpus=2, object_store_mb=100)
    yield ray


def pytest_sessionfinish(session, exitstatus):
    """Shut Ray down at the end so no Ray process outlives the tests."""
    try:
        import ray

        if ray.is_initialized():
            ray.shutdown()
    except ImportError:
        pass
