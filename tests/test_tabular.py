"""Raw tabular data as users have it: standardised on the training split and recorded, regression targets, bad splits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_wine

from evo.baselines import make_training_run
from evo.build import build_task
from evo.compare import compare
from evo.config import ConfigError, parse_config
from evo.run import run_evolution
from networks import load_model


def _write(tmp_path, name: str, X: np.ndarray, y: np.ndarray) -> str:
    path = tmp_path / f"{name}.csv"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", fmt="%.10g")
    return str(path)


def _wine_config(tmp_path, **task) -> dict:
    data = load_wine()
    return {
        "generations": 60,
        "out": str(tmp_path / "runs"),
        "network": {"hidden": [8]},
        "task": {"type": "dataset", "path": _write(tmp_path, "wine", data.data, data.target), **task},
        "strategy": {"type": "snes", "population": 20},
        "train": {"epochs": 60},
    }


def test_features_are_standardised_on_the_training_split_only_and_recorded(tmp_path):
    task = build_task(parse_config(_wine_config(tmp_path)))
    s = task.split
    np.testing.assert_allclose(s.X_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(s.X_train.std(axis=0), 1.0, atol=1e-12)
    assert np.abs(s.X_test.mean(axis=0)).max() > 1e-3  # the test rows were not used to fit the scaling
    p = task.preprocessing()
    raw = np.loadtxt(tmp_path / "wine.csv", delimiter=",")[:, :-1]
    assert p.offset.shape == (13,) and p.scale.max() / p.scale.min() > 100  # features on very different scales
    assert p.apply(raw).shape == raw.shape
    unscaled = build_task(parse_config(_wine_config(tmp_path, standardize=False)))
    assert unscaled.split.X_train.max() > 100 and unscaled.preprocessing().offset is None


def test_a_saved_model_applies_the_scaling_to_raw_rows(tmp_path):
    result = run_evolution(parse_config(_wine_config(tmp_path)))
    model = load_model(result.run_dir)
    raw = np.loadtxt(tmp_path / "wine.csv", delimiter=",")
    task = build_task(parse_config(_wine_config(tmp_path)))
    # The test split's raw rows, found again by their standardised values.
    raw_test = task.preprocessing().offset + task.split.X_test * task.preprocessing().scale
    predicted = np.asarray(model.predict(raw_test)).astype(int)
    names = np.array(task.split.class_names).astype(float).astype(int)
    assert np.mean(predicted == names[task.split.y_test]) == pytest.approx(result.summary["test_accuracy"])
    assert raw.shape == (178, 14) and result.summary["test_accuracy"] > 0.9


def _diabetes_config(tmp_path, **task) -> dict:
    data = load_diabetes()
    return {
        "generations": 80,
        "out": str(tmp_path / "runs"),
        "network": {"hidden": []},
        "task": {"type": "dataset", "path": _write(tmp_path, "diabetes", data.data * 100, data.target), "target": "regression", **task},
        "strategy": {"type": "cmaes", "population": 16, "sigma": 0.3},
        "train": {"epochs": 150, "lr": 0.01},
    }


def test_regression_runs_trains_and_compares_with_mse_and_r2(tmp_path):
    config = parse_config(_diabetes_config(tmp_path))
    evolved = run_evolution(config).summary
    trained = make_training_run(config, progress=False).run().summary
    for s in (evolved, trained):
        assert s["test_r2"] > 0.3 and s["test_mse"] == pytest.approx(s["test_rmse"] ** 2)
        assert 2000 < s["test_mse"] < 5000  # in the target's own units (the targets span 25..346)
    report = compare(parse_config({**_diabetes_config(tmp_path), "generations": 10, "train": {"epochs": 5}}), progress=False)
    assert "test R²" in report.table and report.report["aggregate"]["backprop"]["test_mse"]["mean"] > 0


def test_a_regression_model_predicts_in_the_users_units(tmp_path):
    result = run_evolution(parse_config(_diabetes_config(tmp_path)))
    saved = json.loads((result.run_dir / "model.json").read_text())
    assert saved["preprocessing"]["target_scale"] is not None
    task = build_task(parse_config(_diabetes_config(tmp_path)))
    p = task.preprocessing()
    raw_test = p.offset + task.split.X_test * p.scale
    predicted = np.asarray(load_model(result.run_dir).predict(raw_test)).reshape(-1)
    truth = p.invert_target(task.split.y_test).reshape(-1)
    assert np.mean((predicted - truth) ** 2) == pytest.approx(result.summary["test_mse"], rel=1e-9)


def test_a_split_that_leaves_a_class_without_rows_is_a_config_error(tmp_path):
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = np.array([0] * 20 + [1] * 19 + [2])
    config = parse_config({**_wine_config(tmp_path), "task": {"type": "dataset", "path": _write(tmp_path, "rare", X, y)}})
    with pytest.raises(ConfigError, match=r"leaves class '2' \(1 sample\(s\)\) with no (training|test) rows"):
        build_task(config)


def test_regression_refuses_a_classification_fitness(tmp_path):
    with pytest.raises(ConfigError, match="minus the mean squared error"):
        build_task(parse_config(_diabetes_config(tmp_path, fitness="accuracy")))
