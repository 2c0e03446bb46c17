"""Shared plumbing of the benchmarks: run a protocol in-process, print a table and a JSON line."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ffzero_lab.config.protocol import Protocol, load_protocol
from ffzero_lab.data.datasets import resolve_data_dir
from ffzero_lab.run.orchestrator import Orchestrator
from ffzero_lab.run.prepare import prepare

ROOT = Path(__file__).resolve().parents[1]


def run_protocol(path: str | Path, overrides: list[str], holdout: int | None = None
                 ) -> tuple[Protocol, dict[str, Any]]:
    """Train a protocol (with ``--set``-style overrides) on its simulated device; no run store.

    ``holdout``: train on all but the last ``holdout`` training samples and score on those
    instead of the test split (for choosing hyperparameters without looking at the test set).
    """
    protocol, _ = load_protocol(path, overrides)
    prepared = prepare(protocol, str(path), resolve_data_dir(None))
    dataset = prepared.dataset
    if holdout:
        n = dataset.x_train.shape[0] - holdout
        dataset = dataclasses.replace(dataset, x_train=dataset.x_train[:n], y_train=dataset.y_train[:n],
                                      x_test=dataset.x_train[n:], y_test=dataset.y_train[n:])
    result = Orchestrator(protocol, prepared.network, dataset, [], prepared.seeds).run()
    return protocol, {"test_accuracy": result.test_accuracy, "layer_accuracy": result.layer_accuracy,
                      "evaluations": result.evaluations, "wall_s": result.wall_s}


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version()}


def train_settings(protocol: Protocol) -> dict[str, Any]:
    t = protocol.train
    return {"epochs": t.epochs, "batch_size": t.batch_size, "optimizer": t.optimizer, "lr": t.lr,
            "schedule": t.schedule, "directions": t.directions, "eps": t.eps, "margin": t.margin}


def report(title: str, columns: list[str], rows: list[list[str]], summary: dict[str, Any]) -> None:
    """Print the table, then the summary as one JSON object on the last line."""
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*row)
    Console(width=140).print(table)
    print(json.dumps(summary))


def fmt_layers(accuracies: list[float | None]) -> str:
    return " ".join("-" if a is None else f"{a:.3f}" for a in accuracies)
