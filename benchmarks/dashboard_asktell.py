"""The dashboard's first paint with 200 runs in the database, and the ask/tell round trip on loopback.

Starts a real `evo serve` (temporary home, free loopback port) whose database
already holds ``--runs`` finished runs, and prints:

  1. first paint of the runs page in Debian's Chromium (Playwright): the
     browser's first-contentful-paint, and the time from navigation to the
     table holding every run (target: under 1 s), against the baseline of one
     ``GET /api/runs?limit=200`` made from Python in the same run;
  2. the ask/tell round trip (``ask(1)`` then ``tell`` of that trial), p50 and
     p99 over ``--pairs`` pairs, against the baseline of ``GET /health``.

    python benchmarks/dashboard_asktell.py [--runs 200] [--pairs 400]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evo.service.db import SUCCEEDED, Database, Run  # noqa: E402
from tests.service_support import ServiceProcess, xor_config  # noqa: E402

ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def fill(home: Path, runs: int) -> None:
    """``runs`` finished runs, as the service records them, written straight into a new database."""
    home.mkdir(parents=True, exist_ok=True)
    db = Database(f"sqlite:///{home / 'evo.db'}")
    db.create_tables()
    now = time.time()
    with db.write() as session:
        for i in range(runs):
            config = xor_config(f"bench{i}", 300)
            row = {"generation": 300, "evaluations": 4800, "best": 0.99, "mean": 0.9, "std": 0.05, "best_so_far": 0.99 + i * 1e-5}
            session.add(
                Run(
                    id=f"bench-{i:04d}",
                    name=config["name"],
                    status=SUCCEEDED,
                    kind="run",
                    config=config,
                    created_at=now - 1000 + i,
                    queued_at=now - 1000 + i,
                    started_at=now - 999 + i,
                    finished_at=now - 990 + i,
                    generation=300,
                    latest_metrics=row,
                    run_dir=str(home / "runs" / f"bench-{i:04d}"),
                )
            )
    db.dispose()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def first_paint(service: ServiceProcess, runs: int, repeats: int = 5) -> None:
    from playwright.sync_api import sync_playwright

    auth = {"Authorization": f"Bearer {service.token}"}
    api = []
    with httpx.Client() as http:
        for _ in range(repeats + 1):
            started = time.perf_counter()
            http.get(f"{service.url}/api/runs?limit=200", headers=auth).raise_for_status()
            api.append(time.perf_counter() - started)
    profile = tempfile.mkdtemp(prefix="evo-bench-chromium-")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    paints, filled = [], []
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=chromium, args=ARGS, headless=True, viewport={"width": 1280, "height": 800}
            )
            page = context.new_page()
            page.goto(service.url + "/login")
            page.evaluate(f"sessionStorage.setItem('evo-token', {service.token!r})")
            shown = min(runs, 200)
            for _ in range(repeats + 1):  # the first load warms the browser's cache of the static files, as a user's second visit
                started = time.perf_counter()
                page.goto(service.url + "/")
                page.wait_for_function(f"document.querySelectorAll('#runs-table tbody tr').length >= {shown}")
                filled.append(time.perf_counter() - started)
                fcp = page.evaluate("performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null")
                paints.append(fcp / 1000 if fcp is not None else float("nan"))
            context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    api_s, fcp_s, table_s = statistics.median(api[1:]), statistics.median(paints[1:]), statistics.median(filled[1:])
    print(f"first paint, {runs} runs in the database (median of {repeats} loads, cache warm):")
    print(f"  GET /api/runs?limit=200 from Python (baseline): {api_s * 1000:.1f} ms")
    print(f"  first-contentful-paint: {fcp_s * 1000:.0f} ms; table filled with {shown} runs: {table_s * 1000:.0f} ms")
    print(f"  table filled / baseline: {table_s / api_s:.1f}x   (target: table under 1 s: {'met' if table_s < 1 else 'NOT met'})")


def round_trips(service: ServiceProcess, pairs: int) -> None:
    with service.client() as client:
        health = []
        for _ in range(pairs):
            started = time.perf_counter()
            client.http.get("/health").raise_for_status()
            health.append(time.perf_counter() - started)
        study = client.create_study(
            study_id="bench-rtt", strategy={"type": "cmaes", "population": 64}, dimension=10, bounds=[-5, 5], generations=1000
        )
        times = []
        for i in range(pairs):
            started = time.perf_counter()
            trials = study.ask(1)
            study.tell(trials, [float(-(t.genome**2).sum()) for t in trials])
            times.append(time.perf_counter() - started)
            assert trials, i
        generations = client.get("bench-rtt")["generation"]
    h50, h99 = percentile(health, 0.5), percentile(health, 0.99)
    p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
    print(f"ask/tell round trip (ask 1 + tell 1), {pairs} pairs, {generations} generations advanced on the way:")
    print(f"  GET /health (baseline): p50 {h50 * 1000:.2f} ms, p99 {h99 * 1000:.2f} ms")
    print(f"  ask + tell: p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms   ({p50 / h50:.1f}x / {p99 / h99:.1f}x the baseline)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "home"
        fill(home, args.runs)
        service = ServiceProcess(home, ["--ray-cpus", "1", "--ray-object-store-mb", "100"])
        try:
            service.start()
            first_paint(service, args.runs)
            round_trips(service, args.pairs)
        finally:
            service.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
