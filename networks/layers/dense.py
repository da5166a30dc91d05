"""Dense (fully connected) layers: forward and backward side by side, for one network or a stack of them.

One layer is ``z = h W + b; a = f(z)``; its backward, given ``d_a``, is

    dz = f'(z) * d_a          (folded by ``OUTPUT_ACTIVATIONS[f].backward``)
    dW = h^T dz,   db = sum_batch dz,   dh = dz W^T

The inference forward (:func:`dense_stack_forward`) runs a stack of P
networks at once: ``h (B, n_in)`` or ``(P, B, n_in)`` against ``W (P, n_in, n_out)``
is one batched ``matmul`` per layer, no Python loop over genomes or samples.
The training forward and backward (:func:`dense_train_forward`,
:func:`dense_train_backward`) run one network with plain 2-D matmuls and keep
per-layer records; the MLP and the CNN's dense head share them.

Softmax outputs: :func:`dense_train_forward` returns the *logits* of a
softmax output layer when ``return_logits`` (for
:func:`networks.losses.softmax_cross_entropy` to combine with the softmax);
the gradient :func:`dense_train_backward` takes is then ``d loss / d logits``.
Otherwise it returns the activated outputs and the backward applies the
activation's derivative (the softmax Jacobian included).

Dropout is *inverted* dropout on a layer's input: each value is kept with
probability ``1 - dropout`` and the kept ones are scaled by ``1 / (1 - dropout)``,
so nothing changes at inference. The mask is drawn from ``rng`` (one draw per
dropped layer, first layer first) and kept for the backward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from networks.activations import OUTPUT_ACTIVATIONS, Activation


def flatten_layers(layers: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """A stack's per-layer ``(W, b)`` (population axis first) back to the flat ``(P, n_params)``: each W, then its b."""
    P = layers[0][0].shape[0]
    parts = []
    for W, b in layers:
        parts.append(W.reshape(P, -1))
        parts.append(b.reshape(P, -1))
    return np.concatenate(parts, axis=1)


# ------------------------------------------------------------ one layer
def dense_forward(h: np.ndarray, W: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``z = h W + b`` (into ``out`` when given); stacked operands broadcast as ``np.matmul`` does."""
    z = np.matmul(h, W, out=out)
    z += b
    return z


def dense_backward(dz: np.ndarray, h: np.ndarray, dW: np.ndarray, db: np.ndarray) -> None:
    """``dW = h^T dz`` and ``db = sum_batch dz``, written into ``dW``, ``db``; the input's gradient is ``dz W^T``."""
    np.matmul(h.T, dz, out=dW)
    np.sum(dz, axis=0, out=db)


def dropout_mask(shape: tuple[int, ...], dropout: float, rng: np.random.Generator) -> np.ndarray:
    """Inverted-dropout mask: 0 with probability ``dropout``, else ``1 / (1 - dropout)``."""
    return (rng.random(shape) >= dropout) * (1.0 / (1.0 - dropout))


def check_dropout(dropout: float, rng: np.random.Generator | None) -> None:
    """ValueError unless ``dropout`` is in [0, 1) and, when it is not 0, a generator is given."""
    if dropout:
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout = {dropout!r}: must be in [0, 1)")
        if rng is None:
            raise ValueError("dropout > 0 needs a random generator: pass rng=np.random.default_rng(seed)")


# ------------------------------------------------- a stack of P networks
def dense_stack_forward(
    h: np.ndarray,
    layers: Sequence[tuple[np.ndarray, np.ndarray]],
    activations: Sequence[Activation],
    buffers: Sequence[np.ndarray | None] | None = None,
) -> np.ndarray:
    """Outputs of dense layers ``W (P, n_in, n_out)``, ``b (P, 1, n_out)`` on ``h (B, n_in)`` or ``(P, B, n_in)``.

    ``activations`` are the layers' :class:`~networks.activations.Activation`
    entries (looked up once by the caller: a rollout calls this hundreds of
    times on tiny arrays, where each lookup shows). ``buffers``, when given,
    are per-layer ``(P, B, n_out)`` arrays the layers compute into, without an
    allocation per layer; the result may then be one of them, valid until the
    next call.
    """
    # No strict= keyword: zip called with any keyword costs a quarter of a microsecond, which shows here.
    for (W, b), activation, out in zip(layers, activations, buffers or [None] * len(layers)):  # noqa: B905
        z = np.matmul(h, W, out=out)  # dense_forward, written out for the same reason
        z += b
        h = activation.forward(z, z)
    return h


# ------------------------------------------------ one network, training
class DenseRecord(NamedTuple):
    """What one dense layer's backward needs from its forward."""

    inputs: np.ndarray  # h, (B, n_in), after dropout
    pre: np.ndarray  # z = h W + b, (B, n_out)
    post: np.ndarray  # a = f(z), (B, n_out); the logits themselves for a softmax returned as logits
    mask: np.ndarray | None  # inverted-dropout mask applied to ``inputs``, (B, n_in)


def dense_train_forward(
    h: np.ndarray,
    layers: Sequence[tuple[np.ndarray, np.ndarray]],
    activations: Sequence[str],
    dropout: float = 0.0,
    rng: np.random.Generator | None = None,
    drop_first_input: bool = False,
    return_logits: bool = True,
) -> tuple[np.ndarray, list[DenseRecord], bool]:
    """Outputs ``(B, n_out)`` of one network's dense layers ``W (n_in, n_out)``, ``b (n_out,)``, their records, and
    whether the outputs are softmax logits.

    With ``dropout``, every layer's input but the first is dropped out (the
    first one too when ``drop_first_input``); see the module docstring.
    """
    last = len(layers) - 1
    records = []
    for i, ((W, b), name) in enumerate(zip(layers, activations)):  # noqa: B905 (see dense_stack_forward)
        mask = None
        if dropout and (i or drop_first_input):
            assert rng is not None, "dropout > 0 needs a random generator (check_dropout)"
            mask = dropout_mask(h.shape, dropout, rng)
            h = h * mask
        z = dense_forward(h, W, b)
        # A softmax returned as logits stays z: the loss folds the softmax in.
        a = z if i == last and name == "softmax" and return_logits else OUTPUT_ACTIVATIONS[name].forward(z)
        records.append(DenseRecord(h, z, a, mask))
        h = a
    return h, records, return_logits and activations[last] == "softmax"


def dense_train_backward(
    d_out: np.ndarray,
    records: Sequence[DenseRecord],
    weights: Sequence[np.ndarray],
    grads: Sequence[tuple[np.ndarray, np.ndarray]],
    activations: Sequence[str],
    output_is_logits: bool,
) -> np.ndarray:
    """Backward of :func:`dense_train_forward`: per-layer ``dW``, ``db`` written into ``grads``; returns the first layer's ``dz``.

    ``d_out`` is ``d loss / d outputs`` (``d loss / d logits`` when
    ``output_is_logits``). The gradient w.r.t. the first layer's input is
    ``dz W^T`` (times its dropout mask), left to the caller, who may not need it.
    """
    last = len(records) - 1
    d = d_out  # gradient w.r.t. the current layer's output
    dz = d
    for i in range(last, -1, -1):
        h, z, a, mask = records[i]
        # Softmax folded into the loss: d is already d loss / d logits.
        dz = d if i == last and output_is_logits else OUTPUT_ACTIVATIONS[activations[i]].backward(d, z, a)
        dense_backward(dz, h, *grads[i])
        if i:
            d = dz @ weights[i].T  # w.r.t. this layer's (dropped-out) input
            if mask is not None:
                d *= mask
    return dz
