"""Run configuration: TOML in, a validated, typed :class:`RunConfig` out.

All validation of user input lives here (scikit-learn style: one place). A
bad config raises :class:`ConfigError` whose message is one line per problem
naming the field, the value given and what is allowed; the CLI prints it and
exits with status 2 before anything is written.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from networks.activations import OUTPUT_ACTIVATIONS, activation_names

HiddenActivation = Literal[tuple(activation_names())]  # type: ignore[valid-type]
OutputActivation = Literal[tuple(OUTPUT_ACTIVATIONS)]  # type: ignore[valid-type]


class ConfigError(ValueError):
    """A config that cannot be run; the message is ready to print."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------ network
class MLPConfig(_Section):
    """A feedforward network; input and output widths come from the task."""

    type: Literal["mlp"] = "mlp"
    hidden: list[Annotated[int, Field(ge=1, le=65536)]] = Field(default_factory=lambda: [16])
    activation: HiddenActivation = "tanh"
    #: None: the task's natural output (softmax for classes, sigmoid for Boolean, identity/tanh for control)
    output_activation: OutputActivation | None = None


class ConvBlockConfig(_Section):
    """One conv block: convolution, activation, optional max pool."""

    filters: Annotated[int, Field(ge=1, le=4096)]
    kernel_size: Annotated[int, Field(ge=1, le=64)] = 3
    stride: Annotated[int, Field(ge=1, le=64)] = 1
    padding: Annotated[int, Field(ge=0, le=64)] | Literal["same"] = 0
    activation: HiddenActivation = "relu"
    #: 0: no pooling; p: p x p max pool with stride p
    pool: Annotated[int, Field(ge=0, le=16)] = 0


class CNNConfig(_Section):
    """A convolutional network: conv blocks, flatten, dense layers; input shape from the task."""

    type: Literal["cnn"]
    #: (channels, height, width); None: the task's image shape (digits: 1 x 8 x 8)
    input_shape: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] | None = None
    conv: list[ConvBlockConfig] = Field(min_length=1)
    hidden: list[Annotated[int, Field(ge=1, le=65536)]] = Field(default_factory=list)
    activation: HiddenActivation = "relu"
    output_activation: OutputActivation | None = None


class ESNConfig(_Section):
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


class NEATNetworkConfig(_Section):
    """A NEAT graph: nodes and connections evolve (use with ``strategy.type = "neat"``).

    Genomes are padded to ``max_nodes`` node slots and ``max_connections``
    connection slots; growth past them is simply not made.
    """

    type: Literal["neat"]
    max_nodes: Annotated[int, Field(ge=2, le=4096)] = 64
    max_connections: Annotated[int, Field(ge=1, le=65536)] = 256
    hidden_activation: HiddenActivation = "tanh"
    output_activation: OutputActivation | None = None


class CNNSearchConfig(_Section):
    """A CNN architecture search space (use with ``strategy.type = "cnn_arch"``)."""

    type: Literal["cnn_search"]
    input_shape: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] | None = None
    max_blocks: Annotated[int, Field(ge=1, le=8)] = 3
    filter_choices: list[Annotated[int, Field(ge=1, le=1024)]] = Field(default_factory=lambda: [4, 8, 16, 32], min_length=1)
    kernel_choices: list[Annotated[int, Field(ge=1, le=15)]] = Field(default_factory=lambda: [3, 5], min_length=1)
    max_dense: Annotated[int, Field(ge=0, le=4)] = 2
    dense_choices: list[Annotated[int, Field(ge=1, le=4096)]] = Field(default_factory=lambda: [16, 32, 64], min_length=1)
    activation: HiddenActivation = "relu"
    output_activation: OutputActivation | None = None


NetworkConfig = Annotated[Union[MLPConfig, CNNConfig, ESNConfig, NEATNetworkConfig, CNNSearchConfig], Field(discriminator="type")]


# -------------------------------------------------------------------- tasks
class ParityTaskConfig(_Section):
    """n-bit parity; ``type = "xor"`` is parity with 2 bits."""

    type: Literal["xor", "parity"]
    bits: Annotated[int, Field(ge=2, le=16)] = 2


