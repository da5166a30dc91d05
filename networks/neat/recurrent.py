"""Recurrent NEAT networks: any graph of the NEAT layout, cycles and self-connections allowed, run one step at a time.

Each time step updates every node *synchronously* from the previous step's
values, as neat-python's ``RecurrentNetwork`` does: the inputs take this
step's values, and every other node becomes
``act(bias + response * sum_j w_j v_j)`` over its enabled inputs' values of
the step before (an input's value being the current one). An output thus
answers an input after as many steps as the shortest path between them; a
signal may also circle through a loop for as long as the episode runs. The
state is the value of every node slot, ``(P, N, B)`` (node-major, as the
feedforward pass), at rest (0) when an episode or sequence starts.

A step runs the whole population at once: one gather of the source values,
one multiply by the weights and one scatter-add (``np.bincount``) over all
enabled connections of all genomes and the whole batch. Each node's inputs
are summed in its genome's connection-slot order, so a genome's numbers never
depend on the others sharing the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from networks.activations import ACTIVATIONS, softmax
from networks.neat.layout import ACTIVATION_CODES, ACTIVATION_NAMES, Conn, Node
from networks.neat.spec import NEATLayout
from networks.spec import Bindable, CountsParameters, GraphExportable, HasComplexity, Recurrent
from networks.stack import GenomeStack


@dataclass
class RecurrentPopulation:
    """A stack of P recurrent genomes compiled for stepping, over the first N node slots (those in use)."""

    bias: np.ndarray  # (P, N, 1)
    response: np.ndarray  # (P, N, 1)
    code_groups: list[tuple[int, np.ndarray]]  # (activation code, node mask (P, N)) of every non-input node
    conn_genome: np.ndarray  # (E,) int, genome-major then slot order
    conn_src: np.ndarray
    conn_dst: np.ndarray
    conn_weight: np.ndarray  # (E,)


def compile_recurrent(spec: NEATLayout, params: np.ndarray) -> RecurrentPopulation:
    """Node data and the enabled connections of a stack ``(P, n_params)``; ValueError on a connection to nowhere."""
    params = np.asarray(params, dtype=np.float64)
    if params.ndim != 2 or params.shape[1] != spec.n_params:
        raise ValueError(f"expected NEAT genomes of shape (P, {spec.n_params}), got {params.shape}")
    nodes, conns = spec.split(params)
    exists = nodes[..., Node.EXISTS] > 0.5
    used = np.flatnonzero(exists.any(axis=0))
    N = max(int(used[-1]) + 1 if len(used) else 0, spec.n_inputs + spec.n_outputs)
    exists = exists[:, :N]
    rows, cols = np.nonzero(conns[..., Conn.STATE] > 0.5)
    src_f, dst_f = conns[rows, cols, Conn.IN], conns[rows, cols, Conn.OUT]
    src, dst = src_f.astype(np.int64), dst_f.astype(np.int64)
    bad = (src_f != src) | (dst_f != dst) | (src < 0) | (dst < 0) | (src >= N) | (dst >= N)
    if not bad.any():
        bad = ~exists[rows, src] | ~exists[rows, dst] | (dst < spec.n_inputs)
    if bad.any():
        who = sorted(set(rows[bad].tolist()))[:5]
        raise ValueError(f"NEAT genome(s) {who}: an enabled connection names an empty or out-of-range node slot, or ends in an input")
    codes = nodes[:, :N, Node.ACTIVATION].astype(np.int64)
    outputs = slice(spec.n_inputs, spec.n_inputs + spec.n_outputs)
    out_name = spec.output_activation
    codes[:, outputs] = ACTIVATION_CODES["identity"] if out_name == "softmax" else ACTIVATION_CODES[out_name]
    computed = exists.copy()
    computed[:, : spec.n_inputs] = False
    unknown = np.setdiff1d(codes[computed], list(ACTIVATION_NAMES))
    if len(unknown):
        raise ValueError(f"NEAT genome: unknown activation code(s) {unknown.tolist()}; known: {ACTIVATION_CODES}")
    groups = [(int(code), computed & (codes == code)) for code in np.unique(codes[computed])]
    return RecurrentPopulation(
        bias=nodes[:, :N, Node.BIAS, None].copy(),
        response=nodes[:, :N, Node.RESPONSE, None].copy(),
        code_groups=groups,
        conn_genome=rows,
        conn_src=src,
        conn_dst=dst,
        conn_weight=conns[rows, cols, Conn.WEIGHT],
    )


def recurrent_step(spec: NEATLayout, net: RecurrentPopulation, values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The node values ``(P, N, B)`` one synchronous step after ``values``, the inputs set to ``x (B, n_in)`` or ``(P, B, n_in)``."""
    P, N, B = values.shape
    old = values.copy()
    old[:, : spec.n_inputs, :] = np.swapaxes(x, -1, -2)
    contributions = net.conn_weight[:, None] * old[net.conn_genome, net.conn_src, :]
    target = ((net.conn_genome * N + net.conn_dst)[:, None] * B + np.arange(B)).ravel()
    # bincount adds in input order: each node's inputs in its genome's slot order.
    total = np.bincount(target, weights=contributions.ravel(), minlength=P * N * B).reshape(P, N, B)
    z = net.bias + net.response * total
    new = np.zeros_like(old)
    new[:, : spec.n_inputs, :] = old[:, : spec.n_inputs, :]
    for code, mask in net.code_groups:
        new[mask] = ACTIVATIONS[ACTIVATION_NAMES[code]].forward(z[mask])
    return new


