"""The ``ffzero-lab`` command line: one app, its command groups registered from their modules.

Every command turns bad input into one line on stderr and exit code 2; a traceback means a bug.

| module | commands |
| --- | --- |
| :mod:`.train` | ``dry-run``, ``run``, ``resume`` |
| :mod:`.serve` | ``serve``, ``keys``, ``monitor`` |
| :mod:`.runs` | ``runs list/show/export``, ``plot`` |
| :mod:`.calibrate` | ``calibrate`` |
| :mod:`.instruments` | ``instruments check/schema/emulate/emulated-rig`` |
| :mod:`.sweep` | ``sweep`` |
"""

from __future__ import annotations

from typing import Annotated

import typer

from ffzero_lab.cli import calibrate, runs, serve, sweep, train
from ffzero_lab.cli.common import command_group
from ffzero_lab.cli.instruments import instruments_app

app = command_group(
    name="ffzero-lab",
    help="Hardware-in-the-loop FFzero training of physical neural networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from ffzero_lab import __version__

        typer.echo(f"ffzero-lab {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Hardware-in-the-loop FFzero training of physical neural networks."""


train.register(app)
serve.register(app)
runs.register(app)
app.add_typer(instruments_app, name="instruments")
calibrate.register(app)
sweep.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
