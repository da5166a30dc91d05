"""Compile a stack of NEAT genomes into level-ordered index arrays and run them, population-batched.

In the manner of TensorNEAT (Wang et al., 2024): a topological level per node
and genome (longest path from the inputs), the enabled connections of all
genomes as index arrays grouped by the level of their target, then per
*level* one gather of the source values, one multiply by the weights and one
scatter-add (``np.bincount``), across the population and the batch of
samples. There is no Python loop over individuals, samples or nodes; the loop
runs over levels (the depth of the deepest network). The scatter-add sums
each node's inputs in its own genome's slot order, so a genome's outputs are
bit-identical whatever other genomes share the call (a dense per-level
``matmul`` over a population-wide padded width is not: BLAS rounds
differently as that width changes with the chunk, which would break the
evaluators' guarantee that chunking changes nothing).

A cyclic graph is refused with ``ValueError`` (the strategies never create
one; an evaluator then scores the offending genome alone as a failure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, overload

import numpy as np

from networks.neat.layout import (
    ACTIVATION_CODES,
    ACTIVATION_NAMES,
    Conn,
    Node,
    activate,
)

if TYPE_CHECKING:
    from networks.neat.spec import NEATLayout

#: Largest (connections x samples) block the forward pass materialises at once (32 MiB of float64).
BLOCK_ELEMENTS = 1 << 22


def connection_blocks(genome: np.ndarray, lo: int, hi: int, batch: int) -> list[tuple[int, int]]:
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
    conn_slot: np.ndarray  # (E,) int: each listed connection's slot in its genome (for the gradient)


def compile_population(spec: NEATLayout, params: np.ndarray) -> CompiledPopulation:
    """Levels, connection lists and node data of a stack ``(P, n_params)``; ValueError on a bad or cyclic graph."""
    params = np.asarray(params, dtype=np.float64)
    if params.ndim != 2 or params.shape[1] != spec.n_params:
        raise ValueError(f"expected NEAT genomes of shape (P, {spec.n_params}), got {params.shape}")
    P = params.shape[0]
    nodes, conns = spec.split(params)
    exists = nodes[..., Node.EXISTS] > 0.5
    # Work on the slots some genome uses: most genomes are far below capacity.
    used_nodes = np.flatnonzero(exists.any(axis=0))
    N = max(int(used_nodes[-1]) + 1 if len(used_nodes) else 0, spec.n_inputs + spec.n_outputs)
    exists = exists[:, :N]
    rows, cols = np.nonzero(conns[..., Conn.STATE] > 0.5)  # genome-major, then slot order
    src_f = conns[rows, cols, Conn.IN]
    dst_f = conns[rows, cols, Conn.OUT]
    src = src_f.astype(np.int64)
    dst = dst_f.astype(np.int64)
    bad = (src_f != src) | (dst_f != dst) | (src < 0) | (dst < 0) | (src >= N) | (dst >= N)
    if not bad.any():
        bad = ~exists[rows, src] | ~exists[rows, dst] | (dst < spec.n_inputs)
    if bad.any():
        who = sorted(set(rows[bad].tolist()))[:5]
        raise ValueError(f"NEAT genome(s) {who}: an enabled connection names an empty or out-of-range node slot, or ends in an input")
    # Longest path from the inputs (every other existing node is at least level 1), by relaxation.
    base = np.zeros((P, N), dtype=np.int64)
    base[:, spec.n_inputs :] = exists[:, spec.n_inputs :]
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
    codes = nodes[:, :N, Node.ACTIVATION].astype(np.int64)
    out_slice = slice(spec.n_inputs, spec.n_inputs + spec.n_outputs)
    out_name = spec.output_activation
    codes[:, out_slice] = ACTIVATION_CODES["identity"] if out_name == "softmax" else ACTIVATION_CODES[out_name]
    codes[:, : spec.n_inputs] = ACTIVATION_CODES["identity"]
    hidden_codes = codes[:, spec.n_inputs + spec.n_outputs :][exists[:, spec.n_inputs + spec.n_outputs :]]
    unknown = np.setdiff1d(hidden_codes, list(ACTIVATION_NAMES))
    if len(unknown):
        raise ValueError(f"NEAT genome: unknown activation code(s) {unknown.tolist()}; known: {ACTIVATION_CODES}")
    return CompiledPopulation(
        level=level,
        depth=depth,
        bias=nodes[:, :N, Node.BIAS],
        response=nodes[:, :N, Node.RESPONSE],
        codes=codes,
        conn_genome=rows[by_level],
        conn_src=src[by_level],
        conn_dst=dst[by_level],
        conn_weight=conns[rows, cols, Conn.WEIGHT][by_level],
        level_starts=np.searchsorted(conn_level[by_level], np.arange(depth + 2)),
        conn_slot=cols[by_level],
    )


@overload
def propagate(spec: NEATLayout, net: CompiledPopulation, x: np.ndarray, keep_pre: Literal[True]) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def propagate(spec: NEATLayout, net: CompiledPopulation, x: np.ndarray, keep_pre: bool) -> tuple[np.ndarray, np.ndarray | None]: ...
def propagate(spec: NEATLayout, net: CompiledPopulation, x: np.ndarray, keep_pre: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Node values ``(P, N, B)`` (output slots before a softmax) and, with ``keep_pre``, the pre-activations ``z``."""
    P, N = net.level.shape
    B = x.shape[-2]
    values = np.zeros((P, N, B))  # node-major: a source's batch of values is one contiguous row
    values[:, : spec.n_inputs, :] = np.swapaxes(x, -1, -2)
    pre = np.zeros((P, N, B)) if keep_pre else None
    batch = np.arange(B)
    position = np.full((P, N), -1, dtype=np.int64)
    for lvl in range(1, net.depth + 1):
        node_genome, node_slot = np.nonzero(net.level == lvl)
        position[node_genome, node_slot] = np.arange(len(node_genome))
        total = np.zeros(len(node_genome) * B)
        for lo, hi in connection_blocks(net.conn_genome, int(net.level_starts[lvl]), int(net.level_starts[lvl + 1]), B):
            g, src, dst = net.conn_genome[lo:hi], net.conn_src[lo:hi], net.conn_dst[lo:hi]
            contributions = net.conn_weight[lo:hi, None] * values[g, src, :]
            target = (position[g, dst][:, None] * B + batch).ravel()
            # bincount adds in input order: each node's inputs in its genome's slot order.
            total += np.bincount(target, weights=contributions.ravel(), minlength=len(total))
        z = net.bias[node_genome, node_slot, None] + net.response[node_genome, node_slot, None] * total.reshape(-1, B)
        if pre is not None:  # keep_pre
            pre[node_genome, node_slot, :] = z
        values[node_genome, node_slot, :] = activate(net.codes[node_genome, node_slot, None], z)
    return values, pre
