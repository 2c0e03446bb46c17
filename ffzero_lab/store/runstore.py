"""The run store: one SQLite file (WAL mode) per runs directory, ``<runs dir>/runs.sqlite``.

Every run is a row in ``runs`` from its start. Each optimiser step is committed in one
transaction with its measurement (the compact description of every perturbed setting, the
raw port readings, timestamps), the base parameters it used and the checkpoint a resume
continues from. A background writer thread does the writing so a run never waits for the
disk unless the queue fills (then it waits: nothing is dropped). A run without a stop record
is incomplete. The schema is documented in ``docs/run-store.md``.
"""

from __future__ import annotations

import io
import json
import os
import queue
import socket
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.core.errors import UserError
from ffzero_lab.store.schema import StoreVersionError, prepare_schema

RUNS_DIR_ENV = "FFZERO_RUNS_DIR"
DB_NAME = "runs.sqlite"


def resolve_runs_dir(option: str | Path | None) -> Path:
    """``--runs-dir`` if given, else ``$FFZERO_RUNS_DIR``, else ``./runs``."""
    if option:
        return Path(option)
    return Path(os.environ.get(RUNS_DIR_ENV) or "runs")


def npy(array: NDArray[np.generic]) -> bytes:
    """An array as ``.npy`` bytes (no pickle)."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def from_npy(blob: bytes) -> NDArray[np.generic]:
    return np.load(io.BytesIO(blob), allow_pickle=False)


def npz(arrays: dict[str, NDArray[np.generic]]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return buffer.getvalue()


def from_npz(blob: bytes) -> dict[str, NDArray[np.generic]]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@dataclass(frozen=True)
class RunSummary:
    """One row of ``runs list``."""

    id: int
    uid: str
    name: str | None
    kind: str
    method: str | None
    status: str
    started_at: float
    stopped_at: float | None
    resumes: int
    test_accuracy: float | None
    layer_accuracy: list[float | None] | None
    evaluations: int | None
    wall_s: float | None
    device: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def device_name(device: dict[str, Any] | None) -> str | None:
    """What a run trained on, from its ``device_json``: the rig's name, else the device driver,
    else the instruments file."""
    if not isinstance(device, dict):
        return None
    return device.get("rig") or device.get("driver") or device.get("instruments")


@dataclass(frozen=True)
class Checkpoint:
    """Where a run stood after its last committed step."""

    layer: int
    epoch: int
    step: int
    version: int
    evaluations: int
    theta: NDArray[np.float64]
    optimizer: dict[str, NDArray[np.generic]]


def connect(path: Path) -> sqlite3.Connection:
    """Open (and create, or upgrade to :data:`~.schema.SCHEMA_VERSION`) the store's database in WAL mode.

    Raises:
        StoreVersionError: the file was written by a newer ffzero-lab.
    """
    db = sqlite3.connect(path, timeout=30.0)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    try:
        prepare_schema(db)
    except BaseException:
        db.close()
        raise
    return db


class RunStore:
    """The SQLite run store of one runs directory (reading, and the writes outside a run's steps).

    Args:
        runs_dir: folder holding ``runs.sqlite`` (created if missing).
    """

    def __init__(self, runs_dir: Path) -> None:
        self.path = runs_dir / DB_NAME
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
            self.db = connect(self.path)
        except StoreVersionError as exc:
            raise UserError(str(exc), str(self.path)) from None
        except (OSError, sqlite3.Error) as exc:
            raise UserError(f"cannot open the run store: {exc}", str(self.path)) from None

    def close(self) -> None:
        self.db.close()

    # -- reading ------------------------------------------------------------------------
    @staticmethod
    def _status(exit_status: str | None, host: str, pid: int) -> str:
        if exit_status is not None:
            return exit_status
        if host == socket.gethostname():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return "incomplete"
            except PermissionError:
                return "running"
            return "running" if _alive(pid) else "incomplete"
        return "incomplete"

    def list_runs(self) -> list[RunSummary]:
        rows = self.db.execute(
            "SELECT id, uid, name, kind, method, exit_status, host, pid, started_at, stopped_at, resumes, "
            "test_accuracy, layer_accuracy, evaluations, wall_s, device_json FROM runs ORDER BY id"
        ).fetchall()
        return [
            RunSummary(r[0], r[1], r[2], r[3], r[4], self._status(r[5], r[6], r[7]), r[8], r[9], r[10], r[11],
                       json.loads(r[12]) if r[12] else None, r[13], r[14],
                       device_name(json.loads(r[15]) if r[15] else None))
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

    def run_row(self, run_id: int) -> dict[str, Any]:
        cur = self.db.execute("SELECT * FROM runs WHERE id=?", (run_id,))
        return dict(zip([c[0] for c in cur.description], cur.fetchone()))

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        cur = self.db.execute(sql, args)
        names = [c[0] for c in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def epochs(self, run_id: int) -> list[dict[str, Any]]:
        return self._rows("SELECT layer, epoch, loss, test_accuracy, evaluations, evaluations_per_s, time "
                          "FROM epochs WHERE run_id=? ORDER BY time, layer, epoch", (run_id,))

    def steps(self, run_id: int) -> list[dict[str, Any]]:
        return self._rows("SELECT layer, epoch, step, version, loss, accuracy, lr, evaluations, time, instrument_s "
                          "FROM steps WHERE run_id=? ORDER BY time, layer, version", (run_id,))

    def instrument_time_s(self, run_id: int) -> float | None:
        """The run's instrument time (the lab-time ledger summed over its steps), s; None when no
        step recorded one (a simulated device, or a store older than schema 5)."""
        rows = self._rows("SELECT SUM(instrument_s) AS total, COUNT(instrument_s) AS counted FROM steps "
                          "WHERE run_id=?", (run_id,))
        return float(rows[0]["total"]) if rows and rows[0]["counted"] else None

    def array(self, run_id: int, name: str) -> NDArray[np.generic]:
        row = self.db.execute("SELECT data FROM arrays WHERE run_id=? AND name=?", (run_id, name)).fetchone()
        if row is None:
            raise KeyError(name)
        return from_npy(row[0])

    def array_names(self, run_id: int) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT name FROM arrays WHERE run_id=? ORDER BY name", (run_id,))]

    def protocol(self, run_id: int) -> dict[str, Any]:
        row = self.db.execute("SELECT protocol_json FROM runs WHERE id=?", (run_id,)).fetchone()
        return json.loads(row[0])

    def checkpoint(self, run_id: int) -> Checkpoint | None:
        row = self.db.execute("SELECT layer, epoch, step, version, evaluations, theta, optimizer FROM checkpoints "
                              "WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            return None
        return Checkpoint(row[0], row[1], row[2], row[3], row[4], from_npy(row[5]), from_npz(row[6]))

    def parameters_at(self, run_id: int, layer: int, version: int) -> NDArray[np.float64]:
        """Base parameters of step ``version`` of ``layer`` (what its perturbations were added to)."""
        row = self.db.execute("SELECT theta FROM parameters WHERE run_id=? AND layer=? AND version=?",
                              (run_id, layer, version)).fetchone()
        if row is None:
            raise KeyError((layer, version))
        return from_npy(row[0])

    def measurement(self, run_id: int, layer: int, version: int, readings: bool = True) -> dict[str, Any]:
        """One step's measurement row; ``readings=False`` leaves the raw readings unread (None)."""
        columns = "*" if readings else ", ".join(
            ["run_id", "layer", "version", "direction_seed", "direction_draw", "directions", "eps", "samples",
             "NULL AS readings", "readings_shape", "t_start", "t_end"])
        rows = self._rows(f"SELECT {columns} FROM measurements WHERE run_id=? AND layer=? AND version=?",
                          (run_id, layer, version))
        if not rows:
            raise KeyError((layer, version))
        m = rows[0]
        m["samples"] = from_npy(m["samples"])
        if m["readings"] is not None:
            m["readings"] = from_npy(m["readings"])
        return m


def _alive(pid: int) -> bool:
    """False for a zombie (killed, not yet reaped by its parent)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


class StoreError(UserError):
    """The run store cannot be written (disk full, locked by another program, read-only): the
    run stops, every step committed before is kept."""


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return text


class StoreSink:
    """A document sink that records a run in the run store from a writer thread.

    Each ``step`` document is written in one transaction: the step row, its measurement (if
    recorded), the base parameters and the checkpoint. The queue is bounded (``depth``
    steps): when the disk falls behind, the run waits rather than drop a record. ``close``
    drains the queue.

    The store is opened, and its write lock tried, when the sink is made: a missing folder, a
    folder that cannot be written or a store held by another program raises :class:`StoreError`
    there, before any training (no folder is created: :class:`RunStore` does that).

    Args:
        runs_dir: the store's folder.
        kind: ``dry-run`` or ``run``.
        protocol_yaml, protocol_path: the protocol file's text and path.
        software_version: ffzero-lab's version.
        resume_run: the number of a run being resumed (its row is reused).
        overrides: the ``--set`` overrides applied to the protocol file, ``FIELD=VALUE``.
        git_commit: the commit of ffzero-lab's source tree (``+dirty`` with local changes), if any.
    """

    def __init__(self, runs_dir: str | Path, kind: str, protocol_yaml: str | None, protocol_path: str | None,
                 software_version: str, resume_run: int | None = None, depth: int = 256,
                 overrides: list[str] | None = None, git_commit: str | None = None) -> None:
        runs_dir = Path(runs_dir)
        self.path = runs_dir / DB_NAME
        self.kind = kind
        self.protocol_yaml = protocol_yaml
        self.protocol_path = protocol_path
        self.software_version = software_version
        self.overrides = list(overrides or [])
        self.git_commit = git_commit
        self.run_id: int | None = resume_run
        self._check(runs_dir)
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue(maxsize=depth)
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._reported = False  # whether the training side has been given the writer's error
        self._thread = threading.Thread(target=self._work, name="run-store-writer", daemon=True)
        self._thread.start()

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        """Queue a document. After the writer failed: raises its :class:`StoreError` (the run
        must stop), except for the ``stop`` document, whose reason is written directly if the
        store still takes it. ``taps`` documents (live pictures; the store keeps the readings
        themselves in ``measurements``) are not queued."""
        if name == "taps":
            return
        if self._error is not None:
            if name == "stop":
                self._record_failure(doc)
                return
            self._reported = True
            raise self._error
        self._queue.put((name, doc))
        if name == "start":  # callers read run_id right after the start document
            self._started.wait(timeout=30)

    def close(self) -> None:
        """Write everything still queued, then stop the writer.

        Raises:
            StoreError: the writer failed and the caller has not been told yet.
        """
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and not self._reported:
            self._reported = True
            raise self._error

    def _record_failure(self, doc: dict[str, Any]) -> None:
        """Best effort: the run failed, and why (the store failing may refuse this too)."""
        if self.run_id is None:
            return
        reason = f"{self._error}; then: {doc.get('reason')}" if doc.get("reason") else str(self._error)
        try:
            db = sqlite3.connect(self.path, timeout=2.0)
            try:
                with db:
                    db.execute("UPDATE runs SET stopped_at=?, exit_status='failed', reason=? WHERE id=?",
                               (doc.get("time"), reason, self.run_id))
            finally:
                db.close()
        except sqlite3.Error:
            pass

    def _check(self, runs_dir: Path) -> None:
        """Open the store and take its write lock once, in the caller's thread, so that a store
        that cannot be written fails before any training rather than in the writer thread.

        Raises:
            StoreError: the folder is missing or not a folder, or the store cannot be written
                (read-only, held by another program, of a newer schema).
        """
        if not runs_dir.is_dir():
            what = "not a folder" if runs_dir.exists() else "no such folder; create it first (RunStore(folder) does)"
            raise StoreError(f"the run store could not be written ({what})", str(runs_dir))
        try:
            db = connect(self.path)
        except StoreVersionError as exc:
            raise StoreError(str(exc), str(self.path)) from None
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"the run store could not be written ({_describe(exc)})", str(self.path)) from None
        try:
            db.execute("BEGIN IMMEDIATE")  # the write lock: refused on a read-only or held store
            db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise StoreError(f"the run store could not be written ({_describe(exc)})", str(self.path)) from None
        finally:
            db.close()

    def _work(self) -> None:
        try:
            db = connect(self.path)
        except (sqlite3.Error, OSError, StoreVersionError) as exc:
            self._fail(exc)
            return
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                try:
                    with db:
                        self._write(db, *item)
                finally:
                    if item[0] == "start":
                        self._started.set()
        except BaseException as exc:  # reported to the training thread at its next document
            self._fail(exc)
        finally:
            db.close()

    def _fail(self, exc: BaseException) -> None:
        """Keep the writer's failure for the training thread, and drain the queue."""
        if isinstance(exc, sqlite3.Error | OSError | StoreVersionError):
            self._error = StoreError(
                f"the run store could not be written ({_describe(exc)}); training stopped, every step "
                "committed before is kept and `ffzero-lab resume` continues once the store is writable",
                str(self.path))
        else:
            self._error = exc
        self._started.set()
        while self._queue.get() is not None:
            pass

    def _write(self, db: sqlite3.Connection, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            if self.run_id is None:
                cur = db.execute(
                    "INSERT INTO runs(uid, name, kind, method, protocol_path, protocol_yaml, protocol_json, "
                    "device_json, overrides_json, software_version, git_commit, host, pid, started_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (doc["run_uid"], doc["protocol"].get("name"), self.kind, doc["protocol"].get("method"),
                     self.protocol_path, self.protocol_yaml, json.dumps(doc["protocol"]),
                     json.dumps(doc.get("device")), json.dumps(self.overrides), self.software_version,
                     self.git_commit, socket.gethostname(), os.getpid(), doc["time"]),
                )
                self.run_id = int(cur.lastrowid)
            else:
                db.execute("UPDATE runs SET resumed_at=?, resumes=resumes+1, pid=?, host=?, exit_status=NULL, "
                           "stopped_at=NULL, reason=NULL WHERE id=?",
                           (doc["time"], os.getpid(), socket.gethostname(), self.run_id))
            return
        run = self.run_id
        if name == "step":
            db.execute("INSERT OR REPLACE INTO steps VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                       (run, doc["layer"], doc["epoch"], doc["step"], doc["version"], doc["loss"],
                        doc.get("accuracy"), doc["lr"], doc["evaluations"], doc["time"], doc.get("instrument_s")))
            record = doc.get("record") or {}
            if "samples" in record:
                readings = record.get("readings")
                db.execute(
                    "INSERT OR REPLACE INTO measurements VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (run, doc["layer"], doc["version"], record.get("direction_seed"), record.get("direction_draw"),
                     record.get("directions", 0), record.get("eps"), npy(record["samples"].astype(np.int32)),
                     None if readings is None else npy(readings.astype(np.float32)),
                     None if readings is None else json.dumps(list(readings.shape)),
                     record["t_start"], record["t_end"]))
                db.execute("INSERT OR REPLACE INTO parameters VALUES (?,?,?,?)",
                           (run, doc["layer"], doc["version"], npy(record["base"])))
            if "checkpoint" in record:
                c = record["checkpoint"]
                db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?,?,?,?,?,?,?,?,?)",
                           (run, doc["layer"], doc["epoch"], doc["step"], doc["version"], doc["evaluations"],
                            npy(c["theta"]), npz(c["optimizer"]), doc["time"]))
        elif name == "epoch":
            db.execute("INSERT OR REPLACE INTO epochs VALUES (?,?,?,?,?,?,?,?)",
                       (run, doc["layer"], doc["epoch"], doc["loss"], doc.get("test_accuracy"),
                        doc["evaluations"], doc.get("evaluations_per_s"), doc["time"]))
        elif name == "arrays":
            db.executemany("INSERT OR REPLACE INTO arrays VALUES (?,?,?,?,?)",
                           [(run, k, str(np.asarray(a).dtype), json.dumps(list(np.shape(a))), npy(a))
                            for k, a in doc["arrays"].items()])
        elif name == "stop":
            db.execute(
                "UPDATE runs SET stopped_at=?, exit_status=?, reason=?, metric=?, test_accuracy=?, layer_accuracy=?, "
                "evaluations=?, wall_s=? WHERE id=?",
                (doc["time"], doc["exit_status"], doc.get("reason"), doc.get("metric"), doc.get("test_accuracy"),
                 json.dumps(doc["layer_accuracy"]) if doc.get("layer_accuracy") is not None else None,
                 doc.get("evaluations"), doc.get("wall_s"), run))
