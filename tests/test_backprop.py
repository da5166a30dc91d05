"""Gradient-descent core: gradients against finite differences, losses, optimisers, the Trainer."""

import numpy as np
import pytest

from networks import MLP
from networks.activations import ACTIVATIONS
from networks.losses import cross_entropy_from_probs, l2_penalty, mean_squared_error, softmax_cross_entropy
from networks.optimizers import SGD, Adam
from networks.trainer import Trainer
from tests.helpers import numeric_gradient, reference_softmax, relative_error

# ----------------------------------------------------------------- helpers


def check_network_gradient(net, loss, X, targets, dropout=0.0, dropout_seed=0, weight_decay=0.0, return_logits=True, seed=0):
    """Analytic gradient of loss(net(params)) [+ L2] against central differences, float64."""
    params = np.random.default_rng(seed).normal(0.0, 0.7, size=net.n_params)

    def rng():  # the same generator state every call: the same dropout mask
        return np.random.default_rng(dropout_seed)

    def total_loss(p):
        out, _ = net.forward_train(p, X, dropout, rng(), return_logits=return_logits)
        value = loss(out, targets)[0]
        return value + (l2_penalty(net, p, weight_decay)[0] if weight_decay else 0.0)

    out, cache = net.forward_train(params, X, dropout, rng(), return_logits=return_logits)
    _, d_out = loss(out, targets)
    grad = net.backward(params, cache, d_out)
    if weight_decay:
        grad = grad + l2_penalty(net, params, weight_decay)[1]
    numeric = numeric_gradient(total_loss, params.copy())
    assert relative_error(grad, numeric) < 1e-6
    return params, cache


def labels_for(net, n, seed=1):
    return np.random.default_rng(seed).integers(0, net.n_outputs, size=n)


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_gradient_every_hidden_activation_softmax_cross_entropy(activation):
    net = MLP((4, 6, 5, 3), activation, "softmax")
    X = np.random.default_rng(2).normal(size=(7, 4))
    check_network_gradient(net, softmax_cross_entropy, X, labels_for(net, 7))


