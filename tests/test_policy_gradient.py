"""`evo train` / `evo compare` on control tasks: the REINFORCE baseline, on real gymnasium environments."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from evo import ConfigError, parse_config
from evo.baselines import make_training_run
from evo.baselines.policy_gradient import Episodes, PolicyNetwork, advantages, policy_loss, reward_to_go
from evo.build import initial_genome
from evo.reporters import read_csv_numbers
from evo.seeding import STREAM_TEST, stream_seed
from networks import load_model
from networks.mlp import MLP
from networks.rnn import RNN
from tests.helpers import assert_png, numeric_gradient, relative_error, write_config

CARTPOLE_PG = {
    "name": "cartpole-pg",
    "seed": 0,
    "generations": 2,
    "network": {"hidden": [16], "activation": "tanh"},
    "task": {"type": "control", "env_id": "CartPole-v1", "episodes": 2, "test_episodes": 100},
    "strategy": {"type": "cmaes", "population": 8, "sigma": 0.5},
    "train": {"iterations": 40, "episodes_per_update": 16},
}
MASKED_LSTM = {
    "name": "masked-lstm-pg",
    "seed": 3,
    "generations": 2,
    "validate_every": 2,
    "network": {"type": "rnn", "cell": "lstm", "hidden": [4]},
    "task": {"type": "control", "env_id": "CartPole-v1", "observe": [0, 2], "episodes": 2, "max_steps": 100, "test_episodes": 5},
    "strategy": {"type": "cmaes", "population": 8, "sigma": 0.5},
    "train": {"iterations": 4, "episodes_per_update": 4, "entropy_bonus": 0.01, "clip_norm": 1.0},
}


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "evo.cli", *args], capture_output=True, text=True, timeout=600)


def test_reinforce_lifts_an_mlp_on_cartpole_far_above_its_starting_policy(tmp_path):
    config = parse_config(CARTPOLE_PG)
    run = make_training_run(config, run_dir=tmp_path / "pg", progress=False)
    assert type(run).__name__ == "PolicyGradientRun"
    np.testing.assert_array_equal(run.init_params, initial_genome(config, run.network))  # evolution's starting weights
    start = run.task.test(run.network, run.init_params, stream_seed(config.seed, STREAM_TEST))["test_mean_return"]
    s = run.run().summary
    # Seed 0 reaches 500 on all 20 validation episodes within 40 updates (measured: 500.0 on the 100 test episodes).
    assert start < 50 and s["test_mean_return"] > 150, (start, s["test_mean_return"])
    assert s["test_episodes"] == 100 and s["method"] == "policy_gradient"
    assert s["sample_forward_passes"] == 3 * s["episodes"] == 3 * 16 * s["iterations"]
    for name in ("config.toml", "metrics.csv", "events.log", "status.json", "best_genome.npz", "model.json", "returns.png", "summary.json"):
        assert (tmp_path / "pg" / name).is_file(), name
    assert_png(tmp_path / "pg" / "returns.png")
    rows = read_csv_numbers(tmp_path / "pg" / "metrics.csv", ("iteration", "episodes", "env_steps", "sample_forward_passes"))
    assert [r["iteration"] for r in rows] == list(range(1, s["iterations"] + 1))
    assert rows[-1]["env_steps"] == s["env_steps"] and rows[-1]["mean_return"] > 3 * rows[0]["mean_return"]
    # The saved model is the trained greedy policy: load_model runs it in its environment.
    from evo.rollouts import run_episodes

    model = load_model(tmp_path / "pg")
    assert model.kind == "control"
    assert np.mean([e["return"] for e in run_episodes(model, 3, seed=123)]) > 150


def _tiny_batch(rng, n_out: int, gaussian: bool) -> Episodes:
    T, N = 6, 3
    alive = np.ones((T, N), dtype=bool)
    alive[4:, 0] = alive[2:, 1] = False  # three episodes of lengths 4, 2 and 6
    actions = rng.normal(size=(T, N, n_out)) if gaussian else rng.integers(0, n_out, (T, N))
    return Episodes(rng.normal(size=(T, N, 3)) * alive[..., None], actions, rng.random((T, N)) * alive, alive)


@pytest.mark.parametrize("cell", ["lstm", "gru", "elman"])
@pytest.mark.parametrize("policy", ["categorical", "gaussian"])
def test_the_policy_gradient_of_a_recurrent_network_matches_finite_differences(cell, policy):
    """d loss / d params through BPTT over episodes of different lengths (padding masked), and d loss / d log std."""
    rng = np.random.default_rng(0)
    net = RNN(3, (4,), 2, cell=cell, readout=(3,), output_activation="tanh" if policy == "gaussian" else "identity")
    params = net.init_params(rng, 1)[0] + rng.normal(0.0, 0.2, net.n_params)
    batch = _tiny_batch(rng, 2, policy == "gaussian")
    A = advantages(reward_to_go(batch.rewards, 0.9), batch.alive)
    log_std = np.array([-0.3, 0.2]) if policy == "gaussian" else None
    pn = PolicyNetwork(net)
    loss, entropy, grad, g_log_std = policy_loss(pn, params, log_std, batch, A, 0.05)
    assert relative_error(grad, numeric_gradient(lambda p: policy_loss(pn, p, log_std, batch, A, 0.05)[0], params.copy())) < 1e-6
    if log_std is not None:
        numeric = numeric_gradient(lambda s: policy_loss(pn, params, s, batch, A, 0.05)[0], log_std.copy())
        assert relative_error(g_log_std, numeric) < 1e-6
    # The MLP's gradient over the same batch (its running steps as one batch) too.
    mlp = MLP((3, 5, 2), "tanh", "identity")
    w = mlp.init_params(rng, 1)[0]
    categorical = _tiny_batch(rng, 2, False)
    mp = PolicyNetwork(mlp)
    g = policy_loss(mp, w, None, categorical, A, 0.05)[2]
    assert relative_error(g, numeric_gradient(lambda p: policy_loss(mp, p, None, categorical, A, 0.05)[0], w.copy())) < 1e-6


def test_advantages_use_the_other_running_episodes_as_baseline():
    G = np.array([[3.0, 1.0, 2.0], [2.0, 0.0, 1.0]])
    alive = np.array([[True, True, True], [True, False, True]])
    A = advantages(G, alive)
    raw = np.array([3.0 - 1.5, 1.0 - 2.5, 2.0 - 2.0, 2.0 - 1.0, 1.0 - 2.0])  # leave-one-out means of the running ones
    np.testing.assert_allclose(A[alive], (raw - raw.mean()) / (raw.std() + 1e-8))
    assert A[1, 1] == 0.0
    np.testing.assert_allclose(reward_to_go(np.array([[1.0], [1.0], [1.0]]), 0.5)[:, 0], [1.75, 1.5, 1.0])


def test_same_seed_same_run_and_another_seed_another(tmp_path):
    """A masked-CartPole LSTM trained twice from the same seed: identical rows, parameters and test figures."""
    runs = [make_training_run(parse_config(MASKED_LSTM), run_dir=tmp_path / f"r{i}", progress=False).run() for i in range(2)]
    keys = ("mean_return", "loss", "entropy", "grad_norm", "val_mean_return", "env_steps")
    assert [[r[k] for k in keys] for r in runs[0].history] == [[r[k] for k in keys] for r in runs[1].history]
    np.testing.assert_array_equal(runs[0].params, runs[1].params)
    assert runs[0].summary["test_mean_return"] == runs[1].summary["test_mean_return"]
    other = make_training_run(parse_config({**MASKED_LSTM, "seed": 4}), run_dir=tmp_path / "other", progress=False).run()
    assert [r["loss"] for r in other.history] != [r["loss"] for r in runs[0].history]
    # Validated every 2 updates: the kept parameters are the best validated ones.
    assert [r["val_mean_return"] is not None for r in runs[0].history] == [False, True, False, True]


def test_evo_compare_on_a_control_config_prints_evolution_and_policy_gradient(tmp_path):
    cfg = write_config(tmp_path / "masked.toml", {**MASKED_LSTM, "train": {**MASKED_LSTM["train"], "iterations": 2}})
    proc = _cli("compare", str(cfg), "--out", str(tmp_path / "runs"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "evolution (cmaes)" in proc.stdout and "policy gradient (REINFORCE, adam)" in proc.stdout
    assert "test mean return" in proc.stdout
    (out_dir,) = (tmp_path / "runs").glob("masked-lstm-pg-compare*")
    report = json.loads((out_dir / "compare.json").read_text())
    for method in ("evolution", "policy_gradient"):
        assert report["aggregate"][method]["test_mean_return"]["mean"] > 0, method
        assert report["traces"][method][0], method
    assert_png(out_dir / "compare.png")
    assert (out_dir / "policy-gradient-seed3" / "model.json").is_file()
    proc = _cli("train", str(cfg), "--iterations", "1", "--out", str(tmp_path / "t"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "iterations 1" in proc.stdout and "test_mean_return" in proc.stdout


def test_double_pole_trains_a_gaussian_policy_and_reports_the_benchmark_tests(tmp_path):
    config = parse_config(
        {
            "name": "dp-pg",
            "network": {"type": "rnn", "cell": "elman", "hidden": [3]},
            "task": {"type": "control", "env_id": "DoublePoleNoVel-v0", "episodes": 1, "val_episodes": 1, "test_episodes": 1},
            "strategy": {"type": "cmaes", "population": 8},
            "train": {"iterations": 2, "episodes_per_update": 4, "max_episode_steps": 50, "init_std": 0.3},
        }
    )
    result = make_training_run(config, run_dir=tmp_path / "dp", progress=False).run()
    s = result.summary
    assert s["policy"]["kind"] == "gaussian" and len(s["policy"]["std"]) == 1 and s["policy"]["std"][0] != 0.3
    assert s["env_steps"] <= 2 * 4 * 50
    assert "test_balanced_steps" in s and s["test_generalization_starts"] == 625


def test_networks_without_a_per_step_backward_and_bad_fields_are_refused(tmp_path):
    recurrent_neat = {
        **MASKED_LSTM,
        "network": {"type": "neat", "feed_forward": False, "max_nodes": 12, "max_connections": 24},
        "strategy": {"type": "neat", "population": 10},
    }
    for command in ("train", "compare"):
        proc = _cli(command, str(write_config(tmp_path / "rneat.toml", recurrent_neat)), "--out", str(tmp_path / "runs"), "--no-progress")
        assert proc.returncode == 2, proc.stderr
        assert "policy-gradient baseline needs a network with a backward pass at every step" in proc.stderr
    with pytest.raises(ConfigError, match="bptt_truncate"):
        make_training_run(parse_config({**MASKED_LSTM, "network": {**MASKED_LSTM["network"], "bptt_truncate": 3}}), progress=False)
    for field, value in (("gamma", 0.0), ("gamma", "0.9"), ("episodes_per_update", 0), ("entropy_bonus", -1.0), ("init_std", 0.0)):
        with pytest.raises(ConfigError, match=f"train.{field}"):
            parse_config({**MASKED_LSTM, "train": {field: value}})
    assert not (tmp_path / "runs").exists()
