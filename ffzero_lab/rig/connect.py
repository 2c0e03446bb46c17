"""Opening instruments: a pyvisa ResourceManager on the file's backend, and a driver on each
resource. Nothing here writes to an instrument."""

from __future__ import annotations

from pathlib import Path

import pyvisa

from ffzero_lab.core.errors import ConfigError
from ffzero_lab.rig.budget import PowerBudget
from ffzero_lab.rig.config import RigConfig
from ffzero_lab.rig.driver import InstrumentDriver, resolve_driver_class
from ffzero_lab.rig.errors import InstrumentError


def resource_manager(rig: RigConfig, source: str = "instruments") -> pyvisa.ResourceManager:
    """A pyvisa ResourceManager on the file's ``visa_library``.

    Raises:
        ConfigError: the VISA library cannot be loaded (naming ``visa_library``).
    """
    library, _, backend = rig.visa_library.rpartition("@")
    if backend == "sim" and library and not Path(library).is_file():
        raise ConfigError(f"pyvisa-sim file not found: {library}", source, "visa_library")
    try:
        return pyvisa.ResourceManager(rig.visa_library)
    except (OSError, ValueError, pyvisa.errors.Error) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot load VISA library {rig.visa_library!r}: {message}", source, "visa_library") from None


def open_instrument(rig: RigConfig, name: str, rm: pyvisa.ResourceManager | None, source: str = "instruments",
                    budget: PowerBudget | None = None) -> InstrumentDriver:
    """Open instrument ``name``'s resource and build its driver. Nothing is written to it.

    ``budget``: the rig's power budget, shared by all its heater drivers (a heater driver given
    none keeps a private one, which counts only its own channels). A driver class with
    ``visa = False`` opens its instrument through its own library (``Class.open(name, rig)``, a
    heater driver's with ``budget=``); ``rm`` is then not used.

    Raises:
        ConfigError: the driver cannot be found.
        InstrumentError: the resource cannot be opened.
    """
    inst = rig.instruments[name]
    driver = resolve_driver_class(inst.driver, source, f"instruments.{name}.driver")
    if not getattr(driver, "visa", True):  # its own library (e.g. nidaqmx), not a VISA resource
        if driver.kind == "heater":
            return driver.open(name, rig, budget=budget)  # type: ignore[attr-defined]
        return driver.open(name, rig)  # type: ignore[attr-defined]
    if rm is None:
        raise ConfigError(f"instrument {name!r} needs a VISA library", source, "visa_library")
    options = dict(driver.resource_options)
    if inst.resource.upper().startswith("ASRL"):
        options.update(driver.serial_options)
    try:
        resource = rm.open_resource(inst.resource, timeout=inst.timeout_ms, **options)
    except (pyvisa.errors.Error, OSError, ValueError) as exc:
        description = " ".join((getattr(exc, "description", None) or str(exc) or type(exc).__name__).split())
        raise InstrumentError(f"cannot open resource {inst.resource!r}: {description}", name) from None
    if budget is not None and driver.kind == "heater":
        return driver.from_config(resource, name, rig, budget=budget)
    return driver.from_config(resource, name, rig)
