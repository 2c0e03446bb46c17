"""Emulated rigs of any size: the instruments file, the emulated rig file and the chip's *true*
calibration file for ``layers`` rectangular meshes of ``modes`` modes (e.g. the quickstart's two
64-mode meshes), written by ``ffzero-lab instruments emulated-rig``.

Per mesh ``l`` of N modes:

* one heater instrument ``mesh<l>``: daisy-chained Qontrol Q8iv modules with ``N^2 + N``
  channels: the mesh's ``N^2`` phases in parameter order (``theta``, ``phi`` by column and slot,
  then ``gamma``), then the N input modulators;
* ``ceil(N / 8)`` Keysight N7745A power meters ``meter<l>_<k>``, 8 ports each: output mode ``m``
  on meter ``m // 8``, port ``m % 8 + 1``.

``join``: ``electrical`` (every mesh has its own modulators; the host sets mesh l's inputs from
mesh l-1's detectors) or ``optical`` (one chip: mesh l > 0 is fed by mesh l-1's light through the
chip's electro-optic activation and has no modulators, so its heater chain has ``N^2`` channels;
the first mesh's modulators set the chip's input). The activation's gain is given as the simulated
chip's (rad per unit of a normalised signal carrying unit power) and converted to the emulated
chip's rad/W: the emulated rig lights each mode with ``input_power_W / N``, so a normalised power
``p`` arrives as ``p input_power_W / N`` watts.

Every channel has the same limits (``voltage_max_V`` 6 V, ``current_max_mA`` 15 mA, 500 ohm);
``power_budget_W`` is what every heater at a whole turn at once would draw (so any setting fits):
``channels * 2 P_pi (1 + 2 k_spread)``. Resources are 127.0.0.1 sockets from ``first_port`` on.

The calibration file holds the emulated chip's own phase laws (:class:`.chip.EmulatedChip`, drawn
from the chip seed), not laws measured by ``ffzero-lab calibrate``: ``calibrate`` recovers laws of
small meshes within 2 %, but its fit of the mesh phases' ``phi0`` does not scale past about five
modes. Its header says so.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import yaml

from ffzero_lab.photonics.activation import ElectroOpticActivation as ElectroOptic
from ffzero_lab.photonics.design import mesh_phase_names
from ffzero_lab.rig import load_rig

from .chip import ActivationSettings, ChipSettings, EmulatedChip

#: Ports of the emulated power meter model.
METER_PORTS = 8
#: Limits of every heater channel.
LIMITS = {"voltage_max_V": 6.0, "current_max_mA": 15.0, "resistance_ohm": 500.0, "safe_V": 0.0}

CALIBRATION_HEADER = """\
# The emulated chip's TRUE phase laws phi = phi0 + k V^2 (drivers/emulated/generate.py), read from
# the emulator's chip model (seed {seed}) - NOT measured by 'ffzero-lab calibrate', whose phi0 fit
# does not scale to meshes this size. Valid only for the emulated rig of {rig_file}.
"""


def instruments_document(modes: int, layers: int, name: str, first_port: int, chip: ChipSettings,
                         vector_max: int, pipeline: int, settle_time_s: float,
                         input_settle_time_s: float, join: str = "electrical") -> dict[str, Any]:
    """The instruments file (a dict): instruments, limits, layer maps. See the module docstring."""
    phases = mesh_phase_names(modes)
    meters = -(-modes // METER_PORTS)
    optical = [join == "optical" and layer > 0 for layer in range(layers)]
    total_channels = sum(len(phases) + (0 if o else modes) for o in optical)
    budget = round(total_channels * 2 * chip.p_pi_W * (1 + 2 * chip.k_spread) * 1.01, 3)
    instruments: dict[str, Any] = {}
    maps = []
    port = first_port
    for layer in range(layers):
        channels = len(phases) + (0 if optical[layer] else modes)
        heater = f"mesh{layer}"
        instruments[heater] = {
            "resource": f"TCPIP0::127.0.0.1::{port}::SOCKET", "driver": "drivers.instruments.qontrol:Qontrol",
            "timeout_ms": 5000, "settings": {"verify": False, "vector_max": vector_max, "pipeline": pipeline},
            "channels": {"count": channels, "default": dict(LIMITS)},
        }
        port += 1
        for k in range(meters):
            instruments[f"meter{layer}_{k}"] = {
                "resource": f"TCPIP0::127.0.0.1::{port}::SOCKET",
                "driver": "drivers.instruments.keysight_n774x:KeysightN774x",
                "timeout_ms": 5000, "settings": {"averaging_time_s": 0.001, "wavelength_nm": 1550},
            }
            port += 1
        fed = {"input": "optical"} if optical[layer] else {
            "modulators": {m: {"instrument": heater, "channel": len(phases) + m} for m in range(modes)}}
        maps.append({
            "name": f"mesh{layer}", "modes": modes,
            "phases": {n: {"instrument": heater, "channel": c} for c, n in enumerate(phases)}, **fed,
            "detectors": {m: {"instrument": f"meter{layer}_{m // METER_PORTS}", "port": m % METER_PORTS + 1}
                          for m in range(modes)},
        })
    return {"name": name, "visa_library": "@py", "calibration": "calibration.yaml", "power_budget_W": budget,
            "settle_time_s": settle_time_s, "input_settle_time_s": input_settle_time_s, "retries": 2,
            "instruments": instruments, "layers": maps}


def hardware_document(modes: int, layers: int, name: str, port: int, chip: ChipSettings, settle_time_s: float,
                      rate_Sps: float, samples_per_input: int, join: str = "electrical") -> dict[str, Any]:
    """The instruments file (a dict) of a hardware-timed bench: NI-DAQmx modules on one gRPC device
    server at 127.0.0.1:``port``. Per mesh l: ``mesh<l>`` an AO module for its N^2 phases (one sample
    per setting, started by the modulators' start trigger), ``mod<l>`` an AO module for its N input
    modulators (the sweep's master: sample clock ``rate_Sps``), ``pd<l>`` an AI module reading its N
    photodiodes on the master's sample clock and start trigger. An optically fed mesh has no
    modulators; its sweep's master is the first mesh's. Samples dropped after each heater change:
    ``ceil(settle_time_s x rate_Sps)``."""
    phases = mesh_phase_names(modes)
    optical = [join == "optical" and layer > 0 for layer in range(layers)]
    total_channels = sum(len(phases) + (0 if o else modes) for o in optical)
    budget = round(total_channels * 2 * chip.p_pi_W * (1 + 2 * chip.k_spread) * 1.01, 3)
    grpc = f"127.0.0.1:{port}"
    instruments: dict[str, Any] = {}
    maps = []
    source = 0
    for layer in range(layers):
        source = source if optical[layer] else layer
        master = f"/Mod{source}/ao"
        instruments[f"mesh{layer}"] = {
            "resource": f"Heat{layer}", "driver": "drivers.instruments.ni.analog_output:NiAnalogOutput",
            "settings": {"grpc": grpc}, "channels": {"count": len(phases), "default": dict(LIMITS)},
            "timing": {"mode": "hardware", "start_trigger": f"{master}/StartTrigger"},
        }
        fed: dict[str, Any] = {"input": "optical"}
        if not optical[layer]:
            instruments[f"mod{layer}"] = {
                "resource": f"Mod{layer}", "driver": "drivers.instruments.ni.analog_output:NiAnalogOutput",
                "settings": {"grpc": grpc}, "channels": {"count": modes, "default": dict(LIMITS)},
                "timing": {"mode": "hardware", "sample_rate_Sps": rate_Sps, "samples_per_input": samples_per_input},
            }
            fed = {"modulators": {m: {"instrument": f"mod{layer}", "channel": m} for m in range(modes)}}
        instruments[f"pd{layer}"] = {
            "resource": f"PD{layer}", "driver": "drivers.instruments.ni.analog_input:NiAnalogInput",
            "settings": {"grpc": grpc, "ports": modes, "range_V": 10.0, "responsivity_A_per_W": 1.0,
                         "tia_gain_V_per_A": 5000.0},
            "timing": {"mode": "hardware", "sample_rate_Sps": rate_Sps, "sample_clock": f"{master}/SampleClock",
                       "start_trigger": f"{master}/StartTrigger"},
        }
        maps.append({
            "name": f"mesh{layer}", "modes": modes,
            "phases": {n: {"instrument": f"mesh{layer}", "channel": c} for c, n in enumerate(phases)}, **fed,
            "detectors": {m: {"instrument": f"pd{layer}", "port": m + 1} for m in range(modes)},
        })
    return {"name": name, "visa_library": "@py", "calibration": "calibration.yaml", "power_budget_W": budget,
            "settle_time_s": settle_time_s, "retries": 2, "instruments": instruments, "layers": maps}


def rig_document(instruments: dict[str, Any], chip: ChipSettings, latency_s: float) -> dict[str, Any]:
    """The emulated rig file (a dict) playing ``instruments``: Q8iv heaters, N7745A meters (or, on a
    hardware-timed bench, emulated NI-DAQmx modules)."""
    def serving(inst: dict[str, Any]) -> dict[str, Any]:
        if "timing" in inst:
            return {}
        return {"latency_s": latency_s, "model": "Q8iv" if "channels" in inst else "N7745A"}
    served = {name: serving(inst) for name, inst in instruments["instruments"].items()}
    return {"emulator": "drivers.emulated.rig:EmulatedRig", "instruments_file": "instruments.yaml",
            "chip": chip.model_dump(), "instruments": served}


def true_calibration(instruments_file: Path, chip: ChipSettings) -> dict[str, Any]:
    """The calibration file (a dict) of the emulated chip's own laws, every mapped channel."""
    rig = load_rig(instruments_file)
    truth = EmulatedChip(rig, chip)
    channels: dict[str, dict[int, dict[str, Any]]] = {}
    for i, layer in enumerate(rig.layers):
        roles = [(f"layers[{i}].phases.{n}", ref) for n, ref in layer.phases.items()]
        roles += [(f"layers[{i}].modulators[{m}]", ref) for m, ref in layer.modulators.items()]
        for role, ref in roles:
            channels.setdefault(ref.instrument, {})[ref.channel] = {
                "phi0_rad": float(truth.laws[ref.instrument].phi0_rad[ref.channel]),
                "k_rad_per_V2": float(truth.laws[ref.instrument].k_rad_per_V2[ref.channel]), "role": role}
    return {"model": "phi = phi0 + k V^2", "rig": rig.name,
            "created": _dt.datetime.now().isoformat(timespec="seconds"), "channels": channels}


def write_emulated_rig(folder: Path, modes: int, layers: int = 1, *, seed: int = 0, noise: float = 0.0,
                       latency_s: float = 0.0, p_pi_W: float = 0.02, first_port: int = 50101, vector_max: int = 32,
                       pipeline: int = 16, settle_time_s: float | None = None, input_settle_time_s: float = 0.0005,
                       join: str = "electrical", activation: ElectroOptic | None = None, timing: str = "software",
                       rate_Sps: float = 1e6, samples_per_input: int = 1) -> dict[str, Path]:
    """Write ``instruments.yaml``, ``rig.yaml`` and ``calibration.yaml`` for an emulated rig to
    ``folder`` (created if missing).

    Args:
        folder: where the three files go.
        modes: N, modes of each mesh (>= 2).
        layers: meshes (>= 1).
        seed: the chip seed (phase laws and noise).
        noise: relative noise of every reading.
        latency_s: reply latency of every instrument, s.
        p_pi_W: nominal heater power for a pi shift, W.
        first_port: TCP port of the first instrument (the others follow).
        vector_max: channels per Qontrol ``VVEC`` line (32 values fit the emulator's 256-character buffer).
        pipeline: Qontrol set lines sent before their replies are read.
        settle_time_s, input_settle_time_s: waits after phase and after input writes, s (default
            settle 2 ms software-timed, 20 us hardware-timed, which the emulated heaters then take).
        join: ``electrical`` or ``optical`` (see the module docstring).
        timing: ``software`` (Qontrol heaters, N7745A meters) or ``hardware`` (NI-DAQmx modules on
            an emulated gRPC device server at 127.0.0.1:``first_port``: :func:`hardware_document`).
        rate_Sps, samples_per_input: a hardware-timed bench's sample clock, S/s, and samples per input.
        activation: the chip's activation between optically joined meshes, in the simulated
            chip's normalised units (default alpha 0.1, gain 0.05, bias 0: the quickstart's).

    Returns:
        ``{"instruments": ..., "rig": ..., "calibration": ...}`` paths.
    """
    if modes < 2 or layers < 1:
        raise ValueError(f"an emulated rig needs modes >= 2 and layers >= 1, got {modes} and {layers}")
    if join not in ("electrical", "optical"):
        raise ValueError(f"join must be 'electrical' or 'optical', got {join!r}")
    if timing not in ("software", "hardware"):
        raise ValueError(f"timing must be 'software' or 'hardware', got {timing!r}")
    if settle_time_s is None:
        settle_time_s = 2e-5 if timing == "hardware" else 0.002
    folder.mkdir(parents=True, exist_ok=True)
    act = activation or ElectroOptic()
    input_power_W = ChipSettings.model_fields["input_power_W"].default
    chip = ChipSettings(seed=seed, p_pi_W=p_pi_W, noise=noise, input_power_W=input_power_W,
                        heater_settle_s=settle_time_s if timing == "hardware" else 0.0,
                        activation=ActivationSettings(alpha=act.alpha, bias_phase_rad=act.bias_phase,
                                                      gain_rad_per_W=act.gain * modes / input_power_W))
    name = f"emulated {layers} x {modes}-mode rig (chip seed {seed}, {join} joins)"
    if timing == "hardware":
        name = f"emulated hardware-timed {layers} x {modes}-mode bench (chip seed {seed}, {join} joins)"
        instruments = hardware_document(modes, layers, name, first_port, chip, settle_time_s, rate_Sps,
                                        samples_per_input, join)
    else:
        instruments = instruments_document(modes, layers, name, first_port, chip, vector_max, pipeline,
                                           settle_time_s, input_settle_time_s, join)
    paths = {"instruments": folder / "instruments.yaml", "rig": folder / "rig.yaml",
             "calibration": folder / "calibration.yaml"}
    header = f"# {name}: written by 'ffzero-lab instruments emulated-rig' (drivers/emulated/generate.py)\n"
    paths["instruments"].write_text(header + _dump(instruments), encoding="utf-8")
    paths["rig"].write_text(header + _dump(rig_document(instruments, chip, latency_s)), encoding="utf-8")
    paths["calibration"].write_text(
        CALIBRATION_HEADER.format(seed=seed, rig_file=paths["rig"].name)
        + _dump(true_calibration(paths["instruments"], chip)), encoding="utf-8")
    return paths


def _dump(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, width=120)
