"""A simulated photonic chip: rectangular MZI meshes built on neurophox's ``RMNumpy``.

Each mesh of N modes is one :class:`~ffzero_lab.core.contract.PhysicalLayer` with N^2 phase
shifters (N(N-1)/2 MZIs with theta and phi, plus N input phases gamma), all in radians and
periodic on [0, 2 pi). Inputs are field amplitudes (sqrt(W)); the tap is the intensity (W)
at every output port. Beam-splitter (fabrication) errors are drawn once per mesh from the
device's seed and kept, as a real chip's are.

neurophox supplies the mesh structure, the Haar-random initial phases and the reference
``.matrix``; the per-step work evaluates :mod:`ffzero_lab.photonics.clements`' transfer for a whole
batch of phase settings without rebuilding a neurophox mesh per setting: by the compiled kernel
of :mod:`ffzero_lab.photonics.kernel` (``kernel: auto`` with numba installed, the settings split
over ``threads`` threads) or by the numpy reference (``kernel: numpy``).
"""

from __future__ import annotations

import os
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ffzero_lab.core.contract import HeldParameters, ParameterBounds, PhysicalLayer
from ffzero_lab.core.network import Network
from ffzero_lab.photonics.activation import ElectroOpticActivation
from ffzero_lab.photonics.clements import MeshGeometry, grid_permutation, rectangular_mask
from ffzero_lab.photonics.kernel import MeshEvaluator, numba_available

from .detector import Detector, LaserDrift
from .heaters import HeaterBank, neighbour_coupling, settle


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


#: Non-ideality presets. ``ideal``: every effect off, powers normalised to a 1 W input.
#: ``realistic``: a silicon chip at a lab bench: 2 % splitter errors, 16-bit DACs, 2 % thermal
#: crosstalk, 10 us heaters, 0.05 dB per MZI, 1 mW laser drifting 1e-3 per sqrt(s), shot and read noise.
PRESETS: dict[str, dict[str, Any]] = {
    "ideal": {
        "bs_error": 0.0, "dac_bits": 0, "v_max_V": 12.0, "k_rad_per_V2": 2 * np.pi / 64, "k_spread": 0.0,
        "crosstalk": 0.0, "settle_s": 1e-3, "thermal_tau_s": 0.0, "insertion_loss_dB": 0.0,
        "insertion_loss_spread_dB": 0.0, "laser_power_W": 1.0, "laser_drift_per_sqrt_s": 0.0,
        "shot_noise": False, "bandwidth_Hz": 1e3, "read_noise_W": 0.0, "adc_bits": 0, "detector_range_W": 1.0,
        "reading_time_s": 1e-3,
    },
    "realistic": {
        "bs_error": 0.02, "dac_bits": 16, "v_max_V": 12.0, "k_rad_per_V2": 2 * np.pi / 64, "k_spread": 0.05,
        "crosstalk": 0.02, "settle_s": 50e-6, "thermal_tau_s": 10e-6, "insertion_loss_dB": 0.05,
        "insertion_loss_spread_dB": 0.01, "laser_power_W": 1e-3, "laser_drift_per_sqrt_s": 1e-3,
        "shot_noise": True, "bandwidth_Hz": 1e3, "read_noise_W": 1e-9, "adc_bits": 16, "detector_range_W": 1e-3,
        "reading_time_s": 1e-3,
    },
}


