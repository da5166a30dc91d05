"""Double pole balancing: the NumPy environment of the neuroevolution literature, vectorised over many episodes.

Two poles of half-lengths 0.5 m and 0.05 m (masses 0.1 kg and 0.01 kg) are
hinged side by side on a 1 kg cart on a 4.8 m track; a force of up to
+-10 N pushes the cart. The equations of motion are Wieland's (1991), with
the constants, the pole-hinge friction (2e-6) and the RK4 integration at
0.01 s of the code behind the published NEAT and ESP figures (Stanley &
Miikkulainen 2002; Gomez & Miikkulainen 1999): an action holds for two RK4
steps (0.02 s). The episode fails when the cart leaves +-2.4 m or a pole
leans past +-36 degrees. Every episode starts from the standard state: the
long pole at 0.07 rad (about 4 degrees), everything else 0.

* ``DoublePole-v0`` (Markovian): observations ``[x/4.8, xdot/2, t1/0.52,
  t1dot/2, t2/0.52, t2dot/2]``; reward 1 per step balanced; 100,000 steps
  (the benchmark's success criterion) by default.
* ``DoublePoleNoVel-v0`` (no velocities): observations ``[x/4.8, t1/0.52,
  t2/0.52]``; 1,000 steps by default; the reward sums to the anti-wiggle
  fitness of Gruau, Whitley & Pyeatt (1996) used by ESP and NEAT:
  ``0.1 t / 1000 + 0.9 * 0.75 / sum(|x| + |xdot| + |t1| + |t1dot|)`` over
  the last 100 steps balanced (``t`` steps balanced; the second term only
  once ``t > 100``; the state the episode failed in is not counted), which
  penalises a controller that balances by wiggling the cart.

The action is one value in [-1, 1] (force = 10 N x action). The vector env
(:class:`DoublePoleVectorEnv`) keeps everything an episode needs in
``state (107, N)``: the six physical variables, the step at which the
episode stands in the ring of the last 100 wiggle terms (row 6), and that
ring (rows 7-106); with ``steps`` and ``prev_done`` (NEXT_STEP autoreset,
as gymnasium's CartPole vector env) a control task can narrow a batch to its
running episodes by slicing these arrays. The benchmark's own tests (the
100,000-step test and the 625 start states of the generalisation test) run
the same functions (:mod:`evo.tasks.double_pole`).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

GRAVITY = -9.8
MASS_CART = 1.0
MASS_POLE = (0.1, 0.01)
HALF_LENGTH = (0.5, 0.05)
POLE_FRICTION = 0.000002
FORCE_MAG = 10.0
TAU = 0.01  # one RK4 step; an action holds for two
STEPS_PER_ACTION = 2
TRACK_LIMIT = 2.4
ANGLE_LIMIT = 36.0 * np.pi / 180.0
START_ANGLE = 0.07  # the long pole's starting lean (rad), as in the NEAT and ESP experiments
#: observation scaling of the published experiments: x / 4.8, velocities / 2, angles / 0.52
OBS_SCALE = np.array([4.8, 2.0, 0.52, 2.0, 0.52, 2.0])
WIGGLE_WINDOW = 100
STATE_ROWS = 6 + 1 + WIGGLE_WINDOW


def standard_start(n: int = 1) -> np.ndarray:
    """Physical start states ``(6, n)``: the long pole at 0.07 rad, the rest 0."""
    state = np.zeros((6, n))
    state[2] = START_ANGLE
    return state


_MASS = np.array(MASS_POLE)[:, None]
_HALF = np.array(HALF_LENGTH)[:, None]
_ML = _MASS * _HALF


def derivatives(s: np.ndarray, force: np.ndarray) -> np.ndarray:
    """``d state / dt`` ``(6, N)`` of physical states ``s (6, N)`` under ``force (N,)`` (Wieland's equations).

    The two poles are computed together: rows 2 and 4 are their angles, 3 and 5 their angular velocities.
    """
    angle, angle_dot = s[2::2], s[3::2]  # (2, N)
    cos, sin = np.cos(angle), np.sin(angle)
    gravity = GRAVITY * sin
    friction = (POLE_FRICTION / _ML) * angle_dot
    effective_force = _ML * angle_dot * angle_dot * sin + (0.75 * _MASS) * cos * (friction + gravity)
    effective_mass = _MASS * (1.0 - 0.75 * cos * cos)
    x_acc = (force + effective_force.sum(axis=0)) / (effective_mass.sum(axis=0) + MASS_CART)
    out = np.empty_like(s)
    out[0], out[1] = s[1], x_acc
    out[2::2] = angle_dot
    out[3::2] = (-0.75 / _HALF) * (x_acc * cos + gravity + friction)
    return out


_ML1, _ML2 = HALF_LENGTH[0] * MASS_POLE[0], HALF_LENGTH[1] * MASS_POLE[1]
_FR1, _FR2 = POLE_FRICTION / _ML1, POLE_FRICTION / _ML2
_M1, _M2 = MASS_POLE
_HM1, _HM2 = 0.75 * MASS_POLE[0], 0.75 * MASS_POLE[1]
_A1, _A2 = -0.75 / HALF_LENGTH[0], -0.75 / HALF_LENGTH[1]


def _derivatives_scalar(x_dot: float, t1: float, t1_dot: float, t2: float, t2_dot: float, force: float) -> tuple[float, ...]:
    """:func:`derivatives` of one state in Python floats: the same operations in the same order."""
    c1, s1, c2, s2 = math.cos(t1), math.sin(t1), math.cos(t2), math.sin(t2)
    g1, g2 = GRAVITY * s1, GRAVITY * s2
    f1, f2 = _FR1 * t1_dot, _FR2 * t2_dot
    e1 = _ML1 * t1_dot * t1_dot * s1 + _HM1 * c1 * (f1 + g1)
    e2 = _ML2 * t2_dot * t2_dot * s2 + _HM2 * c2 * (f2 + g2)
    x_acc = (force + (e1 + e2)) / ((_M1 * (1.0 - 0.75 * c1 * c1) + _M2 * (1.0 - 0.75 * c2 * c2)) + MASS_CART)
    return x_dot, x_acc, t1_dot, _A1 * (x_acc * c1 + g1 + f1), t2_dot, _A2 * (x_acc * c2 + g2 + f2)


def _advance_scalar(s: list[float], force: float) -> list[float]:
    """:func:`advance` of one state in Python floats (several times faster on one episode: no per-call NumPy overhead)."""
    half, sixth = 0.5 * TAU, TAU / 6.0
    x, xd, t1, t1d, t2, t2d = s
    for _ in range(STEPS_PER_ACTION):
        a0, a1, a2, a3, a4, a5 = _derivatives_scalar(xd, t1, t1d, t2, t2d, force)
        b0, b1, b2, b3, b4, b5 = _derivatives_scalar(
            xd + half * a1, t1 + half * a2, t1d + half * a3, t2 + half * a4, t2d + half * a5, force
        )
        c0, c1, c2, c3, c4, c5 = _derivatives_scalar(
            xd + half * b1, t1 + half * b2, t1d + half * b3, t2 + half * b4, t2d + half * b5, force
        )
        d0, d1, d2, d3, d4, d5 = _derivatives_scalar(xd + TAU * c1, t1 + TAU * c2, t1d + TAU * c3, t2 + TAU * c4, t2d + TAU * c5, force)
        x = x + sixth * (a0 + 2.0 * b0 + 2.0 * c0 + d0)
        xd = xd + sixth * (a1 + 2.0 * b1 + 2.0 * c1 + d1)
        t1 = t1 + sixth * (a2 + 2.0 * b2 + 2.0 * c2 + d2)
        t1d = t1d + sixth * (a3 + 2.0 * b3 + 2.0 * c3 + d3)
        t2 = t2 + sixth * (a4 + 2.0 * b4 + 2.0 * c4 + d4)
        t2d = t2d + sixth * (a5 + 2.0 * b5 + 2.0 * c5 + d5)
    return [x, xd, t1, t1d, t2, t2d]


_scalar_agrees: bool | None = None


def _scalar_path_agrees() -> bool:
    """Whether this machine's ``math`` and NumPy trigonometry give the same trajectory bit for bit (checked once).

    Only then may one episode take the scalar path: an episode's numbers must
    not depend on how many others share its batch.
    """
    global _scalar_agrees
    if _scalar_agrees is None:
        rng = np.random.default_rng(0)
        s = np.array([[0.3], [-0.5], [0.2], [1.5], [-0.3], [2.0]])
        values = s[:, 0].tolist()
        agrees = True
        for action in rng.uniform(-1.0, 1.0, 200):
            s = _advance_vector(s, np.array([action]))
            values = _advance_scalar(values, FORCE_MAG * float(action))
            agrees = agrees and values == s[:, 0].tolist()
        _scalar_agrees = agrees
    return _scalar_agrees


def advance(s: np.ndarray, action: np.ndarray) -> np.ndarray:
    """Physical states ``(6, N)`` after one action in [-1, 1] held for two RK4 steps of 0.01 s."""
    if s.shape[1] == 1 and _scalar_path_agrees():
        force = FORCE_MAG * min(max(float(np.asarray(action).reshape(-1)[0]), -1.0), 1.0)
        return np.array(_advance_scalar(s[:, 0].tolist(), force))[:, None]
    return _advance_vector(s, action)


def _advance_vector(s: np.ndarray, action: np.ndarray) -> np.ndarray:
    force = FORCE_MAG * np.clip(action, -1.0, 1.0)
    for _ in range(STEPS_PER_ACTION):
        k1 = derivatives(s, force)
        k2 = derivatives(s + 0.5 * TAU * k1, force)
        k3 = derivatives(s + 0.5 * TAU * k2, force)
        k4 = derivatives(s + TAU * k3, force)
        s = s + (TAU / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return s


def failed(s: np.ndarray) -> np.ndarray:
    """Whether the cart left the track or a pole fell past 36 degrees, per state ``(6, N)``."""
    return (np.abs(s[0]) > TRACK_LIMIT) | (np.abs(s[2]) > ANGLE_LIMIT) | (np.abs(s[4]) > ANGLE_LIMIT)


def observe(s: np.ndarray, velocities: bool) -> np.ndarray:
    """Observations ``(N, 6)`` or ``(N, 3)`` (no velocities) of physical states ``(6, N)``, scaled as published."""
    obs = (s / OBS_SCALE[:, None]).T
    return obs if velocities else obs[:, [0, 2, 4]]


class DoublePoleVectorEnv(VectorEnv):
    """``num_envs`` double-pole episodes stepped together in NumPy; see the module docstring."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, velocities: bool = True, reward: str = "steps", max_episode_steps: int = 100_000) -> None:
        if reward not in ("steps", "anti_wiggle"):
            raise ValueError(f"reward = {reward!r}: allowed 'steps', 'anti_wiggle'")
        self.num_envs = int(num_envs)
        self.velocities = bool(velocities)
        self.reward_kind = reward
        self.max_episode_steps = int(max_episode_steps)
        width = 6 if self.velocities else 3
        self.single_observation_space = spaces.Box(-np.inf, np.inf, (width,), np.float64)
        self.observation_space = spaces.Box(-np.inf, np.inf, (self.num_envs, width), np.float64)
        self.single_action_space = spaces.Box(-1.0, 1.0, (1,), np.float64)
        self.action_space = spaces.Box(-1.0, 1.0, (self.num_envs, 1), np.float64)
        self.state = np.zeros((STATE_ROWS, self.num_envs))
        self.steps = np.zeros(self.num_envs, dtype=np.int32)
        self.prev_done = np.zeros(self.num_envs, dtype=np.bool_)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Every episode at the standard start (the start is deterministic; ``seed`` is accepted for the API)."""
        self.state = np.zeros((STATE_ROWS, self.num_envs))
        self.state[:6] = standard_start(self.num_envs)
        self.steps[:] = 0
        self.prev_done[:] = False
        return observe(self.state[:6], self.velocities), {}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """One action per episode; finished episodes restart at the next step with reward 0 (NEXT_STEP autoreset)."""
        actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs)
        physical = advance(self.state[:6], actions)
        self.state[:6] = physical
        self.steps += 1
        terminated = failed(physical)
        truncated = self.steps >= self.max_episode_steps
        reward = (~terminated).astype(np.float64) if self.reward_kind == "steps" else self._anti_wiggle(physical, terminated, truncated)
        restart = self.prev_done
        if restart.any():
            self.state[:, restart] = 0.0
            self.state[:6, restart] = standard_start(int(restart.sum()))
            self.steps[restart] = 0
            reward[restart] = 0.0
            terminated[restart] = False
            truncated[restart] = False
        self.prev_done = terminated | truncated
        return observe(self.state[:6], self.velocities), reward, terminated, truncated, {}

    def _anti_wiggle(self, physical: np.ndarray, terminated: np.ndarray, truncated: np.ndarray) -> np.ndarray:
        """0.1 / 1000 per step balanced, plus at the end of an episode past 100 steps 0.9 * 0.75 / (its last 100 wiggle terms)."""
        # The ring keeps the last 100 *balanced* steps: the failing step's state is not one of them (Gruau's
        # fitness as in the ESP and NEAT code: the 100 steps before the failure).
        live = np.flatnonzero(~terminated)
        slot = self.state[6, live].astype(np.int64)
        self.state[7 + slot, live] = np.abs(physical[:4, live]).sum(axis=0)
        self.state[6, live] = (slot + 1) % WIGGLE_WINDOW
        reward = np.where(terminated, 0.0, 0.1 / 1000.0)
        ended = (terminated | truncated) & (self.steps > WIGGLE_WINDOW)
        if ended.any():
            balanced = self.steps[ended] - terminated[ended]  # the failing step does not count as balanced
            if (balanced > WIGGLE_WINDOW).any():
                wiggle = self.state[7:, ended].sum(axis=0)
                reward[ended] += np.where(balanced > WIGGLE_WINDOW, 0.9 * 0.75 / np.maximum(wiggle, 1e-12), 0.0)
        return reward


class DoublePoleEnv(gymnasium.Env):
    """One double-pole episode (the single-env API; the vector env with one slot underneath)."""

    metadata = {"render_modes": []}

    def __init__(self, velocities: bool = True, reward: str = "steps", max_steps: int | None = None) -> None:
        # The anti-wiggle bonus is paid at the episode's end, so this env ends it itself at max_steps (default:
        # the registered limit; gymnasium's TimeLimit wrapper, set to the same, then never cuts first).
        limit = max_steps or (100_000 if velocities else 1_000)
        self._core = DoublePoleVectorEnv(1, velocities, reward, max_episode_steps=limit)
        self.observation_space = self._core.single_observation_space
        self.action_space = self._core.single_action_space

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """The standard start."""
        super().reset(seed=seed)
        obs, info = self._core.reset()
        return obs[0], info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        """One action in [-1, 1]."""
        obs, reward, terminated, truncated, info = self._core.step(np.asarray(action, dtype=np.float64).reshape(1))
        return obs[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), info
