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

What is refused besides a field that does not validate (one line naming the file and the
field; docs/protocols.md, "What is refused"): a file that is not UTF-8, larger than 16 MiB,
has a key twice, or sets nothing (an empty protocol); NaN or infinity in any number; sizes
beyond the fields' upper bounds; and a protocol whose estimated memory (:func:`memory_estimate`)
exceeds :data:`MEMORY_LIMIT_BYTES`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from ffzero_lab.core.errors import ConfigError, UserError, validation_error
from ffzero_lab.core.files import format_bytes, load_yaml, parse_yaml, read_text, refuse_non_finite

#: Most memory a protocol may ask for, bytes (8 GiB), by :func:`memory_estimate`. A fixed limit,
#: the same on every machine, so a protocol valid on one is valid on all.
MEMORY_LIMIT_BYTES = 8 * 2**30


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


ImageSide = Annotated[int, Field(ge=1, le=4096)]


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
    train_limit: int | None = Field(None, ge=1, le=10**9, description="Use only the first N training samples.")
    test_limit: int | None = Field(None, ge=1, le=10**9, description="Use only the first N test samples.")
    resize: tuple[ImageSide, ImageSide] | None = Field(
        None, description="Downsample images to (height, width) by block averaging, e.g. [8, 8] for 64 modes."
    )
    validation: float = Field(
        0.0, ge=0.0, le=0.5,
        description="Fraction of the training samples held out as a validation split (drawn from the seed; "
        "never the test set), scored after every epoch; 0: none.",
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
    width: int = Field(
        64, ge=2, le=65536, description="Taps per layer (modes of a mesh). The first layer's input must match."
    )
    conv: ConvConfig | None = Field(
        None, description="Conv layers before the fully connected ones (devices that support them: digital)."
    )
    activation: dict[str, Any] = Field(
        default_factory=dict, description="Stage between layers; validated by the device driver."
    )


class BudgetConfig(_Section):
    """``train.budget``: where training stops at the latest, besides ``train.epochs``.

    Every device evaluation counts (training steps, calibration probes, validation and test
    passes, pushing data through frozen layers). A layer stops after the step that reaches its
    budget; FF methods give each layer ``evaluations_per_layer`` and, of ``evaluations``, an
    equal share of what is left when the layer starts (what an early-stopped layer leaves goes
    to the later ones).
    """

    evaluations: int | None = Field(None, ge=1, le=10**15, description="Evaluations of the whole run.")
    evaluations_per_layer: int | None = Field(
        None, ge=1, le=10**15, description="Evaluations of one training phase (a layer; the network for BP).")


class CalibrationConfig(_Section):
    """``train.calibration``: how ``train.calibrate`` chooses eps and lr (docs/protocols.md, Calibration)."""

    repeats: int = Field(8, ge=2, le=1000, description="Unperturbed evaluations of the probe (noise).")
    pairs: int = Field(4, ge=1, le=1000, description="Perturbation pairs of the probe (derivative scale).")
    snr: float = Field(3.0, gt=0, description="A pair's loss difference in units of its own noise, at least.")
    dac_steps: float = Field(4.0, ge=0, description="Device steps each parameter's share of eps spans, at least.")
    resolution: float | None = Field(
        None, ge=0,
        description="Smallest step of one parameter (rad for a phase), used when the device states none "
        "(parameter_resolution); None: 0 (continuous).",
    )
    eps_min: float = Field(1e-3, gt=0, description="Smallest eps chosen.")
    eps_max: float = Field(1.0, gt=0, description="Largest eps chosen.")
    target_step: float | None = Field(
        None, gt=0,
        description="rms move of each parameter in the first step, setting lr (adam: lr = target_step); "
        "None: keep train.lr.",
    )
    block: bool = Field(
        False, description="Refuse a step whose loss on its batch rises by more than block_sigmas x the noise.")
    block_sigmas: float = Field(2.0, ge=0, description="Allowed rise of a step's loss, in noise sigmas.")


class TrainConfig(_Section):
    """``train``: the layer-local optimisation."""

    epochs: int = Field(40, ge=1, le=1_000_000, description="Epochs per layer.")
    batch_size: int = Field(64, ge=1, le=1_000_000, description="Samples per mini-batch.")
    optimizer: Literal["sgd", "momentum", "adam"] = "adam"
    lr: float = Field(0.01, gt=0, description="Learning rate eta.")
    schedule: Literal["constant", "cosine"] = Field(
        "constant", description="Learning rate over each training phase: constant, or cosine decay to lr_final."
    )
    lr_final: float = Field(0.05, gt=0, le=1, description="cosine: final learning rate as a fraction of lr.")
    directions: int = Field(10, ge=1, le=1_000_000, description="K, random directions per step (2K settings).")
    eps: float = Field(0.01, gt=0, description="Perturbation size, in the parameters' unit (rad).")
    margin: float = Field(0.5, description="m in the margin loss.")
    negative_weight: float = Field(1.0, description="lambda, weight of the wrong classes' goodness.")
    negatives: Literal["mean", "max"] = Field("mean", description="Mean or max over wrong classes.")
    shuffle: bool = Field(True, description="Shuffle the training set every epoch.")
    readout: Literal["power-fraction", "raw"] = Field(
        "power-fraction", description="BP methods: logits from the first C ports' share of the power, or raw taps."
    )
    logit_scale: float = Field(10.0, gt=0, description="BP methods: logits = logit_scale * readout.")
    difference: Literal["central", "forward"] = Field(
        "central",
        description="DD: central differences (2K settings a step, the paper's) or forward differences from one "
        "shared unperturbed setting (K + 1).",
    )
    direction_kind: Literal["gaussian", "orthogonal"] = Field(
        "gaussian", description="DD: independent random unit directions (the paper's), or orthonormalised ones."
    )
    patience: int | None = Field(
        None, ge=1, le=1_000_000,
        description="Stop a layer when its validation score has not improved for this many epochs "
        "(needs data.validation); None: train every epoch.",
    )
    keep_best: bool = Field(
        True, description="With a validation split: end each layer with its best-scoring parameters."
    )
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    calibrate: bool = Field(
        False, description="DD: choose eps and lr per layer from a batched probe of measurements before it trains."
    )
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)