class MeshSettings(BaseModel):
    """Settings of the simulated mesh device (``device.settings`` in a protocol).

    ``preset`` sets every non-ideality at once; any field given explicitly overrides it.
    """

    model_config = ConfigDict(extra="forbid")

    preset: Literal["ideal", "realistic"] = Field("ideal", description="All non-idealities off, or a lab-like chip.")
    basis: Literal["sm", "bloch"] = Field(
        "sm", description="'sm': theta on one arm, as a single heater; 'bloch': +-theta/2."
    )
    init: Literal["haar_rect", "random"] = Field(
        "haar_rect", description="Initial phases: Haar-random unitary, or uniform random phases."
    )
    precision: Literal["double", "single"] = Field(
        "double", description="complex128 (exact) or complex64 (1.2-1.5x faster with the compiled kernel) arithmetic."
    )
    kernel: Literal["auto", "numba", "numpy"] = Field(
        "auto", description="The mesh transfer's evaluation: the compiled numba kernel, the numpy reference, "
        "or auto (numba when installed)."
    )
    threads: int | None = Field(
        None, ge=1, le=1024, description="Threads a batch of settings is split over; default: the cores this "
        "process may use (capped by NUMBA_NUM_THREADS when set)."
    )
    bs_error: float | None = Field(None, ge=0.0, lt=1.0, description="Std. dev. of each MZI's split-ratio error.")
    dac_bits: int | None = Field(None, ge=0, le=32, description="Heater DAC resolution; 0 = continuous.")
    v_max_V: float | None = Field(None, gt=0, description="Heater DAC full scale, V.")
    k_rad_per_V2: float | None = Field(None, gt=0, description="Nominal phase per V^2 of a heater, rad/V^2.")
    k_spread: float | None = Field(None, ge=0, lt=0.5, description="Relative std. dev. of k across heaters.")
    crosstalk: float | None = Field(None, ge=0, lt=0.5, description="Fraction of a neighbour heater's phase picked up.")
    settle_s: float | None = Field(None, ge=0, description="Wait after a phase change before reading, s.")
    thermal_tau_s: float | None = Field(None, ge=0, description="Heater thermal time constant, s; 0 = instant.")
    insertion_loss_dB: float | None = Field(None, ge=0, description="Mean insertion loss per MZI, dB.")
    insertion_loss_spread_dB: float | None = Field(None, ge=0, description="Std. dev. of the loss across MZIs, dB.")
    laser_power_W: float | None = Field(None, gt=0, description="Optical power of a unit-power input, W.")
    laser_drift_per_sqrt_s: float | None = Field(
        None, ge=0, description="Relative laser power random walk per sqrt(s)."
    )
    shot_noise: bool | None = Field(None, description="Add detector shot noise.")
    bandwidth_Hz: float | None = Field(None, gt=0, description="Detection bandwidth, Hz.")
    read_noise_W: float | None = Field(None, ge=0, description="Detector read noise std. dev., W.")
    adc_bits: int | None = Field(None, ge=0, le=32, description="Detector ADC resolution; 0 = none.")
    detector_range_W: float | None = Field(None, gt=0, description="Detector ADC full scale, W.")
    reading_time_s: float | None = Field(None, ge=0, description="Time to read all ports for one input, s.")

    @model_validator(mode="after")
    def _kernel_installed(self) -> "MeshSettings":
        if self.kernel == "numba" and not numba_available():
            raise ValueError("kernel 'numba' needs the numba package; install it or use kernel: auto")
        return self

    def resolved(self, name: str) -> Any:
        """The effective value of a non-ideality: explicit if given, else the preset's."""
        value = getattr(self, name)
        return PRESETS[self.preset][name] if value is None else value


