"""What every config section shares: strict, frozen, no unknown keys; and the config's error type."""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class ConfigError(ValueError):
    """A config that cannot be run; the message is ready to print."""


class Section(BaseModel):
    """A config section: unknown keys refused, values immutable, types strict.

    Strict means a value must already have its type: ``population = "16"`` is
    refused, not converted. The one widening allowed is an integer where a
    float is expected (``sigma = 1``). A tuple field reads a TOML array: mark
    it ``Field(strict=False)``; its items stay strict.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


Positive = Annotated[float, Field(gt=0.0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]

S = TypeVar("S", bound=Section)


def expect_section(section: Section, kind: type[S], where: str) -> S:
    """``section`` as the section type ``kind``, which the config's rules guarantee where this is called.

    The typed way to read one member of a section union (``network``, ``task``,
    ``strategy``) once a pairing rule or the caller's dispatch has fixed its
    type; a TypeError naming ``where`` if that guarantee is ever broken.
    """
    if not isinstance(section, kind):
        raise TypeError(f"{where}: expected section type {kind.__name__}, got {type(section).__name__}")
    return section
