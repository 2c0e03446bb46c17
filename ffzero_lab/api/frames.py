"""Rows of the run store (or a run's documents) as pandas DataFrames, units in ``attrs``.

Columns keep the store's names (docs/run-store.md); unix times become ``datetime64[ns, UTC]``;
``DataFrame.attrs["units"]`` maps each column with a unit to it (``1``: dimensionless, ``s``,
``s-1``, ``rad``), ``attrs["long_names"]`` says what a column holds where its name does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

#: Columns holding unix times (seconds): DataFrames give them as UTC timestamps.
TIME_COLUMNS = ("time", "t_start", "t_end", "started_at", "stopped_at", "resumed_at")
UNITS = {
    "loss": "1", "accuracy": "1", "test_accuracy": "1", "lr": "1", "evaluations": "1",
    "evaluations_per_s": "s-1", "wall_s": "s", "eps": "rad", "directions": "1",
}
LONG_NAMES = {
    "layer": "layer index (-1: the whole network, BP methods)",
    "step": "step within the epoch, from 0",
    "version": "step within the layer's training, from 0",
    "evaluations": "cumulative forward evaluations of the device (one input under one setting of one layer)",
    "accuracy": "score on the step's batch, in the run's metric",
    "test_accuracy": "test score in the run's metric (accuracy, or R^2 for regression)",
    "directions": "K, random directions of the step (0: an AD method)",
    "samples": "(B,) indices of the step's training samples",
}


def frame(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None,
          index: str | None = None) -> pd.DataFrame:
    """``rows`` as a DataFrame (the given ``columns`` in order, even when there are no rows);
    time columns as UTC timestamps, units and long names in ``attrs``."""
    import pandas as pd  # lazy: pandas takes a while to import

    df = pd.DataFrame(list(rows), columns=list(columns) if columns is not None else None)
    for column in df.columns:
        if column in TIME_COLUMNS:
            df[column] = pd.to_datetime(df[column].astype("float64"), unit="s", utc=True)
    if index is not None:
        df = df.set_index(index)
    names = set(df.columns) | {df.index.name}
    df.attrs["units"] = {k: v for k, v in UNITS.items() if k in names}
    df.attrs["long_names"] = {k: v for k, v in LONG_NAMES.items() if k in names}
    return df
