"""``ffzero-lab monitor ADDRESS``: watch a run live from another process or machine.

Subscribes to a run's documents (see :mod:`ffzero_lab.live.publisher`) and shows a rich dashboard:
per-layer loss and accuracy, evaluations per second, the device, progress and ETA. With
``--jsonl`` it prints every document as one JSON line instead (for scripts and tests).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import zmq
from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from ffzero_lab.core.errors import UserError
from ffzero_lab.live.publisher import TOPIC


@dataclass
class Dashboard:
    """What the monitor knows of the run it watches, updated document by document."""

    start: dict[str, Any] | None = None
    stop: dict[str, Any] | None = None
    streams: dict[str, str] = field(default_factory=dict)  # descriptor uid -> stream name
    layers: dict[int, dict[str, Any]] = field(default_factory=dict)
    steps_done: int = 0
    last_time: float | None = None
    evaluations: int = 0
    rate: float | None = None

    def update(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            self.__init__()  # type: ignore[misc]  # a new run
            self.start = doc
        elif name == "descriptor":
            self.streams[doc["uid"]] = doc["name"]
        elif name == "event":
            stream, data = self.streams.get(doc["descriptor"]), doc["data"]
            row = self.layers.setdefault(data["layer"], {})
            if stream == "step":
                self.steps_done += 1
                row.update(epoch=data["epoch"], loss=data["loss"], batch_accuracy=data.get("accuracy"))
                self.evaluations = data["evaluations"]
            elif stream == "epoch":
                row.update(epoch_loss=data["loss"], test_accuracy=data["test_accuracy"])
                self.rate = data.get("evaluations_per_s")
            self.last_time = doc["time"]
        elif name == "stop":
            self.stop = doc

    def total_steps(self) -> int | None:
        if not self.start:
            return None
        p = self.start["protocol"]
        phases = 1 if p["method"].startswith("bp") else len(self.start["layers"])
        return phases * p["train"]["epochs"] * self.start["steps_per_epoch"]

    def render(self) -> Group:
        if self.start is None:
            return Group(Panel("waiting for a run to start ..."))
        p = self.start["protocol"]
        total = self.total_steps() or 0
        elapsed = (self.last_time or self.start["time"]) - self.start["time"]
        eta = elapsed / self.steps_done * (total - self.steps_done) if self.steps_done else None
        status = self.stop["exit_status"] if self.stop else "running"
        device = self.start.get("device") or {}
        head = (f"run [bold]{self.start['uid'][:8]}[/] {p.get('name') or ''}  method {p['method']}  "
                f"device {device.get('driver')} {device.get('settings') or ''}  status [bold]{status}[/]\n"
                f"step {self.steps_done:,}/{total:,}  evaluations {self.evaluations:,}  "
                f"{'-' if self.rate is None else f'{self.rate:,.0f}'} eval/s  "
                f"elapsed {elapsed:,.0f} s  ETA {'-' if eta is None else f'{eta:,.0f} s'}")
        table = Table(title="layers (-1: whole network)")
        for col in ("layer", "epoch", "step loss", "batch acc.", "epoch loss", "test acc."):
            table.add_column(col, justify="right")
        for layer, row in sorted(self.layers.items()):
            table.add_row(str(layer), str(row.get("epoch", "-")), _num(row.get("loss")),
                          _num(row.get("batch_accuracy")), _num(row.get("epoch_loss")),
                          _num(row.get("test_accuracy")))
        parts: list[Any] = [Panel(head), table]
        if self.stop:
            parts.append(Panel(f"stopped: {self.stop['exit_status']}  test accuracy "
                               f"{_num(self.stop.get('test_accuracy'))}  {self.stop.get('reason') or ''}"))
        return Group(*parts)


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


def watch(address: str, jsonl: TextIO | None, exit_on_stop: bool, timeout_s: float | None) -> Dashboard:
    """Receive documents until a stop (if ``exit_on_stop``) or ``timeout_s`` without any.

    With ``jsonl`` every document is written there as ``{"name": ..., "doc": ...}``; otherwise
    a live dashboard is drawn.
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
            _, name, payload = sock.recv_multipart()
            last = time.monotonic()
            doc = json.loads(payload)
            board.update(name.decode(), doc)
            if jsonl:
                jsonl.write(json.dumps({"name": name.decode(), "doc": doc}) + "\n")
                jsonl.flush()
            elif live:
                live.update(board.render())
            if exit_on_stop and name == b"stop":
                break
    finally:
        if live:
            live.stop()
        sock.close()
    return board
