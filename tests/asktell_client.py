"""An ask/tell client of a study, as its own process: XOR fitness, as `evo run` computes it.

    python -m tests.asktell_client SERVER TOKEN STUDY_ID CLIENT_ID [--count N] [--die-after-asks K]

``--die-after-asks K``: after the K-th ask that returned trials, print their ids
and SIGKILL itself without telling them (a client dying mid-generation).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import numpy as np

from evo.client import Client, Study, Trial
from evo.tasks.boolean import ParityTask
from networks import network_from_description


def fitness_of(task: ParityTask, trials: list[Trial]) -> np.ndarray:
    """The fitness `evo run`'s evaluators give these genomes: the task's evaluate with the same seeds."""
    network = network_from_description(trials[0].network or {})
    genomes = np.stack([t.genome for t in trials])
    seeds = np.array([t.seed for t in trials], dtype=np.uint64)
    return np.asarray(task.evaluate(network, genomes, seeds, trials[0].generation_seed), dtype=np.float64)


def work(study: Study, count: int, die_after_asks: int | None = None) -> int:
    """Ask, evaluate, tell until the study is done; returns the trials told."""
    task = ParityTask(bits=2)
    told = asks = 0
    while True:
        trials = study.ask(count)
        if study.done:
            return told
        if not trials:
            continue
        asks += 1
        if die_after_asks is not None and asks >= die_after_asks:
            print("dying with", " ".join(t.id for t in trials), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
        by_generation: dict[int, list[Trial]] = {}
        for trial in trials:
            by_generation.setdefault(trial.generation, []).append(trial)
        for group in by_generation.values():
            study.tell(group, fitness_of(task, group))
            told += len(group)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("server")
    parser.add_argument("token")
    parser.add_argument("study_id")
    parser.add_argument("client_id")
    parser.add_argument("--count", type=int, default=4)
    parser.add_argument("--die-after-asks", type=int, default=None)
    args = parser.parse_args(argv)
    with Client(args.server, args.token) as client:
        told = work(client.study(args.study_id, args.client_id), args.count, args.die_after_asks)
    print(f"told {told}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
