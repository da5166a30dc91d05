"""Pure-NumPy neural networks evaluated over a stack of parameter sets.

Nothing here knows about evolution: a network spec maps a flat parameter
vector (or a stack of P of them) to layer tensors and runs a forward pass over
the whole stack at once, population axis first. The layer maths, each forward
beside its backward, is in :mod:`networks.layers`; the activations in
:mod:`networks.activations`; what every network type provides, and the
capabilities some declare, in :mod:`networks.spec`.
"""

from networks.activations import ACTIVATIONS, activation_names
from networks.cnn import CNN
from networks.mlp import MLP

__all__ = ["ACTIVATIONS", "activation_names", "CNN", "MLP", "network_from_description"]


def network_from_description(description: dict):
    """Rebuild a network spec from the JSON description it wrote (``describe()``)."""
    kind = description.get("type")
    if kind == "mlp":
        return MLP.from_description(description)
    if kind == "cnn":
        return CNN.from_description(description)
    if kind == "neat":
        from networks.neat import NEATSpec

        return NEATSpec.from_description(description)
    if kind == "cnn_search":
        from networks.cnn_search import CNNSearchSpace

        return CNNSearchSpace.from_description(description)
    if kind == "esn":  # an ESN genome (best_genome.json); its fitted network is the "esn_readout" of best_trained.json
        from networks.esn import ESNSpec

        return ESNSpec.from_description(description)
    if kind == "esn_readout":
        from networks.esn import ESNReadoutSpec

        return ESNReadoutSpec.from_description(description)
    raise ValueError(f"network type {kind!r} is not known; allowed: 'mlp', 'cnn', 'neat', 'cnn_search', 'esn', 'esn_readout'")
