"""Three separate client processes evolve a CartPole policy against one ask/tell study of `evo serve`.

    python examples/asktell_cartpole.py                       # starts a private `evo serve` in a temporary home
    python examples/asktell_cartpole.py --server URL --token T  # or uses a running one (EVO_SERVER / EVO_TOKEN)

The study is `configs/cartpole.toml` (CMA-ES, population 32, a 4-16-2 tanh
network, seed 0, target fitness 500); the fitness (mean return of 5 episodes,
seeded as `evo run` seeds it) is computed by the clients, never by the
service. At the end the best genome is tested on 100 fresh episodes, as
`evo run` reports ``test_mean_return``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evo.client import Client  # noqa: E402
from evo.seeding import STREAM_TEST, stream_seed  # noqa: E402
from evo.tasks.control import ControlTask  # noqa: E402
from networks import network_from_description  # noqa: E402

STUDY = {
    "name": "asktell-cartpole",
    "seed": 0,
    "generations": 100,
    "target_fitness": 500.0,
    "strategy": {"type": "cmaes", "population": 32, "sigma": 0.5},
    "network": {"hidden": [16], "activation": "tanh"},
    "inputs": 4,
    "outputs": 2,
    "trial_timeout": 30.0,
}


def worker(server: str, token: str, study_id: str, client_id: str, count: int) -> None:
    """One client: ask trials, run their episodes here, tell the mean returns, until the study ends."""
    task = ControlTask("CartPole-v1", episodes=5, test_episodes=100)
    with Client(server, token) as client:
        study = client.study(study_id, client_id)
        told = 0
        while True:
            trials = study.ask(count)
            if study.done:
                break
            if not trials:
                continue
            network = network_from_description(trials[0].network or {})
            genomes = np.stack([t.genome for t in trials])
            seeds = np.array([t.seed for t in trials], dtype=np.uint64)
            study.tell(trials, task.evaluate(network, genomes, seeds, trials[0].generation_seed))
            told += len(trials)
    print(f"client {client_id}: told {told} trials", flush=True)


def start_service(home: Path) -> tuple[subprocess.Popen, str]:
    """A private `evo serve` on a free loopback port; returns it and its URL."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    command = [
        sys.executable,
        "-m",
        "evo.cli",
        "serve",
        "--home",
        str(home),
        "--port",
        "0",
        "--ray-cpus",
        "1",
        "--ray-object-store-mb",
        "100",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    assert process.stdout is not None
    for line in process.stdout:
        if "listening on " in line:
            return process, line.split("listening on ", 1)[1].strip()
    raise RuntimeError("evo serve did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.environ.get("EVO_SERVER"))
    parser.add_argument("--token", default=os.environ.get("EVO_TOKEN"))
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--count", type=int, default=8, help="trials per ask")
    parser.add_argument("--study-id", default=None)
    parser.add_argument("--worker", metavar="CLIENT_ID", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.server, args.token, args.study_id, args.worker, args.count)
        return 0
    service = None
    with tempfile.TemporaryDirectory() as home:
        if args.server is None:
            service, args.server = start_service(Path(home))
            args.token = (Path(home) / "token").read_text().strip()
        try:
            started = time.perf_counter()
            with Client(args.server, args.token) as client:
                study = client.create_study(study_id=args.study_id or f"cartpole-{os.getpid()}", **STUDY)
            print(f"study {study.id} at {args.server}; {args.clients} client processes")
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            clients = [
                subprocess.Popen(
                    [sys.executable, __file__, "--worker", f"client{i}", "--server", args.server, "--token", args.token]
                    + ["--study-id", study.id, "--count", str(args.count)],
                    env=env,
                )
                for i in range(args.clients)
            ]
            for process in clients:
                process.wait()
            with Client(args.server, args.token) as client:
                run = client.get(study.id)
            summary = run["summary"]
            task = ControlTask("CartPole-v1", episodes=5, test_episodes=100)
            network = network_from_description(summary["network"])
            test = task.test(network, np.asarray(summary["best_genome"]), stream_seed(STUDY["seed"], STREAM_TEST))
            print(
                f"{run['status']} after {summary['generations']} generations ({summary['stopped_by']}), "
                f"best fitness {summary['best_fitness']:.1f}, test_mean_return {test['test_mean_return']:.1f} "
                f"on 100 fresh episodes, {time.perf_counter() - started:.1f} s"
            )
            return 0 if test["test_mean_return"] >= 475 else 1
        finally:
            if service is not None:
                service.terminate()
                service.wait(60)


if __name__ == "__main__":
    sys.exit(main())
