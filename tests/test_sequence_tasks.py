"""Sequence tasks for recurrent networks: digits read row by row, and forecasting a series from a window of its past
(the echo-state task's split), through `evo run`, `evo train` (BPTT) and `evo compare`."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from evo import ConfigError, parse_config, run_evolution
from evo.build import build_network, build_task
from evo.compare import compare
from evo.tasks.forecast import ForecastTask
from evo.tasks.series import make_series_split
from evo.train import TrainingRun
from networks import MLP
from networks.rnn import RNN
from tests.helpers import write_config

FORECAST = {
    "name": "forecast-test",
    "seed": 1,
    "generations": 3,
    "network": {"type": "rnn", "cell": "gru", "hidden": [6]},
    "task": {"type": "forecast", "washout": 40, "n_train": 300, "n_val": 100, "n_test": 150, "window": 12, "horizon": 20, "starts": 5},
    "strategy": {"type": "snes", "population": 8, "sigma": 0.05},
    "train": {"epochs": 4, "lr": 0.01, "batch_size": 32, "clip_norm": 1.0, "weight_decay": 0.0},
}

DIGITS_RNN = {
    "name": "digits-rnn-test",
    "seed": 2,
    "generations": 2,
    "network": {"type": "rnn", "cell": "elman", "hidden": [8]},
    "task": {"type": "digits", "batch_size": 64},
    "strategy": {"type": "snes", "population": 6, "sigma": 0.1},
    "train": {"epochs": 3, "lr": 0.01},
}


def test_digits_are_read_row_by_row():
    config = parse_config(DIGITS_RNN)
    task = build_task(config)
    net = build_network(config, task)
    assert isinstance(net, RNN) and (net.steps, net.input_size, net.n_outputs) == (8, 8, 10)
    assert net.output_activation == "softmax"
    # Step t of a sample is row t of its image: the flat pixels are row-major.
    image = task.split.X_train[0].reshape(8, 8)
    np.testing.assert_array_equal(task.split.X_train[0].reshape(net.steps, net.input_size)[3], image[3])


def test_forecast_windows_targets_and_free_run_by_hand():
    data = make_series_split("mackey_glass", 40, 300, 100, 150)
    task = ForecastTask(data, window=12, horizon=20, starts=5)
    X, y = task.segment("train")
    assert X.shape == (300, 12) and y.shape == (300, 1)
    t = 40 + 7  # the 8th training window ends at step 47 and predicts the series' next value
    np.testing.assert_array_equal(X[7], data.inputs[t - 11 : t + 1, 0])
    np.testing.assert_array_equal(y[7], data.inputs[t + 1])
    # A "network" that repeats the last value: its one-step and free-run errors are known in closed form.
    last = MLP((12, 1), "identity", "identity")
    genome = np.zeros(last.n_params)
    genome[11] = 1.0
    figures = task.test(last, genome, seed=0)
    Xt, yt = task.segment("test")
    expected = np.sqrt(np.mean((Xt[:, -1:] - yt) ** 2) / np.var(yt))
    assert figures["test_nrmse"] == pytest.approx(expected, rel=1e-12)
    points = data.val_end + ((150 - 20) // 5) * np.arange(5)
    truth = data.targets[points + 19]
    free = np.sqrt(np.mean((data.inputs[points] - truth) ** 2) / np.var(data.targets[data.val_end :]))
    assert figures["test_nrmse_free_run"] == pytest.approx(free, rel=1e-12)
    assert task.validate(last, genome, 0)["val_nrmse"] > 0


def test_forecast_refuses_a_window_longer_than_the_washout(tmp_path):
    bad = {**FORECAST, "task": {**FORECAST["task"], "window": 60}}
    with pytest.raises(ConfigError, match=r"task.window = 60: must be between 1 and washout \+ 1 = 41"):
        build_task(parse_config(bad))
    proc = subprocess.run(
        [sys.executable, "-m", "evo.cli", "run", str(write_config(tmp_path / "bad.toml", bad)), "--out", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "task.window = 60" in proc.stderr
    assert not (tmp_path / "runs").exists()
    with pytest.raises(ConfigError, match="network.steps = 5: the task's samples hold 12 values"):
        build_network(parse_config({**FORECAST, "network": {**FORECAST["network"], "steps": 5}}), build_task(parse_config(FORECAST)))


def test_forecast_evolves_trains_and_compares(tmp_path):
    config = parse_config(FORECAST)
    evolved = run_evolution(config, run_dir=tmp_path / "evo")
    assert evolved.summary["test_nrmse"] > 0 and "test_nrmse_free_run" in evolved.summary
    trained = TrainingRun(config, run_dir=tmp_path / "train", progress=False).run()
    s = trained.summary
    assert s["network"]["type"] == "rnn" and s["train"]["clip_norm"] == 1.0
    # Four epochs of BPTT already beat the untrained start by far (its NRMSE is near 1).
    assert s["test_nrmse"] < 0.5 and trained.history[-1]["train_loss"] < trained.history[0]["train_loss"]
    result = compare(config, seeds=1, out=tmp_path, progress=False)
    assert set(result.report["aggregate"]) == {"evolution", "backprop"}
    assert "one-step test NRMSE" in result.table and "closed-loop NRMSE" in result.table


def test_digits_rnn_runs_trains_and_compares(tmp_path):
    config = parse_config(DIGITS_RNN)
    assert run_evolution(config, run_dir=tmp_path / "evo").summary["test_samples"] == 360
    trained = TrainingRun(config, run_dir=tmp_path / "train", progress=False).run()
    assert trained.summary["test_accuracy"] > 0.5  # three epochs of BPTT on an Elman network
    result = compare(config, seeds=1, out=tmp_path, progress=False)
    assert result.report["aggregate"]["backprop"]["test_accuracy"]["mean"] > 0.5