class ActivationSettings(BaseModel):
    """The electro-optic activation between meshes (``network.activation``)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["electro-optic", "none"] = "electro-optic"
    alpha: float = Field(0.1, ge=0.0, lt=1.0, description="Tapped power fraction.")
    gain: float = Field(0.05, description="Modulator phase per detected power, rad/W.")
    bias_phase: float = Field(0.0, description="Bias phase phi_b, radians.")


class SimulatedMesh(HeldParameters, PhysicalLayer):
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
        get = settings.resolved
        self.in_features = self.ports = self.out_features = modes
        self._dtype = np.complex128 if settings.precision == "double" else np.complex64
        seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        init_seq, fab_seq = seq.spawn(2)
        heater_seq, loss_seq, noise_seq = fab_seq.spawn(3)
        mask = rectangular_mask(modes, modes)
        bs_error = np.random.default_rng(fab_seq).standard_normal(mask.shape) * get("bs_error") * mask
        loss_db = get("insertion_loss_dB") + get("insertion_loss_spread_dB") * np.random.default_rng(
            loss_seq).standard_normal(mask.shape)
        transmission = np.where(mask > 0, 10 ** (-np.clip(loss_db, 0, None) / 20), 1.0)
        self.geometry = MeshGeometry(
            modes, modes, grid_permutation(modes, modes), mask, bs_error, settings.basis,
            None if np.all(transmission == 1.0) else transmission,
        )
        self._where = mask.astype(bool)
        self.evaluator = MeshEvaluator(self.geometry, self._dtype, settings.kernel, settings.threads)
        self._bounds = ParameterBounds.phases(self.geometry.n_params, self._names())
        self.heaters = self._draw_heaters(heater_seq)
        self.detector = Detector(
            shot_noise=get("shot_noise"), bandwidth_Hz=get("bandwidth_Hz"), read_noise_W=get("read_noise_W"),
            adc_bits=get("adc_bits"), range_W=get("detector_range_W"),
        )
        self.noise_rng = np.random.default_rng(noise_seq)
        self.laser = LaserDrift(get("laser_drift_per_sqrt_s"), self.noise_rng)
        self.laser_power_W = float(get("laser_power_W"))
        self.setting_time_s = float(get("settle_s"))
        self.reading_time_s = float(get("reading_time_s"))
        self.clock_s = 0.0
        self._theta = self._initial_phases(init_seq)
        produced, volts = self.heaters.produced(self._theta[None])
        self._applied = produced[0]  # phases on the chip now
        self._volts = None if volts is None else volts[0]  # voltages on the heaters now

    def _draw_heaters(self, seq: np.random.SeedSequence) -> HeaterBank:
        """Per-heater phi0 and k, drawn once; neighbour crosstalk by heater position."""
        get = self.settings.resolved
        n = self.n_params
        rng = np.random.default_rng(seq)
        phi0 = rng.uniform(0, 2 * np.pi, n)
        k = get("k_rad_per_V2") * (1.0 + get("k_spread") * rng.standard_normal(n))
        cols, slots = np.nonzero(self._where)
        m = cols.size
        positions = np.concatenate([
            np.stack([np.zeros(m, int), cols, slots], axis=1),  # theta heaters
            np.stack([np.ones(m, int), cols, slots], axis=1),  # phi heaters
            np.stack([np.full(self.geometry.units, 2), np.zeros(self.geometry.units, int),
                      np.arange(self.geometry.units)], axis=1),  # input phases gamma
        ])
        tau = get("thermal_tau_s")
        factor = float(np.exp(-get("settle_s") / tau)) if tau > 0 else 0.0
        return HeaterBank(phi0, k, float(get("v_max_V")), int(get("dac_bits")),
                          neighbour_coupling(positions, float(get("crosstalk"))), factor)

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

    def _propagate(self, inputs: NDArray[np.generic], phases: NDArray[np.floating]) -> NDArray[np.complexfloating]:
        """Fields ``(S, B, N)`` for inputs ``(B, N)`` or ``(S, B, N)`` under chip phases ``(S, n)``."""
        return self.evaluator.fields(inputs, phases)

    def _apply(self, settings: NDArray[np.floating]) -> NDArray[np.float64]:
        """Write a sequence of settings ``(S, n)``; the phases each reading sees ``(S, n)``.

        Advances the chip's clock by one settle time plus the readings per setting.
        """
        settings = self._bounds.apply(np.atleast_2d(settings))
        produced, volts = self.heaters.produced(settings, self._volts)
        seen = settle(produced, self._applied, self.heaters.settle_factor)
        self._applied = produced[-1]
        if volts is not None:
            self._volts = volts[-1]
        return seen

    def _detect(self, fields: NDArray[np.complexfloating], seen_at: NDArray[np.floating]) -> NDArray[np.float64]:
        """Port readings (W) of fields ``(S, B, N)``; laser drift at the times ``(S,)``, detector noise."""
        power = np.square(fields.real)
        power += np.square(fields.imag)
        power = power.astype(np.float64, copy=False)  # in place from here: no further (S, B, N) arrays
        power *= (self.laser_power_W * self.laser.factors(seen_at))[:, None, None]
        return self.detector.read(power, self.noise_rng)

    def _readout_times(self, settings: int, batch: int) -> NDArray[np.float64]:
        per_setting = self.setting_time_s + batch * self.reading_time_s
        times = self.clock_s + per_setting * np.arange(1, settings + 1)
        self.clock_s = float(times[-1])
        return times

    def fields(self, inputs: NDArray[np.generic], settings: NDArray[np.floating]) -> NDArray[np.complexfloating]:
        """Noise-free output fields ``(S, B, N)`` (sqrt(W) per unit input power) under ``settings``.

        The chip's non-ideal heaters produce the phases (quantisation, crosstalk, settling).
        """
        return self._propagate(inputs, self._apply(settings))

    def propagate(
        self, inputs: NDArray[np.generic], settings: NDArray[np.floating]
    ) -> tuple[NDArray[np.complexfloating], NDArray[np.float64]]:
        settings = np.atleast_2d(settings)
        out = self.fields(inputs, settings)
        return out, self._detect(out, self._readout_times(settings.shape[0], out.shape[1]))

    def matrix(self) -> NDArray[np.complexfloating]:
        """Transfer matrix ``(N, N)`` at the current (requested) phases, row convention ``x @ U``.

        Computed from the requested phases, as a perfectly settled ideal heater bank would set
        them; the heater non-idealities are not applied (this is the model's matrix).
        """
        return self._propagate(np.eye(self.geometry.units), self._theta[None])[0]

    def reference_matrix(self) -> NDArray[np.complex128]:
        """The same matrix computed by neurophox: build a mesh layer, then ``.matrix``.

        This is the naive path (one mesh rebuild per phase setting), kept as the reference
        that the fast path is tested and benchmarked against. The mesh model is neurophox's
        ``RectangularMeshModel`` with this device's fixed beam-splitter errors in place of
        the ones neurophox would draw afresh at every rebuild.
        """
        theta, phi, gamma = self.unpack(self._theta[None])
        return neurophox_matrix(theta[0], phi[0], gamma[0], self.geometry)

    def differentiable(self):
        """TensorFlow twin of this mesh's model (fixed errors and loss, ideal heaters)."""
        _quiet_tensorflow()
        import tensorflow as tf

        from ffzero_lab.photonics.differentiable import mesh_model  # lazy: imports TensorFlow

        model = mesh_model(self.geometry, tf.complex128 if self._dtype == np.complex128 else tf.complex64)
        power = self.laser_power_W

        def scaled(inputs, params):
            fields, intensity = model(inputs, params)
            return fields, intensity * power

        return scaled

    def state(self) -> dict[str, NDArray[np.generic]]:
        state = {"bs_error": self.geometry.bs_error, "heater_phi0": self.heaters.phi0, "heater_k": self.heaters.k}
        if self.geometry.transmission is not None:
            state["transmission"] = self.geometry.transmission
        return state


class MeshDevice:
    """Driver entry point ``neurophox-mesh``: a chip of ``network.layers`` meshes of ``network.width`` modes."""

    settings_model = MeshSettings
    activation_model = ActivationSettings

    def build(
        self, network: Any, settings: MeshSettings, activation: ActivationSettings, seed: int, in_features: int,
        image_shape: tuple[int, int] | None = None,
    ) -> Network:
        """Build the chip. Mesh i draws its phases and errors from child i of ``SeedSequence(seed)``.

        Raises:
            ValueError: the input width differs from the mesh's modes (inputs are fed one per mode),
                or the protocol asks for conv layers.
        """
        if getattr(network, "conv", None) is not None:
            raise ValueError("the simulated chip has no conv layers; remove network.conv or use device.driver: digital")
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
