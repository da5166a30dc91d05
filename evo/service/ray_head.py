"""The service's own Ray instance: loopback only, no dashboard, outliving a service crash.

``python -m evo.service.ray_head`` starts a Ray head with ``ray.init`` (free
ports, every process bound to 127.0.0.1), writes its address to
``<home>/ray/head.json`` and waits; every Ray process it starts shares its
session, so stopping the instance is signalling one process group. Drivers
(the run workers) join with the address and the instance's own auth token
(``<home>/ray/token``, mode 0600): Ray 2.5x turns token authentication on
for a new local cluster, and the token is the service's, not the user's
``~/.ray``.

A restarted service adopts the head its predecessor left running, so the
workers that were running on it carry on.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from evo.service.processes import is_ours, python_env, spawn_python, terminate_group
from evo.service.settings import write_secret

_MODULE = "evo.service.ray_head"


@dataclass
class RayHead:
    """A running local Ray head: its GCS address, the pid leading its process group, and the env drivers need."""

    address: str
    pid: int
    env: dict[str, str]

    def stop(self) -> None:
        """Stop every process of the instance."""
        terminate_group(self.pid, grace_seconds=15.0)


def ray_auth_env(ray_dir: Path) -> dict[str, str]:
    """Environment that makes a Ray process use the service's own token."""
    write_secret(ray_dir / "token")
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(ray_dir / "token")}


def cluster_auth_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Environment that makes drivers joining an external cluster authenticate the way the cluster expects.

    Ray turns token authentication on for a cluster it starts, but a driver
    given an explicit address does not, and its workers then fail with
    ``InvalidAuthToken``. So: an explicit ``RAY_AUTH_MODE`` is respected (and
    inherited); otherwise a token from ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``
    or Ray's usual ``~/.ray/auth_token`` turns token mode on. A cluster
    without authentication ignores the token a driver sends.
    """
    env = dict(os.environ if environ is None else environ)
    if env.get("RAY_AUTH_MODE"):
        return {}
    if env.get("RAY_AUTH_TOKEN"):
        return {"RAY_AUTH_MODE": "token"}
    custom = env.get("RAY_AUTH_TOKEN_PATH")
    if custom and Path(custom).expanduser().is_file():
        return {"RAY_AUTH_MODE": "token"}
    default = Path(env.get("HOME") or Path.home()) / ".ray" / "auth_token"
    if default.is_file():
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(default)}
    return {}


def _reachable(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2.0):
            return True
    except (OSError, ValueError):
        return False


def adopt_or_start(ray_dir: Path, log_path: Path, num_cpus: int | None, object_store_mb: int, timeout: float = 120.0) -> RayHead:
    """The head a previous service left running (if it still answers), else a new one."""
    env = python_env(ray_auth_env(ray_dir))
    info_path = ray_dir / "head.json"
    if info_path.is_file():
        try:
            info = json.loads(info_path.read_text())
            if is_ours(info["pid"], _MODULE, "--ray-dir", str(ray_dir)) and _reachable(info["address"]):
                return RayHead(info["address"], int(info["pid"]), env)
        except (ValueError, KeyError, TypeError):
            pass
        info_path.unlink(missing_ok=True)
    args = ["--ray-dir", str(ray_dir), "--object-store-mb", str(object_store_mb)]
    if num_cpus:
        args += ["--num-cpus", str(num_cpus)]
    process = spawn_python(_MODULE, args, log_path, env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if info_path.is_file():
            info = json.loads(info_path.read_text())
            if info.get("pid") == process.pid:
                return RayHead(info["address"], process.pid, env)
        if process.poll() is not None:
            raise RuntimeError(f"the local Ray head exited with status {process.returncode}; see {log_path}")
        time.sleep(0.1)
    terminate_group(process.pid)
    raise RuntimeError(f"the local Ray head did not start within {timeout:.0f} s; see {log_path}")


def main(argv: list[str] | None = None) -> int:
    """Start the head, publish its address, wait for SIGTERM."""
    parser = argparse.ArgumentParser(prog=_MODULE)
    parser.add_argument("--ray-dir", required=True)
    parser.add_argument("--num-cpus", type=int)
    parser.add_argument("--object-store-mb", type=int, default=512)
    args = parser.parse_args(argv)
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # runs ray.shutdown through atexit
    import ray

    ray.init(
        address="local",  # a new instance, never one found running on this machine (another user's, say)
        num_cpus=args.num_cpus or os.cpu_count(),
        include_dashboard=False,
        object_store_memory=args.object_store_mb * 1024 * 1024,
        logging_level=logging.ERROR,
        _node_ip_address="127.0.0.1",
    )
    info = {"address": ray.get_runtime_context().gcs_address, "pid": os.getpid()}
    tmp = Path(args.ray_dir) / ".head.json.tmp"
    tmp.write_text(json.dumps(info))
    os.replace(tmp, Path(args.ray_dir) / "head.json")
    print(f"Ray head at {info['address']}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
