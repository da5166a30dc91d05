"""Echo-state networks (ESN): a fixed random leaky-tanh reservoir and a ridge readout.

Jaeger, "The 'echo state' approach to analysing and training recurrent neural
networks", GMD Report 148 (2001); Jaeger & Haas, "Harnessing nonlinearity",
Science 304 (2004); Lukoševičius, "A practical guide to applying echo state
networks" (2012).

Modules, from the ground up:

* :mod:`~networks.esn.reservoir` -- hyperparameters and seed -> weights (:class:`Reservoir`);
* :mod:`~networks.esn.stack` -- running P reservoirs over S sequences as one
  block-diagonal system (:class:`ReservoirStack`), on the CSR kernel of
  :mod:`~networks.esn.csr_kernel`;
* :mod:`~networks.esn.readout` -- features ``[1, u, x]``, the ridge readout, NRMSE, the closed loop;
* :mod:`~networks.esn.model` -- the estimator :class:`ESN` (fit, predict, generate, save, load);
* :mod:`~networks.esn.encodings` -- what a genome encodes (hyperparameters, topology, weights);
* :mod:`~networks.esn.spec` -- :class:`ESNSpec`, the network spec evolution sees (genome -> reservoirs);
* :mod:`~networks.esn.readout_spec` -- :class:`ESNReadoutSpec`, a fitted ESN with every weight in its parameters.
"""

from networks.esn.encodings import (
    DEFAULT_RESERVOIR,
    DEFAULT_RIDGE,
    Encoding,
    HyperparameterEncoding,
    HyperparameterSpace,
    TopologyEncoding,
    WeightsEncoding,
)
from networks.esn.model import ESN
from networks.esn.readout import (
    RidgeAccumulator,
    closed_loop,
    fit_readout,
    fit_readouts,
    nrmse,
    predict_onwards,
    predict_readout,
    readout_features,
    solve_ridge,
)
from networks.esn.readout_spec import ESNReadoutSpec
from networks.esn.reservoir import (
    Reservoir,
    ReservoirWeights,
    spectral_radius,
    weights_to_vector,
)
from networks.esn.spec import ESNSpec
from networks.esn.stack import STATE_BLOCK, ReservoirStack, as_sequences

__all__ = [
    "DEFAULT_RESERVOIR",
    "DEFAULT_RIDGE",
    "ESN",
    "ESNReadoutSpec",
    "ESNSpec",
    "Encoding",
    "HyperparameterEncoding",
    "HyperparameterSpace",
    "Reservoir",
    "ReservoirStack",
    "ReservoirWeights",
    "RidgeAccumulator",
    "STATE_BLOCK",
    "TopologyEncoding",
    "WeightsEncoding",
    "as_sequences",
    "closed_loop",
    "fit_readout",
    "fit_readouts",
    "nrmse",
    "predict_onwards",
    "predict_readout",
    "readout_features",
    "solve_ridge",
    "spectral_radius",
    "weights_to_vector",
]
