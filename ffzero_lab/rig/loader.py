"""Reading ``instruments.yaml``: YAML -> validated :class:`RigConfig`, relative paths resolved,
driver classes imported and their settings validated. Every error is one ``ConfigError``
naming the file and the field.

The file is read by :func:`ffzero_lab.core.files.load_yaml` (at most 16 MiB, UTF-8, no key
twice); no number may be NaN or infinite (limits, budget, resistances, driver settings), and
sizes and waits have upper bounds (:data:`BOUNDS`) so that no value makes a check or a run
hang: channel counts, modes, timeouts, settle times, retries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ffzero_lab.core.errors import ConfigError, validation_error
from ffzero_lab.core.files import load_yaml, refuse_non_finite
from ffzero_lab.rig.config import RigConfig
from ffzero_lab.rig.driver import InstrumentDriver, resolve_driver_class

#: Upper bounds of the sizes and waits of ``instruments.yaml``: field (``*`` for any instrument
#: or layer) -> (largest value, why).
BOUNDS: dict[str, tuple[float, str]] = {
    "instruments.*.channels.count": (2**20, "channels of one instrument"),
    "instruments.*.timeout_ms": (600_000, "ms (10 minutes) to wait for a reply"),
    "layers[*].modes": (1024, "modes of one mesh (1024^2 phases)"),
    "settle_time_s": (60.0, "s to wait after every heater write"),
    "input_settle_time_s": (60.0, "s to wait after setting the inputs"),
    "retries": (100, "retries of one command"),
}


def _bound_problems(rig: RigConfig) -> list[tuple[str, str]]:
    """``(field, message)`` for every value of ``rig`` above its bound in :data:`BOUNDS`."""
    values: list[tuple[str, str, float | None]] = [
        ("settle_time_s", "settle_time_s", rig.settle_time_s),
        ("input_settle_time_s", "input_settle_time_s", rig.input_settle_time_s),
        ("retries", "retries", rig.retries),
    ]
    for name, inst in rig.instruments.items():
        values.append(("instruments.*.timeout_ms", f"instruments.{name}.timeout_ms", inst.timeout_ms))
        if inst.channels is not None:
            values.append(("instruments.*.channels.count", f"instruments.{name}.channels.count", inst.channels.count))
    for i, layer in enumerate(rig.layers):
        values.append(("layers[*].modes", f"layers[{i}].modes", layer.modes))
    problems = []
    for key, field, value in values:
        limit, what = BOUNDS[key]
        if value is not None and value > limit:
            problems.append((field, f"must be at most {_show(limit)} ({what}), not {_show(value)}"))
    return problems


def _show(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def parse_rig(document: Any, source: str, base: Path | None = None) -> RigConfig:
    """Validate a parsed ``instruments.yaml`` document.

    Args:
        document: the parsed YAML.
        source: the file name used in error messages.
        base: folder that relative paths (``calibration``, a pyvisa-sim file) are read from.

    Raises:
        ConfigError: the first problem, naming ``source`` and the field: a field that does not
            validate, a NaN or infinity anywhere, a size or wait above :data:`BOUNDS`, a cross-field
            problem, a driver that cannot be found or whose settings do not validate.
    """
    if not isinstance(document, dict):
        raise ConfigError("instruments file must be a mapping", source)
    if not document:
        raise ConfigError("the instruments file is empty: it names no instrument", source)
    refuse_non_finite(document, source)
    try:
        rig = RigConfig.model_validate(document)
    except ValidationError as exc:
        raise validation_error(exc, source) from None
    refuse_non_finite(rig, source)  # also numbers written as strings ('nan', 'inf')
    for field, message in _bound_problems(rig):
        raise ConfigError(message, source, field)
    for field, message in rig.problems():
        raise ConfigError(message, source, field)
    if base is not None:
        rig = _resolve_paths(rig, base)
    for name in rig.instruments:
        check_driver(rig, name, source)
    return rig


def load_rig(path: str | Path) -> RigConfig:
    """Read and validate an ``instruments.yaml`` file; drivers are imported and checked.

    Raises:
        ConfigError: missing, unreadable, larger than 16 MiB or not UTF-8; bad YAML or a key
            given twice; a field that does not validate (see :func:`parse_rig`).
    """
    path = Path(path)
    document = load_yaml(path, str(path), "instruments file")
    return parse_rig(document, str(path), path.resolve().parent)


def _resolve_paths(rig: RigConfig, base: Path) -> RigConfig:
    """Relative paths made relative to the file's folder."""
    changes: dict[str, Any] = {}
    if rig.calibration is not None and not rig.calibration.is_absolute():
        changes["calibration"] = base / rig.calibration
    library, at, backend = rig.visa_library.rpartition("@")
    if at and backend == "sim" and library and not Path(library).is_absolute():
        changes["visa_library"] = f"{base / library}@sim"
    return rig.model_copy(update=changes)


def check_driver(rig: RigConfig, name: str, source: str) -> type[InstrumentDriver]:
    """Resolve instrument ``name``'s driver and validate its settings and kind against the file."""
    inst = rig.instruments[name]
    where = f"instruments.{name}"
    driver = resolve_driver_class(inst.driver, source, f"{where}.driver")
    try:
        settings = driver.settings_model.model_validate(inst.settings)
    except ValidationError as exc:
        raise validation_error(exc, source, f"{where}.settings") from None
    refuse_non_finite(settings, source, f"{where}.settings")
    if driver.kind == "heater" and inst.channels is None:
        raise ConfigError(f"{inst.driver} drives heaters: give a channels section", source, f"{where}.channels")
    if driver.kind != "heater" and inst.channels is not None:
        raise ConfigError(f"{inst.driver} is a {driver.kind}, it has no heater channels", source, f"{where}.channels")
    return driver


def rig_schema() -> dict[str, Any]:
    """JSON schema of ``instruments.yaml`` (for editor completion)."""
    schema = RigConfig.model_json_schema()
    schema["title"] = "ffzero-lab instruments.yaml"
    return schema
