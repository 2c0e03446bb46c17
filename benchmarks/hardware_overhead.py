"""Overhead of training through the real drivers: orchestrator + drivers + pyvisa against instrument time.

The emulated rig (rig.emulated.yaml, its chip seed matching calibration/emulated.yaml) is served on
free 127.0.0.1 ports with a reply latency of ``--latency-ms`` (1 ms) per command on every
instrument; protocols/rig_4mode.yaml trains on it through pyvisa-py sockets and the real Qontrol and
N7744A drivers, in this process, once per K in ``--directions``.

Instrument time is what the rig itself takes: the emulator's reply latency as configured, per
command (what it waited is measured too; any excess counts as transport), plus the settle waits after heater \
writes (``settle_time_s`` after a phase setting,
``input_settle_time_s`` after the input modulators). Around it (see DEFINITIONS, printed with the
table): *transport* is pyvisa-py and the loopback sockets (the time inside pyvisa's calls less the
latency and the emulator's own work); *drivers* is the drivers' code (limits, budget, command
formatting: the time inside the rig's instrument calls less the time inside pyvisa); *host* is
everything else (orchestrator, goodness and loss, the layers' bookkeeping). The emulator runs in
this process on its own threads; its chip model's work is measured by its servers and excluded.
The overhead the software adds is (host + drivers) / instrument; transport / instrument is printed
beside it, and so is the sum of the three. The overhead is also given from this thread's CPU time
(``time.thread_time``), which other work on a shared machine does not inflate. Heater settles are
counted per DD step (expected 2K + 1: one per perturbed setting and one for the write-back).

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
from ffzero_lab.config.protocol import load_protocol
from ffzero_lab.rig import build_rig_network, load_specs
from ffzero_lab.run.orchestrator import Orchestrator
from ffzero_lab.run.prepare import prepare

DEFINITIONS = """\
instrument = latency (the emulator's reply latency as configured, every command) + settle (the waits after \
heater writes)
transport  = time inside pyvisa calls - latency - emulator: pyvisa-py, the 127.0.0.1 sockets, the emulator's \
line handling
             and anything its latency waits overran (a busy machine)
emulator   = the emulated instruments' own work (chip model), excluded: a real rig does it in its own hardware
drivers    = time inside the rig's instrument calls - time inside pyvisa: limits, budget, command formatting, retries
host       = wall - instrument calls - settle waits: orchestrator, goodness and loss, the layers' bookkeeping
overhead   = (host + drivers) / instrument; transport / instrument and all three / instrument are printed beside it
overhead, CPU = the same from this thread's CPU time (time.thread_time): all of it but the CPU inside pyvisa's
             calls and in the settle waits; other work on the machine does not inflate it as it does wall time"""


def emulated_rig(folder: Path, latency_s: float) -> EmulatedRig:
    doc = yaml.safe_load((ROOT / "rig.emulated.yaml").read_text())
    doc["instruments_file"] = str(ROOT / "instruments.emulated.yaml")
    doc["instruments"] = {name: {**served, "latency_s": latency_s} for name, served in doc["instruments"].items()}
    path = folder / "rig.yaml"
    path.write_text(yaml.safe_dump(doc))
    return EmulatedRig.from_file(path, any_port=True)


def measure(
    rig: EmulatedRig, folder: Path, protocol_path: str, overrides: list[str], directions: int
) -> dict[str, Any]:
    instruments = rig.instruments_config().model_dump(mode="json", exclude_none=True)
    instruments["calibration"] = str(ROOT / "calibration" / "emulated.yaml")
    path = folder / "instruments.yaml"
    path.write_text(yaml.safe_dump(instruments))
    protocol, _ = load_protocol(
        protocol_path, [*overrides, f"train.directions={directions}", "record.measurements=false"]
    )
    config, specs = load_specs(path)
    network = build_rig_network(config, specs, seed=protocol.seed, source=str(path))
    counters = network.rig.counters
    settles: list[int] = []

    def on_step(name: str, doc: dict[str, Any]) -> None:
        if name == "step":
            settles.append(counters.phase_settles)

    drivers = network.rig.drivers
    try:
        prepared = prepare(protocol, protocol_path, None, network)
        busy_before = {n: (s.busy_s, s.delay_s) for n, s in rig.servers.items()}
        handler_before = {n: s.handler_s for n, s in rig.servers.items()}
        commands_before = {n: s.commands for n, s in rig.servers.items()}
        visa_before = {n: (d.visa_s, d.visa_cpu_s) for n, d in drivers.items()}
        io_before = (counters.io_s, counters.settle_s, counters.settle_cpu_s)
        started, cpu_started = time.perf_counter(), time.thread_time()
        result = Orchestrator(protocol, network, prepared.dataset, [on_step], prepared.seeds).run()
        wall, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
        visa = sum(d.visa_s - visa_before.get(n, (0.0, 0.0))[0] for n, d in drivers.items())
        visa_cpu = sum(d.visa_cpu_s - visa_before.get(n, (0.0, 0.0))[1] for n, d in drivers.items())
    finally:
        network.safe_state()
        network.close()
    latency = sum(s.delay_s - busy_before[n][1] for n, s in rig.servers.items())  # as configured
    waited = sum(s.busy_s - busy_before[n][0] for n, s in rig.servers.items())  # as measured
    emulator = sum(s.handler_s - handler_before[n] for n, s in rig.servers.items())
    commands = {n: s.commands - commands_before[n] for n, s in rig.servers.items()}
    io, settle, settle_cpu = (now - before for now, before in zip(
        (counters.io_s, counters.settle_s, counters.settle_cpu_s), io_before, strict=True))
    per_step = np.diff([0, *settles])
    instrument = latency + settle
    transport = visa - latency - emulator
    driver, host = io - visa, wall - io - settle
    software_cpu = cpu - visa_cpu - settle_cpu  # host + drivers, this thread's CPU
    return {
        "directions": directions, "steps": len(settles), "evaluations": result.evaluations,
        "commands": commands, "retries": counters.retries,
        "latency_s": latency, "latency_waited_s": waited, "settle_s": settle, "instrument_s": instrument,
        "emulator_s": emulator, "transport_s": transport, "driver_s": driver, "host_s": host, "wall_s": wall,
        "transport_per_command_ms": 1e3 * transport / sum(commands.values()),
        "overhead_fraction": (host + driver) / instrument,
        "host_driver_cpu_s": software_cpu, "overhead_cpu_fraction": software_cpu / instrument,
        "transport_fraction": transport / instrument,
        "software_fraction": (host + driver + transport) / instrument,
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
             f"{r['latency_s']:.2f}", f"{r['settle_s']:.2f}", f"{r['emulator_s']:.2f}", f"{r['transport_s']:.2f}",
             f"{r['driver_s']:.2f}", f"{r['host_s']:.2f}", f"{r['wall_s']:.2f}",
             f"{100 * r['overhead_fraction']:.1f} %", f"{100 * r['overhead_cpu_fraction']:.1f} %",
             f"{r['transport_per_command_ms']:.3f}",
             f"{100 * r['transport_fraction']:.1f} %", f"{100 * r['software_fraction']:.1f} %",
             f"{r['settles_per_step']['min']}-{r['settles_per_step']['max']} ({r['settles_per_step']['expected']})"]
            for r in runs]
    print(DEFINITIONS)
    report(f"training through the drivers, emulated rig at {args.latency_ms:g} ms per command",
           ["K", "steps", "evaluations", "commands", "latency s", "settle s", "emulator s", "transport s",
            "drivers s", "host s", "wall s", "overhead (host + drivers) / instrument", "overhead, CPU",
            "transport ms / command", "transport / instrument", "all software / instrument",
            "settles per step (2K+1)"], rows,
           {"benchmark": "hardware_overhead", "latency_ms": args.latency_ms, "runs": runs, "machine": machine()})


if __name__ == "__main__":
    main()
