"""Layers and activations one by one: each backward against finite differences of its forward, and the
buffered, in-place paths against the plain ones bit for bit."""

import itertools

import numpy as np
import pytest

from networks.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from networks.layers import conv, dense
from networks.mlp import MLP
from networks.spec import Bindable, NetworkSpec, Trainable
from networks.stack import GenomeStack, bind_genomes
from tests.helpers import numeric_gradient, relative_error


# ------------------------------------------------------------- activations
@pytest.mark.parametrize("name", sorted(OUTPUT_ACTIVATIONS))
def test_every_activation_backward_is_the_derivative_of_its_forward(name):
    """<d_a, f(z)> differentiated numerically w.r.t. z equals backward(d_a, z, f(z))."""
    act = OUTPUT_ACTIVATIONS[name]
    rng = np.random.default_rng(1)
    z = rng.normal(size=(4, 5))
    z[np.abs(z) < 1e-3] = 0.5  # keep the kinks of relu / leaky_relu away from the finite differences
    d_a = rng.normal(size=z.shape)
    analytic = act.backward(d_a, z, act.forward(z))
    assert relative_error(analytic, numeric_gradient(lambda v: float(np.vdot(d_a, act.forward(v))), z.copy())) < 1e-6


@pytest.mark.parametrize("name", sorted(OUTPUT_ACTIVATIONS))
def test_every_activation_in_place_equals_out_of_place(name):
    act = OUTPUT_ACTIVATIONS[name]
    z = np.random.default_rng(2).normal(scale=3.0, size=(3, 7))
    plain = act.forward(z.copy())
    buffer = z.copy()
    np.testing.assert_array_equal(act.forward(buffer, buffer), plain)


def test_activation_facts():
    assert all(act.non_decreasing for act in ACTIVATIONS.values())
    assert not OUTPUT_ACTIVATIONS["softmax"].non_decreasing and "softmax" not in ACTIVATIONS
    assert {name for name, act in ACTIVATIONS.items() if act.he_init} == {"relu", "leaky_relu"}


# -------------------------------------------------------------------- dense
@pytest.mark.parametrize("drop_first_input", [False, True])
@pytest.mark.parametrize("output", ["identity", "sigmoid", "softmax"])
def test_dense_train_backward_against_finite_differences(output, drop_first_input):
    """d/dW, d/db and d/dx of <R, dense stack(x)> with dropout (a fixed mask) against finite differences."""
    rng = np.random.default_rng(3)
    sizes, activations = (4, 6, 3), ("tanh", output)
    layers = [(rng.normal(size=(n_in, n_out)), rng.normal(size=n_out)) for n_in, n_out in itertools.pairwise(sizes)]
    x = rng.normal(size=(5, 4))
    R = rng.normal(size=(5, 3))

    def loss(x_, layers_):
        out, _, _ = dense.dense_train_forward(x_, layers_, activations, 0.3, np.random.default_rng(4), drop_first_input, False)
        return float(np.vdot(R, out))

    _, records, is_logits = dense.dense_train_forward(x, layers, activations, 0.3, np.random.default_rng(4), drop_first_input, False)
    assert not is_logits and (records[0].mask is not None) == drop_first_input and records[1].mask is not None
    grads = [(np.empty_like(W), np.empty_like(b)) for W, b in layers]
    dz = dense.dense_train_backward(R, records, [W for W, _ in layers], grads, activations, is_logits)
    for i, (W, b) in enumerate(layers):
        for array, grad in ((W, grads[i][0]), (b, grads[i][1])):

            def wrt(value, array=array):
                saved = array.copy()
                array[...] = value
                try:
                    return loss(x, layers)
                finally:
                    array[...] = saved

            assert relative_error(grad, numeric_gradient(wrt, array.copy())) < 1e-6
    d_x = dz @ layers[0][0].T * (records[0].mask if drop_first_input else 1.0)
    assert relative_error(d_x, numeric_gradient(lambda v: loss(v, layers), x.copy())) < 1e-6


def test_dense_stack_forward_with_buffers_is_bit_identical():
    rng = np.random.default_rng(5)
    layers = [(rng.normal(size=(6, 4, 8)), rng.normal(size=(6, 1, 8))), (rng.normal(size=(6, 8, 3)), rng.normal(size=(6, 1, 3)))]
    x = rng.normal(size=(6, 2, 4))
    for activations in (("tanh", "identity"), ("relu", "softmax"), ("sigmoid", "tanh"), ("leaky_relu", "sigmoid")):
        buffers = [np.empty((6, 2, 8)), np.empty((6, 2, 3))]
        resolved = [OUTPUT_ACTIVATIONS[name] for name in activations]
        plain = dense.dense_stack_forward(x, layers, resolved)
        np.testing.assert_array_equal(dense.dense_stack_forward(x, layers, resolved, buffers), plain)


# ------------------------------------------------------------ bound stacks
def test_networks_declare_their_capabilities():
    net = MLP((3, 4, 2))
    assert isinstance(net, NetworkSpec) and isinstance(net, Trainable) and isinstance(net, Bindable)
    assert Trainable in type(net).__mro__ and Bindable in type(net).__mro__


