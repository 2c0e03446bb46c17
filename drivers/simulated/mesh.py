"""A simulated photonic chip: rectangular MZI meshes built on neurophox's ``RMNumpy``.

Each mesh of N modes is one :class:`~ffzero_lab.contract.PhysicalLayer` with N^2 phase
shifters (N(N-1)/2 MZIs with theta and phi, plus N input phases gamma), all in radians and
periodic on [0, 2 pi). Inputs are field amplitudes (sqrt(W)); the tap is the intensity (W)
at every output port. Beam-splitter (fabrication) errors are drawn once per mesh from the
device's seed and kept, as a real chip's are.

neurophox supplies the mesh structure, the Haar-random initial phases and the reference
``.matrix``; the per-step work uses :mod:`drivers.simulated.transfer`, which evaluates a whole
batch of phase settings without rebuilding a neurophox mesh per setting.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from ffzero_lab.contract import ParameterBounds, PhysicalLayer
from ffzero_lab.network import Network

from .activation import ElectroOpticActivation
from .transfer import MeshGeometry, grid_permutation, mzi_blocks, propagate, rectangular_mask


def _quiet_tensorflow() -> None:
    """neurophox imports TensorFlow at import time; keep its C++ log lines off the console."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def neurophox_haar_phases(units: int, basis: str, seed: int) -> tuple[NDArray, NDArray, NDArray]:
    """neurophox's Haar-random initial phases (theta, phi ``(N, N//2)``, gamma ``(N,)``).

    neurophox's initialisers draw from numpy's global RNG; it is seeded for the call and then
    put back as it was.
    """
    _quiet_tensorflow()
    from neurophox.numpy import RMNumpy  # lazy: imports TensorFlow

    saved = np.random.get_state()
    try:
        np.random.seed(seed)
        mesh = RMNumpy(units, basis=basis)
    finally:
        np.random.set_state(saved)
    return mesh.theta, mesh.phi, mesh.gamma.reshape(-1)


def neurophox_matrix(theta: NDArray, phi: NDArray, gamma: NDArray, geometry: MeshGeometry) -> NDArray:
    """neurophox's ``.matrix`` for the given phases and the geometry's fixed errors.

    Args:
        theta, phi: ``(L, N//2)`` radians. gamma: ``(N,)`` radians.
        geometry: mesh structure; its ``bs_error`` replaces neurophox's per-rebuild draw.
    """
    _quiet_tensorflow()
    from neurophox.meshmodel import RectangularMeshModel  # lazy: imports TensorFlow
    from neurophox.numpy.generic import MeshNumpyLayer, MeshPhases

    errors = geometry.bs_error

    class FixedErrorModel(RectangularMeshModel):
        @property
        def mzi_error_matrices(self) -> tuple[NDArray, NDArray]:
            return errors, errors

    model = FixedErrorModel(geometry.units, geometry.num_layers, basis=geometry.basis)
    phases = MeshPhases(theta, phi, gamma, mask=model.mask, basis=geometry.basis)
    return MeshNumpyLayer(model, phases).matrix


class MeshSettings(BaseModel):
    """Settings of the simulated mesh device (``device.settings`` in a protocol)."""

    model_config = ConfigDict(extra="forbid")

    basis: Literal["sm", "bloch"] = Field(
        "sm", description="'sm': theta on one arm, as a single heater; 'bloch': +-theta/2."
    )
    bs_error: float = Field(
        0.0, ge=0.0, lt=1.0, description="Std. dev. of each beam splitter's split-ratio error."
    )
    init: Literal["haar_rect", "random"] = Field(
        "haar_rect", description="Initial phases: Haar-random unitary, or uniform random phases."
    )
    precision: Literal["double", "single"] = Field(
        "double", description="complex128 (exact) or complex64 (about 1.5x faster) arithmetic."
    )


