"""The calibration file: each heater channel's phase law ``phi = phi0 + k V^2``, and the two ways
through it (a wanted phase -> the voltage to write; how far a channel may have to go).

The file is YAML, written by ``ffzero-lab calibrate`` and named by ``calibration`` in
``instruments.yaml``::

    model: phi = phi0 + k V^2
    rig: bench-1
    created: '2026-11-27T17:00:00'
    channels:
      heaters:                    # instrument
        0: {phi0_rad: 1.234, k_rad_per_V2: 0.3141, role: layers[0].phases.theta[0,0], residual: 0.002}
        12: {phi0_rad: 0.0, k_rad_per_V2: 0.3198, role: layers[0].phases.gamma[0], pinned: true}

``pinned`` marks a ``phi0`` that power meters cannot see (a phase common to all inputs, or two
phases in series) and that was set by convention; ``residual`` is the fit's RMS residual over the
RMS of the readings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ffzero_lab.core.errors import ConfigError, validation_error
from ffzero_lab.core.files import load_yaml, refuse_non_finite

TWO_PI = 2 * np.pi
MODEL = "phi = phi0 + k V^2"


class ChannelLaw(BaseModel):
    """One heater channel's fitted phase law."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    phi0_rad: float = Field(ge=0, lt=TWO_PI, description="Phase at 0 V, rad, in [0, 2 pi).")
    k_rad_per_V2: float = Field(gt=0, description="Phase per squared volt, rad/V^2.")
    role: str | None = Field(None, description="What the channel drives, e.g. 'layers[0].phases.theta[0,0]'.")
    residual: float | None = Field(None, ge=0, description="RMS fit residual over RMS reading.")
    pinned: bool = Field(False, description="phi0 is not measurable with power meters and was set by convention.")


class CalibrationFile(BaseModel):
    """A whole calibration file."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: Literal["phi = phi0 + k V^2"] = MODEL
    rig: str | None = None
    created: str | None = None
    channels: dict[str, dict[int, ChannelLaw]] = Field(
        default_factory=dict, description="Instrument -> channel -> law.")

    def law(self, instrument: str, channel: int) -> ChannelLaw | None:
        """The law of one channel, or None when the file has none."""
        return self.channels.get(instrument, {}).get(channel)


def load_calibration(path: str | Path) -> CalibrationFile:
    """Read and validate a calibration file.

    Raises:
        ConfigError: missing file (saying how to make one); unreadable, larger than 16 MiB or not
            UTF-8; bad YAML or a key given twice; an empty file; a bad field, NaN or infinity.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError("calibration file not found; make it with 'ffzero-lab calibrate'", str(path))
    document = load_yaml(path, str(path), "calibration file")
    if not document:
        raise ConfigError("the calibration file is empty; make it with 'ffzero-lab calibrate'", str(path))
    refuse_non_finite(document, str(path))
    try:
        calibration = CalibrationFile.model_validate(document)
    except ValidationError as exc:
        raise validation_error(exc, str(path)) from None
    refuse_non_finite(calibration, str(path))
    for instrument, laws in calibration.channels.items():
        for channel in laws:
            if channel < 0:
                raise ConfigError(f"channel {channel} is negative: channels are numbered from 0", str(path),
                                  f"channels.{instrument}[{channel}]")
    return calibration


def save_calibration(path: str | Path, calibration: CalibrationFile) -> None:
    """Write a calibration file (the folder is created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = calibration.model_dump(mode="json", exclude_none=True)
    document["channels"] = {name: {int(channel): laws[channel] for channel in sorted(laws, key=int)}
                            for name, laws in document["channels"].items()}
    for laws in document["channels"].values():
        for law in laws.values():
            if not law.get("pinned"):
                law.pop("pinned", None)
    header = "# Heater phase laws phi = phi0 + k V^2, written by 'ffzero-lab calibrate'.\n"
    path.write_text(header + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
