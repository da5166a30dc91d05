"""REINFORCE: the policy-gradient baseline of control tasks (`evo train`, `evo compare`).

Williams (1992), "Simple statistical gradient-following algorithms for
connectionist reinforcement learning", Machine Learning 8: 229-256.

The policy is the network evolution evolves (an MLP, feedforward NEAT, or a
recurrent ``rnn``: Elman, LSTM, GRU), from the same starting weights:

* **Discrete actions**: a categorical distribution, the softmax of the
  network's outputs (its logits). The greedy action, the argmax, is what the
  task's validation and test run, as for an evolved network.
* **Box actions** (double pole, Pendulum): a Gaussian whose mean is the
  network's output (tanh, in [-1, 1]) and whose log standard deviation is
  learned, one per action, from ``log(train.init_std)``; the sample is mapped
  onto [low, high] and clipped as the task maps outputs. Greedy: the mean.

One update (an *iteration*):

1. ``episodes_per_update`` fresh episodes of the current stochastic policy,
   stepped in lockstep with one batched forward pass per step (a recurrent
   network's state carried per episode, from rest); their observations,
   actions and rewards are recorded.
2. The reward-to-go ``G_t = sum_{k >= t} gamma^(k - t) r_k`` of every step.
3. The baseline of episode ``i`` at step ``t`` is the mean ``G_t`` of the
   *other* episodes still running at step ``t`` (leave-one-out: it does not
   depend on episode ``i``'s actions, so the gradient stays unbiased; Kool,
   van Hoof & Welling 2019, "Buy 4 REINFORCE samples, get a baseline for
   free!"). Advantages ``A = G - b`` are then normalised to zero mean and unit
   variance over the batch's steps.
4. The loss ``-mean_t A_t log pi(a_t | h_t) - entropy_bonus * mean_t H(pi(. | h_t))``
   and its gradient at the outputs of every step, taken back through the
   network's own backward pass: the MLP's over all recorded steps as one
   batch; a recurrent network re-runs its sequence forward over each
   episode's recorded observations, the state carried across the steps from
   rest (steps after an episode's end are padding, masked out), and
   backpropagates through time (:meth:`networks.rnn.RNN.backward_sequence`).
5. L2 weight decay on the weights (``train.weight_decay``), the gradient
   rescaled to ``train.clip_norm`` when longer, one step of Adam (or SGD with
   momentum; :mod:`networks.optimizers`).

Every ``validate_every`` iterations (and at the last) the greedy policy is
scored on the task's validation episodes (the episodes evolution's choice is
scored on); the best validated parameters are kept, and the run stops early
once the validated mean return reaches the target (``target_fitness``, or the
task's) or after ``max_seconds``. The kept parameters are tested with the
test seed evolution uses: ``test_mean_return`` over the same fresh episodes.

Randomness: the training episodes' starts are keyed by (run seed, iteration,
episode) and the action samples by (run seed, iteration), so the same config
and seed give the same numbers.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from evo.baselines.base import Baseline, held_out_line, pick_figures
from evo.build import build_network, initial_genome
from evo.config import ConfigError, RunConfig
from evo.files import atomic_write_json, open_run_dir, save_genome
from evo.models import model_stem, write_model
from evo.reporters import Reporter, RunState, TestTrace, float_cell, seconds_cell
from evo.run import _VALIDATION_STREAM, parameter_counts
from evo.seeding import STREAM_TEST, mix, stream_seed, to_int32_seed
from evo.tasks.control import ControlTask
from evo.tasks.control_envs import single_env_pool
from evo.train import BaselineRun, EpochReporting, TrainResult, load_genome
from networks.optimizers import SGD, Adam
from networks.spec import Recurrent, SequenceTrainable, Trainable
from networks.stack import bind_genomes

#: seed streams of the training episodes' starts and of the action samples
STREAM_EPISODES = 9
STREAM_ACTIONS = 10
#: the learning rate when ``train.lr`` is None
DEFAULT_LR = {"adam": 3e-2, "sgd": 1e-2}
#: forward passes counted per training episode: the rollout, then forward + backward over the recorded episode
PASSES_PER_EPISODE = 3
#: metrics.csv of a policy-gradient run: one row per update
PG_CELLS: dict[str, Callable[[Any], str]] = {
    "iteration": str,
    "mean_return": float_cell,
    "loss": float_cell,
    "entropy": float_cell,
    "grad_norm": float_cell,
    "val_mean_return": float_cell,
    "episodes": str,
    "env_steps": str,
    "sample_forward_passes": str,
    "wall_seconds": seconds_cell(4),
}


@dataclass
class Episodes:
    """A batch of recorded episodes, time-major; steps after an episode's end are padding (``alive`` False)."""

    observations: np.ndarray  # (T, N, n_inputs): what the network saw
    actions: np.ndarray  # (T, N) action indices, or (T, N, n_out) Gaussian samples in network space
    rewards: np.ndarray  # (T, N)
    alive: np.ndarray  # (T, N) bool: the episode was running at that step

    @property
    def returns(self) -> np.ndarray:
        """Undiscounted return of each episode ``(N,)``."""
        return self.rewards.sum(axis=0)

    @property
    def steps(self) -> int:
        """Environment steps taken."""
        return int(self.alive.sum())


