"""The quickstart protocol through the emulated rig against the same protocol on the direct simulator.

Both sides run protocols/quickstart.yaml (two 64-mode meshes, digits, FF+DD) with the same seed and
the same overrides (``--epochs`` sets ``train.epochs`` on both; ``--set`` adds more, on both):

* direct: the simulated chip of the protocol's ``device`` section (preset ``ideal``), as
  ``ffzero-lab dry-run`` trains it;
* rig: an emulated rig of two 64-mode meshes written by ``ffzero-lab instruments emulated-rig
  --join optical`` (one chip: the second mesh fed by the first's light through the protocol's
  electro-optic activation, as on the simulated chip; a Qontrol heater chain of 4160 channels for
  the first mesh, 4096 for the second, eight N7745A meters per mesh), served by ``ffzero-lab
  instruments emulate`` in a subprocess on 127.0.0.1 (stopped by its pid), trained through
  pyvisa-py sockets and the real drivers as ``ffzero-lab run --instruments`` does (the set-point
  preflight included). The emulated chip is ideal too (ideal MZIs, reading noise 0).

What the rig side is given, and why:

* its calibration file holds the emulated chip's TRUE phase laws (the generator reads them from the
  emulator's chip model), not laws measured by ``ffzero-lab calibrate``, whose fit of the mesh
  phases' ``phi0`` does not scale to 64 modes;
* its initial phases are not the rig's default (its own Haar draw) but the decomposition
  (Clements, ``ffzero_lab.photonics.decomposition.decompose``) of the simulator's initial Haar-random matrix
  of each mesh into the rig's design, the second mesh's corrected for the first's output phases,
  so that both sides start from the same chain of transfer matrices.

What still differs, by design of the two chips: the rig's input modulators are one-armed MZIs (an
amplitude x comes with the phase asin(x), which on an optical chip reaches the second mesh too)
where the simulator sets real amplitudes, heater voltages are written on a 0.1 mV grid, and the
two chips parametrise an MZI differently (the rig's ``phi`` at its input, neurophox's at its
output), so the two training runs take different paths from the same start.

``--join electrical`` gives each mesh its own modulators instead (set from the first mesh's
detectors: intensities, phases lost) and adds a diagnostic row: the simulated chip with its
inputs and joins made that rig's (``join_as_the_rig``).

Usage: uv run python benchmarks/emulated_quickstart.py [--epochs 3] [--seed 0] [--chip-seed 0]
       [--join optical|electrical] [--latency-ms 0] [--settle-ms 0] [--set FIELD=VALUE ...]

Prints a table, then as its last line one JSON object with the same figures.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from common import ROOT, machine, report, train_settings

from drivers.emulated.generate import write_emulated_rig
from drivers.simulated.mesh import ActivationSettings
from ffzero_lab.config.protocol import load_protocol
from ffzero_lab.data.datasets import resolve_data_dir
from ffzero_lab.photonics.activation import ElectroOpticActivation
from ffzero_lab.photonics.decomposition import decompose
from ffzero_lab.photonics.design import MeshOptics
from ffzero_lab.rig import build_rig_network, load_specs
from ffzero_lab.rig.spec import LayerSpec
from ffzero_lab.run.orchestrator import Orchestrator
from ffzero_lab.run.prepare import prepare
from ffzero_lab.run.session import check_rig_setpoints, device_seed

PROTOCOL = ROOT / "protocols" / "quickstart.yaml"
Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def start_emulator(rig_file: Path, timeout_s: float = 120.0) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """``ffzero-lab instruments emulate RIG --any-port`` in a subprocess; its resources once ready."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ffzero_lab", "instruments", "emulate", str(rig_file), "--any-port"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    resources: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline().strip()
        if line == "ready":
            return process, resources
        if not line and process.poll() is not None:
            break
        if line:
            name, resource = line.split()
            resources[name] = resource
    stop_emulator(process)
    raise RuntimeError(f"the emulator did not start (exit code {process.poll()})")


def stop_emulator(process: subprocess.Popen[str]) -> None:
    """SIGTERM to the emulator's pid, then SIGKILL if it has not ended within 10 s."""
    if process.poll() is None:
        os.kill(process.pid, 15)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, 9)
            process.wait()


