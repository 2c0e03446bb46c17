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

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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
        values = np.asarray(values, dtype=np.float64)
        if values.shape[-1] != len(self):
            raise ParameterRangeError(f"expected {len(self)} parameters, got {values.shape[-1]}")
        bad_finite = ~np.isfinite(values)
        if bad_finite.any():
            index = int(np.argwhere(bad_finite)[0][-1])
            raise ParameterRangeError(f"{self.name(index)} is not finite")
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
    def evaluate(
        self, inputs: NDArray[np.generic], settings: NDArray[np.floating]
    ) -> NDArray[np.float64]:
        """Tap readings of a batch of inputs under a batch of parameter settings.

        The layer's own parameters are left as they were.

        Args:
            inputs: ``(B, in_features)`` input signals.
            settings: ``(S, n)`` parameter settings.

        Returns:
            ``(S, B, ports)`` tap readings (watts for a photodetector).

        Raises:
            ParameterRangeError: a setting is out of range; nothing was evaluated.
        """

    @abstractmethod
    def forward(
        self, inputs: NDArray[np.generic]
    ) -> tuple[NDArray[np.generic], NDArray[np.float64]]:
        """Push inputs through the layer at its current parameters.

        Args:
            inputs: ``(B, in_features)``.

        Returns:
            ``(outputs (B, out_features), taps (B, ports))``: the signal handed to the next
            stage and the tap readings.
        """

    def state(self) -> dict[str, NDArray[np.generic]]:
        """Arrays that, with the parameters, define the device (e.g. fabrication errors).

        Stored with a run so a trained model can be rebuilt. Default: nothing.
        """
        return {}


@runtime_checkable
class Stage(Protocol):
    """A fixed nonlinear stage between layers: a black box the trainer never differentiates."""

    def __call__(self, signal: NDArray[np.generic]) -> NDArray[np.generic]:
        """Map ``(B, width)`` signals to ``(B, width)`` signals."""
        ...
