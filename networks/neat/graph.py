"""A NEAT genome as a graph: JSON nodes and connections, a drawing, and NumPy-only inference from the JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from networks.activations import ACTIVATIONS, softmax
from networks.neat.compiled import compile_population
from networks.neat.layout import (
    ACTIVATION_NAMES,
    Conn,
    Node,
)

if TYPE_CHECKING:
    from networks.neat.spec import NEATLayout


def to_graph(spec: NEATLayout, params: np.ndarray) -> dict[str, Any]:
    """One genome as a JSON-able graph: nodes (id, kind, activation, bias, response, level) and enabled connections."""
    params = np.asarray(params, dtype=np.float64)
    nodes, conns = spec.decode(params)
    level = _levels(spec, params, nodes, conns)
    out_nodes = []
    for i in np.flatnonzero(nodes[:, Node.EXISTS] > 0.5).tolist():
        if i < spec.n_inputs:
            kind, activation = "input", "identity"
        elif i < spec.n_inputs + spec.n_outputs:
            kind, activation = "output", spec.output_activation
        else:
            kind, activation = "hidden", ACTIVATION_NAMES[int(nodes[i, Node.ACTIVATION])]
        out_nodes.append(
            {
                "id": i,
                "kind": kind,
                "activation": activation,
                "bias": float(nodes[i, Node.BIAS]),
                "response": float(nodes[i, Node.RESPONSE]),
                "level": int(level[i]),
            }
        )
    connections = [{"in": int(c[Conn.IN]), "out": int(c[Conn.OUT]), "weight": float(c[Conn.WEIGHT])} for c in conns if c[Conn.STATE] > 0.5]
    recurrent = {"recurrent": True} if not spec.feed_forward else {}
    return {
        "type": "neat-graph",
        **recurrent,
        "n_inputs": spec.n_inputs,
        "n_outputs": spec.n_outputs,
        "output_activation": spec.output_activation,
        "nodes": out_nodes,
        "connections": connections,
        "rule": (
            "node value = activation(bias + response * sum(weight * source value)); outputs in id order"
            + (
                "; recurrent: every node updated at once from the previous step's values, inputs from this step's"
                if not spec.feed_forward
                else ""
            )
        ),
    }


def _levels(spec: NEATLayout, params: np.ndarray, nodes: np.ndarray, conns: np.ndarray) -> np.ndarray:
    """Each node slot's drawing column: its feedforward level; in a recurrent graph its shortest distance from the inputs."""
    if spec.feed_forward:
        net = compile_population(spec, params[None, :])
        level = np.zeros(spec.max_nodes, dtype=np.int64)
        level[: net.level.shape[1]] = net.level[0]
        return level
    exists = nodes[:, Node.EXISTS] > 0.5
    level = np.where(exists & (np.arange(spec.max_nodes) >= spec.n_inputs), -1, 0)
    edges = [(int(c[Conn.IN]), int(c[Conn.OUT])) for c in conns if c[Conn.STATE] > 0.5]
    frontier = set(range(spec.n_inputs))
    depth = 0
    while frontier:
        depth += 1
        frontier = {dst for src, dst in edges if src in frontier and level[dst] == -1}
        for node in frontier:
            level[node] = depth
    level[level < 0] = 1  # unreachable from the inputs: drawn in the first hidden column
    return level


def save_graph(spec: NEATLayout, params: np.ndarray, path: str | Path) -> Path:
    """Write :func:`to_graph` as JSON (readable by :func:`load_graph_json` without the evolution code)."""
    path = Path(path)
    path.write_text(json.dumps(to_graph(spec, params), indent=2) + "\n")
    return path


