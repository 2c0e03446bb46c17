"""The power-meter base: a named instrument that reads optical power on its ports, in watts."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel

from ffzero_lab.rig import InstrumentIdentity, RigConfig

from .base import VisaInstrument


class PowerMeter(VisaInstrument):
    """An optical power meter with ports numbered from 1.

    Args:
        resource: an open pyvisa resource.
        name: the instrument's name.
        settings: validated ``settings`` (the class's ``settings_model``).
    """

    kind: ClassVar[Literal["power_meter"]] = "power_meter"
    settings_model: ClassVar[type[BaseModel]]

    def __init__(self, resource: Any, name: str, settings: BaseModel | None = None) -> None:
        super().__init__(resource, name)
        self.settings = settings if settings is not None else self.settings_model()

    @classmethod
    def from_config(cls, resource: Any, name: str, rig: RigConfig) -> "PowerMeter":
        """The driver for power meter ``name`` of ``rig``."""
        return cls(resource, name, cls.settings_model.model_validate(rig.instruments[name].settings))

    @abstractmethod
    def identify(self) -> InstrumentIdentity:
        """Ask the instrument who it is (reads only)."""

    @abstractmethod
    def configure(self) -> None:
        """Apply the settings: unit W, wavelength, range, averaging."""

    @abstractmethod
    def fetch_power_W(self) -> NDArray[np.float64]:
        """The latest reading of every port, ``(ports,)``, W."""
