"""Turn a validated RunConfig into live objects: task, network, strategy, evaluator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from evo.config import (
    CNNConfig,
    CNNSearchConfig,
    ConfigError,
    ESNConfig,
    MLPConfig,
    NEATNetworkConfig,
    RNNConfig,
    RunConfig,
    expect_section,
)
from evo.config.strategies import ArchitectureTrainingSettings
from evo.config.tasks import DatasetTaskConfig, PythonTaskConfig, TimeSeriesTaskConfig
from evo.seeding import STREAM_INIT, STREAM_STRATEGY, stream_seed
from evo.tasks.base import DefinesGenome, Task, TaskShape
from evo.tasks.genome import GenomeSpace
from networks import CNN, MLP
from networks.layers.conv import ConvBlock
from networks.preprocessing import Preprocessing
from networks.spec import NetworkSpec


def build_task(config: RunConfig):
    """The task the config names; a missing file or unknown environment raises ConfigError."""
    task = _build_base_task(config)
    if config.strategy.type == "cnn_arch" and config.strategy_params().get("mode") == "train_weights":
        from evo.tasks.arch_training import ArchitectureTrainingTask

        # cnn_arch's section carries the backprop budget beside the strategy's own parameters.
        s = expect_section(config.strategy, ArchitectureTrainingSettings, "strategy")
        try:
            return ArchitectureTrainingTask(
                task, epochs=s.train_epochs, batch_size=s.train_batch_size, lr=s.train_lr, max_train=s.train_max_samples
            )
        except ValueError as exc:
            raise ConfigError(f"config error: strategy.mode = 'train_weights': {exc}") from None
    return task


def _build_base_task(config: RunConfig):
    t = config.task
    try:
        if t.type in ("xor", "parity"):
            from evo.tasks.boolean import ParityTask

            return ParityTask(bits=2 if t.type == "xor" else t.bits)
        if t.type in ("digits", "dataset"):
            from evo.tasks.classification import ClassificationTask
            from evo.tasks.datasets import (
                DIGITS_IMAGE_SHAPE,
                DIGITS_PREPROCESSING,
                load_dataset_file,
                load_digits,
                standardized,
                stratified_split,
            )

            if t.type == "digits":
                X, y = load_digits()
                split = stratified_split(X, y, t.val_fraction, t.test_fraction, t.split_seed, image_shape=DIGITS_IMAGE_SHAPE)
                split = replace(split, preprocessing=DIGITS_PREPROCESSING)
                name = "digits"
            else:
                if t.target == "regression":
                    return _regression_task(t)
                X, y = load_dataset_file(t.path, t.x_key, t.y_key, t.label_column)
                split = stratified_split(X, y, t.val_fraction, t.test_fraction, t.split_seed)
                standardize = t.standardize if t.standardize is not None else split.image_shape is None
                if standardize:
                    split = standardized(split, _file_format(t))
                else:
                    split = replace(split, preprocessing=Preprocessing(note="features used as they are", file_format=_file_format(t)))
                name = f"dataset:{t.path}"
            return ClassificationTask(split, name=name, fitness=t.fitness, batch_size=t.batch_size)
        if t.type == "mnist":
            from evo.tasks.classification import ClassificationTask
            from evo.tasks.datasets import MNIST_PIXEL_SCALE, load_mnist, split_with_test

            data = load_mnist(t.dir, t.limit)
            split = split_with_test(
                data["train_images"], data["train_labels"], data["test_images"], data["test_labels"], t.val_fraction, t.split_seed
            )
            split = replace(
                split, preprocessing=Preprocessing.scaling(MNIST_PIXEL_SCALE, split.X_train.shape[1], note="pixels (0..255) / 255")
            )
            return ClassificationTask(split, name="mnist", fitness=t.fitness, batch_size=t.batch_size)
        if t.type == "timeseries":
            from evo.tasks.series import make_series_split
            from evo.tasks.timeseries import TimeSeriesTask

            if t.series == "file" and not t.path:
                raise ConfigError("config error: task.path: required when task.series = 'file'")
            extra = {"tau": t.tau} if t.series == "mackey_glass" else {}
            series = make_series_split(t.series, t.washout, t.n_train, t.n_val, t.n_test, path=t.path, column=t.column, key=t.key, **extra)
            return TimeSeriesTask(series, fitness=t.fitness, horizon=t.horizon, starts=t.starts)
        if t.type == "function":
            from evo.tasks.function import FunctionTask

            lower, upper = t.bounds if t.bounds is not None else (None, None)
            space = GenomeSpace(t.dimension, lower, upper, t.representation, x0=None if t.x0 is None else np.array(t.x0))
            return FunctionTask(
                t.callable,
                space,
                minimize=t.minimize,
                vectorized=t.vectorized,
                target=t.target,
                kwargs=dict(t.kwargs),
                code_dir=config.code_dir,
            )
        if t.type == "forecast":
            from evo.tasks.forecast import ForecastTask
            from evo.tasks.series import make_series_split

            if t.series == "file" and not t.path:
                raise ConfigError("config error: task.path: required when task.series = 'file'")
            extra = {"tau": t.tau} if t.series == "mackey_glass" else {}
            series = make_series_split(t.series, t.washout, t.n_train, t.n_val, t.n_test, path=t.path, column=t.column, key=t.key, **extra)
            return ForecastTask(series, window=t.window, fitness=t.fitness, batch_size=t.batch_size, horizon=t.horizon, starts=t.starts)
        if t.type == "control":
            from evo.envs import DOUBLE_POLE_IDS
            from evo.tasks.control import ControlTask
            from evo.tasks.double_pole import DoublePoleTask

            # A double pole's task adds the benchmark's 100,000-step and generalisation tests.
            task_type = DoublePoleTask if t.env_id in DOUBLE_POLE_IDS else ControlTask
            return task_type(
                t.env_id,
                episodes=t.episodes,
                max_steps=t.max_steps,
                test_episodes=t.test_episodes,
                val_episodes=t.val_episodes,
                env_kwargs=dict(t.env_kwargs),
                imports=tuple(t.imports),
                code_dir=config.code_dir,
                observe=t.observe,
            )
        if t.type == "python":
            return _python_task(t, config.code_dir)
    except ValueError as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith("config error") else f"config error: {message}") from None
    raise ConfigError(f"config error: task.type = {t.type!r}: not known")


def _python_task(t: PythonTaskConfig, code_dir: str | None) -> Task:
    """A user's Task subclass built with its kwargs; a constructor that raises ValueError is a config error naming it."""
    from evo.tasks.user_code import import_object

    cls = import_object(t.task_class, "task.class", code_dir)
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise ConfigError(f"config error: task.class = {t.task_class!r}: is not a subclass of evo.tasks.base.Task")
    try:
        task = cls(**t.kwargs)
    except TypeError as exc:
        raise ConfigError(f"config error: task.kwargs: {t.task_class} does not take them: {exc}") from None
    for attribute in ("n_inputs", "n_outputs"):
        value = getattr(task, attribute, None)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"config error: task.class = {t.task_class!r}: sets {attribute} = {value!r}; it must be an integer >= 1")
    return task