@pytest.mark.parametrize("output", ["sigmoid", "tanh", "identity"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_gradient_output_activations_with_mse(activation, output):
    net = MLP((3, 5, 2), activation, output)
    rng = np.random.default_rng(3)
    X, targets = rng.normal(size=(6, 3)), rng.uniform(-0.5, 0.5, size=(6, 2))
    check_network_gradient(net, mean_squared_error, X, targets)


def test_gradient_softmax_probabilities_with_mse():
    """return_logits=False: backward applies the softmax Jacobian itself."""
    net = MLP((3, 5, 4), "tanh", "softmax")
    rng = np.random.default_rng(4)
    X, targets = rng.normal(size=(6, 3)), np.eye(4)[rng.integers(0, 4, 6)]
    check_network_gradient(net, mean_squared_error, X, targets, return_logits=False)


@pytest.mark.parametrize("sizes", [(3, 2), (5, 8, 7, 6, 4), (2, 3, 3, 3, 3, 2)])
def test_gradient_multi_layer(sizes):
    net = MLP(sizes, "leaky_relu", "softmax")
    X = np.random.default_rng(5).normal(size=(5, sizes[0]))
    check_network_gradient(net, softmax_cross_entropy, X, labels_for(net, 5))


def test_gradient_with_weight_decay_on_weights_only():
    net = MLP((4, 6, 3), "tanh", "softmax")
    X = np.random.default_rng(6).normal(size=(5, 4))
    check_network_gradient(net, softmax_cross_entropy, X, labels_for(net, 5), weight_decay=0.3)
    # The decay touches weights only: its gradient is zero on every bias.
    params = np.random.default_rng(0).normal(size=net.n_params)
    _, grad = l2_penalty(net, params, 0.3)
    for (gW, gb), (W, _) in zip(net.layer_views(grad), net.layer_views(params)):
        np.testing.assert_allclose(gW, 0.3 * W)
        assert np.all(gb == 0)
    assert net.weight_mask().sum() == 4 * 6 + 6 * 3


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_gradient_with_dropout_fixed_mask(activation):
    net = MLP((4, 12, 10, 3), activation, "softmax")
    X = np.random.default_rng(7).normal(size=(8, 4))
    _, cache = check_network_gradient(net, softmax_cross_entropy, X, labels_for(net, 8), dropout=0.4, dropout_seed=11)
    masks = [record.mask for record in cache.records]  # the mask each layer applied to its input
    assert masks[0] is None  # no dropout on the network's inputs, and no record masks the outputs
    for mask in masks[1:]:  # the hidden layers' outputs
        assert set(np.unique(mask)) == {0.0, 1.0 / 0.6}  # inverted dropout: kept units scaled by 1/(1-p)
    assert 0.2 < np.mean(masks[1] == 0) < 0.6


def test_forward_train_matches_the_population_forward():
    net = MLP((5, 7, 4), "relu", "softmax")
    params = net.init_params(np.random.default_rng(0), 1)[0]
    X = np.random.default_rng(1).normal(size=(9, 5))
    logits, _ = net.forward_train(params, X)
    probs, _ = net.forward_train(params, X, return_logits=False)
    np.testing.assert_allclose(reference_softmax(logits), net.predict(params, X), rtol=1e-12)
    np.testing.assert_allclose(probs, net.predict(params, X), rtol=1e-12)


def test_backward_writes_into_the_buffer_given():
    net = MLP((3, 4, 2), "tanh", "identity")
    params = np.random.default_rng(0).normal(size=net.n_params)
    X = np.random.default_rng(1).normal(size=(5, 3))
    out, cache = net.forward_train(params, X)
    buffer = np.full(net.n_params, np.nan)
    grad = net.backward(params, cache, mean_squared_error(out, np.zeros_like(out))[1], out=buffer)
    assert grad is buffer and np.all(np.isfinite(buffer))


# ------------------------------------------------------------------- losses
def test_losses_equal_their_definitions_and_gradients():
    rng = np.random.default_rng(8)
    logits, labels = rng.normal(size=(6, 4)) * 3, rng.integers(0, 4, 6)
    loss, d_logits = softmax_cross_entropy(logits, labels)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(probs[np.arange(6), labels])), rel=1e-12)
    assert cross_entropy_from_probs(probs, labels) == pytest.approx(loss, rel=1e-12)
    numeric = numeric_gradient(lambda z: softmax_cross_entropy(z, labels)[0], logits.copy())
    assert relative_error(d_logits, numeric) < 1e-6

    outputs, targets = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    loss, d_outputs = mean_squared_error(outputs, targets)
    assert loss == pytest.approx(np.mean((outputs - targets) ** 2), rel=1e-12)
    numeric = numeric_gradient(lambda o: mean_squared_error(o, targets)[0], outputs.copy())
    assert relative_error(d_outputs, numeric) < 1e-6
    # A 1-D target for a single output column.
    assert mean_squared_error(outputs[:, :1], targets[:, 0])[0] == pytest.approx(np.mean((outputs[:, 0] - targets[:, 0]) ** 2))


def test_cross_entropy_is_stable_and_clipped():
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]])
    loss, grad = softmax_cross_entropy(logits, np.array([1, 1]))
    assert loss == pytest.approx(1e4) and np.all(np.isfinite(grad))
    assert cross_entropy_from_probs(np.array([[1.0, 0.0]]), np.array([1])) == pytest.approx(-np.log(1e-12))
    with pytest.raises(ValueError):
        softmax_cross_entropy(logits, np.array([0.0, 1.0]))  # float labels


# --------------------------------------------------------------- optimisers
def quadratic(seed=0, n=6):
    """0.5 p^T A p - b^T p with A symmetric positive definite, and its minimiser."""
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(n, n))
    A = M @ M.T / n + np.eye(n)
    b = rng.normal(size=n)
    return (lambda p: 0.5 * p @ A @ p - b @ p), (lambda p: A @ p - b), np.linalg.solve(A, b)


@pytest.mark.parametrize("make", [lambda: SGD(0.05, momentum=0.0), lambda: SGD(0.05), lambda: SGD(0.05, nesterov=True), lambda: Adam(0.05)])
def test_optimizers_minimise_a_quadratic_in_place(make):
    f, grad, solution = quadratic()
    params = np.zeros_like(solution)
    buffer = params
    opt = make()
    for _ in range(1000):
        opt.step(params, grad(params))
    assert params is buffer
    assert f(params) < f(np.zeros_like(solution))
    np.testing.assert_allclose(params, solution, atol=1e-3)


