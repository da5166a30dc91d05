"""The ESN as a network spec: every encoding, the fitted network, and a run directory's network rebuilt and re-scored."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evo import load_config, run_evolution
from evo.build import build_network, build_task
from evo.files import load_npz
from evo.tasks.timeseries import free_run_starts
from networks import network_from_description
from networks.esn import ESNReadoutSpec, ESNSpec, Reservoir, nrmse
from networks.esn.encodings import ENCODINGS
from networks.spec import HasComplexity, NetworkSpec

SETTINGS = {
    "units": 40,
    "connectivity": 0.1,
    "spectral_radius": 0.9,
    "input_scaling": 0.5,
    "leak_rate": 0.3,
    "bias_scaling": 0.2,
    "ridge": 1e-8,
    "seed": 3,
    "n_reservoirs": 2,
    "min_units": 20,
    "max_units": 60,
}


@pytest.fixture(params=sorted(ENCODINGS))
def spec(request) -> ESNSpec:
    """A small spec of every registered encoding."""
    return ESNSpec.from_settings(request.param, 1, 1, **SETTINGS)


def test_every_encoding_is_a_network_spec_that_round_trips(spec):
    assert isinstance(spec, NetworkSpec) and isinstance(spec, HasComplexity)
    description = json.loads(json.dumps(spec.describe()))
    assert description["type"] == "esn" and description["seed"] == 3 and description["n_params"] == spec.n_params
    assert network_from_description(description) == spec
    genomes = spec.init_params(np.random.default_rng(0), 3)
    assert genomes.shape == (3, spec.n_params)
    np.testing.assert_array_equal(genomes[0], spec.initial_genome())
    assert spec.complexity(genomes).shape == (3,)
    with pytest.raises(TypeError, match="no readout"):
        spec.forward(genomes, np.zeros((10, 1)))


def test_fit_gives_a_readout_spec_that_predicts_like_the_estimator(spec):
    u = np.sin(np.arange(400) / 7.0)[:, None]
    genome = spec.initial_genome() + 0.1
    fitted, params = spec.fit(genome, u[:-1], u[1:], washout=50)
    assert isinstance(fitted, ESNReadoutSpec) and params.shape == (fitted.n_params,)
    assert network_from_description(json.loads(json.dumps(fitted.describe()))) == fitted
    prediction = fitted.predict(params, u[:-1])
    assert prediction.shape == (399, 1)
    assert nrmse(prediction[50:], u[51:]) < 0.05
    np.testing.assert_allclose(fitted.model(params).predict(u[:-1]), prediction, rtol=1e-12, atol=1e-14)
    stacked = fitted.forward(np.stack([params, params]), u[:-1, 0])
    np.testing.assert_array_equal(stacked[0], stacked[1])
    np.testing.assert_allclose(stacked[0], prediction, rtol=1e-12, atol=1e-14)


def test_readout_spec_starts_from_the_seeds_weights():
    fitted = ESNReadoutSpec(Reservoir(units=30, connectivity=0.2, seed=1), n_outputs=2)
    params = fitted.init_params(np.random.default_rng(0), 2)
    assert params.shape == (2, fitted.n_params) == (2, 2 * (1 + 1 + 30) + fitted.reservoir.n_weights)
    np.testing.assert_array_equal(fitted.weights(params[0]).W.toarray(), fitted.reservoir.build().W.toarray())
    assert not fitted.predict(params[0], np.ones(5)).any()  # a zero readout
    with pytest.raises(ValueError, match="parameters"):
        fitted.split(params[0][:-1])


def test_mackey_glass_run_directory_network_reproduces_the_test_figures(tmp_path):
    """configs/mackey-glass-esn.toml, briefly: the run's fitted network, rebuilt from its files, scores what summary.json says."""
    result = run_evolution("configs/mackey-glass-esn.toml", run_dir=tmp_path / "run", generations=1, population=4)
    d, summary = result.run_dir, result.summary
    config = load_config(d / "config.toml")
    task = build_task(config)
    data = task.data
    # The genome's spec: the run's own network, and fitting its genome again gives the saved parameters.
    genome_spec = network_from_description(json.loads((d / "best_genome.json").read_text())["network"])
    assert genome_spec == build_network(config, task)
    genome = load_npz(d / "best_genome.npz")["params"]
    # The fitted network: reservoir and readout, from the description and the saved parameters alone.
    trained = json.loads((d / "best_trained.json").read_text())
    fitted = network_from_description(trained["network"])
    params = load_npz(d / "best_trained.npz")["params"]
    np.testing.assert_array_equal(
        genome_spec.fit(genome, data.inputs[: data.train_end], data.targets[: data.train_end], data.washout)[1], params
    )
    prediction = fitted.predict(params, data.inputs[: data.test_end])
    test = slice(data.val_end, data.test_end)
    assert nrmse(prediction[test], data.targets[test]) == pytest.approx(summary["test_nrmse"], rel=1e-9)
    val = slice(data.train_end, data.val_end)
    assert nrmse(prediction[val], data.targets[val]) == pytest.approx(summary["val_nrmse"], rel=1e-9)
    # The closed loop (NRMSE84) from the teacher-forced states at the test's start points.
    model = fitted.model(params)
    states = model.run(data.inputs[: data.test_end])
    points = free_run_starts(data, task.horizon, task.starts)
    free = model.generate(task.horizon, states[points], data.inputs[points])
    truth = data.targets[points + task.horizon - 1]
    free_nrmse = nrmse(free[:, -1], truth, variance=float(np.var(data.targets[test])))
    assert free_nrmse == pytest.approx(summary["test_nrmse_free_run"], rel=1e-9)
