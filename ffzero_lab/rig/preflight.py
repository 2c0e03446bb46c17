"""Before a run: can every set-point the protocol may reach be written?

Mesh phases are periodic and training may take them anywhere in [0, 2 pi), so each phase channel
must be able to give a whole turn: its highest voltage is ``sqrt(2 pi / k)`` (a phase just short of
``phi0``). The first mesh's input modulators need the phases ``2 asin(x)`` of the protocol's own
inputs (train and test set, encoded); later meshes' modulators any amplitude in [0, 1]. Each
channel's highest voltage must lie within its ``voltage_max_V`` and ``current_max_mA * R`` (and a
``voltage_min_V`` above 0 would leave phases near ``phi0`` unreachable), and every heater of the
rig at its highest voltage at once (the others at their safe values) must fit ``power_budget_W``.
The first problem is one line naming the channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.core.errors import ConfigError
from ffzero_lab.photonics.design import modulator_phase
from ffzero_lab.rig.config import RigConfig
from ffzero_lab.rig.spec import Channels, LayerSpec


@dataclass(frozen=True)
class Setpoints:
    """The highest voltage every mapped channel may need, and the rig's worst-case power."""

    highest_V: dict[tuple[str, int], float]
    worst_power_W: float


def highest_voltages(
    specs: list[LayerSpec], first_inputs: NDArray[np.floating] | None = None
) -> list[tuple[Channels, NDArray[np.float64], str]]:
    """Per channel group: (channels, highest voltage of each, what it must reach)."""
    groups = []
    for spec in specs:
        groups.append((spec.phases, spec.phases.laws.highest_V(), "any phase"))
        if spec.index == 0 and first_inputs is not None:
            x = np.clip(np.asarray(first_inputs, dtype=np.float64).reshape(-1, spec.modes), 0.0, 1.0)
            volts = spec.modulators.laws.voltages_V(modulator_phase(x)).max(axis=0, initial=0.0)
            groups.append((spec.modulators, volts, "the protocol's inputs"))
        else:
            groups.append((spec.modulators, spec.modulators.laws.highest_V(0.0, np.pi), "any input in [0, 1]"))
    return groups


def check_setpoints(rig: RigConfig, specs: list[LayerSpec], source: str,
                    first_inputs: NDArray[np.floating] | None = None) -> Setpoints:
    """Check every reachable set-point against the limits and the power budget.

    Args:
        rig: the instruments file.
        specs: the rig's meshes with their calibrated laws.
        source: the instruments file's name (for messages).
        first_inputs: ``(..., modes)`` every input the first mesh will see; None: any in [0, 1].

    Raises:
        ConfigError: a channel cannot reach a set-point within its limits, or the worst case
            exceeds the power budget (naming the channel).
    """
    highest: dict[tuple[str, int], float] = {}
    for channels, volts, what in highest_voltages(specs, first_inputs):
        for i, (ref, role) in enumerate(zip(channels.refs, channels.roles, strict=True)):
            limits = rig.heater_channel_limits(ref.instrument)[ref.channel]
            v = float(volts[i])
            where = f"instrument {ref.instrument!r} channel {ref.channel}"
            law = f"phi0 = {channels.laws.phi0_rad[i]:.3f} rad, k = {channels.laws.k_rad_per_V2[i]:.4g} rad/V^2"
            allowed = min(limits.voltage_max_V, limits.current_max_mA * limits.resistance_ohm / 1e3)
            if v > allowed:
                which = "voltage_max_V" if limits.voltage_max_V <= allowed else "current_max_mA * resistance_ohm"
                raise ConfigError(f"{where} may need {v:.4g} V for {what} ({law}), above {which} = {allowed:.4g} V",
                                  source, role)
            if limits.voltage_min_V > 0:
                raise ConfigError(f"{where}: voltage_min_V = {limits.voltage_min_V:g} V leaves the phases just above "
                                  f"phi0 unreachable", source, role)
            highest[(ref.instrument, ref.channel)] = v
    worst, largest = 0.0, ("", -1, 0.0)
    for name, inst in rig.instruments.items():
        if inst.channels is None:
            continue
        for channel, limits in enumerate(inst.channels.all_limits()):
            v = highest.get((name, channel), limits.safe_V)
            power = v**2 / limits.resistance_ohm
            worst += power
            if power > largest[2]:
                largest = (name, channel, power)
    if worst > rig.power_budget_W:
        name, channel, power = largest
        raise ConfigError(f"every heater at its highest set-point draws {worst:.4g} W, above the budget "
                          f"{rig.power_budget_W:.4g} W (the most: instrument {name!r} channel {channel}, "
                          f"{power * 1e3:.4g} mW)", source, "power_budget_W")
    return Setpoints(highest, worst)
