"""``ffzero-lab instruments``: look at the rig described by ``instruments.yaml``.

* ``check``: open every instrument, read who it is and how many channels it has, and compare
  the file's limits with the instrument's own. Nothing is written to any instrument.
* ``schema``: the file's JSON schema, for completion in an editor.
* ``emulate``: serve an emulated rig's instruments on 127.0.0.1 until interrupted.
* ``emulated-rig``: write the files of an emulated rig of any size (e.g. two 64-mode meshes).

Bad input or an instrument that does not answer is one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Optional

import pyvisa
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ffzero_lab.cli.common import command_group
from ffzero_lab.core.errors import ConfigError, UserError
from ffzero_lab.rig.config import RigConfig
from ffzero_lab.rig.connect import open_instrument, resource_manager
from ffzero_lab.rig.driver import import_object, limit_problems
from ffzero_lab.rig.errors import InstrumentError
from ffzero_lab.rig.loader import load_rig, rig_schema

instruments_app = command_group(help="The rig's instruments (instruments.yaml).", no_args_is_help=True)

out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

InstrumentsFile = Annotated[
    Path, typer.Option("--instruments", "-i", metavar="FILE", help="The rig's instruments file.")
]


def _fail(message: object) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


@instruments_app.command("check")
def check(instruments: InstrumentsFile = Path("instruments.yaml")) -> None:
    """Open every instrument, read its identity and channels, compare the file's limits. Writes nothing."""
    source = str(instruments)
    try:
        rig = load_rig(instruments)
        rm = resource_manager(rig, source)
    except UserError as exc:
        raise _fail(exc) from None
    table = Table(title=f"instruments in {source}", title_justify="left")
    for column in ("instrument", "resource", "identity", "channels", "status"):
        table.add_column(column)
    failures: list[str] = []
    try:
        for name in rig.instruments:
            row, problems = _check_one(rig, name, rm, source)
            table.add_row(*row)
            failures += [f"{source}: instruments.{name}: {p}" for p in problems]
    finally:
        rm.close()
    out.print(table)
    if rig.calibration is not None:
        state = "found" if rig.calibration.exists() else "[yellow]missing[/]"
        out.print(f"calibration {rig.calibration}: {state}", highlight=False)
    for line in failures:
        err.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True)
    if failures:
        raise typer.Exit(code=2)


def _check_one(rig: RigConfig, name: str, rm: pyvisa.ResourceManager, source: str) -> tuple[list[str], list[str]]:
    """One table row and the problems of instrument ``name`` (an unanswered query is one)."""
    inst = rig.instruments[name]
    try:
        driver = open_instrument(rig, name, rm, source)
        try:
            identity = driver.identify()
        finally:
            driver.close()
    except InstrumentError as exc:
        sent = f" (command {exc.command!r})" if exc.command else ""
        return [name, inst.resource, "-", "-", "[red]no answer[/]"], [exc.message + sent]
    used = inst.channels.count if inst.channels is not None else len(rig.ports_used(name))
    problems = limit_problems(name, inst, identity, rig.ports_used(name))
    status = "[green]ok[/]" if not problems else f"[red]{len(problems)} problem{'s' if len(problems) > 1 else ''}[/]"
    return [name, inst.resource, identity.identity, f"{used} of {identity.channels}", status], problems


