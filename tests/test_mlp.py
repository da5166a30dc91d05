"""The feedforward network: layout, batched forward pass, initialisation."""

import numpy as np
import pytest

from networks import MLP, activation_names, network_from_description
from networks.layers.dense import flatten_layers
from tests.helpers import REFERENCE_ACTIVATIONS

HIDDEN_ACTIVATIONS = sorted(name for name in REFERENCE_ACTIVATIONS if name != "softmax")


def reference_mlp(layer_sizes, hidden, output, flat, x):
    """One network, one sample at a time: np.dot per output unit over the documented flat layout, textbook activations."""
    outputs = []
    for sample in x:
        h, offset = sample, 0
        for i, (n_in, n_out) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:])):
            W = flat[offset : offset + n_in * n_out].reshape(n_in, n_out)  # W[in, out], row-major
            b = flat[offset + n_in * n_out : offset + n_in * n_out + n_out]
            offset += n_in * n_out + n_out
            z = np.array([np.dot(h, W[:, j]) + b[j] for j in range(n_out)])
            h = REFERENCE_ACTIVATIONS[output if i == len(layer_sizes) - 2 else hidden](z)
        assert offset == flat.size
        outputs.append(h)
    return np.array(outputs)


def test_every_activation_has_a_reference_formula():
    assert sorted(activation_names()) == HIDDEN_ACTIVATIONS


@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("output", ["identity", "softmax", "sigmoid", "tanh"])
def test_stack_forward_equals_one_network_at_a_time(activation, output):
    net = MLP((5, 7, 3, 4), activation, output)
    rng = np.random.default_rng(0)
    params = net.init_params(rng, 6)
    params[:, :] += rng.normal(0.0, 0.3, size=params.shape)  # non-zero biases, and pre-activations of both signs
    x = rng.normal(size=(9, 5))
    stacked = net.forward(params, x)
    assert stacked.shape == (6, 9, 4)
    for p in range(6):
        np.testing.assert_allclose(stacked[p], reference_mlp((5, 7, 3, 4), activation, output, params[p], x), rtol=1e-12, atol=1e-12)


def test_per_individual_inputs_and_flatten_round_trip():
    net = MLP((3, 4, 2))
    rng = np.random.default_rng(1)
    params = rng.normal(size=(5, net.n_params))
    x = rng.normal(size=(5, 7, 3))
    out = net.forward(params, x)
    for p in range(5):
        np.testing.assert_allclose(out[p], net.predict(params[p], x[p]))
    np.testing.assert_array_equal(flatten_layers(net.unflatten(params)), params)


def test_parameter_count_and_layout():
    net = MLP((64, 16, 10))
    assert net.n_params == 64 * 16 + 16 + 16 * 10 + 10
    params = np.arange(net.n_params, dtype=float)[None]
    (W1, b1), (W2, b2) = net.unflatten(params)
    assert W1[0, 0, 1] == 1.0  # row-major: W[in=0, out=1] is element 1
    assert b1[0, 0, 0] == 64 * 16


def test_initialisation_scale_and_zero_biases():
    rng = np.random.default_rng(2)
    relu_net = MLP((100, 200, 10), "relu")
    tanh_net = MLP((100, 200, 10), "tanh")
    p_relu = relu_net.unflatten(relu_net.init_params(rng, 1))
    p_tanh = tanh_net.unflatten(tanh_net.init_params(rng, 1))
    assert abs(p_relu[0][0].std() - np.sqrt(2 / 100)) < 0.01  # He
    assert abs(p_tanh[0][0].std() - np.sqrt(2 / 300)) < 0.01  # Glorot
    assert np.all(p_relu[0][1] == 0)


def test_softmax_is_stable_for_huge_logits():
    net = MLP((2, 3), "tanh", "softmax")
    params = np.full((1, net.n_params), 1e6)
    out = net.forward(params, np.ones((4, 2)))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out.sum(-1), 1.0)


def test_description_round_trip_and_bad_specs():
    net = MLP((4, 8, 2), "leaky_relu", "softmax")
    assert network_from_description(net.describe()) == net
    with pytest.raises(ValueError, match="activation"):
        MLP((4, 2), "swish")
    with pytest.raises(ValueError, match="layer_sizes"):
        MLP((4,))
    with pytest.raises(ValueError, match="expected inputs with 4"):
        net.forward(net.init_params(np.random.default_rng(0), 1), np.ones((3, 5)))
