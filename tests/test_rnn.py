"""Recurrent networks (Elman, LSTM, GRU): BPTT against finite differences in float64 for every cell, truncated BPTT,
the stacked forward against the one-network forward, the step-by-step state against whole sequences."""

from __future__ import annotations

import numpy as np
import pytest

from networks import network_from_description
from networks.losses import softmax_cross_entropy
from networks.rnn import RNN
from networks.spec import Recurrent, Trainable
from networks.stack import RecurrentStack, bind_genomes
from tests.helpers import numeric_gradient, relative_error

CELLS = ["elman", "lstm", "gru"]


def small(cell: str, **kw) -> RNN:
    base = {"input_size": 3, "hidden": (4, 3), "output_size": 2, "cell": cell, "steps": 5, "readout": (3,)}
    return RNN(**(base | kw))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("shape", ["two layers + readout", "one layer, softmax"])
def test_bptt_gradient_against_finite_differences(cell, shape):
    """d/dparams of <R, outputs> (or a cross-entropy through the softmax) for every cell type, in float64."""
    if shape == "one layer, softmax":
        net = RNN(3, (5,), 4, cell=cell, steps=6, output_activation="softmax", activation="tanh")
    else:
        net = small(cell, activation="sigmoid" if cell == "elman" else "tanh")
    rng = np.random.default_rng(0)
    params = net.init_params(rng, 1)[0] + rng.normal(0.0, 0.3, net.n_params)  # non-zero biases too
    X = rng.normal(size=(4, net.n_inputs))
    if net.output_activation == "softmax":
        labels = rng.integers(0, net.n_outputs, 4)

        def loss(p):
            return softmax_cross_entropy(net.forward_train(p, X)[0], labels)[0]

        out, cache = net.forward_train(params, X)
        d_out = softmax_cross_entropy(out, labels)[1]
    else:
        R = rng.normal(size=(4, net.n_outputs))

        def loss(p):
            return float(np.vdot(R, net.forward_train(p, X)[0]))

        out, cache = net.forward_train(params, X)
        d_out = R
    grad = net.backward(params, cache, d_out)
    assert relative_error(grad, numeric_gradient(loss, params.copy())) < 1e-6


@pytest.mark.parametrize("cell", CELLS)
def test_truncated_bptt_is_the_gradient_with_the_earlier_state_held_fixed(cell):
    """BPTT truncated to k steps = the exact gradient of the last k steps run from the state at T - k, held constant."""
    T, k = 6, 2
    full, truncated, tail = small(cell, steps=T), small(cell, steps=T, bptt_truncate=k), small(cell, steps=k)
    rng = np.random.default_rng(1)
    params = full.init_params(rng, 1)[0] + rng.normal(0.0, 0.2, full.n_params)
    X = rng.normal(size=(3, full.n_inputs))
    R = rng.normal(size=(3, full.n_outputs))
    steps = X.reshape(3, T, full.input_size)
    state = full.initial_state(1, 3)
    for t in range(T - k):
        state, _ = full.step(params[None], state, steps[None, :, t])
    tail_X = steps[:, T - k :].reshape(3, -1)

    def tail_loss(p):
        return float(np.vdot(R, tail.forward_train(p, tail_X, state0=state[0])[0]))

    out, cache = truncated.forward_train(params, X)
    grad = truncated.backward(params, cache, R)
    assert relative_error(grad, numeric_gradient(tail_loss, params.copy())) < 1e-6
    # And it differs from the full gradient (the earlier steps do matter).
    full_grad = full.backward(params, full.forward_train(params, X)[1], R)
    assert relative_error(grad, full_grad) > 1e-3


