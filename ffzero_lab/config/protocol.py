"""Training protocols: YAML files validated once, at the edge, by pydantic.

Top-level sections (unknown keys are rejected everywhere):

* ``data``: which set and how it is encoded,
* ``network``: how many trainable layers, how wide, and the stage between them,
* ``method``: the training method (``ff-dd``: FFzero),
* ``train``: epochs, batch size, optimiser, learning rate, directions K, eps, margin...,
* ``goodness``: tap centring and prototype generation,
* ``device``: the driver that builds the network and its settings,
* ``seed``: one integer from which every random choice of the run is derived.

``--set train.epochs=3`` overrides a field; the value is parsed as YAML and validated with
the rest of the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ffzero_lab.core.errors import ConfigError, validation_error


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Section):
    """``data``: the data set and its encoding."""

    set: str = Field(
        "digits",
        description="'digits' (bundled), 'franke-2d' or 'friedman-5d' (synthetic regression), or an IDX set "
        "under the data dir, e.g. 'mnist', 'fashion_mnist'.",
    )
    target: Literal["class", "scalar"] = Field(
        "class", description="'scalar': read the class label as a number in [0, 1] (regression, e.g. MNIST 0-9)."
    )
    encoding: Literal["amplitude", "intensity", "raw"] = Field(
        "amplitude", description="amplitude: pixels as field amplitudes, unit optical power per sample."
    )
    train_limit: int | None = Field(None, ge=1, description="Use only the first N training samples.")
    test_limit: int | None = Field(None, ge=1, description="Use only the first N test samples.")
    resize: tuple[int, int] | None = Field(
        None, description="Downsample images to (height, width) by block averaging, e.g. [8, 8] for 64 modes."
    )


class ConvConfig(_Section):
    """``network.conv``: convolutional layers in front of the fully connected ones (a CNN).

    Every conv layer has ``channels`` output channels of ``kernel`` x ``kernel`` kernels, moves
    by ``stride`` and pads by ``kernel // 2`` (28 x 28 -> 14 x 14 -> 7 x 7 with the defaults).
    FF methods train each output channel on its own goodness (channel-wise: its own loss and
    directions).
    """

    layers: int = Field(2, ge=1, le=4, description="Number of conv layers.")
    channels: int = Field(8, ge=1, le=256, description="Output channels of every conv layer.")
    kernel: int = Field(5, ge=1, le=15, description="Kernel height and width, pixels.")
    stride: int = Field(2, ge=1, le=4, description="Step of the kernel, pixels.")


class NetworkConfig(_Section):
    """``network``: the chain of trainable layers."""

    layers: int = Field(
        2, ge=1, le=10,
        description="Number of trainable linear stages; with 'conv', the fully connected layers after the conv layers.",
    )
    width: int = Field(64, ge=2, description="Taps per layer (modes of a mesh). The first layer's input must match.")
    conv: ConvConfig | None = Field(
        None, description="Conv layers before the fully connected ones (devices that support them: digital)."
    )
    activation: dict[str, Any] = Field(
        default_factory=dict, description="Stage between layers; validated by the device driver."
    )


class TrainConfig(_Section):
    """``train``: the layer-local optimisation."""

    epochs: int = Field(40, ge=1, description="Epochs per layer.")
    batch_size: int = Field(64, ge=1, description="Samples per mini-batch.")
    optimizer: Literal["sgd", "momentum", "adam"] = "adam"
    lr: float = Field(0.01, gt=0, description="Learning rate eta.")
    schedule: Literal["constant", "cosine"] = Field(
        "constant", description="Learning rate over each training phase: constant, or cosine decay to lr_final."
    )
    lr_final: float = Field(0.05, gt=0, le=1, description="cosine: final learning rate as a fraction of lr.")
    directions: int = Field(10, ge=1, description="K, random directions per step (2K settings).")
    eps: float = Field(0.01, gt=0, description="Perturbation size, in the parameters' unit (rad).")
    margin: float = Field(0.5, description="m in the margin loss.")
    negative_weight: float = Field(1.0, description="lambda, weight of the wrong classes' goodness.")
    negatives: Literal["mean", "max"] = Field("mean", description="Mean or max over wrong classes.")
    shuffle: bool = Field(True, description="Shuffle the training set every epoch.")
    readout: Literal["power-fraction", "raw"] = Field(
        "power-fraction", description="BP methods: logits from the first C ports' share of the power, or raw taps."
    )
    logit_scale: float = Field(10.0, gt=0, description="BP methods: logits = logit_scale * readout.")


class GoodnessConfig(_Section):
    """``goodness``: how taps are compared with prototypes."""

    centre: bool = Field(True, description="Centre each tap over its ports (I - mean(I)); prototypes sum to 0.")
    prototype_steps: int = Field(400, ge=0, description="Repulsion steps spreading the prototypes.")
    projection: int = Field(
        32, ge=2,
        description="Channel-wise layers (conv): each channel's feature map is projected by a fixed random "
        "matrix to this many dimensions, where its prototypes live.",
    )


class RecordConfig(_Section):
    """``record``: what the run store keeps besides steps, epochs and checkpoints."""

    measurements: bool = Field(
        True,
        description="Every step's measurement: perturbation seed and draw, samples, raw readings, base parameters.",
    )


class DeviceConfig(_Section):
    """``device``: the driver that builds the network, and its settings."""

    driver: str = Field(
        "neurophox-mesh", description="Entry point name (group ffzero_lab.devices) or 'module:attribute'."
    )
    settings: dict[str, Any] = Field(default_factory=dict, description="Driver settings; validated by the driver.")


class Protocol(_Section):
    """A whole training protocol."""

    name: str | None = None
    seed: int = Field(0, ge=0)
    method: Literal["ff-dd", "ff-ad", "bp-dd", "bp-ad"] = Field(
        "ff-dd", description="ff-dd: FFzero; ff-ad, bp-dd, bp-ad: the paper's comparison methods."
    )
    data: DataConfig = Field(default_factory=DataConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    goodness: GoodnessConfig = Field(default_factory=GoodnessConfig)
    device: DeviceConfig = Field(default_factory=DeviceConfig)
    record: RecordConfig = Field(default_factory=RecordConfig)


def apply_override(document: dict[str, Any], assignment: str) -> None:
    """Apply ``dotted.path=value`` (value parsed as YAML) to a nested dict, in place."""
    key, sep, raw = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"expected FIELD=VALUE, got {assignment!r}", "--set")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    node = document
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"'{part}' is not a section", "--set", key)
        node = child
    node[parts[-1]] = value


def parse_protocol(document: Any, source: str, overrides: Sequence[str] = ()) -> Protocol:
    """Validate a parsed YAML document (plus overrides) as a :class:`Protocol`."""
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError("a protocol must be a mapping of sections", source)
    for assignment in overrides:
        apply_override(document, assignment)
    try:
        return Protocol.model_validate(document)
    except ValidationError as exc:
        err = validation_error(exc, source)
        if overrides and any(a.split("=", 1)[0].strip() == err.field for a in overrides):
            err.source = f"{source} (--set)"
        raise err from None


def load_protocol(path: str | Path, overrides: Sequence[str] = ()) -> tuple[Protocol, str]:
    """Read and validate a protocol file.

    Returns:
        The protocol and the file's text (stored with the run).

    Raises:
        ConfigError: missing file, bad YAML, or a field that does not validate.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("protocol file not found", str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read protocol: {exc.strerror}", str(path)) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        raise ConfigError(f"invalid YAML: {getattr(exc, 'problem', exc)}", str(path), where) from None
    return parse_protocol(document, str(path), overrides), text
