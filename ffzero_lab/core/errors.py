"""Errors a user can act on. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations


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
