"""Fixtures for the instrument tests: fresh pyvisa-sim devices and small per-channel limits."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pyvisa

from drivers.instruments.heater import HeaterDriver
from drivers.instruments.limits import HeaterLimits
from drivers.instruments.transcript import Recorder
from ffzero_lab.rig import PowerBudget

SIMS = Path(__file__).resolve().parent / "sims"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Callable[[str], pyvisa.ResourceManager]]:
    """``sim("qontrol")``: a ResourceManager on a fresh copy of ``sims/qontrol.yaml``.

    pyvisa-sim keeps device state per library path for the whole process, so every test gets
    its own copy. Every manager opened is closed at the end of the test.
    """
    managers: list[pyvisa.ResourceManager] = []

    def open_sim(name: str) -> pyvisa.ResourceManager:
        path = tmp_path / f"{name}-{len(managers)}.yaml"
        shutil.copy(SIMS / f"{name}.yaml", path)
        managers.append(pyvisa.ResourceManager(f"{path}@sim"))
        return managers[-1]

    yield open_sim
    for rm in managers:
        rm.close()


def heater_limits(channels: int, voltage_max_V: float = 6.0, current_max_mA: float = 20.0,
                  resistance_ohm: float = 500.0, voltage_min_V: float = 0.0, safe_V: float = 0.0) -> HeaterLimits:
    """The same limits on every channel."""
    def full(value: float) -> np.ndarray:
        return np.full(channels, value, dtype=np.float64)

    return HeaterLimits(
        full(voltage_min_V), full(voltage_max_V), full(current_max_mA), full(resistance_ohm), full(safe_V)
    )


def on_sim(rm: pyvisa.ResourceManager, resource: str, driver: type, timeout_ms: int = 200) -> Recorder:
    """Open ``resource`` as the driver class would have it opened, behind a :class:`Recorder`."""
    options = dict(driver.resource_options)
    if resource.startswith("ASRL"):
        options.update(driver.serial_options)
    return Recorder(rm.open_resource(resource, timeout=timeout_ms, **options))


def heater_on_sim(rm: pyvisa.ResourceManager, resource: str, driver: type[HeaterDriver], name: str, channels: int,
                  budget_W: float = 1.0, sync: bool = True, **kwargs: Any) -> tuple[Any, Recorder]:
    """Heater driver ``name`` on a simulated device; keyword arguments are settings or limits.

    With ``sync`` the driver's state is read first and the log cleared.
    """
    fields = driver.settings_model.model_fields
    settings = driver.settings_model(**{k: kwargs.pop(k) for k in list(kwargs) if k in fields})
    recorder = on_sim(rm, resource, driver)
    heater = driver(recorder, name, heater_limits(channels, **kwargs), PowerBudget(budget_W), settings)
    if sync:
        heater.sync_state()
        recorder.log.clear()
    return heater, recorder
