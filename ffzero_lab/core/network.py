"""A network: trainable layers chained with fixed (black-box) nonlinear stages.

    x_0 --layer 0--> z_0 --stage 0--> x_1 --layer 1--> z_1 ... --layer L-1--> z_{L-1}

Training layer l needs only the input of layer l with the layers before it frozen; the
network computes that once for a whole data set (:meth:`Network.layer_inputs`) and the
trainer then evaluates layer l alone, so frozen layers are never re-evaluated per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.core.contract import PhysicalLayer, Stage


class Network:
    """Layers and the stages between them.

    Args:
        layers: the L trainable layers, in signal order.
        stages: L - 1 stages; ``stages[i]`` acts between layer i and layer i + 1.
            ``None`` means a direct connection.
    """

    def __init__(self, layers: Sequence[PhysicalLayer], stages: Sequence[Stage | None]) -> None:
        if not layers:
            raise ValueError("a network needs at least one layer")
        if len(stages) != len(layers) - 1:
            raise ValueError(f"{len(layers)} layers need {len(layers) - 1} stages, got {len(stages)}")
        for i in range(1, len(layers)):
            if layers[i].in_features != layers[i - 1].out_features:
                raise ValueError(
                    f"layer {i} takes {layers[i].in_features} inputs but layer {i - 1} "
                    f"gives {layers[i - 1].out_features}"
                )
        for i, layer in enumerate(layers):
            if layer.channels < 1 or layer.ports % layer.channels or layer.n_params % layer.channels:
                raise ValueError(
                    f"layer {i} declares {layer.channels} channels, but its {layer.ports} ports and "
                    f"{layer.n_params} parameters do not split into that many equal blocks"
                )
        self.layers = list(layers)
        self.stages = list(stages)
        #: What the network runs on, for the run record (e.g. a rig's address and instrument
        #: identities); None means the protocol's device section says it all.
        self.description: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def in_features(self) -> int:
        """Width of the network's input signal."""
        return self.layers[0].in_features

    def _after(self, index: int, outputs: NDArray[np.generic]) -> NDArray[np.generic]:
        stage = self.stages[index] if index < len(self.stages) else None
        return outputs if stage is None else stage(outputs)

    def instrument_time_s(self) -> float | None:
        """The instrument time the network's devices have cost so far in this process, s: heater
        settles, clocked samples at their rate, waits the instruments impose (the lab-time
        ledger); None for devices that keep no such ledger (a simulated chip, digital layers)."""
        return None

    def safe_state(self) -> None:
        """Every layer to its safe state; every layer is tried even if one fails (first error raised)."""
        errors = []
        for layer in self.layers:
            try:
                layer.safe_state()
            except Exception as exc:  # keep going: the other heaters must still be made safe
                errors.append(exc)
        if errors:
            raise errors[0]

    def close(self) -> None:
        """Release what the network holds (instruments, a link); after :meth:`safe_state`.

        A simulated or digital network holds nothing. Use :func:`ffzero_lab.run.open_network`
        rather than calling this and :meth:`safe_state` by hand.
        """

    def layer_inputs(self, layer: int, inputs: NDArray[np.generic], chunk: int = 4096) -> NDArray[np.generic]:
        """Input signal of ``layer`` for every sample, with the layers before it as they are.

        Args:
            layer: index l of the layer about to be trained.
            inputs: ``(B, in_features)`` encoded network inputs.
            chunk: samples pushed through at once (bounds memory).

        Returns:
            ``(B, layers[l].in_features)``.
        """
        if layer == 0:
            return inputs
        parts = []
        for start in range(0, inputs.shape[0], chunk):
            x = inputs[start : start + chunk]
            for i in range(layer):
                x = self._after(i, self.layers[i].forward(x)[0])
            parts.append(x)
        return np.concatenate(parts, axis=0)

    def all_taps(self, inputs: NDArray[np.generic]) -> list[NDArray[np.float64]]:
        """One forward pass at the current parameters; the tap of every layer.

        Args:
            inputs: ``(B, in_features)``.

        Returns:
            L arrays ``(B, ports_l)``.
        """
        taps = []
        x = inputs
        for i, layer in enumerate(self.layers):
            outputs, tap = layer.forward(x)
            taps.append(tap)
            x = self._after(i, outputs)
        return taps

    def propagate_settings(
        self, inputs: NDArray[np.generic], settings: Sequence[NDArray[np.floating]]
    ) -> NDArray[np.float64]:
        """Last layer's taps when every layer takes its own batch of settings.

        Setting s of the network is ``(settings[0][s], settings[1][s], ...)``: each layer's
        settings are applied in turn while the signal of setting s travels on.

        Args:
            inputs: ``(B, in_features)`` network inputs.
            settings: per layer ``(S, n_l)``.

        Returns:
            ``(S, B, ports)`` of the last layer.
        """
        x: NDArray[np.generic] = inputs
        taps: NDArray[np.float64] | None = None
        for i, (layer, s) in enumerate(zip(self.layers, settings)):
            outputs, taps = layer.propagate(x, s)
            x = self._after(i, outputs)
        assert taps is not None
        return taps