def _regression_task(t: DatasetTaskConfig) -> Task:
    """A ``dataset`` task with ``target = "regression"``: numeric targets, standardised unless turned off."""
    from evo.tasks.datasets import load_dataset_file
    from evo.tasks.regression import RegressionTask, regression_split

    if t.fitness != "cross_entropy":  # the default: it only means something for classification
        raise ConfigError(f"config error: task.fitness = {t.fitness!r}: a regression task's fitness is minus the mean squared error")
    X, y = load_dataset_file(t.path, t.x_key, t.y_key, t.label_column, numeric_target=True)
    standardize = t.standardize if t.standardize is not None else X.ndim == 2
    split = regression_split(X, y, t.val_fraction, t.test_fraction, t.split_seed, standardize, _file_format(t))
    return RegressionTask(split, name=f"dataset:{t.path}", batch_size=t.batch_size)


def _file_format(t: DatasetTaskConfig) -> dict[str, Any]:
    """Where a dataset file of this config keeps its features and labels (so `evo predict` reads new files the same way)."""
    if str(t.path).lower().endswith(".npz"):
        return {"type": "npz", "x_key": t.x_key, "y_key": t.y_key}
    return {"type": "csv", "label_column": t.label_column}


def build_network(config: RunConfig, task: TaskShape) -> NetworkSpec:
    """The network spec: layers from the config, input/output shapes from the task (a solution task's genome space)."""
    if isinstance(task, DefinesGenome):
        return task.genome_space()  # the genome is the solution: no network
    if config.network.dtype != "float64" and config.network.type not in FLOAT32_NETWORKS:
        raise ConfigError(
            f"config error: network.dtype = {config.network.dtype!r}: network.type = {config.network.type!r} computes in "
            f"float64 only; float32 is available for {sorted(FLOAT32_NETWORKS)}"
        )
    try:
        return NETWORK_BUILDERS[config.network.type](config, task)
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(f"config error: network: {exc}") from None


