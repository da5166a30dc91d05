"""`evo serve` under load: many submissions, many stream watchers, and the latency of a run's start.

Starts a real service (temporary home, free loopback port, its own local Ray
instance) and prints:

  1. submission: ``--runs`` runs of configs/xor.toml submitted at once by
     ``--clients`` threads (each with its own run_id): how many succeeded, lost
     or duplicated, submit latency p50 / p99, total wall time to the last end;
  2. watchers: ``--watchers`` event streams on one running run (CartPole, no
     target) for ``--seconds`` s, then the run is stopped: whether every watcher
     received every generation once and in order, and the p50 / p99 latency of
     ``GET /api/runs/{id}`` polled meanwhile (target: p99 under 50 ms);
  3. start latency: from ``POST /api/runs`` to the first generation's event on
     the stream, with Ray warm and the service idle (target: under 1 s).

    python benchmarks/service_load.py [--runs 50] [--clients 10] [--watchers 100] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evo.client import Client  # noqa: E402  (after the sys.path line: runs from a checkout)
from evo.config import read_toml  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def start_service(home: Path, max_concurrent: int) -> tuple[subprocess.Popen, str]:
    """`evo serve` in its own session; returns the process and its URL."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, "-m", "evo.cli", "serve", "--home", str(home), "--port", "0", "--max-concurrent", str(max_concurrent)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    for line in process.stdout:
        if "listening on " in line:
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()  # keep the pipe drained
            return process, line.split("listening on ", 1)[1].strip()
    raise RuntimeError("evo serve did not start")


def stop_service(process: subprocess.Popen) -> None:
    """SIGTERM: the service stops its workers and its Ray instance."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def wait_standby(home: Path, timeout: float = 60.0) -> None:
    """Until a standby worker is ready (the service is idle and Ray warm)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not list((home / "logs").glob("standby-*.ready")):
        time.sleep(0.2)


def start_latency(client: Client, home: Path, repeats: int) -> list[float]:
    """Seconds from submission to the first generation's event, each with the service idle and Ray warm."""
    config = read_toml(ROOT / "configs" / "xor.toml")
    out = []
    for i in range(repeats):
        wait_standby(home)
        started = time.perf_counter()
        run_id = client.submit(config, run_id=f"latency-{i}")["id"]
        for event in client.events(run_id):
            if event.event == "generation":
                out.append(time.perf_counter() - started)
                break
        client.wait(run_id)
    return out


def submission_load(client: Client, runs: int, clients: int) -> dict:
    """``runs`` submissions from ``clients`` threads, then wait for every run to end."""
    config = read_toml(ROOT / "configs" / "xor.toml")
    latencies: list[float] = []
    started = time.perf_counter()

    def submit(index: int) -> str:
        with Client(server=client.server, token=client.token) as own:
            t0 = time.perf_counter()
            answer = own.submit(config, run_id=f"load-{index:03d}")
            latencies.append(time.perf_counter() - t0)
            return answer["id"]

    with ThreadPoolExecutor(clients) as pool:
        ids = list(pool.map(submit, range(runs)))
    finals = [client.wait(run_id, timeout=3600, poll=0.5) for run_id in ids]
    wall = time.perf_counter() - started
    listed = client.runs(name="xor", limit=500)
    listed_ids = [r["id"] for r in listed["runs"] if r["id"].startswith("load-")]
    return {
        "succeeded": sum(r["status"] == "succeeded" for r in finals),
        "lost": runs - len(set(listed_ids)),
        "duplicated": len(listed_ids) - len(set(listed_ids)),
        "submit_p50_ms": 1000 * percentile(latencies, 50),
        "submit_p99_ms": 1000 * percentile(latencies, 99),
        "wall_seconds": wall,
    }


async def _watch(url: str, token: str, run_id: str, out: list[int]) -> None:
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None)) as http:  # noqa: SIM117
        async with http.stream("GET", f"{url}/api/runs/{run_id}/stream", headers=headers) as response:
            kind = None
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and kind == "generation":
                    out.append(json.loads(line.split(":", 1)[1])["generation"])


def _watch_all(url: str, token: str, run_id: str, watchers: int, results) -> None:
    """In a process of its own: ``watchers`` streams at once; puts the generations each one received."""
    received: list[list[int]] = [[] for _ in range(watchers)]

    async def watch_all() -> None:
        await asyncio.gather(*(_watch(url, token, run_id, out) for out in received))

    asyncio.run(watch_all())
    results.put(received)


def watchers_load(client: Client, watchers: int, seconds: float) -> dict:
    """``watchers`` streams on one CartPole run for ``seconds``, GET latency polled meanwhile."""
    config = read_toml(ROOT / "configs" / "cartpole.toml")
    config.pop("target_fitness", None)
    config["generations"] = 1_000_000
    run_id = client.submit(config, run_id="watched")["id"]
    latencies: list[float] = []
    done = threading.Event()

    def probe() -> None:
        with Client(server=client.server, token=client.token) as own:
            while not done.is_set():
                t0 = time.perf_counter()
                own.get(run_id)
                latencies.append(time.perf_counter() - t0)
                time.sleep(0.05)

    # The watchers live in another process, so that their parsing does not inflate the latency measured here.
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    watcher_process = context.Process(target=_watch_all, args=(client.server, client.token, run_id, watchers, results))
    watcher_process.start()
    prober = threading.Thread(target=probe)
    prober.start()
    stopper = threading.Timer(seconds, lambda: client.stop(run_id))
    stopper.start()
    received = results.get()
    watcher_process.join()
    done.set()
    prober.join()
    final = client.get(run_id)
    expected = list(range(1, final["generation"] + 1))
    return {
        "generations": final["generation"],
        "status": final["status"],
        "complete_watchers": sum(r == expected for r in received),
        "get_p50_ms": 1000 * percentile(latencies, 50),
        "get_p99_ms": 1000 * percentile(latencies, 99),
        "gets": len(latencies),
    }


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--latency-repeats", type=int, default=3)
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--only", choices=["latency", "load", "watchers"], help="measure only this")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="evo-service-load-") as folder:
        home = Path(folder)
        process, url = start_service(home, args.max_concurrent)
        try:
            client = Client(server=url, token=(home / "token").read_text().strip())
            if args.only in (None, "latency"):
                latency = start_latency(client, home, args.latency_repeats)
                print(f"start latency (submit -> first generation event, Ray warm): {', '.join(f'{s:.2f}' for s in latency)} s")
            if args.only in (None, "load"):
                load = submission_load(client, args.runs, args.clients)
                print(
                    f"{args.runs} xor runs from {args.clients} threads (max {args.max_concurrent} at once): {load['succeeded']} succeeded, "
                    f"{load['lost']} lost, {load['duplicated']} duplicated; submit p50 {load['submit_p50_ms']:.1f} ms, "
                    f"p99 {load['submit_p99_ms']:.1f} ms; all done in {load['wall_seconds']:.1f} s"
                )
            if args.only in (None, "watchers"):
                watch = watchers_load(client, args.watchers, args.seconds)
                print(
                    f"{args.watchers} watchers on one CartPole run for {args.seconds:.0f} s ({watch['generations']} generations, "
                    f"then {watch['status']}): {watch['complete_watchers']}/{args.watchers} received every generation once, in order; "
                    f"GET /api/runs/{{id}} p50 {watch['get_p50_ms']:.1f} ms, p99 {watch['get_p99_ms']:.1f} ms over {watch['gets']} requests"
                )
            client.close()
        finally:
            stop_service(process)


if __name__ == "__main__":
    main()
