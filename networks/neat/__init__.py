"""NEAT networks: variable graphs (feedforward, or recurrent) stored in a fixed-length flat vector.

A NEAT genome (Stanley & Miikkulainen, 2002, "Evolving Neural Networks
through Augmenting Topologies", Evolutionary Computation 10(2)) is a list of
node genes and connection genes. To let it travel like any other genome of
this project (chunked by the evaluators, shipped by Ray, saved in ``.npz``
checkpoints, scored by tasks through ``forward(genomes, X)``), the graph is
written into a *fixed-length* float vector, padded with empty slots.

- :mod:`~networks.neat.layout`: the flat layout (field offsets, slot states)
  and the node activation codes (an index into :mod:`networks.activations`);
- :mod:`~networks.neat.spec`: :class:`NEATSpec`, the network spec (sizes,
  encode/decode, initial genomes, forward, description);
- :mod:`~networks.neat.compiled`: a stack of genomes compiled into
  level-ordered index arrays and run population-batched;
- :mod:`~networks.neat.backprop`: the gradient for the trainer;
- :mod:`~networks.neat.recurrent`: :class:`RecurrentNEATSpec`, graphs with
  cycles and self-connections, one synchronous update per time step;
- :mod:`~networks.neat.graph`: JSON graph export, drawing and NumPy-only
  inference from the JSON (:func:`load_graph_json`), recurrent graphs included.
"""

from networks.neat.backprop import NEATCache
from networks.neat.compiled import CompiledPopulation
from networks.neat.graph import GraphNetwork, load_graph_json
from networks.neat.layout import (
    ACTIVATION_CODES,
    ACTIVATION_NAMES,
    Conn,
    Node,
)
from networks.neat.recurrent import RecurrentNEATSpec
from networks.neat.spec import NEATLayout, NEATSpec

__all__ = [
    "Conn",
    "Node",
    "ACTIVATION_CODES",
    "ACTIVATION_NAMES",
    "CompiledPopulation",
    "GraphNetwork",
    "NEATCache",
    "NEATLayout",
    "NEATSpec",
    "RecurrentNEATSpec",
    "load_graph_json",
]
