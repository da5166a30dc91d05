"""The ``[network]`` section: which network, and its layers; input and output sizes come from the task."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from evo.config.base import Section
from networks.activations import OUTPUT_ACTIVATIONS, activation_names

if TYPE_CHECKING:
    # The names are known only at run time; to the type checker an activation is a string.
    HiddenActivation = str
    OutputActivation = str
else:
    HiddenActivation = Literal[tuple(activation_names())]
    OutputActivation = Literal[tuple(OUTPUT_ACTIVATIONS)]
#: (channels, height, width), read from a TOML array
#: the floating-point type a network's forward passes compute in (networks.spec.DTYPES)
ComputeType = Literal["float64", "float32"]
ImageShape = Annotated[tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]], Field(strict=False)]


class NetworkSection(Section):
    """What every network section has besides its layers: the type its forward passes compute in."""

    #: "float32": fitness forward passes in single precision (genomes and fitness stay float64); "float64" as ever
    dtype: ComputeType = "float64"


class MLPConfig(NetworkSection):
    """A feedforward network; input and output widths come from the task."""

    type: Literal["mlp"] = "mlp"
    hidden: list[Annotated[int, Field(ge=1, le=65536)]] = Field(default_factory=lambda: [16])
    activation: HiddenActivation = "tanh"
    #: None: the task's natural output (softmax for classes, sigmoid for Boolean, identity/tanh for control)
    output_activation: OutputActivation | None = None


class ConvBlockConfig(Section):
    """One conv block: convolution, activation, optional max pool."""

    filters: Annotated[int, Field(ge=1, le=4096)]
    kernel_size: Annotated[int, Field(ge=1, le=64)] = 3
    stride: Annotated[int, Field(ge=1, le=64)] = 1
    padding: Annotated[int, Field(ge=0, le=64)] | Literal["same"] = 0
    activation: HiddenActivation = "relu"
    #: 0: no pooling; p: p x p max pool with stride p
    pool: Annotated[int, Field(ge=0, le=16)] = 0


class CNNConfig(NetworkSection):
    """A convolutional network: conv blocks, flatten, dense layers; input shape from the task."""

    type: Literal["cnn"]
    #: (channels, height, width); None: the task's image shape (digits: 1 x 8 x 8)
    input_shape: ImageShape | None = None
    conv: list[ConvBlockConfig] = Field(min_length=1)
    hidden: list[Annotated[int, Field(ge=1, le=65536)]] = Field(default_factory=list)
    activation: HiddenActivation = "relu"
    output_activation: OutputActivation | None = None


class ESNConfig(NetworkSection):
    """An echo-state network: the reservoir of the default recipe (and of the weights mode).

    With ``task.mode = "hyperparameters"`` the genome encodes spectral radius,
    leak rate, input scaling, connectivity and ridge, and only ``units``,
    ``bias_scaling`` and ``seed`` are taken from here; with ``"weights"`` the
    genome is this reservoir's recurrent and input weights.
    """

    type: Literal["esn"]
    units: Annotated[int, Field(ge=2, le=20000)] = 500
    connectivity: Annotated[float, Field(gt=0.0, le=1.0)] = 0.02
    spectral_radius: Annotated[float, Field(gt=0.0, le=10.0)] = 1.0
    input_scaling: Annotated[float, Field(gt=0.0)] = 0.5
    leak_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 0.3
    bias_scaling: Annotated[float, Field(ge=0.0)] = 0.2
    ridge: Annotated[float, Field(ge=0.0)] = 1e-8
    #: reservoir seed (weights, sparsity pattern)
    seed: Annotated[int, Field(ge=0)] = 0


class NEATNetworkConfig(NetworkSection):
    """A NEAT graph: nodes and connections evolve (use with ``strategy.type = "neat"``).

    Genomes are padded to ``max_nodes`` node slots and ``max_connections``
    connection slots; growth past them is simply not made.
    """

    type: Literal["neat"]
    max_nodes: Annotated[int, Field(ge=2, le=4096)] = 64
    max_connections: Annotated[int, Field(ge=1, le=65536)] = 256
    hidden_activation: HiddenActivation = "tanh"
    output_activation: OutputActivation | None = None
    #: false: recurrent NEAT (cycles and self-connections; one synchronous update per step, state kept per episode)
    feed_forward: bool = True


class CNNSearchConfig(NetworkSection):
    """A CNN architecture search space (use with ``strategy.type = "cnn_arch"``)."""

    type: Literal["cnn_search"]
    input_shape: ImageShape | None = None
    max_blocks: Annotated[int, Field(ge=1, le=8)] = 3
    filter_choices: list[Annotated[int, Field(ge=1, le=1024)]] = Field(default_factory=lambda: [4, 8, 16, 32], min_length=1)
    kernel_choices: list[Annotated[int, Field(ge=1, le=15)]] = Field(default_factory=lambda: [3, 5], min_length=1)
    max_dense: Annotated[int, Field(ge=0, le=4)] = 2
    dense_choices: list[Annotated[int, Field(ge=1, le=4096)]] = Field(default_factory=lambda: [16, 32, 64], min_length=1)
    activation: HiddenActivation = "relu"
    output_activation: OutputActivation | None = None


class RNNConfig(NetworkSection):
    """A recurrent network (Elman, LSTM or GRU layers, then a dense readout of the last step); sizes from the task.

    A sample is read as ``steps`` equal slices of its values, one per time
    step, from a rest state; a control episode feeds one observation per step
    and keeps the state for the whole episode.
    """

    type: Literal["rnn"]
    cell: Literal["elman", "lstm", "gru"] = "lstm"
    hidden: list[Annotated[int, Field(ge=1, le=65536)]] = Field(default_factory=lambda: [16], min_length=1)
    #: time steps per sample; None: the task's own (digits: 8 rows of 8 pixels; forecast: its window; control: 1)
    steps: Annotated[int, Field(ge=1)] | None = None
    #: the Elman cell's activation (LSTM and GRU gates are sigmoid/tanh)
    activation: HiddenActivation = "tanh"
    #: hidden sizes of the dense readout (empty: one linear layer to the outputs)
    readout: list[Annotated[int, Field(ge=1, le=65536)]] = Field(default_factory=list)
    readout_activation: HiddenActivation = "tanh"
    output_activation: OutputActivation | None = None
    #: backpropagation through time over the last this many steps only (0: all of them); `evo train` only
    bptt_truncate: Annotated[int, Field(ge=0)] = 0


NetworkConfig = Annotated[MLPConfig | CNNConfig | ESNConfig | NEATNetworkConfig | CNNSearchConfig | RNNConfig, Field(discriminator="type")]
