"""Simulated-chip throughput: perturbed settings evaluated per second, fast path vs neurophox.

The fast path evaluates the 2K perturbed settings of one step as one batch
(``SimulatedMesh.evaluate``). The naive path does what a neurophox user would: for each
setting, put the phases on an ``RMNumpy``, rebuild its layers, take ``.matrix`` and multiply
the batch. Both run in this one process on one core (BLAS and OpenMP threads pinned to 1), so
the ratio is what counts on a shared machine.

Usage: uv run python benchmarks/sim_throughput.py [--modes 64] [--batch 64] [--directions 10]

Prints a table, then as its last line one JSON object with the same figures.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from drivers.simulated.mesh import MeshSettings, SimulatedMesh  # noqa: E402


def timed(fn, min_seconds: float = 3.0) -> tuple[float, int]:
    """Mean seconds per call of ``fn`` over at least ``min_seconds`` (after one warm-up call)."""
    fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds:
        fn()
        calls += 1
    return (time.perf_counter() - start) / calls, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--directions", type=int, default=10, help="K; 2K settings per step")
    parser.add_argument("--naive-settings", type=int, default=6, help="settings timed on the naive path")
    args = parser.parse_args()
    n, b, s = args.modes, args.batch, 2 * args.directions

    from neurophox.numpy import RMNumpy

    rng = np.random.default_rng(0)
    x = rng.random((b, n))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rows = []
    for precision in ("double", "single"):
        mesh = SimulatedMesh(n, MeshSettings(precision=precision), seed=0)
        settings = mesh.get_parameters() + 0.01 * rng.standard_normal((s, mesh.n_params))
        per_call, calls = timed(lambda: mesh.evaluate(x, settings))
        rows.append({"path": f"batched ({precision})", "settings_per_s": s / per_call, "calls": calls})

    mesh = SimulatedMesh(n, MeshSettings(), seed=0)
    naive_settings = mesh.get_parameters() + 0.01 * rng.standard_normal((args.naive_settings, mesh.n_params))
    reference = RMNumpy(n, basis="sm")
    unpacked = mesh.unpack(naive_settings)

    def naive() -> np.ndarray:
        out = []
        for i in range(args.naive_settings):
            reference.theta, reference.phi = unpacked[0][i], unpacked[1][i]
            reference.gamma = unpacked[2][i][None]
            reference.mesh_layers = reference.mesh.mesh_layers(reference.phases)
            out.append(np.abs(x @ reference.matrix) ** 2)
        return np.stack(out)

    per_call, calls = timed(naive)
    rows.append({"path": "naive neurophox (rebuild + .matrix per setting)",
                 "settings_per_s": args.naive_settings / per_call, "calls": calls})
    naive_rate = rows[-1]["settings_per_s"]
    for r in rows:
        r["ratio_to_naive"] = r["settings_per_s"] / naive_rate

    console = Console(width=120)
    table = Table(title=f"simulated chip throughput: N={n} modes, batch {b}, 2K={s} settings/step, 1 thread")
    for col in ("path", "settings/s", "x naive", "timed calls"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["path"], f"{r['settings_per_s']:,.0f}", f"{r['ratio_to_naive']:.1f}", str(r["calls"]))
    console.print(table)
    print(json.dumps({"benchmark": "sim_throughput", "modes": n, "batch": b, "settings_per_step": s,
                      "threads": 1, "rows": rows,
                      "best_settings_per_s": max(r["settings_per_s"] for r in rows[:2]),
                      "best_ratio_to_naive": max(r["ratio_to_naive"] for r in rows[:2])}))


if __name__ == "__main__":
    main()
