"""NEAT genomes as the strategy holds them: flat rows plus each slot's node id and innovation number.

The flat rows are the layout of :class:`networks.neat.NEATSpec` (what the
evaluators and tasks see); next to them the strategy keeps, per genome, the
global node id of each node slot and the innovation number of each connection
slot (-1: empty), which the network does not need but crossover and the
compatibility distance do.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from evo.strategies.neat.innovation import InnovationRegistry
from networks.neat import (
    Conn,
    NEATSpec,
    Node,
)


class Genes(NamedTuple):
    """A stack of genomes: flat rows ``(P, n_params)``, node ids ``(P, max_nodes)``, innovations ``(P, max_connections)``."""

    flat: np.ndarray
    node_ids: np.ndarray
    innov: np.ndarray

    def take(self, rows: np.ndarray) -> Genes:
        """The genomes at ``rows`` (copies)."""
        return Genes(self.flat[rows], self.node_ids[rows], self.innov[rows])

    @staticmethod
    def concatenate(parts: list[Genes]) -> Genes:
        """The stacks one after the other."""
        return Genes(*(np.concatenate([getattr(g, f) for g in parts]) for f in Genes._fields))


def match_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each row pair, the column of ``b`` holding the id at ``a[r, j]`` (-1: none; ids < 0 are empty).

    Ids are unique within a row. One sort for all rows: ``row * M + id`` keys.
    """
    n, width = a.shape
    if n == 0 or width == 0 or b.shape[1] == 0:
        return np.full(a.shape, -1, dtype=np.int64)
    span = int(max(a.max(), b.max(), 0)) + 2
    offset = np.arange(n, dtype=np.int64)[:, None] * span
    keys_b = np.where(b >= 0, offset + b, -1).ravel()
    order = np.argsort(keys_b, kind="stable")
    sorted_b = keys_b[order]
    keys_a = np.where(a >= 0, offset + a, -2).ravel()
    pos = np.minimum(np.searchsorted(sorted_b, keys_a), len(sorted_b) - 1)
    hit = sorted_b[pos] == keys_a
    return np.where(hit, order[pos] % b.shape[1], -1).reshape(a.shape)


def minimal_genomes(
    spec: NEATSpec,
    registry: InnovationRegistry,
    init: np.ndarray,
    population: int,
    rng: np.random.Generator,
    response: float,
    bias_init_std: float,
    weight_init_std: float,
    weight_max: float,
) -> Genes:
    """Minimal genomes: every input connected to every output, weights and output biases around ``init``'s."""
    n_in, n_out, P = spec.n_inputs, spec.n_outputs, population
    mean_w = np.zeros((n_in, n_out))
    mean_b = np.zeros(n_out)
    nodes0, conns0 = spec.decode(init)
    for state, src, dst, w in conns0.tolist():
        if state > 0.5 and 0 <= src < n_in <= dst < n_in + n_out and src == int(src) and dst == int(dst):
            mean_w[int(src), int(dst) - n_in] = w
    if nodes0[n_in : n_in + n_out, Node.EXISTS].all():
        mean_b = nodes0[n_in : n_in + n_out, Node.BIAS].copy()
    flat = np.zeros((P, spec.n_params))
    node_ids = np.full((P, spec.max_nodes), -1, dtype=np.int64)
    innov = np.full((P, spec.max_connections), -1, dtype=np.int64)
    nodes, conns = spec.split(flat)
    n_io = n_in + n_out
    nodes[:, :n_io, Node.EXISTS] = 1.0
    nodes[:, :n_in, Node.RESPONSE] = 1.0  # inputs pass their value through; the field is unused there
    nodes[:, n_in:n_io, Node.RESPONSE] = response
    nodes[:, n_in:n_io, Node.BIAS] = mean_b + bias_init_std * rng.standard_normal((P, n_out))
    node_ids[:, :n_io] = np.arange(n_io)
    k = 0
    for i in range(n_in):
        for o in range(n_out):
            conns[:, k, Conn.STATE] = Conn.ENABLED
            conns[:, k, Conn.IN] = i
            conns[:, k, Conn.OUT] = n_in + o
            innov[:, k] = registry.connection(i, n_in + o)
            k += 1
    conns[:, :k, Conn.WEIGHT] = np.clip(mean_w.ravel() + weight_init_std * rng.standard_normal((P, k)), -weight_max, weight_max)
    return Genes(flat, node_ids, innov)
