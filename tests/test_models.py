"""Self-contained models: every kind of run directory holds one that `networks.load_model` turns back into answers."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from evo import parse_config, run_evolution
from evo.tasks.datasets import DIGITS_IMAGE_SHAPE, load_digits_raw, stratified_split
from evo.train import TrainingRun
from networks import load_model
from networks.model import Classifier, Controller, SeriesPredictor
from networks.preprocessing import Preprocessing
from tests.helpers import CARTPOLE, DIGITS, XOR


@pytest.fixture(scope="module")
def raw_digits_test():
    """The digits test split as distributed (pixels 0..16), as the task's default split draws it."""
    X, y = load_digits_raw()
    split = stratified_split(X, y, 0.1, 0.2, 0, image_shape=DIGITS_IMAGE_SHAPE)
    return split.X_test, split.y_test


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    return run_evolution(parse_config(DIGITS), run_dir=tmp_path_factory.mktemp("m") / "digits")


def test_preprocessing_round_trips_bit_for_bit_and_refuses_bad_records():
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(50, 5))
    X[:, 2] = 7.0  # a constant feature keeps scale 1
    prep = Preprocessing.standardize(X[:40], label_names=("a", "b"))
    back = Preprocessing.from_dict(json.loads(json.dumps(prep.to_dict())))
    assert np.array_equal(back.apply(X), prep.apply(X)) and back.label_names == ("a", "b")
    assert np.allclose(prep.apply(X[:40]).mean(axis=0), 0.0) and prep.scale[2] == 1.0
    assert np.array_equal(prep.apply(X[:3]), (X[:3] - X[:40].mean(axis=0)) / prep.scale)
    target = Preprocessing(target_offset=10.0, target_scale=4.0)
    assert np.allclose(target.invert_target(target.apply_target(np.array([1.0, 2.0]))), [1.0, 2.0])
    with pytest.raises(ValueError, match="5 features per sample, the model reads 64"):
        Preprocessing(n_features=64).apply(X)
    with pytest.raises(ValueError, match="zero would divide"):
        Preprocessing(scale=[1.0, 0.0])
    with pytest.raises(ValueError, match="unknown field"):
        Preprocessing.from_dict({"mean": [0.0]})


def test_digits_model_fed_raw_pixels_reproduces_the_runs_test_accuracy_exactly(digits_run, raw_digits_test):
    X_raw, y = raw_digits_test
    model = load_model(digits_run.run_dir)
    assert isinstance(model, Classifier) and model.preprocessing.note == "pixels (0..16) / 16"
    assert model.record["figures"]["test_accuracy"] == digits_run.summary["test_accuracy"]
    assert np.mean(model.predict(X_raw) == y) == digits_run.summary["test_accuracy"]
    assert model.predict(X_raw.reshape(-1, 8, 8)).tolist() == model.predict(X_raw).tolist()  # images flatten as (C, H, W)
    # The preprocessing is what makes it right: the bare network on raw pixels answers differently.
    bare = model.spec.predict(model.params, X_raw)
    assert not np.allclose(bare, model.predict_proba(X_raw))
    assert model.labels.tolist() == list(range(10))


def test_a_training_run_and_its_model_agree(tmp_path, raw_digits_test):
    config = parse_config({**DIGITS, "train": {"epochs": 3, "batch_size": 64}})
    result = TrainingRun(config, run_dir=tmp_path / "train", progress=False).run()
    model = load_model(result.run_dir)
    X_raw, y = raw_digits_test
    assert np.mean(model.predict(X_raw) == y) == result.summary["test_accuracy"]
    assert model.record["source"] == "backprop (adam)"


def test_xor_model_thresholds_one_sigmoid_output(tmp_path):
    result = run_evolution(parse_config({**XOR, "generations": 40}), run_dir=tmp_path / "xor")
    model = load_model(result.run_dir)
    cases = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    assert np.mean(model.predict(cases) == np.array([0, 1, 1, 0])) == result.summary["test_accuracy"]
    proba = model.predict_proba(cases)
    assert proba.shape == (4, 2) and np.allclose(proba.sum(axis=1), 1.0)