class GoodnessConfig(_Section):
    """``goodness``: how taps are compared with prototypes."""

    centre: bool = Field(True, description="Centre each tap over its ports (I - mean(I)); prototypes sum to 0.")
    prototype_steps: int = Field(400, ge=0, le=100_000, description="Repulsion steps spreading the prototypes.")
    vote: Literal["majority", "sum"] = Field(
        "majority",
        description="Classification across layers: majority of the layers' votes, ties to the last (the paper's), "
        "or 'sum': the class with the largest goodness summed over layers (a soft vote).",
    )
    projection: int = Field(
        32, ge=2, le=65536,
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


#: Overrides as the command line gives them (``["train.epochs=3"]``, values read as YAML) or as
#: a mapping of dotted field to value (``{"train.epochs": 3}``).
Overrides = Mapping[str, Any] | Sequence[str] | str


class Protocol(_Section):
    """A whole training protocol.

    Besides its fields, a protocol remembers where it came from (not validated, not part of
    ``model_dump``): :attr:`source` (the file, for error messages and the run store), :attr:`text`
    (the file's text as read) and :attr:`overrides` (every override applied since, in order).
    """

    name: str | None = None
    seed: int = Field(0, ge=0, le=2**63 - 1)
    method: Literal["ff-dd", "ff-ad", "bp-dd", "bp-ad"] = Field(
        "ff-dd", description="ff-dd: FFzero; ff-ad, bp-dd, bp-ad: the paper's comparison methods."
    )
    data: DataConfig = Field(default_factory=DataConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    goodness: GoodnessConfig = Field(default_factory=GoodnessConfig)
    device: DeviceConfig = Field(default_factory=DeviceConfig)
    record: RecordConfig = Field(default_factory=RecordConfig)

    _source: str = PrivateAttr("protocol")
    _text: str | None = PrivateAttr(None)
    _overrides: tuple[str, ...] = PrivateAttr(())

    @property
    def source(self) -> str:
        """The file this protocol was read from (``protocol`` for one built in Python)."""
        return self._source

    @property
    def text(self) -> str | None:
        """The protocol file's text as read, or None for one built in Python."""
        return self._text

    @property
    def overrides(self) -> tuple[str, ...]:
        """Every override applied to the file's text, as ``FIELD=VALUE`` (value as YAML), in order."""
        return self._overrides

    @classmethod
    def load(cls, path: str | Path, overrides: Overrides | None = None) -> Protocol:
        """Read and validate a protocol file, with ``overrides`` applied before validation.

        ``overrides``: ``{"train.epochs": 3, "method": "bp-dd"}`` or ``["train.epochs=3"]``.

        Raises:
            ConfigError: as :func:`load_protocol`.
        """
        return load_protocol(path, assignments(overrides))[0]

    def with_overrides(self, overrides: Overrides) -> Protocol:
        """A new protocol: this one with ``overrides`` applied, validated as a whole again.

        Raises:
            ConfigError: a field that does not validate, naming this protocol's source and the field.
        """
        more = assignments(overrides)
        protocol = parse_protocol(self.model_dump(mode="json"), self._source, more)
        protocol._source, protocol._text, protocol._overrides = self._source, self._text, self._overrides + more
        return protocol

    @model_validator(mode="after")
    def _validation_for_patience(self) -> "Protocol":
        if self.train.patience is not None and self.data.validation == 0:
            raise PydanticCustomError("needs_validation",
                                      "train.patience needs a validation split: set data.validation")
        return self


#: What :func:`memory_estimate` assumes of a data set: (height, width), train and test samples.
#: A set it does not know is taken as MNIST-sized (an IDX set of 28 x 28 images, 60,000 + 10,000).
KNOWN_SETS: dict[str, tuple[tuple[int, int], int, int]] = {
    "digits": ((8, 8), 1347, 450),
    "franke-2d": ((1, 2), 8000, 2000),
    "friedman-5d": ((1, 5), 8000, 2000),
    "mnist": ((28, 28), 60000, 10000),
    "fashion_mnist": ((28, 28), 60000, 10000),
}
_UNKNOWN_SET = ((28, 28), 60000, 10000)
_F64 = 8
#: The fields whose size the memory estimate depends on, in the order they are blamed on a tie.
SIZE_FIELDS = ("train.directions", "train.batch_size", "network.width", "network.layers", "network.conv.channels",
               "network.conv.layers", "goodness.projection", "data.train_limit", "data.test_limit", "data.resize")


@dataclass(frozen=True)
class MemoryEstimate:
    """How much memory a protocol's run needs, bytes, by part (an upper estimate, float64 throughout).

    Attributes:
        total: the whole estimate, bytes.
        parts: ``(what, bytes)``: the data, every layer's parameters, and the largest layer's step
            (2K settings of its parameters and ``(2K, batch, ports)`` taps), cached inputs and projections.
        largest: the largest part.
    """

    total: int
    parts: tuple[tuple[str, int], ...]

    @property
    def largest(self) -> tuple[str, int]:
        return max(self.parts, key=lambda part: part[1])


def _layer_shapes(protocol: Protocol) -> tuple[int, list[tuple[int, int, int, int]]]:
    """The data's features and every layer's (inputs, ports, parameters, scored dimensions)."""
    d, net = protocol.data, protocol.network
    (height, width), _, _ = KNOWN_SETS.get(d.set, _UNKNOWN_SET)
    if d.resize is not None:
        height, width = d.resize
    layers: list[tuple[int, int, int, int]] = []
    features = height * width
    if net.conv is not None:
        c = net.conv
        channels = 1
        for _ in range(c.layers):
            pad = c.kernel // 2
            out_h = max(1, (height + 2 * pad - c.kernel) // c.stride + 1)
            out_w = max(1, (width + 2 * pad - c.kernel) // c.stride + 1)
            ports = c.channels * out_h * out_w
            n = c.channels * (channels * c.kernel**2 + 1)
            layers.append((channels * height * width, ports, n, c.channels * protocol.goodness.projection))
            channels, height, width = c.channels, out_h, out_w
        features_in = layers[-1][1]
    else:
        features_in = features
    for _ in range(net.layers):  # a dense layer's in x out weights and out biases; a mesh's N^2 phases fit in that
        layers.append((features_in, net.width, features_in * net.width + net.width, net.width))
        features_in = net.width
    return features, layers


def memory_estimate(protocol: Protocol) -> MemoryEstimate:
    """An upper estimate of the memory a run of ``protocol`` needs (float64 arrays, bytes).

    * the data: ``(train + test, features)``, twice (loaded and encoded);
    * parameters: ``n`` per layer, 8 copies (parameters, optimiser state, gradient, checkpoints);
    * a step of layer l: ``2K`` settings of its ``n`` parameters (all the network's for BP methods),
      40 bytes each (a mesh's 2 x 2 complex blocks are 32), and ``(2K, B, ports)`` taps, with the
      layer's inputs and scored dimensions, 32 bytes each (complex fields, intensities, goodness);
    * layer l's inputs cached for the training and test sets, 1.5 times (one chunk in flight), and
      the test set's taps;
    * a channel-wise layer's random projections ``(projection, ports)``.

    The data set's size is known for the bundled and synthetic sets and MNIST-sized otherwise
    (:data:`KNOWN_SETS`), cut by ``data.train_limit`` / ``data.test_limit``.
    """
    d, t = protocol.data, protocol.train
    _, known_train, known_test = KNOWN_SETS.get(d.set, _UNKNOWN_SET)
    known = d.set in KNOWN_SETS
    n_train = min(d.train_limit, known_train) if known and d.train_limit else d.train_limit or known_train
    n_test = min(d.test_limit, known_test) if known and d.test_limit else d.test_limit or known_test
    features, layers = _layer_shapes(protocol)
    s = 2 * t.directions
    batch = min(t.batch_size, n_train)
    n_total = sum(n for _, _, n, _ in layers)
    step_params = n_total if protocol.method.startswith("bp") else 0
    data = (n_train + n_test) * features * _F64 * 2
    params = n_total * _F64 * 8
    parts: list[tuple[str, int]] = [(f"the data ({n_train + n_test} x {features})", data),
                                    (f"{n_total} parameters over {len(layers)} layers, 8 copies", params)]
    worst: list[tuple[str, int]] = []
    for i, (inputs, ports, n, scored) in enumerate(layers):
        layer = [
            (f"layer {i}'s 2K = {s} settings of {step_params or n} parameters", s * (step_params or n) * 40),
            (f"layer {i}'s ({s}, {batch}, {ports}) taps of a step"
             + (f", scored in {scored} dimensions" if scored != ports else ""),
             s * batch * (inputs + ports + scored) * 32),
            (f"layer {i}'s inputs cached for {n_train + n_test} samples x {inputs}",
             (n_train + n_test) * inputs * _F64 * 3 // 2 + n_test * ports * _F64),
        ]
        if scored != ports:
            layer.append((f"layer {i}'s random projections ({scored} x {ports})", scored * ports * _F64))
        if sum(size for _, size in layer) > sum(size for _, size in worst):
            worst = layer
    parts += worst
    return MemoryEstimate(sum(size for _, size in parts), tuple(parts))


def _with_default(protocol: Protocol, field: str) -> Protocol | None:
    """``protocol`` with ``field`` (``section.name`` or ``network.conv.name``) at its default, or None."""
    *sections, name = field.split(".")
    owners: list[BaseModel] = [protocol]
    for section in sections:
        child = getattr(owners[-1], section)
        if child is None:
            return None
        owners.append(child)
    default = type(owners[-1]).model_fields[name].get_default(call_default_factory=True)
    if getattr(owners[-1], name) == default:
        return None
    node: BaseModel = owners[-1].model_copy(update={name: default})
    for owner, section in zip(reversed(owners[:-1]), reversed(sections)):
        node = owner.model_copy(update={section: node})
    return node  # type: ignore[return-value]


def check_memory(protocol: Protocol, source: str, limit: int = MEMORY_LIMIT_BYTES) -> MemoryEstimate:
    """Refuse a protocol whose :func:`memory_estimate` exceeds ``limit``.

    The error names the size field whose default would lower the estimate most.

    Raises:
        ConfigError: naming ``source``, that field, the estimate and its largest part.
    """
    estimate = memory_estimate(protocol)
    if estimate.total <= limit:
        return estimate
    blame, lowest = "network.width", estimate.total
    for field in SIZE_FIELDS:
        changed = _with_default(protocol, field)
        if changed is not None and (smaller := memory_estimate(changed).total) < lowest:
            blame, lowest = field, smaller
    what, size = estimate.largest
    raise ConfigError(
        f"the run would need about {format_bytes(estimate.total)} of memory, more than the "
        f"{format_bytes(limit)} a protocol may use (largest part: {what}, {format_bytes(size)}); make it smaller",
        source, blame)


def apply_override(document: dict[str, Any], assignment: str) -> None:
    """Apply ``dotted.path=value`` (value parsed as YAML) to a nested dict, in place."""
    key, sep, raw = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"expected FIELD=VALUE, got {assignment!r}", "--set")
    try:
        value = parse_yaml(raw, "--set") if raw.strip() else None
    except ConfigError as exc:
        if exc.message.startswith("duplicate key"):
            raise ConfigError(exc.message, "--set", f"{key}.{exc.field}") from None
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


def _plain(value: Any) -> Any:
    """A numpy scalar or array as the Python value JSON writes."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as a protocol value")


def assignments(overrides: Overrides | None) -> tuple[str, ...]:
    """Overrides as ``FIELD=VALUE`` assignments (what ``--set`` takes).

    A mapping's values are written as JSON (which YAML reads back as the same value), so
    ``{"train.lr": 0.01, "data.resize": [8, 8]}`` gives ``train.lr=0.01`` and
    ``data.resize=[8, 8]``; a string is one assignment; a sequence of strings is kept.
    """
    if overrides is None:
        return ()
    if isinstance(overrides, str):
        return (overrides,)
    if isinstance(overrides, Mapping):
        try:
            return tuple(f"{key}={json.dumps(value, default=_plain)}" for key, value in overrides.items())
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc), "overrides") from None
    return tuple(overrides)


def parse_protocol(document: Any, source: str, overrides: Sequence[str] = ()) -> Protocol:
    """Validate a parsed YAML document (plus overrides) as a :class:`Protocol`.

    Besides the fields' own checks: no NaN or infinity anywhere (the driver's sections too), and
    the memory estimate within :data:`MEMORY_LIMIT_BYTES` (:func:`check_memory`).
    """
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError("a protocol must be a mapping of sections", source)
    for assignment in overrides:
        apply_override(document, assignment)
    try:
        refuse_non_finite(document, source)
        try:
            protocol = Protocol.model_validate(document)
        except ValidationError as exc:
            raise validation_error(exc, source) from None
        check_memory(protocol, source)
    except UserError as err:
        if overrides and any(_covers(a.split("=", 1)[0].strip(), err.field) for a in overrides):
            err.source = f"{source} (--set)"
        raise
    return protocol


def _covers(key: str, field: str | None) -> bool:
    """Whether an override of ``key`` set ``field`` (the field itself or inside it)."""
    return bool(field) and (field == key or str(field).startswith(key + ".") or str(field).startswith(key + "["))


def load_protocol(path: str | Path, overrides: Sequence[str] = ()) -> tuple[Protocol, str]:
    """Read and validate a protocol file.

    Returns:
        The protocol and the file's text (stored with the run).

    Raises:
        ConfigError: missing, unreadable, not UTF-8 or larger than 16 MiB; bad YAML or a key given
            twice; an empty protocol (no text, only comments, ``{}``: it would train on the
            defaults); a field that does not validate.
    """
    path = Path(path)
    text = read_text(path, "protocol file")
    document = load_yaml(text, str(path), "protocol")
    empty = not document
    protocol = parse_protocol(document, str(path), overrides)
    if empty:
        raise ConfigError("the protocol is empty: it sets no section, so it would train on the defaults; "
                          "start from protocols/quickstart.yaml", str(path))
    protocol._source, protocol._text, protocol._overrides = str(path), text, tuple(overrides)
    return protocol, text
