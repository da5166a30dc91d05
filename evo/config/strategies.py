"""The ``[strategy]`` section, built from each registered strategy's parameter dataclass.

A strategy's section is its ``type``, ``population`` (default
``default_population``, range :data:`evo.strategies.base.POPULATION`) and one
optional field per parameter of its ``params_type``, with that dataclass's type
and range; unset means "the strategy's default". Defaults and ranges are thus
written once, in the strategy's module. A strategy whose section also carries
settings for something else (``cnn_arch``'s backprop budget, read by the task)
names a base section in :data:`SECTION_BASES`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, Union

from pydantic import Field, create_model

from evo.config.base import Positive, Section
from evo.strategies import STRATEGIES, Strategy
from evo.strategies.base import POPULATION
from evo.strategies.params import config_fields, field_range, field_types, split_optional

Population = Annotated[int, Field(**POPULATION.constraints())]


class ArchitectureTrainingSettings(Section):
    """``cnn_arch``'s settings for ``mode = "train_weights"``: the backprop budget inside each fitness evaluation."""

    train_epochs: Annotated[int, Field(ge=1, le=1000)] = 2
    train_batch_size: Annotated[int, Field(ge=1)] = 64
    train_lr: Positive = 0.003
    train_max_samples: Annotated[int, Field(ge=10)] | None = None


#: Sections whose fields a strategy's section adds to its parameters (settings read by others than the strategy).
SECTION_BASES: dict[str, type[Section]] = {"cnn_arch": ArchitectureTrainingSettings}


def strategy_section(strategy: type[Strategy]) -> type[Section]:
    """The config section of a strategy with a ``params_type``: type, population, its parameters (unset: default)."""
    params_type = strategy.params_type
    assert params_type is not None, strategy
    types = field_types(params_type)
    fields: dict = {
        "type": (Literal[strategy.name], ...),
        "population": (Population, strategy.default_population),
    }
    for f in config_fields(params_type):
        annotation, _ = split_optional(types[f.name])
        if annotation in (int, float):
            annotation = Annotated[annotation, Field(**field_range(f).constraints())]
        doc = f.metadata.get("doc", "")
        unset = "" if f.default is None else f" (unset: {f.default!r})"  # a None default's doc says what it computes
        fields[f.name] = (annotation | None, Field(None, description=f"{doc}{unset}".lstrip()))
    return create_model(
        f"{strategy.__name__}Config",
        __base__=SECTION_BASES.get(strategy.name, Section),
        __doc__=(strategy.__doc__ or "").strip().splitlines()[0] if strategy.__doc__ else None,
        __module__=__name__,
        **fields,
    )


#: Every registered strategy's section, by its type.
STRATEGY_SECTIONS: dict[str, type[Section]] = {name: strategy_section(cls) for name, cls in STRATEGIES.items()}
if TYPE_CHECKING:

    class StrategyConfig(Section):
        """What every strategy section has, as the type checker sees it (at run time: the union below)."""

        type: str
        population: int

else:
    # Union over a runtime tuple: the X | Y spelling cannot be built from a tuple.
    StrategyConfig = Annotated[Union[tuple(STRATEGY_SECTIONS.values())], Field(discriminator="type")]  # noqa: UP007


def section_only_fields(section: type[Section]) -> set[str]:
    """Fields of a strategy section that are not the strategy's own parameters (type, population, settings for others)."""
    base = next((b for b in SECTION_BASES.values() if issubclass(section, b)), None)
    return {"type", "population", *(base.model_fields if base is not None else ())}