def rig_phases(specs: list[LayerSpec], matrices: list[np.ndarray]) -> list[np.ndarray]:
    """The rig's phases (each layer's parameter order) of meshes whose inputs-as-rows matrices are
    ``matrices`` (``outputs = inputs @ matrix``): Clements decompositions, gammas 0.

    A decomposition equals its matrix up to output phases ``D`` (``D U_rig = U``). Power meters
    cannot see them, but an optically fed mesh can: it is given ``U D`` instead, so that the chain
    ``U'_1 f(U_rig x) = U'_1 D^-1 f(U x)`` equals the simulator's ``U_1 f(U x)`` up to output phases
    again (the activation f acts on each mode's power, so a phase per mode passes through it). The
    same transfer matrices, that is: the rig's one-armed modulators still give x a phase the
    simulator's inputs have not."""
    phases, d = [], None
    for spec, matrix in zip(specs, matrices, strict=True):
        u = matrix if d is None or not spec.optical else np.diag(d) @ matrix
        decomposed = decompose(u)  # u = design @ D, D the output phases
        values = np.array([decomposed.get(name, 0.0) for name in spec.names])
        design = MeshOptics(spec.modes, list(spec.names)).matrices(values)[0]
        d = np.diag(design.conj().T @ u)
        phases.append(values)
    return phases


def modulated(amplitudes: np.ndarray) -> np.ndarray:
    """The field a one-armed input modulator passes for amplitudes in [0, 1]: ``i x e^{i asin x}``."""
    x = np.clip(np.real(amplitudes), 0.0, 1.0)
    return 1j * x * np.exp(1j * np.arcsin(x))


def detected(fields: np.ndarray) -> np.ndarray:
    """What the rig passes from one mesh to the next: detected intensities as amplitudes, ``sqrt(P / sum P)``."""
    power = np.abs(fields) ** 2
    return np.sqrt(power / power.sum(axis=-1, keepdims=True))


def join_as_the_rig(network: Any) -> None:
    """Diagnostic: make the simulated chip take its inputs and join its meshes as the rig does
    (every mesh's inputs through one-armed modulators, intensities between meshes)."""
    for layer in network.layers:
        propagate = layer.propagate
        layer.propagate = lambda inputs, settings, propagate=propagate: propagate(modulated(inputs), settings)
    network.stages = [detected] * len(network.stages)


def train_direct(overrides: list[str], rig_like: bool = False) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The protocol on its simulated chip (joined as the rig if ``rig_like``); the result and each
    mesh's initial matrix."""
    protocol, _ = load_protocol(PROTOCOL, overrides)
    prepared = prepare(protocol, str(PROTOCOL), resolve_data_dir(None))
    initial = [layer.matrix() for layer in prepared.network.layers]
    if rig_like:
        join_as_the_rig(prepared.network)
    started = time.perf_counter()
    result = Orchestrator(protocol, prepared.network, prepared.dataset, [], prepared.seeds).run()
    return _summary(result, time.perf_counter() - started), initial


def train_rig(overrides: list[str], instruments: Path, initial: list[np.ndarray]) -> dict[str, Any]:
    """The protocol through the rig of ``instruments`` (served), from the simulator's initial matrices."""
    protocol, _ = load_protocol(PROTOCOL, overrides)
    config, specs = load_specs(instruments)
    phases = rig_phases(specs, initial)
    network = build_rig_network(config, specs, device_seed(protocol), str(instruments), initial=phases)
    try:
        prepared = prepare(protocol, str(PROTOCOL), None, network)
        check_rig_setpoints(network, instruments, protocol, prepared, str(PROTOCOL))
        started = time.perf_counter()
        result = Orchestrator(protocol, network, prepared.dataset, [], prepared.seeds).run()
        wall = time.perf_counter() - started
    finally:
        network.safe_state()
        network.close()
    summary = _summary(result, wall)
    counters = network.rig.counters
    summary.update({"phase_settles": counters.phase_settles, "input_settles": counters.input_settles,
                    "readings": counters.readings, "retries": counters.retries})
    return summary


