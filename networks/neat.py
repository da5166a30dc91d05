"""NEAT networks: variable feedforward graphs stored in a fixed-length flat vector.

A NEAT genome (Stanley & Miikkulainen, 2002, "Evolving Neural Networks
through Augmenting Topologies", Evolutionary Computation 10(2)) is a list of
node genes and connection genes. To let it travel like any other genome of
this project (chunked by the evaluators, shipped by Ray, saved in ``.npz``
checkpoints, scored by tasks through ``forward(genomes, X)``), the graph is
written into a *fixed-length* float vector, padded with empty slots.

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

The forward pass compiles a whole stack of genomes at once (in the manner of
TensorNEAT, Wang et al., 2024): a topological level per node and genome
(longest path from the inputs), the enabled connections of all genomes as
index arrays grouped by the level of their target, then per *level* one
gather of the source values, one multiply by the weights and one scatter-add
(``np.bincount``), across the population and the batch of samples. There is
no Python loop over individuals, samples or nodes; the loop runs over levels
(the depth of the deepest network). The scatter-add sums each node's inputs in
its own genome's slot order, so a genome's outputs are bit-identical whatever
other genomes share the call (a dense per-level ``matmul`` over a
population-wide padded width is not: BLAS rounds differently as that width
changes with the chunk, which would break the evaluators' guarantee that
chunking changes nothing).

A cyclic graph is refused with ``ValueError`` (the strategies never create
one; an evaluator then scores the offending genome alone as a failure).

For the gradient-descent trainer (fine-tuning an evolved graph),
:meth:`NEATSpec.forward_train` runs one genome through the same levels
keeping every pre-activation, and :meth:`NEATSpec.backward` walks them in
reverse: the forward's gathers of source values become scatter-adds
(``np.bincount``) of their gradients. The gradient lives in the flat layout
and is non-zero only on enabled connection weights and on hidden and output
biases; the structure (flags, codes, indices, responses) gets exactly zero,
so training never changes the graph. Dropout is not supported on a graph.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple, Sequence

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


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function, without overflow


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


#: Element-wise activations by code (kept local so a saved graph needs only NumPy).
_FUNCTIONS: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    0: lambda z: z,
    1: _sigmoid,
    2: np.tanh,
    3: lambda z: np.maximum(z, 0.0),
    4: lambda z: np.where(z > 0, z, 0.01 * z),
}


#: Largest (connections x samples) block the forward pass materialises at once (32 MiB of float64).
BLOCK_ELEMENTS = 1 << 22


def _blocks(genome: np.ndarray, lo: int, hi: int, batch: int) -> list[tuple[int, int]]:
    """Cut connections ``lo:hi`` (grouped by genome) into blocks of about BLOCK_ELEMENTS values, at genome boundaries.

    A genome's connections stay in one block, so how a population is chunked
    never changes the order in which a node's inputs are summed.
    """
    limit = max(1, BLOCK_ELEMENTS // max(batch, 1))
    if hi <= lo:
        return []
    if hi - lo <= limit:
        return [(lo, hi)]
    first = lo + np.flatnonzero(np.r_[True, genome[lo + 1 : hi] != genome[lo : hi - 1]])
    bounds = np.append(first, hi)  # where each genome's connections begin, then the end
    blocks, begin = [], lo
    while begin < hi:
        end = int(bounds[np.searchsorted(bounds, begin + limit, side="right") - 1])
        if end <= begin:  # one genome alone exceeds the limit: it still goes whole
            end = int(bounds[np.searchsorted(bounds, begin, side="right")])
        blocks.append((begin, end))
        begin = end
    return blocks


def _activate(codes: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Apply per-node activation ``codes`` (broadcastable to ``z``) element-wise."""
    present = np.unique(codes)
    if len(present) == 1:
        return _FUNCTIONS[int(present[0])](z)
    out = np.zeros_like(z)
    for code in present:
        out = np.where(codes == code, _FUNCTIONS[int(code)](z), out)
    return out


def _derivative(codes: np.ndarray, z: np.ndarray, a: np.ndarray) -> np.ndarray:
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


