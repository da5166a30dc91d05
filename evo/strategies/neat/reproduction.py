"""NEAT's variation operators: crossover aligned by innovation number, weight and structural mutations.

DEAP's variation operators are not used: they work on one individual's list
at a time and know nothing of innovation numbers, while NEAT's genes must be
aligned by innovation. Instead every variation step (crossover, weight and
bias mutation) is one vectorised NumPy operation over the whole brood, and
only the rare structural mutations run per genome.

* Crossover: matching genes are inherited from either parent at random,
  disjoint and excess genes from the fitter one (ties: a random parent counts
  as fitter); a gene disabled in either parent is disabled in the child with
  ``disable_inherited_prob``.
* Mutations: weights (each genome with ``weight_mutation_prob``; each of its
  weights and biases perturbed by N(0, ``weight_sigma``) with
  ``weight_perturb_prob``, else drawn anew), toggle a connection's enabled
  flag, add a node by splitting an enabled connection (the old one disabled,
  in -> new weight 1, new -> out the old weight), add a connection (never one
  that closes a cycle, checked over enabled *and* disabled genes, so
  re-enabling a gene is always safe). A growth that would exceed
  ``max_nodes`` or ``max_connections`` simply does not happen.
* Recurrent NEAT (``feed_forward`` False): an added connection may start at
  any node (outputs included) and end at any non-input node, itself included
  (a self-connection), and may close a cycle, as neat-python allows.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from evo.strategies.neat.genes import Genes, match_rows
from evo.strategies.neat.innovation import InnovationRegistry
from networks.neat import (
    ACTIVATION_CODES,
    Conn,
    NEATSpec,
    Node,
)


def crossover(
    spec: NEATSpec,
    parents: Genes,
    a: np.ndarray,
    b: np.ndarray,
    fitness: np.ndarray,
    rng: np.random.Generator,
    disable_inherited_prob: float,
) -> Genes:
    """Children of parent rows ``a`` and ``b`` (``b = -1``: a copy of ``a``), genes aligned by innovation number."""
    # The fitter parent gives the structure (ties: either at random).
    cross = np.flatnonzero(b >= 0)
    fa, fb = fitness[a[cross]], fitness[b[cross]]
    swap = (fb > fa) | ((fb == fa) & (rng.random(len(cross)) < 0.5))
    fit = a.copy()
    fit[cross[swap]] = b[cross[swap]]
    other = b.copy()
    other[cross[swap]] = a[cross[swap]]
    children = parents.take(fit)  # fancy indexing copies
    flat, nodes, innov = children
    if len(cross) == 0:
        return children
    mate = other[cross]
    child_nodes, child_conns = spec.split(flat)
    mate_nodes, mate_conns = spec.split(parents.flat)
    rows = cross[:, None]
    mate_rows = mate[:, None]
    # Connection genes: matching ones take the mate's weight half the time.
    width = max(int((innov[cross] >= 0).sum(axis=1).max()), 1)
    match = match_rows(innov[cross, :width], parents.innov[mate, :width])
    has = match >= 0
    safe = np.maximum(match, 0)
    mate_w = mate_conns[mate_rows, safe, Conn.WEIGHT]
    mate_state = mate_conns[mate_rows, safe, Conn.STATE]
    take = has & (rng.random(has.shape) < 0.5)
    state = child_conns[rows, np.arange(width), Conn.STATE]
    weight = child_conns[rows, np.arange(width), Conn.WEIGHT]
    child_conns[rows, np.arange(width), Conn.WEIGHT] = np.where(take, mate_w, weight)
    disabled = (state == Conn.DISABLED) | (has & (mate_state == Conn.DISABLED))
    stays_off = rng.random(has.shape) < disable_inherited_prob
    child_conns[rows, np.arange(width), Conn.STATE] = np.where(disabled, np.where(stays_off, Conn.DISABLED, Conn.ENABLED), state)
    # Node genes (same node id): bias, response and activation from the mate half the time.
    n_width = int((nodes[cross] >= 0).sum(axis=1).max())
    node_match = match_rows(nodes[cross, :n_width], parents.node_ids[mate, :n_width])
    node_take = (node_match >= 0) & (rng.random(node_match.shape) < 0.5)
    node_take[:, : spec.n_inputs] = False
    safe = np.maximum(node_match, 0)
    slots = np.arange(n_width)
    for f in (Node.ACTIVATION, Node.BIAS, Node.RESPONSE):
        child_nodes[rows, slots, f] = np.where(node_take, mate_nodes[mate_rows, safe, f], child_nodes[rows, slots, f])
    return children


def mutate(spec: NEATSpec, children: Genes, p: Any, registry: InnovationRegistry, rng: np.random.Generator) -> None:
    """Mutate the children in place: weights and biases (vectorised), toggles, then structural growth.

    ``p`` holds NEAT's parameters (:class:`evo.strategies.neat.NEAT`'s).
    """
    flat, node_ids, innov = children
    n = len(flat)
    if n == 0:
        return
    nodes, conns = spec.split(flat)
    mutated = rng.random(n) < p.weight_mutation_prob
    width = max(int((innov >= 0).sum(axis=1).max()), 1)
    _perturb(conns[:, :width, Conn.WEIGHT], (innov[:, :width] >= 0) & mutated[:, None], p.weight_init_std, p, rng)
    n_width = int((node_ids >= 0).sum(axis=1).max())
    node_mask = (node_ids[:, :n_width] >= 0) & mutated[:, None]
    node_mask[:, : spec.n_inputs] = False
    _perturb(nodes[:, :n_width, Node.BIAS], node_mask, p.bias_init_std, p, rng)
    if p.toggle_prob > 0:
        toggled = np.flatnonzero(rng.random(n) < p.toggle_prob)
        n_conns = (innov[toggled] >= 0).sum(axis=1)
        slots = (rng.random(len(toggled)) * n_conns).astype(np.int64)
        conns[toggled, slots, Conn.STATE] *= -1.0
    add_node = rng.random(n) < p.add_node_prob
    add_conn = rng.random(n) < p.add_connection_prob
    for r in np.flatnonzero(add_node | add_conn).tolist():
        genome = _Genome(nodes[r], conns[r], node_ids[r], innov[r])
        if add_node[r]:
            _add_node(spec, genome, p, registry, rng)
        if add_conn[r]:
            _add_connection(spec, genome, p, registry, rng)
    np.clip(conns[..., Conn.WEIGHT], -p.weight_max, p.weight_max, out=conns[..., Conn.WEIGHT])
    np.clip(nodes[..., Node.BIAS], -p.weight_max, p.weight_max, out=nodes[..., Node.BIAS])


def _perturb(values: np.ndarray, mask: np.ndarray, init_std: float, p: Any, rng: np.random.Generator) -> None:
    """In place where ``mask``: add N(0, weight_sigma) with weight_perturb_prob, else draw N(0, init_std)."""
    noise = rng.standard_normal(values.shape)
    perturb = rng.random(values.shape) < p.weight_perturb_prob
    new = np.where(perturb, values + p.weight_sigma * noise, init_std * noise)
    values[...] = np.where(mask, new, values)


class _Genome(NamedTuple):
    """One genome's rows, as views written in place: node slots, connection slots, node ids, innovation numbers."""

    nodes: np.ndarray
    conns: np.ndarray
    node_ids: np.ndarray
    innov: np.ndarray


