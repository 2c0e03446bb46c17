"""The run store: one SQLite file (WAL mode) per runs directory, ``<runs dir>/runs.sqlite``.

Every run is a row in ``runs`` from its start; epochs are committed as they finish; numpy
arrays (prototypes, device state, final parameters) go to ``arrays`` as ``.npy`` blobs. A run
without a stop record is incomplete. The schema is documented in ``docs/run-store.md`` and
readable with the ``sqlite3`` CLI or pandas.
"""

from __future__ import annotations

import io
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import UserError

RUNS_DIR_ENV = "FFZERO_RUNS_DIR"
DB_NAME = "runs.sqlite"
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL UNIQUE,
    name TEXT,
    kind TEXT NOT NULL,
    protocol_path TEXT,
    protocol_yaml TEXT,
    protocol_json TEXT NOT NULL,
    software_version TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at REAL NOT NULL,
    stopped_at REAL,
    exit_status TEXT,
    reason TEXT,
    test_accuracy REAL,
    layer_accuracy TEXT,
    evaluations INTEGER,
    wall_s REAL
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    layer INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    loss REAL NOT NULL,
    test_accuracy REAL,
    evaluations INTEGER NOT NULL,
    evaluations_per_s REAL,
    time REAL NOT NULL,
    PRIMARY KEY (run_id, layer, epoch)
);
CREATE TABLE IF NOT EXISTS arrays (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    dtype TEXT NOT NULL,
    shape TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (run_id, name)
);
"""


def resolve_runs_dir(option: str | Path | None) -> Path:
    """``--runs-dir`` if given, else ``$FFZERO_RUNS_DIR``, else ``./runs``."""
    if option:
        return Path(option)
    return Path(os.environ.get(RUNS_DIR_ENV) or "runs")


@dataclass(frozen=True)
class RunSummary:
    """One row of ``runs list``."""

    id: int
    uid: str
    name: str | None
    kind: str
    status: str
    started_at: float
    stopped_at: float | None
    test_accuracy: float | None
    layer_accuracy: list[float] | None
    evaluations: int | None
    wall_s: float | None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _npy(array: NDArray[np.generic]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


class RunStore:
    """The SQLite run store of one runs directory.

    Args:
        runs_dir: folder holding ``runs.sqlite`` (created if missing).
    """

    def __init__(self, runs_dir: Path) -> None:
        self.path = runs_dir / DB_NAME
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30.0)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
            self.db.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            self.db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise UserError(f"cannot open the run store: {exc}", str(self.path)) from None

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self.db:
            yield self.db

    # -- writing ------------------------------------------------------------------------
    def begin(self, uid: str, kind: str, protocol_json: dict[str, Any], protocol_yaml: str | None,
              protocol_path: str | None, software_version: str) -> int:
        """Record a run's start; returns its readable number."""
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO runs(uid, name, kind, protocol_path, protocol_yaml, protocol_json, "
                "software_version, host, pid, started_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (uid, protocol_json.get("name"), kind, protocol_path, protocol_yaml,
                 json.dumps(protocol_json), software_version, socket.gethostname(), os.getpid(), time.time()),
            )
            return int(cur.lastrowid)

    def add_epoch(self, run_id: int, doc: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO epochs(run_id, layer, epoch, loss, test_accuracy, evaluations, "
                "evaluations_per_s, time) VALUES (?,?,?,?,?,?,?,?)",
                (run_id, doc["layer"], doc["epoch"], doc["loss"], doc.get("test_accuracy"),
                 doc["evaluations"], doc.get("evaluations_per_s"), doc["time"]),
            )

    def add_arrays(self, run_id: int, arrays: dict[str, NDArray[np.generic]]) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO arrays(run_id, name, dtype, shape, data) VALUES (?,?,?,?,?)",
                [(run_id, name, str(np.asarray(a).dtype), json.dumps(list(np.shape(a))), _npy(a))
                 for name, a in arrays.items()],
            )

    def finish(self, run_id: int, doc: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET stopped_at=?, exit_status=?, reason=?, test_accuracy=?, layer_accuracy=?, "
                "evaluations=?, wall_s=? WHERE id=?",
                (doc["time"], doc["exit_status"], doc.get("reason"), doc.get("test_accuracy"),
                 json.dumps(doc["layer_accuracy"]) if doc.get("layer_accuracy") is not None else None,
                 doc.get("evaluations"), doc.get("wall_s"), run_id),
            )

    # -- reading ------------------------------------------------------------------------
    @staticmethod
    def _status(exit_status: str | None, host: str, pid: int) -> str:
        if exit_status is not None:
            return exit_status
        if host == socket.gethostname():
            try:
                os.kill(pid, 0)
                return "running"
            except ProcessLookupError:
                return "incomplete"
            except PermissionError:
                return "running"
        return "incomplete"

    def list_runs(self) -> list[RunSummary]:
        rows = self.db.execute(
            "SELECT id, uid, name, kind, exit_status, host, pid, started_at, stopped_at, test_accuracy, "
            "layer_accuracy, evaluations, wall_s FROM runs ORDER BY id"
        ).fetchall()
        return [
            RunSummary(r[0], r[1], r[2], r[3], self._status(r[4], r[5], r[6]), r[7], r[8], r[9],
                       json.loads(r[10]) if r[10] else None, r[11], r[12])
            for r in rows
        ]

    def find(self, ref: str) -> int:
        """A run's number from its number or a unique prefix of its uid."""
        if ref.isdigit():
            row = self.db.execute("SELECT id FROM runs WHERE id=?", (int(ref),)).fetchone()
            if row:
                return int(row[0])
        rows = self.db.execute("SELECT id FROM runs WHERE uid LIKE ?", (ref + "%",)).fetchall()
        if len(rows) == 1:
            return int(rows[0][0])
        raise UserError(f"no run {ref!r}" if not rows else f"{ref!r} matches {len(rows)} runs", str(self.path))

    def summary(self, run_id: int) -> RunSummary:
        return next(r for r in self.list_runs() if r.id == run_id)

    def epochs(self, run_id: int) -> list[dict[str, Any]]:
        cur = self.db.execute(
            "SELECT layer, epoch, loss, test_accuracy, evaluations, evaluations_per_s, time FROM epochs "
            "WHERE run_id=? ORDER BY layer, epoch", (run_id,)
        )
        names = [c[0] for c in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def array(self, run_id: int, name: str) -> NDArray[np.generic]:
        row = self.db.execute("SELECT data FROM arrays WHERE run_id=? AND name=?", (run_id, name)).fetchone()
        if row is None:
            raise KeyError(name)
        return np.load(io.BytesIO(row[0]), allow_pickle=False)

    def array_names(self, run_id: int) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM arrays WHERE run_id=? ORDER BY name", (run_id,))]

    def protocol(self, run_id: int) -> dict[str, Any]:
        row = self.db.execute("SELECT protocol_json FROM runs WHERE id=?", (run_id,)).fetchone()
        return json.loads(row[0])


class StoreSink:
    """A document sink that records a run in a :class:`RunStore`, committing as it goes."""

    def __init__(self, store: RunStore, kind: str, protocol_yaml: str | None, protocol_path: str | None,
                 software_version: str) -> None:
        self.store = store
        self.kind = kind
        self.protocol_yaml = protocol_yaml
        self.protocol_path = protocol_path
        self.software_version = software_version
        self.run_id: int | None = None

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            self.run_id = self.store.begin(doc["run_uid"], self.kind, doc["protocol"], self.protocol_yaml,
                                           self.protocol_path, self.software_version)
        elif self.run_id is None:
            return
        elif name == "epoch":
            self.store.add_epoch(self.run_id, doc)
        elif name == "arrays":
            self.store.add_arrays(self.run_id, doc["arrays"])
        elif name == "stop":
            self.store.finish(self.run_id, doc)
