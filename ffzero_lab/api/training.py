"""Training from Python: :func:`train` and what it returns, :class:`TrainResult`.

The same path as the command line (``dry-run``, ``run --instruments``, ``run --rig``): the
protocol is validated, the data loaded and the network opened by
:func:`~ffzero_lab.run.session.open_network`, which puts it in its safe state and closes it on
every way out (return, error, ``KeyboardInterrupt``: the notebook's stop button); the
orchestrator trains and its documents go to the sinks chosen here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml
from numpy.typing import NDArray

from ffzero_lab.config.protocol import Overrides, Protocol
from ffzero_lab.core.errors import UserError
from ffzero_lab.core.provenance import software_commit
from ffzero_lab.data.datasets import resolve_data_dir
from ffzero_lab.run.orchestrator import Orchestrator, Sink
from ffzero_lab.run.prepare import Prepared, prepare
from ffzero_lab.run.session import check_rig_setpoints, device_seed, open_network
from ffzero_lab.store.export import EPOCH_COLUMNS
from ffzero_lab.store.runstore import RunStore, StoreSink, resolve_runs_dir

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        run_uid: the run's uuid (hex).
        run_id: its number in the run store, or None when it was not recorded (``record=False``).
        runs_dir: the run store's folder, or None when not recorded.
        kind: ``dry-run`` (the protocol's own device) or ``run`` (a rig).
        protocol: the protocol as trained (overrides applied).
        metric: ``accuracy`` (classification) or ``r2`` (regression): the unit of the scores.
        test_accuracy: the network's test score (voted, FF methods; the readout's, BP).
        layer_accuracy: ``(L,)`` each layer's own test score (BP: None but for the last layer).
        evaluations: forward evaluations of the device (one input under one setting of one layer).
        wall_s: wall time of training and evaluation, s.
        parameters: per layer ``(n_l,)`` trained parameters (rad for a mesh's phases).
        prototypes: per layer ``(C, ports)`` unit prototypes (``(C, d)`` for a channel-wise layer).
        epochs: one row per epoch and layer (``layer``, ``epoch``, ``loss``, ``test_accuracy``,
            ``evaluations``, ``evaluations_per_s``, ``time``), from the run's documents.
    """

    run_uid: str
    run_id: int | None
    runs_dir: Path | None
    kind: str
    protocol: Protocol = field(repr=False)
    metric: str
    test_accuracy: float
    layer_accuracy: list[float | None]
    evaluations: int
    wall_s: float
    parameters: list[NDArray[np.float64]] = field(repr=False)
    prototypes: list[NDArray[np.float64]] = field(repr=False)
    epochs: pd.DataFrame = field(repr=False)

    def dataset(self) -> xr.Dataset:
        """The recorded run as an :class:`xarray.Dataset` (:meth:`ffzero_lab.api.Runs.dataset`).

        Raises:
            UserError: the run was not recorded.
        """
        from ffzero_lab.api.runs import open_runs

        if self.runs_dir is None or self.run_id is None:
            raise UserError("this run was not recorded (record=False): nothing to read back", self.run_uid[:8])
        with open_runs(self.runs_dir) as runs:
            return runs.dataset(self.run_id)


