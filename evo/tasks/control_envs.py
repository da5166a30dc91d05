"""Gymnasium environments for the control tasks: per-process pools and per-episode initial states.

Ray workers reuse their processes across tasks, and creating hundreds of envs
per chunk would otherwise dominate the run time, so single envs and NumPy
vector envs are cached per process, keyed by the task's configuration.
Episode ``e`` of individual ``i`` is keyed ``mix(seeds[i], e)``
(:func:`episode_keys`); the vector path draws its initial states from those
keys (:func:`vector_initial_states`), never from a generator the batch shares.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import gymnasium
import numpy as np

from evo.envs import DOUBLE_POLE_IDS, double_pole
from evo.envs.cartpole import CartPoleBatch
from evo.seeding import mix, uniform_from_keys
from evo.tasks.user_code import import_module, import_object, split_reference

# Envs whose NumPy vector entry point we know how to seed per episode:
# id -> (state dimension, low, high) of the uniform initial state, the same
# distribution the env's own reset uses (low = high: a fixed start).
VECTOR_INITIAL_STATE: dict[str, tuple[int, Any, Any]] = {
    "CartPole-v0": (4, -0.05, 0.05),
    "CartPole-v1": (4, -0.05, 0.05),
}
for _id in DOUBLE_POLE_IDS:
    _start = np.zeros(double_pole.STATE_ROWS)
    _start[:6] = double_pole.standard_start(1)[:, 0]
    VECTOR_INITIAL_STATE[_id] = (double_pole.STATE_ROWS, _start, _start)


# Envs with a fused stepper (one preallocated NumPy step for the whole batch, no autoreset; see
# evo.envs.cartpole): id -> (its batch class, the gymnasium entry point whose numbers it reproduces).
# A task uses it when the id is registered to that entry point and it passes no env_kwargs.
FUSED_ENVS: dict[str, tuple[type[CartPoleBatch], str]] = {
    "CartPole-v0": (CartPoleBatch, "gymnasium.envs.classic_control.cartpole:CartPoleEnv"),
    "CartPole-v1": (CartPoleBatch, "gymnasium.envs.classic_control.cartpole:CartPoleEnv"),
}


def fused_env(env_id: str, env_kwargs: dict) -> type[CartPoleBatch] | None:
    """The fused batch class for this env, or None when gymnasium must step it (another id, other kwargs)."""
    entry = FUSED_ENVS.get(env_id)
    spec = gymnasium.envs.registry.get(env_id)
    if entry is None or spec is None or env_kwargs or spec.entry_point != entry[1] or spec.kwargs:
        return None
    return entry[0]


def first_observations(env_id: str, initial: np.ndarray) -> np.ndarray:
    """The observations ``(N, obs_dim)`` of initial states ``(N, state_dim)`` as the env would emit them."""
    if env_id in DOUBLE_POLE_IDS:
        return double_pole.observe(initial[:, :6].T, bool(DOUBLE_POLE_IDS[env_id][0]["velocities"]))
    # CartPole observes its state, as float32.
    return initial.astype(np.float32).astype(np.float64)


# Per-process caches: Ray workers reuse their processes across tasks, and
# creating hundreds of envs per chunk would otherwise dominate the run time.
# A rollout touches its full size plus the ladder sizes (see evo.tasks.control._ladder_size) it compacts to.
_VECTOR_CACHE_SIZE = 64
_vector_envs: OrderedDict[tuple, Any] = OrderedDict()
_single_envs: dict[tuple, list[gymnasium.Env]] = {}


def episode_keys(seeds: np.ndarray, episodes: int) -> np.ndarray:
    """Per-episode keys ``(P, E)`` uint64: episode ``e`` of individual ``i`` gets ``mix(seeds[i], e)``."""
    seeds = np.asarray(seeds).astype(np.uint64).reshape(-1)
    return mix(seeds[:, None], np.arange(episodes, dtype=np.uint64)[None, :])


def vector_initial_states(env_id: str, keys: np.ndarray) -> np.ndarray:
    """Initial states ``(N, state_dim)`` for the vector path, one pure draw per episode key."""
    dim, low, high = VECTOR_INITIAL_STATE[env_id]
    return low + (high - low) * uniform_from_keys(np.asarray(keys).reshape(-1), dim)


def _cache_key(env_id: str, max_steps: int, env_kwargs: dict) -> tuple:
    # repr, because kwargs values may be unhashable (lists from a TOML config).
    return (env_id, max_steps, repr(sorted(env_kwargs.items())))


def _make_single(env_id: str, max_steps: int, env_kwargs: dict) -> gymnasium.Env:
    # The passive env checker only inspects the first steps and costs time on every reset.
    return gymnasium.make(env_id, max_episode_steps=max_steps, disable_env_checker=True, **env_kwargs)


def single_env_pool(env_id: str, max_steps: int, env_kwargs: dict, count: int) -> list[gymnasium.Env]:
    """At least ``count`` cached single envs for this configuration (grown on demand)."""
    pool = _single_envs.setdefault(_cache_key(env_id, max_steps, env_kwargs), [])
    while len(pool) < count:
        pool.append(_make_single(env_id, max_steps, env_kwargs))
    return pool[:count]


def vector_env(env_id: str, num_envs: int, max_steps: int, env_kwargs: dict) -> Any:
    """A cached NumPy vector env with ``num_envs`` sub-envs (small LRU per process)."""
    key = (*_cache_key(env_id, max_steps, env_kwargs), num_envs)
    env = _vector_envs.get(key)
    if env is None:
        env = gymnasium.make_vec(
            env_id,
            num_envs=num_envs,
            vectorization_mode="vector_entry_point",
            max_episode_steps=max_steps,
            **env_kwargs,
        )
        # Seeds the generator the env uses to autoreset finished slots (whose steps we never count).
        env.reset(seed=0)
        _vector_envs[key] = env
        while len(_vector_envs) > _VECTOR_CACHE_SIZE:
            _vector_envs.popitem(last=False)[1].close()
    else:
        _vector_envs.move_to_end(key)
    return env


def close_envs(env_id: str, max_steps: int, env_kwargs: dict) -> None:
    """Close and forget this process's cached envs of one configuration."""
    prefix = _cache_key(env_id, max_steps, env_kwargs)
    for env in _single_envs.pop(prefix, []):
        env.close()
    for key in [k for k in _vector_envs if k[:3] == prefix]:
        _vector_envs.pop(key).close()


