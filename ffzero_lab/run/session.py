"""Opening the network a run trains on, and its lifecycle in one place.

A run trains on one of three things: the protocol's own (simulated or digital) device, a rig
described by an ``instruments.yaml`` (opened here through its drivers), or a rig served by
``ffzero-lab serve`` (a :class:`~ffzero_lab.live.remote.RemoteNetwork`). Whatever it is,
:func:`open_network` yields it and, on every way out of the ``with`` block (return, error,
Ctrl-C, SIGTERM, SIGHUP: the block runs :func:`~ffzero_lab.core.signals.interruptible`), puts it
in its safe state and then closes it, with those signals held off meanwhile so that a second one
cannot skip the safe state.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from ffzero_lab.config.protocol import Protocol
from ffzero_lab.core.errors import ConfigError
from ffzero_lab.core.network import Network
from ffzero_lab.core.signals import deferred, interruptible
from ffzero_lab.ffzero.encoding import encode
from ffzero_lab.run.orchestrator import RunSeeds

if TYPE_CHECKING:
    from ffzero_lab.run.prepare import Prepared


def is_instruments_file(path: Path) -> bool:
    """Whether ``path`` looks like an ``instruments.yaml`` (it has an ``instruments`` section)
    rather than a protocol; an unreadable file is left to the protocol loader to report."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(document, dict) and "instruments" in document and "power_budget_W" in document


def open_rig(instruments: Path, seed: int) -> Any:
    """Read the instruments and calibration files, open the instruments (reads only) and build
    the rig's network. Initial phases come from ``seed``.

    Raises:
        UserError: either file is wrong.
        InstrumentError: an instrument cannot be opened or read.
    """
    from ffzero_lab.rig import build_rig_network, load_specs  # lazy: opens pyvisa

    rig, specs = load_specs(instruments)
    return build_rig_network(rig, specs, seed, str(instruments))


def check_rig_setpoints(network: Any, instruments: Path, protocol: Protocol | None = None,
                        prepared: Prepared | None = None, protocol_source: str = "protocol") -> None:
    """Check every set-point the run can reach (the protocol's own inputs for the first mesh when
    given, else any input) against the limits and the power budget, before anything is written.

    Raises:
        ConfigError: naming the channel, or the protocol's encoding when its inputs are not
            amplitudes in [0, 1].
    """
    from ffzero_lab.rig import check_setpoints

    inputs = None
    if protocol is not None and prepared is not None:
        data = protocol.data
        inputs = np.concatenate([encode(prepared.dataset.x_train[: data.train_limit], data.encoding),
                                 encode(prepared.dataset.x_test[: data.test_limit], data.encoding)])
        if np.iscomplexobj(inputs) or inputs.min(initial=0.0) < 0 or inputs.max(initial=0.0) > 1 + 1e-9:
            raise ConfigError("the input modulators set amplitudes in [0, 1]; this encoding gives "
                              f"values in [{inputs.min():.3g}, {inputs.max():.3g}]", protocol_source, "data.encoding")
    check_setpoints(network.config, network.specs, str(instruments), inputs)


def device_seed(protocol: Protocol) -> int:
    """The seed a protocol gives its device (the rig's initial phases)."""
    return RunSeeds.from_seed(protocol.seed).device


def _report(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")


def shut_down(network: Network, report: Callable[[str], None] = _report) -> None:
    """Safe state, then close: every heater to its safe value, instruments and links released.

    SIGINT, SIGTERM and SIGHUP are held off until both are done (:func:`~ffzero_lab.core.signals.deferred`).
    A failure is reported through ``report`` (never hidden: the operator must check the rig) and
    does not stop the close.
    """
    with deferred():
        try:
            network.safe_state()
        except Exception as exc:  # reported, never hidden
            report(f"could not put the rig in its safe state: {exc}")
        try:
            network.close()
        except Exception as exc:
            report(f"could not close the rig: {exc}")


@contextmanager
def open_network(
    *,
    instruments: Path | None = None,
    rig: str | None = None,
    keys: Path | None = None,
    timeout_s: float = 30.0,
    seed: int = 0,
    network: Network | None = None,
    report: Callable[[str], None] = _report,
) -> Iterator[Network]:
    """The network to train on, left safe and closed on every exit.

    Exactly one of: ``instruments`` (an instruments.yaml: its rig, opened through its drivers,
    initial phases from ``seed``), ``rig`` (the address of ``ffzero-lab serve``, with the client
    ``keys`` folder and ``timeout_s`` seconds per answer) or ``network`` (one built already, e.g.
    a simulated device from :func:`~ffzero_lab.run.prepare.prepare`).

    Raises:
        UserError, InstrumentError: the network cannot be opened (nothing is left open).
    """
    if sum(x is not None for x in (instruments, rig, network)) != 1:
        raise ValueError("open_network takes exactly one of instruments=, rig= and network=")
    with interruptible():
        if instruments is not None:
            network = open_rig(instruments, seed)
        elif rig is not None:
            from ffzero_lab.live.remote import RemoteNetwork  # lazy: imports zmq

            network = RemoteNetwork(rig, keys, timeout_s)
        assert network is not None
        try:
            yield network
        finally:
            shut_down(network, report)