@pytest.mark.parametrize("make", [lambda: SGD(0.05), lambda: Adam(0.05)])
def test_optimizer_state_dict_round_trip(make):
    f, grad, _ = quadratic(1)
    a, params_a = make(), np.ones(6)
    for _ in range(5):
        a.step(params_a, grad(params_a))
    b, params_b = make(), params_a.copy()
    state = a.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    b.load_state_dict(state)
    for _ in range(5):
        a.step(params_a, grad(params_a))
        b.step(params_b, grad(params_b))
    np.testing.assert_array_equal(params_a, params_b)


# ------------------------------------------------------------------ trainer
def blobs(n, rng, spread=0.5):
    centers = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 1.7]])
    y = rng.integers(0, 3, n)
    return centers[y] + rng.normal(scale=spread, size=(n, 2)), y


def test_training_reduces_the_loss_on_blobs():
    rng = np.random.default_rng(0)
    X, y = blobs(150, rng)
    X_val, y_val = blobs(60, rng)
    trainer = Trainer(MLP((2, 16, 3), "relu", "softmax"), lr=0.01, epochs=30, seed=0)
    rows = []
    trainer.fit(X, y, X_val, y_val, on_epoch=rows.append)
    history = trainer.history_
    assert rows == history and [r["epoch"] for r in history] == list(range(1, len(history) + 1))
    assert set(history[0]) == {"epoch", "train_loss", "val_loss", "val_accuracy", "seconds", "samples_seen"}
    assert history[-1]["samples_seen"] == 150 * len(history)
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert trainer.score(X_val, y_val) > 0.95
    assert trainer.predict(X_val).shape == (60,)
    # An empty validation split is no validation: early stopping watches the training loss.
    empty = Trainer(MLP((2, 16, 3), "relu", "softmax"), epochs=2).fit(X, y, X_val[:0], y_val[:0])
    assert "val_loss" not in empty.history_[-1]
    np.testing.assert_allclose(trainer.predict_proba(X_val).sum(axis=1), 1.0)


def test_training_learns_xor_with_sigmoid_output_and_mse():
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    trainer = Trainer(MLP((2, 8, 1), "tanh", "sigmoid"), loss="mse", lr=0.05, batch_size=4, epochs=400, weight_decay=0.0, patience=None)
    trainer.fit(X, y)
    outputs = trainer.predict(X)[:, 0]
    np.testing.assert_array_equal(outputs > 0.5, y > 0.5)
    assert trainer.score(X, y) > 0.9  # R^2
    assert trainer.history_[-1]["train_loss"] < 0.1 * trainer.history_[0]["train_loss"]


def test_mse_with_integer_labels_is_a_one_hot_classification():
    rng = np.random.default_rng(1)
    X, y = blobs(120, rng)
    trainer = Trainer(MLP((2, 16, 3), "tanh", "sigmoid"), loss="mse", optimizer="sgd", lr=0.1, epochs=60, seed=0).fit(X, y, X, y)
    assert trainer.classification_ and "val_accuracy" in trainer.history_[-1]
    assert trainer.score(X, y) > 0.9


def test_early_stopping_restores_the_best_weights():
    # 30 noisy training samples and a wide network: it overfits, and the
    # validation loss falls, then rises.
    rng = np.random.default_rng(2)
    X, y = blobs(30, rng, spread=1.5)
    X_val, y_val = blobs(300, rng, spread=1.5)
    trainer = Trainer(MLP((2, 64, 3), "tanh", "softmax"), lr=0.01, batch_size=10, epochs=300, weight_decay=0.0, patience=15, seed=0)
    snapshots = []
    trainer.fit(X, y, X_val, y_val, on_epoch=lambda row: snapshots.append(trainer.current_params()))
    val_losses = [row["val_loss"] for row in trainer.history_]
    best = trainer.best_epoch_
    assert trainer.stopped_early_ and len(trainer.history_) == best + 15 < 300
    assert best >= 2 and val_losses[best - 1] == min(val_losses) < val_losses[-1]
    assert val_losses[best - 1] < val_losses[0]  # it did improve first
    np.testing.assert_array_equal(trainer.params_, snapshots[best - 1])
    assert not np.array_equal(snapshots[-1], snapshots[best - 1])
    assert softmax_cross_entropy(trainer.net.forward_train(trainer.params_, X_val)[0], y_val)[0] == pytest.approx(min(val_losses))


