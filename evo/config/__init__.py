"""Run configuration: TOML in, a validated, typed, strict :class:`RunConfig` out.

All validation of user input lives here (scikit-learn style: one place). A
bad config raises :class:`ConfigError` whose message is one line per problem
naming the field, the value given and what is allowed; the CLI prints it and
exits with status 2 before anything is written.

Sections live in their own modules: ``networks``, ``tasks``, ``strategies``
(built from the strategies' parameter dataclasses), ``run`` (the whole run,
evaluator, backprop baseline); ``errors`` words pydantic's errors.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel, ValidationError

from evo.config.base import ConfigError, Section, expect_section
from evo.config.errors import format_validation_error, union_members
from evo.config.networks import (
    CNNConfig,
    CNNSearchConfig,
    ConvBlockConfig,
    ESNConfig,
    MLPConfig,
    NEATNetworkConfig,
    NetworkConfig,
    RNNConfig,
)
from evo.config.run import EvaluatorConfig, RunConfig, TrainConfig
from evo.config.strategies import STRATEGY_SECTIONS, StrategyConfig
from evo.config.tasks import TaskConfig

__all__ = [
    "CNNConfig",
    "CNNSearchConfig",
    "ConfigError",
    "ConvBlockConfig",
    "ESNConfig",
    "EvaluatorConfig",
    "MLPConfig",
    "NEATNetworkConfig",
    "NetworkConfig",
    "RNNConfig",
    "RunConfig",
    "STRATEGY_SECTIONS",
    "Section",
    "StrategyConfig",
    "TaskConfig",
    "TrainConfig",
    "apply_overrides",
    "expect_section",
    "field_bounds",
    "format_validation_error",
    "load_config",
    "parse_config",
    "read_toml",
]


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
    task = data.get("task")
    if isinstance(task, dict) and _names_user_code(task):
        # The config's own modules are imported from its folder first: recorded, so a resumed run finds them too.
        data.setdefault("code_dir", str(path.resolve().parent))
    return data


def _names_user_code(task: dict[str, Any]) -> bool:
    """Whether a [task] section names a user's module ("module:name" or modules to import)."""
    return any(key in task for key in ("callable", "class", "import")) or ":" in str(task.get("env_id", ""))


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


def field_bounds(path: str) -> tuple[float | None, float | None]:
    """The inclusive ``(lowest, highest)`` a number at ``path`` (e.g. ``"train.epochs"``) may take; None: unbounded.

    Through a union of sections (``strategy``) every member must agree, so the
    command line can use the config's ranges instead of a copy of them.
    """
    models: list[type[BaseModel]] = [RunConfig]
    *sections, name = path.split(".")
    for part in sections:
        models = [m for model in models for m in _members(model.model_fields[part].annotation)]
    found = {_bounds(model.model_fields[name].metadata) for model in models}
    if len(found) != 1:
        raise ValueError(f"{path}: the sections disagree on its range: {sorted(found, key=str)}")
    return found.pop()


def _members(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return union_members(annotation)


def _bounds(metadata: list) -> tuple[float | None, float | None]:
    low: float | None = None
    high: float | None = None
    for item in metadata:
        if isinstance(item, Ge):
            low = _number(item.ge)
        elif isinstance(item, Gt):
            low = item.gt + 1 if isinstance(item.gt, int) else _number(item.gt)
        elif isinstance(item, Le):
            high = _number(item.le)
        elif isinstance(item, Lt):
            high = item.lt - 1 if isinstance(item.lt, int) else _number(item.lt)
    return low, high


def _number(bound: object) -> float:
    """A numeric bound of a config field (annotated-types allows any comparable; ours are all numbers)."""
    if not isinstance(bound, (int, float)):
        raise TypeError(f"config field bound {bound!r} is not a number")
    return bound
