"""A CNN search space: the architecture *and* the weights of a CNN in one fixed-length flat genome.

- :mod:`~networks.cnn_search.space`: :class:`CNNSearchSpace`, the network spec
  (genome layout, decoding to a plain :class:`networks.cnn.CNN`, the
  population forward grouped by architecture, complexity, description);
- :mod:`~networks.cnn_search.layout`: the architecture genes' fields;
- :mod:`~networks.cnn_search.encoding`: a plain CNN written into a genome;
- :mod:`~networks.cnn_search.initial`: random architectures and initialised weight slabs.
"""

from networks.cnn_search.layout import BLOCK_FIELDS, POOL_SIZE, Architecture
from networks.cnn_search.space import CNNSearchSpace, DecodedArchitecture

__all__ = ["BLOCK_FIELDS", "POOL_SIZE", "Architecture", "CNNSearchSpace", "DecodedArchitecture"]
