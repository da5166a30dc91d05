"""CartPole for a whole population at once: gymnasium's CartPole-v1 physics in one fused, allocation-light NumPy step.

A control task steps P x E CartPole episodes in lockstep. Gymnasium's own
NumPy vector env (``CartPoleVectorEnv``) costs tens of microseconds per call
however few episodes remain (it checks the action space, draws autoreset
states, stacks and converts its state every step), and after the first 20
steps of a random population only a handful do remain. :class:`CartPoleBatch`
does the same arithmetic with every temporary preallocated: about thirty
ufunc calls per step, each writing into a buffer, and no autoreset.

Bit-identical to gymnasium. The constants are gymnasium's, computed by the
same expressions (``12 * 2 * math.pi / 360``, ``masspole + masscart``); each
step is gymnasium's Euler step, operation for operation in the same order
(``(pml * theta_dot**2) * sin``, ``((pml * thetaacc) * cos) / total_mass``, ...),
so every intermediate rounds as it does there; the episode terminates when
``|x| > 2.4`` or ``|theta| > 12 degrees`` (``|v| > t`` is exactly
``v < -t or v > t``, NaN included), and observations are the float64 state
rounded to float32, as the env emits it. ``tests/test_cartpole_fused.py``
checks observations, flags and episode lengths step by step against
``gymnasium.make("CartPole-v1")`` reset with ``reset(seed=...)``
(:func:`gymnasium_reset_states` draws the same initial states).

No autoreset. An episode that ends is *retired*: its slot stays in the batch
(the arrays keep their shape until the caller narrows them with
:meth:`CartPoleBatch.keep`) and goes on being stepped, but its state is parked
at the upright rest state and it never reports termination again, so
``terminated`` lists exactly the episodes that ended on this step. Every
episode of a batch starts together, so the time limit is one counter, not one
per slot: all episodes still running at step ``max_steps`` are truncated
together.
"""

from __future__ import annotations

import math

import numpy as np

# gymnasium.envs.classic_control.cartpole.CartPoleEnv.__init__, the same expressions
GRAVITY = 9.8
MASS_CART = 1.0
MASS_POLE = 0.1
TOTAL_MASS = MASS_POLE + MASS_CART
LENGTH = 0.5  # half the pole's length
POLEMASS_LENGTH = MASS_POLE * LENGTH
FORCE_MAG = 10.0
TAU = 0.02  # seconds per step (Euler integration)
THETA_THRESHOLD = 12 * 2 * math.pi / 360
X_THRESHOLD = 2.4
#: initial states are uniform in [RESET_LOW, RESET_HIGH) in each of the four variables
RESET_LOW, RESET_HIGH = -0.05, 0.05
#: every step of a running episode pays this (the termination step included)
REWARD = 1.0
STATE_DIM = 4

# force by action (0: push left, 1: push right): gymnasium's sign(action - 0.5) * force_mag, exactly
_FORCES = np.array([-FORCE_MAG, FORCE_MAG])
_FOUR_THIRDS = 4.0 / 3.0
_CONSTANTS = (POLEMASS_LENGTH, TOTAL_MASS, GRAVITY, MASS_POLE, _FOUR_THIRDS, LENGTH)


def gymnasium_reset_states(seeds: np.ndarray | list[int]) -> np.ndarray:
    """Initial states ``(N, 4)`` float64: those of ``CartPole-v1`` after ``reset(seed=seeds[i])``, bit for bit.

    Gymnasium seeds a PCG64 generator from ``SeedSequence(seed)`` and draws
    ``uniform(-0.05, 0.05, size=4)`` from it. (The control task draws its initial
    states from its per-episode keys instead; see ``evo.tasks.control_envs``.)
    """
    out = np.empty((len(seeds), STATE_DIM))
    for i, seed in enumerate(seeds):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed))))
        out[i] = rng.uniform(low=RESET_LOW, high=RESET_HIGH, size=(STATE_DIM,))
    return out


