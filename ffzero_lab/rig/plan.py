"""The measurement plan of one ``propagate`` call: in which order the S x B evaluations are made.

Heaters are slow (they must settle after every change), so each phase setting is written once and
held while the whole input batch is swept through the input modulators, the meters reading every
port per input: S phase settles per call. A DD step of 2K settings therefore settles the mesh
heaters 2K times, and the optimiser's write-back of the new parameters once more: 2K + 1 per step.

The inputs are swept forwards under even settings and backwards under odd ones (a serpentine), so
the input a setting starts with is the one the previous setting ended with and its modulators
need no write: S B - (S - 1) input writes instead of S B.

A rig whose modulators and detectors are hardware-timed plays the same S x B evaluations as one
sweep instead (:class:`SweepGeometry`): every table written once, every instrument started once,
every reading fetched as one block; S heater settles still, and no write per input.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray


def plan(settings: int, inputs: int) -> Iterator[tuple[int, int]]:
    """``(setting, input)`` pairs in measurement order: setting-major, inputs in a serpentine."""
    for s in range(settings):
        order = range(inputs) if s % 2 == 0 else range(inputs - 1, -1, -1)
        for b in order:
            yield s, b


@dataclass(frozen=True)
class SweepGeometry:
    """One hardware-timed sweep: S phase settings, each held while B inputs are played.

    On the master's sample clock (``rate_Sps``), setting s occupies ``period`` ticks: first
    ``dropped`` ticks while the heaters settle (the modulators already hold the setting's first
    input; the detectors' samples there are not used), then each input for ``per_input`` ticks
    (their samples averaged). Heaters put out one sample per setting, at ``rate_Sps / period``.

    Attributes:
        settings: S.
        inputs: B.
        per_input: samples per input.
        dropped: samples dropped after each heater change.
        rate_Sps: the sample clock, samples/s.
    """

    settings: int
    inputs: int
    per_input: int
    dropped: int
    rate_Sps: float

    @property
    def period(self) -> int:
        """Ticks per setting: ``dropped + inputs x per_input``."""
        return self.dropped + self.inputs * self.per_input

    @property
    def samples(self) -> int:
        """Ticks of the whole sweep, per channel."""
        return self.settings * self.period

    @property
    def duration_s(self) -> float:
        """Instrument time of the sweep, s."""
        return self.samples / self.rate_Sps

    @property
    def heater_rate_Sps(self) -> float:
        """The heaters' sample rate (one sample per setting), samples/s."""
        return self.rate_Sps / self.period

    def with_settings(self, settings: int) -> "SweepGeometry":
        """The same sweep for another number of settings."""
        return SweepGeometry(settings, self.inputs, self.per_input, self.dropped, self.rate_Sps)

    @cached_property
    def _ticks(self) -> NDArray[np.intp]:
        """``(period,)`` which input each tick of a setting plays."""
        return np.concatenate([np.zeros(self.dropped, dtype=np.intp),
                               np.repeat(np.arange(self.inputs, dtype=np.intp), self.per_input)])

    def input_table(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """``(samples, k)`` modulator values for inputs ``(B, k)`` (the same under every setting) or
        ``(S, B, k)`` (per setting)."""
        if values.ndim == 2:
            return np.tile(values[self._ticks], (self.settings, 1))
        return values[:, self._ticks].reshape(self.samples, values.shape[-1])

    def readings(self, block: NDArray[np.float64]) -> NDArray[np.float64]:
        """``(S, B, ports)`` readings from the detectors' ``(samples, ports)`` block: the dropped
        samples left out, each input's samples averaged."""
        ports = block.shape[-1]
        kept = block.reshape(self.settings, self.period, ports)[:, self.dropped:]
        if self.per_input == 1:
            return kept
        return kept.reshape(self.settings, self.inputs, self.per_input, ports).mean(axis=2)
