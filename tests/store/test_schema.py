"""The run store's schema: new files at the current version, older files upgraded in place,
newer files refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ffzero_lab.cli.app import app
from ffzero_lab.core.errors import UserError
from ffzero_lab.store.runstore import DB_NAME, RunStore
from ffzero_lab.store.schema import SCHEMA_VERSION, UPGRADES, schema_version

# What ffzero-lab wrote as schema 1 (the first release's store): runs, epochs, arrays.
SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, uid TEXT NOT NULL UNIQUE, name TEXT, kind TEXT NOT NULL,
    protocol_path TEXT, protocol_yaml TEXT, protocol_json TEXT NOT NULL, software_version TEXT NOT NULL,
    host TEXT NOT NULL, pid INTEGER NOT NULL, started_at REAL NOT NULL, stopped_at REAL, exit_status TEXT,
    reason TEXT, test_accuracy REAL, layer_accuracy TEXT, evaluations INTEGER, wall_s REAL
);
CREATE TABLE epochs (
    run_id INTEGER NOT NULL REFERENCES runs(id), layer INTEGER NOT NULL, epoch INTEGER NOT NULL,
    loss REAL NOT NULL, test_accuracy REAL, evaluations INTEGER NOT NULL, evaluations_per_s REAL,
    time REAL NOT NULL, PRIMARY KEY (run_id, layer, epoch)
);
CREATE TABLE arrays (
    run_id INTEGER NOT NULL REFERENCES runs(id), name TEXT NOT NULL, dtype TEXT NOT NULL,
    shape TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (run_id, name)
);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO runs (uid, kind, protocol_json, software_version, host, pid, started_at, stopped_at, exit_status,
                  test_accuracy, layer_accuracy, evaluations, wall_s)
    VALUES ('0123456789abcdef', 'dry-run', '{}', '0.0.1', 'old-host', 1, 1.7e9, 1.7e9 + 60, 'complete',
            0.875, '[0.85, 0.875]', 1000, 60.0);
INSERT INTO epochs VALUES (1, 0, 0, 0.4, 0.85, 500, 100.0, 1.7e9 + 30);
"""


def _old_store(folder: Path, script: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(folder / DB_NAME)
    db.executescript(script)
    db.close()
    return folder


def _version(folder: Path) -> int | None:
    db = sqlite3.connect(folder / DB_NAME)
    try:
        return schema_version(db)
    finally:
        db.close()


def test_every_version_before_the_current_one_has_an_upgrade() -> None:
    assert sorted(UPGRADES) == list(range(1, SCHEMA_VERSION))


def test_a_new_store_is_created_at_the_current_version(tmp_path: Path) -> None:
    RunStore(tmp_path).close()
    assert _version(tmp_path) == SCHEMA_VERSION


def test_a_schema_1_store_is_upgraded_and_keeps_its_runs(tmp_path: Path) -> None:
    folder = _old_store(tmp_path / "runs", SCHEMA_1)
    store = RunStore(folder)
    try:
        [run] = store.list_runs()
        assert (run.uid, run.status, run.test_accuracy, run.resumes) == ("0123456789abcdef", "complete", 0.875, 0)
        assert store.epochs(run.id)[0]["test_accuracy"] == 0.85
        columns = {row[1] for row in store.db.execute("PRAGMA table_info(runs)")}
        assert {"method", "device_json", "resumed_at", "resumes", "metric"} <= columns
        assert store.steps(run.id) == []  # the step tables exist now, empty for the old run
    finally:
        store.close()
    assert _version(folder) == SCHEMA_VERSION


def test_a_schema_2_store_without_the_metric_column_gains_it(tmp_path: Path) -> None:
    folder = _old_store(tmp_path / "runs", SCHEMA_1)
    db = sqlite3.connect(folder / DB_NAME)
    UPGRADES[1](db)  # as schema 2 was first written: without runs.metric and steps.accuracy
    db.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    db.commit()
    assert "metric" not in {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    db.execute("ALTER TABLE steps DROP COLUMN accuracy")
    db.commit()
    db.close()
    store = RunStore(folder)
    try:
        assert "metric" in {row[1] for row in store.db.execute("PRAGMA table_info(runs)")}
        assert "accuracy" in {row[1] for row in store.db.execute("PRAGMA table_info(steps)")}
        assert store.list_runs()[0].evaluations == 1000
    finally:
        store.close()
    assert _version(folder) == SCHEMA_VERSION


def test_a_store_from_before_schema_4_shows_what_it_did_not_record(tmp_path: Path) -> None:
    folder = _old_store(tmp_path / "runs", SCHEMA_1)
    result = CliRunner().invoke(app, ["runs", "show", "1", "--runs-dir", str(folder)])
    assert result.exit_code == 0, result.stderr
    assert "protocol not recorded  overrides not recorded" in result.stdout
    assert "software ffzero-lab 0.0.1  git not recorded" in result.stdout
    columns = {row[1] for row in sqlite3.connect(folder / DB_NAME).execute("PRAGMA table_info(runs)")}
    assert {"overrides_json", "git_commit"} <= columns


def test_a_newer_store_is_refused_in_one_line_and_left_as_it_is(tmp_path: Path) -> None:
    folder = _old_store(tmp_path / "runs", SCHEMA_1.replace("('schema_version', '1')", "('schema_version', '99')"))
    with pytest.raises(UserError, match="schema 99, written by a newer ffzero-lab"):
        RunStore(folder)
    assert _version(folder) == 99
    result = CliRunner().invoke(app, ["runs", "list", "--runs-dir", str(folder)])
    assert result.exit_code == 2
    assert "newer ffzero-lab" in result.output and "Traceback" not in result.output


def test_a_store_from_before_schema_5_gains_the_ledger_column_and_shows_no_instrument_time(tmp_path: Path) -> None:
    folder = _old_store(tmp_path / "runs", SCHEMA_1)
    store = RunStore(folder)
    try:
        assert store.instrument_time_s(1) is None
    finally:
        store.close()
    columns = {row[1] for row in sqlite3.connect(folder / DB_NAME).execute("PRAGMA table_info(steps)")}
    assert "instrument_s" in columns
    result = CliRunner().invoke(app, ["runs", "show", "1", "--runs-dir", str(folder)])
    assert result.exit_code == 0, result.stderr
    assert "time: wall" not in result.stdout  # no step recorded instrument time
