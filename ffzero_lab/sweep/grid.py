"""Sweeps: one base protocol, fixed overrides and a grid of values, one training run per cell.

A sweep file (YAML, validated by pydantic; unknown keys are rejected)::

    name: fig4                                # optional label
    protocol: ../protocols/quickstart.yaml    # the base protocol, relative to this file
    set:                                      # fixed overrides, as --set FIELD=VALUE
      device.driver: digital
      train.epochs: 5
    grid:                                     # every combination is one cell
      method: [ff-dd, bp-dd]
      network.layers: [1, 2, 4]
      seed: [0, 1]

Every cell is validated before anything runs (its protocol, and the device driver's settings
and activation), so a bad value is one error line, not a failed cell an hour in.

This module is pure: models, grid expansion, the results store and the tables. The cells
run on Dask in :mod:`ffzero_lab.sweep.cluster`; figures are drawn by :mod:`ffzero_lab.sweep.plots`.

The results store is one JSON file per cell, ``<output>/cells/<key>.json``, written to a
temporary file in the same folder and renamed over the old one (atomic on POSIX): a sweep
killed at any moment leaves every finished cell whole and at worst a stray ``*.tmp``, which
is ignored. The key is a hash of the cell's validated protocol, so a cell is skipped on the
next run only if it would train exactly the same protocol. One file per cell rather than
SQLite: the one writer is the sweep's client process (workers on another machine need not
share the output folder), records are small and few (one per cell, written once), and plain
files can be read, copied, merged or deleted (to rerun a cell) with no tool at all.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import itertools
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from ffzero_lab.config.protocol import Protocol, load_protocol
from ffzero_lab.config.registry import resolve_driver
from ffzero_lab.core.errors import ConfigError, UserError, validation_error
from ffzero_lab.core.files import load_yaml

_FIELD = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")

#: Result keys every run reports, in table order; any other key is an extra column.
METRICS = ("test_accuracy", "layer_accuracy", "evaluations", "wall_s")
#: Result keys kept in the cell's record but not shown in the table.
HIDDEN = ("run_uid",)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class SweepFile(BaseModel):
    """A sweep file."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="A label for the sweep's tables and figures.")
    protocol: str = Field(description="The base protocol file, relative to the sweep file.")
    set: dict[str, Any] | list[str] = Field(
        default_factory=dict, description="Fixed overrides: {FIELD: VALUE} or ['FIELD=VALUE', ...]."
    )
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(
        default_factory=dict, description="FIELD: [values]; every combination is one cell."
    )

    @field_validator("set")
    @classmethod
    def _fixed(cls, value: dict[str, Any] | list[str]) -> dict[str, Any] | list[str]:
        if isinstance(value, list):
            for item in value:
                if "=" not in item:
                    raise ValueError(f"expected FIELD=VALUE, got {item!r}")
        keys = value if isinstance(value, dict) else [item.partition("=")[0].strip() for item in value]
        for key in keys:
            if not _FIELD.match(key):
                raise ValueError(f"{key!r} is not a dotted field name")
        return value

    @field_validator("grid")
    @classmethod
    def _axes(cls, grid: dict[str, list[Any]], info: ValidationInfo) -> dict[str, list[Any]]:
        fixed = info.data.get("set") or {}
        fixed_keys = list(fixed) if isinstance(fixed, dict) else [item.partition("=")[0].strip() for item in fixed]
        for key, values in grid.items():
            if not _FIELD.match(key):
                raise ValueError(f"{key!r} is not a dotted field name")
            if key in fixed_keys:
                raise ValueError(f"{key} is both fixed (set) and in the grid")
            seen = [_canonical(v) for v in values]
            if len(set(seen)) != len(seen):
                raise ValueError(f"{key}: a value is listed twice")
        return grid


def override(field: str, value: Any) -> str:
    """``FIELD=VALUE`` whose value reads back (as YAML) as ``value``: ``method=ff-dd``."""
    text = str(value)
    try:
        if not isinstance(value, dict | list) and yaml.safe_load(text) == value and "\n" not in text:
            return f"{field}={text}"
    except yaml.YAMLError:
        pass
    return f"{field}={json.dumps(value)}"


@dataclass(frozen=True)
class Sweep:
    """A loaded sweep file.

    Attributes:
        path: the sweep file.
        spec: its validated content.
        base: the base protocol file (resolved against the sweep file's folder).
        fixed: the fixed overrides as ``FIELD=VALUE`` strings: the file's ``set``, then the
            command line's ``--set`` (which win over the file's).
        command_line: the ``--set`` overrides among them.
    """

    path: Path
    spec: SweepFile
    base: Path
    fixed: tuple[str, ...]
    command_line: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name or self.path.stem

    @property
    def grid(self) -> dict[str, list[Any]]:
        return self.spec.grid


