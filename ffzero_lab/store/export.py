"""Export one recorded run from the run store as CSV, NPZ or NetCDF (``ffzero-lab runs export``).

Every format carries the run's row (with its status), its steps and epochs, the compact
description of every recorded measurement and every stored array; they differ in what else
fits them:

* ``csv``: a folder with ``run.csv`` (one row; the protocol as JSON text), ``steps.csv``,
  ``epochs.csv``, ``measurements.csv`` (one row per recorded step, samples as a space-separated
  list, no raw readings), ``arrays.npz`` (the stored arrays) and, if any were recorded,
  ``readings.npz`` (``readings/<layer>/<version>``).
* ``npz``: one file with every table column-wise (``steps/loss``, ``epochs/test_accuracy``,
  ``measurements/eps``, ``checkpoint/theta`` ...), every step's samples, base parameters and raw
  readings (``samples/<layer>/<version>``, ``parameters/<layer>/<version>``,
  ``readings/<layer>/<version>``), every stored array (``arrays/prototypes/0`` ...) and the run's
  row as a JSON string (``metadata``). It loads with ``numpy.load(path)`` (no pickle).
* ``netcdf``: one NetCDF-4 file (written by xarray through h5netcdf; ``xarray.open_dataset(path)``)
  holding the run as :func:`ffzero_lab.store.dataset.run_dataset` builds it: coordinates
  ``layer``, ``epoch``, ``step``, ``port``, ``class``, ``parameter``; per-epoch and per-step
  variables on ``(layer, epoch)`` and ``(layer, step)``; the stored arrays stacked over ``layer``
  (``prototypes(layer, class, port)``, ``parameters(layer, parameter)`` ...); CF ``units`` and
  ``long_name`` on every variable, times as seconds since 1970 (UTC); the run's row as global
  attributes. No raw readings (use ``npz``).

By default an export goes to ``<runs dir>/exports/`` (``run-<id>/``, ``run-<id>.npz``,
``run-<id>.nc``), beside the store it came from, never into the working directory.

A missing value (a NULL in the store) is NaN in arrays and an empty cell in CSV.
"""

from __future__ import annotations

import csv
import json
import os
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.core.errors import UserError
from ffzero_lab.store.runstore import RunStore

FORMATS: dict[str, str] = {"csv": "", "npz": ".npz", "netcdf": ".nc"}

#: Columns of :meth:`RunStore.steps` and :meth:`RunStore.epochs`, in order.
STEP_COLUMNS = ("layer", "epoch", "step", "version", "loss", "accuracy", "lr", "evaluations", "time", "instrument_s")
EPOCH_COLUMNS = ("layer", "epoch", "loss", "test_accuracy", "evaluations", "evaluations_per_s", "time")
#: Columns of ``measurements.csv``: K is ``directions`` (0 when the method draws none).
MEASUREMENT_SCALARS = ("layer", "version", "direction_seed", "direction_draw", "directions", "eps",
                       "t_start", "t_end")
MEASUREMENT_COLUMNS = (*MEASUREMENT_SCALARS, "samples", "readings_shape")
#: Scalar columns of the checkpoint (its ``theta`` and optimiser state are arrays).
CHECKPOINT_COLUMNS = ("layer", "epoch", "step", "version", "evaluations")
#: The folder of the runs dir that exports go to by default.
EXPORTS = "exports"


@dataclass(frozen=True)
class Measurement:
    """One recorded step's measurement.

    Attributes:
        row: the compact columns of :data:`MEASUREMENT_COLUMNS`; ``samples`` a space-separated
            list of training-sample indices, ``readings_shape`` a space-separated shape or "".
        samples: ``(B,)`` int32 indices into the (limited) training set.
        parameters: ``(n,)`` base parameters the step's perturbations were added to (None when
            only the row was read).
        readings: raw tap readings, ``(2K, B, ports)`` float32 (DD methods) or ``(B, ports)``
            (AD), or None when not recorded.
    """

    row: dict[str, Any]
    samples: NDArray[np.int32]
    parameters: NDArray[np.float64] | None
    readings: NDArray[np.float32] | None


def run_record(store: RunStore, run_id: int) -> dict[str, Any]:
    """The run's ``runs`` row (JSON columns kept as JSON text) and its ``status``."""
    return {**store.run_row(run_id), "status": store.summary(run_id).status}


def measurements(store: RunStore, run_id: int, steps: Iterable[dict[str, Any]],
                 arrays: bool = True) -> Iterator[Measurement]:
    """The recorded measurement of each step that has one, in the order of ``steps``.

    One step is read at a time, so a long run's readings never sit in memory together. With
    ``arrays=False`` only the compact row is read (no raw readings, no base parameters).
    """
    for s in steps:
        try:
            m = store.measurement(run_id, s["layer"], s["version"], readings=arrays)
        except KeyError:
            continue
        row = {k: m[k] for k in MEASUREMENT_SCALARS}
        row["samples"] = " ".join(str(int(i)) for i in m["samples"])
        shape = json.loads(m["readings_shape"]) if m["readings_shape"] else []
        row["readings_shape"] = " ".join(str(d) for d in shape)
        parameters = store.parameters_at(run_id, s["layer"], s["version"]) if arrays else None
        yield Measurement(row, m["samples"], parameters, m["readings"])