def _mlp(config: RunConfig, task: TaskShape) -> NetworkSpec:
    n = expect_section(config.network, MLPConfig, "network")
    return MLP(
        layer_sizes=(task.n_inputs, *n.hidden, task.n_outputs),
        activation=n.activation,
        output_activation=n.output_activation or task.output_activation,
        dtype=n.dtype,
    )


def _cnn(config: RunConfig, task: TaskShape) -> NetworkSpec:
    n = expect_section(config.network, CNNConfig, "network")
    return CNN(
        input_shape=_image_shape(n, task),
        conv_blocks=tuple(ConvBlock.parse(b.model_dump(), f"conv block {i}") for i, b in enumerate(n.conv)),
        output_size=task.n_outputs,
        hidden=tuple(n.hidden),
        activation=n.activation,
        output_activation=n.output_activation or task.output_activation,
        dtype=n.dtype,
    )


def _neat(config: RunConfig, task: TaskShape) -> NetworkSpec:
    from networks.neat import NEATSpec, RecurrentNEATSpec

    n = expect_section(config.network, NEATNetworkConfig, "network")
    return (NEATSpec if n.feed_forward else RecurrentNEATSpec)(
        task.n_inputs,
        task.n_outputs,
        max_nodes=n.max_nodes,
        max_connections=n.max_connections,
        output_activation=n.output_activation or task.output_activation,
        hidden_activation=n.hidden_activation,
    )


def _cnn_search(config: RunConfig, task: TaskShape) -> NetworkSpec:
    from networks.cnn_search import CNNSearchSpace

    n = expect_section(config.network, CNNSearchConfig, "network")
    return CNNSearchSpace(
        _image_shape(n, task),
        task.n_outputs,
        max_blocks=n.max_blocks,
        filter_choices=tuple(n.filter_choices),
        kernel_choices=tuple(n.kernel_choices),
        max_dense=n.max_dense,
        dense_choices=tuple(n.dense_choices),
        activation=n.activation,
        output_activation=n.output_activation or task.output_activation,
        dtype=n.dtype,
    )


def _esn(config: RunConfig, task: TaskShape) -> NetworkSpec:
    from networks.esn import ESNSpec

    n, t = (
        expect_section(config.network, ESNConfig, "network"),
        expect_section(config.task, TimeSeriesTaskConfig, "task"),
    )  # what the genome encodes (mode) and its ranges are [task] settings of the timeseries task
    try:
        return ESNSpec.from_settings(
            t.mode,
            task.n_inputs,
            task.n_outputs,
            **n.model_dump(exclude={"type", "dtype"}),
            n_reservoirs=t.n_reservoirs,
            min_units=t.min_units,
            max_units=t.max_units,
            rescale=t.rescale,
        )
    except ValueError as exc:  # its errors name their own [task] / [network] fields
        raise ConfigError(f"config error: {exc}") from None


def _rnn(config: RunConfig, task: TaskShape) -> NetworkSpec:
    """A recurrent network reading each sample in ``steps`` slices (the config's, else the task's own)."""
    from networks.rnn import RNN

    n = expect_section(config.network, RNNConfig, "network")
    steps = n.steps or task.sequence_steps
    if task.n_inputs % steps:
        raise ConfigError(
            f"config error: network.steps = {steps}: the task's samples hold {task.n_inputs} values, not a whole number of steps of equal width"
        )
    return RNN(
        input_size=task.n_inputs // steps,
        hidden=tuple(n.hidden),
        output_size=task.n_outputs,
        cell=n.cell,
        steps=steps,
        activation=n.activation,
        readout=tuple(n.readout),
        readout_activation=n.readout_activation,
        output_activation=n.output_activation or task.output_activation,
        bptt_truncate=n.bptt_truncate,
        dtype=n.dtype,
    )


