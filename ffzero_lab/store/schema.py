"""The run store's schema and its numbered upgrades.

:data:`SCHEMA` creates a store of the current :data:`SCHEMA_VERSION`; ``meta.schema_version``
says which version a file holds. A file written by an older ffzero-lab is upgraded in place,
one numbered step at a time (:data:`UPGRADES`: ``n -> n + 1``), inside one immediate
transaction, so two processes opening an old store at once upgrade it once and a failure
leaves it as it was. A file of a newer version than this code knows is refused, never
rewritten. To change the schema: edit :data:`SCHEMA`, bump :data:`SCHEMA_VERSION` and add the
step from the previous version to :data:`UPGRADES` (tested on a file of the old version).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

SCHEMA_VERSION = 5

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL UNIQUE,
    name TEXT,
    kind TEXT NOT NULL,
    method TEXT,
    protocol_path TEXT,
    protocol_yaml TEXT,
    protocol_json TEXT NOT NULL,
    device_json TEXT,
    overrides_json TEXT,
    software_version TEXT NOT NULL,
    git_commit TEXT,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at REAL NOT NULL,
    resumed_at REAL,
    resumes INTEGER NOT NULL DEFAULT 0,
    stopped_at REAL,
    exit_status TEXT,
    reason TEXT,
    metric TEXT,
    test_accuracy REAL,
    layer_accuracy TEXT,
    evaluations INTEGER,
    wall_s REAL
);
CREATE TABLE IF NOT EXISTS steps (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    layer INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    step INTEGER NOT NULL,
    version INTEGER NOT NULL,
    loss REAL NOT NULL,
    accuracy REAL,
    lr REAL NOT NULL,
    evaluations INTEGER NOT NULL,
    time REAL NOT NULL,
    instrument_s REAL,
    PRIMARY KEY (run_id, layer, version)
);
CREATE TABLE IF NOT EXISTS measurements (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    layer INTEGER NOT NULL,
    version INTEGER NOT NULL,
    direction_seed INTEGER,
    direction_draw INTEGER,
    directions INTEGER NOT NULL,
    eps REAL,
    samples BLOB NOT NULL,
    readings BLOB,
    readings_shape TEXT,
    t_start REAL NOT NULL,
    t_end REAL NOT NULL,
    PRIMARY KEY (run_id, layer, version)
);
CREATE TABLE IF NOT EXISTS parameters (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    layer INTEGER NOT NULL,
    version INTEGER NOT NULL,
    theta BLOB NOT NULL,
    PRIMARY KEY (run_id, layer, version)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id INTEGER PRIMARY KEY REFERENCES runs(id),
    layer INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    step INTEGER NOT NULL,
    version INTEGER NOT NULL,
    evaluations INTEGER NOT NULL,
    theta BLOB NOT NULL,
    optimizer BLOB NOT NULL,
    time REAL NOT NULL
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


class StoreVersionError(Exception):
    """The store's schema is newer than this version of ffzero-lab knows."""


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _add_columns(db: sqlite3.Connection, table: str, columns: dict[str, str]) -> None:
    """Add the columns (name -> SQL type and default) that ``table`` lacks."""
    present = _columns(db, table)
    for name, declaration in columns.items():
        if name not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")


def _create_tables(db: sqlite3.Connection) -> None:
    """Every table of :data:`SCHEMA` that the file lacks (statement by statement: inside the
    upgrade's transaction, where ``executescript`` would commit)."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)


def _upgrade_1_to_2(db: sqlite3.Connection) -> None:
    """Schema 2 records every step: the tables steps, measurements, parameters and
    checkpoints, and the runs' method, device, resumes."""
    _add_columns(db, "runs", {"method": "TEXT", "device_json": "TEXT", "resumed_at": "REAL",
                              "resumes": "INTEGER NOT NULL DEFAULT 0"})
    _create_tables(db)


def _upgrade_2_to_3(db: sqlite3.Connection) -> None:
    """Schema 3 is schema 2 as it ended: ``runs.metric`` (accuracy or r2) and ``steps.accuracy``
    came into schema 2 after its first stores were written; a store without them gains them
    (empty for the runs before)."""
    _add_columns(db, "runs", {"metric": "TEXT"})
    _add_columns(db, "steps", {"accuracy": "REAL"})


def _upgrade_3_to_4(db: sqlite3.Connection) -> None:
    """Schema 4 records where a run came from: ``runs.overrides_json`` (the ``--set`` overrides
    as given) and ``runs.git_commit`` (the commit of ffzero-lab's source tree); empty for the
    runs before."""
    _add_columns(db, "runs", {"overrides_json": "TEXT", "git_commit": "TEXT"})


def _upgrade_4_to_5(db: sqlite3.Connection) -> None:
    """Schema 5 keeps the lab-time ledger: ``steps.instrument_s``, the instrument time a step cost
    on a rig (settles, clocked samples), s; empty for simulated devices and the runs before."""
    _add_columns(db, "steps", {"instrument_s": "REAL"})


#: ``n -> step`` upgrading a file of schema n to n + 1.
UPGRADES: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _upgrade_1_to_2, 2: _upgrade_2_to_3, 3: _upgrade_3_to_4, 4: _upgrade_4_to_5,
}


def schema_version(db: sqlite3.Connection) -> int | None:
    """The file's schema version, None for an empty file."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone():
        return None
    row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return None if row is None else int(row[0])


def prepare_schema(db: sqlite3.Connection) -> int:
    """Create the schema in an empty file, or upgrade an older one to :data:`SCHEMA_VERSION`.

    Returns:
        The version the file had (:data:`SCHEMA_VERSION` for a new one).

    Raises:
        StoreVersionError: the file is newer than :data:`SCHEMA_VERSION`.
    """
    found = schema_version(db)
    if found == SCHEMA_VERSION:
        return found
    if found is not None and found > SCHEMA_VERSION:
        raise StoreVersionError(
            f"the run store has schema {found}, written by a newer ffzero-lab "
            f"(this one knows up to {SCHEMA_VERSION}); upgrade ffzero-lab or use another --runs-dir"
        )
    db.execute("BEGIN IMMEDIATE")
    try:
        found = schema_version(db)  # another process may have done it while this one waited
        if found is None:
            _create_tables(db)
            db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            found = SCHEMA_VERSION
        else:
            for version in range(found, SCHEMA_VERSION):
                UPGRADES[version](db)
                db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version + 1),))
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return found