#: the gymnasium namespace a user's ``"module:EnvClass"`` is registered under
USER_NAMESPACE = "evo_user"


def resolve_env_id(env_id: str, imports: tuple[str, ...] | list[str] = (), code_dir: str | None = None) -> str:
    """The gymnasium id to make: ``imports`` imported first (they register their ids), a ``"module:EnvClass"`` registered.

    A class is registered as ``evo_user/module.EnvClass`` with the class itself as
    its entry point (idempotent: a Ray worker calls this again when the task arrives).
    """
    for module in imports:
        import_module(module, "task.import", module, code_dir)
    if ":" not in env_id or gymnasium.envs.registry.get(env_id) is not None:
        return env_id
    module, name = split_reference(env_id, "task.env_id")
    import_module(module, "task.env_id", env_id, code_dir)
    if gymnasium.envs.registry.get(name) is not None:
        return name  # gymnasium's own "module:EnvId-v0": the module registered the id
    env_class = import_object(env_id, "task.env_id", code_dir)
    if not (isinstance(env_class, type) and issubclass(env_class, gymnasium.Env)) and not callable(env_class):
        raise ValueError(f"task.env_id = {env_id!r}: is a {type(env_class).__name__}, not a gymnasium.Env class")
    registered = f"{USER_NAMESPACE}/{module}.{name}"
    if gymnasium.envs.registry.get(registered) is None:
        gymnasium.register(id=registered, entry_point=env_class)
    return registered