#: The network types whose forward passes can compute in float32 (``network.dtype``). An ESN fits its readout
#: in closed form (ridge normal equations, which float32 would break) and NEAT's small graphs gain nothing from it.
FLOAT32_NETWORKS = frozenset({"mlp", "cnn", "cnn_search", "rnn"})

#: How each ``network.type`` is built from the config and the task (a ValueError becomes a ConfigError).
NETWORK_BUILDERS: dict[str, Callable[[RunConfig, TaskShape], NetworkSpec]] = {
    "mlp": _mlp,
    "cnn": _cnn,
    "neat": _neat,
    "cnn_search": _cnn_search,
    "esn": _esn,
    "rnn": _rnn,
}


def _image_shape(n: CNNConfig | CNNSearchConfig, task: TaskShape) -> tuple[int, int, int]:
    """The (C, H, W) a convolutional network reads: the config's, else the task's images."""
    shape = n.input_shape or task.input_shape
    if shape is None:
        raise ConfigError(
            f"config error: network.input_shape: task {task.name!r} has flat features; give input_shape = [C, H, W] "
            "or use an image task (digits, mnist, an .npz with N x C x H x W images)"
        )
    if int(np.prod(shape)) != task.n_inputs:
        raise ConfigError(
            f"config error: network.input_shape = {list(shape)}: holds {int(np.prod(shape))} values, the task's samples have {task.n_inputs}"
        )
    channels, height, width = (int(v) for v in shape)  # both sources are (C, H, W): the config's and the task's
    return (channels, height, width)


def initial_genome(config: RunConfig, network: NetworkSpec) -> np.ndarray:
    """The starting genome: the network's He/Glorot init times ``init_scale``, seeded by the run."""
    rng = np.random.default_rng(stream_seed(config.seed, STREAM_INIT))
    genome = network.init_params(rng, 1)[0]
    if isinstance(network, GenomeSpace):
        return genome  # a solution: x0, or a uniform draw in its box
    # init_scale scales weights; a genome that also holds structure genes, or encodes a recipe, is left as it is.
    return genome if network.structural_genome else genome * config.init_scale


def build_strategy(config: RunConfig, network: NetworkSpec):
    """The strategy the config names, over the network's flat parameter vector."""
    from evo.strategies import make_strategy

    params = config.strategy_params()
    init = initial_genome(config, network)
    if config.strategy.type == "neat":
        from networks.neat import NEATLayout

        assert isinstance(network, NEATLayout), "the config pairs strategy 'neat' with network 'neat' (feedforward or recurrent)"
        params.update(
            n_inputs=network.n_inputs,
            n_outputs=network.n_outputs,
            max_nodes=network.max_nodes,
            max_connections=network.max_connections,
            hidden_activation=network.hidden_activation,
            feed_forward=network.feed_forward,
        )
    elif config.strategy.type == "cnn_arch":
        params["space"] = network
    if isinstance(network, GenomeSpace):
        params.update(_solution_params(config, network))
    try:
        return make_strategy(
            config.strategy.type,
            n_params=network.n_params,
            population=config.strategy.population,
            seed=stream_seed(config.seed, STREAM_STRATEGY),
            init=init,
            **params,
        )
    except ValueError as exc:
        raise ConfigError(f"config error: strategy: {exc}") from None


def _solution_params(config: RunConfig, space: GenomeSpace) -> dict[str, Any]:
    """What a strategy learns from a solution task: its bounds, its representation (GA only), a step size fitting the box."""
    kind = config.strategy.type
    if space.representation != "real" and kind != "ga":
        raise ConfigError(
            f"config error: task.representation = {space.representation!r} with strategy.type = {kind!r}: "
            "discrete genomes need strategy.type = 'ga'"
        )
    extra: dict[str, Any] = {}
    if space.bounds is not None:
        extra["bounds"] = space.bounds
        # Unset step sizes follow the box (pycma's advice: about a quarter to a third of its width).
        if kind in ("cmaes", "snes", "crfmnes") and "sigma" not in config.strategy_params():
            extra["sigma"] = 0.3 * float(np.mean(space.bounds[1] - space.bounds[0]))
    if kind == "ga":
        extra["representation"] = space.representation
    return extra


def build_evaluator(config: RunConfig):
    """Serial or Ray evaluator."""
    from evo.evaluators import make_evaluator

    return make_evaluator(config.evaluator, config.seed)
