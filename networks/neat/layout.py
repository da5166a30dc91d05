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

import numpy as np

from networks.activations import ACTIVATIONS


class Node:
    """A node slot: its field offsets (``nodes[:, Node.BIAS]``) and width."""

    EXISTS, ACTIVATION, BIAS, RESPONSE = 0, 1, 2, 3
    FIELDS = 4


class Conn:
    """A connection slot: its field offsets (``conns[:, Conn.WEIGHT]``), width, and the values of its ``STATE`` field."""

    STATE, IN, OUT, WEIGHT = 0, 1, 2, 3
    FIELDS = 4
    ENABLED, DISABLED, EMPTY = 1.0, -1.0, 0.0


#: Activation codes written in the ``activation`` field of a node slot: an index into
#: :data:`networks.activations.ACTIVATIONS` by name (fixed numbers, so saved genomes keep their meaning).
ACTIVATION_CODES: dict[str, int] = {"identity": 0, "sigmoid": 1, "tanh": 2, "relu": 3, "leaky_relu": 4}
ACTIVATION_NAMES: dict[int, str] = {code: name for name, code in ACTIVATION_CODES.items()}


def activate(codes: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Per-node activation ``codes`` (broadcastable to ``z``) element-wise."""
    present = np.unique(codes)
    if len(present) == 1:
        return ACTIVATIONS[ACTIVATION_NAMES[int(present[0])]].forward(z)
    out = np.zeros_like(z)
    for code in present:
        out = np.where(codes == code, ACTIVATIONS[ACTIVATION_NAMES[int(code)]].forward(z), out)
    return out


def activation_backward(codes: np.ndarray, d_a: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``d_z`` for per-node activation ``codes`` (broadcastable to ``z``), from the upstream ``d_a``, ``z`` and ``a = act(z)``."""
    present = np.unique(codes)
    if len(present) == 1:
        return ACTIVATIONS[ACTIVATION_NAMES[int(present[0])]].backward(d_a, z, a)
    out = np.zeros_like(z)
    for code in present:
        out = np.where(codes == code, ACTIVATIONS[ACTIVATION_NAMES[int(code)]].backward(d_a, z, a), out)
    return out