class _SupervisedConfig(_Section):
    fitness: Literal["cross_entropy", "accuracy"] = "cross_entropy"
    batch_size: Annotated[int, Field(ge=1)] | None = None
    val_fraction: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.1
    test_fraction: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.2
    split_seed: Annotated[int, Field(ge=0)] = 0


class DigitsTaskConfig(_SupervisedConfig):
    """scikit-learn's bundled 8x8 digits (1,797 samples, 10 classes)."""

    type: Literal["digits"]


class DatasetTaskConfig(_SupervisedConfig):
    """A user's labelled dataset from an ``.npz`` (features or N x C x H x W images) or ``.csv`` file."""

    type: Literal["dataset"]
    path: str
    x_key: str = "X"
    y_key: str = "y"
    label_column: int | str = -1


class MNISTTaskConfig(_SupervisedConfig):
    """MNIST-format idx files in a folder (as distributed, gzipped or not); the official test set is the test split."""

    type: Literal["mnist"]
    dir: str
    #: use only the first N training images (None: all)
    limit: Annotated[int, Field(ge=10)] | None = None


class TimeSeriesTaskConfig(_Section):
    """One-step-ahead prediction of a series with an echo-state network (``network.type = "esn"``)."""

    type: Literal["timeseries"]
    series: Literal["mackey_glass", "narma10", "file"] = "mackey_glass"
    #: what the genome is: the reservoir's hyperparameters, or its weights
    mode: Literal["hyperparameters", "topology", "weights"] = "hyperparameters"
    #: topology mode: the size gene's range (network.units is ignored there)
    min_units: Annotated[int, Field(ge=2)] = 50
    max_units: Annotated[int, Field(ge=3, le=20000)] = 500
    path: str | None = None
    column: int | str | None = None
    key: str | None = None
    washout: Annotated[int, Field(ge=0)] = 200
    n_train: Annotated[int, Field(ge=10)] = 3000
    n_val: Annotated[int, Field(ge=10)] = 1000
    n_test: Annotated[int, Field(ge=10)] = 2000
    #: Mackey-Glass delay (recorded in the run)
    tau: Annotated[float, Field(gt=0.0)] = 17.0
    #: reservoirs (seeds seed, seed+1, ...) each hyperparameter genome is scored on, fitness averaged
    n_reservoirs: Annotated[int, Field(ge=1, le=100)] = 1
    fitness: Literal["log_nrmse", "nrmse"] = "log_nrmse"
    #: closed-loop horizon and start points of the free-run test figure (NRMSE84)
    horizon: Annotated[int, Field(ge=1)] = 84
    starts: Annotated[int, Field(ge=1)] = 20
    #: weights mode: rescale each genome's recurrent matrix to network.spectral_radius
    rescale: bool = False


class ControlTaskConfig(_Section):
    """A gymnasium environment with a Box observation space."""

    type: Literal["control"]
    env_id: str
    episodes: Annotated[int, Field(ge=1, le=1000)] = 5
    max_steps: Annotated[int, Field(ge=1)] | None = None
    test_episodes: Annotated[int, Field(ge=1, le=100000)] = 100
    #: fresh episodes (their own seeds) that pick the genome to keep among candidates
    val_episodes: Annotated[int, Field(ge=1, le=100000)] = 20
    env_kwargs: dict[str, Any] = Field(default_factory=dict)


TaskConfig = Annotated[
    Union[ParityTaskConfig, DigitsTaskConfig, DatasetTaskConfig, MNISTTaskConfig, TimeSeriesTaskConfig, ControlTaskConfig],
    Field(discriminator="type"),
]


