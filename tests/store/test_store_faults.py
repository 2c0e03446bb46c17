"""The run store under faults: a full disk or a store another program holds ends the run with
one line and the reason recorded where the store still takes it; committed steps are kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ffzero_lab.cli.app import app
from ffzero_lab.store import runstore
from ffzero_lab.store.runstore import RunStore

ROOT = Path(__file__).resolve().parents[2]
ARGS = [str(ROOT / "protocols" / "quickstart.yaml"), "--set", "train.epochs=3", "--set", "data.train_limit=256",
        "--set", "data.test_limit=64", "--set", "device.settings.init=random", "--set", "record.measurements=true",
        "-q"]


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert "Traceback" not in output
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, output
    return errors[0]


def test_a_full_disk_stops_the_run_with_one_line_and_keeps_what_was_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    RunStore(tmp_path).close()
    real_connect = runstore.connect

    def small_disk(path: Path) -> sqlite3.Connection:  # SQLITE_FULL once the file grows by ~2 MB
        db = real_connect(path)
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages + 500}")
        return db

    monkeypatch.setattr(runstore, "connect", small_disk)
    result = CliRunner().invoke(app, ["dry-run", *ARGS, "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.stderr)
    assert "the run store could not be written (database or disk is full)" in line
    assert str(tmp_path / "runs.sqlite") in line
    monkeypatch.setattr(runstore, "connect", real_connect)
    store = RunStore(tmp_path)
    try:
        [run] = store.list_runs()
        assert run.status == "failed"
        assert "database or disk is full" in store.run_row(run.id)["reason"]
        steps = store.steps(run.id)
        assert 0 < len(steps) < 3 * 8  # some committed before the disk filled, not all
        checkpoint = store.checkpoint(run.id)
        assert checkpoint is not None and checkpoint.version == max(s["version"] for s in steps)
    finally:
        store.close()


def test_a_store_that_cannot_be_opened_for_writing_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    folder.write_text("not a folder")
    result = CliRunner().invoke(app, ["dry-run", *ARGS, "--runs-dir", str(folder)])
    assert result.exit_code == 2
    assert "cannot open the run store" in _one_error_line(result.stderr)


def test_a_store_locked_by_another_program_stops_the_run_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    RunStore(tmp_path).close()
    real_connect = runstore.connect

    def impatient(path: Path) -> sqlite3.Connection:  # wait 0.2 s for the lock, not 30
        db = real_connect(path)
        db.execute("PRAGMA busy_timeout = 200")
        return db

    monkeypatch.setattr(runstore, "connect", impatient)
    holder = sqlite3.connect(tmp_path / "runs.sqlite", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another program holds the store (readers still read: WAL)
    try:
        result = CliRunner().invoke(app, ["dry-run", *ARGS, "--runs-dir", str(tmp_path)])
    finally:
        holder.close()
    assert result.exit_code == 2, result.output
    assert "the run store could not be written (database is locked)" in _one_error_line(result.stderr)