class PolicyNetwork:
    """The network's outputs at every recorded step and their backward: an RNN's sequence (BPTT), else one batch of steps."""

    def __init__(self, network: Any) -> None:
        kind = network.describe().get("type")
        kind = "'neat' with feed_forward = false (recurrent NEAT)" if kind == "neat_recurrent" else repr(kind)
        if isinstance(network, SequenceTrainable):
            self.sequence = True
        elif isinstance(network, Recurrent) or not isinstance(network, Trainable):
            raise ConfigError(
                f"config error: network.type = {kind}: the policy-gradient baseline needs a network "
                "with a backward pass at every step (mlp, feedforward neat, rnn); this one has none"
            )
        else:
            self.sequence = False
        self.network = network

    def forward(self, params: np.ndarray, observations: np.ndarray, alive: np.ndarray) -> tuple[np.ndarray, Any]:
        """Outputs ``(T, N, n_out)`` (logits for a softmax layer; zeros on padding) and the cache for :meth:`backward`."""
        if self.sequence:
            return self.network.forward_train_sequence(params, observations, return_logits=True)
        rows, cache = self.network.forward_train(params, observations[alive], return_logits=True)
        out = np.zeros((*alive.shape, rows.shape[-1]))
        out[alive] = rows
        return out, cache

    def backward(self, params: np.ndarray, cache: Any, d_out: np.ndarray, alive: np.ndarray) -> np.ndarray:
        """Gradient ``(n_params,)`` given the loss's gradient ``d_out (T, N, n_out)`` at the outputs (zero on padding)."""
        if self.sequence:
            return self.network.backward_sequence(params, cache, d_out)
        return self.network.backward(params, cache, d_out[alive])


