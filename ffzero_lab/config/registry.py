"""Finding a device driver by name, as QCoDeS station files do: an entry point or a dotted path.

A driver is an object with

* ``settings_model``: a pydantic model for ``device.settings``,
* ``activation_model``: a pydantic model for ``network.activation``,
* ``build(network, settings, activation, seed, in_features, image_shape) -> Network``
  (``image_shape``: the data's ``(height, width)``, for devices with conv layers).

Labs add their own by declaring an entry point in the group ``ffzero_lab.devices`` or by
naming ``package.module:attribute`` in the protocol; this package never imports a driver
module by name. Instrument drivers (``ffzero_lab.instruments``), their emulators
(``ffzero_lab.emulated_instruments``) and rig generators (``ffzero_lab.rig_generators``) are
found the same way (:func:`load_named`).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, Protocol

from pydantic import BaseModel

from ffzero_lab.core.errors import ConfigError
from ffzero_lab.core.network import Network

DEVICE_GROUP = "ffzero_lab.devices"
#: Instrument driver classes, named by ``instruments.<name>.driver`` of ``instruments.yaml``.
INSTRUMENT_GROUP = "ffzero_lab.instruments"
#: Emulators of instruments, one per instrument driver and named as its entry point in
#: :data:`INSTRUMENT_GROUP` (``ffzero-lab instruments emulate``).
EMULATED_INSTRUMENT_GROUP = "ffzero_lab.emulated_instruments"
#: Writers of emulated rigs (``instruments emulated-rig --generator``).
RIG_GENERATOR_GROUP = "ffzero_lab.rig_generators"


class DeviceDriver(Protocol):
    """What a device driver provides."""

    settings_model: type[BaseModel]
    activation_model: type[BaseModel]

    def build(
        self, network: Any, settings: BaseModel, activation: BaseModel, seed: int, in_features: int,
        image_shape: tuple[int, int] | None = None,
    ) -> Network:
        """Build the network the protocol describes."""
        ...


def available_drivers(group: str = DEVICE_GROUP) -> list[str]:
    """Names of the installed entry points of ``group`` (device drivers by default)."""
    return sorted(ep.name for ep in entry_points(group=group))


def entry_point_names(group: str, value: str) -> list[str]:
    """Names of the entry points of ``group`` that point at ``value`` (``module:attribute``)."""
    return sorted(ep.name for ep in entry_points(group=group) if ep.value.replace(" ", "") == value)


def import_object(dotted: str, source: str, field: str) -> Any:
    """Import ``module:attribute`` (a device or instrument driver, an emulator, a rig generator).

    Raises:
        ConfigError: naming ``source`` and ``field`` when it cannot be imported.
    """
    module_name, colon, attribute = dotted.partition(":")
    if not colon or not attribute:
        raise ConfigError(f"expected 'module:attribute', got {dotted!r}", source, field)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import module {module_name!r}: {exc}", source, field) from None
    found = getattr(module, attribute, None)
    if found is None:
        raise ConfigError(f"module {module_name!r} has no attribute {attribute!r}", source, field)
    return found


def load_named(name: str, group: str, source: str, field: str, what: str = "driver") -> Any:
    """The object an entry point of ``group`` called ``name`` names, or ``module:attribute``.

    Raises:
        ConfigError: naming ``source`` and ``field`` when it cannot be found.
    """
    if ":" in name:
        return import_object(name, source, field)
    matches = [ep for ep in entry_points(group=group) if ep.name == name]
    if not matches:
        known = ", ".join(sorted(ep.name for ep in entry_points(group=group))) or "none installed"
        raise ConfigError(f"unknown {what} {name!r} (installed: {known}; or give 'module:attribute')", source, field)
    return matches[0].load()


def resolve_driver(name: str, source: str, field: str = "device.driver") -> DeviceDriver:
    """Load a driver from an entry point name or ``module:attribute``.

    Raises:
        ConfigError: naming ``source`` and ``field`` when the driver cannot be found.
    """
    driver = load_named(name, DEVICE_GROUP, source, field)
    for needed in ("settings_model", "activation_model", "build"):
        if not hasattr(driver, needed):
            raise ConfigError(f"{name!r} is not a device driver (no {needed})", source, field)
    return driver
