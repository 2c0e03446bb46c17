"""``dry-run``, ``run`` and ``resume``: training a protocol, on its simulated device or in the lab.

The network comes from :func:`ffzero_lab.run.session.open_network`, which leaves a rig in its
safe state and closed on every exit; this module only reads options and prints.
"""

from __future__ import annotations

import json
import sys
from contextlib import AbstractContextManager, ExitStack, nullcontext
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ffzero_lab.cli.common import (
    DataDir,
    Json,
    Keys,
    ProtocolArg,
    Publish,
    Quiet,
    RunRef,
    RunsDir,
    Sets,
    WaitSubscribers,
    err,
    fail,
    interrupted,
    out,
    report,
    software_commit,
    software_version,
)
from ffzero_lab.config.protocol import Protocol, load_protocol, parse_protocol
from ffzero_lab.core.contract import ParameterRangeError
from ffzero_lab.core.errors import UserError
from ffzero_lab.core.network import Network
from ffzero_lab.data.datasets import resolve_data_dir
from ffzero_lab.live.progress import progress_sink
from ffzero_lab.rig.errors import InstrumentError
from ffzero_lab.run.orchestrator import Orchestrator, Resume
from ffzero_lab.run.prepare import Prepared, prepare, restore_parameters
from ffzero_lab.run.session import check_rig_setpoints, device_seed, open_network
from ffzero_lab.store.lock import RunLock
from ffzero_lab.store.runstore import RunStore, StoreError, StoreSink, resolve_runs_dir


