"""``ffzero-lab sweep``: options, progress and printing only.

The work is in :mod:`ffzero_lab.sweep.grid` (file, grid, store, tables), :mod:`ffzero_lab.sweep.cluster`
(execution) and :mod:`ffzero_lab.sweep.plots` (figures).
"""

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

from ffzero_lab.cli.common import DataDir, Json, Quiet, Sets, err, fail, out
from ffzero_lab.core.errors import UserError


def register(app: typer.Typer) -> None:
    """Add ``sweep`` to ``app``."""

    @app.command("sweep")
    def sweep(
        sweep_file: Annotated[Path, typer.Argument(help="Sweep YAML file: base protocol, fixed overrides, grid.")],
        scheduler: Annotated[
            Optional[str], typer.Option("--scheduler", help="Use the Dask cluster of this scheduler, e.g. tcp://host:8786.")
        ] = None,
        workers: Annotated[
            Optional[int],
            typer.Option("--workers", "-n", help="Local worker processes.", show_default="CPU count"),
        ] = None,
        output: Annotated[
            Optional[Path],
            typer.Option("--output", "-o", metavar="DIR", help="Results folder.",
                         show_default="sweeps/<sweep file name>"),
        ] = None,
        set_: Sets = None,
        data_dir: DataDir = None,
        quiet: Quiet = False,
        as_json: Json = False,
    ) -> None:
        """Train every cell of a grid over protocol fields on Dask; resumable; table and figures.

        Finished cells are stored as they finish and skipped when the same sweep runs again.
        Exit code 1 if a cell failed (it is in the table with its error), 2 for bad input.
        """
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from ffzero_lab.sweep.cluster import dask_client, run_cells
        from ffzero_lab.sweep.grid import (
            ResultStore,
            expand,
            load_sweep,
            plan,
            write_manifest,
            write_outputs,
        )

        n_workers = workers if workers is not None else (os.cpu_count() or 1)
        try:
            if n_workers < 1:
                raise UserError("need at least 1 worker", "--workers")
            spec = load_sweep(sweep_file, set_ or [])
            cells = expand(spec)
            store = ResultStore(output if output is not None else Path("sweeps") / sweep_file.stem)
            write_manifest(spec, cells, store.folder)
        except UserError as exc:
            raise fail(exc) from None
        except OSError as exc:
            raise fail(UserError(f"cannot write: {exc.strerror or exc}", str(output))) from None
        todo = plan(cells, store)
        where = f"the cluster at {scheduler}" if scheduler else f"{n_workers} local worker{'s' * (n_workers > 1)}"
        retried = f" ({todo.retried} failed before)" if todo.retried else ""
        err.print(f"sweep [bold]{spec.name}[/]: {len(cells)} cells; skipped {len(todo.done)} finished, "
                  f"{len(todo.todo)} to run{retried}" + (f" on {where}" if todo.todo else ""), highlight=False)
        failed = 0
        if todo.todo:
            columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       TextColumn("{task.fields[note]}")]
            try:
                with dask_client(scheduler, n_workers) as client, \
                        Progress(*columns, console=err, disable=quiet) as progress:
                    task = progress.add_task("cells", total=len(todo.todo), note="")

                    def on_record(cell, record):  # noqa: ANN001, ANN202
                        nonlocal failed
                        if record["status"] != "complete":
                            failed += 1
                            progress.console.print(f"[red]failed[/] {cell.label}: {record['error']}",
                                                   highlight=False, soft_wrap=True)
                        progress.update(task, advance=1, note=f"{failed} failed" if failed else "")
                        if not quiet and not err.is_terminal:  # a log file: a plain line per cell
                            done = int(progress.tasks[0].completed)
                            err.print(f"{datetime.now():%Y-%m-%d %H:%M:%S} cell {done}/{len(todo.todo)} "
                                      f"{cell.label}: {record['status']}", highlight=False, markup=False,
                                      soft_wrap=True)

                    run_cells(client, todo.todo, store, str(data_dir) if data_dir else None, on_record)
            except UserError as exc:
                raise fail(exc) from None
            except KeyboardInterrupt:
                err.print(f"[yellow]interrupted[/]: finished cells are stored in {store.folder}; "
                          "the same command runs the rest", highlight=False)
                raise typer.Exit(code=130) from None
        try:
            table, paths = write_outputs(spec, cells, store)
        except UserError as exc:
            raise fail(exc) from None
        failed_total = sum(r["status"] != "complete" for r in table.rows)
        console = err if as_json else out
        if not quiet or not as_json:
            from rich.markdown import Markdown

            from ffzero_lab.sweep.grid import markdown

            console.print(Markdown(markdown(table)))
        for path in paths:
            console.print(str(path), highlight=False, soft_wrap=True)
        if as_json:
            summary = {"name": spec.name, "output": str(store.folder), "cells": len(cells), "skipped": len(todo.done),
                       "ran": len(todo.todo), "failed": failed_total, "files": [str(p) for p in paths]}
            sys.stdout.write(json.dumps(summary) + "\n")
        if failed_total:
            err.print(f"[bold red]{failed_total} cell{'s' * (failed_total > 1)} failed[/] (see the table); "
                      "running the sweep again retries them", highlight=False)
            raise typer.Exit(code=1)