# --------------------------------------------------------------- strategies
Positive = Annotated[float, Field(gt=0.0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class GAConfig(_Section):
    """Genetic algorithm (DEAP operators); unset values take the strategy's defaults."""

    type: Literal["ga"]
    population: Annotated[int, Field(ge=2, le=1_000_000)] = 100
    sigma: Positive | None = None
    indpb: Probability | None = None
    mutpb: Probability | None = None
    cxpb: Probability | None = None
    crossover: Literal["blend", "sbx"] | None = None
    alpha: Annotated[float, Field(ge=0.0)] | None = None
    eta: Positive | None = None
    tournament_size: Annotated[int, Field(ge=1)] | None = None
    elite: Annotated[int, Field(ge=0)] | None = None
    init_std: Annotated[float, Field(ge=0.0)] | None = None


class CMAESConfig(_Section):
    """CMA-ES (deap.cma), full covariance: for genomes up to a few hundred weights."""

    type: Literal["cmaes"]
    population: Annotated[int, Field(ge=2, le=1_000_000)] = 16
    sigma: Positive | None = None


class SNESConfig(_Section):
    """Separable natural evolution strategy: for large genomes."""

    type: Literal["snes"]
    population: Annotated[int, Field(ge=2, le=1_000_000)] = 50
    sigma: Positive | None = None
    lr_mean: Positive | None = None
    lr_sigma: Positive | None = None
    antithetic: bool | None = None
    weight_decay: Annotated[float, Field(ge=0.0)] | None = None


class OpenAIESConfig(_Section):
    """OpenAI-ES (Salimans et al. 2017): fixed sigma, Adam on the mean."""

    type: Literal["openai_es"]
    population: Annotated[int, Field(ge=2, le=1_000_000)] = 50
    sigma: Positive | None = None
    lr: Positive | None = None
    weight_decay: Annotated[float, Field(ge=0.0)] | None = None


class NEATConfig(_Section):
    """NEAT (Stanley & Miikkulainen 2002); unset values take the strategy's defaults."""

    type: Literal["neat"]
    population: Annotated[int, Field(ge=2, le=1_000_000)] = 150
    selection: Literal["speciation", "nsga2"] | None = None
    c1: Annotated[float, Field(ge=0.0)] | None = None
    c2: Annotated[float, Field(ge=0.0)] | None = None
    c3: Annotated[float, Field(ge=0.0)] | None = None
    compatibility_threshold: Positive | None = None
    target_species: Annotated[int, Field(ge=1)] | None = None
    stagnation: Annotated[int, Field(ge=1)] | None = None
    elitism: Annotated[int, Field(ge=0)] | None = None
    survival_threshold: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    crossover_prob: Probability | None = None
    weight_mutation_prob: Probability | None = None
    weight_sigma: Positive | None = None
    add_connection_prob: Probability | None = None
    add_node_prob: Probability | None = None
    toggle_prob: Probability | None = None
    response: Positive | None = None


class ArchitectureSearchConfig(_Section):
    """CNN architecture search: blocks, filters, kernels, pooling and dense widths evolve."""

    type: Literal["cnn_arch"]
    population: Annotated[int, Field(ge=2, le=1_000_000)] = 20
    #: evolve the weights with the architecture, or train them by backprop inside the fitness
    mode: Literal["evolve_weights", "train_weights"] | None = None
    selection: Literal["tournament", "nsga2"] | None = None
    tournament_size: Annotated[int, Field(ge=1)] | None = None
    elite: Annotated[int, Field(ge=0)] | None = None
    p_add_block: Probability | None = None
    p_remove_block: Probability | None = None
    p_resize: Probability | None = None
    p_pool: Probability | None = None
    p_dense: Probability | None = None
    weight_sigma: Positive | None = None
    weight_indpb: Probability | None = None
    #: train_weights mode: backprop budget inside each fitness evaluation
    train_epochs: Annotated[int, Field(ge=1, le=1000)] = 2
    train_batch_size: Annotated[int, Field(ge=1)] = 64
    train_lr: Positive = 0.003
    train_max_samples: Annotated[int, Field(ge=10)] | None = None


StrategyConfig = Annotated[
    Union[GAConfig, CMAESConfig, SNESConfig, OpenAIESConfig, NEATConfig, ArchitectureSearchConfig],
    Field(discriminator="type"),
]


# ---------------------------------------------------------------- evaluator
class EvaluatorConfig(_Section):
    """Where fitness is computed: in process, or on Ray (local or a cluster)."""

    type: Literal["serial", "ray"] = "serial"
    workers: Annotated[int, Field(ge=1, le=100000)] = 2
    #: None: RAY_ADDRESS if set, else a new loopback-only local instance
    address: str | None = None
    #: individuals per Ray task; "auto" sizes chunks so a task runs >= min_task_seconds
    chunk_size: Annotated[int, Field(ge=1)] | Literal["auto"] = "auto"
    min_task_seconds: Annotated[float, Field(gt=0.0, le=60.0)] = 0.01
    max_retries: Annotated[int, Field(ge=0, le=100)] = 3


# ------------------------------------------------------------------ backprop
class TrainConfig(_Section):
    """The gradient-descent baseline (`evo train`, `evo compare`) on the same network and split."""

    optimizer: Literal["adam", "sgd"] = "adam"
    #: None: the optimiser's default (Adam 1e-3, SGD 1e-2)
    lr: Positive | None = None
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    batch_size: Annotated[int, Field(ge=1)] = 32
    epochs: Annotated[int, Field(ge=1, le=1_000_000)] = 200
    #: L2 penalty on weights (not biases)
    weight_decay: Annotated[float, Field(ge=0.0)] = 1e-3
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    #: epochs without a better validation loss before stopping (restoring the best weights); 0 disables
    patience: Annotated[int, Field(ge=0)] = 20


# ---------------------------------------------------------------------- run
class RunConfig(_Section):
    """A whole evolution run."""

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")] = "run"
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    generations: Annotated[int, Field(ge=1, le=10_000_000)] = 100
    #: stop early once the best fitness of a generation reaches this
    target_fitness: float | None = None
    #: stop early after this many wall seconds
    max_seconds: Annotated[float, Field(gt=0.0)] | None = None
    checkpoint_every: Annotated[int, Field(ge=1)] = 10
    #: how often (generations) the strategy's best genome is scored on the validation split
    validate_every: Annotated[int, Field(ge=1)] = 10
    #: standard deviation scale of the starting genome (network's He/Glorot init); 0 starts at zero
    init_scale: Annotated[float, Field(ge=0.0)] = 1.0
    out: str = "runs"
    network: NetworkConfig = Field(default_factory=lambda: MLPConfig(type="mlp"))
    task: TaskConfig
    strategy: StrategyConfig
    evaluator: EvaluatorConfig = Field(default_factory=EvaluatorConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    def strategy_params(self) -> dict[str, Any]:
        """The strategy's own parameters that the config sets (others keep their defaults)."""
        return self.strategy.model_dump(
            exclude={"type", "population", "train_epochs", "train_batch_size", "train_lr", "train_max_samples"}, exclude_none=True
        )

    @model_validator(mode="after")
    def _pairings(self) -> "RunConfig":
        """Topology strategies and their networks go together, and so do the timeseries task and the ESN."""
        pairs = {"neat": "neat", "cnn_arch": "cnn_search"}
        for strategy, network in pairs.items():
            if (self.strategy.type == strategy) != (self.network.type == network):
                raise ValueError(
                    f"strategy.type = {self.strategy.type!r} with network.type = {self.network.type!r}: "
                    f"strategy {strategy!r} needs network.type = {network!r} and that network needs that strategy"
                )
        # An echo-state network reads a series step by step and fits its readout on it: only a timeseries task has one.
        for task, network in {"timeseries": "esn"}.items():
            if (self.task.type == task) != (self.network.type == network):
                raise ValueError(
                    f"task.type = {self.task.type!r} with network.type = {self.network.type!r}: "
                    f"task {task!r} needs network.type = {network!r} and that network needs that task"
                )
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every resolved value (None dropped, so it writes as TOML)."""
        return self.model_dump(mode="json", exclude_none=True)


# -------------------------------------------------------------- validation
def _allowed_keys(loc: tuple) -> list[str]:
    """Field names allowed at the parent of ``loc`` (for unknown-key errors)."""
    model: Any = RunConfig
    for part in loc[:-1]:
        if isinstance(model, type) and issubclass(model, BaseModel) and part in model.model_fields:
            model = model.model_fields[part].annotation
            continue
        # A discriminated union puts the tag value in the location.
        candidates = [m for m in _union_members(model) if _tag_of(m) == part or (isinstance(_tag_of(m), tuple) and part in _tag_of(m))]
        if not candidates:
            return []
        model = candidates[0]
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(model.model_fields)
    return []


def _union_members(annotation: Any) -> list[type]:
    from typing import get_args

    out = []
    for arg in get_args(annotation):
        out.extend(_union_members(arg) if get_args(arg) else [arg])
    return [a for a in out if isinstance(a, type) and issubclass(a, BaseModel)]


def _tag_of(model: type[BaseModel]) -> Any:
    from typing import get_args

    field = model.model_fields.get("type")
    args = get_args(field.annotation) if field is not None else ()
    return args[0] if len(args) == 1 else (args if args else None)


def format_validation_error(error: ValidationError) -> str:
    """One line per problem: field, value, what is allowed."""
    lines: dict[str, str] = {}
    for item in error.errors():
        loc = tuple(item["loc"])
        field = _field_path(loc)
        value = item.get("input")
        if item["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc)
            line = f"config error: {field} = {value!r}: unknown key; allowed keys here: {', '.join(allowed)}"
        elif item["type"] == "missing":
            line = f"config error: {field}: required field is missing"
        elif item["type"] == "value_error":
            # Cross-field checks: the message names the fields itself.
            message = item["msg"].removeprefix("Value error, ")
            line = f"config error: {message}" if field == "(top level)" else f"config error: {field} = {value!r}: {message}"
        elif item["type"] in ("union_tag_invalid", "union_tag_not_found"):
            allowed = item.get("ctx", {}).get("expected_tags", "")
            line = f"config error: {field}.type = {_tag_value(value)!r}: not known; allowed: {allowed}"
        elif field in lines:
            # One field, several union alternatives: say them all on its one line.
            lines[field] += f", or {item['msg'][0].lower()}{item['msg'][1:]}"
            continue
        else:
            line = f"config error: {field} = {value!r}: {item['msg']}"
        lines[field] = line
    return "\n".join(lines.values())


def _field_path(loc: tuple) -> str:
    """The dotted path a user wrote: no discriminator tags, no pydantic type labels."""
    shown = []
    for i, part in enumerate(loc):
        if isinstance(part, int):
            shown.append(f"[{part}]")
            continue
        if i > 0 and loc[i - 1] in ("task", "strategy", "network") and _is_tag(loc[i - 1], part):
            continue
        if not part.isidentifier():  # e.g. 'constrained-int', "literal['auto']"
            continue
        shown.append(part)
    return ".".join(shown).replace(".[", "[") or "(top level)"


def _tag_value(value: Any) -> Any:
    return value.get("type") if isinstance(value, dict) else value


def _is_tag(section: str, part: str) -> bool:
    member_annotation = RunConfig.model_fields[section].annotation
    return any(_tag_of(m) == part or (isinstance(_tag_of(m), tuple) and part in _tag_of(m)) for m in _union_members(member_annotation))


def parse_config(data: dict[str, Any]) -> RunConfig:
    """Validate a config dict; raises ConfigError with a printable message."""
    if isinstance(data.get("network"), dict) and "type" not in data["network"]:
        data = {**data, "network": {"type": "mlp", **data["network"]}}  # a plain [network] is an MLP
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file into a dict; a missing or malformed file raises ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config error: config file {str(path)!r} does not exist")
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config error: {str(path)!r} is not valid TOML: {exc}") from None
    data.setdefault("name", path.stem)
    return data


def apply_overrides(data: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """Command-line overrides on top of a config dict (None means not given).

    ``workers`` switches the evaluator to Ray with that many workers;
    ``ray_address`` joins that cluster.
    """
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for key in ("seed", "generations", "out"):
        if overrides.get(key) is not None:
            data[key] = overrides[key]
    if overrides.get("population") is not None:
        data.setdefault("strategy", {})["population"] = overrides["population"]
    evaluator = data.setdefault("evaluator", {})
    if overrides.get("workers") is not None:
        evaluator["type"] = "ray"
        evaluator["workers"] = overrides["workers"]
    if overrides.get("ray_address") is not None:
        evaluator["type"] = "ray"
        evaluator["address"] = overrides["ray_address"]
    return data


def load_config(path: str | Path, **overrides: Any) -> RunConfig:
    """Read, override and validate a TOML config file."""
    return parse_config(apply_overrides(read_toml(path), **overrides))
