"""The warm Ray actor pool against serial and against one Ray task per chunk, and the memory of a run.

Prints, in one run on this machine (with the load average, since the figures need a quiet machine):
  (a) LunarLander-v3 as configs/lunarlander.toml has it (population 64, 3 episodes each, 8-16-4 MLP):
      milliseconds per generation serially, on the actor pool and on Ray tasks (``--workers`` each),
      the speed-ups over serial (target: pool >= 1.9x on 2 workers), and that all three give identical fitness;
  (b) a chunk of one XOR genome: its round trip through the pool, as a Ray task and in process,
      both as throughput (200 chunks in one generation) and as latency (one chunk per generation)
      (target: pool <= 0.5 ms);
  (c) memory: peak resident memory (RSS) of the driver and of each pool actor in a digits run
      (configs/digits-mlp.toml) and a LunarLander run, and the RSS of the driver and the actors
      every ``--sample-every`` generations of a ``--generations``-generation digits run
      (population 10), with the growth from the first sample to the last.

    python benchmarks/ray_pool.py [--workers 2] [--repeats 3] [--generations 1000] [--sample-every 100]
    python benchmarks/ray_pool.py --quick        # fewer repeats and generations: a smoke run
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only
ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def _rss(pid: int) -> int:
    """Resident memory of a process now (bytes): psutil when installed, else /proc."""
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss)
    except ImportError:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _driver_peak() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _config(name: str, **overrides):
    from evo.config import parse_config, read_toml

    data = read_toml(ROOT / "configs" / name)
    for section, values in overrides.items():
        if isinstance(values, dict):
            data[section] = {**data.get(section, {}), **values}
        else:
            data[section] = values
    return parse_config(data)


def _time_generations(evaluator, task, net, genomes, repeats: int) -> tuple[float, np.ndarray]:
    evaluator.evaluate(task, net, genomes, generation=0)  # start workers, fill caches
    times, fitness = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        fitness = evaluator.evaluate(task, net, genomes, generation=1).fitness
        times.append(time.perf_counter() - t0)
    return min(times), fitness


def lunarlander_speed(workers: int, repeats: int) -> None:
    """(a) Serial vs actor pool vs Ray tasks on LunarLander."""
    from evo.build import build_network, build_task
    from evo.evaluators import RayEvaluator, SerialEvaluator

    config = _config("lunarlander.toml")
    task = build_task(config)
    net = build_network(config, task)
    genomes = net.init_params(np.random.default_rng(0), config.strategy.population)
    serial_s, serial_fit = _time_generations(SerialEvaluator(run_seed=0), task, net, genomes, repeats)
    figures = {}
    for mode in ("actors", "tasks"):
        evaluator = RayEvaluator(run_seed=0, workers=workers, mode=mode)
        figures[mode] = _time_generations(evaluator, task, net, genomes, repeats)
        evaluator.close()
    print(f"(a) LunarLander-v3, population {len(genomes)}, {task.episodes} episodes each, best of {repeats}; {_load()}")
    print(f"  serial (1 process):          {serial_s * 1e3:8.1f} ms per generation")
    for mode, label in (("actors", "actor pool"), ("tasks", "Ray tasks ")):
        seconds, fitness = figures[mode]
        print(
            f"  {label}, {workers} workers:     {seconds * 1e3:8.1f} ms per generation   speed-up {serial_s / seconds:.2f}x   "
            f"identical fitness: {bool(np.array_equal(fitness, serial_fit))}"
        )
    print(f"  pool vs tasks: {figures['tasks'][0] / figures['actors'][0]:.2f}x   (target: pool >= 1.9x serial on 2 workers)")


def xor_round_trip(workers: int, chunks: int) -> None:
    """(b) A one-genome XOR chunk through the pool, as a Ray task, in process."""
    from evo.evaluators import RayEvaluator, SerialEvaluator
    from evo.tasks.boolean import ParityTask
    from networks import MLP

    xor, net = ParityTask(2), MLP((2, 4, 1), "tanh", "sigmoid")
    genomes = net.init_params(np.random.default_rng(0), chunks)
    serial = SerialEvaluator(0, chunk_size=1)
    serial.evaluate(xor, net, genomes, generation=0)
    t0 = time.perf_counter()
    expected = serial.evaluate(xor, net, genomes, generation=1).fitness
    in_process = (time.perf_counter() - t0) / chunks
    rows = {}
    for mode in ("actors", "tasks"):
        evaluator = RayEvaluator(run_seed=0, workers=workers, chunk_size=1, mode=mode)
        evaluator.evaluate(xor, net, genomes, generation=0)
        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            fitness = evaluator.evaluate(xor, net, genomes, generation=1).fitness
            best = min(best, (time.perf_counter() - t0) / chunks)
        assert np.array_equal(fitness, expected)
        one = genomes[:1]
        latency = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            for g in range(chunks // 2):
                evaluator.evaluate(xor, net, one, generation=g)
            latency = min(latency, (time.perf_counter() - t0) / (chunks // 2))
        rows[mode] = (best, latency)
        evaluator.close()
    print(f"(b) one-genome XOR chunk, {workers} workers; {_load()}")
    print(
        f"  actor pool:  {rows['actors'][0] * 1e3:6.3f} ms per chunk ({chunks} in one generation)   {rows['actors'][1] * 1e3:6.3f} ms one at a time"
    )
    print(
        f"  Ray tasks:   {rows['tasks'][0] * 1e3:6.3f} ms per chunk ({chunks} in one generation)   {rows['tasks'][1] * 1e3:6.3f} ms one at a time"
    )
    print(f"  in process:  {in_process * 1e3:6.3f} ms per chunk   (target: pool <= 0.5 ms)")


def _sampler(every: int):
    """A reporter that records the RSS of the driver and of every pool actor every ``every`` generations."""
    from evo.reporters import Reporter

    class Sampler(Reporter):
        def __init__(self) -> None:
            self.evaluator = None
            self.rows: list[tuple[int, int, list[int]]] = []
            self.actor_peaks: list[int] = []

        def on_generation(self, state, row) -> None:
            if state.generation == 1 or state.generation % every == 0:
                info = self.evaluator.actor_info()
                self.rows.append((state.generation, _rss(os.getpid()), [_rss(i["pid"]) for i in info]))
                self.actor_peaks = [i["peak_rss"] for i in info]

    return Sampler()


def _sampled_run(config, every: int):
    """Run ``config`` to its end on the actor pool, sampling memory as it goes."""
    from evo.run import EvolutionRun

    sampler = _sampler(every)

    class SampledRun(EvolutionRun):
        def _run(self, evaluator):
            sampler.evaluator = evaluator
            return super()._run(evaluator)

    with tempfile.TemporaryDirectory(prefix="evo-ray-pool-") as scratch:
        SampledRun(config, run_dir=Path(scratch) / "run", progress=False, reporters=[sampler]).run()
    return sampler


PEAK_RUNS = {"digits": ("digits-mlp.toml", "digits-mlp, population 50"), "lunarlander": ("lunarlander.toml", "lunarlander, population 64")}


def peak_run(name: str, workers: int, generations: int) -> None:
    """One run of ``PEAK_RUNS[name]`` in this (fresh) process; prints the peak RSS of the driver and the actors."""
    config = _config(PEAK_RUNS[name][0], generations=generations, evaluator={"type": "ray", "workers": workers, "mode": "actors"})
    sampler = _sampled_run(config, every=generations)
    print("PEAK", _driver_peak(), *sampler.actor_peaks)


def memory(workers: int, generations: int, every: int, lunar_generations: int, digits_generations: int) -> None:
    """(c) Peak RSS of a digits run and a LunarLander run; RSS every ``every`` generations of a long cheap run."""
    import subprocess

    ray_section = {"type": "ray", "workers": workers, "mode": "actors"}
    print(f"(c) memory (RSS, MiB), actor pool of {workers}; {_load()}")
    for name, run_generations in (("digits", digits_generations), ("lunarlander", lunar_generations)):
        # Each in a process of its own (with its own Ray instance), so the driver's peak is that run's alone.
        command = [sys.executable, __file__, "--peak-run", name, "--workers", str(workers), "--generations", str(run_generations)]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        driver, *actors = (int(v) for v in next(line for line in out.splitlines() if line.startswith("PEAK ")).split()[1:])
        shown = ", ".join(f"{p / MB:.0f}" for p in actors)
        print(f"  {PEAK_RUNS[name][1]}, {run_generations} generations: peak driver {driver / MB:.0f}, actors [{shown}]")
    config = _config(
        "digits-mlp.toml",
        generations=generations,
        evaluator=ray_section,
        strategy={"population": 10},
        task={"batch_size": 64},
    )
    sampler = _sampled_run(config, every=every)
    print(f"  digits-mlp, population 10, {generations} generations, sampled every {every}:")
    print("    generation   driver   actors")
    for generation, driver, actors in sampler.rows:
        print(f"    {generation:10d} {driver / MB:8.1f}   " + "  ".join(f"{a / MB:6.1f}" for a in actors))
    (g0, d0, a0), (g1, d1, a1) = sampler.rows[1] if len(sampler.rows) > 1 else sampler.rows[0], sampler.rows[-1]
    growth = ", ".join(f"{(b - a) / MB:+.1f}" for a, b in zip(a0, a1))
    print(f"  growth from generation {g0} to {g1}: driver {(d1 - d0) / MB:+.1f} MiB, actors [{growth}] MiB")


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunks", type=int, default=200, help="(b): one-genome chunks per generation")
    parser.add_argument("--generations", type=int, default=1000, help="(c): generations of the long digits run")
    parser.add_argument("--sample-every", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="1 repeat, 50 chunks, 200 generations sampled every 50")
    parser.add_argument("--peak-run", choices=sorted(PEAK_RUNS), help=argparse.SUPPRESS)  # (c), in a child process
    parser.add_argument("--skip", nargs="*", default=[], choices=["speed", "round-trip", "memory"])
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.chunks, args.generations, args.sample_every = 1, 50, 200, 50

    if args.peak_run:
        peak_run(args.peak_run, args.workers, args.generations)
        return
    from evo.evaluators import start_local_ray

    start_local_ray(num_cpus=args.workers)
    if "speed" not in args.skip:
        lunarlander_speed(args.workers, args.repeats)
    if "round-trip" not in args.skip:
        xor_round_trip(args.workers, args.chunks)
    if "memory" not in args.skip:
        memory(
            args.workers,
            args.generations,
            args.sample_every,
            lunar_generations=3 if args.quick else 10,
            digits_generations=50 if args.quick else 300,
        )
    import ray

    ray.shutdown()


if __name__ == "__main__":
    main()