def _add_node(spec: NEATSpec, genome: _Genome, p: Any, registry: InnovationRegistry, rng: np.random.Generator) -> None:
    """Split a random enabled connection in -> out into in -> new (weight 1) and new -> out (old weight)."""
    nodes, conns, node_ids, innov = genome
    n_nodes = int((node_ids >= 0).sum())
    n_conns = int((innov >= 0).sum())
    if n_nodes >= spec.max_nodes or n_conns + 2 > spec.max_connections:
        return
    enabled = np.flatnonzero(conns[:n_conns, Conn.STATE] == Conn.ENABLED)
    if len(enabled) == 0:
        return
    j = int(enabled[rng.integers(len(enabled))])
    src, dst, weight = int(conns[j, Conn.IN]), int(conns[j, Conn.OUT]), float(conns[j, Conn.WEIGHT])
    new_id = registry.split_node_id(int(innov[j]), set(node_ids[:n_nodes].tolist()))
    conns[j, Conn.STATE] = Conn.DISABLED
    nodes[n_nodes] = (1.0, ACTIVATION_CODES[p.hidden_activation], 0.0, p.response)
    node_ids[n_nodes] = new_id
    conns[n_conns] = (Conn.ENABLED, src, n_nodes, 1.0)
    innov[n_conns] = registry.connection(int(node_ids[src]), new_id)
    conns[n_conns + 1] = (Conn.ENABLED, n_nodes, dst, weight)
    innov[n_conns + 1] = registry.connection(new_id, int(node_ids[dst]))


def _add_connection(spec: NEATSpec, genome: _Genome, p: Any, registry: InnovationRegistry, rng: np.random.Generator) -> None:
    """Connect two unconnected nodes, never closing a cycle; re-enable the gene if it exists disabled."""
    _, conns, node_ids, innov = genome
    n_nodes = int((node_ids >= 0).sum())
    n_conns = int((innov >= 0).sum())
    n_in, n_io = spec.n_inputs, spec.n_inputs + spec.n_outputs
    recurrent = not p.feed_forward
    # Feedforward: outputs feed nothing. Recurrent: any node may feed any non-input node, itself included.
    sources = list(range(n_nodes)) if recurrent else list(range(n_in)) + list(range(n_io, n_nodes))
    n_targets = n_nodes - n_in
    genes = {(int(c[Conn.IN]), int(c[Conn.OUT])): k for k, c in enumerate(conns[:n_conns].tolist())}
    outgoing: dict[int, list[int]] = {}
    for src, dst in genes:
        outgoing.setdefault(src, []).append(dst)
    for _ in range(p.add_connection_tries):
        src = sources[int(rng.integers(len(sources)))]
        dst = n_in + int(rng.integers(n_targets))
        if src == dst and not recurrent:
            continue
        existing = genes.get((src, dst))
        if existing is not None:
            if conns[existing, Conn.STATE] == Conn.DISABLED:
                conns[existing, Conn.STATE] = Conn.ENABLED
                return
            continue
        if n_conns >= spec.max_connections or (not recurrent and _reaches(outgoing, dst, src)):
            continue
        conns[n_conns] = (Conn.ENABLED, src, dst, p.weight_init_std * rng.standard_normal())
        innov[n_conns] = registry.connection(int(node_ids[src]), int(node_ids[dst]))
        return


def _reaches(outgoing: dict[int, list[int]], start: int, goal: int) -> bool:
    """Whether ``goal`` is reachable from ``start`` along genes (enabled or not)."""
    stack, seen = [start], {start}
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        for nxt in outgoing.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return False
