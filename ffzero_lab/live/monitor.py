"""``ffzero-lab monitor ADDRESS``: watch a run live from another process or machine.

Subscribes to a run's Bluesky documents (see :mod:`ffzero_lab.live.publisher`) and shows a rich
dashboard: per-layer loss and accuracy, evaluations per second, the device, progress and ETA. With
``--jsonl`` it prints every document as one JSON line instead (for scripts and tests); with
``--web`` it also serves a page of live curves (:mod:`ffzero_lab.live.web`).

Anyone can send to the socket a run publishes on, so every message is checked before it is
used (three frames, a known document name, a JSON object with the fields the dashboard reads,
of the right types); a message that is not is ignored and counted (shown in the dashboard, and
as a last line on stderr with ``--jsonl``), never a crash.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, TextIO

import zmq
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from ffzero_lab.core.errors import UserError
from ffzero_lab.live.publisher import TOPIC
from ffzero_lab.live.web import WebMonitor

Count = Annotated[int, Field(ge=0, le=10**12)]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Train(_Doc):
    epochs: Count


class _Protocol(_Doc):
    method: str
    name: str | None = None
    train: _Train


class _Start(_Doc):
    uid: str
    run_uid: str | None = None  # the run's own uid (a resumed run's Bluesky start has a new uid)
    time: float
    protocol: _Protocol
    layers: list[Any]
    steps_per_epoch: Count
    device: dict[str, Any] | None = None


class _Descriptor(_Doc):
    uid: str
    name: str


class _Event(_Doc):
    descriptor: str
    time: float
    data: dict[str, Any]


class _EventData(_Doc):
    layer: int


class _StepData(_EventData):
    epoch: int | None = None
    loss: float | None = None
    accuracy: float | None = None
    evaluations: int | None = None


class _EpochData(_EventData):
    loss: float | None = None
    test_accuracy: float | None = None
    evaluations_per_s: float | None = None


Values = Annotated[list[float], Field(max_length=1 << 20)]


class _TapsData(_EventData):
    tap: Values
    prototype: Values | None = None
    goodness: Values | None = None
    label: int | None = None


class _Stop(_Doc):
    exit_status: str
    test_accuracy: float | None = None
    reason: str | None = None


DOCUMENTS: dict[str, type[_Doc]] = {"start": _Start, "descriptor": _Descriptor, "event": _Event, "stop": _Stop}
STREAM_DATA: dict[str, type[_EventData]] = {"step": _StepData, "epoch": _EpochData, "taps": _TapsData}


class Malformed(ValueError):
    """A message on the publish socket that is not a document the monitor understands."""


def _validate(model: type[_Doc], data: Any, what: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise Malformed(f"{what}: {where + ': ' if where else ''}{first['msg']}") from None


def parse_message(frames: list[bytes]) -> tuple[str, dict[str, Any]]:
    """``[topic, name, json]`` -> (name, the document as a JSON object).

    Raises:
        Malformed: not three frames, not the topic, a name that is no document, not UTF-8 JSON,
            not an object. (Its fields are checked by :meth:`Dashboard.update`.)
    """
    if len(frames) != 3 or frames[0] != TOPIC:
        raise Malformed(f"{len(frames)} frames, expected [{TOPIC!r}, name, json]")
    try:
        name = frames[1].decode("utf-8")
        doc = json.loads(frames[2].decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise Malformed(f"not UTF-8 JSON: {exc}") from None
    if name not in DOCUMENTS:
        raise Malformed(f"unknown document {name[:40]!r}")
    if not isinstance(doc, dict):
        raise Malformed(f"a {name} that is a JSON {type(doc).__name__}, not an object")
    return name, doc


@dataclass
class Dashboard:
    """What the monitor knows of the run it watches, updated document by document."""

    start: _Start | None = None
    stop: _Stop | None = None
    streams: dict[str, str] = field(default_factory=dict)  # descriptor uid -> stream name
    layers: dict[int, dict[str, Any]] = field(default_factory=dict)
    steps_done: int = 0
    last_time: float | None = None
    evaluations: int = 0
    rate: float | None = None
    malformed: int = 0  # messages ignored because they were not documents (kept across runs)

    def update(self, name: str, doc: dict[str, Any]) -> None:
        """Take in one document, checked first against what the dashboard reads of it.

        Raises:
            Malformed: an unknown name, or fields missing or of the wrong type; nothing changed.
        """
        if name not in DOCUMENTS:
            raise Malformed(f"unknown document {name[:40]!r}")
        parsed = _validate(DOCUMENTS[name], doc, name)
        if isinstance(parsed, _Start):
            self.__init__(malformed=self.malformed)  # type: ignore[misc]  # a new run
            self.start = parsed
        elif isinstance(parsed, _Descriptor):
            self.streams[parsed.uid] = parsed.name
        elif isinstance(parsed, _Event):
            stream = self.streams.get(parsed.descriptor)
            data = _validate(STREAM_DATA.get(stream or "", _EventData), parsed.data, f"{stream or 'an'} event")
            row = self.layers.setdefault(data.layer, {})
            if isinstance(data, _StepData):
                self.steps_done += 1
                row.update(epoch=data.epoch, loss=data.loss, batch_accuracy=data.accuracy)
                if data.evaluations is not None:
                    self.evaluations = data.evaluations
            elif isinstance(data, _EpochData):
                row.update(epoch_loss=data.loss, test_accuracy=data.test_accuracy)
                self.rate = data.evaluations_per_s
            self.last_time = parsed.time
        elif isinstance(parsed, _Stop):
            self.stop = parsed

    def total_steps(self) -> int | None:
        if not self.start:
            return None
        p = self.start.protocol
        phases = 1 if p.method.startswith("bp") else len(self.start.layers)
        return phases * p.train.epochs * self.start.steps_per_epoch

    def render(self) -> Group:
        if self.start is None:
            return Group(Panel("waiting for a run to start ..." + self._ignored()))
        p = self.start.protocol
        total = self.total_steps() or 0
        elapsed = (self.last_time if self.last_time is not None else self.start.time) - self.start.time
        eta = elapsed / self.steps_done * (total - self.steps_done) if self.steps_done else None
        status = self.stop.exit_status if self.stop else "running"
        device = self.start.device or {}
        uid = self.start.run_uid or self.start.uid
        head = (f"run [bold]{_text(uid[:8])}[/] {_text(p.name or '')}  method {_text(p.method)}  "
                f"device {_text(device.get('driver'))} {_text(device.get('settings') or '')}  "
                f"status [bold]{_text(status)}[/]\n"
                f"step {self.steps_done:,}/{total:,}  evaluations {self.evaluations:,}  "
                f"{'-' if self.rate is None else f'{self.rate:,.0f}'} eval/s  "
                f"elapsed {elapsed:,.0f} s  ETA {'-' if eta is None else f'{eta:,.0f} s'}{self._ignored()}")
        table = Table(title="layers (-1: whole network)")
        for col in ("layer", "epoch", "step loss", "batch acc.", "epoch loss", "test acc."):
            table.add_column(col, justify="right")
        for layer, row in sorted(self.layers.items()):
            epoch = row.get("epoch")
            table.add_row(str(layer), "-" if epoch is None else str(epoch), _num(row.get("loss")),
                          _num(row.get("batch_accuracy")), _num(row.get("epoch_loss")),
                          _num(row.get("test_accuracy")))
        parts: list[Any] = [Panel(head), table]
        if self.stop:
            parts.append(Panel(f"stopped: {_text(self.stop.exit_status)}  test accuracy "
                               f"{_num(self.stop.test_accuracy)}  {_text(self.stop.reason or '')}"))
        return Group(*parts)

    def _ignored(self) -> str:
        return f"\n[yellow]ignored {self.malformed:,} malformed message(s)[/]" if self.malformed else ""


def _text(value: Any) -> str:
    """A value from a document, as text that rich shows as it is (no markup of its own)."""
    return escape(str(value))


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def subscribe(address: str, context: zmq.Context | None = None) -> zmq.Socket:
    """A SUB socket connected to ``address`` and subscribed to ffzero documents."""
    sock = (context or zmq.Context.instance()).socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(address)
    except zmq.ZMQError as exc:
        sock.close()
        raise UserError(f"cannot connect to {address}: {exc} (expected e.g. tcp://127.0.0.1:5577)", "monitor") from None
    sock.setsockopt(zmq.SUBSCRIBE, TOPIC)
    return sock


def watch(address: str, jsonl: TextIO | None, exit_on_stop: bool, timeout_s: float | None,
          errors: TextIO | None = None, web: WebMonitor | None = None) -> Dashboard:
    """Receive documents until a stop (if ``exit_on_stop``) or ``timeout_s`` without any.

    With ``jsonl`` every document is written there as ``{"name": ..., "doc": ...}`` and, if any
    message was ignored as malformed, a last line saying how many goes to ``errors`` (stderr);
    otherwise a live dashboard is drawn, which shows the count. With ``web`` (started by the
    caller) every accepted document and the count also go to its page.
    """
    sock = subscribe(address)
    board = Dashboard()
    live = None if jsonl else Live(board.render(), refresh_per_second=4)
    last = time.monotonic()
    try:
        if live:
            live.start()
        while True:
            if not sock.poll(250):
                if timeout_s is not None and time.monotonic() - last > timeout_s:
                    break
                continue
            frames = sock.recv_multipart()
            last = time.monotonic()
            try:
                name, doc = parse_message(frames)
                board.update(name, doc)
            except Malformed:
                board.malformed += 1
                if live:
                    live.update(board.render())
                if web:
                    web.feed.count_ignored(board.malformed)
                continue
            if web:
                web.feed.add(name, doc)
            if jsonl:
                jsonl.write(json.dumps({"name": name, "doc": doc}) + "\n")
                jsonl.flush()
            elif live:
                live.update(board.render())
            if exit_on_stop and name == "stop":
                break
    finally:
        if live:
            live.stop()
        sock.close()
        if jsonl and board.malformed:
            print(f"monitor: ignored {board.malformed:,} malformed message(s)", file=errors or sys.stderr, flush=True)
    return board
