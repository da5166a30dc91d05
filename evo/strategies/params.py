"""Strategy parameters: one frozen dataclass per strategy holds each parameter's type, default and range.

A strategy declares its parameters once::

    @dataclass(frozen=True)
    class GAParams:
        sigma: float = param(0.1, gt=0.0, doc="std of the Gaussian mutation")
        crossover: Literal["blend", "sbx"] = "blend"
        elite: int = param(2, ge=0)

and names the class in ``Strategy.params_type``. :func:`check_params` (called
by the base class) turns the keyword arguments a strategy was given into an
instance, refusing unknown names, wrong types and values out of range with a
ValueError naming the strategy, the parameter, the value and what is allowed.
The run config (:mod:`evo.config`) builds its strategy sections from the same
dataclasses, so a default or a range is written in exactly one place.

Supported field types: ``float`` (ints accepted), ``int``, ``bool``,
``Literal[...]`` of strings, ``X | None`` (None then means "the strategy
works the value out itself", e.g. from ``n_params``), and any other type,
which is passed through unchecked for the strategy to check (e.g. a network
spec). ``param(..., config=False)`` marks a parameter the run supplies from
its network rather than the user (it is left out of the config section).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, Union, get_args, get_origin

import numpy as np

#: The bounds of a probability, for :func:`param`: ``param(0.5, **PROBABILITY, doc=...)``.
PROBABILITY: Bounds = {"ge": 0.0, "le": 1.0}


class Bounds(TypedDict, total=False):
    """Bounds of a number as keyword arguments of :func:`param` and ``pydantic.Field``."""

    ge: float
    gt: float
    le: float
    lt: float


@dataclass(frozen=True)
class Range:
    """An allowed interval of a number; bounds in pydantic's words (``ge``/``gt``/``le``/``lt``), None for unbounded."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def contains(self, x: float) -> bool:
        """Whether ``x`` (finite) lies inside."""
        return not (
            (self.ge is not None and x < self.ge)
            or (self.gt is not None and x <= self.gt)
            or (self.le is not None and x > self.le)
            or (self.lt is not None and x >= self.lt)
        )

    def describe(self) -> str:
        """The range in words, e.g. ``>= 0 and <= 1``; empty when unbounded."""
        parts = [f"{op} {_number_text(v)}" for op, v in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt)) if v is not None]
        return " and ".join(parts)

    def constraints(self) -> Bounds:
        """The bounds as keyword arguments of ``pydantic.Field``."""
        bounds: Bounds = {}
        if self.ge is not None:
            bounds["ge"] = self.ge
        if self.gt is not None:
            bounds["gt"] = self.gt
        if self.le is not None:
            bounds["le"] = self.le
        if self.lt is not None:
            bounds["lt"] = self.lt
        return bounds


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


def param(
    default: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    doc: str = "",
    config: bool = True,
) -> Any:
    """A parameter field: its default, its range, a one-line description, and whether the run config may set it."""
    return dataclasses.field(default=default, metadata={"range": Range(ge, gt, le, lt), "doc": doc, "config": config})


def field_range(f: dataclasses.Field) -> Range:
    """The declared range of a parameter field (unbounded when it declares none)."""
    return f.metadata.get("range", Range())


def field_types(params_type: type) -> dict[str, Any]:
    """The resolved type of each field of a parameter dataclass."""
    hints = typing.get_type_hints(params_type)
    return {f.name: hints[f.name] for f in dataclasses.fields(params_type)}


def split_optional(annotation: Any) -> tuple[Any, bool]:
    """``(X, True)`` for ``X | None``, else ``(annotation, False)``."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(args) < len(get_args(annotation)):
            return args[0], True
    return annotation, False


# ------------------------------------------------------------------ checks
def check_number(
    owner: str, name: str, value: Any, low: float = -math.inf, high: float = math.inf, low_open: bool = False, high_open: bool = False
) -> float:
    """``value`` as a finite float inside the bounds, or a ValueError naming the strategy, the parameter and the range."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}: {name} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: {name} must be a number, got {value!r}") from None
    too_low = x <= low if low_open else x < low
    too_high = x >= high if high_open else x > high
    if not math.isfinite(x) or too_low or too_high:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{owner}: {name} must be finite and in {interval}, got {value!r}")
    return x


def check_integer(owner: str, name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``, or a ValueError naming the strategy and the parameter."""
    is_integer = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not is_integer or value < low or (high is not None and value > high):
        limit = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{owner}: {name} must be an integer {limit}, got {value!r}")
    return int(value)


def check_value(owner: str, name: str, annotation: Any, allowed: Range, value: Any) -> Any:
    """One parameter value checked against its declared type and range; ValueError naming it otherwise."""
    annotation, optional = split_optional(annotation)
    if value is None and optional:
        return None
    if annotation is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{owner}: {name} must be true or false, got {value!r}")
        return bool(value)
    if annotation is int or annotation is float:
        kind = "an integer" if annotation is int else "a number"
        accepted = (int, np.integer) if annotation is int else (int, float, np.integer, np.floating)  # an int is a number
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, accepted):
            raise ValueError(f"{owner}: {name} must be {kind}, got {value!r}")
        x = int(value) if annotation is int else float(value)
        if not math.isfinite(x) or not allowed.contains(x):
            where = allowed.describe()
            requirement = ("finite" if annotation is float else kind) + (f" and {where}" if where else "")
            raise ValueError(f"{owner}: {name} must be {requirement}, got {value!r}")
        return x
    if get_origin(annotation) is Literal:
        choices = list(get_args(annotation))
        if isinstance(value, (bool, np.bool_)) or value not in choices:
            raise ValueError(f"{owner}: {name} must be one of {choices}, got {value!r}")
        return value
    return value  # a type the strategy checks itself (e.g. a network spec)


def check_params(owner: str, params_type: type, given: dict[str, Any]) -> Any:
    """An instance of ``params_type`` from keyword arguments: defaults filled in, every value checked."""
    fields = {f.name: f for f in dataclasses.fields(params_type)}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise ValueError(f"{owner}: unknown parameter(s) {unknown}; allowed: {', '.join(fields)}")
    hints = field_types(params_type)
    values = {name: check_value(owner, name, hints[name], field_range(f), given.get(name, f.default)) for name, f in fields.items()}
    return params_type(**values)


def config_fields(params_type: type) -> list[dataclasses.Field]:
    """The fields a run config may set (those not supplied by the run from its network)."""
    return [f for f in dataclasses.fields(params_type) if f.metadata.get("config", True)]