def load_sweep(path: str | Path, sets: Sequence[str] = ()) -> Sweep:
    """Read and validate a sweep file (not yet its cells: see :func:`expand`).

    Args:
        path: the sweep file.
        sets: ``FIELD=VALUE`` overrides of every cell (``sweep --set``), after the file's ``set``.

    Raises:
        ConfigError: missing file, bad YAML, or a field that does not validate, naming the file;
            a ``--set`` that is no ``FIELD=VALUE`` or names a grid axis, naming ``--set``.
    """
    path = Path(path)
    document = load_yaml(path, str(path), "sweep file")  # at most 16 MiB, UTF-8, no key twice, a mapping
    if not document:
        raise ConfigError("the sweep file is empty: give protocol, set and grid", str(path))
    try:
        spec = SweepFile.model_validate(document)
    except ValidationError as exc:
        error = validation_error(exc, str(path))
        error.message = error.message.removeprefix("Value error, ")
        raise error from None
    if isinstance(spec.set, dict):
        fixed = tuple(override(k, v) for k, v in spec.set.items())
    else:
        fixed = tuple(spec.set)
    for item in sets:
        key, equals, _ = item.partition("=")
        if not equals or not key.strip():
            raise ConfigError(f"expected FIELD=VALUE, got {item!r}", "--set")
        if key.strip() in spec.grid:
            raise ConfigError(f"{key.strip()} is a grid axis of {path}; it cannot also be fixed", "--set")
    return Sweep(path, spec, path.parent / spec.protocol, fixed + tuple(sets), tuple(sets))


@dataclass(frozen=True)
class Cell:
    """One point of the grid.

    Attributes:
        index: position in the grid (first axis slowest).
        values: grid field -> value.
        overrides: every override of the base protocol (fixed first), ``FIELD=VALUE``.
        protocol: the validated protocol.
        key: a hash of the protocol: the cell's name in the results store.
    """

    index: int
    values: dict[str, Any]
    overrides: tuple[str, ...]
    protocol: Protocol
    key: str

    @property
    def label(self) -> str:
        return cell_label(self.values) or "(base protocol)"

    @property
    def document(self) -> dict[str, Any]:
        """The validated protocol as plain data: what a worker trains."""
        return self.protocol.model_dump(mode="json")


def _show(value: Any) -> str:
    return _canonical(value) if isinstance(value, dict | list) else str(value)


def cell_label(values: dict[str, Any]) -> str:
    """``method=ff-dd network.layers=2``."""
    return " ".join(f"{k}={_show(v)}" for k, v in values.items())


def protocol_key(protocol: Protocol) -> str:
    return hashlib.sha256(_canonical(protocol.model_dump(mode="json")).encode()).hexdigest()[:16]


def check_device(protocol: Protocol, source: str) -> None:
    """Validate ``device.settings`` and ``network.activation`` with the driver's own models.

    What :func:`ffzero_lab.run.prepare.build_network` checks before it builds, without building.
    """
    driver = resolve_driver(protocol.device.driver, source)
    for model, value, prefix in ((driver.settings_model, protocol.device.settings, "device.settings"),
                                 (driver.activation_model, protocol.network.activation, "network.activation")):
        try:
            model.model_validate(value)
        except ValidationError as exc:
            raise validation_error(exc, source, prefix) from None


def expand(sweep: Sweep) -> list[Cell]:
    """Every cell of the grid, each validated (its protocol, and the driver's settings).

    Raises:
        ConfigError: a cell does not validate. The error names the sweep file and the cell when
            the field is a grid axis (``grid cell method=ff-zz: method: ...``), the sweep file's
            ``set.FIELD`` when it is a fixed override, else the base protocol file.
    """
    axes = list(sweep.grid)
    fixed_keys = [item.partition("=")[0].strip() for item in sweep.fixed]
    cells: list[Cell] = []
    seen: dict[str, str] = {}
    for index, combo in enumerate(itertools.product(*(sweep.grid[a] for a in axes))):
        values = dict(zip(axes, combo))
        overrides = sweep.fixed + tuple(override(a, v) for a, v in values.items())
        label = cell_label(values)
        try:
            protocol, _ = load_protocol(sweep.base, overrides)
            check_device(protocol, str(sweep.base))
        except UserError as exc:
            raise _blame(exc, str(sweep.path), axes, fixed_keys, label, sweep.command_line) from None
        cell = Cell(index, values, overrides, protocol, protocol_key(protocol))
        if cell.key in seen:
            raise ConfigError(f"cells {seen[cell.key]} and {label} train the same protocol", str(sweep.path), "grid")
        seen[cell.key] = label
        cells.append(cell)
    return cells


