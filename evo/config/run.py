"""The whole run's config: :class:`RunConfig`, with its evaluator and backprop-baseline sections."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from evo.config.base import Positive, Section
from evo.config.networks import MLPConfig, NetworkConfig
from evo.config.strategies import StrategyConfig, section_only_fields
from evo.config.tasks import TaskConfig

#: task types whose genome is the solution (no network)
SOLUTION_TASKS = ("function",)


class EvaluatorConfig(Section):
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
class TrainConfig(Section):
    """The gradient-descent baseline (`evo train`, `evo compare`) on the same network and split.

    Labelled tasks train by backprop (optimizer .. clip_norm); control tasks by
    REINFORCE (:mod:`evo.baselines.policy_gradient`), which reads optimizer, lr,
    momentum, weight_decay, clip_norm and the policy-gradient fields below
    (batch_size, epochs, dropout and patience are backprop's only).
    """

    optimizer: Literal["adam", "sgd"] = "adam"
    #: None: the method's default (backprop: Adam 1e-3, SGD 1e-2; policy gradient: Adam 3e-2, SGD 1e-2)
    lr: Positive | None = None
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    batch_size: Annotated[int, Field(ge=1)] = 32
    epochs: Annotated[int, Field(ge=1, le=1_000_000)] = 200
    #: L2 penalty on weights (not biases)
    weight_decay: Annotated[float, Field(ge=0.0)] = 1e-3
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    #: epochs without a better validation loss before stopping (restoring the best weights); 0 disables
    patience: Annotated[int, Field(ge=0)] = 20
    #: rescale each update's gradient to this L2 norm when it is longer (recurrent networks); None: no clipping
    clip_norm: Positive | None = None
    # -- policy gradient (REINFORCE, control tasks)
    #: policy-gradient updates (each on episodes_per_update fresh episodes)
    iterations: Annotated[int, Field(ge=1, le=1_000_000)] = 200
    #: episodes sampled with the current policy for one update
    episodes_per_update: Annotated[int, Field(ge=1, le=100_000)] = 16
    #: discount of the reward-to-go
    gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.99
    #: weight of the policy's mean entropy added to the objective (exploration)
    entropy_bonus: Annotated[float, Field(ge=0.0)] = 0.0
    #: step cap of a training episode; None: the task's max_steps
    max_episode_steps: Annotated[int, Field(ge=1)] | None = None
    #: Box actions: the Gaussian policy's starting standard deviation (its log is learned)
    init_std: Positive = 0.5


# ---------------------------------------------------------------------- run
class RunConfig(Section):
    """A whole evolution run."""

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")] = "run"
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    generations: Annotated[int, Field(ge=1, le=10_000_000)] = 100
    #: stop early once the best fitness of a generation reaches this
    target_fitness: float | None = None
    #: stop early after this many wall seconds
    max_seconds: Annotated[float, Field(gt=0.0)] | None = None
    #: stop after the generation that reaches this many fitness evaluations (a budget, as scipy's maxfev)
    max_evaluations: Annotated[int, Field(ge=1)] | None = None
    checkpoint_every: Annotated[int, Field(ge=1)] = 10
    #: how often (generations) the strategy's best genome is scored on the validation split
    validate_every: Annotated[int, Field(ge=1)] = 10
    #: standard deviation scale of the starting genome (network's He/Glorot init); 0 starts at zero
    init_scale: Annotated[float, Field(ge=0.0)] = 1.0
    out: str = "runs"
    #: folder searched first for the config's own code ("module:name" references); set to the config file's folder when read
    code_dir: str | None = None
    network: NetworkConfig = Field(default_factory=lambda: MLPConfig(type="mlp"))
    task: TaskConfig
    strategy: StrategyConfig
    evaluator: EvaluatorConfig = Field(default_factory=EvaluatorConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    def strategy_params(self) -> dict[str, Any]:
        """The strategy's own parameters that the config sets (others keep their defaults)."""
        return self.strategy.model_dump(exclude=section_only_fields(type(self.strategy)), exclude_none=True)

    @model_validator(mode="before")
    @classmethod
    def _no_network_for_solutions(cls, data: Any) -> Any:
        """A function task's genome is the solution: a [network] section would be ignored silently, so it is refused."""
        task = data.get("task") if isinstance(data, dict) else None
        if isinstance(task, dict) and task.get("type") in SOLUTION_TASKS and "network" in data:
            raise ValueError(f"network: task.type = {data['task']['type']!r} evolves the solution itself; remove the [network] section")
        return data

    @model_validator(mode="after")
    def _pairings(self) -> RunConfig:
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
        """Plain dict of every resolved value (None dropped, so it writes as TOML; no network for a function task)."""
        # By alias: the [task] keys a user writes (`import`, `class`) are Python keywords, stored under other names.
        return self.model_dump(
            mode="json", exclude_none=True, by_alias=True, exclude={"network"} if self.task.type in SOLUTION_TASKS else None
        )
