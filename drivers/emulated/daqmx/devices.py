"""The emulated DAQ devices: their specs, the default bench and the simple test model.

* :class:`DeviceSpec`: one device (kind ``"ao"`` or ``"ai"``, channel count, maximum sample clock
  rate per channel in samples/s, buffer size in samples per channel, voltage range in volts,
  sample clock timebase in Hz).
* :func:`default_devices`: Dev1, a 64-channel AO card; Dev2, an 8-channel AI card.
* :data:`DeviceModel`: the pluggable device model ``respond(ao_table, ai_channels) -> ai_table``.
  ``ao_table`` is the bench's AO state at each AI sample clock tick, shape
  ``(n_ao_channels_on_bench, n)`` in volts: one row per physical AO channel of every AO device, in
  ``devices`` order (``"Dev1/ao0"``, ``"Dev1/ao1"``, ...; ``DaqmxEmulator.ao_channel_names``), a
  channel not in the generating task holding its last value (0 V at power-up). ``ai_channels`` is
  the tuple of physical AI channel names read, e.g. ``("Dev2/ai0", "Dev2/ai1")``. The model returns
  volts of shape ``(len(ai_channels), n)``. When the AI task is clocked from the AO task's sample
  clock, column ``k`` of ``ao_table`` is AO sample ``k`` (the same clock tick).
* :class:`SumOfSquaresModel`: the test model, AI volts linear in a sum of squared AO volts.

A model may instead have a method ``respond_held(held, ai_channels)``; it is then given, per AO
device, what the device held at the ticks without repeating columns: ``held[device] = (columns
(device channels, m) V, index (n,) into them, since (n,) s since that column began)``, so that a
chip model can work per distinct setting (:class:`drivers.emulated.bench.ChipBench`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

DeviceModel = Callable[[np.ndarray, tuple[str, ...]], np.ndarray]
"""``respond(ao_table (n_ao_channels_on_bench, n) V, ai_channels) -> (len(ai_channels), n) V``."""


@dataclass(frozen=True)
class DeviceSpec:
    """One emulated DAQ device.

    Attributes:
        kind: ``"ao"`` (analog output, e.g. PXIe-6739) or ``"ai"`` (analog input, e.g. PXIe-6368).
        channels: Number of physical channels (``ao0 .. ao{channels-1}`` or ``ai...``).
        max_rate: Maximum sample clock rate per channel in samples/s. ``None`` = the kind's
            default (AO 1e6, AI 2e6).
        buffer_samps_per_chan: Buffer size in samples per channel; writing more samples per
            channel than this before the generation starts is refused.
        voltage_range: (min, max) volts the channels support; channel limits must lie inside.
        timebase_hz: Sample clock timebase in Hz. The onboard sample clock runs at
            ``timebase_hz / divisor`` with the integer divisor nearest to ``timebase_hz / rate``;
            read the actual rate back with ``task.timing.samp_clk_rate``.
        product_type: Informational product name.
        resolution_bits: AO converter resolution; a raw code is ``c0 + c1 V`` with ``c0 = 0`` and
            ``c1 = 2**(bits - 1) / max(|range|)`` codes per volt (``DAQmx_AO_DevScalingCoeff``).
    """

    kind: Literal["ao", "ai"]
    channels: int
    max_rate: float | None = None
    buffer_samps_per_chan: int = 4_194_304
    voltage_range: tuple[float, float] = (-10.0, 10.0)
    timebase_hz: float = 100e6
    product_type: str = ""
    resolution_bits: int = 16

    def __post_init__(self) -> None:
        if self.kind not in ("ao", "ai"):
            raise ValueError(f"device kind must be 'ao' or 'ai', not {self.kind!r}")
        if self.channels < 1:
            raise ValueError("a device needs at least one channel")
        if self.max_rate is None:
            object.__setattr__(self, "max_rate", 1e6 if self.kind == "ao" else 2e6)
        if not self.product_type:
            object.__setattr__(self, "product_type", "PXIe-6739" if self.kind == "ao" else "PXIe-6368")

    @property
    def max_rate_sps(self) -> float:
        """Maximum sample clock rate per channel, samples/s."""
        assert self.max_rate is not None
        return float(self.max_rate)

    @property
    def scaling_coeff(self) -> tuple[float, float]:
        """``(c0, c1)``: a raw AO code is ``c0 + c1 V``."""
        return 0.0, float(2 ** (self.resolution_bits - 1)) / max(abs(v) for v in self.voltage_range)

    @property
    def min_rate_sps(self) -> float:
        """Slowest sample clock rate (32-bit divisor of the timebase), samples/s."""
        return self.timebase_hz / float(2**32)

    @classmethod
    def coerce(cls, value: DeviceSpec | Mapping[str, Any]) -> DeviceSpec:
        """Accept a DeviceSpec or a mapping such as ``{"kind": "ao", "channels": 64}``."""
        if isinstance(value, DeviceSpec):
            return value
        data = dict(value)
        if "voltage_range" in data:
            data["voltage_range"] = tuple(data["voltage_range"])
        return cls(**data)


def default_devices() -> dict[str, DeviceSpec]:
    """Dev1: 64-channel AO (PXIe-6739, 1 MS/s); Dev2: 8-channel AI (PXIe-6368, 2 MS/s)."""
    return {"Dev1": DeviceSpec("ao", 64), "Dev2": DeviceSpec("ai", 8)}


class SumOfSquaresModel:
    """Linear-in-power test model: AI channel ``k`` reads ``gain * sum(V_ao[j] ** 2 for j in taps[k])``.

    Heater power goes as V**2, so this is the simplest stand-in for a photodiode behind
    thermo-optic phase shifters. ``taps`` maps an AI channel number (the ``k`` of ``ai{k}``) to the
    bench AO rows (indices into :attr:`DaqmxEmulator.ao_channel_names`); by default AI channel ``k``
    sums AO rows ``2k`` and ``2k + 1``. Every channel adds ``offset`` volts; rows beyond the
    bench contribute nothing.
    """

    def __init__(
        self,
        taps: Mapping[int, Sequence[int]] | None = None,
        gain: float = 0.01,
        offset: float = 0.0,
    ) -> None:
        self.taps = {int(k): tuple(int(j) for j in v) for k, v in (taps or {}).items()}
        self.gain = float(gain)
        self.offset = float(offset)

    def rows_for(self, ai_channel: str) -> tuple[int, ...]:
        """Bench AO rows summed for one physical AI channel name such as ``"Dev2/ai1"``."""
        match = re.search(r"(\d+)$", ai_channel)
        k = int(match.group(1)) if match else 0
        return self.taps.get(k, (2 * k, 2 * k + 1))

    def __call__(self, ao_table: np.ndarray, ai_channels: tuple[str, ...]) -> np.ndarray:
        """Volts ``(len(ai_channels), n)`` from AO volts ``(n_ao_channels_on_bench, n)``."""
        out = np.full((len(ai_channels), ao_table.shape[1]), self.offset, dtype=np.float64)
        for i, name in enumerate(ai_channels):
            rows = [j for j in self.rows_for(name) if 0 <= j < ao_table.shape[0]]
            if rows:
                out[i] += self.gain * np.sum(ao_table[rows] ** 2, axis=0)
        return out
