"""Control tasks: gymnasium environments scored by the mean episode return.

All P x E episodes of a population (P genomes, E episodes each) are stepped in
lockstep with ONE batched forward pass per step: the network's own, through
the genome stack it binds once per rollout (:func:`networks.stack.bind_genomes`). The input stack has shape
``(n, E, obs_dim)``: an individual's E episodes always travel together
(finished ones stay in the stack, their outputs ignored), so every
individual's matmul has the same ``(E, n_in) @ (n_in, n_out)`` shape at every
step and its numbers never depend on which other individuals share the batch.

**Compaction.** Random genomes mostly fail within 10-20 steps while a few
balance for the whole time limit, so plain lockstep would spend most of its
work on finished slots. Whenever the individuals with an episode still running
fit in three quarters of the batch rows, the batch is narrowed to them: their
split-out network weights, observations, returns and environment state (for
the vector env: ``state``, ``steps``, ``prev_done``) move into a smaller batch.
Compaction changes the cost, never the numbers: fitness is bit-identical with
it on or off (``compaction=False`` keeps the full fixed-shape batch).

Three ways to step the environments:

* **Fused path** (CartPole-v0/v1 with no ``env_kwargs``): our own NumPy
  CartPole (:class:`evo.envs.cartpole.CartPoleBatch`) steps every running
  episode in one preallocated step of about thirty ufunc calls, bit-identical
  to gymnasium's. It has no autoreset: an episode that ends is retired in
  place (it never reports termination again), so the step's ``terminated``
  lists exactly the episodes that just ended, and its initial states are the
  vector path's per-episode draws, so its fitness is the vector path's, bit
  for bit. Compaction narrows it to the live rows exactly (no size ladder:
  there is no env to cache per size). It is used automatically: it changes
  the cost, never a number; ``fused=False`` keeps gymnasium's vector env.
* **Vector path** (CartPole with ``fused=False`` or ``env_kwargs``, the double-pole envs): gymnasium's NumPy vector env
  (``CartPoleVectorEnv``) steps all running episodes in a handful of NumPy
  operations. Its ``reset`` draws every initial state from one shared
  generator, which would tie an episode to its neighbours in the batch, so we
  load per-episode draws into it instead (see :func:`episode_keys`). A
  compacted batch is rounded up to 2^k or 3 * 2^k individuals (padded with
  finished ones), so only a few batch sizes ever occur and each size's vector
  env is created once per process and cached.
* **Generic path** (any env with a Box observation space): a pool of P x E
  single envs, each reset with its own seed and stepped in a Python loop over
  the episodes still running; the forward pass is still batched.

**Memory.** A :class:`~networks.spec.Recurrent` network (an RNN, recurrent
NEAT) is bound as a stateful stack: each step's forward advances its state,
which starts at rest with the rollout and stays with its episode through
compaction, so an episode's policy remembers what it saw. ``observe`` (a list
of observation indices) hides the rest from the network, on any environment:
CartPole with ``observe = [0, 2]`` sees positions and angles but no
velocities, which only a network with memory can infer.

Episode ``e`` of individual ``i`` is a pure function of ``seeds[i]`` and ``e``
(its key is ``mix(seeds[i], e)``), never of P, the chunk or the other
individuals, so any chunking of the population gives identical fitness.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from evo.seeding import to_int32_seed
from evo.tasks.base import Task
from evo.tasks.control_envs import (
    VECTOR_INITIAL_STATE,
    close_envs,
    episode_keys,
    first_observations,
    fused_env,
    resolve_env_id,
    single_env_pool,
    vector_env,
    vector_initial_states,
)
from evo.tasks.user_code import runtime_env_for
from networks.stack import GenomeStack, bind_genomes


def _ladder_size(n: int) -> int:
    """Smallest size >= ``n`` of the form 2^k or 3 * 2^k (1, 2, 3, 4, 6, 8, 12, ...).

    Neighbouring sizes differ by 1.33x-1.5x: padding wastes little, and only
    about 2 log2(P) batch sizes (so vector envs to cache) ever occur.
    """
    power = 1 << max(n - 1, 0).bit_length()
    three_quarters = 3 * power // 4
    return three_quarters if three_quarters >= n else power


def _rows_to_keep(live_rows: np.ndarray | np.bool_, size: int) -> np.ndarray:
    """Batch rows to keep on compaction: the live ones, padded with finished ones up to ``size`` rows."""
    live = np.flatnonzero(live_rows)
    padding = np.flatnonzero(~live_rows)[: size - len(live)]
    return np.sort(np.concatenate([live, padding]))


class ControlTask(Task):
    """A gymnasium environment: fitness is the mean return over ``episodes`` seeded episodes.

    Discrete actions are the argmax of the outputs (identity output layer); Box
    actions map tanh outputs in [-1, 1] linearly onto [low, high]. ``max_steps``
    replaces the env's own time limit (default: the registered
    ``max_episode_steps``). :meth:`validate` scores ``val_episodes`` episodes
    from the seed it is given, :meth:`test` ``test_episodes``. ``compaction``
    narrows the lockstep batch to the running episodes (faster, same numbers);
    ``fused`` steps CartPole in our own fused NumPy step rather than
    gymnasium's vector env (faster, same numbers; CartPole-v0/v1 without
    ``env_kwargs`` only). ``observe`` lists the observation indices the network sees (None: all).
    """

    kind = "control"
    baseline = "policy_gradient"

    def __init__(
        self,
        env_id: str,
        episodes: int = 5,
        max_steps: int | None = None,
        test_episodes: int = 100,
        env_kwargs: dict | None = None,
        val_episodes: int = 20,
        compaction: bool = True,
        imports: tuple[str, ...] | list[str] = (),
        code_dir: str | None = None,
        observe: list[int] | None = None,
        fused: bool = True,
    ) -> None:
        #: the user's modules (``imports``, a ``"module:EnvClass"``) and where to find them, for the Ray workers
        self.env_reference, self.imports, self.code_dir = str(env_id), tuple(imports), code_dir
        env_id = resolve_env_id(str(env_id), self.imports, code_dir)
        spec = gymnasium.envs.registry.get(env_id)
        if spec is None:
            raise ValueError(
                f"environment id {env_id!r} is not registered in gymnasium; "
                "see gymnasium.envs.registry (or gymnasium.pprint_registry()) for the ids, "
                "name a module that registers it in task.import, or give 'package.module:EnvClass'"
            )
        counts = (("episodes", episodes), ("test_episodes", test_episodes), ("val_episodes", val_episodes))
        for field_name, value in counts:
            if int(value) < 1:
                raise ValueError(f"{field_name} = {value!r}: must be an integer >= 1")
        if max_steps is None:
            max_steps = spec.max_episode_steps
            if max_steps is None:
                raise ValueError(f"environment {env_id!r} has no registered time limit; set max_steps")
        if int(max_steps) < 1:
            raise ValueError(f"max_steps = {max_steps!r}: must be an integer >= 1")

        self.env_id = env_id
        self.name = env_id
        self.episodes = int(episodes)
        self.max_steps = int(max_steps)
        self.test_episodes = int(test_episodes)
        self.val_episodes = int(val_episodes)
        self.compaction = bool(compaction)
        self.env_kwargs = dict(env_kwargs or {})

        # Make one env to read its spaces; it stays in the pool for the generic path.
        try:
            probe = single_env_pool(env_id, self.max_steps, self.env_kwargs, 1)[0]
        except Exception as exc:  # missing extras (box2d, mujoco) or bad env_kwargs
            raise ValueError(f"environment {env_id!r} could not be created: {exc}") from exc
        obs_space, act_space = probe.observation_space, probe.action_space
        if not isinstance(obs_space, spaces.Box):
            raise ValueError(
                f"environment {env_id!r} has observation space {obs_space}; "
                "a control task needs a Box (continuous vector) observation space"
            )
        self.obs_shape = tuple(obs_space.shape)
        self.n_inputs = int(np.prod(self.obs_shape))
        self.observe = None if observe is None else [int(i) for i in observe]
        if self.observe is not None:
            if not self.observe or len(set(self.observe)) != len(self.observe) or not all(0 <= i < self.n_inputs for i in self.observe):
                raise ValueError(
                    f"task.observe = {list(observe or [])}: must list distinct observation indices in 0..{self.n_inputs - 1} "
                    f"({env_id} observations hold {self.n_inputs} values)"
                )
            self._observed_index = np.array(self.observe)
            self.n_inputs = len(self.observe)
        if isinstance(act_space, spaces.Discrete):
            self.action_kind = "discrete"
            self.n_outputs = int(act_space.n)
            self.output_activation = "identity"
            self._action_start = int(act_space.start)
        elif isinstance(act_space, spaces.Box):
            low = np.asarray(act_space.low, dtype=np.float64).reshape(-1)
            high = np.asarray(act_space.high, dtype=np.float64).reshape(-1)
            if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
                raise ValueError(
                    f"environment {env_id!r} has action space {act_space} with unbounded limits; "
                    "tanh outputs can only be mapped onto finite [low, high]"
                )
            self.action_kind = "box"
            self.n_outputs = int(low.size)
            self.output_activation = "tanh"
            self._action_low, self._action_high = low, high
            self._action_shape = tuple(act_space.shape)
            self._action_dtype = act_space.dtype
        else:
            raise ValueError(f"environment {env_id!r} has action space {act_space}; a control task needs a Discrete or Box action space")
        self.vectorized = env_id in VECTOR_INITIAL_STATE
        #: the fused batch class that steps this env, or None (gymnasium steps it)
        self.fused_env = fused_env(env_id, self.env_kwargs) if fused else None

    # ----------------------------------------------------------------- public
    def evaluate(self, network, genomes: np.ndarray, seeds: np.ndarray, generation_seed: int) -> np.ndarray:
        """Mean return ``(P,)`` over ``episodes`` episodes per genome; NaN for a genome whose outputs went non-finite.

        ``generation_seed`` is unused: each episode depends on its individual's seed only.
        """
        returns = self.episode_returns(network, genomes, seeds, self.episodes)
        return returns.mean(axis=1)

    def test(self, network, genome: np.ndarray, seed: int) -> dict[str, float]:
        """Mean and std of the return over ``test_episodes`` fresh episodes seeded from ``seed``."""
        genomes = np.asarray(genome, dtype=np.float64).reshape(1, -1)
        returns = self.episode_returns(network, genomes, np.array([seed]), self.test_episodes)[0]
        return {
            "test_mean_return": float(np.mean(returns)),
            "test_std_return": float(np.std(returns)),
            "test_episodes": int(self.test_episodes),
        }

    def validate(self, network, genome: np.ndarray, seed: int) -> dict[str, float]:
        """Mean return over ``val_episodes`` episodes seeded from ``seed`` (the run loop's validation stream)."""
        genomes = np.asarray(genome, dtype=np.float64).reshape(1, -1)
        returns = self.episode_returns(network, genomes, np.array([seed]), self.val_episodes)[0]
        mean = float(np.mean(returns))
        # A broken genome (NaN return) must lose every comparison, and NaN compares as neither.
        return {
            "val_score": mean if math.isfinite(mean) else -math.inf,
            "val_mean_return": mean,
            "val_episodes": int(self.val_episodes),
        }

    def episode_returns(self, network, genomes: np.ndarray, seeds: np.ndarray, episodes: int) -> np.ndarray:
        """Returns ``(P, episodes)``: every episode of every genome, stepped in lockstep."""
        genomes = np.asarray(genomes, dtype=np.float64)
        if genomes.ndim != 2:
            raise ValueError(f"expected genomes of shape (P, n_params), got {genomes.shape}")
        seeds = np.asarray(seeds).reshape(-1)
        if len(seeds) != len(genomes):
            raise ValueError(f"got {len(seeds)} seeds for {len(genomes)} genomes")
        if len(genomes) == 0:
            return np.zeros((0, episodes))
        keys = episode_keys(seeds, episodes)
        if self.fused_env is not None:
            return self._rollout_fused(network, genomes, keys)
        rollout = self._rollout_vector if self.vectorized else self._rollout_generic
        return rollout(network, genomes, keys)

    def samples_per_evaluation(self) -> int:
        """Episodes per fitness evaluation (each costs up to ``max_steps`` forward passes)."""
        return self.episodes

    def describe(self) -> dict:
        """Environment id, episode counts, step limit and action kind."""
        return {
            "name": self.name,
            "kind": self.kind,
            "env_id": self.env_id,
            "episodes": self.episodes,
            "test_episodes": self.test_episodes,
            "val_episodes": self.val_episodes,
            "max_steps": self.max_steps,
            "action": self.action_kind,
            "env_kwargs": self.env_kwargs,
            "vectorized": self.vectorized,
            "fused": self.fused_env is not None,
            "observe": self.observe,
        }

    def outputs(self) -> dict[str, Any]:
        """The environment and how outputs become its actions (argmax, or tanh outputs mapped onto [low, high])."""
        env = {"env_id": self.env_id, "env_kwargs": self.env_kwargs, "max_steps": self.max_steps, "observation_shape": list(self.obs_shape)}
        if self.observe is not None:
            env["observe"] = list(self.observe)  # the saved controller sees what the evolved one saw
        if self.action_kind == "discrete":
            return {"kind": "control", **env, "action": "discrete", "decision": "argmax", "action_start": self._action_start}
        return {
            "kind": "control",
            **env,
            "action": "box",
            "decision": "low + (output + 1) / 2 * (high - low), clipped",
            "low": self._action_low.tolist(),
            "high": self._action_high.tolist(),
            "shape": list(self._action_shape),
            "dtype": str(np.dtype(self._action_dtype)),
        }

    def close(self) -> None:
        """Close and forget this process's cached envs for this task's configuration."""
        close_envs(self.env_id, self.max_steps, self.env_kwargs)

    def ray_runtime_env(self) -> dict[str, Any] | None:
        """The user's environment modules, shipped to the workers unless installed there."""
        modules = [*self.imports, *([self.env_reference.partition(":")[0]] if ":" in self.env_reference else [])]
        return runtime_env_for(modules) if modules else None

    def __setstate__(self, state: dict[str, Any]) -> None:
        """On a Ray worker: import the user's modules and register their environment again before any env is made."""
        self.__dict__.update(state)
        if self.imports or ":" in self.env_reference:
            resolve_env_id(self.env_reference, self.imports, self.code_dir)

    def observed(self, obs: np.ndarray) -> np.ndarray:
        """What the network sees of observations ``(..., obs_dim)``: all of them, or the ``observe`` indices."""
        return self._observed(obs)

    def env_actions(self, outputs: np.ndarray) -> np.ndarray:
        """Env actions ``(N, ...)`` from network-space values ``(N, n_out)``: argmax for discrete, [-1, 1] onto [low, high] for Box."""
        return self._actions(outputs)

    # --------------------------------------------------------------- helpers
    def _observed(self, obs: np.ndarray) -> np.ndarray:
        """What the network sees of observations ``(n, E, obs_dim)``: all of them, or the ``observe`` indices."""
        return obs if self.observe is None else obs[..., self._observed_index]

    @staticmethod
    def _outputs(policy: GenomeStack, obs: np.ndarray, active: np.ndarray, rows: np.ndarray, bad: np.ndarray) -> tuple[np.ndarray, bool]:
        """Outputs ``(n, E, n_out)`` of the batch, and whether a genome broke this step.

        A genome with non-finite outputs on a running episode is marked bad (``rows``
        maps batch rows to population indices) and its episodes stop.
        """
        out = policy.forward(obs)
        # One reduction is the cheap per-step test; the exact per-row check runs only when it fails.
        if not math.isfinite(out.sum()):
            return ControlTask._non_finite_outputs(out, active, rows, bad)
        return out, False

    @staticmethod
    def _non_finite_outputs(out: np.ndarray, active: np.ndarray, rows: np.ndarray, bad: np.ndarray) -> tuple[np.ndarray, bool]:
        """:meth:`_outputs` once the outputs ``(n, E, n_out)`` hold a non-finite value: the genomes it breaks marked."""
        broke = False
        broken = ~np.all(np.isfinite(out), axis=2) & active
        if broken.any():
            # A NaN/inf output means the genome is broken: its fitness becomes NaN
            # (the evaluator scores that as worst) and its episodes stop here.
            hit = broken.any(axis=1)
            bad[rows[hit]] = True
            active[hit] = False
            broke = True
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0), broke

    def _actions(self, out: np.ndarray) -> np.ndarray:
        """Env actions ``(N, ...)`` from network outputs ``(N, n_out)``."""
        if self.action_kind == "discrete":
            actions = out.argmax(axis=1)
            return actions + self._action_start if self._action_start else actions
        scaled = self._action_low + (out + 1.0) * 0.5 * (self._action_high - self._action_low)
        scaled = np.clip(scaled, self._action_low, self._action_high)
        return scaled.astype(self._action_dtype).reshape((len(out), *self._action_shape))

    def _rows_to_compact(self, active: np.ndarray, ladder: bool) -> np.ndarray | None:
        """Batch rows to keep after a step that ended episodes (``active`` ``(rows, E)``): none once every episode
        has ended, the live ones (padded to a ``ladder`` size) when that saves at least a quarter of the rows, else None."""
        live_rows: np.ndarray = np.asarray(active.any(axis=1))
        n_live = int(np.count_nonzero(live_rows))
        if n_live == 0:
            return np.flatnonzero(live_rows)
        if not self.compaction:
            return None
        size = _ladder_size(n_live) if ladder else n_live
        return _rows_to_keep(live_rows, size) if 4 * size <= 3 * len(live_rows) else None

    def _load_vector_env(self, state: np.ndarray, steps: np.ndarray, prev_done: np.ndarray) -> Any:
        """The cached vector env of this size with its per-slot state, step counters and autoreset flags set."""
        env = vector_env(self.env_id, state.shape[1], self.max_steps, self.env_kwargs)
        core = env.unwrapped
        core.state, core.steps, core.prev_done = state, steps, prev_done
        return env

    def _rollout_vector(self, network, genomes: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """All episodes in NumPy vector envs with per-episode initial states, compacted as they end."""
        P, E = keys.shape
        initial = vector_initial_states(self.env_id, keys)  # (N, state_dim)
        env = self._load_vector_env(initial.T.copy(), np.zeros(P * E, dtype=np.int32), np.zeros(P * E, dtype=np.bool_))
        # As the env would emit them (CartPole: its state as float32), so the first step matches a single env.
        obs = first_observations(self.env_id, initial).reshape(P, E, -1)
        policy = bind_genomes(network, genomes)

        final = np.zeros((P, E))
        bad = np.zeros(P, dtype=bool)
        rows = np.arange(P)  # population index of each batch row
        returns = np.zeros((P, E))
        active = np.ones((P, E), dtype=bool)
        flat_returns, flat_active, flat_obs = returns.reshape(-1), active.reshape(-1), obs.reshape(P * E, -1)
        for _ in range(self.max_steps):
            out, broke = self._outputs(policy, self._observed(obs), active, rows, bad)
            next_obs, reward, terminated, truncated, _ = env.step(self._actions(out.reshape(flat_active.size, -1)))
            # Masking drops both finished episodes and the NEXT_STEP autoreset step,
            # whose reward belongs to no episode of ours.
            flat_returns += reward * flat_active
            # Finished slots take their autoreset observation too: a plain copy is cheaper than
            # a masked one, and the outputs of finished slots are never used.
            flat_obs[...] = next_obs
            done = terminated | truncated
            if not (broke or done.any()):
                continue  # nobody finished: nothing to count or compact
            flat_active &= ~done
            keep = self._rows_to_compact(active, ladder=True)
            if keep is not None:
                if len(keep) == 0:
                    break
                final[rows] = returns
                slots = (keep[:, None] * E + np.arange(E)).reshape(-1)
                core = env.unwrapped
                env = self._load_vector_env(core.state[:, slots], core.steps[slots], core.prev_done[slots])
                rows, returns, active, obs = rows[keep], returns[keep], active[keep], obs[keep]
                flat_returns, flat_active = returns.reshape(-1), active.reshape(-1)
                flat_obs = obs.reshape(active.size, -1)
                policy.keep(keep)
        final[rows] = returns
        final[bad] = np.nan
        return final

    def _rollout_fused(self, network, genomes: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """All episodes in one fused batch env with per-episode initial states, compacted as they end.

        The vector path's loop, leaner: the env retires an episode as it ends, so
        ``terminated`` needs no masking; an episode's return is its length (every
        step pays 1), written when it ends; the time limit is the loop's end.
        """
        P, E = keys.shape
        assert self.fused_env is not None
        env = self.fused_env(vector_initial_states(self.env_id, keys), self.max_steps)
        policy = bind_genomes(network, genomes)

        final = np.zeros((P, E))
        bad = np.zeros(P, dtype=bool)
        rows = np.arange(P)  # population index of each batch row
        lengths = np.zeros((P, E))  # steps of each ended episode (its return)
        active = np.ones((P, E), dtype=bool)
        obs = env.observations.reshape(P, E, -1)
        slots = P * E
        ended = 0  # episodes of the batch that have ended
        observe = self.observe is not None
        last = self.max_steps - 1
        # A retired slot is parked at rest, but over a very long time limit its stepping could still
        # overflow: that only shows as non-finite outputs, handled like any others. (A broken genome's
        # overflow in the forward pass is silent here too: it is scored NaN, and counted, either way.)
        with np.errstate(over="ignore", invalid="ignore"):
            for step in range(self.max_steps):
                out = policy.forward(self._observed(obs) if observe else obs)
                broke = False
                if not math.isfinite(np.add.reduce(out, None)):  # out.sum(), without its Python wrapper
                    out, broke = self._non_finite_outputs(out, active, rows, bad)
                    env.retire(~active.reshape(-1))  # the broken genomes' episodes end here
                    env.park_retired()  # whatever drifted to a non-finite state restarts at rest
                terminated = env.step(out.reshape(slots, -1).argmax(axis=1))
                if step == last:
                    break  # the time limit: the episodes still running are truncated
                if not (broke or env.n_terminated):
                    continue  # nobody finished: nothing to count or compact
                lengths.reshape(-1)[terminated] = step + 1
                active.reshape(-1)[terminated] = False
                ended = slots - int(np.count_nonzero(active)) if broke else ended + env.n_terminated
                if 4 * ended < slots:
                    # A row is done once its E episodes are: fewer than a quarter of the rows are done
                    # (none to compact, or not enough), and some still run. Skips the row test below.
                    continue
                keep = self._rows_to_compact(active, ladder=False)
                if keep is not None:
                    if len(keep) == 0:
                        break
                    final[rows] = lengths
                    env.keep((keep[:, None] * E + np.arange(E)).reshape(-1))
                    rows, lengths, active = rows[keep], lengths[keep], active[keep]
                    obs = env.observations.reshape(len(keep), E, -1)
                    slots = len(keep) * E
                    ended = slots - int(np.count_nonzero(active))
                    policy.keep(keep)
        lengths[active] = self.max_steps
        final[rows] = lengths
        final[bad] = np.nan
        return final

    def _rollout_generic(self, network, genomes: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """All episodes in a pool of single envs, one batched forward pass per step, compacted as they end."""
        P, E = keys.shape
        N = P * E
        envs = single_env_pool(self.env_id, self.max_steps, self.env_kwargs, N)
        obs = np.zeros((P, E, int(np.prod(self.obs_shape))))
        flat_obs = obs.reshape(N, -1)
        for slot, (env, key) in enumerate(zip(envs, keys.reshape(-1))):
            first, _ = env.reset(seed=to_int32_seed(key))
            flat_obs[slot] = np.asarray(first, dtype=np.float64).reshape(-1)
        policy = bind_genomes(network, genomes)

        final = np.zeros((P, E))
        bad = np.zeros(P, dtype=bool)
        rows = np.arange(P)  # population index of each batch row
        env_index = np.arange(N)  # pool index of each batch slot
        returns = np.zeros((P, E))
        active = np.ones((P, E), dtype=bool)
        discrete = self.action_kind == "discrete"
        for _ in range(self.max_steps):
            out, ended = self._outputs(policy, self._observed(obs), active, rows, bad)
            actions = self._actions(out.reshape(active.size, -1))
            flat_active, flat_returns, flat_obs = active.reshape(-1), returns.reshape(-1), obs.reshape(active.size, -1)
            for i in np.flatnonzero(flat_active):
                action = int(actions[i]) if discrete else actions[i]
                next_obs, reward, terminated, truncated, _ = envs[env_index[i]].step(action)
                flat_returns[i] += float(reward)
                flat_obs[i] = np.asarray(next_obs, dtype=np.float64).reshape(-1)
                if terminated or truncated:
                    flat_active[i] = False
                    ended = True
            if not ended:
                continue
            keep = self._rows_to_compact(active, ladder=False)
            if keep is not None:
                if len(keep) == 0:
                    break
                final[rows] = returns
                env_index = env_index.reshape(-1, E)[keep].reshape(-1)
                rows, returns, active, obs = rows[keep], returns[keep], active[keep], obs[keep]
                policy.keep(keep)
        final[rows] = returns
        final[bad] = np.nan
        return final
