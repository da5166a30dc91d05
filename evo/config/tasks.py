"""The ``[task]`` section: what the fitness measures (a dataset, a control environment, a series...)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

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


class MNISTTaskConfig(_SupervisedConfig):
    """MNIST-format idx files in a folder (as distributed, gzipped or not); the official test set is the test split."""

    type: Literal["mnist"]
    dir: str
    #: use only the first N training images (None: all)
    limit: Annotated[int, Field(ge=10)] | None = None


class TimeSeriesTaskConfig(Section):
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


class ForecastTaskConfig(Section):
    """One-step and free-run forecasting of a series from a window of its past, by any network (an LSTM, an MLP).

    The series and its washout | train | val | test split are the timeseries
    (echo-state) task's, so the two compare on equal terms.
    """

    type: Literal["forecast"]
    series: Literal["mackey_glass", "narma10", "file"] = "mackey_glass"
    path: str | None = None
    column: int | str | None = None
    key: str | None = None
    washout: Annotated[int, Field(ge=0)] = 200
    n_train: Annotated[int, Field(ge=10)] = 3000
    n_val: Annotated[int, Field(ge=10)] = 1000
    n_test: Annotated[int, Field(ge=10)] = 2000
    tau: Annotated[float, Field(gt=0.0)] = 17.0
    #: past values one sample holds (a recurrent network reads them one per step); at most washout + 1
    window: Annotated[int, Field(ge=1)] = 32
    fitness: Literal["log_nrmse", "nrmse"] = "log_nrmse"
    #: training windows per generation, drawn from the generation seed (None: all of them)
    batch_size: Annotated[int, Field(ge=1)] | None = None
    #: closed-loop horizon and start points of the free-run test figure (NRMSE84), as the timeseries task's
    horizon: Annotated[int, Field(ge=1)] = 84
    starts: Annotated[int, Field(ge=1)] = 20


class ControlTaskConfig(Section):
    """A gymnasium environment with a Box observation space."""

    type: Literal["control"]
    env_id: str
    episodes: Annotated[int, Field(ge=1, le=1000)] = 5
    max_steps: Annotated[int, Field(ge=1)] | None = None
    test_episodes: Annotated[int, Field(ge=1, le=100000)] = 100
    #: fresh episodes (their own seeds) that pick the genome to keep among candidates
    val_episodes: Annotated[int, Field(ge=1, le=100000)] = 20
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    #: observation indices the network sees (None: all); e.g. [0, 2] hides CartPole's velocities
    observe: list[Annotated[int, Field(ge=0)]] | None = None


TaskConfig = Annotated[
    ParityTaskConfig
    | DigitsTaskConfig
    | DatasetTaskConfig
    | MNISTTaskConfig
    | TimeSeriesTaskConfig
    | ForecastTaskConfig
    | ControlTaskConfig,
    Field(discriminator="type"),
]
