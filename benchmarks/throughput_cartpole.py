"""CartPole-v1 throughput: population-batched evaluation vs a per-individual loop.

(a) ``ControlTask.evaluate``: all P x E episodes in one NumPy vector env, one
    batched forward pass per step for the whole population.
(b) The loop a plain DEAP user writes: for each individual, reset one reused
    ``gymnasium.make("CartPole-v1")`` env and call ``network.predict`` once per
    step until the episode ends.

Both count the env steps of live episodes only (the batched path also steps
finished episodes, in lockstep, but those steps are not credited to it) and
report env-steps per second, best of ``--repeats`` runs.

    python benchmarks/throughput_cartpole.py --population 256 --episodes 1 4
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import gymnasium
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from evo.seeding import individual_seeds, mix, to_int32_seed  # noqa: E402
from evo.tasks.control import ControlTask  # noqa: E402
from networks.mlp import MLP  # noqa: E402

ENV_ID = "CartPole-v1"


def make_population(network: MLP, population: int, seed: int, scale: float) -> np.ndarray:
    """Genomes from ``network.init_params`` with a fixed seed, weights multiplied by ``scale``."""
    return scale * network.init_params(np.random.default_rng(seed), population)


def run_batched(task: ControlTask, network: MLP, genomes: np.ndarray, seeds: np.ndarray) -> tuple[int, float]:
    """Env steps taken and seconds for one population-batched evaluation."""
    start = time.perf_counter()
    fitness = task.evaluate(network, genomes, seeds, 0)
    seconds = time.perf_counter() - start
    # CartPole pays +1 per live step, so total return is the number of live env steps.
    steps = int(round(float(np.sum(fitness)) * task.episodes))
    return steps, seconds


def run_loop(env: gymnasium.Env, network: MLP, genomes: np.ndarray, seeds: np.ndarray, episodes: int) -> tuple[int, float]:
    """Env steps taken and seconds for the per-individual, per-step loop."""
    steps = 0
    start = time.perf_counter()
    for genome, seed in zip(genomes, seeds):
        for episode in range(episodes):
            obs, _ = env.reset(seed=to_int32_seed(mix(seed, episode)))
            done = False
            while not done:
                action = int(np.argmax(network.predict(genome, obs[None])[0]))
                obs, _, terminated, truncated, _ = env.step(action)
                steps += 1
                done = terminated or truncated
    return steps, time.perf_counter() - start


def best_rate(runs: list[tuple[int, float]]) -> tuple[int, float, float]:
    """(steps, seconds, steps/s) of the fastest run."""
    steps, seconds = min(runs, key=lambda r: r[1])
    return steps, seconds, steps / seconds


def benchmark(population: int, episodes: int, repeats: int, seed: int, scale: float) -> float:
    """Print one comparison for ``episodes`` episodes per policy; return the speed-up."""
    network = MLP((4, 16, 2), activation="tanh", output_activation="identity")
    genomes = make_population(network, population, seed, scale)
    seeds = individual_seeds(seed, 0, population)
    task = ControlTask(ENV_ID, episodes=episodes)

    task.evaluate(network, genomes, seeds, 0)  # warm-up: creates and caches the vector env
    batched = best_rate([run_batched(task, network, genomes, seeds) for _ in range(repeats)])

    env = gymnasium.make(ENV_ID)  # created once and reused, as a careful user would
    loop = best_rate([run_loop(env, network, genomes, seeds, episodes) for _ in range(repeats)])
    env.close()

    n_episodes = population * episodes
    # Lockstep cost is set by the longest episode: every step advances all P x E slots.
    lengths = task.episode_returns(network, genomes, seeds, episodes)
    longest = int(lengths.max())
    efficiency = lengths.sum() / (n_episodes * longest)
    print(f"\n{ENV_ID}, {population} policies of a 4-16-2 MLP, E={episodes} episode(s) each, best of {repeats}")
    print(f"  mean episode length (batched): {batched[0] / n_episodes:8.1f} steps")
    print(f"  mean episode length (loop):    {loop[0] / n_episodes:8.1f} steps")
    print(f"  longest episode (batched): {longest} steps; lockstep efficiency (live / stepped slots): {efficiency:.1%}")
    print(f"  (a) batched ControlTask.evaluate: {batched[0]:8d} steps in {batched[1]:7.3f} s = {batched[2]:12,.0f} env-steps/s")
    print(f"  (b) per-individual loop:          {loop[0]:8d} steps in {loop[1]:7.3f} s = {loop[2]:12,.0f} env-steps/s")
    ratio = batched[2] / loop[2]
    print(f"  speed-up batched/loop: {ratio:.1f}x")
    return ratio


def main(argv: list[str] | None = None) -> None:
    """Run the comparison for each requested episode count."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=256, help="policies per generation (default 256)")
    parser.add_argument("--episodes", type=int, nargs="+", default=[1, 4], help="episodes per policy, one run each (default 1 4)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats, best is kept (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the genomes and the episodes")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplier on the initial weights")
    args = parser.parse_args(argv)
    for episodes in args.episodes:
        benchmark(args.population, episodes, args.repeats, args.seed, args.scale)


if __name__ == "__main__":
    main()