def test_controller_acts_as_the_task_did(tmp_path):
    from evo.build import build_task

    config = parse_config(CARTPOLE)
    result = run_evolution(config, run_dir=tmp_path / "cp")
    model = load_model(result.run_dir)
    assert isinstance(model, Controller) and model.env_id == "CartPole-v1" and model.max_steps == 200
    task = build_task(config)
    observations = np.random.default_rng(1).normal(size=(20, 4))
    expected = task._actions(result.network.predict(result.best_genome, observations))
    assert model.act(observations).tolist() == expected.tolist()
    assert all(isinstance(model.act(o), int) and model.act(o) == e for o, e in zip(observations, expected))


def test_esn_model_predicts_the_raw_series_as_the_task_scored_it(tmp_path):
    from evo.build import build_task
    from networks.esn import nrmse

    data = {
        "name": "esn-test",
        "generations": 2,
        "network": {"type": "esn", "units": 50},
        "task": {"type": "timeseries", "washout": 50, "n_train": 300, "n_val": 100, "n_test": 200},
        "strategy": {"type": "cmaes", "population": 4, "sigma": 0.3},
    }
    config = parse_config(data)
    result = run_evolution(config, run_dir=tmp_path / "esn")
    model = load_model(result.run_dir)
    assert isinstance(model, SeriesPredictor)
    split = build_task(config).data
    st = split.source["standardised"]
    raw = split.inputs[:, 0] * st["std"] + st["mean"]  # the series in its own units
    predicted = model.predict(raw[: split.test_end])
    test = slice(split.val_end, split.test_end)
    truth = split.targets[test, 0] * st["std"] + st["mean"]
    assert nrmse(predicted[test], truth) == pytest.approx(result.summary["test_nrmse"], rel=1e-9)
    assert model.generate(raw[: split.test_end], 5).shape == (5,)


def test_every_pareto_member_has_its_model(tmp_path):
    config = parse_config(
        {
            "name": "front",
            "generations": 4,
            "network": {"type": "neat", "max_nodes": 12, "max_connections": 24},
            "task": {"type": "xor"},
            "strategy": {"type": "neat", "population": 20, "selection": "nsga2"},
        }
    )
    result = run_evolution(config, run_dir=tmp_path / "front")
    front = json.loads((result.run_dir / "pareto_front.json").read_text())
    cases = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    for k, row in enumerate(front):
        member = load_model(result.run_dir, member=k)
        assert np.mean(member.predict(cases) == np.array([0, 1, 1, 0])) == row["test_accuracy"]
    with pytest.raises(ValueError, match=f"members 0..{len(front) - 1}"):
        load_model(result.run_dir, member=len(front))


def test_a_run_directory_from_before_models_still_loads_with_a_warning(digits_run, tmp_path, raw_digits_test):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(digits_run.run_dir, old)
    (old / "model.json").unlink()
    (old / "model.npz").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_model(old)
    assert any("preprocessing" in str(w.message) for w in caught)
    assert np.array_equal(model.params, load_model(digits_run.run_dir).params)


def test_a_neat_networks_parameter_count_is_what_it_uses_not_the_padded_genome(tmp_path):
    data = {
        "name": "neat-train",
        "generations": 3,
        "network": {"type": "neat", "max_nodes": 12, "max_connections": 24},
        "task": {"type": "xor"},
        "strategy": {"type": "neat", "population": 20},
        "train": {"epochs": 2},
    }
    config = parse_config(data)
    trained = TrainingRun(config, run_dir=tmp_path / "train", progress=False).run()
    evolved = run_evolution(config, run_dir=tmp_path / "evolve")
    for result, params in ((trained, trained.params), (evolved, evolved.best_genome)):
        spec = result.network
        used = int(spec.count_enabled(params)) + int(spec.count_hidden(params)) + spec.n_outputs
        assert result.summary["n_params"] == used < spec.n_params == result.summary["genome_length"]