class CartPoleBatch:
    """``N`` CartPole episodes stepped together from initial states ``(N, 4)`` (``x, x_dot, theta, theta_dot``).

    ``observations`` ``(N, 4)`` float64 holds what the env would emit (the state
    rounded to float32), rewritten in place by every :meth:`step`. ``live``
    marks the episodes still running; ``elapsed`` counts the steps taken.
    """

    def __init__(self, states: np.ndarray, max_steps: int = 500) -> None:
        states = np.asarray(states, dtype=np.float64)
        if states.ndim != 2 or states.shape[1] != STATE_DIM:
            raise ValueError(f"expected initial states of shape (N, {STATE_DIM}), got {states.shape}")
        if int(max_steps) < 1:
            raise ValueError(f"max_steps = {max_steps!r}: must be an integer >= 1")
        self.max_steps = int(max_steps)
        self.elapsed = 0
        self._allocate(np.array(states, order="C"), np.ones(len(states), dtype=np.bool_))
        self._observe()

    def __len__(self) -> int:
        return len(self.state)

    @property
    def truncated(self) -> bool:
        """Whether the time limit has been reached: every episode still live is truncated together."""
        return self.elapsed >= self.max_steps

    def _allocate(self, state: np.ndarray, live: np.ndarray) -> None:
        """Take ``state (N, 4)`` and ``live (N,)``, and make every buffer a step writes into, for ``N`` slots."""
        n = len(state)
        self.state = state
        self.live = live
        # Per-slot termination limits on |x| and |theta|; +inf for a retired slot, which then never terminates.
        self.limits = np.empty((n, 2))
        self.limits[:] = (X_THRESHOLD, THETA_THRESHOLD)
        self.limits[~live] = np.inf
        self.observations = np.empty((n, STATE_DIM))
        self._obs32 = np.empty((n, STATE_DIM), dtype=np.float32)
        # The state's time derivative (x_dot, xacc, theta_dot, thetaacc), then tau times it.
        self._rate = np.empty((n, STATE_DIM))
        self._force, self._cos, self._sin, self._temp, self._num, self._den, self._scratch = np.empty((7, n))
        self._beyond = np.empty((n, 2))
        self._over = np.empty((n, 2), dtype=np.bool_)
        self.terminated = np.zeros(n, dtype=np.bool_)
        #: how many episodes ended on the last step
        self.n_terminated = 0
        self._park_terminated = False
        # Views, taken once per allocation (a view costs as much as a small ufunc call).
        self._theta, self._theta_dot = state[:, 2], state[:, 3]
        self._velocities, self._positions = state[:, 1::2], state[:, 0::2]
        self._rate_positions, self._xacc, self._thetaacc = self._rate[:, 0::2], self._rate[:, 1], self._rate[:, 3]
        self._over_x, self._over_theta = self._over[:, 0], self._over[:, 1]
        # The constants as arrays of the batch's shape: a ufunc call with a Python float converts it every time.
        constants = np.empty((len(_CONSTANTS), n))
        constants[:] = np.array(_CONSTANTS)[:, None]
        self._constants = tuple(constants)
        self._tau = np.full((n, STATE_DIM), TAU)

    def _observe(self) -> None:
        # float64 -> float32 -> float64: what the network sees is what the env would emit.
        self._obs32[...] = self.state
        self.observations[...] = self._obs32

    def step(self, actions: np.ndarray) -> np.ndarray:
        """Advance every slot by one action ``(N,)`` (0: push left, 1: push right); return ``terminated (N,)``.

        ``terminated`` (a buffer, valid until the next step) marks the live episodes
        that ended on this step; they are retired (their final state stays in
        ``state`` until the next step parks it). Observations are updated in place.
        """
        # The names of gymnasium's CartPoleVectorEnv.step; each line is one of its operations, in its order.
        if self._park_terminated:
            self._park_terminated = False
            self.state[self.terminated] = 0.0  # those that ended on the previous step, now at rest
        theta, theta_dot, force, cos, sin = self._theta, self._theta_dot, self._force, self._cos, self._sin
        temp, num, den, scratch = self._temp, self._num, self._den, self._scratch
        pml, total_mass, gravity, mass_pole, four_thirds, length = self._constants
        # The ndarray method, no Python wrapper; "clip" writes straight into ``force`` (actions are 0 or 1).
        _FORCES.take(actions, None, force, "clip")
        np.cos(theta, cos)
        np.sin(theta, sin)
        # temp = (force + polemass_length * theta_dot**2 * sin) / total_mass
        np.multiply(theta_dot, theta_dot, scratch)
        np.multiply(pml, scratch, scratch)
        np.multiply(scratch, sin, scratch)
        np.add(force, scratch, temp)
        np.divide(temp, total_mass, temp)
        # thetaacc = (gravity * sin - cos * temp) / (length * (4/3 - masspole * cos**2 / total_mass))
        np.multiply(gravity, sin, num)
        np.multiply(cos, temp, scratch)
        np.subtract(num, scratch, num)
        np.multiply(cos, cos, den)
        np.multiply(mass_pole, den, den)
        np.divide(den, total_mass, den)
        np.subtract(four_thirds, den, den)
        np.multiply(length, den, den)
        np.divide(num, den, self._thetaacc)
        # xacc = temp - polemass_length * thetaacc * cos / total_mass
        np.multiply(pml, self._thetaacc, scratch)
        np.multiply(scratch, cos, scratch)
        np.divide(scratch, total_mass, scratch)
        np.subtract(temp, scratch, self._xacc)
        # Euler: x += tau * x_dot, x_dot += tau * xacc, theta += tau * theta_dot, theta_dot += tau * thetaacc
        self._rate_positions[...] = self._velocities
        np.multiply(self._tau, self._rate, self._rate)
        np.add(self.state, self._rate, self.state)
        # terminated: |x| > 2.4 or |theta| > 12 degrees (a retired slot's limits are +inf)
        np.abs(self._positions, self._beyond)
        np.greater(self._beyond, self.limits, self._over)
        np.logical_or(self._over_x, self._over_theta, self.terminated)
        self.elapsed += 1
        self._obs32[...] = self.state  # _observe, inlined
        self.observations[...] = self._obs32
        self.n_terminated = int(np.count_nonzero(self.terminated))
        if self.n_terminated:
            # Retired now; parked at rest at the start of the next step, so their final state stays readable till then.
            self.live[self.terminated] = False
            self.limits[self.terminated] = np.inf
            self._park_terminated = True
        return self.terminated

    def retire(self, slots: np.ndarray) -> None:
        """End the episodes in ``slots`` (a mask or indices): parked at rest, never to terminate again."""
        self.live[slots] = False
        self.limits[slots] = np.inf
        # At rest their numbers stay small however long the others run (a fallen pole, stepped on, would
        # keep gaining speed under Euler integration).
        self.state[slots] = 0.0

    def park_retired(self) -> None:
        """Put every retired slot back at rest (a caller's remedy when one went non-finite after a long drift)."""
        self.state[~self.live] = 0.0

    def keep(self, slots: np.ndarray) -> None:
        """Narrow the batch to ``slots`` (indices, in order): their state and liveness move to smaller buffers."""
        if self._park_terminated:
            self.state[self.terminated] = 0.0
        self._allocate(self.state[slots], self.live[slots])
        self._observe()
