"""Reading ``instruments.yaml``: YAML -> validated :class:`RigConfig`, relative paths resolved,
driver classes imported and their settings validated. Every error is one ``ConfigError``
naming the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ffzero_lab.core.errors import ConfigError, validation_error
from ffzero_lab.rig.config import RigConfig
from ffzero_lab.rig.driver import InstrumentDriver, resolve_driver_class


def parse_rig(document: Any, source: str, base: Path | None = None) -> RigConfig:
    """Validate a parsed ``instruments.yaml`` document.

    Args:
        document: the parsed YAML.
        source: the file name used in error messages.
        base: folder that relative paths (``calibration``, a pyvisa-sim file) are read from.

    Raises:
        ConfigError: the first problem, naming ``source`` and the field.
    """
    if not isinstance(document, dict):
        raise ConfigError("instruments file must be a mapping", source)
    try:
        rig = RigConfig.model_validate(document)
    except ValidationError as exc:
        raise validation_error(exc, source) from None
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
        ConfigError: missing file, bad YAML, or a field that does not validate.
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise _unreadable(exc, path) from None
    return parse_rig(document, str(path), path.resolve().parent)


def _unreadable(exc: OSError | yaml.YAMLError, path: Path) -> ConfigError:
    """Why an instruments file could not be read, naming the file (and the line for bad YAML)."""
    if isinstance(exc, FileNotFoundError):
        return ConfigError("instruments file not found", str(path))
    if isinstance(exc, OSError):
        return ConfigError(f"cannot read instruments file: {exc.strerror}", str(path))
    mark = getattr(exc, "problem_mark", None)
    line = f"line {mark.line + 1}" if mark is not None else None
    return ConfigError(f"invalid YAML: {getattr(exc, 'problem', exc)}", str(path), line)


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
        driver.settings_model.model_validate(inst.settings)
    except ValidationError as exc:
        raise validation_error(exc, source, f"{where}.settings") from None
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
