"""Quickstart accuracy, start-up and training time over seeds; the realistic preset against the ideal one.

Start-up (``startup``): a fresh interpreter, as ``ffzero-lab dry-run`` starts, up to the end of the
first training step: imports (TensorFlow through neurophox's Haar initialisation, numba with the
kernel's cached machine code), the protocol, the data, the chip, one step of layer 0 (2K settings
of one mini-batch). Wall and CPU seconds and resident memory. Training: each seed's run in this
process (``Orchestrator.run``), wall and CPU seconds (CPU of every thread, so 2 kernel threads
count twice when they run side by side). Peak memory: this process's, after the runs.

Usage: uv run python benchmarks/quickstart.py [--seeds 0 1 2] [--presets ideal realistic] [--set F=V ...]

Prints a table (one row per preset and seed, settings in the title), then as its last line one
JSON object with the same figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from common import ROOT, fmt_layers, machine, report, run_protocol, train_settings

#: Run in a fresh interpreter: the time and memory until the first step has been evaluated.
STARTUP = """
import time
wall, cpu = time.perf_counter(), time.process_time()
import sys, json, resource
from ffzero_lab.cli.app import app  # what the command imports before it parses its arguments
from ffzero_lab.config.protocol import load_protocol
from ffzero_lab.data.datasets import resolve_data_dir
from ffzero_lab.run.prepare import prepare
protocol, _ = load_protocol(sys.argv[1], sys.argv[2:])
prepared = prepare(protocol, sys.argv[1], resolve_data_dir(None))
layer = prepared.network.layers[0]
import numpy as np
from ffzero_lab.ffzero.encoding import amplitude
settings = layer.get_parameters() + 0.01 * np.ones((2 * protocol.train.directions, layer.n_params))
layer.evaluate(amplitude(prepared.dataset.x_train[: protocol.train.batch_size]), settings)
print(json.dumps({"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
                  "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def startup(protocol: str, overrides: list[str]) -> dict[str, float]:
    """Start-up to the first step in a fresh interpreter (see :data:`STARTUP`)."""
    out = subprocess.run([sys.executable, "-c", STARTUP, protocol, *overrides], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default=str(ROOT / "protocols" / "quickstart.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--presets", nargs="+", default=["ideal"])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    start = startup(args.protocol, args.overrides)
    runs = []
    for preset in args.presets:
        for seed in args.seeds:
            cpu = time.process_time()
            protocol, result = run_protocol(args.protocol, [*args.overrides, f"seed={seed}",
                                                            f"device.settings.preset={preset}"])
            runs.append({"preset": preset, "seed": seed, **result, "cpu_s": time.process_time() - cpu})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [[r["preset"], str(r["seed"]), f"{r['test_accuracy']:.4f}", fmt_layers(r["layer_accuracy"]),
             f"{r['evaluations']:,}", f"{r['wall_s']:.1f}", f"{r['cpu_s']:.1f}"] for r in runs]
    by_preset = {p: [r["test_accuracy"] for r in runs if r["preset"] == p] for p in args.presets}
    mean = {p: sum(v) / len(v) for p, v in by_preset.items()}
    summary = {"benchmark": "quickstart", "protocol": args.protocol, "overrides": args.overrides,
               "train": train_settings(protocol), **machine(), "runs": runs,
               "mean_test_accuracy": mean, "min_test_accuracy": {p: min(v) for p, v in by_preset.items()},
               "max_wall_s": max(r["wall_s"] for r in runs), "max_training_cpu_s": max(r["cpu_s"] for r in runs),
               "startup_wall_s": start["wall_s"], "startup_cpu_s": start["cpu_s"],
               "startup_peak_rss_MB": start["peak_rss_MB"], "peak_rss_MB": peak,
               "load_average": os.getloadavg()[0]}
    if "ideal" in mean and "realistic" in mean:
        summary["realistic_loss_points"] = 100 * (mean["ideal"] - mean["realistic"])
    report(f"quickstart dry run; {train_settings(protocol)}; start-up to the first step {start['wall_s']:.1f} s "
           f"wall, {start['cpu_s']:.1f} s CPU; peak {peak:.0f} MB; load average {os.getloadavg()[0]:.1f} "
           f"on {os.cpu_count()} CPUs (shared machine)",
           ["preset", "seed", "voted test acc.", "per layer", "evaluations", "training wall s", "training CPU s"],
           rows, summary)


if __name__ == "__main__":
    main()
