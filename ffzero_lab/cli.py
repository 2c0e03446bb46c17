"""The ``ffzero-lab`` command line.

Every command turns bad input into one line on stderr and exit code 2; a traceback means a bug.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from .cli_hardware import check_rig_setpoints, device_seed, is_instruments_file, open_rig
from .cli_hardware import register as register_hardware_commands
from .cli_instruments import instruments_app
from .datasets import resolve_data_dir
from .errors import UserError
from .contract import ParameterRangeError
from .instruments.errors import InstrumentError
from .network import Network
from .orchestrator import Orchestrator, Resume
from .progress import ProgressSink
from .protocol import Protocol, load_protocol, parse_protocol
from .runner import Prepared, prepare, restore_parameters
from .runstore import RunStore, StoreSink, resolve_runs_dir

app = typer.Typer(
    name="ffzero-lab",
    help="Hardware-in-the-loop FFzero training of physical neural networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
runs_app = typer.Typer(help="Recorded runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(instruments_app, name="instruments")
register_hardware_commands(app)

# Piped output (a log file, CI) gets a wide console rather than rich's 80-column default.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

RunsDir = Annotated[
    Optional[Path], typer.Option("--runs-dir", help="Run store folder [default: $FFZERO_RUNS_DIR or ./runs].")
]


def software_version() -> str:
    try:
        return version("ffzero-lab")
    except PackageNotFoundError:
        return "unknown"


def fail(exc: UserError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


ProtocolArg = Annotated[Path, typer.Argument(help="Protocol YAML file.")]
Sets = Annotated[
    Optional[list[str]], typer.Option("--set", help="Override a field, e.g. --set train.epochs=3 (repeatable).")
]
Json = Annotated[bool, typer.Option("--json", help="Print a JSON summary as the last line of stdout.")]
DataDir = Annotated[
    Optional[Path], typer.Option("--data-dir", help="Folder with IDX data sets [default: $FFZERO_DATA_DIR].")
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]
Publish = Annotated[
    Optional[str],
    typer.Option("--publish", help="Publish the run's documents on a ZMQ PUB socket, e.g. tcp://127.0.0.1:5577."),
]
WaitSubscribers = Annotated[
    int, typer.Option("--wait-subscribers", help="With --publish: wait (5 s at most) for this many monitors first.")
]


def _execute(proto: Protocol, prepared: Prepared, sink: StoreSink, as_json: bool, quiet: bool,
             publish: str | None, wait: int = 0, resume: Resume | None = None, run_uid: str | None = None) -> None:
    """Run the orchestrator with the store, progress and publisher sinks; print the summary."""
    sinks: list[Any] = [sink]
    publisher = None
    if publish:
        from .publisher import Publisher  # lazy: imports zmq

        try:
            publisher = Publisher.bind(publish, wait_for_subscribers=wait)
        except UserError as exc:
            sink.close()
            raise fail(exc) from None
        sinks.append(publisher)
    if not quiet:
        sinks.append(ProgressSink(err))
    orchestrator = Orchestrator(proto, prepared.network, prepared.dataset, sinks, prepared.seeds, resume, run_uid)
    try:
        result = orchestrator.run()
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]: the run is recorded as failed; `ffzero-lab resume` continues it")
        raise typer.Exit(code=130) from None
    except (UserError, ParameterRangeError, InstrumentError) as exc:
        err.print(f"[bold red]error:[/] {exc} (the run is recorded as failed; `ffzero-lab resume` continues it)",
                  highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None
    finally:
        sink.close()
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
    if as_json:
        summary: dict[str, Any] = {"run_id": run_id, "run_uid": result.run_uid, "metric": result.metric}
        if r2:
            summary.update(test_accuracy=None, layer_accuracy=None, r2=result.test_accuracy,
                           layer_r2=result.layer_accuracy)
        else:
            summary.update(test_accuracy=result.test_accuracy, layer_accuracy=result.layer_accuracy)
        summary.update(evaluations=result.evaluations, wall_s=result.wall_s)
        sys.stdout.write(json.dumps(summary) + "\n")


@app.command("dry-run")
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
        RunStore(folder).close()  # checks the store before any training
    except UserError as exc:
        raise fail(exc) from None
    sink = StoreSink(folder, "dry-run", text, str(protocol), software_version())
    _execute(proto, prepared, sink, as_json, quiet, publish, wait_subscribers)


@app.command("resume")
def resume(
    run: Annotated[str, typer.Argument(help="Run number or uid prefix.")],
    as_json: Json = False,
    data_dir: DataDir = None,
    runs_dir: RunsDir = None,
    quiet: Quiet = False,
    publish: Publish = None,
    wait_subscribers: WaitSubscribers = 0,
    rig: Annotated[Optional[str], typer.Option("--rig", help="For a run trained on a served rig: its address.")] = None,
    keys: Annotated[Optional[Path], typer.Option("--keys", help="With --rig: the client's key folder.")] = None,
    instruments: Annotated[Optional[Path], typer.Option("--instruments", help="For a run trained on a rig's instruments: its instruments.yaml.")] = None,
) -> None:
    """Continue an interrupted run from its last committed step, in its own run record."""
    folder = resolve_runs_dir(runs_dir)
    network: Network | None = None
    try:
        store = RunStore(folder)
        run_id = store.find(run)
        summary, row = store.summary(run_id), store.run_row(run_id)
        source = f"run {run_id}"
        if summary.status in ("complete", "running"):
            raise UserError(f"the run is {summary.status}; only an incomplete or failed run can be resumed", source)
        if row["kind"] == "run" and (rig is None) == (instruments is None):
            raise UserError("this run trained on a rig: give --rig ADDRESS (and --keys DIR) or --instruments FILE", source)
        proto = parse_protocol(json.loads(row["protocol_json"]), source)
        if rig is not None:
            from .remote import RemoteNetwork  # lazy: imports zmq

            network = RemoteNetwork(rig, keys)
        elif instruments is not None:
            network = open_rig(instruments, device_seed(proto))
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
    except (UserError, InstrumentError, ParameterRangeError) as exc:
        if network is not None:
            with _safe_on_exit(network):
                pass
            if instruments is not None:
                network.close()
        raise fail(exc) from None
    finally:
        if "store" in locals():
            store.close()
    sink = StoreSink(folder, row["kind"], row["protocol_yaml"], row["protocol_path"], software_version(),
                     resume_run=run_id)
    if network is None:
        _execute(proto, prepared, sink, as_json, quiet, publish, wait_subscribers, state, row["uid"])
        return
    try:
        with _safe_on_exit(network):
            _execute(proto, prepared, sink, as_json, quiet, publish, wait_subscribers, state, row["uid"])
    finally:
        if instruments is not None:
            network.close()


@contextmanager
def _safe_on_exit(network: Network) -> Iterator[None]:
    """On any exit, the rig goes to its safe state; a second Ctrl-C cannot skip that."""
    try:
        yield
    finally:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            network.safe_state()
        except Exception as exc:  # reported, never hidden: the operator must check the rig
            err.print(f"[bold red]error:[/] could not put the rig in its safe state: {exc}", highlight=False)
        finally:
            signal.signal(signal.SIGINT, previous)


@app.command("run")
def run(
    protocol: ProtocolArg,
    rig: Annotated[Optional[str], typer.Option("--rig", help="Train on a rig served by 'ffzero-lab serve' at ADDRESS.")] = None,
    instruments: Annotated[Optional[Path], typer.Option("--instruments", help="Train on the rig this instruments.yaml describes, through its drivers.")] = None,
    keys: Annotated[Optional[Path], typer.Option("--keys", help="With --rig: folder with client.key_secret and server.key.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="With --rig: seconds to wait for each answer.")] = 30.0,
    set_: Sets = None,
    as_json: Json = False,
    data_dir: DataDir = None,
    runs_dir: RunsDir = None,
    quiet: Quiet = False,
    publish: Publish = None,
    wait_subscribers: WaitSubscribers = 0,
) -> None:
    """Train a protocol in the lab: on a rig served by 'ffzero-lab serve' (--rig) or through instruments.yaml (--instruments).

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
        if instruments is not None:
            network = open_rig(instruments, device_seed(proto))
        else:
            from .remote import RemoteNetwork  # lazy: imports zmq

            network = RemoteNetwork(rig, keys, timeout)
    except (UserError, InstrumentError) as exc:
        raise fail(exc) from None
    try:
        with _safe_on_exit(network):
            try:
                prepared = prepare(proto, str(protocol), resolve_data_dir(data_dir), network)
                if instruments is not None:
                    check_rig_setpoints(network, instruments, proto, prepared, str(protocol))
            except UserError as exc:
                raise fail(exc) from None
            sink = StoreSink(folder, "run", text, str(protocol), software_version())
            _execute(proto, prepared, sink, as_json, quiet, publish, wait_subscribers)
    finally:
        if instruments is not None:
            network.close()


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