@pytest.mark.parametrize("activation, output", [("tanh", "identity"), ("relu", "softmax"), ("sigmoid", "tanh")])
def test_bound_mlp_equals_the_network_forward_bit_for_bit_after_keep(activation, output):
    net = MLP((4, 16, 3), activation, output)
    genomes = net.init_params(np.random.default_rng(6), 10)
    x = np.random.default_rng(7).normal(size=(10, 3, 4))
    bound, generic = bind_genomes(net, genomes), GenomeStack(net, genomes)
    assert type(bound) is not GenomeStack
    np.testing.assert_array_equal(bound.forward(x), net.forward(genomes, x))
    np.testing.assert_array_equal(bound.forward(x), generic.forward(x))
    rows = np.array([1, 4, 5, 9])
    bound.keep(rows)
    generic.keep(rows)
    assert len(bound) == len(generic) == 4
    np.testing.assert_array_equal(bound.forward(x[rows]), net.forward(genomes[rows], x[rows]))
    np.testing.assert_array_equal(bound.forward(x[rows]), generic.forward(x[rows]))
    with pytest.raises(ValueError, match="expected inputs with 4 features"):
        bound.forward(np.ones((4, 3, 5)))


# -------------------------------------------------------------------- conv
def layer_geometry(block: dict, input_shape):
    return conv.ConvBlock.parse(block, "test block").geometry(*input_shape, "test block")


@pytest.mark.parametrize(
    "block",
    [
        {"filters": 3, "kernel_size": 3, "padding": 1},
        {"filters": 2, "kernel_size": 3, "stride": 2, "padding": "same"},
        {"filters": 2, "kernel_size": 2, "stride": 2, "padding": 1},
        {"filters": 3, "kernel_size": 3, "padding": 1, "pool": 2},
        {"filters": 2, "kernel_size": 2, "stride": 2, "padding": 2, "pool": 3},
    ],
)
def test_gradient_conv_and_max_pool_layer(block):
    """d/dW and d/dx of sum(R * maxpool(conv(pad(x), W))) against finite differences."""
    geo = layer_geometry(block, (2, 7, 8))
    rng = np.random.default_rng(9)
    x = rng.normal(size=(2, 7, 8, 3))  # batch last
    W = rng.normal(size=(geo.filters, geo.n_taps))
    out, argmax = conv.conv_pool_forward(conv.pad_input(x, geo), W, geo, track_argmax=True)
    R = rng.normal(size=out.shape)

    def loss_w(w):
        return float(np.sum(R * conv.conv_pool_forward(conv.pad_input(x, geo), w, geo)[0]))

    def loss_x(inputs):
        return float(np.sum(R * conv.conv_pool_forward(conv.pad_input(inputs, geo), W, geo)[0]))

    dW, d_padded = conv.conv_pool_backward(R, conv.pad_input(x, geo), W, argmax, geo, input_grad=True)
    assert relative_error(dW, numeric_gradient(loss_w, W.copy())) < 1e-6
    assert relative_error(conv.unpad_gradient(d_padded, geo), numeric_gradient(loss_x, x.copy())) < 1e-6


def test_max_pool_routes_the_gradient_to_the_first_maximum_on_ties():
    """An identity 1x1 convolution isolates the pool: ties send the whole gradient to the first offset."""
    geo = layer_geometry({"filters": 1, "kernel_size": 1, "pool": 2}, (1, 4, 4))
    x = np.zeros((1, 4, 4, 1))
    x[0, 2, 3, 0] = 5.0  # bottom-right window: a strict maximum at offset (0, 1)
    W = np.ones((1, 1))
    pooled, argmax = conv.conv_pool_forward(x, W, geo, track_argmax=True)
    np.testing.assert_array_equal(pooled.reshape(2, 2), [[0, 0], [0, 5]])
    _, d_x = conv.conv_pool_backward(np.array([[1.0, 2.0, 3.0, 4.0]]), x, W, argmax, geo, input_grad=True)
    expected = np.zeros((4, 4))
    expected[0, 0], expected[0, 2], expected[2, 0], expected[2, 3] = 1.0, 2.0, 3.0, 4.0
    np.testing.assert_array_equal(d_x[0, :, :, 0], expected)


def test_col2im_is_the_adjoint_of_im2col():
    """<im2col(x), Y> == <x, col2im(Y)> for every pooling offset, with stride and uneven padding."""
    geo = layer_geometry({"filters": 1, "kernel_size": 3, "stride": 2, "padding": "same", "pool": 2}, (2, 9, 8))
    rng = np.random.default_rng(10)
    padded = conv.pad_input(rng.normal(size=(2, 9, 8, 3)), geo)
    for offset in range(4):
        cols = conv.im2col(padded, geo, offset)
        Y = rng.normal(size=cols.shape)
        back = np.zeros_like(padded)
        conv.col2im_add(back, Y, geo, offset)
        assert np.vdot(cols, Y) == pytest.approx(np.vdot(padded, back), rel=1e-12)
