"""Live console display of a run: a rich progress bar fed by the run's documents."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class ProgressSink:
    """Shows layer, epoch, step, loss and evaluations/s while a run trains (on stderr)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]layer {task.fields[layer]}[/] epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]}  {task.fields[rate]} eval/s"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.task: Any = None
        self.epochs = 0
        self.steps_per_epoch = 0
        self.rate = "-"
        self.acc = "-"

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            self.epochs = doc["protocol"]["train"]["epochs"]
            self.steps_per_epoch = doc["steps_per_epoch"]
            self.progress.start()
        elif name == "step":
            if self.task is None or doc["step"] == 0 and doc["epoch"] == 0:
                if self.task is not None:
                    self.progress.stop_task(self.task)
                self.acc = "-"
                self.task = self.progress.add_task(
                    "train", total=self.epochs * self.steps_per_epoch, layer=doc["layer"],
                    epoch=0, loss=doc["loss"], acc=self.acc, rate=self.rate,
                )
            self.progress.update(self.task, advance=1, epoch=f"{doc['epoch'] + 1}/{self.epochs}",
                                 loss=doc["loss"], acc=self.acc, rate=self.rate)
        elif name == "epoch":
            self.rate = f"{doc['evaluations_per_s']:,.0f}"
            self.acc = f"{doc['test_accuracy']:.3f}"
        elif name == "stop":
            self.progress.stop()