def _summary(result: Any, wall_s: float) -> dict[str, Any]:
    return {"test_accuracy": result.test_accuracy, "layer_accuracy": result.layer_accuracy,
            "evaluations": result.evaluations, "wall_s": wall_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="train.epochs on both sides")
    parser.add_argument("--seed", type=int, default=0, help="the protocol's seed on both sides")
    parser.add_argument("--chip-seed", type=int, default=0, help="the emulated chip's seed (its phase laws)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="reply latency of every emulated instrument")
    parser.add_argument("--settle-ms", type=float, default=0.0,
                        help="wait after every heater write (phases and inputs)")
    parser.add_argument("--join", choices=("optical", "electrical"), default="optical",
                        help="the rig's meshes: one chip, the second fed by the first's light through the "
                        "protocol's activation (optical, as the simulated chip), or each with its own modulators, "
                        "set from the first's detectors (electrical; adds the diagnostic row)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="FIELD=VALUE, on both sides")
    args = parser.parse_args()
    overrides = [f"seed={args.seed}", f"train.epochs={args.epochs}", "record.measurements=false", *args.overrides]
    direct, initial = train_direct(overrides)
    rig_like = train_direct(overrides, rig_like=True)[0] if args.join == "electrical" else None
    protocol, _ = load_protocol(PROTOCOL, overrides)
    act = ActivationSettings.model_validate(protocol.network.activation)
    if args.join == "optical" and (act.kind != "electro-optic" or act.alpha <= 0):
        parser.error("an optical join needs the protocol's electro-optic activation with alpha > 0 (its tapped "
                     "light is what the first mesh's detectors read)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_emulated_rig(folder, 64, 2, seed=args.chip_seed, noise=0.0, latency_s=args.latency_ms / 1e3,
                                   settle_time_s=args.settle_ms / 1e3, input_settle_time_s=args.settle_ms / 1e3,
                                   join=args.join,
                                   activation=ElectroOpticActivation(act.alpha, act.gain, act.bias_phase))
        process, resources = start_emulator(paths["rig"])
        try:
            document = yaml.load(paths["instruments"].read_text(encoding="utf-8"), Loader=Loader)
            for name, resource in resources.items():
                document["instruments"][name]["resource"] = resource
            served = folder / "instruments.served.yaml"
            served.write_text(yaml.dump(document, Dumper=Dumper, sort_keys=False), encoding="utf-8")
            rig = train_rig(overrides, served, initial)
        finally:
            stop_emulator(process)
    difference = rig["test_accuracy"] - direct["test_accuracy"]
    sides = [("direct simulator", direct), (f"emulated rig, {args.join} join", rig)]
    sides += [("direct, joined as the rig (diagnostic)", rig_like)] if rig_like is not None else []
    rows = [[side, f"{r['test_accuracy']:.4f}", ", ".join(f"{a:.3f}" for a in r["layer_accuracy"]),
             f"{r['evaluations']:,}", f"{r['wall_s']:.1f}"] for side, r in sides]
    layer_differences = [r - d for r, d in zip(rig["layer_accuracy"], direct["layer_accuracy"], strict=True)]
    rows.append(["rig - direct", f"{difference:+.4f}", ", ".join(f"{d:+.3f}" for d in layer_differences), "", ""])
    settings = {"protocol": "protocols/quickstart.yaml", "overrides": overrides, "train": train_settings(protocol),
                "join": args.join, "chip_seed": args.chip_seed, "latency_ms": args.latency_ms,
                "settle_ms": args.settle_ms,
                "non_idealities": "ideal on both sides (simulator preset ideal; emulated chip ideal MZIs, noise 0)",
                "calibration": "the emulated chip's true phase laws (not measured)",
                "rig_initial_phases": "decomposition of the simulator's initial matrices"
                + (" (the second mesh's with the first's output phases)" if args.join == "optical" else "")}
    print(f"settings: {settings}")
    report("quickstart: emulated rig (pyvisa-py sockets, real drivers) vs direct simulator",
           ["side", "voted test accuracy", "per layer", "evaluations", "train wall s"], rows,
           {"benchmark": "emulated_quickstart", "settings": settings, "direct": direct, "rig": rig,
            "difference": difference, "layer_differences": layer_differences, "direct_joined_as_rig": rig_like,
            "within_3_points": abs(difference) <= 0.03, "machine": machine()})


if __name__ == "__main__":
    main()
