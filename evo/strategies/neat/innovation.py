"""The per-run innovation registry: one global number per structural change.

The same structural change gets the same number wherever and whenever it
happens, so crossover can align genomes gene by gene (Stanley & Miikkulainen,
2002, section 3.2): a connection between the same two node ids always has the
same innovation number, and the k-th split of the same connection always
creates the same node id.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class InnovationRegistry:
    """Connection innovations by (in node id, out node id) and the node ids created by splitting each connection."""

    def __init__(self, first_node_id: int) -> None:
        self.connections: dict[tuple[int, int], int] = {}
        self.splits: dict[int, list[int]] = {}
        self.next_innovation = 0
        self.next_node_id = first_node_id

    def connection(self, in_id: int, out_id: int) -> int:
        """Innovation number of the connection gene in_id -> out_id (a new number the first time)."""
        key = (in_id, out_id)
        number = self.connections.get(key)
        if number is None:
            number = self.next_innovation
            self.connections[key] = number
            self.next_innovation += 1
        return number

    def split_node_id(self, connection_innovation: int, present: set[int]) -> int:
        """Node id for splitting this connection: the first of its registered splits the genome lacks, else a new one."""
        ids = self.splits.setdefault(connection_innovation, [])
        for node_id in ids:
            if node_id not in present:
                return node_id
        node_id = self.next_node_id
        self.next_node_id += 1
        ids.append(node_id)
        return node_id

    def state_dict(self) -> dict[str, Any]:
        """The registry as arrays (``registry_connections`` rows ``[in, out, innovation]``, ``registry_splits``) and counters."""
        connections = np.array([[i, o, v] for (i, o), v in self.connections.items()], dtype=np.int64).reshape(-1, 3)
        splits = np.array([[k, node_id] for k, ids in self.splits.items() for node_id in ids], dtype=np.int64).reshape(-1, 2)
        return {
            "registry_connections": connections,
            "registry_splits": splits,
            "next_innovation": self.next_innovation,
            "next_node_id": self.next_node_id,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        connections = np.asarray(state["registry_connections"], dtype=np.int64).reshape(-1, 3)
        self.connections = {(int(i), int(o)): int(v) for i, o, v in connections.tolist()}
        self.splits = {}
        for k, node_id in np.asarray(state["registry_splits"], dtype=np.int64).reshape(-1, 2).tolist():
            self.splits.setdefault(int(k), []).append(int(node_id))
        self.next_innovation = int(state["next_innovation"])
        self.next_node_id = int(state["next_node_id"])