class ActivationSettings(BaseModel):
    """The electro-optic activation between meshes (``network.activation``)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["electro-optic", "none"] = "electro-optic"
    alpha: float = Field(0.1, ge=0.0, lt=1.0, description="Tapped power fraction.")
    gain: float = Field(0.05, description="Modulator phase per detected power, rad/W.")
    bias_phase: float = Field(0.0, description="Bias phase phi_b, radians.")


class SimulatedMesh(PhysicalLayer):
    """One rectangular MZI mesh of ``modes`` modes.

    Args:
        modes: N.
        settings: device settings.
        seed: seeds the initial phases and the fabrication errors.
    """

    def __init__(self, modes: int, settings: MeshSettings, seed: int | np.random.SeedSequence) -> None:
        if modes < 2:
            raise ValueError(f"a mesh needs at least 2 modes, got {modes}")
        self.settings = settings
        self.in_features = self.ports = self.out_features = modes
        self._dtype = np.complex128 if settings.precision == "double" else np.complex64
        seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        init_seq, fab_seq = seq.spawn(2)
        mask = rectangular_mask(modes, modes)
        bs_error = np.random.default_rng(fab_seq).standard_normal(mask.shape) * settings.bs_error * mask
        self.geometry = MeshGeometry(
            modes, modes, grid_permutation(modes, modes), mask, bs_error, settings.basis
        )
        self._where = mask.astype(bool)
        self._bounds = ParameterBounds.phases(self.geometry.n_params, self._names())
        self._theta = self._initial_phases(init_seq)

    def _names(self) -> tuple[str, ...]:
        cols, slots = np.nonzero(self._where)
        mzis = [f"[{c},{s}]" for c, s in zip(cols, slots)]
        gammas = [f"gamma[{i}]" for i in range(self.geometry.units)]
        return tuple([f"theta{m}" for m in mzis] + [f"phi{m}" for m in mzis] + gammas)

    def _initial_phases(self, seq: np.random.SeedSequence) -> NDArray[np.float64]:
        n = self.geometry.units
        if self.settings.init == "random":
            return np.random.default_rng(seq).uniform(0, 2 * np.pi, self.n_params)
        theta, phi, gamma = neurophox_haar_phases(n, self.settings.basis, int(seq.generate_state(1)[0]))
        return self._bounds.apply(self.pack(theta, phi, gamma))

    # -- parameter layout ---------------------------------------------------------------
    def pack(self, theta: NDArray, phi: NDArray, gamma: NDArray) -> NDArray[np.float64]:
        """``(L, N//2)``, ``(L, N//2)``, ``(N,)`` phases -> ``(n,)`` parameter vector."""
        return np.concatenate([theta[self._where], phi[self._where], np.ravel(gamma)])

    def unpack(self, settings: NDArray) -> tuple[NDArray, NDArray, NDArray]:
        """``(S, n)`` -> theta ``(S, L, N//2)``, phi ``(S, L, N//2)``, gamma ``(S, N)``."""
        s = settings.shape[0]
        m = self.geometry.n_mzis
        shape = (s,) + self._where.shape
        theta = np.zeros(shape)
        phi = np.zeros(shape)
        theta[:, self._where] = settings[:, :m]
        phi[:, self._where] = settings[:, m : 2 * m]
        return theta, phi, settings[:, 2 * m :]

    # -- PhysicalLayer ------------------------------------------------------------------
    @property
    def bounds(self) -> ParameterBounds:
        return self._bounds

    def get_parameters(self) -> NDArray[np.float64]:
        return self._theta.copy()

    def set_parameters(self, values: NDArray[np.floating]) -> None:
        self._theta = self._bounds.apply(values)

    def fields(self, inputs: NDArray[np.generic], settings: NDArray[np.floating]) -> NDArray[np.complexfloating]:
        """Output fields ``(S, B, N)`` (sqrt(W)) for inputs ``(B, N)`` and settings ``(S, n)``."""
        settings = self._bounds.apply(np.atleast_2d(settings))
        theta, phi, gamma = self.unpack(settings)
        blocks = mzi_blocks(theta, phi, self.geometry, self._dtype)
        inputs = np.asarray(inputs).astype(self._dtype, copy=False)
        if inputs.shape[0] <= self.geometry.units:
            return propagate(inputs, blocks, gamma, self.geometry)
        eye = np.eye(self.geometry.units, dtype=self._dtype)
        return inputs @ propagate(eye, blocks, gamma, self.geometry)

    def evaluate(self, inputs: NDArray[np.generic], settings: NDArray[np.floating]) -> NDArray[np.float64]:
        out = self.fields(inputs, settings)
        return (out.real**2 + out.imag**2).astype(np.float64)

    def forward(self, inputs: NDArray[np.generic]) -> tuple[NDArray[np.complexfloating], NDArray[np.float64]]:
        out = self.fields(inputs, self._theta[None])[0]
        return out, (out.real**2 + out.imag**2).astype(np.float64)

    def matrix(self) -> NDArray[np.complexfloating]:
        """Transfer matrix ``(N, N)`` at the current phases (row convention: ``x @ U``)."""
        return self.fields(np.eye(self.geometry.units), self._theta[None])[0]

    def reference_matrix(self) -> NDArray[np.complex128]:
        """The same matrix computed by neurophox: build a mesh layer, then ``.matrix``.

        This is the naive path (one mesh rebuild per phase setting), kept as the reference
        that the fast path is tested and benchmarked against. The mesh model is neurophox's
        ``RectangularMeshModel`` with this device's fixed beam-splitter errors in place of
        the ones neurophox would draw afresh at every rebuild.
        """
        theta, phi, gamma = self.unpack(self._theta[None])
        return neurophox_matrix(theta[0], phi[0], gamma[0], self.geometry)

    def state(self) -> dict[str, NDArray[np.generic]]:
        return {"bs_error": self.geometry.bs_error}


class MeshDevice:
    """Driver entry point ``neurophox-mesh``: a chip of ``network.layers`` meshes of ``network.width`` modes."""

    settings_model = MeshSettings
    activation_model = ActivationSettings

    def build(
        self, network: Any, settings: MeshSettings, activation: ActivationSettings, seed: int, in_features: int
    ) -> Network:
        """Build the chip. Mesh i draws its phases and errors from child i of ``SeedSequence(seed)``.

        Raises:
            ValueError: the input width differs from the mesh's modes (inputs are fed one per mode).
        """
        if in_features != network.width:
            raise ValueError(
                f"the data has {in_features} features but the meshes have {network.width} modes; "
                "set network.width to the number of features"
            )
        seqs = np.random.SeedSequence(seed).spawn(network.layers)
        layers = [SimulatedMesh(network.width, settings, s) for s in seqs]
        stage = None
        if activation.kind == "electro-optic":
            stage = ElectroOpticActivation(activation.alpha, activation.gain, activation.bias_phase)
        return Network(layers, [stage] * (network.layers - 1))


DEVICE = MeshDevice()
