"""``serve``, ``keys`` and ``monitor``: a rig on the network, its keys, and watching a run live."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from ffzero_lab.cli.common import DataDir, err, fail, out, report
from ffzero_lab.config.protocol import load_protocol
from ffzero_lab.core.errors import UserError
from ffzero_lab.data.datasets import resolve_data_dir
from ffzero_lab.live.web import DEFAULT_WEB
from ffzero_lab.rig.errors import InstrumentError
from ffzero_lab.run.prepare import prepare
from ffzero_lab.run.session import check_rig_setpoints, is_instruments_file, open_network


def serve(
    config: Annotated[
        Path,
        typer.Argument(
            help="What to serve: a protocol file (its device is built and served) or an instruments.yaml (its rig)."
        ),
    ],
    bind: Annotated[str, typer.Option("--bind", help="Address to serve on.")] = "tcp://127.0.0.1:5555",
    keys: Annotated[
        Optional[Path], typer.Option("--keys", help="Folder from 'ffzero-lab keys' (any bind but 127.0.0.0/8, [::1], ipc://).")
    ] = None,
    lease: Annotated[
        float, typer.Option("--lease", help="Seconds of silence after which a client is taken as lost.")
    ] = 10.0,
    set_: Annotated[
        Optional[list[str]], typer.Option("--set", help="Override a field of the file (repeatable).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Serve a rig's layers over ZMQ to one trainer at a time, until Ctrl-C, SIGTERM or SIGHUP."""
    from ffzero_lab.live.remote import RigServer, parse_bind  # lazy: imports zmq

    hardware = is_instruments_file(config)
    try:
        parse_bind(bind)  # a bad address is refused before any device is built
        if hardware:
            lab = open_network(instruments=config, seed=0, report=report)
        else:
            proto, _ = load_protocol(config, set_ or [])
            prepared = prepare(proto, str(config), resolve_data_dir(data_dir))
            lab = open_network(network=prepared.network, report=report)
        with lab as network:
            if hardware:
                check_rig_setpoints(network, config)
                what, description = f"the rig of {config}", network.description
            else:
                what = proto.device.driver
                description = network.description or {"driver": proto.device.driver,
                                                       "settings": proto.device.settings,
                                                       "seed": prepared.seeds.device, "file": str(config)}
            server = RigServer(network, bind, keys, lease, description=description)
            err.print(escape(f"serving {len(network)} layers of {what} on {bind}"
                             f"{' with CurveZMQ' if keys else ''}; Ctrl-C stops"), highlight=False)
            try:
                server.serve()
            except KeyboardInterrupt:
                pass
            finally:
                server.close()
    except (UserError, InstrumentError) as exc:
        raise fail(exc) from None


def keys_command(folder: Annotated[Path, typer.Argument(help="Folder for the key pairs.")]) -> None:
    """Make CurveZMQ key pairs for 'serve --keys' (server) and 'run --rig --keys' (client)."""
    from ffzero_lab.live.remote import make_keys

    try:
        paths = make_keys(folder)
    except OSError as exc:
        raise fail(UserError(f"cannot write keys: {exc}", str(folder))) from None
    for what, path in paths.items():
        out.print(f"{what}: {path}", highlight=False)
    out.print("copy client.key_secret and server.key to the trainer's machine; keep the rest on the rig")


def monitor(
    address: Annotated[str, typer.Argument(help="Where a run publishes, e.g. tcp://127.0.0.1:5577.")],
    jsonl: Annotated[bool, typer.Option("--jsonl", help="Print every document as a JSON line, no dashboard.")] = False,
    exit_on_stop: Annotated[bool, typer.Option("--exit-on-stop", help="Exit after the run's stop document.")] = False,
    timeout: Annotated[
        Optional[float], typer.Option("--timeout", help="Exit after this many seconds without a document.")
    ] = None,
    web_address: Annotated[
        Optional[str],
        typer.Argument(metavar="HOST:PORT", show_default=False,
                       help=f"With --web: where the page listens (default {DEFAULT_WEB}; PORT 0: any free port)."),
    ] = None,
    web: Annotated[bool, typer.Option("--web", help="Also serve a page of live curves in a browser.")] = False,
    web_public: Annotated[
        bool, typer.Option("--web-public", help="Let --web listen on an address that is not loopback (no login!).")
    ] = False,
) -> None:
    """Watch a run live: per-layer loss and accuracy, evaluations/s, device, ETA; --web: curves in a browser."""
    from ffzero_lab.live.monitor import watch  # lazy: imports zmq

    server = None
    try:
        if web_address is not None and not web:
            raise UserError(f"{web_address!r} after ADDRESS is where --web listens: add --web", "monitor")
        if web:
            from ffzero_lab.live.web import WebMonitor, parse_web_address

            server = WebMonitor(*parse_web_address(web_address or DEFAULT_WEB, web_public)).start()
            err.print(f"monitor: live page at {server.url}", highlight=False, soft_wrap=True)
        watch(address, sys.stdout if jsonl else None, exit_on_stop, timeout, web=server)
    except UserError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt:
        raise typer.Exit(code=0) from None
    finally:
        if server is not None:
            server.stop()


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``keys`` and ``monitor`` to ``app``."""
    app.command("serve")(serve)
    app.command("keys")(keys_command)
    app.command("monitor")(monitor)
