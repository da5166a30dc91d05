"""Training-mode forward pass and back-propagation for one :class:`~networks.mlp.MLP`.

The gradient is returned in the network's flat layout (per layer ``W`` row-major,
then ``b``), the same vector evolution works on, so an evolved genome can be
fine-tuned by gradient descent and a trained one seeded into a population.

One network, plain 2-D matmuls (no population axis): per layer, ``forward``
is ``z = h W + b; a = f(z)`` and ``backward`` is

    dz = f'(z) * da          (folded by ``BACKWARD[f]``)
    dW = h^T dz,   db = sum_batch dz,   dh = dz W^T

written side by side below. The layer tensors are views into the flat
parameter vector, and ``dW``/``db`` are written straight into views of the flat
gradient vector (no concatenation).

Softmax outputs: by default :func:`forward_train` returns the *logits* of a
softmax output layer (``return_logits=True``), for
:func:`networks.losses.softmax_cross_entropy` to combine with the softmax; the
gradient ``backward`` takes is then ``d loss / d logits``. With
``return_logits=False`` it returns the probabilities and ``backward`` applies
the softmax Jacobian. Sigmoid / tanh / identity outputs always return the
activated outputs and ``backward`` applies the activation's derivative (for a
loss on the outputs such as mean squared error).

Dropout is *inverted* dropout on hidden layers: each hidden unit is kept with
probability ``1 - dropout`` and the kept ones are scaled by ``1 / (1 - dropout)``,
so nothing changes at inference. The mask is drawn from ``rng`` and cached for
``backward``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from networks.activations import ACTIVATIONS, BACKWARD, softmax
from networks.mlp import MLP


class LayerRecord(NamedTuple):
    """What one layer's backward needs from its forward."""

    inputs: np.ndarray  # h, (B, n_in): the layer's input (after the previous layer's dropout)
    pre: np.ndarray  # z = h W + b, (B, n_out)
    post: np.ndarray  # a = f(z) before dropout (the logits themselves for a softmax returned as logits)
    mask: np.ndarray | None  # inverted-dropout mask (0 or 1/(1-p)), hidden layers only


class ForwardCache(NamedTuple):
    """Per-layer records of :func:`forward_train`, consumed by :func:`backward`."""

    records: list[LayerRecord]
    output_is_logits: bool


def layer_views(net: MLP, flat: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per-layer ``W (n_in, n_out)`` and ``b (n_out,)`` as *views* into a flat ``(n_params,)`` vector."""
    layers = []
    for (n_in, n_out), start in zip(net.shapes, net.offsets):
        w_end = start + n_in * n_out
        layers.append((flat[start:w_end].reshape(n_in, n_out), flat[w_end : w_end + n_out]))
    return layers


def weight_mask(net: MLP) -> np.ndarray:
    """Boolean ``(n_params,)``: True on weight entries, False on biases (L2 decays weights only)."""
    mask = np.zeros(net.n_params, dtype=bool)
    for W, _ in layer_views(net, mask):
        W[...] = True
    return mask


def l2_penalty(net: MLP, params: np.ndarray, weight_decay: float) -> tuple[float, np.ndarray]:
    """``0.5 * weight_decay * sum(W^2)`` over the weights (not biases), and its gradient."""
    grad = np.where(weight_mask(net), weight_decay * params, 0.0)
    return 0.5 * float(np.vdot(grad, params)), grad


def _check(net: MLP, params: np.ndarray, X: np.ndarray) -> None:
    if params.shape != (net.n_params,):
        raise ValueError(f"expected a flat parameter vector of shape ({net.n_params},), got {params.shape}")
    if X.ndim != 2 or X.shape[1] != net.n_inputs:
        raise ValueError(f"expected inputs of shape (B, {net.n_inputs}), got {X.shape}")


def forward_train(
    net: MLP,
    params: np.ndarray,
    X: np.ndarray,
    dropout: float = 0.0,
    rng: np.random.Generator | None = None,
    return_logits: bool = True,
) -> tuple[np.ndarray, ForwardCache]:
    """Outputs ``(B, n_out)`` of one network and the cache :func:`backward` needs.

    For a softmax output layer the outputs are the logits unless
    ``return_logits=False`` (see the module docstring).
    """
    params = np.asarray(params)
    X = np.asarray(X)
    _check(net, params, X)
    if dropout:
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout = {dropout!r}: must be in [0, 1)")
        if rng is None:
            raise ValueError("dropout > 0 needs a random generator: pass rng=np.random.default_rng(seed)")
        keep_scale = 1.0 / (1.0 - dropout)
    last = net.n_layers - 1
    records = []
    h = X
    for i, (W, b) in enumerate(layer_views(net, params)):
        z = h @ W
        z += b
        name = net.layer_activation(i)
        mask = None
        if i == last:
            if name == "softmax":
                a = z if return_logits else softmax(z)
            else:
                a = ACTIVATIONS[name][0](z)
            out = a
        else:
            a = ACTIVATIONS[name][0](z)
            out = a
            if dropout:
                mask = (rng.random(a.shape) >= dropout) * keep_scale
                out = a * mask
        records.append(LayerRecord(h, z, a, mask))
        h = out
    return h, ForwardCache(records, return_logits and net.output_activation == "softmax")


def backward(
    net: MLP,
    params: np.ndarray,
    cache: ForwardCache,
    d_out: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Gradient ``(n_params,)`` of the loss w.r.t. ``params``, given ``d_out = d loss / d outputs``.

    ``params`` and ``cache`` must come from the same :func:`forward_train` call.
    ``out``, if given, is a float ``(n_params,)`` buffer the gradient is written
    into (and returned), to avoid an allocation per step.
    """
    params = np.asarray(params)
    grad = np.empty(net.n_params) if out is None else out
    weights = layer_views(net, params)
    grads = layer_views(net, grad)
    records = cache.records
    last = len(records) - 1
    d = d_out  # gradient w.r.t. the current layer's output (after dropout)
    for i in range(last, -1, -1):
        h, z, a, mask = records[i]
        name = net.layer_activation(i)
        if i == last and cache.output_is_logits:
            dz = d  # softmax folded into the loss: d is already d loss / d logits
        else:
            if mask is not None:
                d *= mask  # hidden layers only, where d is our own dz @ W^T
            dz = BACKWARD[name](d, z, a)
        dW, db = grads[i]
        np.matmul(h.T, dz, out=dW)
        np.sum(dz, axis=0, out=db)
        if i:
            d = dz @ weights[i][0].T
    return grad
