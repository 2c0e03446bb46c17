"""The contract every trainable physical (or digital) layer meets.

A *layer* is one trainable linear stage of a physical network: an MZI mesh whose phase
shifters are its parameters, a resistive crossbar, or a plain digital dense layer. The
trainer never looks inside; it only

* reads the number of parameters and their bounds,
* gets and sets the parameters,
* evaluates a batch of inputs under a batch of parameter settings and reads the *tap*
  (what a detector sees at the layer's output ports),
* pushes inputs through the layer at its current parameters to feed the next stage.

Drivers (``drivers/``) import this module; this package never imports a driver by name.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray


class ParameterRangeError(ValueError):
    """A bounded parameter was asked to leave its range. Nothing was written."""


@dataclass(frozen=True)
class ParameterBounds:
    """Bounds of a layer's parameters.

    Attributes:
        lower: ``(n,)`` lower bounds, in the parameter's unit (radians for phases).
        upper: ``(n,)`` upper bounds (exclusive for periodic parameters).
        periodic: ``(n,)`` bool; a periodic parameter wraps into ``[lower, upper)``, any other
            parameter outside ``[lower, upper]`` is rejected, never clipped.
        names: optional ``(n,)`` human-readable names (``"theta[3,7]"``) used in error messages.
    """

    lower: NDArray[np.float64]
    upper: NDArray[np.float64]
    periodic: NDArray[np.bool_]
    names: tuple[str, ...] | None = None

    @classmethod
    def unbounded(cls, n: int) -> "ParameterBounds":
        """Bounds for ``n`` real parameters with no limits (digital weights)."""
        return cls(np.full(n, -np.inf), np.full(n, np.inf), np.zeros(n, dtype=bool))

    @classmethod
    def phases(cls, n: int, names: tuple[str, ...] | None = None) -> "ParameterBounds":
        """Bounds for ``n`` phases in radians, periodic on ``[0, 2 pi)``."""
        return cls(np.zeros(n), np.full(n, 2 * np.pi), np.ones(n, dtype=bool), names)

    def __len__(self) -> int:
        return int(self.lower.shape[0])

    @cached_property
    def _one_periodic_interval(self) -> tuple[float, float] | None:
        """``(lower, upper)`` when every parameter is periodic on that one interval, else None."""
        if len(self) == 0 or not self.periodic.all():
            return None
        lower, upper = float(self.lower[0]), float(self.upper[0])
        if np.all(self.lower == lower) and np.all(self.upper == upper):
            return lower, upper
        return None

    def name(self, index: int) -> str:
        """Human-readable name of parameter ``index``."""
        return self.names[index] if self.names is not None else f"parameter[{index}]"

    def apply(self, values: NDArray[np.floating]) -> NDArray[np.float64]:
        """Wrap periodic parameters and check the others.

        Args:
            values: ``(..., n)`` requested parameter values (any leading batch shape).

        Returns:
            ``(..., n)`` float64 values, periodic ones wrapped into ``[lower, upper)``.

        Raises:
            ParameterRangeError: a non-periodic value lies outside its bounds, or any value
                is not finite. The message names the first offending parameter.
        """
        values = np.array(values, dtype=np.float64)  # a copy: the caller's array is never kept
        if values.shape[-1] != len(self):
            raise ParameterRangeError(f"expected {len(self)} parameters, got {values.shape[-1]}")
        if values.size == 0:
            return values
        low, high = float(values.min()), float(values.max())  # two reductions tell finite and in range
        if not (math.isfinite(low) and math.isfinite(high)):
            index = int(np.argwhere(~np.isfinite(values))[0][-1])
            raise ParameterRangeError(f"{self.name(index)} is not finite")
        interval = self._one_periodic_interval
        if interval is not None:  # phases: wrap only what lies outside, no np.mod over every value
            lower, upper = interval
            if low < lower or high >= upper:
                outside = (values < lower) | (values >= upper)
                wrapped = lower + np.mod(values[outside] - lower, upper - lower)
                wrapped[wrapped >= upper] = lower  # np.mod(-1e-17, 2 pi) rounds to 2 pi: half-open
                values[outside] = wrapped
            return values
        out = values
        if self.periodic.any():
            lower = np.where(self.periodic, self.lower, 0.0)
            span = np.where(self.periodic, self.upper - self.lower, 1.0)
            wrapped = lower + np.mod(values - lower, span)
            # np.mod(-1e-17, 2 pi) rounds to 2 pi: keep the interval half-open.
            wrapped = np.where(wrapped >= lower + span, lower, wrapped)
            out = np.where(self.periodic, wrapped, values)
        outside = ~self.periodic & ((out < self.lower) | (out > self.upper))
        if outside.any():
            where = np.argwhere(outside)[0]
            index = int(where[-1])
            raise ParameterRangeError(
                f"{self.name(index)} = {out[tuple(where)]:.6g} is outside "
                f"[{self.lower[index]:.6g}, {self.upper[index]:.6g}]"
            )
        return out


class PhysicalLayer(ABC):
    """One trainable linear stage, physical or digital.

    Signals between stages are arrays whose last axis is the stage's width: real intensities
    or voltages, or complex optical fields (amplitude in sqrt(W)). Taps are real readings.
    """

    #: Width of the input signal the layer accepts.
    in_features: int
    #: Number of tap readings (detector ports) per input.
    ports: int
    #: Width of the signal the layer passes on (often equal to ``ports``).
    out_features: int
    #: Channel-wise layers (a convolution's output channels): the parameters and the ports split
    #: into ``channels`` equal contiguous blocks, and block c's ports depend only on block c's
    #: parameters. Layer-local methods then give every channel its own goodness, loss and
    #: directions (as for convolutional layers). 1: the layer is trained as a whole.
    channels: int = 1

    @property
    @abstractmethod
    def bounds(self) -> ParameterBounds:
        """Bounds of the ``n`` parameters."""

    @property
    def n_params(self) -> int:
        """Number of trainable parameters n."""
        return len(self.bounds)

    @abstractmethod
    def get_parameters(self) -> NDArray[np.float64]:
        """Current parameters, shape ``(n,)``."""

    @abstractmethod
    def set_parameters(self, values: NDArray[np.floating]) -> None:
        """Set all parameters, shape ``(n,)``; periodic ones wrap, bounded ones are checked.

        Raises:
            ParameterRangeError: nothing was written.
        """

    @abstractmethod
    def propagate(
        self, inputs: NDArray[np.generic], settings: NDArray[np.floating]
    ) -> tuple[NDArray[np.generic], NDArray[np.float64]]:
        """Push a batch of inputs through the layer under a batch of parameter settings.

        The settings are applied one after the other, each held while the whole input batch is
        swept; the layer's own parameters are left as they were.

        Args:
            inputs: ``(B, in_features)`` shared by every setting, or ``(S, B, in_features)``
                one batch per setting (a later layer of a network evaluated as a whole).
            settings: ``(S, n)`` parameter settings.

        Returns:
            ``(outputs (S, B, out_features), taps (S, B, ports))``: the signals handed to the
            next stage and the tap readings (watts for a photodetector).

        Raises:
            ParameterRangeError: a setting is out of range; nothing was evaluated.
        """

    def evaluate(self, inputs: NDArray[np.generic], settings: NDArray[np.floating]) -> NDArray[np.float64]:
        """Tap readings ``(S, B, ports)`` of inputs ``(B, in)`` under settings ``(S, n)``."""
        return self.propagate(inputs, settings)[1]

    def forward(self, inputs: NDArray[np.generic]) -> tuple[NDArray[np.generic], NDArray[np.float64]]:
        """One pass at the current parameters: ``(outputs (B, out), taps (B, ports))``."""
        outputs, taps = self.propagate(inputs, self.get_parameters()[None])
        return outputs[0], taps[0]

    def differentiable(self) -> "DifferentiableModel | None":
        """A differentiable (TensorFlow) model of this layer, for the AD reference methods.

        Physical hardware has none: the default returns None and the AD methods refuse to run.
        """
        return None

    def safe_state(self) -> None:
        """Put the device in its safe state (heaters to their safe values). Default: nothing.

        Called when a run ends, fails or is interrupted, and when a remote client is lost.
        """

    def state(self) -> dict[str, NDArray[np.generic]]:
        """Arrays that, with the parameters, define the device (e.g. fabrication errors).

        Stored with a run so a trained model can be rebuilt. Default: nothing.
        """
        return {}


class HeldParameters:
    """For layers that hold their parameters in memory (simulated and digital devices).

    Provides ``bounds``, ``get_parameters`` and ``set_parameters`` from ``self._bounds`` and
    ``self._theta``; put it before :class:`PhysicalLayer` among the bases.
    """

    _bounds: ParameterBounds
    _theta: NDArray[np.float64]

    @property
    def bounds(self) -> ParameterBounds:
        return self._bounds

    def get_parameters(self) -> NDArray[np.float64]:
        return self._theta.copy()

    def set_parameters(self, values: NDArray[np.floating]) -> None:
        self._theta = self._bounds.apply(values)


@runtime_checkable
class Stage(Protocol):
    """A fixed nonlinear stage between layers: a black box the trainer never differentiates.

    It acts element-wise or along the last axis, so any leading batch shape passes through.
    A stage may also offer ``differentiable() -> callable`` (a TensorFlow function of the
    same map) for the AD reference methods.
    """

    def __call__(self, signal: NDArray[np.generic]) -> NDArray[np.generic]:
        """Map ``(..., width)`` signals to ``(..., width)`` signals."""
        ...


class DifferentiableModel(Protocol):
    """A TensorFlow model of a layer: ``(inputs (B, in), params (n,)) -> (outputs, taps)``.

    Used only by the automatic-differentiation reference methods (``ff-ad``, ``bp-ad``), which
    are upper bounds, not physical procedures.
    """

    def __call__(self, inputs: Any, params: Any) -> tuple[Any, Any]:
        ...
