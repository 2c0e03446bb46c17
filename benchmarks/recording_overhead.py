"""Cost of recording every evaluation: the quickstart with and without measurements recorded.

Both variants run in this one process, alternately (A B A B ...), each into a fresh run store
in a temporary folder; the wall time includes draining the store's writer queue. With
``record.measurements`` on, every step stores its direction seed and draw, base parameters,
samples and all raw readings.

Usage: uv run python benchmarks/recording_overhead.py [--repeats 2] [--set train.epochs=10 ...]

Prints a table, then as its last line one JSON object with the same figures.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from common import ROOT, machine, report, train_settings

from ffzero_lab.config.protocol import load_protocol
from ffzero_lab.run.orchestrator import Orchestrator
from ffzero_lab.run.prepare import prepare
from ffzero_lab.store.runstore import StoreSink


def timed_run(path: str, overrides: list[str], measurements: bool) -> dict:
    protocol, text = load_protocol(path, [*overrides, f"record.measurements={str(measurements).lower()}"])
    prepared = prepare(protocol, path, None)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        sink = StoreSink(Path(folder), "dry-run", text, path, "bench")
        Orchestrator(protocol, prepared.network, prepared.dataset, [sink], prepared.seeds).run()
        sink.close()
        wall = time.perf_counter() - started
        size = (Path(folder) / "runs.sqlite").stat().st_size + sum(
            p.stat().st_size for p in Path(folder).glob("runs.sqlite-*"))
        with sqlite3.connect(Path(folder) / "runs.sqlite") as db:
            steps = db.execute("SELECT COUNT(*) FROM steps").fetchone()[0]
            measured = db.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
    return {"measurements": measurements, "wall_s": wall, "store_MB": size / 1e6, "steps": steps,
            "measurement_rows": measured, "protocol": protocol}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default=str(ROOT / "protocols" / "quickstart.yaml"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=["train.epochs=10"])
    args = parser.parse_args()
    runs = [timed_run(args.protocol, args.overrides, m) for _ in range(args.repeats) for m in (False, True)]
    protocol = runs[0].pop("protocol")
    for r in runs[1:]:
        r.pop("protocol")
    off = min(r["wall_s"] for r in runs if not r["measurements"])
    on = min(r["wall_s"] for r in runs if r["measurements"])
    rows = [["on" if r["measurements"] else "off", f"{r['wall_s']:.2f}", f"{r['store_MB']:.1f}", str(r["steps"]),
             str(r["measurement_rows"])] for r in runs]
    summary = {"benchmark": "recording_overhead", "overrides": args.overrides, "train": train_settings(protocol),
               **machine(), "runs": runs, "best_wall_off_s": off, "best_wall_on_s": on,
               "overhead_fraction": (on - off) / off}
    report(f"recording every evaluation, quickstart {args.overrides}: overhead {100 * (on - off) / off:.1f} % "
           f"(best of {args.repeats})", ["measurements", "wall s", "store MB", "steps", "measurement rows"], rows,
           summary)


if __name__ == "__main__":
    main()
