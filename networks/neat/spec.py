"""The NEAT network spec: input/output sizes, slot capacities and activations; genomes in the flat layout."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from networks.activations import OUTPUT_ACTIVATIONS, softmax
from networks.neat.backprop import NEATCache, backward, forward_train
from networks.neat.compiled import CompiledPopulation, compile_population, propagate
from networks.neat.graph import draw, save_graph, to_graph
from networks.neat.layout import (
    ACTIVATION_CODES,
    Conn,
    Node,
)
from networks.spec import CountsParameters, GraphExportable, HasComplexity, Trainable


@dataclass(frozen=True)
class NEATLayout(GraphExportable, HasComplexity, CountsParameters):
    """What every NEAT network spec shares: sizes, slot capacities, activations, the flat layout, the graph and the parameter count.

    Genomes are flat vectors of :attr:`n_params` floats in the layout of
    :mod:`networks.neat.layout`. :class:`NEATSpec` runs them as feedforward
    graphs, :class:`~networks.neat.recurrent.RecurrentNEATSpec` as recurrent
    ones (``feed_forward`` False: cycles and self-connections allowed).
    """

    #: whether the graphs are acyclic and run in one pass (else one synchronous update per time step)
    feed_forward: ClassVar[bool] = True
    #: the ``type`` its description is registered under (``networks.NETWORK_TYPES``)
    type_name: ClassVar[str] = "neat"

    n_inputs: int
    n_outputs: int
    max_nodes: int = 64
    max_connections: int = 256
    output_activation: str = "sigmoid"
    hidden_activation: str = "tanh"
    _node_block: int = field(init=False, repr=False)
    structural_genome: ClassVar[bool] = True  # node and connection genes besides the weights
    dtype = "float64"  # NEAT graphs compute in float64 only (not a field: `network.dtype` is refused for NEAT)

    def __post_init__(self) -> None:
        for name in ("n_inputs", "n_outputs", "max_nodes", "max_connections"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"NEATSpec: {name} must be an integer >= 1, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.max_nodes < self.n_inputs + self.n_outputs:
            raise ValueError(f"NEATSpec: max_nodes = {self.max_nodes} cannot hold {self.n_inputs} inputs and {self.n_outputs} outputs")
        if self.max_connections < self.n_inputs * self.n_outputs:
            raise ValueError(
                f"NEATSpec: max_connections = {self.max_connections} is below the {self.n_inputs * self.n_outputs} "
                "connections of the initial fully connected genome"
            )
        if self.output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"NEATSpec: output_activation {self.output_activation!r} is not known; allowed: {sorted(OUTPUT_ACTIVATIONS)}")
        if self.hidden_activation not in ACTIVATION_CODES:
            raise ValueError(f"NEATSpec: hidden_activation {self.hidden_activation!r} is not known; allowed: {sorted(ACTIVATION_CODES)}")
        object.__setattr__(self, "_node_block", Node.FIELDS * self.max_nodes)

    # ------------------------------------------------------------------ layout
    @property
    def n_params(self) -> int:
        """Length of the flat genome: ``4 * (max_nodes + max_connections)``."""
        return Node.FIELDS * self.max_nodes + Conn.FIELDS * self.max_connections

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
        nodes = params[..., : self._node_block].reshape(*lead, self.max_nodes, Node.FIELDS)
        conns = params[..., self._node_block :].reshape(*lead, self.max_connections, Conn.FIELDS)
        return nodes, conns

    def encode(self, nodes: np.ndarray, connections: np.ndarray) -> np.ndarray:
        """Flat genome ``(n_params,)`` from node rows ``(n, 4)`` and connection rows ``(m, 4)``, padded with empty slots."""
        nodes = np.asarray(nodes, dtype=np.float64).reshape(-1, Node.FIELDS)
        connections = np.asarray(connections, dtype=np.float64).reshape(-1, Conn.FIELDS)
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
        nodes = np.zeros((n, Node.FIELDS))
        nodes[:, Node.EXISTS] = 1.0
        nodes[:, Node.RESPONSE] = 1.0
        nodes[self.n_inputs + self.n_outputs :, Node.ACTIVATION] = self.hidden_code
        if biases is not None:
            nodes[:, Node.BIAS] = np.asarray(biases, dtype=np.float64).reshape(n)
        if activations is not None:
            nodes[:, Node.ACTIVATION] = [ACTIVATION_CODES[a] for a in activations]
        if responses is not None:
            nodes[:, Node.RESPONSE] = np.asarray(responses, dtype=np.float64).reshape(n)
        rows = []
        for c in connections:
            enabled = bool(c[3]) if len(c) > 3 else True
            rows.append([Conn.ENABLED if enabled else Conn.DISABLED, float(c[0]), float(c[1]), float(c[2])])
        return self.encode(nodes, np.array(rows).reshape(-1, Conn.FIELDS))

    def init_params(self, rng: np.random.Generator, n: int = 1) -> np.ndarray:
        """``n`` minimal genomes: every input connected to every output, Glorot normal weights, zero biases."""
        n_in, n_out = self.n_inputs, self.n_outputs
        nodes = np.zeros((n_in + n_out, Node.FIELDS))
        nodes[:, Node.EXISTS] = 1.0
        nodes[:, Node.RESPONSE] = 1.0
        src, dst = np.meshgrid(np.arange(n_in), n_in + np.arange(n_out), indexing="ij")
        conns = np.zeros((n_in * n_out, Conn.FIELDS))
        conns[:, Conn.STATE] = Conn.ENABLED
        conns[:, Conn.IN] = src.ravel()
        conns[:, Conn.OUT] = dst.ravel()
        template = self.encode(nodes, conns)
        out = np.tile(template, (n, 1))
        _, conn_view = self.split(out)
        std = np.sqrt(2.0 / (n_in + n_out))
        conn_view[:, : n_in * n_out, Conn.WEIGHT] = rng.normal(0.0, std, size=(n, n_in * n_out))
        return out

    def count_hidden(self, params: np.ndarray) -> np.ndarray:
        """Hidden nodes of each genome ``(..., n_params)`` (int array of the leading shape)."""
        nodes, _ = self.split(params)
        return (nodes[..., Node.EXISTS] > 0.5).sum(axis=-1) - self.n_inputs - self.n_outputs

    def count_enabled(self, params: np.ndarray) -> np.ndarray:
        """Enabled connections of each genome ``(..., n_params)``."""
        _, conns = self.split(params)
        return (conns[..., Conn.STATE] > 0.5).sum(axis=-1)

    def used_params(self, params: np.ndarray) -> int:
        """Enabled connection weights plus the biases of the nodes that exist beyond the inputs (hidden and output)."""
        params = np.asarray(params, dtype=np.float64)
        return int(self.count_enabled(params)) + int(self.count_hidden(params)) + self.n_outputs

    def complexity(self, genomes: np.ndarray) -> np.ndarray:
        """Enabled connections of each genome ``(P, n_params)`` -> ``(P,)`` int (the size objective of NSGA-II)."""
        return self.count_enabled(np.asarray(genomes)).astype(np.int64)

    # ----------------------------------------------------------- description
    def describe(self) -> dict:
        """JSON-able description, enough to rebuild the spec."""
        return {
            "type": self.type_name,
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
            # Only a recurrent graph says so: a feedforward description stays what it always was.
            **({} if self.feed_forward else {"feed_forward": False}),
        }

    @classmethod
    def from_description(cls, description: dict) -> Any:
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
        return to_graph(self, params)

    def save_graph(self, params: np.ndarray, path: str | Path) -> Path:
        """Write :meth:`to_graph` as JSON (readable by :func:`load_graph_json` without the evolution code)."""
        return save_graph(self, params, path)

    def draw(self, params: np.ndarray, path: str | Path, title: str | None = None) -> Path:
        """PNG drawing of one genome: inputs left, hidden nodes by level, outputs right; red/blue edges by weight sign."""
        return draw(self, params, path, title)


@dataclass(frozen=True)
class NEATSpec(NEATLayout, Trainable, GraphExportable, HasComplexity, CountsParameters):
    """A feedforward NEAT network spec: input/output sizes, slot capacities and activations, no genes.

    A :class:`~networks.spec.NetworkSpec` (checked structurally: its sizes are
    dataclass fields, which a protocol base's properties would shadow) that
    declares its capabilities: trainable by backprop, exportable as a graph,
    a complexity (enabled connections) and the parameters a genome really uses.
    """

    # ------------------------------------------------------------ compile / run
    def compile(self, params: np.ndarray) -> CompiledPopulation:
        """Levels, connection lists and node data of a stack ``(P, n_params)``; ValueError on a bad or cyclic graph."""
        return compile_population(self, params)

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
        values, _ = propagate(self, compile_population(self, params), x, keep_pre=False)
        out = np.swapaxes(values[:, self.n_inputs : self.n_inputs + self.n_outputs, :], 1, 2)
        return softmax(out) if self.output_activation == "softmax" else out

    def predict(self, params: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Outputs ``(B, n_out)`` of one genome ``(n_params,)``."""
        return self.forward(np.asarray(params)[None, :], x)[0]

    # ------------------------------------------------------ backprop (trainer)
    def forward_train(
        self, params: np.ndarray, X: np.ndarray, dropout: float = 0.0, rng: np.random.Generator | None = None, return_logits: bool = True
    ) -> tuple[np.ndarray, NEATCache]:
        """Outputs ``(B, n_out)`` of one genome on ``X (B, n_in)`` and the cache :meth:`backward` needs (see :mod:`.backprop`)."""
        return forward_train(self, params, X, dropout, rng, return_logits)

    def backward(self, params: np.ndarray, cache: NEATCache, d_out: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Gradient ``(n_params,)`` of the loss w.r.t. the flat genome, given ``d_out = d loss / d outputs``."""
        return backward(self, params, cache, d_out, out)

    def weight_mask(self) -> np.ndarray:
        """Boolean ``(n_params,)``: True on every connection-weight slot (for L2), False elsewhere.

        Positional, the same for every genome of the spec. An empty slot's
        weight is 0 and gets a zero gradient, so L2 leaves it 0; a disabled
        gene's weight decays but plays no part in the outputs.
        """
        mask = np.zeros(self.n_params, dtype=bool)
        _, conns = self.split(mask)
        conns[:, Conn.WEIGHT] = True
        return mask
