"""instruments.yaml: the models, the loader and its one-line errors naming file and field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from ffzero_lab.core.errors import ConfigError
from ffzero_lab.rig import (
    InstrumentIdentity,
    limit_problems,
    load_rig,
    parse_rig,
    rig_schema,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "instruments.yaml"
QONTROL = "drivers.instruments.qontrol:Qontrol"
N774X = "drivers.instruments.keysight_n774x:KeysightN774x"

BASE: dict[str, Any] = {
    "power_budget_W": 0.5,
    "instruments": {
        "q8": {
            "resource": "ASRL1::INSTR",
            "driver": QONTROL,
            "channels": {
                "count": 4,
                "default": {"voltage_max_V": 6.0, "current_max_mA": 20.0, "resistance_ohm": 500.0},
            },
        },
        "meter": {"resource": "TCPIP::10.0.0.5::inst0::INSTR", "driver": N774X},
    },
    "layers": [
        {
            "modes": 2,
            "phases": {
                "theta[0,0]": {"instrument": "q8", "channel": 0},
                "phi[0,0]": {"instrument": "q8", "channel": 1},
            },
            "detectors": {0: {"instrument": "meter", "port": 1}, 1: {"instrument": "meter", "port": 2}},
            "unmapped": "fixed",  # this test chip has no heaters on its input phases gamma
        }
    ],
}


def changed(*edits: tuple[str, Any]) -> dict[str, Any]:
    """BASE with ``("a.b.c", value)`` edits; a value of ... deletes the key."""
    doc = copy.deepcopy(BASE)
    for dotted, value in edits:
        *path, last = dotted.split(".")
        node = doc
        for key in path:
            node = node[_key(node, key)]
        if value is ...:
            del node[_key(node, last)]
        else:
            node[_key(node, last)] = value
    return doc


def _key(node: Any, key: str) -> Any:
    """List indices and integer mapping keys are written as digits."""
    return int(key) if key.isdigit() and (isinstance(node, list) or int(key) in node) else key


def error_of(doc: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_rig(doc, "rig.yaml")
    return str(info.value)


def test_the_example_rig_loads() -> None:
    rig = load_rig(EXAMPLE)
    assert set(rig.instruments) == {"heaters", "meter"}
    assert len(rig.layers[0].phases) == 16 and len(rig.layers[0].modulators) == 4
    assert rig.ports_used("meter") == {1, 2, 3, 4}
    limits = rig.heater_channel_limits("heaters")
    assert [lim.voltage_max_V for lim in limits[15:17]] == [6.0, 4.0]
    assert limits[16].resistance_ohm == 350.0 and limits[16].current_max_mA == 15.0
    assert rig.calibration == ROOT / "calibration" / "chip-a.yaml"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("colour", "red"), "rig.yaml: colour: unknown field"),
        (("instruments.q8.baud", 9600), "rig.yaml: instruments.q8.baud: unknown field"),
        (("instruments.q8.channels.default.vmax", 1), "rig.yaml: instruments.q8.channels.default.vmax: unknown field"),
        (
            ("instruments.q8.channels.overrides", {2: {"voltage_max": 1}}),
            "instruments.q8.channels.overrides[2].voltage_max: unknown field",
        ),
        (("layers.0.phases.theta[0,0].slot", 1), "rig.yaml: layers[0].phases.theta[0,0].slot: unknown field"),
        (("layers.0.detectors.0.channel", 1), "layers[0].detectors[0].channel: unknown field"),
        (("power_budget_W", 0), "rig.yaml: power_budget_W: Input should be greater than 0 (got 0)"),
        (("power_budget_W", ...), "rig.yaml: power_budget_W: Field required"),
        (("instruments.q8.driver", "no such:driver"), "rig.yaml: instruments.q8.driver: String should match pattern"),
        (
            ("instruments.q8.channels.default.resistance_ohm", ...),
            "instruments.q8.channels.default.resistance_ohm: Field required",
        ),
        (
            ("layers.0.phases.psi[0,0]", {"instrument": "q8", "channel": 2}),
            "layers[0].phases.psi[0,0].[key]: String should match pattern",
        ),
    ],
)
def test_schema_errors_name_file_and_field(edit: tuple[str, Any], expected: str) -> None:
    assert expected in error_of(changed(edit))


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        (
            [("instruments.q8.channels.default.safe_V", 7.0)],
            "instruments.q8.channels.default: Value error, safe_V 7.0 is outside [0.0, 6.0]",
        ),
        ([("instruments.q8.channels.default.voltage_min_V", 6.0)], "voltage_min_V 6.0 must be below voltage_max_V 6.0"),
        (
            [
                ("instruments.q8.channels.default.safe_V", 5.0),
                ("instruments.q8.channels.default.resistance_ohm", 100.0),
            ],
            "safe_V 5.0 drives more than current_max_mA 20.0",
        ),
        ([("instruments.q8.channels.overrides", {4: {"safe_V": 1.0}})], "overrides: channel 4 is outside 0..3"),
        (
            [("instruments.q8.channels.overrides", {1: {"voltage_max_V": 1.0, "safe_V": 2.0}})],
            "overrides: channel 1: Value error, safe_V 2.0 is outside [0.0, 1.0]",
        ),
        (
            [("layers.0.phases.theta[1,0]", {"instrument": "q8", "channel": 2})],
            "rig.yaml: layers[0].phases.theta[1,0]: column 1 of a 2-mode mesh has no MZI",
        ),
        (
            [("layers.0.modes", 3), ("layers.0.phases.theta[0,1]", {"instrument": "q8", "channel": 2})],
            "layers[0].phases.theta[0,1]: column 0 of a 3-mode mesh has slots 0..0, not 1",
        ),
        (
            [("layers.0.phases.phi[2,0]", {"instrument": "q8", "channel": 2})],
            "layers[0].phases.phi[2,0]: column 2 is outside 0..1",
        ),
        (
            [("layers.0.phases.gamma[2]", {"instrument": "q8", "channel": 2})],
            "layers[0].phases.gamma[2]: gamma mode 2 is outside 0..1",
        ),
        (
            [("layers.0.phases.gamma[0]", {"instrument": "q9", "channel": 2})],
            "layers[0].phases.gamma[0].instrument: unknown instrument 'q9'",
        ),
        ([("layers.0.phases.gamma[0]", {"instrument": "meter", "channel": 2})], "'meter' has no channels section"),
        (
            [("layers.0.phases.gamma[0]", {"instrument": "q8", "channel": 4})],
            "gamma[0].channel: channel 4 is outside 0..3 of 'q8'",
        ),
        (
            [("layers.0.phases.gamma[0]", {"instrument": "q8", "channel": 1})],
            "rig.yaml: layers[0].phases.gamma[0].channel: 'q8' channel 1 already drives layers[0].phases.phi[0,0]",
        ),
        (
            [("layers.0.modulators", {0: {"instrument": "q8", "channel": 0}})],
            "layers[0].modulators[0].channel: 'q8' channel 0 already drives",
        ),
        (
            [("layers.0.detectors.1.port", 1)],
            "rig.yaml: layers[0].detectors[1].port: port 1 already reads layers[0].detectors[0]",
        ),
        (
            [("layers.0.detectors.2", {"instrument": "meter", "port": 3})],
            "layers[0].detectors[2]: mode 2 is outside 0..1",
        ),
        ([("layers.0.detectors.1.instrument", "q8")], "'q8' is a heater instrument, not a power meter"),
        (
            [("instruments.q8.channels.default.safe_V", 6.0), ("power_budget_W", 0.25)],
            "rig.yaml: power_budget_W: the safe state draws 0.288 W, more than the budget 0.25 W",
        ),
    ],
)
def test_cross_field_problems_name_the_field(edits: list[tuple[str, Any]], expected: str) -> None:
    assert expected in error_of(changed(*edits))


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        (
            [("instruments.q8.driver", "no_such_module:Qontrol")],
            "instruments.q8.driver: cannot import module 'no_such_module'",
        ),
        (
            [("instruments.q8.driver", "drivers.instruments.qontrol:Qontral")],
            "module 'drivers.instruments.qontrol' has no attribute 'Qontral'",
        ),
        (
            [("instruments.q8.driver", "drivers.instruments.qontrol:ERROR_CODES")],
            "is not an instrument driver (no kind",
        ),
        (
            [("instruments.q8.settings", {"vector_max": 0})],
            "rig.yaml: instruments.q8.settings.vector_max: Input should be greater than or equal to 1",
        ),
        ([("instruments.q8.settings", {"verfy": True})], "rig.yaml: instruments.q8.settings.verfy: unknown field"),
        (
            [("instruments.meter.settings", {"averaging_time_s": -1})],
            "instruments.meter.settings.averaging_time_s: Input should be greater than 0",
        ),
        (
            [("instruments.q8.channels", ...), ("layers", [])],
            "rig.yaml: instruments.q8.channels: drivers.instruments.qontrol:Qontrol drives heaters: "
            "give a channels section",
        ),
        (
            [("instruments.meter.channels", BASE["instruments"]["q8"]["channels"]), ("layers", [])],
            "instruments.meter.channels: drivers.instruments.keysight_n774x:KeysightN774x is a power_meter",
        ),
    ],
)
def test_drivers_are_resolved_and_their_settings_validated(edits: list[tuple[str, Any]], expected: str) -> None:
    assert expected in error_of(changed(*edits))


def test_files_and_relative_paths(tmp_path: Path) -> None:
    path = tmp_path / "rig" / "instruments.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(changed(("visa_library", "sims/lab.yaml@sim"), ("calibration", "cal.yaml"))))
    rig = load_rig(path)
    assert rig.visa_library == f"{path.parent / 'sims' / 'lab.yaml'}@sim"
    assert rig.calibration == path.parent / "cal.yaml"
    assert load_rig(_write(tmp_path, changed(("visa_library", "@py")))).visa_library == "@py"
    with pytest.raises(ConfigError, match="missing.yaml: instruments file not found"):
        load_rig(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("instruments:\n  q8: [\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: line 3: invalid YAML"):
        load_rig(bad)
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_rig(_write(tmp_path, ["a list"]))


def _write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_schema_rejects_unknown_keys_everywhere() -> None:
    schema = rig_schema()
    objects = [schema, *schema["$defs"].values()]
    assert all(
        o.get("additionalProperties") is False for o in objects if o.get("type") == "object" and "properties" in o
    )
    assert {"ChannelLimits", "HeaterChannels", "InstrumentConfig", "LayerMap", "ChannelRef", "PortRef"} <= set(
        schema["$defs"]
    )
    assert "power_budget_W" in schema["required"]


def test_limit_problems() -> None:
    rig = parse_rig(changed(("instruments.q8.channels.overrides", {3: {"voltage_max_V": 13.0, "current_max_mA": 30.0}}),
                            ("instruments.q8.channels.default.voltage_min_V", -1.0)), "rig.yaml")
    q8 = InstrumentIdentity("Q8iv-0042", "Q8iv", 2, (0.0, 12.0), 24.0)
    assert limit_problems("q8", rig.instruments["q8"], q8, set()) == [
        "channels.count 4 > the 2 channels of Q8iv",
        *[f"channel {c}: voltage_min_V -1.0 < instrument lowest 0.0 V" for c in range(3)],
        "channel 3: voltage_max_V 13.0 > instrument full scale 12.0 V",
        "channel 3: voltage_min_V -1.0 < instrument lowest 0.0 V",
        "channel 3: current_max_mA 30.0 > instrument full scale 24.0 mA",
    ]
    meter = InstrumentIdentity("...", "N7744A", 4)
    assert limit_problems("meter", rig.instruments["meter"], meter, {1, 4}) == []
    assert limit_problems("meter", rig.instruments["meter"], meter, {1, 5, 6}) == [
        "ports [5, 6] do not exist (N7744A has 4)"
    ]
