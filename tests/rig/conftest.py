"""Fixtures for the hardware tests: the emulated rig on free 127.0.0.1 ports, an instruments file
that points at it, and a calibration file holding the emulated chip's true phase laws."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from drivers.emulated.rig import EmulatedRig
from ffzero_lab.data.idx import write_idx
from ffzero_lab.rig import CalibrationFile, ChannelLaw, save_calibration

ROOT = Path(__file__).resolve().parents[2]


def emulated_rig_file(
    folder: Path, chip: dict[str, Any] | None = None, instruments: dict[str, Any] | None = None
) -> Path:
    """The repository's emulated rig (noise off unless ``chip`` says so), next to a copy of its instruments file."""
    doc = yaml.safe_load((ROOT / "rig.emulated.yaml").read_text())
    doc["chip"].update({"noise": 0.0, **(chip or {})})
    doc["instruments"] = instruments or {}
    (folder / "instruments.emulated.yaml").write_text((ROOT / "instruments.emulated.yaml").read_text())
    path = folder / "rig.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def true_calibration(rig: EmulatedRig) -> CalibrationFile:
    """The emulated chip's own phase laws, as a calibration file would hold them."""
    chip = rig.chip
    return CalibrationFile(channels={
        name: {c: ChannelLaw(phi0_rad=float(law.phi0_rad[c]), k_rad_per_V2=float(law.k_rad_per_V2[c]))
               for c in range(law.phi0_rad.size)}
        for name, law in chip.laws.items()})


def live_instruments_file(rig: EmulatedRig, folder: Path, calibration: CalibrationFile | None = None,
                          channel_overrides: dict[int, dict[str, float]] | None = None, **changes: Any) -> Path:
    """An instruments file whose resources are the running emulator's, with a calibration file;
    ``changes`` replace top-level fields, ``channel_overrides`` add to the heaters' overrides."""
    doc = rig.instruments_config().model_dump(mode="json", exclude_none=True)
    doc.update({"calibration": "calibration.yaml", "settle_time_s": 0.0005, "input_settle_time_s": 0.0, **changes})
    doc["instruments"]["heaters"]["channels"]["overrides"].update(channel_overrides or {})
    save_calibration(folder / "calibration.yaml", calibration or true_calibration(rig))
    path = folder / "instruments.live.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def start_rig(tmp_path: Path) -> Iterator[Callable[..., EmulatedRig]]:
    """``start_rig(chip=..., instruments=...)``: an emulated rig on free ports, stopped at the end."""
    started: list[EmulatedRig] = []

    def start(**kwargs: Any) -> EmulatedRig:
        rig = EmulatedRig.from_file(emulated_rig_file(tmp_path, **kwargs), any_port=True).start()
        started.append(rig)
        return rig

    yield start
    for rig in started:
        rig.stop()


@pytest.fixture
def emulated(start_rig: Callable[..., EmulatedRig]) -> EmulatedRig:
    """The emulated rig, noise off."""
    return start_rig()


@contextmanager
def served_generated_rig(folder: Path, modes: int, layers: int, edit: Callable[[dict[str, Any]], None] | None = None,
                         **options: Any) -> Iterator[tuple[EmulatedRig, Path]]:
    """A rig written by ``write_emulated_rig(folder, modes, layers, **options)`` (its instruments
    file changed by ``edit`` first, if given), served on free ports (stopped on exit), and an
    instruments file pointing at it with no settle waits."""
    from drivers.emulated.generate import write_emulated_rig

    paths = write_emulated_rig(folder, modes, layers, **options)
    if edit is not None:
        document = yaml.safe_load(paths["instruments"].read_text())
        edit(document)
        paths["instruments"].write_text(yaml.safe_dump(document))
    with EmulatedRig.from_file(paths["rig"], any_port=True) as rig:
        document = yaml.safe_load(paths["instruments"].read_text())
        for name, resource in rig.resources.items():
            document["instruments"][name]["resource"] = resource
        document.update({"settle_time_s": 0.0, "input_settle_time_s": 0.0})
        live = folder / "instruments.live.yaml"
        live.write_text(yaml.safe_dump(document))
        yield rig, live


@contextmanager
def opened_rig(instruments: Path, seed: int = 0, **options: Any) -> Iterator[tuple[Any, list[Any]]]:
    """The network of an instruments file (build_rig_network) and its meshes; left safe and closed on exit."""
    from ffzero_lab.rig import build_rig_network, load_specs

    config, specs = load_specs(instruments)
    network = build_rig_network(config, specs, seed=seed, **options)
    try:
        yield network, specs
    finally:
        network.safe_state()
        network.close()


def corners_data(folder: Path, n_train: int = 256, n_test: int = 128, seed: int = 0) -> Path:
    """A 4-class task for a 4-mode chip, as IDX files in ``folder/corners/``: 2 x 2 images whose
    brightest pixel (180-255, the others 0-89) is the class. Chance is 0.25. Returns ``folder``."""
    rng = np.random.default_rng(seed)
    where = folder / "corners"
    where.mkdir(parents=True, exist_ok=True)
    for images, labels, n in (("train-images-idx3-ubyte", "train-labels-idx1-ubyte", n_train),
                              ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", n_test)):
        y = rng.integers(0, 4, n)
        x = rng.integers(0, 90, (n, 4))
        x[np.arange(n), y] = rng.integers(180, 256, n)
        write_idx(where / images, x.reshape(n, 2, 2).astype(np.uint8))
        write_idx(where / labels, y.astype(np.uint8))
    return folder
