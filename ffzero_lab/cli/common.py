"""What every command shares: the consoles, the one-line failure, the common options.

A user error is one line on stderr and exit code 2 (:func:`fail`); a traceback means a bug.
"""

from __future__ import annotations

import signal
import sys
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from ffzero_lab.core.errors import UserError

# Piped output (a log file, CI) gets a wide console rather than rich's 80-column default.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def software_version() -> str:
    """The installed ffzero-lab version, or ``unknown``."""
    try:
        return version("ffzero-lab")
    except PackageNotFoundError:
        return "unknown"


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
    Optional[Path], typer.Option("--runs-dir", help="Run store folder [default: $FFZERO_RUNS_DIR or ./runs].")
]
RunRef = Annotated[str, typer.Argument(help="Run number or uid prefix.")]
ProtocolArg = Annotated[Path, typer.Argument(help="Protocol YAML file.")]
Sets = Annotated[
    Optional[list[str]], typer.Option("--set", help="Override a field, e.g. --set train.epochs=3 (repeatable).")
]
Json = Annotated[bool, typer.Option("--json", help="Print a JSON summary as the last line of stdout.")]
DataDir = Annotated[
    Optional[Path], typer.Option("--data-dir", help="Folder with IDX data sets [default: $FFZERO_DATA_DIR].")
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]
Publish = Annotated[
    Optional[str],
    typer.Option("--publish", help="Publish the run's documents on a ZMQ PUB socket, e.g. tcp://127.0.0.1:5577."),
]
WaitSubscribers = Annotated[
    int, typer.Option("--wait-subscribers", help="With --publish: wait (5 s at most) for this many monitors first.")
]
Keys = Annotated[
    Optional[Path], typer.Option("--keys", help="With --rig: folder with client.key_secret and server.key.")
]
Instruments = Annotated[Path, typer.Option("--instruments", "-i", help="The rig's instruments file.")]
