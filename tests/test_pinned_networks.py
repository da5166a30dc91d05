"""Every activation, in every network type, against literal numbers: a unit network with weight 1 shows act(x) itself.

These pin the numbers, not only the agreement of two code paths: a wrong leaky-ReLU slope or a sigmoid with the
wrong steepness fails here even where a reference formula was copied from the code.
"""

from __future__ import annotations

import numpy as np
import pytest

from networks import CNN, MLP, activation_names
from networks.neat import NEATSpec

X = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
LITERAL = {  # act(X), from the formulas by hand: tanh(x), 1 / (1 + e^-x), max(0, x), x or 0.01 x
    "identity": [-2.0, -0.5, 0.0, 0.5, 2.0],
    "relu": [0.0, 0.0, 0.0, 0.5, 2.0],
    "leaky_relu": [-0.02, -0.005, 0.0, 0.5, 2.0],
    "tanh": [-0.9640275800758169, -0.46211715726000974, 0.0, 0.46211715726000974, 0.9640275800758169],
    "sigmoid": [0.11920292202211755, 0.3775406687981454, 0.5, 0.6224593312018546, 0.8807970779778823],
}


def test_the_literal_table_covers_every_activation():
    assert sorted(activation_names()) == sorted(LITERAL)


@pytest.mark.parametrize("name", sorted(LITERAL))
def test_mlp_hidden_and_output_activations_are_the_textbook_functions(name):
    hidden = MLP((1, 1, 1), name, "identity")  # W1 = 1, b1 = 0, W2 = 1, b2 = 0: out = act(x)
    np.testing.assert_allclose(hidden.predict(np.array([1.0, 0.0, 1.0, 0.0]), X[:, None])[:, 0], LITERAL[name], rtol=1e-14, atol=1e-15)
    output = MLP((1, 1), "tanh", name)  # W = 1, b = 0: out = output_act(x)
    np.testing.assert_allclose(output.predict(np.array([1.0, 0.0]), X[:, None])[:, 0], LITERAL[name], rtol=1e-14, atol=1e-15)


def test_mlp_softmax_output_by_hand():
    net = MLP((1, 2), "tanh", "softmax")  # logits (x, -x): probabilities 1 / (1 + e^-2x) and 1 / (1 + e^2x)
    out = net.predict(np.array([1.0, -1.0, 0.0, 0.0]), np.array([[1.0], [0.0], [-0.25]]))
    np.testing.assert_allclose(out[:, 0], [0.8807970779778823, 0.5, 0.3775406687981454], rtol=1e-14)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-15)


@pytest.mark.parametrize("name", sorted(LITERAL))
def test_cnn_conv_activation_is_the_textbook_function(name):
    net = CNN((1, 1, 1), [{"filters": 1, "kernel_size": 1, "activation": name}], 1)  # 1x1 conv w 1, dense w 1
    params = np.array([1.0, 0.0, 1.0, 0.0])  # conv W, conv b, dense W, dense b
    np.testing.assert_allclose(net.predict(params, X.reshape(-1, 1, 1, 1))[:, 0], LITERAL[name], rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name", sorted(LITERAL))
def test_neat_hidden_node_activation_is_the_textbook_function(name):
    """input -> hidden (the activation, response 1) -> identity output."""
    spec = NEATSpec(1, 1, max_nodes=3, max_connections=2, output_activation="identity")
    genome = spec.build_genome([(0, 2, 1.0), (2, 1, 1.0)], n_hidden=1, activations=["identity", "identity", name])
    np.testing.assert_allclose(spec.predict(genome, X[:, None])[:, 0], LITERAL[name], rtol=1e-14, atol=1e-15)


def test_neat_node_is_act_of_bias_plus_response_times_the_weighted_sum():
    """NEAT's steepened sigmoid output node: 1 / (1 + exp(-(bias + 4.9 w x)))."""
    spec = NEATSpec(1, 1, max_nodes=2, max_connections=1)
    genome = spec.build_genome([(0, 1, 0.8)], biases=[0.0, 0.25], responses=[1.0, 4.9])
    expected = 1.0 / (1.0 + np.exp(-(0.25 + 4.9 * 0.8 * X)))
    np.testing.assert_allclose(spec.predict(genome, X[:, None])[:, 0], expected, rtol=1e-12, atol=1e-15)