def columns(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, NDArray[np.generic]]:
    """Rows of a table as one array per column, ``(len(rows),)`` each.

    Integers stay int64, other numbers float64; a column with a missing value is float64 with
    NaN there; text is a unicode array.
    """
    out: dict[str, NDArray[np.generic]] = {}
    for name in names:
        values = [r[name] for r in rows]
        if any(isinstance(v, str) for v in values):
            out[name] = np.array(["" if v is None else v for v in values], dtype=str)
        elif any(v is None for v in values) or not values:
            out[name] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        else:
            out[name] = np.asarray(values)
    return out


def default_output(store: RunStore, run_id: int, fmt: str) -> Path:
    """``<runs dir>/exports/run-<id>`` (a folder) for csv, ``.../run-<id>.npz`` or ``.../run-<id>.nc``."""
    return store.path.parent / EXPORTS / f"run-{run_id}{FORMATS[fmt]}"


def export_run(store: RunStore, run_id: int, fmt: str, output: Path | None = None) -> Path:
    """Write run ``run_id`` in format ``fmt`` (see the module docstring); return the path written.

    Raises:
        UserError: an unknown format, or an output that cannot be written.
    """
    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}", "--format")
    path = output if output is not None else default_output(store, run_id, fmt)
    if output is None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot write the export: {exc.strerror or exc}", str(path.parent)) from None
    if fmt != "csv" and path.is_dir():
        raise UserError("is a folder; name a file", str(path))
    if fmt == "csv" and path.exists() and not path.is_dir():
        raise UserError("is a file; a csv export is a folder", str(path))
    try:
        {"csv": _write_csv, "npz": _write_npz, "netcdf": _write_netcdf}[fmt](store, run_id, path)
    except OSError as exc:
        raise UserError(f"cannot write the export: {exc.strerror or exc}", str(path)) from None
    return path


def _tables(store: RunStore, run_id: int) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    return run_record(store, run_id), store.steps(run_id), store.epochs(run_id)


def _arrays(store: RunStore, run_id: int) -> Iterator[tuple[str, NDArray[np.generic]]]:
    for name in store.array_names(run_id):
        yield name, store.array(run_id, name)


# -- csv ---------------------------------------------------------------------------------
def _write_table(path: Path, names: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(names))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row[k] is None else row[k] for k in names})


def _write_csv(store: RunStore, run_id: int, folder: Path) -> None:
    record, steps, epochs = _tables(store, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    _write_table(folder / "run.csv", list(record), [record])
    _write_table(folder / "steps.csv", STEP_COLUMNS, steps)
    _write_table(folder / "epochs.csv", EPOCH_COLUMNS, epochs)
    recorded = 0
    with _NpzWriter(folder / "readings.npz") as readings:
        rows = []
        for m in measurements(store, run_id, steps):
            rows.append(m.row)
            if m.readings is not None:
                readings.add(f"readings/{m.row['layer']}/{m.row['version']}", m.readings)
                recorded += 1
        if not recorded:
            readings.discard()
    _write_table(folder / "measurements.csv", MEASUREMENT_COLUMNS, rows)
    with _NpzWriter(folder / "arrays.npz") as arrays:
        for name, array in _arrays(store, run_id):
            arrays.add(name, array)


# -- npz ---------------------------------------------------------------------------------
class _NpzWriter:
    """Writes an ``.npz`` one array at a time (as ``numpy.savez`` would, without holding them all).

    The file appears under its name only once complete; ``discard`` drops it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.part = path.with_name(path.name + ".part")
        self.zip = zipfile.ZipFile(self.part, "w", allowZip64=True)
        self.keep = True

    def add(self, name: str, array: NDArray[np.generic]) -> None:
        with self.zip.open(name + ".npy", "w", force_zip64=True) as f:
            np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)

    def discard(self) -> None:
        """Write nothing, and remove an older file of the same name."""
        self.keep = False
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> "_NpzWriter":
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.zip.close()
        if exc_type is None and self.keep:
            os.replace(self.part, self.path)
        else:
            self.part.unlink(missing_ok=True)


def _write_npz(store: RunStore, run_id: int, path: Path) -> None:
    record, steps, epochs = _tables(store, run_id)
    with _NpzWriter(path) as npz:
        npz.add("metadata", np.array(json.dumps(record)))
        for table, rows, names in (("steps", steps, STEP_COLUMNS), ("epochs", epochs, EPOCH_COLUMNS)):
            for name, column in columns(rows, names).items():
                npz.add(f"{table}/{name}", column)
        rows = []
        for m in measurements(store, run_id, steps):
            rows.append(m.row)
            key = f"{m.row['layer']}/{m.row['version']}"
            npz.add(f"samples/{key}", m.samples)
            npz.add(f"parameters/{key}", m.parameters)
            if m.readings is not None:
                npz.add(f"readings/{key}", m.readings)
        for name, column in columns(rows, MEASUREMENT_COLUMNS).items():
            npz.add(f"measurements/{name}", column)
        checkpoint = store.checkpoint(run_id)
        if checkpoint is not None:
            for name in CHECKPOINT_COLUMNS:
                npz.add(f"checkpoint/{name}", np.asarray(getattr(checkpoint, name)))
            npz.add("checkpoint/theta", checkpoint.theta)
            for name, value in checkpoint.optimizer.items():
                npz.add(f"checkpoint/optimizer/{name}", value)
        for name, array in _arrays(store, run_id):
            npz.add(f"arrays/{name}", array)


# -- netcdf ------------------------------------------------------------------------------
def _write_netcdf(store: RunStore, run_id: int, path: Path) -> None:
    from ffzero_lab.store.dataset import run_dataset  # lazy: imports xarray

    dataset = run_dataset(store, run_id)
    part = path.with_name(path.name + ".part")
    try:
        dataset.to_netcdf(part, engine="h5netcdf")
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