@dataclass
class CompiledPopulation:
    """A stack of P genomes compiled for evaluation, over the first N node slots (those in use).

    ``level[p, j]`` is node j's topological level in genome p (0 for inputs and
    empty slots, else 1 + the largest level of its sources); ``depth`` the
    largest level. The enabled connections of all genomes are listed once
    (``conn_genome``, ``conn_src``, ``conn_dst``, ``conn_weight``), sorted by
    the level of their target, and within a level in genome then slot order;
    ``level_starts[l]`` is where level l's connections begin; ``conn_slot``
    is each listed connection's slot in its genome's connection block.
    """

    level: np.ndarray  # (P, N) int
    depth: int
    bias: np.ndarray  # (P, N)
    response: np.ndarray  # (P, N)
    codes: np.ndarray  # (P, N) activation codes, output slots already set from the spec
    conn_genome: np.ndarray  # (E,) int
    conn_src: np.ndarray  # (E,) int
    conn_dst: np.ndarray  # (E,) int
    conn_weight: np.ndarray  # (E,)
    level_starts: np.ndarray  # (depth + 2,) int
    conn_slot: np.ndarray | None = None  # (E,) int: each listed connection's slot in its genome (for the gradient)


class NEATCache(NamedTuple):
    """What :meth:`NEATSpec.backward` needs from :meth:`NEATSpec.forward_train` (one genome, ``P = 1``)."""

    net: CompiledPopulation
    values: np.ndarray  # (1, N, B) node values (output slots: logits for a softmax)
    pre: np.ndarray  # (1, N, B) pre-activations z = bias + response * sum(w x)
    output_is_logits: bool  # softmax outputs returned as logits: d_out is d loss / d logits
    probabilities: np.ndarray | None  # softmax outputs returned as probabilities (B, n_out), for its Jacobian


