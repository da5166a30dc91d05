"""Tests over every registered network type: the NetworkSpec contract, description round trip, declared capabilities."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from networks import NETWORK_TYPES, network_from_description, network_type
from networks.spec import (
    Bindable,
    CountsParameters,
    Decodable,
    GraphExportable,
    HasComplexity,
    NetworkSpec,
    Recurrent,
    SequenceTrainable,
    Trainable,
)

CAPABILITIES = {
    Trainable: ("forward_train", "backward", "weight_mask"),
    Decodable: ("decode", "decode_description"),
    GraphExportable: ("save_graph", "draw"),
    HasComplexity: ("complexity",),
    Bindable: ("bind",),
    Recurrent: ("initial_state", "step"),
    SequenceTrainable: ("forward_train_sequence", "backward_sequence"),
    CountsParameters: ("used_params",),
}


@pytest.mark.parametrize("kind", sorted(NETWORK_TYPES))
def test_every_registered_type_keeps_the_network_spec_contract(kind):
    cls = network_type(kind)
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    members = ("n_inputs", "n_outputs", "n_params", "init_params", "forward", "predict", "describe", "from_description")
    missing = [m for m in members if not hasattr(cls, m) and m not in fields]
    assert not missing, f"{kind}: {cls.__name__} lacks {missing}"


@pytest.mark.parametrize("kind", sorted(NETWORK_TYPES))
def test_capabilities_are_declared_exactly_where_the_methods_are(kind):
    cls = network_type(kind)
    for capability, methods in CAPABILITIES.items():
        has_methods = all(callable(getattr(cls, m, None)) for m in methods)
        declared = capability in cls.__mro__
        assert has_methods == declared, (
            f"{kind}: {cls.__name__} {'declares' if declared else 'has the methods of'} {capability.__name__} only"
        )


def test_an_unknown_type_names_the_allowed_ones():
    with pytest.raises(ValueError, match="'mlp'"):
        network_from_description({"type": "transformer"})


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(lambda: network_type("mlp")((3, 5, 2), activation="relu"), id="mlp"),
        pytest.param(
            lambda: network_type("cnn")((1, 6, 6), ({"filters": 2, "kernel_size": 3, "pool": 2},), 3, hidden=(4,), activation="relu"),
            id="cnn",
        ),
        pytest.param(lambda: network_type("neat")(2, 1, max_nodes=8, max_connections=12), id="neat"),
        pytest.param(lambda: network_type("neat_recurrent")(2, 1, max_nodes=8, max_connections=12), id="neat-recurrent"),
        pytest.param(lambda: network_type("rnn")(3, (4, 5), 2, cell="lstm", steps=3, readout=(3,)), id="rnn-lstm"),
        pytest.param(lambda: network_type("rnn")(2, (4,), 3, cell="gru", steps=2, output_activation="softmax"), id="rnn-gru"),
        pytest.param(lambda: network_type("rnn")(2, (4,), 1, cell="elman", activation="relu"), id="rnn-elman"),
    ],
)
def test_describe_round_trip_gives_the_same_outputs(spec):
    net = spec()
    again = network_from_description(net.describe())
    assert isinstance(again, NetworkSpec) and again.describe() == net.describe()
    rng = np.random.default_rng(0)
    params = net.init_params(rng, 3)
    x = rng.normal(size=(4, net.n_inputs))
    np.testing.assert_array_equal(again.forward(params, x), net.forward(params, x))
    assert net.forward(params, x).shape == (3, 4, net.n_outputs)
