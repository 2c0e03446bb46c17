"""Sweep scaling: the same 16-cell sweep on a LocalCluster of 1 worker, then of 2.

Each cell trains quickstart on the digital device (2 layers of 32, full digits, 100 epochs per
layer: about 4 s of single-threaded numpy on a quiet core); the grid is seed x learning rate,
so the cells cost about the same. Each run starts from a fresh output folder and a fresh
cluster, in this one process; the pair (1 worker, 2 workers) is repeated and the fastest run
of each counts, the one least disturbed by other work on a shared machine.

The speed-up is given two ways: over the whole sweep (cluster start, worker warm-up and cells)
and over the cells alone (first submission to last stored record). Whether other work was
competing for the cores shows in the 1-minute load average before and after each run, in how
much longer a cell took on 2 workers than on 1, and in each cell's CPU time over its wall time
on its worker (1.0: the worker had its core to itself).

Usage: uv run python benchmarks/sweep_scaling.py [--epochs 100] [--repeat 2] [--set F=V ...]

Prints a table, then as its last line one JSON object with the same figures.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from common import ROOT, machine, report

from ffzero_lab.sweep.cluster import dask_client, run_cells
from ffzero_lab.sweep.grid import (
    ResultStore,
    expand,
    load_sweep,
    write_outputs,
)

FIXED = {"device.driver": "digital", "device.settings": {}, "network.activation": {}, "data.encoding": "raw",
         "network.width": 32, "network.layers": 2, "train.eps": 0.01, "record.measurements": False}
GRID = {"seed": list(range(8)), "train.lr": [0.01, 0.005]}


def timed_sweep(path: Path, output: Path, workers: int) -> dict[str, Any]:
    sweep = load_sweep(path)
    cells = expand(sweep)
    store = ResultStore(output)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    with dask_client(workers=workers) as client:
        ready = time.perf_counter()
        records = run_cells(client, cells, store)
        done = time.perf_counter()
    write_outputs(sweep, cells, store)
    failed = [r for r in records if r["status"] != "complete"]
    if failed:
        raise SystemExit(f"{len(failed)} cells failed: {failed[0]['error']}")
    busy = sum(r["cell_s"] for r in records)
    return {"workers": workers, "cells": len(records), "total_s": done - start, "cells_s": done - ready,
            "cluster_start_s": ready - start, "cell_busy_s": busy,
            "cell_cpu_s": sum(r["cpu_s"] for r in records),
            "train_s": sum(r["result"]["wall_s"] for r in records), "load_before": load,
            "load_after": os.getloadavg()[0],
            "mean_accuracy": sum(r["result"]["test_accuracy"] for r in records) / len(records)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=2, help="Pairs of runs (1 worker, 2 workers); the best counts.")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    fixed = {**FIXED, "train.epochs": args.epochs}
    for item in args.overrides:
        key, _, value = item.partition("=")
        fixed[key] = yaml.safe_load(value)
    runs = []
    with tempfile.TemporaryDirectory(prefix="sweep-scaling-") as tmp:
        folder = Path(tmp)
        path = folder / "scaling.yaml"
        path.write_text(yaml.safe_dump({"name": "scaling", "protocol": str(ROOT / "protocols" / "quickstart.yaml"),
                                        "set": fixed, "grid": GRID}, sort_keys=False))
        for i in range(args.repeat):
            runs += [timed_sweep(path, folder / f"out-{i}-{n}", n) for n in (1, 2)]
    one = min((r for r in runs if r["workers"] == 1), key=lambda r: r["total_s"])
    two = min((r for r in runs if r["workers"] == 2), key=lambda r: r["total_s"])
    rows = [[str(r["workers"]), str(r["cells"]), f"{r['total_s']:.1f}", f"{r['cells_s']:.1f}",
             f"{r['cluster_start_s']:.1f}", f"{r['cell_busy_s']:.1f}", f"{r['cell_cpu_s'] / r['cell_busy_s']:.2f}",
             f"{r['train_s']:.1f}", f"{r['mean_accuracy']:.3f}", f"{r['load_before']:.1f} / {r['load_after']:.1f}",
             "*" if r is one or r is two else ""] for r in runs]
    summary = {"benchmark": "sweep_scaling", "fixed": fixed, "grid": GRID, **machine(), "runs": runs,
               "speedup_total": one["total_s"] / two["total_s"], "speedup_cells": one["cells_s"] / two["cells_s"],
               "cell_slowdown": two["cell_busy_s"] / one["cell_busy_s"],
               "cpu_per_wall": {"1": one["cell_cpu_s"] / one["cell_busy_s"],
                                "2": two["cell_cpu_s"] / two["cell_busy_s"]}}
    report(f"16-cell sweep on 1 vs 2 local Dask workers, best of {args.repeat} (*): speed-up "
           f"{summary['speedup_total']:.2f}x overall, {summary['speedup_cells']:.2f}x over the cells; a cell took "
           f"{summary['cell_slowdown']:.2f}x as long on 2 workers (over 1: other work on the machine, or memory "
           "bandwidth; CPU / cell s below 1: the worker waited for a core)",
           ["workers", "cells", "total s", "cells s", "cluster start s", "sum of cell s", "CPU / cell s",
            "sum of train s", "mean acc.", "load avg. before / after", "best"], rows, summary)


if __name__ == "__main__":
    main()
