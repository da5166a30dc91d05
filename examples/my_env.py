"""A user's own gymnasium environment, for `[task] type = "control"`.

PointToGoal: a point on a line with a velocity is pushed left, not at all, or
right (Discrete(3)) and should come to rest on a goal drawn at reset. The
observation is (position, velocity, goal); the reward is minus the distance
to the goal at each step. Either name the class in a config,

    env_id = "my_env:PointToGoal"           # my_env.py beside the config
    max_steps = 100                          # an unregistered class has no time limit of its own

or let this module register an id and import it:

    import = ["my_env"]
    env_id = "PointToGoal-v0"
"""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces


class PointToGoal(gymnasium.Env):
    """Bring a point with inertia to rest on a random goal in [-1, 1]."""

    def __init__(self, friction: float = 0.1) -> None:
        self.friction = float(friction)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float64)
        self.action_space = spaces.Discrete(3)
        self.state = np.zeros(3)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        goal = self.np_random.uniform(-1.0, 1.0)
        self.state = np.array([0.0, 0.0, goal])
        return self.state.copy(), {}

    def step(self, action):
        position, velocity, goal = self.state
        velocity = (1.0 - self.friction) * velocity + 0.02 * (int(action) - 1)
        position = position + velocity
        self.state = np.array([position, velocity, goal])
        return self.state.copy(), -abs(position - goal), False, False, {}


if "PointToGoal-v0" not in gymnasium.envs.registry:
    gymnasium.register(id="PointToGoal-v0", entry_point=PointToGoal, max_episode_steps=100)
