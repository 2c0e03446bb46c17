"""``ffzero-lab runs export`` and ``ffzero-lab plot``: options and printing only.

The work is in :mod:`ffzero_lab.export` and :mod:`ffzero_lab.plots`. No ``from __future__
import annotations`` here: typer reads the commands' annotations, which name objects of
:mod:`ffzero_lab.cli` imported inside :func:`register`.
"""

from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import UserError
from .runstore import RunStore, resolve_runs_dir

RunRef = Annotated[str, typer.Argument(help="Run number or uid prefix.")]


def register(app: typer.Typer, runs_app: typer.Typer) -> None:
    """Add ``runs export`` to ``runs_app`` and ``plot`` to ``app``."""
    from .cli import DataDir, RunsDir, fail, out  # here: cli imports this module

    @runs_app.command("export")
    def runs_export(
        run: RunRef,
        fmt: Annotated[str, typer.Option("--format", help="csv (a folder), npz or netcdf.")],
        output: Annotated[
            Optional[Path], typer.Option("--output", "-o", help="Where [default: run-<id>/, run-<id>.npz, run-<id>.nc].")
        ] = None,
        runs_dir: RunsDir = None,
    ) -> None:
        """Export one run: its row, steps, epochs, measurements, arrays (and raw readings)."""
        from .export import export_run

        try:
            store = RunStore(resolve_runs_dir(runs_dir))
            try:
                path = export_run(store, store.find(run), fmt, output)
            finally:
                store.close()
        except UserError as exc:
            raise fail(exc) from None
        out.print(str(path), highlight=False, soft_wrap=True)

    @app.command("plot")
    def plot(
        run: RunRef,
        output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the PNG files.")] = Path("."),
        runs_dir: RunsDir = None,
        data_dir: DataDir = None,
    ) -> None:
        """Plot one run: loss, test accuracy per epoch, tap readings against prototypes (PNG)."""
        from .datasets import resolve_data_dir
        from .plots import write_plots

        try:
            store = RunStore(resolve_runs_dir(runs_dir))
            try:
                run_id = store.find(run)
                if output.exists() and not output.is_dir():
                    raise UserError("is a file; --output takes a folder for the PNG files", str(output))
                paths = write_plots(store, run_id, output, resolve_data_dir(data_dir))
            except OSError as exc:
                raise UserError(f"cannot write the plots: {exc.strerror or exc}", str(output)) from None
            finally:
                store.close()
        except UserError as exc:
            raise fail(exc) from None
        for path in paths:
            out.print(str(path), highlight=False, soft_wrap=True)