@app.command("serve")
def serve(
    config: Annotated[Path, typer.Argument(help="What to serve: a protocol file (its device is built and served) or an instruments.yaml (its rig).")],
    bind: Annotated[str, typer.Option("--bind", help="Address to serve on.")] = "tcp://127.0.0.1:5555",
    keys: Annotated[Optional[Path], typer.Option("--keys", help="Folder from 'ffzero-lab keys' (any bind but 127.0.0.1/::1).")] = None,
    lease: Annotated[float, typer.Option("--lease", help="Seconds of silence after which a client is taken as lost.")] = 10.0,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a field of the file (repeatable).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Serve a rig's layers over ZMQ to one trainer at a time, until Ctrl-C or SIGTERM."""
    from .remote import RigServer  # lazy: imports zmq

    hardware = is_instruments_file(config)
    network: Network | None = None
    try:
        if hardware:
            network = open_rig(config, 0)
            check_rig_setpoints(network, config)
            what = f"the rig of {config}"
            description = network.description
        else:
            proto, _ = load_protocol(config, set_ or [])
            prepared = prepare(proto, str(config), resolve_data_dir(data_dir))
            network = prepared.network
            what = proto.device.driver
            description = network.description or {"driver": proto.device.driver, "settings": proto.device.settings,
                                                   "seed": prepared.seeds.device, "file": str(config)}
        server = RigServer(network, bind, keys, lease, description=description)
    except (UserError, InstrumentError) as exc:
        if hardware and network is not None:
            network.close()
        raise fail(exc) from None
    signal.signal(signal.SIGTERM, _interrupt)
    err.print(f"serving {len(network)} layers of {what} on {bind}"
              f"{' with CurveZMQ' if keys else ''}; Ctrl-C stops", highlight=False)
    try:
        with _safe_on_exit(network):
            try:
                server.serve()
            except KeyboardInterrupt:
                pass
            finally:
                server.close()
    finally:
        if hardware:
            network.close()


@app.command("keys")
def keys_command(folder: Annotated[Path, typer.Argument(help="Folder for the key pairs.")]) -> None:
    """Make CurveZMQ key pairs for 'serve --keys' (server) and 'run --rig --keys' (client)."""
    from .remote import make_keys

    try:
        paths = make_keys(folder)
    except OSError as exc:
        raise fail(UserError(f"cannot write keys: {exc}", str(folder))) from None
    for what, path in paths.items():
        out.print(f"{what}: {path}", highlight=False)
    out.print("copy client.key_secret and server.key to the trainer's machine; keep the rest on the rig")


@app.command("monitor")
def monitor(
    address: Annotated[str, typer.Argument(help="Where a run publishes, e.g. tcp://127.0.0.1:5577.")],
    jsonl: Annotated[bool, typer.Option("--jsonl", help="Print every document as a JSON line, no dashboard.")] = False,
    exit_on_stop: Annotated[bool, typer.Option("--exit-on-stop", help="Exit after the run's stop document.")] = False,
    timeout: Annotated[
        Optional[float], typer.Option("--timeout", help="Exit after this many seconds without a document.")
    ] = None,
) -> None:
    """Watch a run live: per-layer loss and accuracy, evaluations/s, device, ETA."""
    from .monitor import watch  # lazy: imports zmq

    try:
        watch(address, sys.stdout if jsonl else None, exit_on_stop, timeout)
    except UserError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt:
        raise typer.Exit(code=0) from None


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


@runs_app.command("list")
def runs_list(
    runs_dir: RunsDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """List recorded runs."""
    try:
        store = RunStore(resolve_runs_dir(runs_dir))
    except UserError as exc:
        raise fail(exc) from None
    runs = store.list_runs()
    store.close()
    if as_json:
        sys.stdout.write(json.dumps({"runs": [r.to_json() for r in runs]}) + "\n")
        return
    table = Table(title=f"runs in {store.path}")
    for col in ("id", "uid", "name", "kind", "status", "started", "test acc.", "evaluations", "wall s"):
        table.add_column(col)
    for r in runs:
        table.add_row(str(r.id), r.uid[:8], r.name or "-", r.kind, r.status, _when(r.started_at),
                      f"{r.test_accuracy:.4f}" if r.test_accuracy is not None else "-",
                      f"{r.evaluations:,}" if r.evaluations else "-",
                      f"{r.wall_s:.1f}" if r.wall_s else "-")
    out.print(table)


@runs_app.command("show")
def runs_show(
    run: Annotated[str, typer.Argument(help="Run number or uid prefix.")],
    runs_dir: RunsDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Show one run: summary, protocol, per-epoch metrics and stored arrays."""
    try:
        store = RunStore(resolve_runs_dir(runs_dir))
        run_id = store.find(run)
    except UserError as exc:
        raise fail(exc) from None
    summary, epochs = store.summary(run_id), store.epochs(run_id)
    protocol, arrays = store.protocol(run_id), store.array_names(run_id)
    store.close()
    if as_json:
        doc = {**summary.to_json(), "protocol": protocol, "epochs": epochs, "arrays": arrays}
        sys.stdout.write(json.dumps(doc) + "\n")
        return
    out.print(f"[bold]run {summary.id}[/] {summary.uid}  {summary.kind}  status [bold]{summary.status}[/]")
    out.print(f"started {_when(summary.started_at)}  stopped {_when(summary.stopped_at)}")
    if summary.test_accuracy is not None:
        out.print(f"test accuracy {summary.test_accuracy:.4f}  per layer {summary.layer_accuracy}")
    table = Table(title="epochs")
    for col in ("layer", "epoch", "loss", "test acc.", "eval/s"):
        table.add_column(col, justify="right")
    for e in epochs:
        table.add_row(str(e["layer"]), str(e["epoch"]), f"{e['loss']:.4f}",
                      f"{e['test_accuracy']:.4f}" if e["test_accuracy"] is not None else "-",
                      f"{e['evaluations_per_s']:,.0f}" if e["evaluations_per_s"] else "-")
    out.print(table)
    out.print("arrays: " + ", ".join(arrays))


from .cli_runs import register as register_runs_commands  # noqa: E402  (cli_runs imports this module)
register_runs_commands(app, runs_app)
from .cli_sweep import register as register_sweep_command  # noqa: E402  (cli_sweep imports this module)
register_sweep_command(app)


def main() -> None:
    """Console-script entry point."""
    app()
