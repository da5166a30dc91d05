"""The ``[task]`` section: what the fitness measures (a dataset, a control environment, a series...)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from evo.config.base import Section


class ParityTaskConfig(Section):
    """n-bit parity; ``type = "xor"`` is parity with 2 bits."""

    type: Literal["xor", "parity"]
    bits: Annotated[int, Field(ge=2, le=16)] = 2


class _SupervisedConfig(Section):
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
    #: classification (softmax, accuracy) or regression (identity outputs, mean squared error, test_mse and test_r2)
    target: Literal["classification", "regression"] = "classification"
    #: scale each feature to zero mean, unit variance on the training split (recorded with the model);
    #: unset: on for tabular features, off for images
    standardize: bool | None = None


class MNISTTaskConfig(_SupervisedConfig):
    """MNIST-format idx files in a folder (as distributed, gzipped or not); the official test set is the test split."""

    type: Literal["mnist"]
    dir: str
    #: use only the first N training images (None: all)
    limit: Annotated[int, Field(ge=10)] | None = None


class _SeriesConfig(Section):
    """A series and its washout | train | val | test split: shared by the echo-state and the forecasting tasks."""

    series: Literal["mackey_glass", "narma10", "file"] = "mackey_glass"
    path: str | None = None
    column: int | str | None = None
    key: str | None = None
    washout: Annotated[int, Field(ge=0)] = 200
    n_train: Annotated[int, Field(ge=10)] = 3000
    n_val: Annotated[int, Field(ge=10)] = 1000
    n_test: Annotated[int, Field(ge=10)] = 2000
    #: Mackey-Glass delay (recorded in the run)
    tau: Annotated[float, Field(gt=0.0)] = 17.0


class TimeSeriesTaskConfig(_SeriesConfig):
    """One-step-ahead prediction of a series with an echo-state network (``network.type = "esn"``)."""

    type: Literal["timeseries"]
    #: what the genome is: the reservoir's hyperparameters, or its weights
    mode: Literal["hyperparameters", "topology", "weights"] = "hyperparameters"
    #: topology mode: the size gene's range (network.units is ignored there)
    min_units: Annotated[int, Field(ge=2)] = 50
    max_units: Annotated[int, Field(ge=3, le=20000)] = 500
    #: reservoirs (seeds seed, seed+1, ...) each hyperparameter genome is scored on, fitness averaged
    n_reservoirs: Annotated[int, Field(ge=1, le=100)] = 1
    fitness: Literal["log_nrmse", "nrmse"] = "log_nrmse"
    #: closed-loop horizon and start points of the free-run test figure (NRMSE84)
    horizon: Annotated[int, Field(ge=1)] = 84
    starts: Annotated[int, Field(ge=1)] = 20
    #: weights mode: rescale each genome's recurrent matrix to network.spectral_radius
    rescale: bool = False


class ForecastTaskConfig(_SeriesConfig):
    """One-step and free-run forecasting of a series from a window of its past, by any network (an LSTM, an MLP).

    The series and its washout | train | val | test split are the timeseries
    (echo-state) task's, so the two compare on equal terms.
    """

    type: Literal["forecast"]
    #: past values one sample holds (a recurrent network reads them one per step); at most washout + 1
    window: Annotated[int, Field(ge=1)] = 32
    fitness: Literal["log_nrmse", "nrmse"] = "log_nrmse"
    #: training windows per generation, drawn from the generation seed (None: all of them)
    batch_size: Annotated[int, Field(ge=1)] | None = None
    #: closed-loop horizon and start points of the free-run test figure (NRMSE84), as the timeseries task's
    horizon: Annotated[int, Field(ge=1)] = 84
    starts: Annotated[int, Field(ge=1)] = 20


class ControlTaskConfig(Section):
    """A gymnasium environment with a Box observation space: a registered id, or a user's ``"module:EnvClass"``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    type: Literal["control"]
    #: a gymnasium id ("CartPole-v1"), one registered by the modules in `import`, or "package.module:EnvClass"
    env_id: str
    #: modules to import first (they register their environments with gymnasium.register)
    imports: list[str] = Field(default_factory=list, alias="import")
    episodes: Annotated[int, Field(ge=1, le=1000)] = 5
    max_steps: Annotated[int, Field(ge=1)] | None = None
    test_episodes: Annotated[int, Field(ge=1, le=100000)] = 100
    #: fresh episodes (their own seeds) that pick the genome to keep among candidates
    val_episodes: Annotated[int, Field(ge=1, le=100000)] = 20
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    #: observation indices the network sees (None: all); e.g. [0, 2] hides CartPole's velocities
    observe: list[Annotated[int, Field(ge=0)]] | None = None


#: a reference to a user's code: "package.module:name"
CodeReference = Annotated[str, Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")]
Bound = float | list[float]


class FunctionTaskConfig(Section):
    """A user's fitness function over real, binary, integer or permutation solutions (no network)."""

    type: Literal["function"]
    #: "package.module:name", importable from the config's folder or the Python path
    callable: CodeReference
    dimension: Annotated[int, Field(ge=1, le=1_000_000)]
    #: [low, high] for every dimension, or [[low_1, ..., low_n], [high_1, ..., high_n]]
    bounds: Annotated[list[Bound], Field(min_length=2, max_length=2)] | None = None
    minimize: bool = True
    #: false: f(x) per solution (x of shape (dimension,)); true: f(X) over a (P, dimension) array, returning (P,)
    vectorized: bool = False
    representation: Literal["real", "binary", "integer", "permutation"] = "real"
    #: starting point (default: uniform in the bounds, from the run seed)
    x0: list[float] | None = None
    #: stop once the best value reaches this (in the function's own sign: <= when minimising)
    target: float | None = None
    #: extra keyword arguments for the function
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _bound_lengths(self) -> FunctionTaskConfig:
        for side, value in zip(("low", "high"), self.bounds or ()):
            if isinstance(value, list) and len(value) != self.dimension:
                raise ValueError(f"task.bounds: the {side} list has {len(value)} values for dimension {self.dimension}")
        return self


class PythonTaskConfig(Section):
    """A user's own Task subclass, ``class = "package.module:MyTask"``, built with ``kwargs``; it runs over any network type."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    type: Literal["python"]
    task_class: CodeReference = Field(alias="class")
    #: keyword arguments of the class's constructor
    kwargs: dict[str, Any] = Field(default_factory=dict)


TaskConfig = Annotated[
    ParityTaskConfig
    | DigitsTaskConfig
    | DatasetTaskConfig
    | MNISTTaskConfig
    | TimeSeriesTaskConfig
    | ForecastTaskConfig
    | ControlTaskConfig
    | FunctionTaskConfig
    | PythonTaskConfig,
    Field(discriminator="type"),
]
