"""What the service tests share: the real `evo serve` in a subprocess with a temp home, small configs, waits and checks."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from evo.client import Client
from evo.config import parse_config
from evo.run import EvolutionRun

ROOT = Path(__file__).resolve().parent.parent
TERMINAL = ("stopped", "succeeded", "failed", "cancelled")


def xor_config(name: str, generations: int, target: float | None = None, checkpoint_every: int = 10, seed: int = 0) -> dict[str, Any]:
    """A tiny run: XOR, a 2-4-1 network, CMA-ES with 16 individuals."""
    config: dict[str, Any] = {
        "name": name,
        "seed": seed,
        "generations": generations,
        "checkpoint_every": checkpoint_every,
        "network": {"hidden": [4]},
        "task": {"type": "xor"},
        "strategy": {"type": "cmaes", "population": 16, "sigma": 1.0},
    }
    if target is not None:
        config["target_fitness"] = target
    return config


def without_time(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "wall_seconds"} for row in rows]


def reference(config: dict[str, Any], tmp_path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Metrics rows (without time) and summary of the same config run here, serially and uninterrupted."""
    result = EvolutionRun(parse_config(config), run_dir=tmp_path / f"reference-{config['name']}", progress=False).run()
    return without_time(json.loads(json.dumps(result.metrics))), result.summary


class ServiceProcess:
    """``evo serve`` in a subprocess (its own session) on a free loopback port."""

    def __init__(self, home: Path, args: list[str], env: dict[str, str] | None = None) -> None:
        self.home = home
        self.args = args
        self.extra_env = env or {}
        self.process: subprocess.Popen | None = None
        self.lines: list[str] = []
        self.url = ""

    def start(self, timeout: float = 60.0) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "EVO_SERVER", "EVO_TOKEN")}
        env.update(PYTHONPATH=str(ROOT), RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", **self.extra_env)
        command = [sys.executable, "-m", "evo.cli", "serve", "--home", str(self.home), "--port", "0", *self.args]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
        )
        listening = threading.Event()

        def drain(stream) -> None:
            for line in stream:
                self.lines.append(line.rstrip("\n"))
                if "listening on http://" in line:
                    self.url = line.split("listening on ", 1)[1].strip()
                    listening.set()

        threading.Thread(target=drain, args=(self.process.stdout,), daemon=True).start()
        if not listening.wait(timeout):
            raise RuntimeError("evo serve did not start:\n" + "\n".join(self.lines))

    @property
    def token(self) -> str:
        return (self.home / "token").read_text().strip()

    def client(self) -> Client:
        return Client(server=self.url, token=self.token)

    def kill(self) -> None:
        """SIGKILL the service alone (its workers and Ray head live in their own sessions)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM, as a user's Ctrl-C: the service stops its workers and its Ray head."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def worker_pids(self) -> list[int]:
        path = self.home / "evo.db"
        if not path.is_file():
            return []
        with sqlite3.connect(path, timeout=30) as connection:
            return [pid for (pid,) in connection.execute("SELECT worker_pid FROM runs WHERE worker_pid IS NOT NULL")]

    def cleanup(self) -> None:
        """Stop the service, then anything of it still alive: workers and the Ray head (by pid, checked by command line)."""
        from evo.service.processes import is_ours, kill_group, terminate_group

        self.stop()
        for pid in self.worker_pids():
            if is_ours(pid, "evo.service.worker"):
                kill_group(pid)
        head = self.home / "ray" / "head.json"
        if head.is_file():
            pid = json.loads(head.read_text())["pid"]
            if is_ours(pid, "evo.service.ray_head"):
                terminate_group(pid)


def wait_for(predicate, timeout: float = 90.0, poll: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


def run_count(service: ServiceProcess) -> int:
    with sqlite3.connect(service.home / "evo.db") as connection:
        return connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


def assert_events_consistent(service: ServiceProcess, run_id: str) -> None:
    """Events numbered 1..last with no gap, and one generation event per generation, in order."""
    with sqlite3.connect(service.home / "evo.db") as connection:
        seqs = [s for (s,) in connection.execute("SELECT seq FROM events WHERE run_id = ? ORDER BY seq", (run_id,))]
        last = connection.execute("SELECT last_event_seq FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
        generations = [
            g
            for (g,) in connection.execute("SELECT generation FROM events WHERE run_id = ? AND kind = 'generation' ORDER BY seq", (run_id,))
        ]
    assert seqs == list(range(1, last + 1))
    assert generations == list(range(1, len(generations) + 1))
