"""``ffzero-lab runs list|show|export`` and ``ffzero-lab plot``: options and printing only.

The work is in :mod:`ffzero_lab.store.runstore`, :mod:`ffzero_lab.store.export` and
:mod:`ffzero_lab.store.plots`.
"""

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ffzero_lab.cli.common import DataDir, RunRef, RunsDir, command_group, fail, out, when
from ffzero_lab.core.errors import UserError
from ffzero_lab.store.runstore import RunStore, resolve_runs_dir

runs_app = command_group(help="Recorded runs.", no_args_is_help=True)


@runs_app.command("list")
def runs_list(
    runs_dir: RunsDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """List recorded runs."""
    try:
        store = RunStore(resolve_runs_dir(runs_dir))
    except UserError as exc:
        raise fail(exc) from None
    runs = store.list_runs()
    store.close()
    if as_json:
        sys.stdout.write(json.dumps({"runs": [r.to_json() for r in runs]}) + "\n")
        return
    table = Table(title=f"runs in {store.path}")
    for col in ("id", "uid", "name", "method", "device", "kind", "status", "started", "test acc.", "evaluations",
                "wall s"):
        table.add_column(col)
    for r in runs:
        table.add_row(str(r.id), r.uid[:8], r.name or "-", r.method or "-", r.device or "-", r.kind, r.status,
                      when(r.started_at), f"{r.test_accuracy:.4f}" if r.test_accuracy is not None else "-",
                      f"{r.evaluations:,}" if r.evaluations else "-",
                      f"{r.wall_s:.1f}" if r.wall_s else "-")
    out.print(table)


@runs_app.command("show")
def runs_show(
    run: Annotated[str, typer.Argument(help="Run number or uid prefix.")],
    runs_dir: RunsDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Show one run: where it came from (protocol, overrides, device, instruments, calibration,
    software), its summary, per-epoch metrics and stored arrays."""
    try:
        store = RunStore(resolve_runs_dir(runs_dir))
        run_id = store.find(run)
    except UserError as exc:
        raise fail(exc) from None
    summary, epochs, row = store.summary(run_id), store.epochs(run_id), store.run_row(run_id)
    protocol, arrays = store.protocol(run_id), store.array_names(run_id)
    instrument_s = store.instrument_time_s(run_id)
    store.close()
    device = json.loads(row["device_json"]) if row.get("device_json") else None
    overrides = json.loads(row["overrides_json"]) if row.get("overrides_json") else None
    if as_json:
        doc = {**summary.to_json(), "protocol_path": row["protocol_path"], "overrides": overrides,
               "device_description": device, "software_version": row["software_version"],
               "git_commit": row.get("git_commit"), "instrument_s": instrument_s, "protocol": protocol,
               "epochs": epochs, "arrays": arrays}
        sys.stdout.write(json.dumps(doc) + "\n")
        return
    for line in provenance(summary, row, device, overrides):
        out.print(line, highlight=False, soft_wrap=True, markup=False)
    if instrument_s is not None:
        wall = f"{summary.wall_s:.1f} s" if summary.wall_s else "-"
        out.print(f"time: wall {wall}, instruments {instrument_s:.3f} s (settles and clocked samples: what the "
                  "bench itself spent)", highlight=False)
    if summary.test_accuracy is not None:
        out.print(f"test accuracy {summary.test_accuracy:.4f}  per layer {summary.layer_accuracy}")
    table = Table(title="epochs")
    for col in ("layer", "epoch", "loss", "test acc.", "eval/s"):
        table.add_column(col, justify="right")
    for e in epochs:
        table.add_row(str(e["layer"]), str(e["epoch"]), f"{e['loss']:.4f}",
                      f"{e['test_accuracy']:.4f}" if e["test_accuracy"] is not None else "-",
                      f"{e['evaluations_per_s']:,.0f}" if e["evaluations_per_s"] else "-")
    out.print(table)
    out.print("arrays: " + ", ".join(arrays))


def provenance(summary: Any, row: dict[str, Any], device: dict[str, Any] | None,
               overrides: list[str] | None) -> list[str]:
    """The lines of ``runs show`` that say what a run was and where it came from ("not recorded"
    for what a store of an older ffzero-lab did not keep)."""
    missing = "not recorded"
    lines = [f"run {summary.id} {summary.uid}  {summary.kind}  status {summary.status}",
             f"started {when(summary.started_at)}  stopped {when(summary.stopped_at)}"
             + (f"  resumed {summary.resumes}x" if summary.resumes else ""),
             f"method {summary.method or missing}  device {summary.device or missing}",
             f"protocol {row.get('protocol_path') or missing}  overrides "
             + (missing if overrides is None else " ".join(overrides) or "none")]
    described = (device or {}).get("served") or device or {}
    identities = described.get("identities")
    if identities:
        lines.append("instruments " + "; ".join(f"{name}: {identity}" for name, identity in identities.items()))
    if described.get("calibration"):
        digest = described.get("calibration_sha256")
        lines.append(f"calibration {described['calibration']}  sha256 {digest or missing}")
    lines.append(f"software ffzero-lab {row.get('software_version') or missing}  "
                 f"git {row.get('git_commit') or missing}")
    return lines


def register(app: typer.Typer) -> None:
    """Add ``runs`` (list, show, export) and ``plot`` to ``app``."""
    app.add_typer(runs_app, name="runs")

    @runs_app.command("export")
    def runs_export(
        run: RunRef,
        fmt: Annotated[str, typer.Option("--format", help="csv (a folder), npz or netcdf.")],
        output: Annotated[
            Optional[Path],
            typer.Option("--output", "-o",
                         help="Where [default: <runs dir>/exports/run-<id>/, run-<id>.npz, run-<id>.nc]."),
        ] = None,
        runs_dir: RunsDir = None,
    ) -> None:
        """Export one run: its row, steps, epochs, measurements, arrays (and raw readings)."""
        from ffzero_lab.store.export import export_run

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
        output: Annotated[
            Path, typer.Option("--output", "-o", metavar="DIR", help="Folder for the files.")
        ] = Path("."),
        fmt: Annotated[str, typer.Option("--format", metavar="png|svg|pdf", help="File format.")] = "png",
        dpi: Annotated[int, typer.Option("--dpi", help="Dots per inch (PNG; images in SVG and PDF).",
                                         min=10, max=2400)] = 120,
        runs_dir: RunsDir = None,
        data_dir: DataDir = None,
    ) -> None:
        """Plot one run: loss, test accuracy per epoch, tap readings against prototypes; titled with
        the run's method, K, eps and lr."""
        from ffzero_lab.data.datasets import resolve_data_dir
        from ffzero_lab.store.plots import PLOT_FORMATS, write_plots

        try:
            if fmt not in PLOT_FORMATS:
                raise UserError(f"one of {', '.join(PLOT_FORMATS)}, not {fmt!r}", "--format")
            store = RunStore(resolve_runs_dir(runs_dir))
            try:
                run_id = store.find(run)
                if output.exists() and not output.is_dir():
                    raise UserError("is a file; --output takes a folder for the plot files", str(output))
                paths = write_plots(store, run_id, output, resolve_data_dir(data_dir), fmt, dpi)
            except OSError as exc:
                raise UserError(f"cannot write the plots: {exc.strerror or exc}", str(output)) from None
            finally:
                store.close()
        except UserError as exc:
            raise fail(exc) from None
        for path in paths:
            out.print(str(path), highlight=False, soft_wrap=True)
