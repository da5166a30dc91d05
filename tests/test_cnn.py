"""The convolutional network: layout, batched forward against a naive loop reference, gradients, bad specs."""

import json

import numpy as np
import pytest

from networks.activations import ACTIVATIONS, Activation
from networks.cnn import CNN, ConvBlock
from networks.layers.dense import flatten_layers
from tests.helpers import REFERENCE_ACTIVATIONS, numeric_gradient, reference_softmax, relative_error

# ----------------------------------------------------------------- helpers


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy over the batch and its gradient w.r.t. the logits (written here, not imported)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(labels))
    loss = -log_probs[rows, labels].mean()
    grad = np.exp(log_probs)
    grad[rows, labels] -= 1.0
    return loss, grad / len(labels)


def squared_error(outputs: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error over all entries and its gradient."""
    diff = outputs - targets
    return float(np.mean(diff**2)), 2.0 * diff / diff.size


def check_network_gradient(net, X, targets, loss=cross_entropy, dropout=0.0, return_logits=True, seed=0):
    """Analytic gradient of loss(net(params)) against central differences, float64."""
    params = np.random.default_rng(seed).normal(0.0, 0.5, size=net.n_params)

    def total_loss(p):
        out, _ = net.forward_train(p, X, dropout, np.random.default_rng(7), return_logits=return_logits)
        return loss(out, targets)[0]

    out, cache = net.forward_train(params, X, dropout, np.random.default_rng(7), return_logits=return_logits)
    grad = net.backward(params, cache, loss(out, targets)[1])
    numeric = numeric_gradient(total_loss, params.copy())
    assert relative_error(grad, numeric) < 1e-6
    return cache


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same': output ceil(size / stride), any odd extra padding after."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


# ------------------------------------------------- naive reference (loops)
def naive_conv(image, W, b, stride, pad_hw):
    """Direct convolution of one (C, H, W) image with explicit loops over filters, pixels and taps."""
    (top, bottom), (left, right) = pad_hw
    C, H, Wd = image.shape
    F, _, k, _ = W.shape
    padded = np.zeros((C, H + top + bottom, Wd + left + right))
    padded[:, top : top + H, left : left + Wd] = image
    out_h = (padded.shape[1] - k) // stride + 1
    out_w = (padded.shape[2] - k) // stride + 1
    out = np.zeros((F, out_h, out_w))
    for f in range(F):
        for r in range(out_h):
            for c in range(out_w):
                total = b[f]
                for ch in range(C):
                    for i in range(k):
                        for j in range(k):
                            total += W[f, ch, i, j] * padded[ch, r * stride + i, c * stride + j]
                out[f, r, c] = total
    return out


def naive_max_pool(maps, size):
    """Max over size x size windows with stride size, dropping rows/columns that do not fill a window."""
    F, H, W = maps.shape
    out = np.zeros((F, H // size, W // size))
    for f in range(F):
        for r in range(H // size):
            for c in range(W // size):
                out[f, r, c] = max(maps[f, r * size + i, c * size + j] for i in range(size) for j in range(size))
    return out


def naive_forward(net: CNN, params: np.ndarray, images: np.ndarray) -> np.ndarray:
    """One network, one image at a time: conv -> activation -> pool, flatten (C, H, W), dense layers.

    The weights are read straight off the documented flat layout (per conv block W (F, C, k, k) row-major then
    b (F); per dense layer W (n_in, n_out) row-major then b (n_out)), the activations are the textbook formulas.
    """
    outputs = []
    for image in images:
        h, offset = image, 0

        def take(shape):
            nonlocal offset
            size = int(np.prod(shape))
            offset += size
            return params[offset - size : offset].reshape(shape)

        for block in net.conv_blocks:
            C, H, Wd = h.shape
            k, s = block.kernel_size, block.stride
            W, b = take((block.filters, C, k, k)), take((block.filters,))
            pad_hw = (same_padding(H, k, s), same_padding(Wd, k, s)) if block.padding == "same" else ((block.padding,) * 2,) * 2
            h = REFERENCE_ACTIVATIONS[block.activation](naive_conv(h, W, b, s, pad_hw))
            if block.pool:
                h = naive_max_pool(h, block.pool)
        h = h.reshape(-1)
        widths = list(net.hidden) + [net.output_size]
        for i, n_out in enumerate(widths):
            W, b = take((h.size, n_out)), take((n_out,))
            h = REFERENCE_ACTIVATIONS[net.activation if i < len(widths) - 1 else net.output_activation](h @ W + b)
        assert offset == params.size
        outputs.append(h)
    return np.array(outputs)


TWO_BLOCKS = dict(
    input_shape=(2, 9, 7),
    conv_blocks=[
        {"filters": 3, "kernel_size": 3, "padding": "same", "activation": "tanh", "pool": 2},
        {"filters": 4, "kernel_size": 2, "stride": 2, "padding": 1, "activation": "relu"},
    ],
    hidden=(5,),
    activation="tanh",
    output_size=3,
    output_activation="softmax",
)


# ------------------------------------------------------------------ forward
@pytest.mark.parametrize(
    "spec",
    [
        TWO_BLOCKS,
        dict(
            input_shape=(1, 8, 8),
            conv_blocks=[{"filters": 4, "kernel_size": 3, "padding": 1, "pool": 2}],
            output_size=10,
            output_activation="softmax",
        ),
        dict(
            input_shape=(3, 11, 10),
            conv_blocks=[
                {"filters": 2, "kernel_size": 3, "stride": 2, "padding": "same", "activation": "leaky_relu"},
                {"filters": 3, "kernel_size": 3, "padding": 1, "activation": "sigmoid", "pool": 3},
            ],
            hidden=(4, 3),
            activation="relu",
            output_size=2,
            output_activation="identity",
        ),
    ],
)
def test_stack_forward_equals_one_genome_at_a_time_and_the_loop_reference(spec):
    net = CNN(**spec)
    rng = np.random.default_rng(0)
    params = rng.normal(0.0, 0.5, size=(4, net.n_params))
    x = rng.normal(size=(5,) + net.input_shape)
    stacked = net.forward(params, x)
    assert stacked.shape == (4, 5, net.n_outputs)
    for p in range(4):
        one = net.predict(params[p], x)
        np.testing.assert_allclose(stacked[p], one, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(stacked[p], naive_forward(net, params[p], x), rtol=1e-10, atol=1e-12)
    # Flat inputs (B, C*H*W) are the same images.
    np.testing.assert_allclose(net.forward(params, x.reshape(5, -1)), stacked, rtol=1e-12, atol=1e-12)


def test_per_genome_inputs_and_float32():
    net = CNN(**TWO_BLOCKS)
    rng = np.random.default_rng(1)
    params = rng.normal(0.0, 0.5, size=(3, net.n_params))
    x = rng.normal(size=(3, 4) + net.input_shape)
    out = net.forward(params, x)
    for p in range(3):
        np.testing.assert_allclose(out[p], net.predict(params[p], x[p]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(net.forward(params, x.reshape(3, 4, -1)), out, rtol=1e-12)
    out32 = net.forward(params.astype(np.float32), x.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out, rtol=1e-4, atol=1e-5)


def test_forward_train_matches_the_population_forward():
    net = CNN(**TWO_BLOCKS)
    rng = np.random.default_rng(2)
    params = rng.normal(0.0, 0.5, size=net.n_params)
    x = rng.normal(size=(6,) + net.input_shape)
    logits, _ = net.forward_train(params, x)
    probs, _ = net.forward_train(params, x.reshape(6, -1), return_logits=False)
    np.testing.assert_allclose(reference_softmax(logits), net.predict(params, x), rtol=1e-12)
    np.testing.assert_allclose(probs, net.predict(params, x), rtol=1e-12)


@pytest.mark.parametrize(
    "block, size, expected",
    [
        ({"kernel_size": 3, "padding": "same"}, (7, 9), (7, 9)),
        ({"kernel_size": 4, "padding": "same"}, (7, 9), (7, 9)),
        ({"kernel_size": 3, "stride": 2, "padding": "same"}, (7, 9), (4, 5)),
        ({"kernel_size": 3, "stride": 2}, (7, 9), (3, 4)),
        ({"kernel_size": 3, "stride": 2, "padding": 1}, (7, 9), (4, 5)),
        ({"kernel_size": 3, "padding": "same", "pool": 2}, (7, 9), (3, 4)),
        ({"kernel_size": 5, "stride": 2, "padding": 2, "pool": 2}, (28, 28), (7, 7)),
    ],
)
def test_padding_same_and_stride_shapes(block, size, expected):
    net = CNN((2,) + size, [dict(filters=3, **block)], output_size=1)
    assert net.feature_shape == (3,) + expected
    assert net.dense_shapes[0][0] == 3 * expected[0] * expected[1]
    params = np.random.default_rng(3).normal(size=(2, net.n_params))
    x = np.random.default_rng(4).normal(size=(4, 2) + size)
    out = net.forward(params, x)
    assert out.shape == (2, 4, 1)
    np.testing.assert_allclose(out[1], naive_forward(net, params[1], x), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------- layout
def test_parameter_count_layout_and_flatten_round_trip():
    net = CNN(**TWO_BLOCKS)
    # conv 2->3 (3x3), conv 3->4 (2x2, stride 2, pad 1 on a 4x3 map -> 3x2), dense 24->5->3
    assert net.n_params == (3 * 2 * 9 + 3) + (4 * 3 * 4 + 4) + (24 * 5 + 5) + (5 * 3 + 3)
    assert net.n_inputs == 2 * 9 * 7 and net.n_outputs == 3
    params = np.random.default_rng(5).normal(size=(3, net.n_params))
    layers = net.unflatten(params)
    assert [W.shape for W, _ in layers] == [(3, 3, 2, 3, 3), (3, 4, 3, 2, 2), (3, 24, 5), (3, 5, 3)]
    assert [b.shape for _, b in layers] == [(3, 3), (3, 4), (3, 1, 5), (3, 1, 3)]
    np.testing.assert_array_equal(flatten_layers(layers), params)
    flat = np.arange(net.n_params, dtype=float)[None]
    (W1, b1), *_ = net.unflatten(flat)
    assert W1[0, 0, 0, 0, 1] == 1.0 and W1[0, 0, 1, 0, 0] == 9.0  # row-major (F, C, k, k)
    assert b1[0, 0] == 3 * 2 * 9
    mask = net.weight_mask()
    assert mask.sum() == 3 * 2 * 9 + 4 * 3 * 4 + 24 * 5 + 5 * 3
    with pytest.raises(ValueError, match="shape"):
        net.unflatten(params[:, 1:])


def test_describe_round_trip_is_json():
    net = CNN(**TWO_BLOCKS)
    description = json.loads(json.dumps(net.describe()))
    assert description["type"] == "cnn" and description["n_params"] == net.n_params
    again = CNN.from_description(description)
    assert again == net
    params = np.random.default_rng(6).normal(size=(2, net.n_params))
    x = np.random.default_rng(7).normal(size=(3,) + net.input_shape)
    np.testing.assert_array_equal(again.forward(params, x), net.forward(params, x))
    assert CNN((1, 4, 4), [ConvBlock(2, 3)], 2) == CNN((1, 4, 4), [{"filters": 2, "kernel_size": 3}], 2)
    # NumPy integers (e.g. from a config array) are stored as plain ints, so the description stays JSON-able.
    numpy_ints = CNN((np.int64(1), 4, 4), [{"filters": np.int64(2), "kernel_size": np.int32(3), "pool": np.int64(2)}], np.int64(2))
    assert json.loads(json.dumps(numpy_ints.describe()))["conv_blocks"][0]["filters"] == 2


def test_initialisation_scale_and_zero_biases():
    net = CNN((8, 10, 10), [{"filters": 64, "kernel_size": 5}, {"filters": 32, "kernel_size": 3, "activation": "tanh"}], 10, hidden=(200,))
    layers = net.unflatten(net.init_params(np.random.default_rng(8), 2))
    (W1, b1), (W2, b2), (W3, _), _ = layers
    assert abs(W1.std() - np.sqrt(2 / (8 * 25))) < 0.01  # He, fan-in C*k*k
    assert abs(W2.std() - np.sqrt(2 / (64 * 9 + 32 * 9))) < 0.005  # Glorot for tanh
    assert abs(W3.std() - np.sqrt(2 / W3.shape[1])) < 0.01
    assert np.all(b1 == 0) and np.all(b2 == 0)


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_gradient_every_activation_softmax_cross_entropy(activation):
    net = CNN(
        (2, 6, 5),
        [
            {"filters": 3, "kernel_size": 3, "padding": 1, "activation": activation, "pool": 2},
            {"filters": 2, "kernel_size": 2, "activation": activation},
        ],
        output_size=3,
        hidden=(4,),
        activation=activation,
        output_activation="softmax",
    )
    X = np.random.default_rng(11).normal(size=(4,) + net.input_shape)
    check_network_gradient(net, X, np.array([0, 2, 1, 2]))


@pytest.mark.parametrize("output", ["sigmoid", "tanh", "identity"])
def test_gradient_output_activations_with_squared_error(output):
    net = CNN(
        (1, 5, 5), [{"filters": 2, "kernel_size": 3, "stride": 2, "padding": "same", "activation": "tanh"}], 2, output_activation=output
    )
    rng = np.random.default_rng(12)
    X, targets = rng.normal(size=(5, 25)), rng.uniform(-0.5, 0.5, size=(5, 2))
    check_network_gradient(net, X, targets, loss=squared_error)


def test_gradient_softmax_probabilities_with_squared_error():
    """return_logits=False: backward applies the softmax Jacobian itself."""
    net = CNN((1, 4, 4), [{"filters": 2, "kernel_size": 3, "padding": 1, "pool": 2, "activation": "tanh"}], 3, output_activation="softmax")
    rng = np.random.default_rng(13)
    X, targets = rng.normal(size=(4, 1, 4, 4)), np.eye(3)[rng.integers(0, 3, 4)]
    check_network_gradient(net, X, targets, loss=squared_error, return_logits=False)


def test_gradient_whole_network_with_dense_layers_and_dropout():
    net = CNN(
        (2, 9, 8),
        [
            {"filters": 3, "kernel_size": 3, "stride": 2, "padding": "same", "activation": "leaky_relu", "pool": 0},
            {"filters": 4, "kernel_size": 3, "padding": 1, "activation": "relu", "pool": 2},
        ],
        output_size=4,
        hidden=(6, 5),
        activation="tanh",
        output_activation="softmax",
    )
    X = np.random.default_rng(14).normal(size=(6,) + net.input_shape)
    labels = np.array([0, 1, 2, 3, 1, 0])
    check_network_gradient(net, X, labels)
    cache = check_network_gradient(net, X, labels, dropout=0.3)
    masks = [record.mask for record in cache.dense]
    assert all(mask is not None for mask in masks)  # on every dense layer's input
    assert set(np.unique(masks[0])) == {0.0, 1.0 / 0.7}


def test_backward_writes_into_the_buffer_given_and_checks_inputs():
    net = CNN(**TWO_BLOCKS)
    params = np.random.default_rng(15).normal(size=net.n_params)
    X = np.random.default_rng(16).normal(size=(3,) + net.input_shape)
    logits, cache = net.forward_train(params, X)
    buffer = np.full(net.n_params, np.nan)
    grad = net.backward(params, cache, cross_entropy(logits, np.array([0, 1, 2]))[1], out=buffer)
    assert grad is buffer and np.all(np.isfinite(buffer))
    with pytest.raises(ValueError, match="flat parameter vector"):
        net.forward_train(params[None], X)
    with pytest.raises(ValueError, match="random generator"):
        net.forward_train(params, X, dropout=0.5)
    with pytest.raises(ValueError, match="expected inputs"):
        net.forward(params[None], X[:, :, :-1])


# ---------------------------------------------------------------- bad specs
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(input_shape=(1, 4, 4), conv_blocks=[{"filters": 2, "kernel_size": 5}]), "kernel_size 5 is larger than its input 4x4"),
        (
            dict(input_shape=(1, 8, 8), conv_blocks=[{"filters": 2, "kernel_size": 3, "pool": 2}, {"filters": 2, "kernel_size": 5}]),
            "conv block 1: kernel_size 5",
        ),
        (dict(input_shape=(1, 4, 4), conv_blocks=[{"filters": 0, "kernel_size": 3}]), "conv block 0: filters = 0; must be an integer >= 1"),
        (dict(input_shape=(1, 4, 4), conv_blocks=[{"filters": -2, "kernel_size": 3}]), "filters = -2"),
        (dict(input_shape=(1, 4, 4), conv_blocks=[{"filters": 2, "kernel_size": 0}]), "kernel_size = 0"),
        (dict(input_shape=(1, 4, 4), conv_blocks=[{"filters": 2, "kernel_size": 3, "stride": 0}]), "stride = 0"),
        (
            dict(input_shape=(1, 4, 4), conv_blocks=[{"filters": 2, "kernel_size": 3, "pool": 3}]),
            "pool 3 does not fit the 2x2 convolution output",
        ),
        (dict(input_shape=(1, 4, 4), conv_blocks=[{"filters": 2, "kernel_size": 3, "pool": 1}]), "pool = 1"),
        (dict(input_shape=(1, 4, 4), conv_blocks=[{"filters": 2, "kernel_size": 3, "padding": "valid"}]), "padding = 'valid'"),
        (dict(input_shape=(1, 4, 4), conv_blocks=[{"filters": 2, "kernel_size": 3, "padding": -1}]), "padding = -1"),
        (
            dict(input_shape=(1, 4, 4), conv_blocks=[{"filters": 2, "kernel_size": 3, "activation": "gelu"}]),
            "activation = 'gelu' is not known",
        ),
        (dict(input_shape=(1, 4, 4), conv_blocks=[{"filters": 2, "kernel_size": 3, "size": 3}]), r"unknown field\(s\) \['size'\]"),
        (dict(input_shape=(1, 4, 4), conv_blocks=[{"filters": 2}]), r"missing field\(s\) \['kernel_size'\]"),
        (dict(input_shape=(1, 4, 4), conv_blocks=[]), "at least one conv block"),
        (dict(input_shape=(4, 4), conv_blocks=[{"filters": 2, "kernel_size": 3}]), "input_shape"),
        (dict(input_shape=(1, 0, 4), conv_blocks=[{"filters": 2, "kernel_size": 3}]), "input_shape"),
        (dict(input_shape=(1, 4, 4), conv_blocks=[{"filters": 2, "kernel_size": 3}], hidden=(0,)), "hidden"),
        (dict(input_shape=(1, 4, 4), conv_blocks=[{"filters": 2, "kernel_size": 3}], activation="swish"), "activation = 'swish'"),
        (dict(input_shape=(1, 4, 4), conv_blocks=[{"filters": 2, "kernel_size": 3}], output_activation="max"), "output_activation"),
        (dict(input_shape=(1, 4, 4), conv_blocks=[{"filters": 2.5, "kernel_size": 3}]), "filters = 2.5"),
    ],
)
def test_bad_specs_raise_clear_errors(kwargs, message):
    kwargs.setdefault("output_size", 2)
    with pytest.raises(ValueError, match=message):
        CNN(**kwargs)
    with pytest.raises(ValueError, match="output_size"):
        CNN((1, 4, 4), [{"filters": 2, "kernel_size": 3}], output_size=0)


def test_pooling_needs_a_non_decreasing_activation(monkeypatch):
    """Pooling is computed before the activation, exact only when the activation is non-decreasing."""
    square = Activation(lambda z, out=None: np.square(z), lambda d_a, z, a: 2 * z * d_a, non_decreasing=False)
    monkeypatch.setitem(ACTIVATIONS, "square", square)
    CNN((1, 4, 4), [{"filters": 2, "kernel_size": 3, "activation": "square"}], 2)  # fine without pooling
    with pytest.raises(ValueError, match="non-decreasing"):
        CNN((1, 6, 6), [{"filters": 2, "kernel_size": 3, "activation": "square", "pool": 2}], 2)
