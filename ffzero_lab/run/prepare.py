"""From a validated protocol to a built network and its data: the edge between files and the trainer.

Everything that can be wrong with a user's input (unknown driver, bad driver settings, a
missing data set, a width that does not fit the data) is found here, before anything is
evaluated, and raised as a :class:`~ffzero_lab.core.errors.UserError` naming the file and field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from ffzero_lab.config.protocol import Protocol
from ffzero_lab.config.registry import resolve_driver
from ffzero_lab.core.errors import ConfigError, DataError, validation_error
from ffzero_lab.core.network import Network
from ffzero_lab.data.datasets import Dataset, load_dataset, resize
from ffzero_lab.run.orchestrator import RunSeeds
from ffzero_lab.store.runstore import Checkpoint, RunStore


@dataclass
class Prepared:
    """A protocol ready to run: its network, data and seeds."""

    protocol: Protocol
    network: Network
    dataset: Dataset
    seeds: RunSeeds


def build_network(protocol: Protocol, source: str, in_features: int, seeds: RunSeeds,
                  image_shape: tuple[int, int] | None = None) -> Network:
    """Resolve ``device.driver``, validate its settings and build the network."""
    driver = resolve_driver(protocol.device.driver, source)
    try:
        settings = driver.settings_model.model_validate(protocol.device.settings)
    except ValidationError as exc:
        raise validation_error(exc, source, "device.settings") from None
    try:
        activation = driver.activation_model.model_validate(protocol.network.activation)
    except ValidationError as exc:
        raise validation_error(exc, source, "network.activation") from None
    try:
        return driver.build(protocol.network, settings, activation, seeds.device, in_features, image_shape)
    except ValueError as exc:
        raise ConfigError(str(exc), source, "network") from None


def prepare(protocol: Protocol, source: str, data_dir: Path | None, network: Network | None = None) -> Prepared:
    """Load the data set and build the network for a protocol (or take the one given: a rig)."""
    try:
        dataset = load_dataset(protocol.data.set, data_dir)
    except DataError as exc:
        if exc.source is None:  # no file of its own to blame: name the protocol's field
            exc.source, exc.field = source, "data.set"
        raise
    if protocol.data.target == "scalar":
        if dataset.task != "classification":
            raise ConfigError(f"'{dataset.name}' is already a regression set", source, "data.target")
        dataset = dataset.as_scalar_regression()
    if protocol.data.resize is not None:
        if any(size < 1 for size in protocol.data.resize):
            raise ConfigError("sizes must be >= 1", source, "data.resize")
        dataset = resize(dataset, protocol.data.resize)
    seeds = RunSeeds.from_seed(protocol.seed)
    if network is None:
        network = build_network(protocol, source, dataset.features, seeds, dataset.image_shape)
    elif network.in_features != dataset.features:
        raise ConfigError(f"the data has {dataset.features} features but the rig takes {network.in_features} inputs",
                          source, "data")
    return Prepared(protocol, network, dataset, seeds)


def restore_parameters(network: Network, checkpoint: Checkpoint, store: RunStore, run_id: int, method: str) -> None:
    """Put an interrupted run's parameters back on its (freshly built) device.

    FF methods: layers before the checkpoint's layer get their final parameters, that layer
    the checkpoint's; later layers keep their initial ones. BP methods: the checkpoint holds
    every layer's parameters, concatenated.
    """
    layers = network.layers
    if method.startswith("bp"):
        parts = np.split(checkpoint.theta, np.cumsum([layer.n_params for layer in layers])[:-1])
        for layer, part in zip(layers, parts):
            layer.set_parameters(part)
        return
    for i in range(checkpoint.layer):
        layers[i].set_parameters(store.array(run_id, f"parameters/{i}"))
    layers[checkpoint.layer].set_parameters(checkpoint.theta)
