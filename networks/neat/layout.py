"""The flat layout of a NEAT genome: field offsets, slot states and the node activations by code.

Flat layout of one genome, ``n_params = 4 * (max_nodes + max_connections)``::

    node block:        max_nodes slots x [exists, activation, bias, response]
    connection block:  max_connections slots x [state, in, out, weight]

* Node slot ``i`` is node ``i`` of the graph. Slots ``0 .. n_inputs-1`` are the
  inputs, the next ``n_outputs`` slots the outputs, hidden nodes follow.
  ``exists`` is 1.0 or 0.0 (empty slot). ``activation`` is a code of
  :data:`ACTIVATION_CODES`; it is used for hidden nodes only: inputs pass their
  value through and outputs use the spec's ``output_activation``. A node
  computes ``act(bias + response * sum_j w_j x_j)`` over its enabled inputs.
* ``state`` of a connection slot is 1.0 (enabled), -1.0 (present but
  disabled: kept so decoding shows the whole genome) or 0.0 (empty slot).
  ``in`` and ``out`` are node slot indices written as floats (exact small
  integers in float64); ``weight`` is the connection weight.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

NODE_FIELDS = 4
CONN_FIELDS = 4
# Field offsets inside a node slot and a connection slot.
NODE_EXISTS, NODE_ACTIVATION, NODE_BIAS, NODE_RESPONSE = 0, 1, 2, 3
CONN_STATE, CONN_IN, CONN_OUT, CONN_WEIGHT = 0, 1, 2, 3
ENABLED, DISABLED, EMPTY = 1.0, -1.0, 0.0

#: Activation codes written in the ``activation`` field of a node slot.
ACTIVATION_CODES: dict[str, int] = {"identity": 0, "sigmoid": 1, "tanh": 2, "relu": 3, "leaky_relu": 4}
ACTIVATION_NAMES: dict[int, str] = {code: name for name, code in ACTIVATION_CODES.items()}
OUTPUT_ACTIVATIONS = ("sigmoid", "softmax", "identity", "tanh", "relu", "leaky_relu")


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function, written with tanh so it never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (shifted by the maximum, so it never overflows)."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


#: Element-wise activations by code (kept local so a saved graph needs only NumPy).
ACTIVATION_FUNCTIONS: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    0: lambda z: z,
    1: sigmoid,
    2: np.tanh,
    3: lambda z: np.maximum(z, 0.0),
    4: lambda z: np.where(z > 0, z, 0.01 * z),
}


def activate(codes: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Per-node activation ``codes`` (broadcastable to ``z``) element-wise."""
    present = np.unique(codes)
    if len(present) == 1:
        return ACTIVATION_FUNCTIONS[int(present[0])](z)
    out = np.zeros_like(z)
    for code in present:
        out = np.where(codes == code, ACTIVATION_FUNCTIONS[int(code)](z), out)
    return out


def activation_derivative(codes: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``d act / d z`` for per-node activation ``codes`` (broadcastable to ``z``), from ``z`` and ``a = act(z)``."""
    rules: dict[int, Callable[[], np.ndarray]] = {
        0: lambda: np.ones_like(z),
        1: lambda: a * (1.0 - a),
        2: lambda: 1.0 - a * a,
        3: lambda: (z > 0).astype(np.float64),
        4: lambda: np.where(z > 0, 1.0, 0.01),
    }
    present = np.unique(codes)
    if len(present) == 1:
        return np.broadcast_to(rules[int(present[0])](), z.shape)
    out = np.zeros_like(z)
    for code in present:
        out = np.where(codes == code, rules[int(code)](), out)
    return out