@pytest.mark.parametrize("cell", CELLS)
def test_stacked_forward_equals_each_network_and_each_chunk(cell):
    net = small(cell, readout=())
    rng = np.random.default_rng(2)
    genomes = net.init_params(rng, 5)
    X = rng.normal(size=(7, net.n_inputs))
    stacked = net.forward(genomes, X)
    assert stacked.shape == (5, 7, 2)
    for i in range(5):
        np.testing.assert_allclose(stacked[i], net.forward_train(genomes[i], X)[0], rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(net.forward(genomes[i : i + 1], X)[0], stacked[i])  # chunking changes nothing
    per_genome = rng.normal(size=(5, 7, net.n_inputs))
    for i in range(5):
        np.testing.assert_array_equal(net.forward(genomes, per_genome)[i], net.forward(genomes[i : i + 1], per_genome[i])[0])


@pytest.mark.parametrize("cell", CELLS)
def test_state_carried_step_by_step_equals_the_whole_sequence(cell):
    """A bound stack fed one step at a time gives the sequence forward's outputs, and keeps each genome's state on keep()."""
    seq_net = small(cell, steps=4)
    step_net = small(cell, steps=1)
    assert isinstance(step_net, Recurrent) and isinstance(step_net, Trainable)
    rng = np.random.default_rng(3)
    genomes = seq_net.init_params(rng, 6)
    X = rng.normal(size=(6, 2, 4, 3))  # per genome: 2 sequences of 4 steps of 3 values
    expected = seq_net.forward(genomes, X.reshape(6, 2, 12))
    stack = bind_genomes(step_net, genomes)
    assert isinstance(stack, RecurrentStack)
    for t in range(3):
        out = stack.forward(X[:, :, t])
    rows = np.array([0, 2, 5])
    stack.keep(rows)
    out = stack.forward(X[rows, :, 3])
    np.testing.assert_allclose(out, expected[rows], rtol=1e-12, atol=1e-12)
    # A fresh binding starts from rest: one step equals the one-step network's forward.
    np.testing.assert_allclose(bind_genomes(step_net, genomes).forward(X[:, :, 0]), step_net.forward(genomes, X[:, :, 0]), atol=1e-12)


def test_description_round_trip_and_bad_arguments():
    net = RNN(2, (3,), 1, cell="gru", steps=4, readout=(2,), bptt_truncate=2)
    again = network_from_description(net.describe())
    assert again == net
    with pytest.raises(ValueError, match="cell 'rnn' is not known; allowed"):
        RNN(2, (3,), 1, cell="rnn")
    with pytest.raises(ValueError, match="hidden must list"):
        RNN(2, (), 1)
    with pytest.raises(ValueError, match=r"steps x input_size"):
        net.forward(net.init_params(np.random.default_rng(0), 1), np.ones((2, 5)))


def test_weight_mask_marks_matrices_not_biases():
    net = RNN(2, (3,), 1, cell="gru", readout=(2,))
    mask = net.weight_mask()
    assert mask.sum() == (2 + 3) * 9 + 3 * 2 + 2 * 1
    assert net.n_params - mask.sum() == 9 + 3 + 2 + 1  # b, b_hn, readout biases


def test_lstm_init_sets_forget_bias_and_orthogonal_recurrent_blocks():
    net = RNN(2, (4,), 1, cell="lstm")
    params = net.init_params(np.random.default_rng(4), 2)
    ((W, b, _),), _ = net._views(params)
    np.testing.assert_array_equal(b[:, 0, 4:8], 1.0)
    for gate in range(4):
        block = W[0, 2:, gate * 4 : (gate + 1) * 4]
        np.testing.assert_allclose(block.T @ block, np.eye(4), atol=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_the_trainer_learns_a_task_that_needs_memory(cell):
    """The label is the sign of the FIRST of 10 noisy inputs: only a state carried 10 steps can tell."""
    from networks.trainer import Trainer

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 10))
    y = (X[:, 0] > 0).astype(np.int64)
    net = RNN(1, (8,), 2, cell=cell, steps=10, output_activation="softmax")
    trainer = Trainer(net, epochs=40, lr=1e-2, patience=None, clip_norm=1.0, seed=0).fit(X[:400], y[:400])
    assert trainer.score(X[400:], y[400:]) >= 0.9
    assert 0 < trainer.clipped_steps_ < 40 * 13  # clipping acted on some updates, not all


def test_gradient_clipping_rescales_to_the_norm_and_keeps_the_direction():
    from networks.trainer import Trainer

    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(16, 6)), rng.normal(size=(16, 1))
    net = RNN(2, (3,), 1, cell="lstm", steps=3)
    start = net.init_params(np.random.default_rng(2), 1)[0]
    out, cache = net.forward_train(start, X)
    grad = net.backward(start, cache, 2.0 * (out - y) / out.size)
    # One full-batch SGD step without momentum: params move by lr * the clipped gradient.
    trainer = Trainer(
        net, loss="mse", optimizer="sgd", momentum=0.0, lr=1.0, batch_size=16, epochs=1, weight_decay=0.0, patience=None, clip_norm=1e-3
    )
    trainer.fit(X, y, init_params=start)
    step = start - trainer.params_
    assert trainer.clipped_steps_ == 1
    assert np.linalg.norm(step) == pytest.approx(1e-3, rel=1e-9)
    np.testing.assert_allclose(step / np.linalg.norm(step), grad / np.linalg.norm(grad), atol=1e-9)
    with pytest.raises(ValueError, match="clip_norm = -1.0: must be a finite number > 0"):
        Trainer(net, loss="mse", clip_norm=-1.0).fit(X, y)


def test_recycled_work_arrays_are_handed_out_again_only_when_nothing_holds_them():
    from networks.layers.scratch import scratch

    first = scratch((3, 7))
    first[...] = 1.0
    view = first[1:]
    first_id = id(first)
    del first
    second = scratch((3, 7))  # the view still holds the first array: a new one
    assert id(second) != first_id
    second[...] = 2.0
    assert (view == 1.0).all()
    second_id = id(second)
    del view, second
    assert id(scratch((3, 7))) in {first_id, second_id}  # both free again: one is recycled