class _Epochs:
    """A sink keeping the run's epoch documents (for :attr:`TrainResult.epochs`)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if name == "epoch":
            self.rows.append({k: doc.get(k) for k in EPOCH_COLUMNS})


def _protocol(protocol: Protocol | str | Path, overrides: Overrides | None) -> Protocol:
    if isinstance(protocol, Protocol):
        return protocol.with_overrides(overrides) if overrides else protocol
    if isinstance(protocol, str | Path):
        return Protocol.load(protocol, overrides)
    raise TypeError(f"train takes a Protocol or a protocol file's path, not {type(protocol).__name__}")


def train(
    protocol: Protocol | str | Path,
    *,
    overrides: Overrides | None = None,
    instruments: str | Path | None = None,
    rig: str | None = None,
    keys: str | Path | None = None,
    timeout_s: float = 30.0,
    runs_dir: str | Path | None = None,
    record: bool = True,
    publish: str | None = None,
    wait_subscribers: int = 0,
    sinks: Sequence[Sink] = (),
    progress: bool = True,
    data_dir: str | Path | None = None,
) -> TrainResult:
    """Train a protocol: a dry run on its own (simulated) device, or on a rig.

    Args:
        protocol: a :class:`~ffzero_lab.config.protocol.Protocol` (:func:`load_protocol`) or the
            path of a protocol file.
        overrides: fields to change first, ``{"train.epochs": 3}`` or ``["train.epochs=3"]``.
        instruments: train on the rig this ``instruments.yaml`` describes, through its drivers;
            every set-point the run can reach is checked against the limits and the power budget
            before anything is written.
        rig: train on a rig served by ``ffzero-lab serve`` at this address (``tcp://HOST:PORT``);
            ``keys`` the CurveZMQ client folder, ``timeout_s`` seconds to wait for each answer.
        runs_dir: the run store's folder (created if missing); default ``$FFZERO_RUNS_DIR`` or
            ``./runs``, as on the command line.
        record: False: keep nothing in a run store (``run_id`` is then None).
        publish: publish the run's documents live on this ZMQ address (``ffzero-lab monitor``).
        wait_subscribers: with ``publish``: wait (5 s at most) for this many subscribers first.
        sinks: more receivers of the run's documents, each called as ``sink(name, document)``
            (docs/architecture.md, "The orchestrator and its documents"); a sink that raises
            stops the run, which is then recorded as failed.
        progress: show a progress bar on stderr.
        data_dir: folder with IDX data sets; default ``$FFZERO_DATA_DIR``.

    On a rig (``instruments`` or ``rig``) the protocol's ``device`` section is ignored: the rig
    decides what the layers are. The network is put in its safe state and closed on every exit.

    Raises:
        UserError: bad input (protocol, data set, paths, an address that cannot be published
            on), or a run store that cannot be written (:class:`~ffzero_lab.store.runstore.StoreError`,
            raised before training when it is already so).
        InstrumentError: an instrument fails (the rig is left safe).
        KeyboardInterrupt: the run was stopped (recorded as failed; ``ffzero-lab resume`` continues it).
    """
    if instruments is not None and rig is not None:
        raise UserError("train on one rig: give instruments= or rig=, not both", "train")
    proto = _protocol(protocol, overrides)
    folder = resolve_runs_dir(runs_dir) if record else None
    if folder is not None:
        RunStore(folder).close()  # creates the store, or says why it cannot, before anything is opened
    data = resolve_data_dir(Path(data_dir) if data_dir is not None else None)
    if instruments is None and rig is None:
        prepared = prepare(proto, proto.source, data)
        with open_network(network=prepared.network):
            return _run(proto, prepared, "dry-run", folder, publish, wait_subscribers, sinks, progress)
    with open_network(instruments=Path(instruments) if instruments is not None else None, rig=rig,
                      keys=Path(keys) if keys is not None else None, timeout_s=timeout_s,
                      seed=device_seed(proto)) as network:
        prepared = prepare(proto, proto.source, data, network)
        if instruments is not None:
            check_rig_setpoints(network, Path(instruments), proto, prepared, proto.source)
        return _run(proto, prepared, "run", folder, publish, wait_subscribers, sinks, progress)


def _run(proto: Protocol, prepared: Prepared, kind: str, folder: Path | None, publish: str | None,
         wait_subscribers: int, sinks: Sequence[Sink], progress: bool) -> TrainResult:
    """Train ``prepared`` with the chosen sinks; every sink made here is closed on the way out."""
    from ffzero_lab import __version__
    from ffzero_lab.api.frames import frame

    epochs = _Epochs()
    chosen: list[Callable[[str, dict[str, Any]], None]] = [epochs]
    closers: list[Callable[[], None]] = []
    store: StoreSink | None = None
    try:
        if folder is not None:
            text = proto.text if proto.text is not None else yaml.safe_dump(proto.model_dump(mode="json"),
                                                                            sort_keys=False)
            store = StoreSink(folder, kind, text, proto.source if proto.text is not None else None, __version__,
                              overrides=list(proto.overrides), git_commit=software_commit())
            chosen.append(store)
        if publish:
            from ffzero_lab.live.publisher import Publisher  # lazy: imports zmq

            publisher = Publisher.bind(publish, wait_for_subscribers=wait_subscribers)
            closers.append(publisher.close)
            chosen.append(publisher)
        chosen.extend(sinks)
        if progress:
            from rich.console import Console

            from ffzero_lab.live.progress import ProgressSink

            chosen.append(ProgressSink(Console(stderr=True, force_jupyter=False)))
        orchestrator = Orchestrator(proto, prepared.network, prepared.dataset, chosen, prepared.seeds)
        result = orchestrator.run()
    except BaseException:
        _close(closers, store, failing=True)
        raise
    _close(closers, store, failing=False)
    return TrainResult(
        run_uid=result.run_uid, run_id=store.run_id if store is not None else None, runs_dir=folder, kind=kind,
        protocol=proto, metric=result.metric, test_accuracy=result.test_accuracy,
        layer_accuracy=result.layer_accuracy, evaluations=result.evaluations, wall_s=result.wall_s,
        parameters=result.parameters, prototypes=result.prototypes,
        epochs=frame(epochs.rows, EPOCH_COLUMNS),
    )


def _close(closers: Sequence[Callable[[], None]], store: StoreSink | None, failing: bool) -> None:
    """Close the publisher and the store sink (which writes what is still queued).

    Raises:
        StoreError: the store's last documents could not be written, unless the run is failing
            already (``failing``): its own error is the one to see.
    """
    for close in closers:
        close()
    if store is not None:
        try:
            store.close()
        except UserError:
            if not failing:
                raise
