"""CartPole-v1 throughput: population-batched evaluation vs a per-individual loop.

Two populations of ``--population`` (256) policies of a 4-16-2 MLP, each run
with E = 1 and E = 4 episodes per policy:

1. **random init**: genomes straight from ``network.init_params``. Most fail
   within 10-20 steps, a few per cent balance for all 500: a generation-0
   population, the hardest case for lockstep stepping.
2. **mid-evolution**: a competent balancing controller (hidden unit 0 computes
   ``0.01 x + 0.1 x_dot + theta + 0.5 theta_dot``, output 1 "push right"
   copies it) plus Gaussian noise of scale ``--noise`` on every weight, so
   episodes are long and varied, as in a population that has started to learn.

For each, four ways to score the population:

(f) ``ControlTask.evaluate`` as it runs by default: all P x E episodes in our
    fused NumPy CartPole step (``evo.envs.cartpole.CartPoleBatch``), one
    batched forward pass per step, the batch compacted to the running
    individuals as episodes end.
(a) the same in gymnasium's NumPy vector env (``fused=False``).
(a0) (a) with ``compaction=False`` (the fixed-shape lockstep), for reference.
(b) the loop a plain DEAP user writes: for each individual, reset one reused
    ``gymnasium.make("CartPole-v1")`` env and call ``network.predict`` once per
    step until the episode ends.

(f), (a) and (a0) give the same fitness bit for bit (checked here too). All
count the env steps of live episodes only (the batched paths also step
finished slots, but those steps are not credited to them) and report
env-steps per second, best of ``--repeats`` runs. The target is (f) >= 20x (b).

``--profile`` then prints where the time of one fused evaluation goes (cProfile).

    python benchmarks/throughput_cartpole.py --population 256 --episodes 1 4
    python benchmarks/throughput_cartpole.py --scenario random --episodes 1 --repeats 2   # quicker
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time

import gymnasium
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from evo.envs.cartpole import CartPoleBatch  # noqa: E402
from evo.seeding import individual_seeds, mix, to_int32_seed  # noqa: E402
from evo.tasks.control import ControlTask  # noqa: E402
from networks.mlp import MLP  # noqa: E402

ENV_ID = "CartPole-v1"
TARGET = 20.0
NETWORK = MLP((4, 16, 2), activation="tanh", output_activation="identity")


def random_population(network: MLP, population: int, seed: int) -> np.ndarray:
    """Genomes from ``network.init_params`` with a fixed seed (a generation-0 population)."""
    return network.init_params(np.random.default_rng(seed), population)


def balancing_genome(network: MLP) -> np.ndarray:
    """A 4-H-2 genome that balances CartPole: push right when 0.01 x + 0.1 x_dot + theta + 0.5 theta_dot > 0."""
    n_in, hidden = network.shapes[0]
    genome = np.zeros(network.n_params)
    # W1 is (4 x H) row-major: hidden unit 0 sits at flat indices 0, H, 2H, 3H.
    genome[[0, hidden, 2 * hidden, 3 * hidden]] = [0.01, 0.1, 1.0, 0.5]
    # W2 is (H x 2) row-major from offsets[1]: (unit 0 -> output 1) is its index 1.
    # tanh keeps the sign, so argmax picks "right" exactly when the linear form is positive.
    genome[network.offsets[1] + 1] = 1.0
    return genome


def mid_evolution_population(network: MLP, population: int, seed: int, noise: float) -> np.ndarray:
    """The balancing genome plus Gaussian noise of scale ``noise`` on every parameter."""
    rng = np.random.default_rng(seed)
    return balancing_genome(network)[None, :] + rng.normal(0.0, noise, size=(population, network.n_params))


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


def vector_step_floor(bursts: int = 20, steps: int = 200) -> float:
    """Seconds of one gymnasium ``CartPoleVectorEnv.step`` on 8 envs: its fixed cost, ours excluded.

    Best of many short bursts, so another process on the machine does not inflate it.
    """
    env = gymnasium.make_vec(ENV_ID, num_envs=8, vectorization_mode="vector_entry_point")
    env.reset(seed=0)
    actions = np.zeros(8, dtype=np.int64)
    best = np.inf
    for _ in range(bursts):
        start = time.perf_counter()
        for _ in range(steps):
            env.step(actions)
        best = min(best, (time.perf_counter() - start) / steps)
    env.close()
    return best


def fused_step_floor(bursts: int = 20, steps: int = 200) -> float:
    """Seconds of one fused ``CartPoleBatch.step`` on 8 episodes (best of many short bursts)."""
    env = CartPoleBatch(np.zeros((8, 4)), max_steps=bursts * steps + 1)
    env.retire(np.ones(8, dtype=bool))  # stepped on at rest, as retired slots are
    actions = np.zeros(8, dtype=np.int64)
    best = np.inf
    for _ in range(bursts):
        start = time.perf_counter()
        for _ in range(steps):
            env.step(actions)
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def benchmark(label: str, genomes: np.ndarray, episodes: int, repeats: int, seed: int, step_floor: float, profile: bool) -> dict:
    """Print one comparison for ``episodes`` episodes per policy; return its figures."""
    network = NETWORK
    population = len(genomes)
    seeds = individual_seeds(seed, 0, population)
    fused = ControlTask(ENV_ID, episodes=episodes)
    task = ControlTask(ENV_ID, episodes=episodes, fused=False)
    fixed = ControlTask(ENV_ID, episodes=episodes, compaction=False, fused=False)
    assert fused.fused_env is not None and task.fused_env is None

    env = gymnasium.make(ENV_ID)  # created once and reused, as a careful user would
    # Warm-up (creates and caches the vector envs), and the three batched paths agree bit for bit.
    scores = [t.evaluate(network, genomes, seeds, 0) for t in (fused, task, fixed)]
    if not (np.array_equal(scores[0], scores[1]) and np.array_equal(scores[0], scores[2])):
        raise SystemExit("the fused, vector and fixed-shape paths disagree: a bug")
    runs: dict[str, list[tuple[int, float]]] = {"fused": [], "batched": [], "lockstep": [], "loop": []}
    for _ in range(repeats):  # interleaved, so all four see the same machine load
        runs["fused"].append(run_batched(fused, network, genomes, seeds))
        runs["batched"].append(run_batched(task, network, genomes, seeds))
        runs["lockstep"].append(run_batched(fixed, network, genomes, seeds))
        runs["loop"].append(run_loop(env, network, genomes, seeds, episodes))
    env.close()
    fast, batched, lockstep, loop = (best_rate(runs[k]) for k in ("fused", "batched", "lockstep", "loop"))

    n_episodes = population * episodes
    lengths = task.episode_returns(network, genomes, seeds, episodes)
    longest = int(lengths.max())
    efficiency = lengths.sum() / (n_episodes * longest)
    ratio = fast[2] / loop[2]
    # Lockstep cannot take fewer steps than the longest episode, and each costs at least the
    # fused step's own fixed time: that bounds the speed-up whatever we do around it.
    ceiling = loop[1] / (longest * step_floor) * (fast[0] / loop[0])

    print(f"\n[{label}] {ENV_ID}, {population} policies of a 4-16-2 MLP, E={episodes} episode(s) each, best of {repeats}")
    print(f"  episode length (batched): mean {batched[0] / n_episodes:6.1f}, median {np.median(lengths):5.0f}, longest {longest} steps")
    print(f"  mean episode length (loop): {loop[0] / n_episodes:6.1f} steps")
    print(f"  fixed-shape lockstep efficiency (live / stepped slots): {efficiency:.1%}")
    print(f"  (f)  fused ControlTask.evaluate:    {fast[0]:8d} steps in {fast[1]:7.3f} s = {fast[2]:12,.0f} env-steps/s")
    print(f"  (a)  same, gymnasium vector env:    {batched[0]:8d} steps in {batched[1]:7.3f} s = {batched[2]:12,.0f} env-steps/s")
    print(f"  (a0) same, compaction off:          {lockstep[0]:8d} steps in {lockstep[1]:7.3f} s = {lockstep[2]:12,.0f} env-steps/s")
    print(f"  (b)  per-individual loop:           {loop[0]:8d} steps in {loop[1]:7.3f} s = {loop[2]:12,.0f} env-steps/s")
    print(
        f"  speed-up (f)/(b): {ratio:.1f}x   [(a)/(b): {batched[2] / loop[2]:.1f}x; (a0)/(b): {lockstep[2] / loop[2]:.1f}x; "
        f"fused step gains {fast[2] / batched[2]:.1f}x; compaction gains {batched[2] / lockstep[2]:.1f}x]"
    )
    if ratio >= TARGET:
        verdict = f"MEETS the {TARGET:.0f}x target ({ratio:.1f}x)"
    elif ceiling < TARGET:
        verdict = (
            f"MISSES the {TARGET:.0f}x target ({ratio:.1f}x): {longest} lockstep steps x "
            f"{step_floor * 1e6:.0f} us per fused step (its own fixed cost) caps the speed-up near {ceiling:.0f}x"
        )
    else:
        verdict = (
            f"MISSES the {TARGET:.0f}x target ({ratio:.1f}x), below the ~{ceiling:.0f}x the fused step's own cost "
            "would allow: the forward pass and bookkeeping, or other load on the machine (rerun to check)"
        )
    print(f"  verdict [{label}, E={episodes}]: {verdict}")
    if profile:
        profiler = cProfile.Profile()
        profiler.runcall(fused.evaluate, network, genomes, seeds, 0)
        print(f"  profile of one fused evaluation [{label}, E={episodes}] (top 12 by own time):")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(12)
    return {
        "label": label,
        "episodes": episodes,
        "fused": fast[2],
        "batched": batched[2],
        "loop": loop[2],
        "ratio": ratio,
        "vector_ratio": batched[2] / loop[2],
        "ceiling": ceiling,
    }


def main(argv: list[str] | None = None) -> None:
    """Run both scenarios for each requested episode count, then a summary."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=256, help="policies per generation (default 256)")
    parser.add_argument("--episodes", type=int, nargs="+", default=[1, 4], help="episodes per policy, one run each (default 1 4)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats, best is kept (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the genomes and the episodes")
    parser.add_argument("--noise", type=float, default=0.1, help="noise scale of the mid-evolution population (default 0.1)")
    parser.add_argument("--scenario", choices=["random", "mid", "both"], default="both", help="which population(s) to run (default both)")
    parser.add_argument("--profile", action="store_true", help="after each comparison, profile one fused evaluation")
    args = parser.parse_args(argv)

    print(f"load average (uptime): {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    vector_floor = vector_step_floor()
    step_floor = fused_step_floor()
    print(f"gymnasium CartPoleVectorEnv.step on 8 envs, alone: {vector_floor * 1e6:.1f} us per call")
    print(f"fused CartPoleBatch.step on 8 episodes, alone:     {step_floor * 1e6:.1f} us per call")
    scenarios = []
    if args.scenario in ("random", "both"):
        scenarios.append(("random init", random_population(NETWORK, args.population, args.seed)))
    if args.scenario in ("mid", "both"):
        label = f"mid-evolution, noise {args.noise:g}"
        scenarios.append((label, mid_evolution_population(NETWORK, args.population, args.seed, args.noise)))
    results = [
        benchmark(label, genomes, episodes, args.repeats, args.seed, step_floor, args.profile)
        for label, genomes in scenarios
        for episodes in args.episodes
    ]

    print(f"\nSummary (env-steps/s, best of {args.repeats}; target (f)/(b) >= {TARGET:.0f}x)")
    for r in results:
        status = "meets" if r["ratio"] >= TARGET else f"misses (fused-step ceiling ~{r['ceiling']:.0f}x)"
        print(
            f"  {r['label']:<26} E={r['episodes']}: fused {r['fused']:11,.0f}  vector {r['batched']:11,.0f}  "
            f"loop {r['loop']:8,.0f}  (f)/(b) {r['ratio']:5.1f}x  (a)/(b) {r['vector_ratio']:5.1f}x  {status}"
        )
    print(f"load average at the end (uptime): {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
