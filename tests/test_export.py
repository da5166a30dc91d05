"""ONNX export: onnxruntime gives what `evo predict` gives (within 1e-5) on the test split, for MLP, CNN and NEAT graphs."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from evo import parse_config, run_evolution
from evo.cli import main
from evo.tasks.datasets import DIGITS_IMAGE_SHAPE, DIGITS_PREPROCESSING, load_digits_raw, stratified_split
from networks import load_model
from networks.export_onnx import to_onnx
from networks.model import save_model
from networks.neat import NEATSpec
from tests.helpers import DIGITS

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def raw_test():
    X, y = load_digits_raw()
    split = stratified_split(X, y, 0.1, 0.2, 0, image_shape=DIGITS_IMAGE_SHAPE)
    return split.X_test


def onnx_outputs(model, X: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(to_onnx(model).SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": X.astype(np.float32)})[0]


def largest_difference(run_dir, X: np.ndarray, member: int | None = None) -> float:
    model = load_model(run_dir, member=member)
    return float(np.abs(onnx_outputs(model, X) - model.predict_proba(X)).max())


def test_mlp(tmp_path, raw_test):
    result = run_evolution(parse_config(DIGITS), run_dir=tmp_path / "mlp")
    assert largest_difference(result.run_dir, raw_test) < TOLERANCE


def test_cnn_with_padding_and_pooling(tmp_path, raw_test):
    data = {
        **DIGITS,
        "generations": 2,
        "network": {
            "type": "cnn",
            "conv": [
                {"filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu", "pool": 2},
                {"filters": 6, "kernel_size": 2, "stride": 1, "padding": 0, "activation": "leaky_relu", "pool": 0},
            ],
            "hidden": [12],
            "activation": "tanh",
        },
    }
    result = run_evolution(parse_config(data), run_dir=tmp_path / "cnn")
    assert largest_difference(result.run_dir, raw_test) < TOLERANCE


def test_searched_architecture_exports_its_decoded_cnn(tmp_path, raw_test):
    data = {
        **DIGITS,
        "generations": 1,
        "network": {
            "type": "cnn_search",
            "max_blocks": 2,
            "filter_choices": [2, 4],
            "kernel_choices": [3],
            "max_dense": 1,
            "dense_choices": [8],
        },
        "strategy": {"type": "cnn_arch", "population": 6},
    }
    result = run_evolution(parse_config(data), run_dir=tmp_path / "search")
    assert load_model(result.run_dir).spec.describe()["type"] == "cnn"
    assert largest_difference(result.run_dir, raw_test) < TOLERANCE


def test_neat_graph_with_hidden_nodes_of_several_activations(tmp_path, raw_test):
    spec = NEATSpec(64, 10, max_nodes=90, max_connections=700, output_activation="softmax")
    rng = np.random.default_rng(4)
    # Hidden nodes 74..79 in two levels, mixed activations; outputs read inputs, hidden nodes, and each other's sources.
    connections = [(int(i), 74 + k % 3, rng.normal()) for k, i in enumerate(rng.choice(64, 18, replace=False))]
    connections += [(74 + k % 3, 77 + k % 3, rng.normal()) for k in range(6)] + [(76, 79, 0.7), (5, 79, -0.4)]
    connections += [(int(src), 64 + k, rng.normal()) for k in range(10) for src in (rng.integers(0, 64), 77 + k % 3, 79)]
    connections.append((3, 65, 0.9, False))  # a disabled connection is no edge
    activations = ["identity"] * 74 + ["tanh", "relu", "sigmoid", "leaky_relu", "tanh", "relu"]
    genome = spec.build_genome(
        connections, n_hidden=6, biases=rng.normal(size=80) * 0.3, activations=activations, responses=rng.uniform(0.5, 1.5, 80)
    )
    outputs = {"kind": "classification", "decision": "argmax", "labels": [str(i) for i in range(10)]}
    save_model(tmp_path / "model", spec, genome, DIGITS_PREPROCESSING, outputs)
    model = load_model(tmp_path / "model.json")
    assert model.spec.count_hidden(genome) == 6
    assert float(np.abs(onnx_outputs(model, raw_test) - model.predict_proba(raw_test)).max()) < TOLERANCE


def test_neat_run_and_its_pareto_members(tmp_path):
    data = {
        "name": "xor-front",
        "generations": 15,
        "network": {"type": "neat", "max_nodes": 16, "max_connections": 40},
        "task": {"type": "xor"},
        "strategy": {"type": "neat", "population": 30, "selection": "nsga2"},
    }
    result = run_evolution(parse_config(data), run_dir=tmp_path / "neat")
    cases = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    assert largest_difference(result.run_dir, cases) < TOLERANCE
    for k in range(len(list((result.run_dir / "pareto_models").glob("member-*.json")))):
        assert largest_difference(result.run_dir, cases, member=k) < TOLERANCE


def test_evo_export_writes_the_file_and_refuses_an_esn(tmp_path, capsys):
    result = run_evolution(parse_config({**DIGITS, "generations": 1}), run_dir=tmp_path / "d")
    assert main(["export", str(result.run_dir), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"] and session.get_inputs()[0].shape[1] == 64
    meta = session.get_modelmeta().custom_metadata_map
    assert "pixels (0..16) / 16" in meta["evo_preprocessing"] and '"labels"' in meta["evo_outputs"]
    esn = run_evolution(
        parse_config(
            {
                "name": "esn",
                "generations": 1,
                "network": {"type": "esn", "units": 20},
                "task": {"type": "timeseries", "washout": 20, "n_train": 200, "n_val": 50, "n_test": 120},
                "strategy": {"type": "cmaes", "population": 4},
            }
        ),
        run_dir=tmp_path / "esn",
    )
    capsys.readouterr()
    assert main(["export", str(esn.run_dir)]) == 2
    err = capsys.readouterr().err
    assert "'esn_readout' is not supported yet; supported: ['cnn', 'mlp', 'neat']" in err and not (esn.run_dir / "model.onnx").exists()
