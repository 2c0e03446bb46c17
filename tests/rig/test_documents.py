"""A run on the (emulated) rig publishes valid Bluesky documents: the repository's 4-mode protocol
through the real drivers, every document checked against event-model's schemas."""

from __future__ import annotations

from pathlib import Path

from drivers.emulated.rig import EmulatedRig
from tests.live.test_documents import assert_valid_bluesky_run, published

from .conftest import ROOT, live_instruments_file


def test_a_rig_run_publishes_valid_bluesky_documents(emulated: EmulatedRig, tmp_path: Path) -> None:
    instruments = live_instruments_file(emulated, tmp_path)
    result, docs = published(["run", str(ROOT / "protocols" / "rig_4mode.yaml"), "--instruments", str(instruments),
                              "--set", "train.epochs=2", "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert result.exit_code == 0, result.stderr
    streams = assert_valid_bluesky_run(docs)
    start, stop = docs[0][1], docs[-1][1]
    assert stop["exit_status"] == "success" and start["protocol"]["name"] == "rig-4-mode"
    assert len(streams["epoch"]) == 2 and len(streams["step"]) == len(streams["taps"]) == 2 * 16  # 256 / 16
    assert all(len(t["tap"]) == len(t["prototype"]) == 4 and len(t["goodness"]) == 10 for t in streams["taps"])