def draw(spec: NEATLayout, params: np.ndarray, path: str | Path, title: str | None = None) -> Path:
    """PNG drawing of one genome: inputs left, hidden nodes by level, outputs right; red/blue edges by weight sign."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    graph = to_graph(spec, params)
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
    fig, ax = plt.subplots(figsize=(max(6.0, 2.0 + 1.6 * out_x), 4.4))
    biggest = max([abs(c["weight"]) for c in graph["connections"]] + [1e-9])
    for c in graph["connections"]:
        (x0, y0), (x1, y1) = position[c["in"]], position[c["out"]]
        colour = "tab:red" if c["weight"] >= 0 else "tab:blue"
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops={
                "arrowstyle": "-|>",
                "color": colour,
                "lw": 0.5 + 3.5 * abs(c["weight"]) / biggest,
                "alpha": 0.8,
                "shrinkA": 9,
                "shrinkB": 9,
            },
        )
    face = {"input": "lightgrey", "hidden": "white", "output": "gold"}
    for node in graph["nodes"]:
        x, y = position[node["id"]]
        ax.scatter([x], [y], s=420, c=face[node["kind"]], edgecolors="black", zorder=3)
        ax.text(x, y, str(node["id"]), ha="center", va="center", fontsize=8, zorder=4)
    from matplotlib.lines import Line2D

    legend = [
        Line2D([], [], marker="o", ls="", markerfacecolor=face["input"], markeredgecolor="black", markersize=9, label="input"),
        Line2D([], [], marker="o", ls="", markerfacecolor=face["hidden"], markeredgecolor="black", markersize=9, label="hidden"),
        Line2D([], [], marker="o", ls="", markerfacecolor=face["output"], markeredgecolor="black", markersize=9, label="output"),
        Line2D([], [], color="tab:red", lw=2, label="weight > 0"),
        Line2D([], [], color="tab:blue", lw=2, label="weight < 0 (width ~ |weight|)"),
    ]
    ax.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=5, fontsize=7, frameon=False)
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
    """Standalone inference from a saved graph (:func:`to_graph` JSON): NumPy only.

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
        self.recurrent = bool(graph.get("recurrent", False))
        #: a recurrent graph's node values (id -> (B,)), carried from call to call; empty at rest
        self.values: dict[int, np.ndarray] = {}
        self.order = sorted(i for i in self.nodes if self.nodes[i]["kind"] != "input") if self.recurrent else self._topological_order()

    def reset(self) -> None:
        """Every node of a recurrent graph back at rest (a new episode or sequence)."""
        self.values = {}

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

    def _step(self, x: np.ndarray) -> np.ndarray:
        """One step of a recurrent graph: every node from the previous step's values (inputs: this step's), at once."""
        zeros = np.zeros(len(x))
        old = {i: self.values.get(i, zeros) for i in self.nodes}
        for i in range(self.n_inputs):
            old[i] = x[:, i]
        new = {i: x[:, i] for i in range(self.n_inputs)}
        for i in self.order:
            node = self.nodes[i]
            total = np.zeros(len(x))
            for src, w in self.incoming[i]:
                total = total + w * old[src]
            z = node["bias"] + node["response"] * total
            name = node["activation"]
            new[i] = z if name == "softmax" else ACTIVATIONS[name].forward(z)
        self.values = new
        out = np.stack([new[self.n_inputs + k] for k in range(self.n_outputs)], axis=1)
        return softmax(out) if self.output_activation == "softmax" else out

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Outputs ``(B, n_outputs)`` for inputs ``(B, n_inputs)``: the whole pass, or one synchronous step of a recurrent graph."""
        x = np.asarray(x, dtype=np.float64)
        if self.recurrent:
            return self._step(x)
        values = {i: x[:, i] for i in range(self.n_inputs)}
        for i in self.order:
            node = self.nodes[i]
            total = np.zeros(len(x))
            for src, w in self.incoming[i]:
                total = total + w * values[src]
            z = node["bias"] + node["response"] * total
            name = node["activation"]
            values[i] = z if name == "softmax" else ACTIVATIONS[name].forward(z)
        out = np.stack([values[self.n_inputs + k] for k in range(self.n_outputs)], axis=1)
        return softmax(out) if self.output_activation == "softmax" else out


def load_graph_json(path: str | Path) -> GraphNetwork:
    """A callable network ``x (B, n_in) -> (B, n_out)`` from a graph JSON file."""
    return GraphNetwork(json.loads(Path(path).read_text()))