def test_same_seed_same_parameters_and_fine_tuning_from_a_genome():
    rng = np.random.default_rng(3)
    X, y = blobs(80, rng)
    net = MLP((2, 8, 3), "relu", "softmax")

    def fit(seed, init=None):
        return Trainer(net, epochs=5, dropout=0.2, seed=seed).fit(X, y, init_params=init).params_

    np.testing.assert_array_equal(fit(0), fit(0))
    assert not np.array_equal(fit(0), fit(1))
    genome = net.init_params(np.random.default_rng(9), 1)[0]
    kept = genome.copy()
    tuned = Trainer(net, lr=1e-6, epochs=1, patience=None).fit(X, y, init_params=genome).params_
    np.testing.assert_array_equal(genome, kept)  # the caller's genome is not modified
    np.testing.assert_allclose(tuned, genome, atol=1e-4)  # it started there
    assert net.forward(tuned[None], X).shape == (1, 80, 3)  # same layout as evolution


@pytest.mark.parametrize(
    "kwargs",
    [
        {"loss": "hinge"},
        {"optimizer": "rmsprop"},
        {"lr": 0.0},
        {"lr": -1e-3},
        {"lr": float("nan")},
        {"momentum": 1.0},
        {"batch_size": 0},
        {"batch_size": 2.5},
        {"epochs": 0},
        {"weight_decay": -1.0},
        {"dropout": 1.0},
        {"dropout": -0.1},
        {"patience": 0},
        {"seed": -1},
        {"seed": 1.5},
    ],
)
def test_bad_arguments_raise_value_error(kwargs):
    X, y = blobs(10, np.random.default_rng(0))
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Trainer(MLP((2, 4, 3), "relu", "softmax"), **kwargs).fit(X, y)


def test_bad_data_and_setups_raise_value_error():
    X, y = blobs(10, np.random.default_rng(0))
    net = MLP((2, 4, 3), "relu", "softmax")
    with pytest.raises(ValueError, match="softmax"):
        Trainer(MLP((2, 4, 3), "relu", "sigmoid")).fit(X, y)
    with pytest.raises(ValueError, match="labels"):
        Trainer(net).fit(X, y + 3)
    with pytest.raises(ValueError, match="shape"):
        Trainer(net).fit(X[:, :1], y)
    with pytest.raises(ValueError, match="both"):
        Trainer(net).fit(X, y, X_val=X)
    with pytest.raises(ValueError, match="init_params"):
        Trainer(net).fit(X, y, init_params=np.zeros(3))
    with pytest.raises(ValueError, match="not fitted"):
        Trainer(net).predict(X)
    with pytest.raises(ValueError):
        net.forward_train(np.zeros(net.n_params), X, dropout=0.5)  # no rng
    with pytest.raises(ValueError):
        net.forward_train(np.zeros((1, net.n_params)), X)
    for make in (
        lambda: SGD(0.0),
        lambda: SGD(0.1, momentum=1.2),
        lambda: SGD(0.1, momentum=0.0, nesterov=True),
        lambda: Adam(beta1=1.0),
        lambda: Adam(eps=0.0),
    ):
        with pytest.raises(ValueError):
            make()


def test_trainer_weight_decay_shrinks_weights_not_biases():
    # Zero inputs into a ReLU layer with zero biases: no data gradient reaches
    # any weight, so plain SGD shrinks each weight by (1 - lr * wd) per step.
    net = MLP((3, 4, 2), "relu", "softmax")
    X, y = np.zeros((8, 3)), np.array([0, 1] * 4)
    init = net.init_params(np.random.default_rng(0), 1)[0]
    trainer = Trainer(net, optimizer="sgd", momentum=0.0, lr=0.1, batch_size=8, epochs=3, weight_decay=0.5, patience=None)
    trainer.fit(X, y, init_params=init)
    mask = net.weight_mask()
    np.testing.assert_allclose(trainer.params_[mask], init[mask] * (1 - 0.1 * 0.5) ** 3, rtol=1e-12)
    (_, b1), (_, b2) = net.layer_views(trainer.params_)
    assert np.all(b1 == 0) and np.all(b2 == 0)  # full balanced batches: the output bias gradient cancels