@instruments_app.command("schema")
def schema(
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Print the JSON schema of instruments.yaml (for yaml-language-server and other editors)."""
    text = json.dumps(rig_schema(), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


@instruments_app.command("emulate")
def emulate(
    rig_file: Annotated[Path, typer.Argument(help="Emulated rig file (names its emulator and instruments file).")],
    any_port: Annotated[bool, typer.Option("--any-port", help="Serve on free ports instead of the file's.")] = False,
) -> None:
    """Serve an emulated rig's instruments on 127.0.0.1 TCP sockets until Ctrl-C (or SIGTERM)."""
    source = str(rig_file)
    try:
        document = yaml.safe_load(rig_file.read_text(encoding="utf-8"))
        if not isinstance(document, dict) or "emulator" not in document:
            raise ConfigError("give the emulator as 'module:Class'", source, "emulator")
        emulator = import_object(str(document["emulator"]), source, "emulator")
        rig = emulator.from_file(rig_file, any_port=any_port)
    except (OSError, yaml.YAMLError) as exc:
        raise _fail(f"{source}: cannot read emulated rig: {exc}") from None
    except UserError as exc:
        raise _fail(exc) from None
    try:
        rig.start()
    except OSError as exc:
        rig.stop()
        raise _fail(f"{source}: cannot serve the emulated rig: {exc}") from None
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for name, resource in rig.resources.items():
            sys.stdout.write(f"{name} {resource}\n")
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        stop.wait()
    finally:
        rig.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@instruments_app.command("emulated-rig")
def emulated_rig(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for instruments.yaml, rig.yaml, calibration.yaml.")
    ],
    modes: Annotated[int, typer.Option("--modes", help="Modes of each mesh.", min=2)] = 64,
    layers: Annotated[int, typer.Option("--layers", help="Meshes.", min=1)] = 2,
    seed: Annotated[int, typer.Option("--seed", help="Chip seed: phase laws and noise.", min=0)] = 0,
    noise: Annotated[float, typer.Option("--noise", help="Relative noise of every reading.", min=0.0)] = 0.0,
    latency_ms: Annotated[
        float, typer.Option("--latency-ms", help="Reply latency of every instrument, ms.", min=0.0)
    ] = 0.0,
    first_port: Annotated[
        int, typer.Option("--first-port", help="TCP port of the first instrument.", min=1, max=65000)
    ] = 50101,
    join: Annotated[str, typer.Option("--join", help="How meshes are joined: 'electrical' (every mesh has input "
                                      "modulators, set from the mesh before's detectors) or 'optical' (one chip: "
                                      "each later mesh is fed by the light of the one before, through an "
                                      "electro-optic activation as the simulated chip's).")] = "electrical",
    generator: Annotated[str, typer.Option("--generator", help="What writes the files: an entry point of "
                                           "'ffzero_lab.rig_generators' or 'module:function'.")] = "emulated",
    timing: Annotated[str, typer.Option("--timing", help="'software' (Qontrol heaters and N7745A meters, every "
                                        "value its own command) or 'hardware' (NI-DAQmx AO/AI modules on an "
                                        "emulated gRPC device server: a whole sweep per block).")] = "software",
    sample_rate: Annotated[float, typer.Option("--sample-rate", help="Hardware timing: the sample clock, S/s.",
                                               min=1.0)] = 1e6,
    settle_us: Annotated[float | None, typer.Option("--settle-us", help="Heater settle time, us (default 2000 "
                                                    "software-timed, 20 hardware-timed).", min=0.0)] = None,
) -> None:
    """Write an emulated rig of LAYERS meshes of MODES modes: Qontrol heaters, N7745A meters, and
    the emulated chip's TRUE phase laws as its calibration file (not measured: see docs/instruments.md).

    Serve it with 'ffzero-lab instruments emulate OUTPUT/rig.yaml' and train on it with
    'ffzero-lab run PROTOCOL --instruments OUTPUT/instruments.yaml'.
    """
    from ffzero_lab.config.registry import RIG_GENERATOR_GROUP, load_named

    if join not in ("electrical", "optical"):
        raise _fail(f"--join: 'electrical' or 'optical', not {join!r}")
    if timing not in ("software", "hardware"):
        raise _fail(f"--timing: 'software' or 'hardware', not {timing!r}")
    extra: dict[str, object] = {} if timing == "software" else {"timing": timing, "rate_Sps": sample_rate}
    if settle_us is not None:
        extra["settle_time_s"] = settle_us / 1e6
    try:
        write_emulated_rig = load_named(generator, RIG_GENERATOR_GROUP, "--generator", "generator", "rig generator")
    except UserError as exc:
        raise _fail(exc) from None
    try:
        paths = write_emulated_rig(output, modes, layers, seed=seed, noise=noise, latency_s=latency_ms / 1e3,
                                   first_port=first_port, join=join, **extra)
    except OSError as exc:
        raise _fail(f"{output}: cannot write the emulated rig: {exc}") from None
    for what, path in paths.items():
        out.print(f"{what} {path}", highlight=False)
