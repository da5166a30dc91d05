"""Environments the project ships, registered with gymnasium on import (``gymnasium.make("DoublePole-v0")``).

* ``DoublePole-v0``, ``DoublePoleNoVel-v0``: double pole balancing with and
  without velocities (:mod:`evo.envs.double_pole`), each with a NumPy vector
  entry point (``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``).

And, not registered (it stands in for gymnasium's own ``CartPole-v0/v1`` inside
the control task): :mod:`evo.envs.cartpole`, CartPole stepped for a whole
population in one fused NumPy step, bit-identical to gymnasium's.
"""

from __future__ import annotations

import gymnasium

from evo.envs import double_pole

#: id -> (kwargs, registered step limit)
DOUBLE_POLE_IDS = {
    "DoublePole-v0": ({"velocities": True, "reward": "steps"}, 100_000),
    "DoublePoleNoVel-v0": ({"velocities": False, "reward": "anti_wiggle"}, 1_000),
}

for _id, (_kwargs, _limit) in DOUBLE_POLE_IDS.items():
    if _id not in gymnasium.envs.registry:
        gymnasium.register(
            id=_id,
            entry_point="evo.envs.double_pole:DoublePoleEnv",
            vector_entry_point="evo.envs.double_pole:DoublePoleVectorEnv",
            max_episode_steps=_limit,
            kwargs=dict(_kwargs),
        )

__all__ = ["DOUBLE_POLE_IDS", "double_pole"]
