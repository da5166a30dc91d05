"""Double pole balancing as a control task, with the benchmark's own tests (:mod:`evo.envs.double_pole`).

Fitness is the control task's: the episode return of ``DoublePole-v0``
(steps balanced, up to 100,000) or ``DoublePoleNoVel-v0`` (the anti-wiggle
fitness over 1,000 steps). :meth:`DoublePoleTask.test` adds the figures
methods are compared by (Gomez & Miikkulainen 1999; Stanley & Miikkulainen
2002; Gomez, Schmidhuber & Miikkulainen 2008):

* ``test_balanced_steps``: steps balanced from the standard start, up to
  ``long_steps`` (100,000);
* ``test_generalization``: of the 625 start states of Gruau et al. (1996)
  (cart position, cart velocity, long-pole angle and its velocity each at 5
  points of their range: 0.05, 0.25, 0.5, 0.75, 0.95 of +-2.16 m, +-1.35 m/s,
  +-3.6 degrees, +-8.6 degrees/s; the short pole upright), how many the
  network balances for 1,000 steps.

:meth:`DoublePoleTask.solved` is the benchmark's success criterion: balanced
100,000 steps, and for the no-velocity variant also at least 200 of the 625
generalisation starts.
"""

from __future__ import annotations

import itertools

import numpy as np

from evo.envs import DOUBLE_POLE_IDS
from evo.envs.double_pole import advance, failed, observe, standard_start
from evo.tasks.control import ControlTask
from networks.stack import bind_genomes

GENERALIZATION_POINTS = (0.05, 0.25, 0.5, 0.75, 0.95)
#: (scale, offset) of x, xdot, theta1, theta1dot in the generalisation test
GENERALIZATION_RANGES = ((4.32, -2.16), (2.70, -1.35), (0.12566304, -0.06283152), (0.30019504, -0.15009752))
GENERALIZATION_STEPS = 1_000
GENERALIZATION_TO_PASS = 200
LONG_STEPS = 100_000


def generalization_starts() -> np.ndarray:
    """The 625 physical start states ``(6, 625)`` of the generalisation test."""
    grid = np.array(list(itertools.product(GENERALIZATION_POINTS, repeat=4))).T  # (4, 625)
    starts = np.zeros((6, grid.shape[1]))
    for row, (scale, offset) in enumerate(GENERALIZATION_RANGES):
        starts[row] = grid[row] * scale + offset
    return starts


class DoublePoleTask(ControlTask):
    """A double-pole control task whose test also runs the 100,000-step and generalisation tests."""

    baseline = "policy_gradient_double_pole"

    def __init__(self, env_id: str, long_steps: int = LONG_STEPS, **kwargs) -> None:
        if env_id not in DOUBLE_POLE_IDS:
            raise ValueError(f"env_id = {env_id!r}: a double-pole task needs one of {sorted(DOUBLE_POLE_IDS)}")
        super().__init__(env_id, **kwargs)
        self.velocities = bool(DOUBLE_POLE_IDS[env_id][0]["velocities"])
        self.long_steps = int(long_steps)

    def balance(self, network, genome: np.ndarray, starts: np.ndarray, max_steps: int) -> np.ndarray:
        """Steps balanced ``(N,)`` by one genome from each physical start ``(6, N)``, all in lockstep, its state per episode."""
        policy = bind_genomes(network, np.asarray(genome, dtype=np.float64)[None])
        s = np.array(starts, dtype=np.float64)
        balanced = np.zeros(s.shape[1], dtype=np.int64)
        alive = np.ones(s.shape[1], dtype=bool)
        for _ in range(max_steps):
            out = policy.forward(self._observed(observe(s, self.velocities)[None]))[0]
            if not np.all(np.isfinite(out[alive])):
                alive &= np.all(np.isfinite(out), axis=1)
            moved = advance(s, self._actions(np.nan_to_num(out)).reshape(-1))
            alive &= ~failed(moved)
            s = np.where(alive, moved, s)  # fallen poles stay where they fell
            balanced += alive
            if not alive.any():
                break
        return balanced

    def generalization(self, network, genome: np.ndarray) -> dict[str, int]:
        """The 625-start score: of Gruau's start states, how many the genome balances for 1,000 steps."""
        held = self.balance(network, genome, generalization_starts(), GENERALIZATION_STEPS)
        return {"test_generalization": int(np.count_nonzero(held >= GENERALIZATION_STEPS)), "test_generalization_starts": int(held.size)}

    def benchmark(self, network, genome: np.ndarray, generalization: bool = True) -> dict[str, int]:
        """Steps balanced from the standard start (up to ``long_steps``) and, with ``generalization``, the 625-start score."""
        figures = {"test_balanced_steps": int(self.balance(network, genome, standard_start(1), self.long_steps)[0])}
        return {**figures, **self.generalization(network, genome)} if generalization else figures

    def solved(self, network, genome: np.ndarray) -> tuple[bool, dict[str, int]]:
        """The benchmark's success criterion (see the module docstring) and the figures it read.

        Without velocities the 625 short episodes (run together) go first: they cost a fraction of the one
        100,000-step episode, and most candidates fail them; the long test runs only for those that pass.
        """
        if self.velocities:
            figures = self.benchmark(network, genome, generalization=False)
            return figures["test_balanced_steps"] >= self.long_steps, figures
        figures = self.generalization(network, genome)
        if figures["test_generalization"] < GENERALIZATION_TO_PASS:
            return False, figures
        figures = {**self.benchmark(network, genome, generalization=False), **figures}
        return figures["test_balanced_steps"] >= self.long_steps, figures

    def test(self, network, genome: np.ndarray, seed: int) -> dict[str, float]:
        """The control task's figures, plus the 100,000-step and generalisation tests."""
        return {**super().test(network, genome, seed), **self.benchmark(network, genome)}

    def describe(self) -> dict:
        """The control task's description and the benchmark's test settings."""
        return {
            **super().describe(),
            "long_steps": self.long_steps,
            "generalization": {"starts": 625, "steps": GENERALIZATION_STEPS, "to_pass": GENERALIZATION_TO_PASS},
        }