def _blame(exc: UserError, source: str, axes: Sequence[str], fixed: Sequence[str], label: str,
           command_line: Sequence[str] = ()) -> UserError:
    """Point a cell's error at the grid axis, ``--set`` or fixed override it comes from, if it does."""
    field = exc.field or ""

    def under(key: str) -> bool:
        return field == key or field.startswith(key + ".")

    if any(under(a) for a in axes):
        return ConfigError(exc.message, source, f"grid cell {label}: {field}")
    if any(under(item.partition("=")[0].strip()) for item in command_line):
        return ConfigError(exc.message, "--set", field)
    if any(under(k) for k in fixed):
        return ConfigError(exc.message, source, f"set.{field}")
    return exc


def result_fields(result: Any) -> dict[str, Any]:
    """A run's result as JSON-able data: every scalar (or list of scalars) field; arrays left out.

    A regression run (``metric: r2``) reports as ``run --json`` does: ``r2`` and ``layer_r2``,
    ``test_accuracy`` and ``layer_accuracy`` null.
    """
    items = dataclasses.asdict(result) if dataclasses.is_dataclass(result) else dict(result)
    out: dict[str, Any] = {}
    for key, value in items.items():
        value = _plain(value)
        if value is not _SKIP:
            out[key] = value
    if out.get("metric") == "r2" and "r2" not in out:
        out["r2"], out["test_accuracy"] = out.get("test_accuracy"), None
        out["layer_r2"], out["layer_accuracy"] = out.get("layer_accuracy"), None
    return out


_SKIP = object()


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return value
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalar
        return value.item()
    if isinstance(value, list | tuple):
        items = [_plain(v) for v in value]
        if all(v is not _SKIP and not isinstance(v, list) for v in items):
            return items
    return _SKIP


