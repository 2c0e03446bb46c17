"""From ``instruments.yaml`` to a trainable :class:`~ffzero_lab.core.network.Network` of the rig's meshes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.core.errors import ConfigError
from ffzero_lab.core.network import Network
from ffzero_lab.photonics.decomposition import decompose
from ffzero_lab.rig.calibration_file import load_calibration
from ffzero_lab.rig.config import RigConfig
from ffzero_lab.rig.io import RigIO
from ffzero_lab.rig.layer import HardwareMesh
from ffzero_lab.rig.loader import load_rig
from ffzero_lab.rig.spec import LayerSpec, layer_specs


class HardwareNetwork(Network):
    """The rig's meshes in order, with the open instruments they share.

    Meshes are joined directly (no stage): each passes on its detected light as unit-power
    amplitudes, which the next mesh's input modulators set, or, to a mesh fed optically on the
    chip, its own input, which that mesh's evaluation sets on the chain's first modulators
    (:mod:`.layer`).
    """

    def __init__(self, layers: list[HardwareMesh], rig: RigIO, specs: list[LayerSpec], config: RigConfig) -> None:
        super().__init__(layers, [None] * (len(layers) - 1))
        self.rig, self.specs, self.config = rig, specs, config
        self.description = {"instruments": rig.source, "rig": config.name,
                            "calibration": None if config.calibration is None else str(config.calibration),
                            "calibration_sha256": file_sha256(config.calibration),
                            "identities": {name: identity.identity for name, identity in rig.identities.items()},
                            "layers": [spec.name for spec in specs]}

    def instrument_time_s(self) -> float | None:
        """The rig's lab-time ledger, s: every settle wait and every sweep's samples / sample rate
        (:class:`~.io.RigCounters`)."""
        return self.rig.counters.instrument_s

    def layer_inputs(self, layer: int, inputs: NDArray[np.generic], chunk: int = 4096) -> NDArray[np.generic]:
        """As :meth:`Network.layer_inputs`, without measuring the meshes whose light goes on
        optically: their signal is their input, and the mesh evaluated later writes their phases."""
        x = inputs
        for mesh in self.layers[:layer]:
            assert isinstance(mesh, HardwareMesh)
            if not mesh.passes_light:
                x = np.concatenate([mesh.forward(x[start:start + chunk])[0] for start in range(0, len(x), chunk)])
        return x

    def propagate_settings(self, inputs: NDArray[np.generic],
                           settings: Sequence[NDArray[np.floating]]) -> NDArray[np.float64]:
        """As :meth:`Network.propagate_settings`; a mesh whose light goes on optically is not
        measured on its own: its settings are written with those of the mesh it feeds."""
        x: NDArray[np.generic] = inputs
        held: list[tuple[HardwareMesh, NDArray[np.floating]]] = []
        taps: NDArray[np.float64] | None = None
        for layer, s in zip(self.layers, settings, strict=True):
            assert isinstance(layer, HardwareMesh)
            if layer.passes_light:
                held.append((layer, s))
                continue
            x, taps = layer.propagate(x, s, held if layer.upstream else None)
            held = []
        assert taps is not None
        return taps

    def close(self) -> None:
        """Close the instruments (call after :meth:`safe_state`)."""
        self.rig.close()


def file_sha256(path: Path | None) -> str | None:
    """The SHA-256 of a file's bytes (hex), None for no file or one that cannot be read."""
    if path is None:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def load_specs(path: str | Path) -> tuple[RigConfig, list[LayerSpec]]:
    """Read an instruments file and its calibration file; the meshes they describe. No I/O to
    any instrument.

    Raises:
        ConfigError: either file is wrong, or names no calibration.
    """
    source = str(path)
    rig = load_rig(path)
    if rig.calibration is None:
        raise ConfigError("no calibration file is named; run 'ffzero-lab calibrate' and name its output",
                          source, "calibration")
    return rig, layer_specs(rig, load_calibration(rig.calibration), source)


def haar_phases(spec: LayerSpec, rng: np.random.Generator) -> NDArray[np.float64]:
    """Phases of a Haar-random transfer matrix in the rig's design, ``(n,)`` rad in the mesh's
    parameter order: a unitary drawn from the Haar measure (scipy), decomposed into the design's
    thetas and phis (:func:`ffzero_lab.photonics.decomposition.decompose`, equal up to output
    phases); gammas and any phase the decomposition leaves out are 0. The draw is taken as the
    column form (its transpose is Haar too), so a seed gives the starts it always gave."""
    from scipy.stats import unitary_group

    phases = decompose(unitary_group.rvs(spec.modes, random_state=rng).T)
    return np.array([phases.get(name, 0.0) for name in spec.names])


def build_rig_network(rig: RigConfig, specs: list[LayerSpec], seed: int, source: str = "instruments",
                 sleep: Callable[[float], None] | None = None,
                 initial: Sequence[NDArray[np.floating]] | None = None,
                 init: Literal["haar", "uniform"] = "haar") -> HardwareNetwork:
    """Open the instruments and build one layer per mesh; nothing is written yet.

    Initial phases come from ``seed`` (mesh i from child i): ``init="haar"`` a Haar-random transfer
    matrix per mesh (:func:`haar_phases`; light from every input reaches every output, as the
    simulated chip's ``haar_rect``), ``"uniform"`` every phase uniform on [0, 2 pi) (a rectangular
    mesh so drawn spreads light only over a band of modes around each input). ``initial`` gives
    them instead: one ``(n_i,)`` array per mesh, rad, in the mesh's parameter order.

    Raises:
        ValueError: ``initial`` does not match the meshes.
    """
    if initial is not None:
        if len(initial) != len(specs) or any(np.shape(a) != (len(s.names),) for a, s in zip(initial, specs)):
            raise ValueError(f"initial phases: need {[len(s.names) for s in specs]} phases per mesh, "
                             f"got {[np.shape(a) for a in initial]}")
    else:
        rngs = [np.random.default_rng(seq) for seq in np.random.SeedSequence(seed).spawn(len(specs))]
        initial = [haar_phases(spec, rng) if init == "haar" else rng.uniform(0, 2 * np.pi, len(spec.names))
                   for spec, rng in zip(specs, rngs)]
    io = RigIO(rig, source) if sleep is None else RigIO(rig, source, sleep)
    layers: list[HardwareMesh] = []
    for spec, phases in zip(specs, initial, strict=True):
        feeder = layers[-1] if spec.optical else None
        layers.append(HardwareMesh(spec, io, np.asarray(phases, dtype=np.float64), feeder))
    return HardwareNetwork(layers, io, specs, rig)