@dataclass(frozen=True)
class NEATSpec:
    """A NEAT network spec: input/output sizes, slot capacities and activations, no genes.

    Genomes are flat vectors of :attr:`n_params` floats in the layout of the
    module docstring.
    """

    n_inputs: int
    n_outputs: int
    max_nodes: int = 64
    max_connections: int = 256
    output_activation: str = "sigmoid"
    hidden_activation: str = "tanh"
    _node_block: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("n_inputs", "n_outputs", "max_nodes", "max_connections"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"NEATSpec: {name} must be an integer >= 1, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.max_nodes < self.n_inputs + self.n_outputs:
            raise ValueError(
                f"NEATSpec: max_nodes = {self.max_nodes} cannot hold {self.n_inputs} inputs and {self.n_outputs} outputs"
            )
        if self.max_connections < self.n_inputs * self.n_outputs:
            raise ValueError(
                f"NEATSpec: max_connections = {self.max_connections} is below the {self.n_inputs * self.n_outputs} "
                "connections of the initial fully connected genome"
            )
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"NEATSpec: output_activation {self.output_activation!r} is not known; allowed: {list(OUTPUT_ACTIVATIONS)}")
        if self.hidden_activation not in ACTIVATION_CODES:
            raise ValueError(f"NEATSpec: hidden_activation {self.hidden_activation!r} is not known; allowed: {sorted(ACTIVATION_CODES)}")
        object.__setattr__(self, "_node_block", NODE_FIELDS * self.max_nodes)

    # ------------------------------------------------------------------ layout
    @property
    def n_params(self) -> int:
        """Length of the flat genome: ``4 * (max_nodes + max_connections)``."""
        return NODE_FIELDS * self.max_nodes + CONN_FIELDS * self.max_connections

    @property
    def hidden_code(self) -> int:
        """Activation code of new hidden nodes."""
        return ACTIVATION_CODES[self.hidden_activation]

    def split(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Views ``nodes (..., max_nodes, 4)`` and ``connections (..., max_connections, 4)`` of ``params (..., n_params)``."""
        params = np.asarray(params)
        if params.shape[-1] != self.n_params:
            raise ValueError(f"expected NEAT genomes with {self.n_params} values on the last axis, got shape {params.shape}")
        lead = params.shape[:-1]
        nodes = params[..., : self._node_block].reshape(*lead, self.max_nodes, NODE_FIELDS)
        conns = params[..., self._node_block :].reshape(*lead, self.max_connections, CONN_FIELDS)
        return nodes, conns

    def encode(self, nodes: np.ndarray, connections: np.ndarray) -> np.ndarray:
        """Flat genome ``(n_params,)`` from node rows ``(n, 4)`` and connection rows ``(m, 4)``, padded with empty slots."""
        nodes = np.asarray(nodes, dtype=np.float64).reshape(-1, NODE_FIELDS)
        connections = np.asarray(connections, dtype=np.float64).reshape(-1, CONN_FIELDS)
        if len(nodes) > self.max_nodes or len(connections) > self.max_connections:
            raise ValueError(
                f"genome has {len(nodes)} nodes and {len(connections)} connections; "
                f"the spec holds {self.max_nodes} and {self.max_connections}"
            )
        flat = np.zeros(self.n_params)
        node_view, conn_view = self.split(flat)
        node_view[: len(nodes)] = nodes
        conn_view[: len(connections)] = connections
        return flat

    def decode(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Node rows ``(max_nodes, 4)`` and connection rows ``(max_connections, 4)`` of one flat genome (copies)."""
        params = np.asarray(params, dtype=np.float64)
        if params.shape != (self.n_params,):
            raise ValueError(f"expected one NEAT genome of shape ({self.n_params},), got {params.shape}")
        nodes, conns = self.split(params)
        return nodes.copy(), conns.copy()

    def build_genome(
        self,
        connections: Iterable[Sequence[float]],
        n_hidden: int = 0,
        biases: Sequence[float] | None = None,
        activations: Sequence[str] | None = None,
        responses: Sequence[float] | None = None,
    ) -> np.ndarray:
        """A flat genome from a hand-written graph.

        ``connections`` holds ``(in, out, weight)`` or ``(in, out, weight, enabled)``
        by node slot; ``biases``, ``activations`` (names) and ``responses`` give
        one value per node (inputs first, then outputs, then the ``n_hidden``
        hidden nodes); hidden nodes default to the spec's hidden activation.
        """
        n = self.n_inputs + self.n_outputs + int(n_hidden)
        nodes = np.zeros((n, NODE_FIELDS))
        nodes[:, NODE_EXISTS] = 1.0
        nodes[:, NODE_RESPONSE] = 1.0
        nodes[self.n_inputs + self.n_outputs :, NODE_ACTIVATION] = self.hidden_code
        if biases is not None:
            nodes[:, NODE_BIAS] = np.asarray(biases, dtype=np.float64).reshape(n)
        if activations is not None:
            nodes[:, NODE_ACTIVATION] = [ACTIVATION_CODES[a] for a in activations]
        if responses is not None:
            nodes[:, NODE_RESPONSE] = np.asarray(responses, dtype=np.float64).reshape(n)
        rows = []
        for c in connections:
            enabled = bool(c[3]) if len(c) > 3 else True
            rows.append([ENABLED if enabled else DISABLED, float(c[0]), float(c[1]), float(c[2])])
        return self.encode(nodes, np.array(rows).reshape(-1, CONN_FIELDS))

    def init_params(self, rng: np.random.Generator, n: int = 1) -> np.ndarray:
        """``n`` minimal genomes: every input connected to every output, Glorot normal weights, zero biases."""
        n_in, n_out = self.n_inputs, self.n_outputs
        nodes = np.zeros((n_in + n_out, NODE_FIELDS))
        nodes[:, NODE_EXISTS] = 1.0
        nodes[:, NODE_RESPONSE] = 1.0
        src, dst = np.meshgrid(np.arange(n_in), n_in + np.arange(n_out), indexing="ij")
        conns = np.zeros((n_in * n_out, CONN_FIELDS))
        conns[:, CONN_STATE] = ENABLED
        conns[:, CONN_IN] = src.ravel()
        conns[:, CONN_OUT] = dst.ravel()
        template = self.encode(nodes, conns)
        out = np.tile(template, (n, 1))
        _, conn_view = self.split(out)
        std = np.sqrt(2.0 / (n_in + n_out))
        conn_view[:, : n_in * n_out, CONN_WEIGHT] = rng.normal(0.0, std, size=(n, n_in * n_out))
        return out

    def count_hidden(self, params: np.ndarray) -> np.ndarray:
        """Hidden nodes of each genome ``(..., n_params)`` (int array of the leading shape)."""
        nodes, _ = self.split(params)
        return (nodes[..., NODE_EXISTS] > 0.5).sum(axis=-1) - self.n_inputs - self.n_outputs

    def count_enabled(self, params: np.ndarray) -> np.ndarray:
        """Enabled connections of each genome ``(..., n_params)``."""
        _, conns = self.split(params)
        return (conns[..., CONN_STATE] > 0.5).sum(axis=-1)

    # ------------------------------------------------------------ compile / run
    def compile(self, params: np.ndarray) -> CompiledPopulation:
        """Levels, connection lists and node data of a stack ``(P, n_params)``; ValueError on a bad or cyclic graph."""
        params = np.asarray(params, dtype=np.float64)
        if params.ndim != 2 or params.shape[1] != self.n_params:
            raise ValueError(f"expected NEAT genomes of shape (P, {self.n_params}), got {params.shape}")
        P = params.shape[0]
        nodes, conns = self.split(params)
        exists = nodes[..., NODE_EXISTS] > 0.5
        # Work on the slots some genome uses: most genomes are far below capacity.
        used_nodes = np.flatnonzero(exists.any(axis=0))
        N = max(int(used_nodes[-1]) + 1 if len(used_nodes) else 0, self.n_inputs + self.n_outputs)
        exists = exists[:, :N]
        rows, cols = np.nonzero(conns[..., CONN_STATE] > 0.5)  # genome-major, then slot order
        src_f = conns[rows, cols, CONN_IN]
        dst_f = conns[rows, cols, CONN_OUT]
        src = src_f.astype(np.int64)
        dst = dst_f.astype(np.int64)
        bad = (src_f != src) | (dst_f != dst) | (src < 0) | (dst < 0) | (src >= N) | (dst >= N)
        if not bad.any():
            bad = ~exists[rows, src] | ~exists[rows, dst] | (dst < self.n_inputs)
        if bad.any():
            who = sorted(set(rows[bad].tolist()))[:5]
            raise ValueError(
                f"NEAT genome(s) {who}: an enabled connection names an empty or out-of-range node slot, or ends in an input"
            )
        # Longest path from the inputs (every other existing node is at least level 1), by relaxation.
        base = np.zeros((P, N), dtype=np.int64)
        base[:, self.n_inputs :] = exists[:, self.n_inputs :]
        level = base
        for _ in range(N + 1):
            new = base.copy()
            np.maximum.at(new, (rows, dst), level[rows, src] + 1)
            if np.array_equal(new, level):
                break
            level = new
        else:
            cyclic = sorted(set(np.nonzero((level > N).any(axis=1))[0].tolist()))[:5]
            raise ValueError(f"NEAT genome(s) {cyclic or '?'}: the enabled connections form a cycle; only feedforward graphs run")
        depth = int(level.max()) if level.size else 0
        conn_level = level[rows, dst]
        by_level = np.argsort(conn_level, kind="stable")  # stable: genome and slot order kept within a level
        codes = nodes[:, :N, NODE_ACTIVATION].astype(np.int64)
        out_slice = slice(self.n_inputs, self.n_inputs + self.n_outputs)
        out_name = self.output_activation
        codes[:, out_slice] = ACTIVATION_CODES["identity"] if out_name == "softmax" else ACTIVATION_CODES[out_name]
        codes[:, : self.n_inputs] = ACTIVATION_CODES["identity"]
        hidden_codes = codes[:, self.n_inputs + self.n_outputs :][exists[:, self.n_inputs + self.n_outputs :]]
        unknown = np.setdiff1d(hidden_codes, list(_FUNCTIONS))
        if len(unknown):
            raise ValueError(f"NEAT genome: unknown activation code(s) {unknown.tolist()}; known: {ACTIVATION_CODES}")
        return CompiledPopulation(
            level=level,
            depth=depth,
            bias=nodes[:, :N, NODE_BIAS],
            response=nodes[:, :N, NODE_RESPONSE],
            codes=codes,
            conn_genome=rows[by_level],
            conn_src=src[by_level],
            conn_dst=dst[by_level],
            conn_weight=conns[rows, cols, CONN_WEIGHT][by_level],
            level_starts=np.searchsorted(conn_level[by_level], np.arange(depth + 2)),
            conn_slot=cols[by_level],
        )

    def forward(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Outputs ``(P, B, n_out)`` for genomes ``(P, n_params)`` and inputs ``(B, n_in)`` or ``(P, B, n_in)``.

        Level by level, one gather of source values, one multiply and one
        scatter-add (``np.bincount``) over the whole population and batch. Each
        node's inputs are summed in its genome's connection-slot order, so a
        genome's outputs do not depend on which other genomes share the call:
        any chunking of a population gives bit-identical results.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != self.n_inputs or x.ndim not in (2, 3):
            raise ValueError(f"expected inputs (B, {self.n_inputs}) or (P, B, {self.n_inputs}), got shape {x.shape}")
        values, _ = self._propagate(self.compile(params), x, keep_pre=False)
        out = np.swapaxes(values[:, self.n_inputs : self.n_inputs + self.n_outputs, :], 1, 2)
        return _softmax(out) if self.output_activation == "softmax" else out

    def _propagate(self, net: CompiledPopulation, x: np.ndarray, keep_pre: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Node values ``(P, N, B)`` (output slots before a softmax) and, with ``keep_pre``, the pre-activations ``z``."""
        P, N = net.level.shape
        B = x.shape[-2]
        values = np.zeros((P, N, B))  # node-major: a source's batch of values is one contiguous row
        values[:, : self.n_inputs, :] = np.swapaxes(x, -1, -2)
        pre = np.zeros((P, N, B)) if keep_pre else None
        batch = np.arange(B)
        position = np.full((P, N), -1, dtype=np.int64)
        for lvl in range(1, net.depth + 1):
            node_genome, node_slot = np.nonzero(net.level == lvl)
            position[node_genome, node_slot] = np.arange(len(node_genome))
            total = np.zeros(len(node_genome) * B)
            for lo, hi in _blocks(net.conn_genome, int(net.level_starts[lvl]), int(net.level_starts[lvl + 1]), B):
                g, src, dst = net.conn_genome[lo:hi], net.conn_src[lo:hi], net.conn_dst[lo:hi]
                contributions = net.conn_weight[lo:hi, None] * values[g, src, :]
                target = (position[g, dst][:, None] * B + batch).ravel()
                # bincount adds in input order: each node's inputs in its genome's slot order.
                total += np.bincount(target, weights=contributions.ravel(), minlength=len(total))
            z = net.bias[node_genome, node_slot, None] + net.response[node_genome, node_slot, None] * total.reshape(-1, B)
            if keep_pre:
                pre[node_genome, node_slot, :] = z
            values[node_genome, node_slot, :] = _activate(net.codes[node_genome, node_slot, None], z)
        return values, pre

    # ------------------------------------------------------ backprop (trainer)
    def forward_train(
        self,
        params: np.ndarray,
        X: np.ndarray,
        dropout: float = 0.0,
        rng: np.random.Generator | None = None,
        return_logits: bool = True,
    ) -> tuple[np.ndarray, NEATCache]:
        """Outputs ``(B, n_out)`` of one genome ``(n_params,)`` on ``X (B, n_in)``, and the cache :meth:`backward` needs.

        The same level-by-level pass as :meth:`forward`, keeping every node's
        pre-activation. A softmax output returns its logits unless
        ``return_logits=False`` (the convention of :mod:`networks.backprop`).
        Dropout is not defined on a NEAT graph: ``dropout > 0`` raises ValueError.
        """
        if dropout:
            raise ValueError(f"dropout = {dropout!r}: dropout is not supported for NEAT graphs (use 0)")
        params = np.asarray(params, dtype=np.float64)
        X = np.asarray(X, dtype=np.float64)
        if params.shape != (self.n_params,):
            raise ValueError(f"expected one NEAT genome of shape ({self.n_params},), got {params.shape}")
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise ValueError(f"expected inputs of shape (B, {self.n_inputs}), got {X.shape}")
        net = self.compile(params[None, :])
        values, pre = self._propagate(net, X, keep_pre=True)
        out = values[0, self.n_inputs : self.n_inputs + self.n_outputs, :].T.copy()
        softmax_out = self.output_activation == "softmax"
        if softmax_out and not return_logits:
            out = _softmax(out)
        return out, NEATCache(net, values, pre, softmax_out and return_logits, out if softmax_out and not return_logits else None)

    def backward(self, params: np.ndarray, cache: NEATCache, d_out: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
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
        grad = np.zeros(self.n_params) if out is None else out
        grad[...] = 0.0
        d_out = np.asarray(d_out, dtype=np.float64)
        B = values.shape[2]
        if d_out.shape != (B, self.n_outputs):
            raise ValueError(f"expected d_out of shape ({B}, {self.n_outputs}), got {d_out.shape}")
        if cache.probabilities is not None:  # softmax returned as probabilities: apply its Jacobian
            s = cache.probabilities
            d_out = s * (d_out - np.sum(d_out * s, axis=1, keepdims=True))
        P, N = net.level.shape
        d_values = np.zeros((P, N, B))
        d_values[0, self.n_inputs : self.n_inputs + self.n_outputs, :] = d_out.T
        node_grad = grad[: self._node_block].reshape(self.max_nodes, NODE_FIELDS)
        conn_grad = grad[self._node_block :].reshape(self.max_connections, CONN_FIELDS)
        batch = np.arange(B)
        position = np.full((P, N), -1, dtype=np.int64)
        for lvl in range(net.depth, 0, -1):
            node_genome, node_slot = np.nonzero(net.level == lvl)
            position[node_genome, node_slot] = np.arange(len(node_genome))
            codes = net.codes[node_genome, node_slot, None]
            dz = d_values[node_genome, node_slot, :] * _derivative(codes, pre[node_genome, node_slot, :], values[node_genome, node_slot, :])
            node_grad[node_slot, NODE_BIAS] = dz.sum(axis=1)  # one genome: node_genome is all 0
            d_total = dz * net.response[node_genome, node_slot, None]  # (nodes of this level, B)
            for lo, hi in _blocks(net.conn_genome, int(net.level_starts[lvl]), int(net.level_starts[lvl + 1]), B):
                g, src, dst = net.conn_genome[lo:hi], net.conn_src[lo:hi], net.conn_dst[lo:hi]
                d_target = d_total[position[g, dst]]  # (connections, B): the gather of the forward's scatter
                conn_grad[net.conn_slot[lo:hi], CONN_WEIGHT] = np.einsum("eb,eb->e", d_target, values[g, src, :])
                # The forward gathered values[g, src]; its reverse scatter-adds into d_values[g, src].
                source = ((g * N + src)[:, None] * B + batch).ravel()
                d_values += np.bincount(source, weights=(net.conn_weight[lo:hi, None] * d_target).ravel(), minlength=P * N * B).reshape(P, N, B)
        return grad

    def weight_mask(self) -> np.ndarray:
        """Boolean ``(n_params,)``: True on every connection-weight slot (for L2), False elsewhere.

        Positional, the same for every genome of the spec. An empty slot's
        weight is 0 and gets a zero gradient, so L2 leaves it 0; a disabled
        gene's weight decays but plays no part in the outputs.
        """
        mask = np.zeros(self.n_params, dtype=bool)
        _, conns = self.split(mask)
        conns[:, CONN_WEIGHT] = True
        return mask

    def complexity(self, genomes: np.ndarray) -> np.ndarray:
        """Enabled connections of each genome ``(P, n_params)`` -> ``(P,)`` int (the size objective of NSGA-II)."""
        return self.count_enabled(np.asarray(genomes)).astype(np.int64)

    def predict(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Outputs ``(B, n_out)`` of one genome ``(n_params,)``."""
        return self.forward(np.asarray(params)[None, :], x)[0]

    # ----------------------------------------------------------- description
    def describe(self) -> dict:
        """JSON-able description, enough to rebuild the spec."""
        return {
            "type": "neat",
            "n_inputs": self.n_inputs,
            "n_outputs": self.n_outputs,
            "max_nodes": self.max_nodes,
            "max_connections": self.max_connections,
            "output_activation": self.output_activation,
            "hidden_activation": self.hidden_activation,
            "n_params": self.n_params,
            "layout": (
                "max_nodes node slots [exists, activation code, bias, response], then max_connections "
                "connection slots [state (1 enabled, -1 disabled, 0 empty), in slot, out slot, weight]; "
                "slots 0..n_inputs-1 are inputs, then outputs, then hidden nodes"
            ),
            "activation_codes": dict(ACTIVATION_CODES),
        }

    @classmethod
    def from_description(cls, description: dict) -> "NEATSpec":
        """Rebuild from :meth:`describe` output."""
        return cls(
            n_inputs=int(description["n_inputs"]),
            n_outputs=int(description["n_outputs"]),
            max_nodes=int(description["max_nodes"]),
            max_connections=int(description["max_connections"]),
            output_activation=description["output_activation"],
            hidden_activation=description.get("hidden_activation", "tanh"),
        )

    # ------------------------------------------------------------- the graph
    def to_graph(self, params: np.ndarray) -> dict[str, Any]:
        """One genome as a JSON-able graph: nodes (id, kind, activation, bias, response, level) and enabled connections."""
        params = np.asarray(params, dtype=np.float64)
        net = self.compile(params[None, :])
        nodes, conns = self.decode(params)
        out_nodes = []
        for i in np.flatnonzero(nodes[:, NODE_EXISTS] > 0.5).tolist():
            if i < self.n_inputs:
                kind, activation = "input", "identity"
            elif i < self.n_inputs + self.n_outputs:
                kind, activation = "output", self.output_activation
            else:
                kind, activation = "hidden", ACTIVATION_NAMES[int(nodes[i, NODE_ACTIVATION])]
            out_nodes.append(
                {
                    "id": i,
                    "kind": kind,
                    "activation": activation,
                    "bias": float(nodes[i, NODE_BIAS]),
                    "response": float(nodes[i, NODE_RESPONSE]),
                    "level": int(net.level[0, i]) if i < net.level.shape[1] else 0,
                }
            )
        connections = [
            {"in": int(c[CONN_IN]), "out": int(c[CONN_OUT]), "weight": float(c[CONN_WEIGHT])}
            for c in conns
            if c[CONN_STATE] > 0.5
        ]
        return {
            "type": "neat-graph",
            "n_inputs": self.n_inputs,
            "n_outputs": self.n_outputs,
            "output_activation": self.output_activation,
            "nodes": out_nodes,
            "connections": connections,
            "rule": "node value = activation(bias + response * sum(weight * source value)); outputs in id order",
        }

    def save_graph(self, params: np.ndarray, path: str | Path) -> Path:
        """Write :meth:`to_graph` as JSON (readable by :func:`load_graph_json` without the evolution code)."""
        path = Path(path)
        path.write_text(json.dumps(self.to_graph(params), indent=2) + "\n")
        return path

    def draw(self, params: np.ndarray, path: str | Path, title: str | None = None) -> Path:
        """PNG drawing of one genome: inputs left, hidden nodes by level, outputs right; red/blue edges by weight sign."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        graph = self.to_graph(params)
        hidden_levels = [n["level"] for n in graph["nodes"] if n["kind"] == "hidden"]
        out_x = (max(hidden_levels) + 1) if hidden_levels else 1
        columns: dict[int, list[dict]] = {}
        for node in graph["nodes"]:
            x = 0 if node["kind"] == "input" else out_x if node["kind"] == "output" else node["level"]
            columns.setdefault(x, []).append(node)
        position: dict[int, tuple[float, float]] = {}
        for x, members in columns.items():
            for k, node in enumerate(members):
                position[node["id"]] = (float(x), (k + 1) / (len(members) + 1))
        fig, ax = plt.subplots(figsize=(2.0 + 1.6 * out_x, 4.0))
        biggest = max([abs(c["weight"]) for c in graph["connections"]] + [1e-9])
        for c in graph["connections"]:
            (x0, y0), (x1, y1) = position[c["in"]], position[c["out"]]
            colour = "tab:red" if c["weight"] >= 0 else "tab:blue"
            ax.annotate(
                "",
                xy=(x1, y1),
                xytext=(x0, y0),
                arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 0.5 + 3.5 * abs(c["weight"]) / biggest, "alpha": 0.8, "shrinkA": 9, "shrinkB": 9},
            )
        face = {"input": "lightgrey", "hidden": "white", "output": "gold"}
        for node in graph["nodes"]:
            x, y = position[node["id"]]
            ax.scatter([x], [y], s=420, c=face[node["kind"]], edgecolors="black", zorder=3)
            ax.text(x, y, str(node["id"]), ha="center", va="center", fontsize=8, zorder=4)
        ax.set_xlim(-0.5, out_x + 0.5)
        ax.set_ylim(0.0, 1.0)
        ax.axis("off")
        ax.set_title(title or f"NEAT network: {len(hidden_levels)} hidden, {len(graph['connections'])} connections (red +, blue -)", fontsize=9)
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


class GraphNetwork:
    """Standalone inference from a saved graph (:meth:`NEATSpec.to_graph` JSON): NumPy only.

    Nodes run in topological order, each over the whole batch at once.
    """

    def __init__(self, graph: dict[str, Any]) -> None:
        self.n_inputs = int(graph["n_inputs"])
        self.n_outputs = int(graph["n_outputs"])
        self.output_activation = graph["output_activation"]
        self.nodes = {int(n["id"]): n for n in graph["nodes"]}
        self.incoming: dict[int, list[tuple[int, float]]] = {i: [] for i in self.nodes}
        for c in graph["connections"]:
            self.incoming[int(c["out"])].append((int(c["in"]), float(c["weight"])))
        self.order = self._topological_order()

    def _topological_order(self) -> list[int]:
        """Non-input nodes so that every node comes after its sources (ValueError on a cycle)."""
        indegree = {i: len(srcs) for i, srcs in self.incoming.items()}
        outgoing: dict[int, list[int]] = {i: [] for i in self.nodes}
        for dst, srcs in self.incoming.items():
            for src, _ in srcs:
                outgoing[src].append(dst)
        ready = sorted(i for i, d in indegree.items() if d == 0)
        order = []
        while ready:
            i = ready.pop(0)
            order.append(i)
            for j in outgoing[i]:
                indegree[j] -= 1
                if indegree[j] == 0:
                    ready.append(j)
        if len(order) != len(self.nodes):
            raise ValueError("graph has a cycle")
        return [i for i in order if self.nodes[i]["kind"] != "input"]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Outputs ``(B, n_outputs)`` for inputs ``(B, n_inputs)``."""
        x = np.asarray(x, dtype=np.float64)
        values = {i: x[:, i] for i in range(self.n_inputs)}
        for i in self.order:
            node = self.nodes[i]
            total = np.zeros(len(x))
            for src, w in self.incoming[i]:
                total = total + w * values[src]
            z = node["bias"] + node["response"] * total
            name = node["activation"]
            values[i] = z if name == "softmax" else _FUNCTIONS[ACTIVATION_CODES[name]](z)
        out = np.stack([values[self.n_inputs + k] for k in range(self.n_outputs)], axis=1)
        return _softmax(out) if self.output_activation == "softmax" else out


def load_graph_json(path: str | Path) -> GraphNetwork:
    """A callable network ``x (B, n_in) -> (B, n_out)`` from a graph JSON file."""
    return GraphNetwork(json.loads(Path(path).read_text()))