class ResultStore:
    """Finished cells, one JSON file each, in ``<folder>/cells/``.

    A record: ``key``, ``values`` (the grid point), ``overrides``, ``status`` (``complete`` or
    ``failed``), ``result`` (see :func:`result_fields`; None if failed), ``error`` (None if
    complete), ``runs`` (how many times the cell has been computed), ``started_at`` and
    ``finished_at`` (unix seconds, on the worker and on the client), ``cell_s`` and ``cpu_s``
    (the cell's wall and CPU seconds on its worker, data loading included), ``worker``.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.cells = self.folder / "cells"
        try:
            self.cells.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the results folder: {exc.strerror or exc}", str(self.folder)) from None

    def path(self, key: str) -> Path:
        return self.cells / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The cell's record, or None (never computed, or an unreadable file)."""
        try:
            record = json.loads(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def put(self, record: dict[str, Any]) -> None:
        """Write a record atomically: a temporary file in the same folder, fsync, rename."""
        fd, tmp = tempfile.mkstemp(dir=self.cells, prefix=f".{record['key']}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path(record["key"]))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def records(self, cells: Sequence[Cell]) -> list[dict[str, Any] | None]:
        return [self.get(cell.key) for cell in cells]


def make_record(cell: Cell, outcome: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """A cell's record from what its worker returned (``status``, ``result`` or ``error``...)."""
    return {
        "key": cell.key,
        "values": cell.values,
        "overrides": list(cell.overrides),
        "status": outcome["status"],
        "result": outcome.get("result"),
        "error": outcome.get("error"),
        "runs": (previous or {}).get("runs", 0) + 1,
        "started_at": outcome.get("started_at"),
        "finished_at": time.time(),
        "cell_s": outcome.get("cell_s"),
        "cpu_s": outcome.get("cpu_s"),
        "worker": outcome.get("worker"),
    }


@dataclass(frozen=True)
class Plan:
    """Which cells a sweep skips (already complete) and which it runs."""

    done: list[Cell]
    todo: list[Cell]
    retried: int  # cells of ``todo`` that failed before


def plan(cells: Sequence[Cell], store: ResultStore) -> Plan:
    done, todo, retried = [], [], 0
    for cell in cells:
        record = store.get(cell.key)
        if record is not None and record.get("status") == "complete":
            done.append(cell)
        else:
            todo.append(cell)
            retried += record is not None
    return Plan(done, todo, retried)


def write_manifest(sweep: Sweep, cells: Sequence[Cell], folder: Path) -> Path:
    """``sweep.json``: the sweep file's content and every cell's key, grid values and overrides."""
    path = folder / "sweep.json"
    doc = {"sweep": str(sweep.path), "base": str(sweep.base), "name": sweep.name, "fixed": list(sweep.fixed),
           "grid": sweep.grid,
           "cells": [{"key": c.key, "values": c.values, "overrides": list(c.overrides)} for c in cells]}
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return path


# --- the results table -----------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """One row per cell: grid values, status, the result's keys, error.

    Attributes:
        axes: grid fields, in the file's order.
        keys: result keys: :data:`METRICS`, then any other a result has (``metric``, ``r2``,
            ``layer_r2``...), first seen first.
        lengths: for each key holding lists (``layer_accuracy``...), the longest.
        rows: per cell ``{"cell": key, "status": ..., <axis>: value, <result key>: value, "error": ...}``.
    """

    axes: list[str]
    keys: list[str]
    lengths: dict[str, int]
    rows: list[dict[str, Any]]

    def complete(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "complete"]

    def empty(self, key: str) -> bool:
        return all(row.get(key) is None for row in self.rows)


def results_table(sweep: Sweep, cells: Sequence[Cell], records: Sequence[dict[str, Any] | None]) -> Table:
    keys = list(METRICS)
    lengths: dict[str, int] = {}
    rows = []
    for cell, record in zip(cells, records):
        row: dict[str, Any] = {"cell": cell.key, **cell.values}
        row["status"] = record["status"] if record else "pending"
        result = {k: v for k, v in ((record or {}).get("result") or {}).items() if k not in HIDDEN}
        for key, value in result.items():
            if key not in keys:
                keys.append(key)
            if isinstance(value, list):
                lengths[key] = max(lengths.get(key, 0), len(value))
        row.update(result)
        row["error"] = (record or {}).get("error")
        rows.append(row)
    return Table(list(sweep.grid), keys, lengths, rows)


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return _canonical(value)
    return str(value)


def _md_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) and abs(value) < 1e6 else f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, list):
        return " ".join(_md_value(v) for v in value)
    if isinstance(value, dict):
        return _canonical(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def csv_columns(table: Table) -> list[str]:
    """Grid axes, status, result keys (a list-valued key as ``<key>_<i>``, one per item), error, cell."""
    results = []
    for key in table.keys:
        if key in table.lengths:
            results += [f"{key}_{i}" for i in range(table.lengths[key])]
        elif key == "test_accuracy" or not table.empty(key):
            results.append(key)
    return [*table.axes, "status", *results, "error", "cell"]


def write_csv(table: Table, path: Path) -> Path:
    """CSV, one row per cell; list-valued results in columns ``<key>_<i>`` (``layer_accuracy_0``...)."""
    columns = csv_columns(table)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in table.rows:
            values = dict(row)
            for key in table.lengths:
                values.update({f"{key}_{i}": v for i, v in enumerate(row.get(key) or [])})
            writer.writerow([_csv_value(values.get(c)) for c in columns])
    return path


def markdown_columns(table: Table) -> list[str]:
    """Grid axes, status (if a cell is not complete), the result keys some cell has, error (if any)."""
    failed = any(r["status"] != "complete" for r in table.rows)
    results = [k for k in table.keys if not table.empty(k)]
    return [*table.axes, *(["status"] if failed else []), *results, *(["error"] if failed else [])]


def markdown(table: Table, title: str | None = None) -> str:
    columns = markdown_columns(table)
    lines = [f"# {title}", ""] if title else []
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "|".join(" --- " for _ in columns) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(_md_value(row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def write_markdown(table: Table, path: Path, title: str | None = None) -> Path:
    path.write_text(markdown(table, title), encoding="utf-8")
    return path


def write_outputs(sweep: Sweep, cells: Sequence[Cell], store: ResultStore) -> tuple[Table, list[Path]]:
    """``results.csv``, ``results.md`` and the figures (``*.png``) in the store's folder."""
    from ffzero_lab.sweep.plots import write_figures  # lazy: imports matplotlib

    table = results_table(sweep, cells, store.records(cells))
    folder = store.folder
    try:
        paths = [write_csv(table, folder / "results.csv"),
                 write_markdown(table, folder / "results.md", f"{sweep.name}: results")]
        paths += write_figures(sweep.grid, table.complete(), folder, sweep.name)
    except OSError as exc:
        raise UserError(f"cannot write the results: {exc.strerror or exc}", str(folder)) from None
    return table, paths
