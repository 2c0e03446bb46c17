"""The quickstart protocol through a hardware-timed emulated bench against the direct simulator.

Both sides run protocols/quickstart.yaml (two 64-mode meshes, digits, FF+DD) with the same seed and
overrides (``--epochs`` sets ``train.epochs`` on both):

* direct: the simulated chip of the protocol's ``device`` section, as ``ffzero-lab dry-run`` trains it;
* rig: a bench written by ``ffzero-lab instruments emulated-rig --timing hardware --join optical``
  (per mesh an NI-DAQmx AO module for its 4096 heaters, one sample per phase setting; the first
  mesh's 64 input modulators on an AO module whose sample clock, 1 MS/s by default, is the sweep's
  master; a 64-channel AI module per mesh reading the photodiodes on that clock and start trigger;
  heater settle 20 us, so 20 samples dropped after each setting; one sample per input), served by
  ``ffzero-lab instruments emulate`` in a subprocess (the emulated NI gRPC device server on
  127.0.0.1, stopped by its pid), driven through the unmodified nidaqmx library over gRPC. Every
  DD step is one sweep per mesh evaluation: 2K settings x B inputs, a few block transfers.

Figures: voted test accuracy of both, training wall time of both and their ratio, the bench time
the ledger projects (settles and samples / rate: what a real bench would take), heater settles and
instrument transfers (driver calls) per DD step, and the host + driver CPU per evaluation on the
rig path (this process's CPU inside the meshes' ``propagate``: phases -> volts -> table checks ->
nidaqmx -> readings, per evaluation made there; the emulator's CPU is in its own process). The
rig starts from the simulator's initial matrices (as ``benchmarks/emulated_quickstart.py``).

Usage: uv run python benchmarks/hardware_timed.py [--epochs 60] [--seed 0] [--rate 1e6] [--settle-us 20]

Prints a table, then as its last line one JSON object with the same figures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from common import machine, report, train_settings
from emulated_quickstart import PROTOCOL, Dumper, Loader, rig_phases, start_emulator, stop_emulator, train_direct

from drivers.emulated.generate import write_emulated_rig
from drivers.simulated.mesh import ActivationSettings
from ffzero_lab.config.protocol import load_protocol
from ffzero_lab.photonics.activation import ElectroOpticActivation
from ffzero_lab.rig import HardwareMesh, build_rig_network, load_specs
from ffzero_lab.run.orchestrator import Orchestrator
from ffzero_lab.run.prepare import prepare
from ffzero_lab.run.session import check_rig_setpoints, device_seed


class PropagateMeter:
    """CPU of this thread inside ``HardwareMesh.propagate`` and the evaluations made there."""

    def __init__(self) -> None:
        self.cpu_s, self.evaluations, self.calls = 0.0, 0, 0
        self._original = HardwareMesh.propagate
        meter = self

        def propagate(mesh: HardwareMesh, inputs: Any, settings: Any, held: Any = None) -> Any:
            started = time.thread_time()
            try:
                return meter._original(mesh, inputs, settings, held)
            finally:
                meter.cpu_s += time.thread_time() - started
                meter.calls += 1
                meter.evaluations += len(settings) * inputs.shape[-2] if getattr(settings, "ndim", 1) == 2 else \
                    inputs.shape[-2]

        HardwareMesh.propagate = propagate  # type: ignore[method-assign]

    def restore(self) -> None:
        HardwareMesh.propagate = self._original  # type: ignore[method-assign]


def train_bench(overrides: list[str], instruments: Path, initial: list[Any]) -> dict[str, Any]:
    """The protocol through the hardware-timed bench of ``instruments`` (served)."""
    protocol, _ = load_protocol(PROTOCOL, overrides)
    config, specs = load_specs(instruments)
    network = build_rig_network(config, specs, device_seed(protocol), str(instruments),
                                initial=rig_phases(specs, initial))
    steps = [0]

    def count(name: str, document: dict[str, Any]) -> None:
        steps[0] += name == "step"

    meter = PropagateMeter()
    try:
        prepared = prepare(protocol, str(PROTOCOL), None, network)
        check_rig_setpoints(network, instruments, protocol, prepared, str(PROTOCOL))
        counters = network.rig.counters
        before = (counters.phase_settles, sum(getattr(d, "transfers", 0) for d in network.rig.drivers.values()))
        started, cpu = time.perf_counter(), time.process_time()
        result = Orchestrator(protocol, network, prepared.dataset, [count], prepared.seeds).run()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        transfers = sum(getattr(d, "transfers", 0) for d in network.rig.drivers.values()) - before[1]
        settles = counters.phase_settles - before[0]
    finally:
        meter.restore()
        network.safe_state()
        network.close()
    return {"test_accuracy": result.test_accuracy, "layer_accuracy": result.layer_accuracy,
            "evaluations": result.evaluations, "wall_s": wall, "process_cpu_s": cpu, "steps": steps[0],
            "settles_per_step": settles / max(steps[0], 1), "transfers_per_step": transfers / max(steps[0], 1),
            "bench_time_s": counters.instrument_s, "sweeps": counters.sweeps,
            "host_us_per_evaluation": 1e6 * meter.cpu_s / max(meter.evaluations, 1),
            "propagate_evaluations": meter.evaluations}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60, help="train.epochs on both sides")
    parser.add_argument("--seed", type=int, default=0, help="the protocol's seed on both sides")
    parser.add_argument("--chip-seed", type=int, default=0, help="the emulated chip's seed (its phase laws)")
    parser.add_argument("--rate", type=float, default=1e6, help="the bench's sample clock, S/s")
    parser.add_argument("--settle-us", type=float, default=20.0, help="heater settle time, us")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="FIELD=VALUE, on both sides")
    args = parser.parse_args()
    overrides = [f"seed={args.seed}", f"train.epochs={args.epochs}", "record.measurements=false", *args.overrides]
    direct, initial = train_direct(overrides)
    protocol, _ = load_protocol(PROTOCOL, overrides)
    act = ActivationSettings.model_validate(protocol.network.activation)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_emulated_rig(folder, 64, 2, seed=args.chip_seed, join="optical", timing="hardware",
                                   rate_Sps=args.rate, settle_time_s=args.settle_us / 1e6,
                                   activation=ElectroOpticActivation(act.alpha, act.gain, act.bias_phase))
        process, resources = start_emulator(paths["rig"])
        try:
            document = yaml.load(paths["instruments"].read_text(encoding="utf-8"), Loader=Loader)
            for name, address in resources.items():
                document["instruments"][name]["settings"]["grpc"] = address
            served = folder / "instruments.served.yaml"
            served.write_text(yaml.dump(document, Dumper=Dumper, sort_keys=False), encoding="utf-8")
            rig = train_bench(overrides, served, initial)
        finally:
            stop_emulator(process)
    ratio = rig["wall_s"] / direct["wall_s"]
    rows = [["direct simulator", f"{direct['test_accuracy']:.4f}", f"{direct['wall_s']:.1f}", "", "", "", ""],
            ["hardware-timed bench", f"{rig['test_accuracy']:.4f}", f"{rig['wall_s']:.1f}",
             f"{rig['bench_time_s']:.3f}", f"{rig['settles_per_step']:.2f}", f"{rig['transfers_per_step']:.2f}",
             f"{rig['host_us_per_evaluation']:.2f}"],
            ["bench / direct", f"{rig['test_accuracy'] - direct['test_accuracy']:+.4f}", f"x {ratio:.2f}", "", "",
             "", ""]]
    settings = {"protocol": "protocols/quickstart.yaml", "overrides": overrides, "train": train_settings(protocol),
                "bench": "2 x 64 modes, optical join, NI-DAQmx AO/AI emulated over gRPC (subprocess)",
                "sample_rate_Sps": args.rate, "heater_settle_us": args.settle_us, "samples_per_input": 1,
                "chip_seed": args.chip_seed, "calibration": "the emulated chip's true phase laws (not measured)"}
    print(f"settings: {settings}")
    report("quickstart: hardware-timed emulated bench (nidaqmx over gRPC) vs direct simulator",
           ["side", "voted test accuracy", "train wall s", "bench time s", "settles/step", "transfers/step",
            "host us/eval"], rows,
           {"benchmark": "hardware_timed", "settings": settings, "accuracy_rig": rig["test_accuracy"],
            "accuracy_sim": direct["test_accuracy"], "wall_s_rig": rig["wall_s"], "wall_s_sim": direct["wall_s"],
            "wall_ratio": ratio, "bench_time_s": rig["bench_time_s"], "settles_per_step": rig["settles_per_step"],
            "transfers_per_step": rig["transfers_per_step"],
            "host_us_per_evaluation": rig["host_us_per_evaluation"], "rig": rig, "direct": direct,
            "machine": machine()})


if __name__ == "__main__":
    main()
