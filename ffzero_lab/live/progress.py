"""Live console display of a run, fed by the run's documents: a rich progress bar on a terminal,
plain timestamped lines anywhere else (a log file, ``nohup``, a notebook cell, CI).

A rich bar redraws itself in place, which only a terminal shows: written to a file it leaves
nothing until the run ends. :func:`progress_sink` picks the display the console can show.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

#: Seconds between two plain progress lines within an epoch (every epoch's end has its line too).
PLAIN_INTERVAL_S = 10.0


def progress_sink(console: Console, interval_s: float = PLAIN_INTERVAL_S) -> ProgressSink | PlainProgressSink:
    """The progress display for ``console``: a rich bar on a terminal, else plain lines on its file."""
    if console.is_terminal:
        return ProgressSink(console)
    return PlainProgressSink(console.file, interval_s)


class ProgressSink:
    """Shows layer, epoch, step, loss and evaluations/s while a run trains (on stderr)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]layer {task.fields[layer]}[/] epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]}  {task.fields[rate]} eval/s"
                       "{task.fields[instruments]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.task: Any = None
        self.epochs = 0
        self.steps_per_epoch = 0
        self.rate = "-"
        self.acc = "-"
        #: instrument time of the steps so far (the lab-time ledger), s; None: none recorded
        self.instrument_s: float | None = None

    def _instruments(self) -> str:
        return "" if self.instrument_s is None else f"  instruments {self.instrument_s:.3f} s"

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            self.epochs = doc["protocol"]["train"]["epochs"]
            self.steps_per_epoch = doc["steps_per_epoch"]
            self.progress.start()
        elif name == "step":
            if doc.get("instrument_s") is not None:
                self.instrument_s = (self.instrument_s or 0.0) + float(doc["instrument_s"])
            if self.task is None or doc["step"] == 0 and doc["epoch"] == 0:
                if self.task is not None:
                    self.progress.stop_task(self.task)
                self.acc = "-"
                self.task = self.progress.add_task(
                    "train", total=self.epochs * self.steps_per_epoch, layer=doc["layer"],
                    epoch=0, loss=doc["loss"], acc=self.acc, rate=self.rate, instruments=self._instruments(),
                )
            self.progress.update(self.task, advance=1, epoch=f"{doc['epoch'] + 1}/{self.epochs}",
                                 loss=doc["loss"], acc=self.acc, rate=self.rate, instruments=self._instruments())
        elif name == "epoch":
            self.rate = f"{doc['evaluations_per_s']:,.0f}"
            self.acc = f"{doc['test_accuracy']:.3f}"
        elif name == "stop":
            self.progress.stop()


class PlainProgressSink:
    """Progress as plain lines, each written and flushed at once, for a stream that is no terminal.

    One line when the run starts, one at the end of every epoch, one every ``interval_s``
    seconds within an epoch, and one when it stops; each begins with the local time
    (``YYYY-MM-DD HH:MM:SS``), e.g.::

        2026-12-08 02:41:07 layer 0 epoch 1/2 step 22/22 loss 0.4012 acc 0.129 8,739 eval/s

    Args:
        stream: where the lines go (stderr).
        interval_s: most seconds between two lines while steps arrive, s.
        clock: monotonic seconds (tests give their own).
    """

    def __init__(self, stream: IO[str], interval_s: float = PLAIN_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.interval_s, self.clock = stream, interval_s, clock
        self.epochs = 0
        self.steps_per_epoch = 0
        self.rate = "-"
        self.last = 0.0
        #: instrument time of the steps so far (the lab-time ledger), s; None: none recorded
        self.instrument_s: float | None = None
        self.started = clock()

    def _line(self, text: str) -> None:
        self.stream.write(f"{datetime.now():%Y-%m-%d %H:%M:%S} {text}\n")
        self.stream.flush()
        self.last = self.clock()

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            self.epochs = doc["protocol"]["train"]["epochs"]
            self.steps_per_epoch = doc["steps_per_epoch"]
            layers = len(doc.get("layers") or [])
            self._line(f"start: {self.epochs} epochs of {self.steps_per_epoch} steps, {layers} layers"
                       + (" (resumed)" if doc.get("resumed") else ""))
        elif name == "step":
            if doc.get("instrument_s") is not None:
                self.instrument_s = (self.instrument_s or 0.0) + float(doc["instrument_s"])
            if self.clock() - self.last >= self.interval_s:
                self._line(f"layer {doc['layer']} epoch {doc['epoch'] + 1}/{self.epochs} "
                           f"step {doc['step'] + 1}/{self.steps_per_epoch} loss {doc['loss']:.4f} {self.rate} eval/s")
        elif name == "epoch":
            self.rate = f"{doc['evaluations_per_s']:,.0f}" if doc.get("evaluations_per_s") else "-"
            acc = "-" if doc.get("test_accuracy") is None else f"{doc['test_accuracy']:.3f}"
            self._line(f"layer {doc['layer']} epoch {doc['epoch'] + 1}/{self.epochs} done loss {doc['loss']:.4f} "
                       f"acc {acc} {self.rate} eval/s{self._times()}")
        elif name == "stop":
            self._line(f"stop: {doc.get('exit_status')}" + (f" ({doc['reason']})" if doc.get("reason") else "")
                       + self._times())

    def _times(self) -> str:
        """`` wall W s, instruments I s`` once a step recorded instrument time, else empty."""
        if self.instrument_s is None:
            return ""
        return f" wall {self.clock() - self.started:.1f} s, instruments {self.instrument_s:.3f} s"
