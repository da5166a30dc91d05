"""Ray evaluation: speed-up of 2 workers over serial, and the per-task overhead.

Prints, in one run on this machine:
  * LunarLander-v3, population 64 (8-16-4 MLP), 3 episodes each: seconds per
    generation serially and on a local Ray instance with 2 workers, their
    ratio, and a check that both give identical fitness;
  * the per-task overhead of Ray here: the round trip of an empty task, and
    of an evaluation chunk of one tiny XOR genome (payload from the object store).

    python benchmarks/ray_speedup.py [--population 64] [--episodes 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--population", type=int, default=64)
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    import ray

    from evo.evaluators import RayEvaluator, SerialEvaluator, start_local_ray
    from evo.tasks.boolean import ParityTask
    from evo.tasks.control import ControlTask
    from networks import MLP

    task = ControlTask("LunarLander-v3", episodes=args.episodes)
    net = MLP((task.n_inputs, 16, task.n_outputs), "tanh", task.output_activation)
    genomes = net.init_params(np.random.default_rng(0), args.population)

    serial = SerialEvaluator(run_seed=0)
    serial.evaluate(task, net, genomes, generation=0)  # warm the env cache
    serial_times, serial_fit = [], None
    for _rep in range(args.repeats):
        t0 = time.perf_counter()
        serial_fit = serial.evaluate(task, net, genomes, generation=1).fitness
        serial_times.append(time.perf_counter() - t0)

    start_local_ray(num_cpus=args.workers)
    ray_eval = RayEvaluator(run_seed=0, workers=args.workers)
    ray_eval.evaluate(task, net, genomes, generation=0)  # start workers, fill their env caches
    ray_times, ray_fit = [], None
    for _rep in range(args.repeats):
        t0 = time.perf_counter()
        ray_fit = ray_eval.evaluate(task, net, genomes, generation=1).fitness
        ray_times.append(time.perf_counter() - t0)

    steps = None
    print(f"LunarLander-v3, population {args.population}, {args.episodes} episodes each, best of {args.repeats}")
    print(f"  serial (1 process):        {min(serial_times) * 1e3:8.1f} ms per generation")
    print(f"  Ray ({ray_eval.mode}), {args.workers} workers:     {min(ray_times) * 1e3:8.1f} ms per generation")
    print(f"  speed-up Ray/serial: {min(serial_times) / min(ray_times):.2f}x   (2 cores here: at most ~2x)")
    print(f"  identical fitness serial vs Ray: {bool(np.array_equal(serial_fit, ray_fit))}")
    ray_eval.close()  # its actors (Ray itself stays: this script started it)
    del steps

    @ray.remote
    def empty():
        return None

    ray.get([empty.remote() for _ in range(50)])
    n = 500
    t0 = time.perf_counter()
    ray.get([empty.remote() for _ in range(n)])
    batch = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for _ in range(100):
        ray.get(empty.remote())
    sequential = (time.perf_counter() - t0) / 100

    xor = ParityTask(2)
    xnet = MLP((2, 4, 1), "tanh", "sigmoid")
    xgenomes = xnet.init_params(np.random.default_rng(0), 200)
    tiny = RayEvaluator(run_seed=0, workers=args.workers, chunk_size=1)
    tiny.evaluate(xor, xnet, xgenomes, generation=0)
    t0 = time.perf_counter()
    tiny.evaluate(xor, xnet, xgenomes, generation=1)
    per_chunk = (time.perf_counter() - t0) / len(xgenomes)
    t0 = time.perf_counter()
    SerialEvaluator(0, chunk_size=1).evaluate(xor, xnet, xgenomes, generation=1)
    serial_chunk = (time.perf_counter() - t0) / len(xgenomes)
    print("Ray per-task overhead on this machine")
    print(f"  empty task, 500 in flight:       {batch * 1e3:6.3f} ms per task (throughput)")
    print(f"  empty task, one at a time:       {sequential * 1e3:6.3f} ms per task (latency)")
    print(f"  1-genome XOR chunk via Ray ({tiny.mode}): {per_chunk * 1e3:6.3f} ms per chunk vs {serial_chunk * 1e3:.3f} ms in process")
    print("  => chunks should run >= 10 ms each for the overhead to stay under ~10%")
    ray.shutdown()


if __name__ == "__main__":
    main()
