"""The NEAT graph's gradient, for the gradient-descent trainer (fine-tuning an evolved graph).

:func:`forward_train` runs one genome through the levels of
:mod:`networks.neat.compiled` keeping every pre-activation, and
:func:`backward` walks them in reverse: the forward's gathers of source values
become scatter-adds (``np.bincount``) of their gradients. The gradient lives
in the flat layout and is non-zero only on enabled connection weights and on
hidden and output biases; the structure (flags, codes, indices, responses)
gets exactly zero, so training never changes the graph. Dropout is not
supported on a graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from networks.activations import softmax
from networks.neat.compiled import (
    CompiledPopulation,
    compile_population,
    connection_blocks,
    propagate,
)
from networks.neat.layout import (
    Conn,
    Node,
    activation_backward,
)

if TYPE_CHECKING:
    from networks.neat.spec import NEATSpec


class NEATCache(NamedTuple):
    """What :meth:`NEATSpec.backward` needs from :meth:`NEATSpec.forward_train` (one genome, ``P = 1``)."""

    net: CompiledPopulation
    values: np.ndarray  # (1, N, B) node values (output slots: logits for a softmax)
    pre: np.ndarray  # (1, N, B) pre-activations z = bias + response * sum(w x)
    output_is_logits: bool  # softmax outputs returned as logits: d_out is d loss / d logits
    probabilities: np.ndarray | None  # softmax outputs returned as probabilities (B, n_out), for its Jacobian


def forward_train(
    spec: NEATSpec,
    params: np.ndarray,
    X: np.ndarray,
    dropout: float = 0.0,
    rng: np.random.Generator | None = None,
    return_logits: bool = True,
) -> tuple[np.ndarray, NEATCache]:
    """Outputs ``(B, n_out)`` of one genome ``(n_params,)`` on ``X (B, n_in)``, and the cache :meth:`backward` needs.

    The same level-by-level pass as :meth:`forward`, keeping every node's
    pre-activation. A softmax output returns its logits unless
    ``return_logits=False`` (the convention of :func:`networks.layers.dense.dense_train_forward`).
    Dropout is not defined on a NEAT graph: ``dropout > 0`` raises ValueError.
    """
    if dropout:
        raise ValueError(f"dropout = {dropout!r}: dropout is not supported for NEAT graphs (use 0)")
    params = np.asarray(params, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    if params.shape != (spec.n_params,):
        raise ValueError(f"expected one NEAT genome of shape ({spec.n_params},), got {params.shape}")
    if X.ndim != 2 or X.shape[1] != spec.n_inputs:
        raise ValueError(f"expected inputs of shape (B, {spec.n_inputs}), got {X.shape}")
    net = compile_population(spec, params[None, :])
    values, pre = propagate(spec, net, X, keep_pre=True)
    out = values[0, spec.n_inputs : spec.n_inputs + spec.n_outputs, :].T.copy()
    softmax_out = spec.output_activation == "softmax"
    if softmax_out and not return_logits:
        out = softmax(out)
    return out, NEATCache(net, values, pre, softmax_out and return_logits, out if softmax_out and not return_logits else None)


def backward(spec: NEATSpec, params: np.ndarray, cache: NEATCache, d_out: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Gradient ``(n_params,)`` of the loss w.r.t. the flat genome, given ``d_out = d loss / d outputs``.

    Reverse mode through :meth:`forward_train`'s levels, deepest first: per
    level ``dz = f'(z) * d_value``, ``d bias = sum_batch dz``, then through
    the same gathers as the forward, ``d w = sum_batch response * dz[dst] * value[src]``
    and ``d value[src] += w * response * dz[dst]`` (a ``np.bincount``
    scatter-add). Only enabled connection weights and the biases of hidden
    and output nodes get a gradient; every structural entry (exists flags,
    activation codes, connection states and indices, responses) and every
    empty or disabled slot gets exactly 0, so a gradient step never changes
    the graph. ``out``, if given, is a float ``(n_params,)`` buffer written and returned.
    """
    net, values, pre = cache.net, cache.values, cache.pre
    grad = np.zeros(spec.n_params) if out is None else out
    grad[...] = 0.0
    d_out = np.asarray(d_out, dtype=np.float64)
    B = values.shape[2]
    if d_out.shape != (B, spec.n_outputs):
        raise ValueError(f"expected d_out of shape ({B}, {spec.n_outputs}), got {d_out.shape}")
    if cache.probabilities is not None:  # softmax returned as probabilities: apply its Jacobian
        s = cache.probabilities
        d_out = s * (d_out - np.sum(d_out * s, axis=1, keepdims=True))
    P, N = net.level.shape
    d_values = np.zeros((P, N, B))
    d_values[0, spec.n_inputs : spec.n_inputs + spec.n_outputs, :] = d_out.T
    node_grad = grad[: spec._node_block].reshape(spec.max_nodes, Node.FIELDS)
    conn_grad = grad[spec._node_block :].reshape(spec.max_connections, Conn.FIELDS)
    batch = np.arange(B)
    position = np.full((P, N), -1, dtype=np.int64)
    for lvl in range(net.depth, 0, -1):
        node_genome, node_slot = np.nonzero(net.level == lvl)
        position[node_genome, node_slot] = np.arange(len(node_genome))
        codes = net.codes[node_genome, node_slot, None]
        dz = activation_backward(
            codes, d_values[node_genome, node_slot, :], pre[node_genome, node_slot, :], values[node_genome, node_slot, :]
        )
        node_grad[node_slot, Node.BIAS] = dz.sum(axis=1)  # one genome: node_genome is all 0
        d_total = dz * net.response[node_genome, node_slot, None]  # (nodes of this level, B)
        for lo, hi in connection_blocks(net.conn_genome, int(net.level_starts[lvl]), int(net.level_starts[lvl + 1]), B):
            g, src, dst = net.conn_genome[lo:hi], net.conn_src[lo:hi], net.conn_dst[lo:hi]
            d_target = d_total[position[g, dst]]  # (connections, B): the gather of the forward's scatter
            conn_grad[net.conn_slot[lo:hi], Conn.WEIGHT] = np.einsum("eb,eb->e", d_target, values[g, src, :])
            # The forward gathered values[g, src]; its reverse scatter-adds into d_values[g, src].
            source = ((g * N + src)[:, None] * B + batch).ravel()
            d_values += np.bincount(source, weights=(net.conn_weight[lo:hi, None] * d_target).ravel(), minlength=P * N * B).reshape(P, N, B)
    return grad