@pytest.mark.parametrize("cell", CELLS)
def test_a_cache_kept_across_later_calls_still_gives_its_own_gradient(cell):
    """The recycled work arrays never change what a caller still holds: an old cache's backward is unchanged by later passes."""
    net = small(cell)
    rng = np.random.default_rng(5)
    params = net.init_params(rng, 1)[0] + rng.normal(0.0, 0.2, net.n_params)
    X1, X2 = rng.normal(size=(4, net.n_inputs)), rng.normal(size=(4, net.n_inputs))
    R = rng.normal(size=(4, net.n_outputs))
    out1, cache1 = net.forward_train(params, X1)
    kept_out, grad1 = out1.copy(), net.backward(params, cache1, R)
    for X in (X2, X1, X2):  # later passes of the same shapes, the first cache still alive
        net.backward(params, net.forward_train(params, X)[1], R)
        net.forward(params[None], X)
    np.testing.assert_array_equal(net.backward(params, cache1, R), grad1)
    np.testing.assert_array_equal(out1, kept_out)
    np.testing.assert_array_equal(net.forward_train(params, X1)[0], kept_out)


@pytest.mark.parametrize("cell", CELLS)
def test_every_step_outputs_match_the_step_by_step_state_and_their_bptt_matches_finite_differences(cell):
    """forward_train_sequence = the outputs step() gives with its state carried; backward_sequence = finite differences."""
    net = RNN(3, (4, 3), 2, cell=cell, readout=(3,))
    rng = np.random.default_rng(3)
    params = net.init_params(rng, 1)[0] + rng.normal(0.0, 0.3, net.n_params)
    X = rng.normal(size=(7, 4, 3))  # (T, B, input_size)
    out, cache = net.forward_train_sequence(params, X)
    state = net.initial_state(1, 4)
    for t in range(len(X)):
        state, step_out = net.step(params[None], state, X[t][None])
        np.testing.assert_allclose(out[t], step_out[0], rtol=1e-12, atol=1e-12)
    R = rng.normal(size=out.shape)

    def loss(p):
        return float(np.vdot(R, net.forward_train_sequence(p, X)[0]))

    grad = net.backward_sequence(params, cache, R)
    assert relative_error(grad, numeric_gradient(loss, params.copy())) < 1e-6
    with pytest.raises(ValueError, match="bptt_truncate = 2"):
        RNN(3, (4,), 2, cell=cell, bptt_truncate=2).backward_sequence(params[: RNN(3, (4,), 2, cell=cell).n_params], cache, R)


@pytest.mark.parametrize("cell", CELLS)
def test_many_sequence_caches_alive_at_once_each_keep_their_own_outputs_and_gradient(cell):
    """Several forward_train_sequence caches held together (as a policy-gradient batch may): none is overwritten by the others' recycled arrays."""
    net = RNN(3, (5, 4), 2, cell=cell, readout=(3,))
    rng = np.random.default_rng(11)
    params = net.init_params(rng, 1)[0] + rng.normal(0.0, 0.3, net.n_params)
    episodes = [rng.normal(size=(T, 2, 3)) for T in (6, 6, 9, 6, 9)]  # repeated shapes: the pool would hand them out again
    Rs = [rng.normal(size=(len(X), 2, net.n_outputs)) for X in episodes]
    alone = []  # each episode's outputs and gradient, computed with nothing else alive
    for X, R in zip(episodes, Rs):
        out, cache = net.forward_train_sequence(params, X)
        alone.append((out.copy(), net.backward_sequence(params, cache, R)))
        del out, cache
    held = [net.forward_train_sequence(params, X) for X in episodes]  # all alive together
    small_net = small(cell)  # other passes in between, of other shapes and of the same ones
    small_net.backward(
        small_net.init_params(rng, 1)[0],
        small_net.forward_train(small_net.init_params(rng, 1)[0], rng.normal(size=(2, small_net.n_inputs)))[1],
        rng.normal(size=(2, small_net.n_outputs)),
    )
    net.forward_train_sequence(params, episodes[0])
    for (out, cache), R, (out_alone, grad_alone) in zip(held[::-1], Rs[::-1], alone[::-1]):
        np.testing.assert_array_equal(out, out_alone)
        np.testing.assert_array_equal(net.backward_sequence(params, cache, R), grad_alone)
    for (out, cache), R, (out_alone, grad_alone) in zip(held, Rs, alone):  # again, after the others' backward passes
        np.testing.assert_array_equal(out, out_alone)
        np.testing.assert_array_equal(net.backward_sequence(params, cache, R), grad_alone)
