"""Activations, each with its forward and its backward side by side: the one table every network reads.

An :class:`Activation` holds

* ``forward(z, out=None)``: ``a = f(z)``. ``out`` (which may be ``z`` itself)
  is a buffer the result may be written into, to save an allocation per
  layer; the result is the returned array, which is ``out`` only when the
  function could compute in place.
* ``backward(d_a, z, a)``: the gradient ``d_z`` w.r.t. the input given the
  upstream gradient ``d_a`` w.r.t. the output and the cached input ``z`` and
  output ``a``, folded into one or two NumPy calls (the trainer's hot path)
  instead of building ``f'(z)`` and multiplying it separately.
* ``non_decreasing``: max pooling may be computed before the activation
  (see :mod:`networks.layers.conv`) only when this holds.
* ``he_init``: rectifiers start from He-normal weights, the others from
  Glorot (Xavier) normal.

:data:`ACTIVATIONS` are the element-wise ones, allowed on every layer;
:data:`OUTPUT_ACTIVATIONS` adds softmax over the last axis, allowed on an
output layer only (with cross-entropy its Jacobian is folded into the loss's
gradient, see :func:`networks.losses.softmax_cross_entropy`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

LEAKY_SLOPE = 0.01


class Activation(NamedTuple):
    """One activation: forward and backward side by side, and the two facts the layers ask of it."""

    forward: Callable[..., np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    non_decreasing: bool
    he_init: bool = False


def relu(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """max(0, z)."""
    return np.maximum(z, 0, out=out)


def relu_backward(d_a: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """d_a where z > 0, else 0."""
    return d_a * (z > 0)


def leaky_relu(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """z for z > 0, 0.01 z otherwise (always a new array)."""
    return np.where(z > 0, z, LEAKY_SLOPE * z)


def leaky_relu_backward(d_a: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """d_a where z > 0, else 0.01 d_a."""
    return np.where(z > 0, d_a, LEAKY_SLOPE * d_a)


def tanh_backward(d_a: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """d_a (1 - a^2)."""
    return d_a * (1.0 - a * a)


def sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic function as 0.5 (1 + tanh(z / 2)), which never overflows."""
    # The same four operations, in the same order, with or without ``out``.
    a = np.multiply(0.5, z, out=out)
    np.tanh(a, out=a)
    np.add(1.0, a, out=a)
    return np.multiply(0.5, a, out=a)


def sigmoid_backward(d_a: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """d_a a (1 - a)."""
    return d_a * (a * (1.0 - a))


def identity(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """z unchanged (no copy)."""
    return z


def identity_backward(d_a: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """d_a unchanged."""
    return d_a


#: Widest last axis whose max and (float32) sum run as one element-wise operation per column
_COLUMN_LOOP = 16


def _last_axis_max(z: np.ndarray) -> np.ndarray:
    """``z.max(axis=-1, keepdims=True)``, exactly, in a column loop when the axis is short (a reduction over
    10 classes is 5x slower than 9 element-wise maxima; the maximum is exact in any order, so nothing changes)."""
    if not 1 < z.shape[-1] <= _COLUMN_LOOP:
        return z.max(axis=-1, keepdims=True)
    m = z[..., :1].copy()
    for k in range(1, z.shape[-1]):
        np.maximum(m, z[..., k : k + 1], out=m)
    return m


def _last_axis_sum(e: np.ndarray) -> np.ndarray:
    """``e.sum(axis=-1, keepdims=True)``; float32 adds a short axis column by column (another order: float64 keeps
    NumPy's own reduction, whose numbers must not change)."""
    if e.dtype != np.float32 or not 1 < e.shape[-1] <= _COLUMN_LOOP:
        return e.sum(axis=-1, keepdims=True)
    total = e[..., :1].copy()
    for k in range(1, e.shape[-1]):
        np.add(total, e[..., k : k + 1], out=total)
    return total


def softmax(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Softmax over the last axis, shifted by the max for stability (into ``out`` when given, which may be ``z``)."""
    e = np.subtract(z, _last_axis_max(z), out=out)
    np.exp(e, out=e)
    return np.divide(e, _last_axis_sum(e), out=e)


def softmax_backward(d_a: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Softmax Jacobian-vector product over the last axis: a (d_a - sum(d_a a))."""
    return a * (d_a - np.sum(d_a * a, axis=-1, keepdims=True))


#: Element-wise activations, allowed on hidden and output layers.
ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(relu, relu_backward, non_decreasing=True, he_init=True),
    "leaky_relu": Activation(leaky_relu, leaky_relu_backward, non_decreasing=True, he_init=True),
    # The ufunc itself, whose signature is already (z, out=None): control's many tiny steps feel a wrapper's call.
    "tanh": Activation(np.tanh, tanh_backward, non_decreasing=True),
    "sigmoid": Activation(sigmoid, sigmoid_backward, non_decreasing=True),
    "identity": Activation(identity, identity_backward, non_decreasing=True),
}

#: Every activation an output layer may have: the element-wise ones and softmax.
OUTPUT_ACTIVATIONS: dict[str, Activation] = {
    **ACTIVATIONS,
    "softmax": Activation(softmax, softmax_backward, non_decreasing=False),
}


def activation_names() -> tuple[str, ...]:
    """Names accepted for hidden layers."""
    return tuple(ACTIVATIONS)
