"""Errors a user can act on. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


class UserError(Exception):
    """Bad input: a protocol, a data set, a path. Never reaches a device.

    Args:
        message: what is wrong and, where possible, what to do.
        source: the file (or ``--set``, or an environment variable) it came from.
        field: dotted field path inside the source, e.g. ``train.epochs``.
    """

    def __init__(self, message: str, source: str | None = None, field: str | None = None) -> None:
        self.message = message
        self.source = source
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.source, self.field) if part)
        return f"{where}: {self.message}" if where else self.message


class DataError(UserError):
    """A data set is missing or malformed."""


class ConfigError(UserError):
    """A protocol or configuration file is invalid."""


def format_location(loc: Sequence[Any]) -> str:
    """pydantic's error location as a dotted path: ``('train', 'epochs')`` -> ``train.epochs``."""
    parts: list[str] = []
    for item in loc:
        parts.append(f"[{item}]" if isinstance(item, int) else ("." if parts else "") + str(item))
    return "".join(parts)


def validation_error(exc: ValidationError, source: str, prefix: str = "") -> ConfigError:
    """The first error of a pydantic ValidationError as a ConfigError naming file and field."""
    first = exc.errors()[0]
    field = format_location(first["loc"])
    if prefix:
        field = f"{prefix}.{field}" if field else prefix
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    elif "input" in first and not isinstance(first["input"], dict | list):
        message = f"{message} (got {first['input']!r})"
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more error{'s' if more > 1 else ''})"
    return ConfigError(message, source, field)
