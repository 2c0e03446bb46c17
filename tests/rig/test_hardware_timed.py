"""Hardware-timed benches: a mesh's S x B evaluations as one sweep through the real nidaqmx
library, over gRPC, against the emulated NI-DAQmx device server backed by the emulated chip.

Every server binds 127.0.0.1 on a free port and is stopped by its ``with`` block."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from drivers.emulated.generate import write_emulated_rig
from drivers.emulated.rig import EmulatedRig
from ffzero_lab.cli.app import app
from ffzero_lab.rig import InstrumentError, build_rig_network, load_specs

from .conftest import corners_data
from .test_run import PROTOCOL as RIG_PROTOCOL


@contextmanager
def hardware_bench(folder: Path, modes: int = 4, layers: int = 1, edit: Callable[[dict[str, Any]], None] | None = None,
                   served: Callable[[dict[str, Any]], None] | None = None,
                   **options: Any) -> Iterator[tuple[EmulatedRig, Path]]:
    """A generated hardware-timed bench (``edit`` changes its instruments file, ``served`` its
    emulated rig file), served on a free port; an instruments file pointing at it."""
    paths = write_emulated_rig(folder, modes, layers, timing="hardware", first_port=1, **options)
    for key, change in (("instruments", edit), ("rig", served)):
        if change is not None:
            document = yaml.safe_load(paths[key].read_text())
            change(document)
            paths[key].write_text(yaml.safe_dump(document))
    with EmulatedRig.from_file(paths["rig"], any_port=True) as rig:
        document = yaml.safe_load(paths["instruments"].read_text())
        for name, address in rig.resources.items():
            document["instruments"][name]["settings"]["grpc"] = address
        live = folder / "instruments.live.yaml"
        live.write_text(yaml.safe_dump(document))
        yield rig, live


@contextmanager
def opened(instruments: Path) -> Iterator[Any]:
    config, specs = load_specs(instruments)
    network = build_rig_network(config, specs, seed=0)
    try:
        yield network
    finally:
        network.safe_state()
        network.close()


def software_timed(instruments: Path, folder: Path) -> Path:
    """The same instruments file with every instrument software-timed."""
    document = yaml.safe_load(instruments.read_text())
    for inst in document["instruments"].values():
        inst["timing"] = "software"
    path = folder / "instruments.software.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def unit_inputs(rng: np.random.Generator, batch: int, modes: int) -> np.ndarray:
    x = np.abs(rng.normal(size=(batch, modes)))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def heater_volts(rig: EmulatedRig, device: str) -> np.ndarray:
    emulator = rig.daqmx.emulator  # type: ignore[union-attr]
    names = emulator.ao_channel_names
    return emulator.ao_hold_volts()[[i for i, n in enumerate(names) if n.startswith(device + "/")]]


@pytest.mark.parametrize("join", ["electrical", "optical"])
def test_a_sweep_reads_what_software_timing_reads(tmp_path: Path, join: str) -> None:
    def instant(document: dict[str, Any]) -> None:
        document["chip"]["heater_settle_s"] = 0.0  # on-demand writes take no virtual time

    with hardware_bench(tmp_path, 4, 2, served=instant, join=join) as (rig, live):
        results = []
        for instruments in (live, software_timed(live, tmp_path)):
            with opened(instruments) as network:
                first, second = network.layers
                settings = first.get_parameters() + np.random.default_rng(1).normal(0, 0.3, (3, first.n_params))
                held = [(first, settings)] if join == "optical" else None
                x = unit_inputs(np.random.default_rng(2), 5, 4)
                results.append(second.propagate(x, second.get_parameters()[None].repeat(3, 0), held)[1])
                results.append(first.propagate(x, settings)[1])
        assert rig.daqmx is not None and not rig.daqmx.unimplemented_calls
    hardware = results[:2]
    software = results[2:]
    for h, s in zip(hardware, software):
        assert h.shape == (3, 5, 4)
        np.testing.assert_allclose(h, s, rtol=1e-2, atol=1e-7)  # the two paths round to DAC codes differently


@pytest.mark.parametrize("batch", [16, 256])
def test_a_dd_step_settles_2k_plus_1_times_and_its_transfers_do_not_grow_with_the_batch(
    tmp_path: Path, batch: int
) -> None:
    k = 3
    with hardware_bench(tmp_path, 4, 1) as (rig, live), opened(live) as network:
        mesh = network.layers[0]
        x = unit_inputs(np.random.default_rng(0), batch, 4)
        counts = []
        for step in range(3):
            theta = mesh.get_parameters()
            settings = theta + np.random.default_rng(step).normal(0, 0.05, (2 * k, mesh.n_params))
            rpc = sum(rig.daqmx.rpc_calls.values())  # type: ignore[union-attr]
            settles, sweeps = network.rig.counters.phase_settles, network.rig.counters.sweeps
            mesh.propagate(x, settings)
            mesh.set_parameters(theta + 0.01)  # the optimiser's write-back
            counts.append(sum(rig.daqmx.rpc_calls.values()) - rpc)  # type: ignore[union-attr]
            assert network.rig.counters.phase_settles - settles == 2 * k + 1
            assert network.rig.counters.sweeps - sweeps == 1
    # after the first step (which configures the tasks), every step makes the same transfers, the
    # same for B = 16 as for B = 256: two tables written, three tasks started, two waited for, one
    # block read, three stopped, and the write-back
    assert counts[1] == counts[2] == 12, counts


def test_samples_taken_while_the_heaters_settle_are_dropped(tmp_path: Path) -> None:
    def no_drop(document: dict[str, Any]) -> None:
        document["instruments"]["mod0"]["timing"]["dropped_samples"] = 0

    readings = []
    for folder, edit in ((tmp_path / "dropped", None), (tmp_path / "kept", no_drop)):
        with hardware_bench(folder, 4, 1, edit=edit) as (_, live), opened(live) as network:
            mesh = network.layers[0]
            settings = mesh.get_parameters() + np.random.default_rng(1).normal(0, 0.5, (3, mesh.n_params))
            readings.append(mesh.propagate(unit_inputs(np.random.default_rng(2), 2, 4), settings)[1])
    dropped, kept = readings
    # without dropping, the two inputs (2 us) are read while the chip still shows the setting before
    # (20 us to settle): each setting's readings are those of the one before
    np.testing.assert_allclose(kept[1:], dropped[:-1], rtol=1e-9)
    assert not np.allclose(kept[1:], dropped[1:], rtol=1e-3)


def _rate(document: dict[str, Any]) -> None:
    document["instruments"]["mod0"]["timing"]["sample_rate_Sps"] = 2e6


def _no_trigger(document: dict[str, Any]) -> None:
    document["instruments"]["mesh0"]["timing"]["start_trigger"] = "/Heat0/ao/StartTrigger"  # never fires


def _small_buffer(document: dict[str, Any]) -> None:
    document["instruments"]["mod0"] = {"buffer_samples": 50}


@pytest.mark.parametrize(("edit", "served", "expected"), [
    (_rate, None, r"'mod0'.*timing\.sample_rate_Sps = 2e\+06 refused \(maximum 1e\+06\)"),
    (_no_trigger, None, r"'mesh0'.*timing\.start_trigger '/Heat0/ao/StartTrigger'.*did not finish"),
    (None, _small_buffer, r"'mod0'.*samples per sweep.*buffer of 50"),
])
def test_a_refused_sweep_names_the_instrument_and_setting_and_leaves_the_heaters_safe(
    tmp_path: Path, edit: Any, served: Any, expected: str
) -> None:
    with hardware_bench(tmp_path, 4, 1, edit=edit, served=served) as (rig, live):
        with pytest.raises(InstrumentError) as caught, opened(live) as network:
            mesh = network.layers[0]
            mesh.set_parameters(mesh.get_parameters() + 0.3)
            assert heater_volts(rig, "Heat0").max() > 0
            mesh.propagate(unit_inputs(np.random.default_rng(0), 8, 4), mesh.get_parameters()[None].repeat(2, 0))
        assert re.search(expected, str(caught.value)), str(caught.value)
        assert "\n" not in str(caught.value)
        np.testing.assert_array_equal(heater_volts(rig, "Heat0"), 0.0)
        np.testing.assert_array_equal(heater_volts(rig, "Mod0"), 0.0)


#: test_run's 4-mode protocol, one epoch on fewer samples
PROTOCOL = {**RIG_PROTOCOL, "name": "bench-4-mode",
            "data": {**RIG_PROTOCOL["data"], "train_limit": 64, "test_limit": 64},
            "train": {**RIG_PROTOCOL["train"], "epochs": 1}}


@pytest.mark.parametrize("edit", [None, _rate])
def test_run_on_a_hardware_timed_bench(tmp_path: Path, edit: Any) -> None:
    protocol = tmp_path / "protocol.yaml"
    protocol.write_text(yaml.safe_dump(PROTOCOL))
    with hardware_bench(tmp_path, 4, 1, edit=edit) as (rig, live):
        result = CliRunner().invoke(app, ["run", str(protocol), "--instruments", str(live), "--runs-dir",
                                          str(tmp_path / "runs"), "--data-dir", str(corners_data(tmp_path)),
                                          "--quiet"])
        heaters = heater_volts(rig, "Heat0")
    if edit is None:
        assert result.exit_code == 0, result.output
        # the lab-time ledger: every step's instrument time recorded, summed by runs show and the run
        from ffzero_lab.store.runstore import RunStore

        store = RunStore(tmp_path / "runs")
        try:
            steps = store.steps(1)
            total = store.instrument_time_s(1)
        finally:
            store.close()
        assert steps and all(s["instrument_s"] is not None and s["instrument_s"] > 0 for s in steps)
        assert total == pytest.approx(sum(s["instrument_s"] for s in steps))
        assert re.search(r"instrument time [0-9.]+ s of [0-9.]+ s wall", result.stdout), result.stdout
        shown = CliRunner().invoke(app, ["runs", "show", "1", "--runs-dir", str(tmp_path / "runs")])
        assert f"instruments {total:.3f} s" in shown.stdout, shown.stdout
    else:
        assert result.exit_code == 2
        lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and "'mod0'" in lines[0] and "timing.sample_rate_Sps" in lines[0], result.stderr
    np.testing.assert_array_equal(heaters, 0.0)


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d["instruments"]["pd0"].update(timing="software"), "instruments.pd0.timing"),
    (lambda d: d["instruments"]["mod0"]["timing"].update(start_trigger="/PD0/ai/StartTrigger"),
     "instruments.mod0.timing.start_trigger"),
    (lambda d: d["instruments"]["mod0"]["timing"].pop("sample_rate_Sps"), "instruments.mod0.timing.sample_rate_Sps"),
])
def test_a_bench_file_that_cannot_sweep_is_refused_naming_the_field(tmp_path: Path, change: Any, field: str) -> None:
    from ffzero_lab.core.errors import ConfigError
    from ffzero_lab.rig import load_rig

    paths = write_emulated_rig(tmp_path, 4, 1, timing="hardware")
    document = yaml.safe_load(paths["instruments"].read_text())
    change(document)
    paths["instruments"].write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError) as caught:
        load_rig(paths["instruments"])
    assert field in str(caught.value), str(caught.value)


def test_instruments_check_on_a_hardware_timed_bench(tmp_path: Path) -> None:
    with hardware_bench(tmp_path, 4, 1) as (_, live):
        result = CliRunner().invoke(app, ["instruments", "check", "--instruments", str(live)])
    assert result.exit_code == 0, result.output
    assert "NI-DAQmx AO" in result.output and "NI-DAQmx AI" in result.output
