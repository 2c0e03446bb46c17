"""Protocol validation: unknown keys rejected, types checked, --set overrides validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from ffzero_lab.config.protocol import (
    Protocol,
    apply_override,
    load_protocol,
    parse_protocol,
)
from ffzero_lab.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_bundled_protocols_validate() -> None:
    for path in sorted((ROOT / "protocols").glob("*.yaml")):
        protocol, text = load_protocol(path)
        assert isinstance(protocol, Protocol) and text


def test_defaults_fill_sections() -> None:
    p = parse_protocol({}, "<x>")
    assert p.method == "ff-dd" and p.train.directions == 10 and p.device.driver == "neurophox-mesh"


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"trian": {}}, "trian"),
        ({"train": {"epochs": "x"}}, "train.epochs"),
        ({"train": {"directions": 0}}, "train.directions"),
        ({"train": {"optimizer": "rmsprop"}}, "train.optimizer"),
        ({"network": {"layers": 11}}, "network.layers"),
        ({"data": {"encoding": "phase"}}, "data.encoding"),
    ],
)
def test_invalid_fields_are_named(doc: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_protocol(doc, "proto.yaml")
    assert info.value.field == field
    assert str(info.value).startswith(f"proto.yaml: {field}: ")


def test_overrides_nested_and_typed() -> None:
    p = parse_protocol({"train": {"epochs": 5}}, "p.yaml", ["train.epochs=3", "device.settings.bs_error=0.02",
                                                         "train.optimizer=sgd"])
    assert p.train.epochs == 3 and p.train.optimizer == "sgd"
    assert p.device.settings == {"bs_error": 0.02}


def test_override_error_names_set() -> None:
    with pytest.raises(ConfigError) as info:
        parse_protocol({}, "p.yaml", ["train.epochs=many"])
    assert info.value.field == "train.epochs" and "--set" in str(info.value)


def test_override_into_scalar_rejected() -> None:
    doc = {"train": 3}
    with pytest.raises(ConfigError):
        apply_override(doc, "train.epochs=3")


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="protocol file not found"):
        load_protocol(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: [1\n")
    with pytest.raises(ConfigError, match="invalid YAML") as info:
        load_protocol(bad)
    assert info.value.field.startswith("line ")


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_protocol(path)
