"""Quickstart accuracy and wall time over seeds: the embedded default's promise, measured.

Usage: uv run python benchmarks/quickstart.py [--seeds 0 1 2] [--set FIELD=VALUE ...]

Prints a table (one row per seed, with the settings), then as its last line one JSON object
with the same figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ffzero_lab.orchestrator import Orchestrator
from ffzero_lab.protocol import load_protocol
from ffzero_lab.runner import prepare

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default=str(ROOT / "protocols" / "quickstart.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    rows = []
    for seed in args.seeds:
        protocol, _ = load_protocol(args.protocol, [*args.overrides, f"seed={seed}"])
        prepared = prepare(protocol, args.protocol, None)
        result = Orchestrator(protocol, prepared.network, prepared.dataset, [], prepared.seeds).run()
        rows.append({"seed": seed, "test_accuracy": result.test_accuracy,
                     "layer_accuracy": result.layer_accuracy, "evaluations": result.evaluations,
                     "wall_s": result.wall_s})

    t = protocol.train
    settings = {"protocol": os.path.relpath(args.protocol, ROOT), "overrides": args.overrides,
                "epochs": t.epochs, "batch_size": t.batch_size, "optimizer": t.optimizer, "lr": t.lr,
                "directions": t.directions, "eps": t.eps, "margin": t.margin,
                "cpus": os.cpu_count(), "python": platform.python_version()}
    console = Console(width=120)
    table = Table(title="quickstart dry run: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    for col in ("seed", "voted test acc.", "per layer", "evaluations", "wall s"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r["seed"]), f"{r['test_accuracy']:.4f}",
                      " ".join(f"{a:.3f}" for a in r["layer_accuracy"]), f"{r['evaluations']:,}",
                      f"{r['wall_s']:.1f}")
    console.print(table)
    accs = [r["test_accuracy"] for r in rows]
    summary = {"benchmark": "quickstart", "settings": settings, "runs": rows,
               "min_test_accuracy": min(accs), "mean_test_accuracy": sum(accs) / len(accs),
               "max_wall_s": max(r["wall_s"] for r in rows)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
