"""Pure-NumPy neural networks evaluated over a stack of parameter sets.

Nothing here knows about evolution: a network spec maps a flat parameter
vector (or a stack of P of them) to layer tensors and runs a forward pass over
the whole stack at once, population axis first. The layer maths, each forward
beside its backward, is in :mod:`networks.layers`; the activations in
:mod:`networks.activations`; what every network type provides, and the
capabilities some declare, in :mod:`networks.spec`.
"""

from importlib import import_module
from typing import Any

from networks.activations import ACTIVATIONS, activation_names
from networks.cnn import CNN
from networks.mlp import MLP
from networks.model import load_model
from networks.spec import NetworkSpec

__all__ = ["ACTIVATIONS", "NETWORK_TYPES", "activation_names", "CNN", "MLP", "load_model", "network_from_description", "network_type"]

#: Every network type by the ``type`` its ``describe()`` writes: ``"module:Class"``, imported on first use.
#: Adding a network type is adding its module and one line here (tests/test_network_specs.py then checks it).
NETWORK_TYPES: dict[str, str] = {
    "mlp": "networks.mlp:MLP",
    "cnn": "networks.cnn:CNN",
    "neat": "networks.neat:NEATSpec",
    "neat_recurrent": "networks.neat:RecurrentNEATSpec",
    "cnn_search": "networks.cnn_search:CNNSearchSpace",
    "esn": "networks.esn:ESNSpec",  # an ESN genome (best_genome.json)
    "esn_readout": "networks.esn:ESNReadoutSpec",  # its fitted network (best_trained.json)
    "rnn": "networks.rnn:RNN",
}


def network_type(kind: object) -> type[Any]:
    """The network spec class registered as ``kind``; ValueError naming the allowed types."""
    path = NETWORK_TYPES.get(kind) if isinstance(kind, str) else None
    if path is None:
        raise ValueError(f"network type {kind!r} is not known; allowed: {sorted(NETWORK_TYPES)}")
    module, _, name = path.partition(":")
    cls: type[Any] = getattr(import_module(module), name)
    return cls


def network_from_description(description: dict[str, Any]) -> NetworkSpec:
    """Rebuild a network spec from the JSON description it wrote (``describe()``)."""
    spec: NetworkSpec = network_type(description.get("type")).from_description(description)
    return spec