@dataclass(frozen=True)
class RecurrentNEATSpec(NEATLayout, Recurrent, Bindable, GraphExportable, HasComplexity, CountsParameters):
    """A recurrent NEAT network spec (``network.feed_forward = false``); see the module docstring.

    ``forward`` is one step from rest (a sample is one time step);
    :func:`networks.stack.bind_genomes` gives a stack that carries the node
    values across the steps of an episode.
    """

    feed_forward: ClassVar[bool] = False
    type_name: ClassVar[str] = "neat_recurrent"

    def initial_state(self, n: int, batch: int) -> np.ndarray:
        """Every node at rest: zeros ``(n, batch, max_nodes)``."""
        return np.zeros((n, batch, self.max_nodes))

    def step(self, params: np.ndarray, state: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One synchronous step: node values ``state (P, B, max_nodes)``, inputs ``x (P, B, n_in)`` -> new state, outputs ``(P, B, n_out)``."""
        net = compile_recurrent(self, params)
        N = len(net.bias[0])
        values = recurrent_step(self, net, np.swapaxes(state[..., :N], 1, 2), np.asarray(x, dtype=np.float64))
        new = np.zeros_like(state)
        new[..., :N] = np.swapaxes(values, 1, 2)
        return new, self._outputs(values)

    def _outputs(self, values: np.ndarray) -> np.ndarray:
        out = np.swapaxes(values[:, self.n_inputs : self.n_inputs + self.n_outputs, :], 1, 2)
        return softmax(out) if self.output_activation == "softmax" else out

    def forward(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Outputs ``(P, B, n_out)`` of one step from rest on inputs ``(B, n_in)`` or ``(P, B, n_in)``."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != self.n_inputs or x.ndim not in (2, 3):
            raise ValueError(f"expected inputs (B, {self.n_inputs}) or (P, B, {self.n_inputs}), got shape {x.shape}")
        net = compile_recurrent(self, params)
        rest = np.zeros((len(net.bias), len(net.bias[0]), x.shape[-2]))
        return self._outputs(recurrent_step(self, net, rest, x))

    def predict(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Outputs ``(B, n_out)`` of one genome, one step from rest."""
        return self.forward(np.asarray(params)[None, :], x)[0]

    def bind(self, genomes: np.ndarray) -> GenomeStack:
        """A stack compiled once that carries its node values from step to step (an episode's)."""
        return BoundRecurrentNEAT(self, genomes)


class BoundRecurrentNEAT(GenomeStack):
    """Recurrent NEAT genomes for a rollout: compiled once, node values ``(P, N, B)`` kept between steps."""

    def __init__(self, network: RecurrentNEATSpec, genomes: np.ndarray) -> None:
        super().__init__(network, genomes)
        self.compiled = compile_recurrent(network, genomes)
        self.values: np.ndarray | None = None

    def forward(self, inputs: np.ndarray) -> np.ndarray:
        """Outputs ``(P, E, n_out)`` of the next step on inputs ``(P, E, n_in)``; the first call starts from rest."""
        network: RecurrentNEATSpec = self.network  # type: ignore[assignment]
        if self.values is None:
            self.values = np.zeros((len(self.genomes), len(self.compiled.bias[0]), inputs.shape[-2]))
        self.values = recurrent_step(network, self.compiled, self.values, np.asarray(inputs, dtype=np.float64))
        return network._outputs(self.values)

    def keep(self, rows: np.ndarray) -> None:
        """Drop every genome but ``rows``, with its node values (recompiled: compaction is rare)."""
        super().keep(rows)
        self.compiled = compile_recurrent(self.network, self.genomes)  # type: ignore[arg-type]
        if self.values is not None:
            self.values = self.values[rows, : len(self.compiled.bias[0])]
