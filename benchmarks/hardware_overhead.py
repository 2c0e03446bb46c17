"""Overhead of training through the real drivers: orchestrator + drivers + pyvisa against instrument time.

The emulated rig (rig.emulated.yaml, its chip seed matching calibration/emulated.yaml) is served on
free 127.0.0.1 ports with a reply latency of ``--latency-ms`` (1 ms) per command on every
instrument; protocols/rig_4mode.yaml trains on it through pyvisa-py sockets and the real Qontrol and
N7744A drivers, in this process, once per K in ``--directions``.

Instrument time is what the rig itself takes: the emulator's reply latency summed over every
command it answered, plus the settle waits after heater writes (``settle_time_s`` after a phase
setting, ``input_settle_time_s`` after the input modulators). The rest of the wall time is
overhead: in the drivers' calls (pyvisa, sockets, the drivers' checks), the emulator's own work
(its chip model; it runs in this process, so its threads share the interpreter), or outside the
calls (orchestrator, goodness and loss, the layer's bookkeeping: "host"). The overhead fraction
is (wall - instrument - emulator) / instrument: what the software adds to what the rig takes. Heater
settles are counted per DD step (expected 2K + 1: one per perturbed setting and one for the
write-back).

Usage: uv run python benchmarks/hardware_overhead.py [--latency-ms 1] [--directions 2 5] [--set train.epochs=1 ...]

Prints a table, then as its last line one JSON object with the same figures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from common import ROOT, machine, report

from drivers.emulated.rig import EmulatedRig
from ffzero_lab.hardware import load_specs, open_network
from ffzero_lab.orchestrator import Orchestrator
from ffzero_lab.protocol import load_protocol
from ffzero_lab.runner import prepare


def emulated_rig(folder: Path, latency_s: float) -> EmulatedRig:
    doc = yaml.safe_load((ROOT / "rig.emulated.yaml").read_text())
    doc["instruments_file"] = str(ROOT / "instruments.emulated.yaml")
    doc["instruments"] = {name: {**served, "latency_s": latency_s} for name, served in doc["instruments"].items()}
    path = folder / "rig.yaml"
    path.write_text(yaml.safe_dump(doc))
    return EmulatedRig.from_file(path, any_port=True)


def measure(rig: EmulatedRig, folder: Path, protocol_path: str, overrides: list[str], directions: int) -> dict[str, Any]:
    instruments = rig.instruments_config().model_dump(mode="json", exclude_none=True)
    instruments["calibration"] = str(ROOT / "calibration" / "emulated.yaml")
    path = folder / "instruments.yaml"
    path.write_text(yaml.safe_dump(instruments))
    protocol, _ = load_protocol(protocol_path, [*overrides, f"train.directions={directions}", "record.measurements=false"])
    config, specs = load_specs(path)
    network = open_network(config, specs, seed=protocol.seed, source=str(path))
    counters = network.rig.counters
    settles: list[int] = []

    def on_step(name: str, doc: dict[str, Any]) -> None:
        if name == "step":
            settles.append(counters.phase_settles)

    try:
        prepared = prepare(protocol, protocol_path, None, network)
        busy_before = {n: s.busy_s for n, s in rig.servers.items()}
        handler_before = {n: s.handler_s for n, s in rig.servers.items()}
        commands_before = {n: s.commands for n, s in rig.servers.items()}
        started = time.perf_counter()
        result = Orchestrator(protocol, network, prepared.dataset, [on_step], prepared.seeds).run()
        wall = time.perf_counter() - started
    finally:
        network.safe_state()
        network.close()
    busy = sum(s.busy_s - busy_before[n] for n, s in rig.servers.items())
    emulator = sum(s.handler_s - handler_before[n] for n, s in rig.servers.items())
    commands = {n: s.commands - commands_before[n] for n, s in rig.servers.items()}
    per_step = np.diff([0, *settles])
    instrument = busy + counters.settle_s
    return {
        "directions": directions, "steps": len(settles), "evaluations": result.evaluations,
        "commands": commands, "latency_s": busy, "settle_s": counters.settle_s, "instrument_s": instrument,
        "emulator_s": emulator, "driver_s": counters.io_s - busy - emulator,
        "host_s": wall - counters.io_s - counters.settle_s, "wall_s": wall,
        "overhead_fraction": (wall - instrument - emulator) / instrument,
        "settles_per_step": {"min": int(per_step.min()), "max": int(per_step.max()), "expected": 2 * directions + 1},
        "test_accuracy": result.test_accuracy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default=str(ROOT / "protocols" / "rig_4mode.yaml"))
    parser.add_argument("--latency-ms", type=float, default=1.0)
    parser.add_argument("--directions", type=int, nargs="+", default=[2, 5])
    parser.add_argument("--set", dest="overrides", action="append",
                        default=["train.epochs=1", "data.train_limit=128", "data.test_limit=64"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, emulated_rig(Path(tmp), args.latency_ms / 1e3) as rig:
        runs = [measure(rig, Path(tmp), args.protocol, args.overrides, k) for k in args.directions]
    rows = [[str(r["directions"]), str(r["steps"]), f"{r['evaluations']:,}", f"{sum(r['commands'].values()):,}",
             f"{r['latency_s']:.2f}", f"{r['settle_s']:.2f}", f"{r['emulator_s']:.2f}", f"{r['driver_s']:.2f}",
             f"{r['host_s']:.2f}",
             f"{r['wall_s']:.2f}", f"{100 * r['overhead_fraction']:.0f} %",
             f"{r['settles_per_step']['min']}-{r['settles_per_step']['max']} ({r['settles_per_step']['expected']})"]
            for r in runs]
    report(f"training through the drivers, emulated rig at {args.latency_ms:g} ms per command",
           ["K", "steps", "evaluations", "commands", "latency s", "settle s", "emulator s", "drivers s", "host s",
            "wall s", "overhead / instrument", "settles per step (2K+1)"], rows,
           {"benchmark": "hardware_overhead", "latency_ms": args.latency_ms, "runs": runs, "machine": machine()})


if __name__ == "__main__":
    main()