def _execute(proto: Protocol, prepared: Prepared, sink: StoreSink, as_json: bool, quiet: bool,
             publish: str | None, wait: int = 0, resume: Resume | None = None, run_uid: str | None = None) -> None:
    """Run the orchestrator with the store, progress and publisher sinks; print the summary."""
    sinks: list[Any] = [sink]
    publisher = None
    if publish:
        from ffzero_lab.live.publisher import Publisher  # lazy: imports zmq

        try:
            publisher = Publisher.bind(publish, wait_for_subscribers=wait)
        except UserError as exc:
            sink.close()
            raise fail(exc) from None
        sinks.append(publisher)
    if not quiet:
        sinks.append(progress_sink(err))
    try:
        orchestrator = Orchestrator(proto, prepared.network, prepared.dataset, sinks, prepared.seeds, resume, run_uid)
    except UserError as exc:  # refused before anything trained or was recorded
        sink.close()
        if publisher is not None:
            publisher.close()
        raise fail(exc) from None
    try:
        result = orchestrator.run()
    except KeyboardInterrupt as exc:
        raise interrupted(exc, "the run is recorded as failed; `ffzero-lab resume` continues it") from None
    except StoreError as exc:
        raise fail(exc) from None
    except (UserError, ParameterRangeError, InstrumentError) as exc:
        err.print(f"[bold red]error:[/] {exc} (the run is recorded as failed; `ffzero-lab resume` continues it)",
                  highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    finally:
        try:
            sink.close()
        except StoreError as exc:  # the last documents could not be written
            raise fail(exc) from None
        finally:
            if publisher is not None:
                publisher.close()
    run_id = sink.run_id
    r2 = result.metric == "r2"
    table = Table(title="test R^2" if r2 else "test accuracy", title_justify="left")
    table.add_column("layer", justify="right")
    table.add_column("R^2" if r2 else "accuracy", justify="right")
    for i, acc in enumerate(result.layer_accuracy):
        table.add_row(str(i), "-" if acc is None else f"{acc:.4f}")
    final = "readout" if proto.method.startswith("bp") else ("last layer" if r2 else "voted")
    table.add_row(f"[bold]{final}[/]", f"[bold]{result.test_accuracy:.4f}[/]")
    console = err if as_json else out
    device = (prepared.network.description or {}).get("rig") or proto.device.driver
    console.print(f"[bold]run {run_id}[/] ({result.run_uid[:8]}) {proto.method} on {device}: "
                  f"{result.evaluations:,} device evaluations in {result.wall_s:.1f} s", highlight=False)
    console.print(table)
    bench_s = prepared.network.instrument_time_s()
    if bench_s is not None:  # the lab-time ledger: on an emulated bench, what the real one would take
        console.print(f"instrument time {bench_s:.3f} s of {result.wall_s:.1f} s wall (settles and clocked samples: "
                      "what the bench itself spent)", highlight=False)
    if as_json:
        summary: dict[str, Any] = {"run_id": run_id, "run_uid": result.run_uid, "metric": result.metric}
        if r2:
            summary.update(test_accuracy=None, layer_accuracy=None, r2=result.test_accuracy,
                           layer_r2=result.layer_accuracy)
        else:
            summary.update(test_accuracy=result.test_accuracy, layer_accuracy=result.layer_accuracy)
        summary.update(evaluations=result.evaluations, wall_s=result.wall_s, instrument_s=bench_s)
        sys.stdout.write(json.dumps(summary) + "\n")


def dry_run(
    protocol: ProtocolArg,
    set_: Sets = None,
    as_json: Json = False,
    data_dir: DataDir = None,
    runs_dir: RunsDir = None,
    quiet: Quiet = False,
    publish: Publish = None,
    wait_subscribers: WaitSubscribers = 0,
) -> None:
    """Train a protocol on its simulated device (no instrument is touched)."""
    try:
        proto, text = load_protocol(protocol, set_ or [])
        prepared = prepare(proto, str(protocol), resolve_data_dir(data_dir))
        folder = resolve_runs_dir(runs_dir)
        RunStore(folder).close()  # creates the store if need be
        sink = StoreSink(folder, "dry-run", text, str(protocol), software_version(), overrides=set_,
                         git_commit=software_commit())  # fails here if unwritable
    except UserError as exc:
        raise fail(exc) from None
    _execute(proto, prepared, sink, as_json, quiet, publish, wait_subscribers)


def _lab(instruments: Path | None, rig: str | None, keys: Path | None, timeout_s: float,
         seed: int) -> AbstractContextManager[Network | None]:
    """The lab network the options name (left safe and closed on exit), or None for the protocol's device."""
    if instruments is None and rig is None:
        return nullcontext(None)
    return open_network(instruments=instruments, rig=rig, keys=keys, timeout_s=timeout_s, seed=seed, report=report)


def resume(
    run: RunRef,
    as_json: Json = False,
    data_dir: DataDir = None,
    runs_dir: RunsDir = None,
    quiet: Quiet = False,
    publish: Publish = None,
    wait_subscribers: WaitSubscribers = 0,
    rig: Annotated[Optional[str], typer.Option("--rig", help="For a run trained on a served rig: its address.")] = None,
    keys: Keys = None,
    instruments: Annotated[
        Optional[Path],
        typer.Option("--instruments", help="For a run trained on a rig's instruments: its instruments.yaml."),
    ] = None,
) -> None:
    """Continue an interrupted run from its last committed step, in its own run record."""
    folder = resolve_runs_dir(runs_dir)
    try:
        store = RunStore(folder)
    except UserError as exc:
        raise fail(exc) from None
    with ExitStack() as stack:
        try:
            run_id = store.find(run)
            stack.enter_context(RunLock(folder, run_id))  # one owner: a second resume is refused
            summary, row = store.summary(run_id), store.run_row(run_id)
            source = f"run {run_id}"
            if summary.status in ("complete", "running"):
                raise UserError(f"the run is {summary.status}; only an incomplete or failed run can be resumed", source)
            if row["kind"] == "run" and (rig is None) == (instruments is None):
                raise UserError(
                    "this run trained on a rig: give --rig ADDRESS (and --keys DIR) or --instruments FILE", source
                )
            proto = parse_protocol(json.loads(row["protocol_json"]), source)
            with _lab(instruments, rig, keys, 30.0, device_seed(proto)) as network:
                prepared = prepare(proto, source, resolve_data_dir(data_dir), network)
                if instruments is not None:
                    check_rig_setpoints(network, instruments, proto, prepared, source)
                checkpoint = store.checkpoint(run_id)
                state = None
                if checkpoint is not None:
                    restore_parameters(prepared.network, checkpoint, store, run_id, proto.method)
                    losses = [s["loss"] for s in store.steps(run_id)
                              if s["layer"] == checkpoint.layer and s["epoch"] == checkpoint.epoch
                              and s["step"] <= checkpoint.step]
                    state = Resume(checkpoint, losses)
                store.close()
                sink = StoreSink(folder, row["kind"], row["protocol_yaml"], row["protocol_path"], software_version(),
                                 resume_run=run_id)
                _execute(proto, prepared, sink, as_json, quiet, publish, wait_subscribers, state, row["uid"])
        except (UserError, InstrumentError, ParameterRangeError) as exc:
            raise fail(exc) from None
        except KeyboardInterrupt as exc:
            raise interrupted(exc, "before training; nothing was recorded, the rig is safe") from None
        finally:
            store.close()


def run(
    protocol: ProtocolArg,
    rig: Annotated[
        Optional[str], typer.Option("--rig", help="Train on a rig served by 'ffzero-lab serve' at ADDRESS.")
    ] = None,
    instruments: Annotated[
        Optional[Path],
        typer.Option("--instruments", help="Train on the rig this instruments.yaml describes, through its drivers."),
    ] = None,
    keys: Keys = None,
    timeout: Annotated[float, typer.Option("--timeout", help="With --rig: seconds to wait for each answer.")] = 30.0,
    set_: Sets = None,
    as_json: Json = False,
    data_dir: DataDir = None,
    runs_dir: RunsDir = None,
    quiet: Quiet = False,
    publish: Publish = None,
    wait_subscribers: WaitSubscribers = 0,
) -> None:
    """Train a protocol in the lab: on a rig served by 'ffzero-lab serve' (--rig) or through
    instruments.yaml (--instruments).

    The protocol's device section is ignored: the rig decides what the layers are. With
    --instruments every set-point the run can reach is checked against the limits and the power
    budget before anything is written. The rig is left in its safe state on any exit.
    """
    if (rig is None) == (instruments is None):
        raise fail(UserError("say where the instruments are: --rig ADDRESS or --instruments FILE (one of them)", "run"))
    try:
        proto, text = load_protocol(protocol, set_ or [])
        folder = resolve_runs_dir(runs_dir)
        RunStore(folder).close()
        with _lab(instruments, rig, keys, timeout, device_seed(proto)) as network:
            prepared = prepare(proto, str(protocol), resolve_data_dir(data_dir), network)
            if instruments is not None:
                check_rig_setpoints(network, instruments, proto, prepared, str(protocol))
            sink = StoreSink(folder, "run", text, str(protocol), software_version(), overrides=set_,
                             git_commit=software_commit())
            _execute(proto, prepared, sink, as_json, quiet, publish, wait_subscribers)
    except (UserError, InstrumentError) as exc:
        raise fail(exc) from None
    except KeyboardInterrupt as exc:
        raise interrupted(exc, "before training; nothing was recorded, the rig is safe") from None


def register(app: typer.Typer) -> None:
    """Add ``dry-run``, ``run`` and ``resume`` to ``app``."""
    app.command("dry-run")(dry_run)
    app.command("run")(run)
    app.command("resume")(resume)
