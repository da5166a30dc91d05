"""``network.dtype = "float32"``: forward passes in single precision, the same determinism guarantees as float64.

Genomes and fitness stay float64; a float32 spec's outputs are float32, its
description (and so the saved model) keeps the dtype, and its runs give the
same results serial or on Ray, any chunk size, and after a resume.
"""

from __future__ import annotations

import numpy as np
import pytest

from evo import parse_config, run_evolution
from evo.run import EvolutionRun
from networks import load_model, network_from_description
from networks.cnn import CNN
from networks.cnn_search import CNNSearchSpace
from networks.mlp import MLP
from networks.stack import bind_genomes
from tests.helpers import DIGITS, metrics_without_time

# Shapes where OpenBLAS's float32 products split over threads (a 256-sample batch, 32 hidden units or 8 filters):
# what keeps them equal serial and on Ray is evo.evaluators.blas_for.
DIGITS_MLP = {**DIGITS, "network": {"hidden": [32]}, "task": {"type": "digits", "batch_size": 256}}
DIGITS_CNN = {
    **DIGITS_MLP,
    "name": "digits-cnn-test",
    "network": {"type": "cnn", "conv": [{"filters": 8, "kernel_size": 3, "padding": 1, "pool": 2}]},
}
CASES = {"mlp": DIGITS_MLP, "cnn": DIGITS_CNN}

SPECS = {
    "mlp": lambda dtype: MLP((64, 12, 10), activation="tanh", output_activation="softmax", dtype=dtype),
    "cnn": lambda dtype: CNN(
        (1, 8, 8), ({"filters": 3, "kernel_size": 3, "padding": 1, "pool": 2},), 10, hidden=(6,), output_activation="softmax", dtype=dtype
    ),
    "cnn_search": lambda dtype: CNNSearchSpace((1, 8, 8), 10, max_blocks=2, filter_choices=(2, 4), dense_choices=(8,), dtype=dtype),
}


def _float32(config: dict) -> dict:
    return {**config, "network": {**config["network"], "dtype": "float32"}}


def _run(tmp_path, config: dict, name: str, evaluator: dict | None = None):
    return run_evolution(parse_config({**config, "evaluator": evaluator or {"type": "serial"}}), run_dir=tmp_path / name)


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_a_float32_forward_pass_returns_float32_close_to_float64(kind):
    single, double = SPECS[kind]("float32"), SPECS[kind]("float64")
    genomes = double.init_params(np.random.default_rng(0), 7)
    x = np.random.default_rng(1).normal(size=(20, 64))
    out32, out64 = single.forward(genomes, x), double.forward(genomes, x)
    assert out32.dtype == np.float32 and out64.dtype == np.float64
    assert single.predict(genomes[0], x).dtype == np.float32
    assert not np.array_equal(out32, out64)  # the dtype is applied, not just reported
    np.testing.assert_allclose(out32, out64, atol=1e-5)
    # Inputs already float32 (a task's cast copy) give the same numbers as float64 inputs cast by the network.
    np.testing.assert_array_equal(single.forward(genomes, x.astype(np.float32)), out32)
    # The dtype is part of the description (rebuilt by load_model); float64 descriptions stay as they were.
    assert network_from_description(single.describe()).dtype == "float32"
    assert single.describe()["dtype"] == "float32" and "dtype" not in double.describe()


def test_a_bound_float32_mlp_steps_in_float32_as_its_forward():
    net = SPECS["mlp"]("float32")
    genomes = net.init_params(np.random.default_rng(0), 5)
    obs = np.random.default_rng(2).normal(size=(5, 3, 64))  # float64 observations, per genome
    stack = bind_genomes(net, genomes)
    out = stack.forward(obs)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, net.forward(genomes, obs))
    stack.keep(np.array([1, 3]))
    np.testing.assert_array_equal(stack.forward(obs[[1, 3]]), net.forward(genomes[[1, 3]], obs[[1, 3]]))


def test_unknown_dtype_is_refused_by_the_spec():
    with pytest.raises(ValueError, match="dtype = 'float16'"):
        MLP((2, 2), dtype="float16")


@pytest.mark.parametrize("case", sorted(CASES))
def test_float32_runs_differ_from_float64_and_chunks_do_not_change_them(tmp_path, case):
    config = _float32(CASES[case])
    single = _run(tmp_path, config, "whole")
    double = _run(tmp_path, CASES[case], "double")
    # float32 fitness differs from float64 fitness (the dtype reaches the evaluation), but only in the low digits.
    fit32 = [row["mean"] for row in metrics_without_time(single.run_dir)]
    fit64 = [row["mean"] for row in metrics_without_time(double.run_dir)]
    assert fit32 != fit64
    np.testing.assert_allclose(np.asarray(fit32, dtype=float), np.asarray(fit64, dtype=float), rtol=1e-3)
    for chunk in (1, 3):
        other = _run(tmp_path, config, f"chunk{chunk}", {"type": "serial", "chunk_size": chunk})
        assert metrics_without_time(other.run_dir) == metrics_without_time(single.run_dir), chunk
        np.testing.assert_array_equal(other.best_genome, single.best_genome)
    # The saved model computes in float32 too.
    model = load_model(single.run_dir)
    assert model.spec.dtype == "float32"
    assert model.forward(np.zeros((2, 64))).dtype == np.float32


@pytest.mark.parametrize("case", sorted(CASES))
def test_float32_ray_and_resume_match_serial(tmp_path, ray_local, case):
    config = _float32(CASES[case])
    reference = _run(tmp_path, config, "serial")
    for workers, chunk in ((2, 1), (2, "auto")):
        result = _run(tmp_path, config, f"ray-{chunk}", {"type": "ray", "workers": workers, "chunk_size": chunk})
        assert result.summary["evaluator"]["type"] == "ray"
        assert metrics_without_time(result.run_dir) == metrics_without_time(reference.run_dir), chunk
        np.testing.assert_array_equal(result.best_genome, reference.best_genome)
        assert result.summary["test_accuracy"] == reference.summary["test_accuracy"]
    # Stop after 3 generations (a checkpoint), resume to the end: the same as the uninterrupted run.
    run_evolution(parse_config({**config, "generations": 3}), run_dir=tmp_path / "resumed")
    resumed = EvolutionRun.resume(tmp_path / "resumed", generations=config["generations"], progress=False).run()
    assert metrics_without_time(resumed.run_dir) == metrics_without_time(reference.run_dir)
    np.testing.assert_array_equal(resumed.best_genome, reference.best_genome)
    assert resumed.summary["test_accuracy"] == reference.summary["test_accuracy"]