def reward_to_go(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """``G_t = r_t + gamma G_{t+1}`` for every step ``(T, N)`` (rewards are zero on padding)."""
    G = np.zeros_like(rewards)
    running = np.zeros(rewards.shape[1])
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running
        G[t] = running
    return G


def advantages(G: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """``G`` less the leave-one-out mean of the other running episodes at the same step, normalised over the batch; 0 on padding."""
    running = alive.sum(axis=1, keepdims=True)
    total = np.where(alive, G, 0.0).sum(axis=1, keepdims=True)
    others = running - 1
    baseline = np.where(others > 0, (total - G) / np.maximum(others, 1), 0.0)
    A = np.where(alive, G - baseline, 0.0)
    values = A[alive]
    std = float(values.std()) if values.size else 0.0
    return np.where(alive, (A - (values.mean() if values.size else 0.0)) / (std + 1e-8), 0.0)


def policy_loss(
    policy: PolicyNetwork,
    params: np.ndarray,
    log_std: np.ndarray | None,
    episodes: Episodes,
    A: np.ndarray,
    entropy_bonus: float,
) -> tuple[float, float, np.ndarray, np.ndarray | None]:
    """Loss, mean entropy, and the gradients w.r.t. the network's parameters and the log std (None: a categorical policy).

    ``loss = -mean_t A_t log pi(a_t) - entropy_bonus * mean_t H_t`` over the running steps.
    """
    alive = episodes.alive
    M = max(int(alive.sum()), 1)
    out, cache = policy.forward(params, episodes.observations, alive)
    weight = np.where(alive, A, 0.0)[..., None] / M
    if log_std is None:
        z = out - out.max(axis=-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        p = np.exp(logp)
        entropy = -(p * logp).sum(axis=-1)
        onehot = np.eye(out.shape[-1])[episodes.actions]
        logp_taken = (logp * onehot).sum(axis=-1)
        d_out = -weight * (onehot - p) + (entropy_bonus / M) * p * (logp + entropy[..., None])
        d_out *= alive[..., None]
        g_log_std = None
    else:
        std = np.exp(log_std)
        diff = episodes.actions - out
        logp_taken = (-0.5 * (diff / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(axis=-1)
        entropy = np.broadcast_to((log_std + 0.5 * math.log(2 * math.pi * math.e)).sum(), alive.shape)
        d_out = (-weight * diff / std**2) * alive[..., None]
        g_log_std = (-weight * ((diff / std) ** 2 - 1.0))[alive].sum(axis=0) - entropy_bonus
    mean_entropy = float(entropy[alive].mean()) if alive.any() else 0.0
    loss = -float((A * logp_taken)[alive].sum()) / M - entropy_bonus * mean_entropy
    return loss, mean_entropy, policy.backward(params, cache, d_out, alive), g_log_std


def run_episodes(
    task: ControlTask,
    network: Any,
    params: np.ndarray,
    log_std: np.ndarray | None,
    keys: np.ndarray,
    rng: np.random.Generator,
    max_steps: int,
) -> Episodes | None:
    """Episodes keyed ``keys`` of the stochastic policy, in lockstep (one batched forward per step); None if the outputs went non-finite."""
    N = len(keys)
    envs = single_env_pool(task.env_id, max_steps, task.env_kwargs, N)
    obs = np.stack([np.asarray(env.reset(seed=to_int32_seed(key))[0], dtype=np.float64).reshape(-1) for env, key in zip(envs, keys)])
    policy = bind_genomes(network, params[None])
    softmax_outputs = getattr(network, "output_activation", None) == "softmax"
    n_out = network.n_outputs
    seen, taken, rewarded, running = [], [], [], []
    alive = np.ones(N, dtype=bool)
    for _ in range(max_steps):
        x = np.array(task.observed(obs))  # a copy: obs is updated in place below
        out = policy.forward(x[None])[0]
        if not np.all(np.isfinite(out[alive])):
            return None
        if log_std is None:
            logits = np.log(np.maximum(out, 1e-300)) if softmax_outputs else out  # a softmax layer's outputs are already probabilities
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            cdf = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
            action = np.minimum((rng.random(N)[:, None] > cdf).sum(axis=1), n_out - 1)
            values = np.eye(n_out)[action]
        else:
            action = out + np.exp(log_std) * rng.standard_normal((N, n_out))
            values = action
        env_actions = task.env_actions(values)
        reward = np.zeros(N)
        done = np.zeros(N, dtype=bool)
        for i in np.flatnonzero(alive):
            next_obs, r, terminated, truncated, _ = envs[i].step(int(env_actions[i]) if log_std is None else env_actions[i])
            reward[i] = float(r)
            obs[i] = np.asarray(next_obs, dtype=np.float64).reshape(-1)
            done[i] = terminated or truncated
        seen.append(x)
        taken.append(action)
        rewarded.append(reward)
        running.append(alive.copy())
        alive &= ~done
        if not alive.any():
            break
    return Episodes(np.array(seen), np.array(taken), np.array(rewarded), np.array(running))


class PolicyGradientRun(BaselineRun):
    """`evo train` on a control task: REINFORCE on the config's network (see the module docstring).

    Run directory: ``config.toml``, ``metrics.csv`` (one row per update:
    mean training return, loss, entropy, gradient norm, the validated return
    when validated, episodes, environment steps, passes, wall time),
    ``events.log``, ``status.json``, ``best_genome.npz`` + ``.json``,
    ``model.json`` + ``model.npz`` (what `evo predict` / `evo rollout` /
    :func:`networks.load_model` run), ``returns.png``, ``summary.json``.
    """

    def _prepare(self) -> None:
        """The control task, the network (one with a backward pass at every step) and its starting weights."""
        if not isinstance(self.task, ControlTask):
            raise ConfigError(f"config error: task {self.task.name!r}: the policy-gradient baseline runs on control tasks only")
        self.network = build_network(self.config, self.task)
        self.policy = PolicyNetwork(self.network)
        if getattr(self.network, "bptt_truncate", 0):
            raise ConfigError(
                "config error: network.bptt_truncate: the policy gradient reads the loss at every step and needs full BPTT; remove it"
            )
        self.init_params = load_genome(self.init_from, self.network) if self.init_from else initial_genome(self.config, self.network)

    def run(self) -> TrainResult:
        """Train, then write the run directory."""
        cfg, t, task = self.config, self.config.train, self.task
        assert isinstance(task, ControlTask)
        run_dir = self.run_dir = open_run_dir(self.run_dir, cfg.out, f"{cfg.name}-train", tomli_w.dumps(cfg.to_dict()))
        test_seed, val_seed = stream_seed(cfg.seed, STREAM_TEST), stream_seed(cfg.seed, _VALIDATION_STREAM)
        n = self.network.n_params
        box = task.action_kind == "box"
        vector = np.concatenate([self.init_params, np.full(task.n_outputs if box else 0, math.log(t.init_std))])
        params, log_std = vector[:n], (vector[n:] if box else None)
        best: dict[str, Any] = {"score": -math.inf, "params": params.copy(), "iteration": 0}
        extra: list[Reporter] = []
        if self.trace_test:
            extra.append(TestTrace(task, self.network, lambda _state: best["params"], test_seed, self.test_trace, every=cfg.validate_every))
        reporting = EpochReporting(run_dir, cfg, self.progress, extra + self.reporters, cells=PG_CELLS, total=t.iterations)
        history: list[dict[str, Any]] = []
        try:
            reporting.start()
            stopped_by = self._train(vector, params, log_std, val_seed, best, reporting, history)
            reporting.stop(stopped_by)
            summary = self._finish(best, log_std, reporting.state, history, run_dir, test_seed)
            reporting.end(summary)
        finally:
            reporting.close()
        return TrainResult(run_dir, summary, best["params"], self.network, history)

    def _train(
        self,
        vector: np.ndarray,
        params: np.ndarray,
        log_std: np.ndarray | None,
        val_seed: int,
        best: dict[str, Any],
        reporting: EpochReporting,
        history: list[dict[str, Any]],
    ) -> str:
        """The updates, each reported; returns why they stopped. ``vector`` holds ``params`` then ``log_std`` (views of it)."""
        cfg, t, task = self.config, self.config.train, self.task
        assert isinstance(task, ControlTask)
        lr = DEFAULT_LR[t.optimizer] if t.lr is None else float(t.lr)
        opt = Adam(lr) if t.optimizer == "adam" else SGD(lr, momentum=t.momentum)
        decay = np.zeros_like(vector)
        if t.weight_decay:
            decay[: len(params)] = t.weight_decay * self.policy.network.weight_mask()
        grad = np.zeros_like(vector)
        episode_seed, action_seed = stream_seed(cfg.seed, STREAM_EPISODES), stream_seed(cfg.seed, STREAM_ACTIONS)
        max_steps = min(task.max_steps, t.max_episode_steps or task.max_steps)
        target = cfg.target_fitness if cfg.target_fitness is not None else task.target_fitness
        N = t.episodes_per_update
        episodes_run = env_steps = 0
        for iteration in range(1, t.iterations + 1):
            keys = mix(episode_seed, iteration, np.arange(N, dtype=np.uint64))
            rng = np.random.default_rng(int(mix(action_seed, iteration)))
            batch = run_episodes(task, self.network, params, log_std, keys, rng, max_steps)
            if batch is None:
                warnings.warn(
                    f"policy gradient: the network's outputs became non-finite at iteration {iteration}; stopping",
                    RuntimeWarning,
                    stacklevel=2,
                )
                return "diverged"
            A = advantages(reward_to_go(batch.rewards, t.gamma), batch.alive)
            loss, entropy, g_params, g_log_std = self.policy_loss(params, log_std, batch, A)
            grad[: len(params)] = g_params
            if g_log_std is not None:
                grad[len(params) :] = g_log_std
            grad += decay * vector
            norm = math.sqrt(float(np.vdot(grad, grad)))
            if t.clip_norm is not None and norm > t.clip_norm:
                grad *= t.clip_norm / norm
            opt.step(vector, grad)
            episodes_run += N
            env_steps += batch.steps
            elapsed = reporting.elapsed()
            last = iteration == t.iterations or (cfg.max_seconds is not None and elapsed >= cfg.max_seconds)
            val = None
            if iteration % cfg.validate_every == 0 or last:
                figures = task.validate(self.network, params, val_seed)
                val = figures["val_mean_return"]
                if figures["val_score"] > best["score"]:
                    best.update(score=figures["val_score"], params=params.copy(), iteration=iteration)
            row = {
                "iteration": iteration,
                "mean_return": float(batch.returns.mean()),
                "loss": loss,
                "entropy": entropy,
                "grad_norm": norm,
                "val_mean_return": val,
                "episodes": episodes_run,
                "env_steps": env_steps,
                "sample_forward_passes": episodes_run * PASSES_PER_EPISODE,
            }
            history.append(row)
            reporting.report(row)
            if val is not None and target is not None and val >= target:
                return "target_fitness"
            if last:
                return "iterations" if iteration == t.iterations else "max_seconds"
        return "iterations"

    def policy_loss(
        self, params: np.ndarray, log_std: np.ndarray | None, batch: Episodes, A: np.ndarray
    ) -> tuple[float, float, np.ndarray, np.ndarray | None]:
        """:func:`policy_loss` with this run's network and entropy bonus."""
        return policy_loss(self.policy, params, log_std, batch, A, self.config.train.entropy_bonus)

    def _finish(
        self, best: dict[str, Any], log_std: np.ndarray | None, state: RunState, history: list[dict], run_dir: Path, test_seed: int
    ) -> dict[str, Any]:
        """Test the kept parameters, write them, the model, the return plot and the summary; return the summary."""
        cfg, t, task = self.config, self.config.train, self.task
        params = best["params"]
        test_figures = task.test(self.network, params, test_seed)
        val_figures = {
            k: v for k, v in task.validate(self.network, params, stream_seed(cfg.seed, _VALIDATION_STREAM)).items() if k != "val_score"
        }
        label = f"policy gradient (REINFORCE, {t.optimizer})"
        save_genome(
            run_dir / "best_genome",
            params,
            {"network": self.network.describe(), "task": task.describe(), "source": "policy_gradient", "best_iteration": best["iteration"]},
        )
        write_model(model_stem(run_dir), task, self.network, params, label, test_figures)
        _plot_returns(history, run_dir / "returns.png", f"{cfg.name}: {label} on {task.name}")
        episodes = history[-1]["episodes"] if history else 0
        summary = {
            "name": cfg.name,
            "method": "policy_gradient",
            "algorithm": "REINFORCE (leave-one-out baseline, reward-to-go, normalised advantages)",
            "seed": cfg.seed,
            "iterations": len(history),
            "best_iteration": best["iteration"],
            "stopped_by": state.stopped_by,
            "wall_seconds": state.wall_seconds,
            "episodes": episodes,
            "env_steps": history[-1]["env_steps"] if history else 0,
            "sample_forward_passes": episodes * PASSES_PER_EPISODE,
            **parameter_counts(self.network, params),
            "policy": {"kind": "categorical"} if log_std is None else {"kind": "gaussian", "std": np.exp(log_std).tolist()},
            "init_from": str(self.init_from) if self.init_from else None,
            "train": t.model_dump(),
            "network": self.network.describe(),
            "task": task.describe(),
            **val_figures,
            **test_figures,
        }
        atomic_write_json(run_dir / "summary.json", summary)
        return summary


def _plot_returns(history: list[dict], path: Path, title: str) -> None:
    """Mean training return per update and the validated return where validated."""
    if not history:
        return
    import matplotlib.pyplot as plt

    from evo.plots import save_figure  # also selects the Agg backend

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(
        [r["iteration"] for r in history],
        [r["mean_return"] for r in history],
        color="tab:blue",
        lw=1.2,
        label="training episodes (sampled)",
    )
    validated = [r for r in history if r["val_mean_return"] is not None]
    if validated:
        ax.plot(
            [r["iteration"] for r in validated],
            [r["val_mean_return"] for r in validated],
            "o-",
            color="tab:orange",
            ms=3,
            label="validation (greedy)",
        )
    ax.set_xlabel("update")
    ax.set_ylabel("mean episode return")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    save_figure(fig, path)


class PolicyGradientBaseline(Baseline):
    """Control tasks: evolution against REINFORCE on the same network, starting weights and test episodes."""

    metrics = {
        "test_mean_return": ("test mean return", "fixed"),
        "test_std_return": ("test return std", "fixed"),
        "wall_seconds": ("training wall s", "seconds"),
        "sample_forward_passes": ("episode passes", "sci"),
        "n_params": ("parameters", "int"),
    }
    plotted_metric = "test_mean_return"
    passes_counting = (
        "evolution: episodes run (evaluations x episodes per evaluation); "
        "policy gradient: training episodes x 3 (the rollout, then forward + backward over the recorded episode); "
        "validation and test episodes are not counted"
    )
    run_type = PolicyGradientRun

    def labels(self, config: RunConfig) -> dict[str, str]:
        """One method: REINFORCE with the config's optimizer."""
        return {"policy_gradient": f"policy gradient (REINFORCE, {config.train.optimizer})"}

    def compare_rows(
        self, config: RunConfig, out_dir: Path, progress: bool, evolution: dict[str, Any]
    ) -> tuple[dict[str, dict], dict[str, list]]:
        """Train, with the held-out figure traced at every validation."""
        run = self.make_run(config, run_dir=out_dir / f"policy-gradient-seed{config.seed}", progress=progress, trace_test=True)
        summary = run.run().summary
        figures = {**pick_figures(summary, self.metrics), "iterations": summary["iterations"], "env_steps": summary["env_steps"]}
        return {"policy_gradient": figures}, {"policy_gradient": run.test_trace}

    def summary_lines(self, summary: dict[str, Any]) -> list[str]:
        """Updates, episodes, wall time, size, held-out figures."""
        s = summary
        return [
            f"iterations {s['iterations']} (best {s['best_iteration']}, stopped by {s['stopped_by']})  episodes {s['episodes']}  "
            f"env steps {s['env_steps']}  wall {s['wall_seconds']:.2f} s  parameters {s['n_params']}",
            held_out_line(s),
        ]


class DoublePolePolicyGradientBaseline(PolicyGradientBaseline):
    """Double pole balancing: the same, with the benchmark's own tests in the table."""

    metrics = {
        "test_mean_return": ("test mean return", "fixed"),
        "test_balanced_steps": ("steps balanced (standard start)", "sci"),
        "test_generalization": ("generalisation (of 625 starts)", "fixed"),
        "wall_seconds": ("training wall s", "seconds"),
        "sample_forward_passes": ("episode passes", "sci"),
        "n_params": ("parameters", "int"),
    }
