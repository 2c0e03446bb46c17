"""Reading a run store from Python: :func:`open_runs` and :class:`Runs`.

Tables come as pandas DataFrames (the store's column names, times as UTC timestamps, units in
``DataFrame.attrs``), a run as an :class:`xarray.Dataset` with coordinates and CF units
(:func:`ffzero_lab.store.dataset.run_dataset`, the same as ``runs export --format netcdf``).
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.api.frames import frame
from ffzero_lab.config.protocol import Protocol, parse_protocol
from ffzero_lab.core.errors import UserError
from ffzero_lab.store.dataset import recorded_measurements, run_dataset
from ffzero_lab.store.export import EPOCH_COLUMNS, STEP_COLUMNS
from ffzero_lab.store.runstore import DB_NAME, RunStore, RunSummary, resolve_runs_dir

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

#: A run as :class:`Runs` takes it: its number, a unique prefix of its uid (text), or a
#: :class:`~ffzero_lab.api.training.TrainResult` (anything with ``run_uid``).
RunRef = int | str | Any

MEASUREMENT_COLUMNS = ("layer", "version", "direction_seed", "direction_draw", "directions", "eps", "samples",
                       "readings_shape", "t_start", "t_end")


class Runs:
    """A run store opened for reading. Use as a context manager, or call :meth:`close`.

    Args:
        runs_dir: the folder holding ``runs.sqlite``.

    Raises:
        UserError: there is no run store in ``runs_dir``, or it cannot be read.
    """

    def __init__(self, runs_dir: str | Path) -> None:
        folder = Path(runs_dir)
        if not (folder / DB_NAME).is_file():
            raise UserError(f"no run store here (no {DB_NAME}); train first, or name the runs dir", str(folder))
        self.store = RunStore(folder)
        self.runs_dir = folder

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Runs:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Runs({str(self.runs_dir)!r})"

    def run_id(self, run: RunRef) -> int:
        """A run's number from its number, a unique uid prefix or a TrainResult.

        Raises:
            UserError: no such run, or a prefix matching several.
        """
        if isinstance(run, bool):
            raise TypeError("a run is a number, a uid prefix or a TrainResult")
        if isinstance(run, int | np.integer):
            return self.store.find(str(int(run)))
        if isinstance(run, str):
            return self.store.find(run)
        uid = getattr(run, "run_uid", None)
        if isinstance(uid, str):
            return self.store.find(uid)
        raise TypeError(f"a run is a number, a uid prefix or a TrainResult, not {type(run).__name__}")

    # -- tables -----------------------------------------------------------------------------
    def runs(self) -> pd.DataFrame:
        """Every run, indexed by ``id``: ``uid``, ``name``, ``kind``, ``method``, ``status``
        (complete, failed, running, incomplete), ``started_at``, ``stopped_at``, ``resumes``,
        ``test_accuracy``, ``layer_accuracy`` (a list per run), ``evaluations``, ``wall_s`` (s)."""
        names = [f.name for f in fields(RunSummary)]
        return frame([r.to_json() for r in self.store.list_runs()], names, index="id")

    def steps(self, run: RunRef) -> pd.DataFrame:
        """One row per optimiser step: ``layer``, ``epoch``, ``step`` (within the epoch),
        ``version`` (within the layer's training), ``loss``, ``accuracy`` (the batch's),
        ``lr``, ``evaluations`` (cumulative), ``time``."""
        return frame(self.store.steps(self.run_id(run)), STEP_COLUMNS)

    def epochs(self, run: RunRef) -> pd.DataFrame:
        """One row per layer and epoch: ``layer``, ``epoch``, ``loss`` (mean step loss),
        ``test_accuracy`` (after the epoch, in the run's metric), ``evaluations``,
        ``evaluations_per_s`` (s-1), ``time``."""
        return frame(self.store.epochs(self.run_id(run)), EPOCH_COLUMNS)

    def measurements(self, run: RunRef) -> pd.DataFrame:
        """One row per recorded step (``record.measurements`` on): ``layer``, ``version``,
        ``direction_seed``, ``direction_draw``, ``directions`` (K), ``eps`` (rad), ``samples``
        (a ``(B,)`` int32 array of training-sample indices), ``readings_shape`` (a tuple),
        ``t_start``, ``t_end``. The raw readings: :meth:`readings`."""
        rows = recorded_measurements(self.store, self.run_id(run))
        for m in rows:
            m["readings_shape"] = tuple(json.loads(m["readings_shape"])) if m["readings_shape"] else None
        return frame(rows, MEASUREMENT_COLUMNS)

    def readings(self, run: RunRef, layer: int, version: int) -> xr.DataArray:
        """The raw tap readings of one recorded step, float32 ``(setting, sample, port)``:
        ``(2K, B, ports)`` for DD methods in setting order (``+eps v_k`` for k < K, then
        ``-eps v_k``), ``(1, B, ports)`` for AD; the coordinate ``sample`` holds the training-sample
        indices. Units: W on a rig, a fraction of the unit input power on a simulated chip.

        Raises:
            KeyError: the step has no recorded readings.
        """
        import xarray as xr  # lazy: xarray takes seconds to import

        run_id = self.run_id(run)
        m = self.store.measurement(run_id, layer, version)
        if m["readings"] is None:
            raise KeyError((layer, version))
        readings = m["readings"] if m["readings"].ndim == 3 else m["readings"][None]
        kind = self.store.run_row(run_id)["kind"]
        return xr.DataArray(readings, dims=("setting", "sample", "port"),
                            coords={"sample": np.asarray(m["samples"]), "port": np.arange(readings.shape[2])},
                            name="readings", attrs={"long_name": "tap readings",
                                                    "units": "W" if kind == "run" else "1"})

    # -- a run as a whole --------------------------------------------------------------------
    def protocol(self, run: RunRef) -> Protocol:
        """The run's protocol as validated (overrides applied), as a Protocol."""
        run_id = self.run_id(run)
        return parse_protocol(self.store.protocol(run_id), f"run {run_id}")

    def arrays(self, run: RunRef) -> dict[str, NDArray[np.generic]]:
        """Every stored array of the run by name (``prototypes/0``, ``parameters/1`` ...; docs/run-store.md)."""
        run_id = self.run_id(run)
        return {name: self.store.array(run_id, name) for name in self.store.array_names(run_id)}

    def dataset(self, run: RunRef) -> xr.Dataset:
        """The run as an :class:`xarray.Dataset`: coordinates ``layer``, ``epoch``, ``step``,
        ``port``, ``class``, ``parameter``; CF ``units`` on every variable (docs/python-api.md)."""
        return run_dataset(self.store, self.run_id(run))


def open_runs(runs_dir: str | Path | None = None) -> Runs:
    """Open the run store in ``runs_dir`` (default ``$FFZERO_RUNS_DIR`` or ``./runs``) for reading.

    Raises:
        UserError: there is no run store there.
    """
    return Runs(resolve_runs_dir(runs_dir))
