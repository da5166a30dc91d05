"""Element-wise activations with their derivatives, side by side.

Each entry maps a name to ``(forward, derivative)`` where the derivative is
written in terms of the *input* ``z`` and the *output* ``a`` so the trainer can
use whichever it cached. Softmax is handled by the output layer (its Jacobian
is folded into the cross-entropy gradient).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

LEAKY_SLOPE = 0.01


def relu(z: np.ndarray) -> np.ndarray:
    """max(0, z)."""
    return np.maximum(z, 0)


def relu_grad(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """d relu / dz."""
    return (z > 0).astype(z.dtype)


def leaky_relu(z: np.ndarray) -> np.ndarray:
    """z for z > 0, 0.01 z otherwise."""
    return np.where(z > 0, z, LEAKY_SLOPE * z)


def leaky_relu_grad(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """d leaky_relu / dz."""
    return np.where(z > 0, 1.0, LEAKY_SLOPE).astype(z.dtype)


def tanh(z: np.ndarray) -> np.ndarray:
    """Hyperbolic tangent."""
    return np.tanh(z)


def tanh_grad(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """1 - tanh(z)^2."""
    return 1.0 - a * a


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function, computed without overflow for large |z|."""
    # 0.5 * (1 + tanh(z/2)) is the logistic function and never overflows.
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def sigmoid_grad(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """sigmoid(z) (1 - sigmoid(z))."""
    return a * (1.0 - a)


def identity(z: np.ndarray) -> np.ndarray:
    """z unchanged."""
    return z


def identity_grad(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """1."""
    return np.ones_like(z)


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the max for stability."""
    shifted = z - z.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


ACTIVATIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    "relu": (relu, relu_grad),
    "leaky_relu": (leaky_relu, leaky_relu_grad),
    "tanh": (tanh, tanh_grad),
    "sigmoid": (sigmoid, sigmoid_grad),
    "identity": (identity, identity_grad),
}

OUTPUT_ACTIVATIONS = tuple(ACTIVATIONS) + ("softmax",)


def activation_names() -> tuple[str, ...]:
    """Names accepted for hidden layers."""
    return tuple(ACTIVATIONS)


# ------------------------------------------------------------------ backward
# Backward helpers for the gradient-descent trainer: each maps the upstream
# gradient ``d_a`` (w.r.t. the activation's output) to ``d_z`` (w.r.t. its
# input), given the cached input ``z`` and output ``a``. They fold the
# element-wise derivative into one or two NumPy calls (the trainer's hot path),
# instead of building the derivative array and multiplying it separately.


def relu_backward(d_a: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """d_a where z > 0, else 0."""
    return d_a * (z > 0)


def leaky_relu_backward(d_a: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """d_a where z > 0, else 0.01 d_a."""
    return np.where(z > 0, d_a, LEAKY_SLOPE * d_a)


def tanh_backward(d_a: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """d_a (1 - a^2)."""
    return d_a * (1.0 - a * a)


def sigmoid_backward(d_a: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """d_a a (1 - a)."""
    return d_a * (a * (1.0 - a))


def identity_backward(d_a: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """d_a unchanged."""
    return d_a


def softmax_backward(d_a: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Softmax Jacobian-vector product over the last axis: a (d_a - sum(d_a a))."""
    return a * (d_a - np.sum(d_a * a, axis=-1, keepdims=True))


BACKWARD: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "relu": relu_backward,
    "leaky_relu": leaky_relu_backward,
    "tanh": tanh_backward,
    "sigmoid": sigmoid_backward,
    "identity": identity_backward,
    "softmax": softmax_backward,
}
