"""Pydantic's validation errors as the config's messages: one line per problem, naming field, value and what is allowed."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from evo.config.run import RunConfig


def _allowed_keys(loc: tuple) -> list[str]:
    """Field names allowed at the parent of ``loc`` (for unknown-key errors)."""
    model: Any = RunConfig
    for part in loc[:-1]:
        if isinstance(model, type) and issubclass(model, BaseModel) and part in model.model_fields:
            model = model.model_fields[part].annotation
            continue
        # A discriminated union puts the tag value in the location.
        candidates = [m for m in union_members(model) if _tag_of(m) == part or (isinstance(_tag_of(m), tuple) and part in _tag_of(m))]
        if not candidates:
            return []
        model = candidates[0]
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(model.model_fields)
    return []


def union_members(annotation: Any) -> list[type]:
    """The section models of a (possibly nested) union annotation."""
    out: list[Any] = []
    for arg in get_args(annotation):
        out.extend(union_members(arg) if get_args(arg) else [arg])
    return [a for a in out if isinstance(a, type) and issubclass(a, BaseModel)]


def _tag_of(model: type[BaseModel]) -> Any:
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
    return any(_tag_of(m) == part or (isinstance(_tag_of(m), tuple) and part in _tag_of(m)) for m in union_members(member_annotation))
