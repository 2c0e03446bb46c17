"""What every command shares: the consoles, the one-line failure, the common options.

A user error is one line on stderr and exit code 2 (:func:`fail`); a traceback means a bug.
"""

from __future__ import annotations

import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Optional, get_args, get_origin

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup, TyperOption

from ffzero_lab.core.errors import UserError
from ffzero_lab.core.provenance import software_commit as software_commit  # re-exported for the commands
from ffzero_lab.core.provenance import software_version as software_version

# Piped output (a log file, CI) gets a wide console rather than rich's 80-column default.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)




#: Metavars by annotation, as click writes them.
_METAVARS: dict[Any, str] = {Path: "PATH", int: "INTEGER", float: "FLOAT", str: "TEXT", bool: "BOOLEAN"}


def plain_metavar(param: Any) -> str | None:
    """A click-style metavar (``PATH``, ``INTEGER``, ``[a|b]``) for an option of typer's that has
    none: from its annotation (typer >= 0.29), else from its click-style type's name."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None:
        name = getattr(getattr(param, "type", None), "name", None)
        return name.upper() if isinstance(name, str) and name else None
    choices = getattr(descriptor, "choices", None)
    if choices:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in choices) + "]"
    annotation = descriptor.annotation
    if get_origin(annotation) is list:
        annotation = get_args(annotation)[0]
    return _METAVARS.get(annotation, str(getattr(annotation, "__name__", annotation)).upper())


class PlainHelpGroup(TyperGroup):
    """typer's command group whose commands' options show plain metavars in ``--help``
    (``--runs-dir DIR``, ``--points INTEGER``) instead of typer's ``<path>``, ``<int range>``; a
    flag shows none. An option's own ``metavar=`` is kept."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain_metavars(self)


def _plain_metavars(command: Any) -> None:
    for param in getattr(command, "params", []):
        if param.metavar is None and not getattr(param, "is_flag", False) and isinstance(param, TyperOption):
            param.metavar = plain_metavar(param)
    for sub in getattr(command, "commands", {}).values():
        _plain_metavars(sub)


def command_group(**kwargs: Any) -> typer.Typer:
    """A typer app (or command group) for ``ffzero-lab``: plain help text (no rich markup, so a
    literal ``[`` stays and ``[default: ...]`` shows), plain metavars (:class:`PlainHelpGroup`)."""
    return typer.Typer(cls=PlainHelpGroup, rich_markup_mode=None, **kwargs)


def fail(exc: UserError) -> typer.Exit:
    """Print ``exc`` as one line on stderr; the exit (code 2) to raise."""
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def report(message: str) -> None:
    """An error line on stderr that does not end the command (e.g. a failed safe state)."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def interrupted(exc: KeyboardInterrupt, what: str) -> typer.Exit:
    """Print that the command was stopped (by Ctrl-C or the signal ``exc`` names) and what
    became of its work; the exit to raise, code 128 + the signal's number (130 for Ctrl-C)."""
    name = getattr(exc, "signal_name", "SIGINT")
    err.print(f"[yellow]interrupted[/] ({name}): {what}", highlight=False, soft_wrap=True)
    return typer.Exit(code=128 + int(getattr(signal, name, signal.SIGINT)))


def when(ts: float | None) -> str:
    """A Unix time as local ``YYYY-MM-DD HH:MM:SS`` (``-`` for none)."""
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


RunsDir = Annotated[
    Optional[Path],
    typer.Option("--runs-dir", metavar="DIR", help="Run store folder.", show_default="$FFZERO_RUNS_DIR or ./runs"),
]
RunRef = Annotated[str, typer.Argument(help="Run number or uid prefix.")]
ProtocolArg = Annotated[Path, typer.Argument(help="Protocol YAML file.")]
Sets = Annotated[
    Optional[list[str]],
    typer.Option("--set", metavar="FIELD=VALUE", help="Override a field, e.g. --set train.epochs=3 (repeatable)."),
]
Json = Annotated[bool, typer.Option("--json", help="Print a JSON summary as the last line of stdout.")]
DataDir = Annotated[
    Optional[Path],
    typer.Option("--data-dir", metavar="DIR", help="Folder with IDX data sets.", show_default="$FFZERO_DATA_DIR"),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]
Publish = Annotated[
    Optional[str],
    typer.Option("--publish", metavar="ADDRESS",
                 help="Publish the run's documents on a ZMQ PUB socket, e.g. tcp://127.0.0.1:5577."),
]
WaitSubscribers = Annotated[
    int, typer.Option("--wait-subscribers", help="With --publish: wait (5 s at most) for this many monitors first.")
]
Keys = Annotated[
    Optional[Path],
    typer.Option("--keys", metavar="DIR", help="With --rig: folder with client.key_secret and server.key."),
]
Instruments = Annotated[Path, typer.Option("--instruments", "-i", metavar="FILE", help="The rig's instruments file.")]
