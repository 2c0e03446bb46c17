"""One recorded run as an :class:`xarray.Dataset` with coordinates and CF units.

The same dataset is what :func:`ffzero_lab.open_runs` gives (``Runs.dataset``) and what
``ffzero-lab runs export --format netcdf`` writes. Layout (docs/python-api.md, "The run as an
xarray.Dataset"):

* coordinates ``layer`` (-1: the whole network, BP methods), ``epoch``, ``step`` (optimiser
  step within a layer's training: the store's ``version``), ``port``, ``class`` and
  ``parameter``, plus ``step_epoch(step)``, the epoch each step belongs to;
* per epoch ``(layer, epoch)``: ``epoch_loss``, ``epoch_test_accuracy``, ``epoch_evaluations``,
  ``evaluations_per_s``, ``epoch_time``;
* per step ``(layer, step)``: ``loss``, ``batch_accuracy``, ``lr``, ``step_evaluations``,
  ``step_time`` and, when measurements were recorded, ``directions`` (K), ``eps``,
  ``direction_seed``, ``direction_draw``, ``t_start``, ``t_end``;
* the stored arrays, stacked over ``layer`` (NaN where a layer's array is shorter):
  ``prototypes(layer, class, port)``, ``initial_parameters`` and ``parameters(layer, parameter)``,
  ``projections(layer, channel, projection, channel_port)``, and each device array
  ``device/<l>/<key>`` as ``device_<key>(layer, ...)`` (on ``parameter`` when it has one value
  per parameter);
* the result: ``layer_test_accuracy(layer)`` and ``test_accuracy`` (a scalar);
* the run's row as global attributes (times as ISO 8601 UTC text; ``protocol_json`` the
  validated protocol as JSON text), ``Conventions = "CF-1.8"``.

Every variable has ``long_name`` and ``units`` (CF: ``1`` for dimensionless, ``rad``, ``s-1``);
times are ``datetime64`` (UTC), written to NetCDF as seconds since 1970-01-01. A missing value
(a NULL, a step without a measurement) is NaN (NaT for times). Raw readings are not in the
dataset (``Runs.readings`` and the npz export have them).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.store.runstore import RunStore

if TYPE_CHECKING:
    import xarray as xr

#: NetCDF encoding of every time variable: float seconds since the Unix epoch (UTC).
TIME_ENCODING = {"units": "seconds since 1970-01-01", "calendar": "proleptic_gregorian",
                 "dtype": "float64"}
#: ``(long_name, units)`` of the per-epoch and per-step variables, by the store's column.
EPOCH_VARIABLES = {
    "loss": ("epoch_loss", "mean step loss over the epoch", "1"),
    "test_accuracy": ("epoch_test_accuracy", "test score of the layer (or the readout, BP) after the epoch", "1"),
    "evaluations": ("epoch_evaluations", "cumulative forward evaluations of the device", "1"),
    "evaluations_per_s": ("evaluations_per_s", "device evaluations per second while training the epoch", "s-1"),
    "time": ("epoch_time", "time the epoch ended", None),
}
STEP_VARIABLES = {
    "loss": ("loss", "mean loss over the step's 2K settings", "1"),
    "accuracy": ("batch_accuracy", "score on the step's batch, mean over its settings", "1"),
    "lr": ("lr", "learning rate of the step", "1"),
    "evaluations": ("step_evaluations", "cumulative forward evaluations of the device", "1"),
    "time": ("step_time", "time the step was recorded", None),
    "instrument_s": ("step_instrument_time", "instrument time the step cost on a rig (settles, clocked samples)",
                     "s"),
}
MEASUREMENT_VARIABLES = {
    "directions": ("directions", "K, random directions of the step (0: an AD method)", "1"),
    "eps": ("eps", "perturbation size", "rad"),
    "direction_seed": ("direction_seed", "seed of the step's directions", "1"),
    "direction_draw": ("direction_draw", "draw number of the step's directions", "1"),
    "t_start": ("t_start", "time before the step's first reading", None),
    "t_end": ("t_end", "time after the step's last reading", None),
}
_ARRAY = re.compile(r"^(?P<kind>[a-z_]+)/(?P<layer>\d+)(?:/(?P<key>.+))?$")


def _times(seconds: NDArray[np.float64]) -> NDArray[np.datetime64]:
    """Unix seconds (NaN: none) as ``datetime64[ns]`` (NaT)."""
    out = np.full(seconds.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    known = np.isfinite(seconds)
    out[known] = (seconds[known] * 1e9).round().astype(np.int64).astype("datetime64[ns]")
    return out


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def _grid(rows: list[dict[str, Any]], column: str, layers: list[int], index: str,
          size: int) -> NDArray[np.float64]:
    """``(layers, size)`` of one column, NaN where a (layer, index) has no row."""
    grid = np.full((len(layers), size), np.nan)
    where = {layer: i for i, layer in enumerate(layers)}
    for row in rows:
        value = row[column]
        if value is not None:
            grid[where[row["layer"]], row[index]] = value
    return grid


def _stack(arrays: dict[int, NDArray[np.generic]], layers: list[int]) -> NDArray[np.float64]:
    """Per-layer arrays stacked on a first ``layer`` axis, NaN-padded to the largest shape."""
    ndim = max(a.ndim for a in arrays.values())
    shape = [max(a.shape[i] if i < a.ndim else 1 for a in arrays.values()) for i in range(ndim)]
    out = np.full((len(layers), *shape), np.nan)
    for layer, array in arrays.items():
        a = np.asarray(array, dtype=np.float64).reshape(array.shape + (1,) * (ndim - array.ndim))
        out[(layers.index(layer), *(slice(0, n) for n in a.shape))] = a
    return out


def _attrs(long_name: str, units: str | None) -> dict[str, str]:
    return {"long_name": long_name, **({"units": units} if units is not None else {})}


def recorded_measurements(store: RunStore, run_id: int,
                          steps: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The measurement row (:meth:`RunStore.measurement`, without readings) of every step of
    ``steps`` (default: the run's) that has one, in their order."""
    rows = []
    for s in store.steps(run_id) if steps is None else steps:
        try:
            rows.append(store.measurement(run_id, s["layer"], s["version"], readings=False))
        except KeyError:
            continue
    return rows


def parameter_units(device: dict[str, Any] | None) -> str:
    """The unit of a run's parameters: ``1`` for the dense digital device, else ``rad`` (phases)."""
    return "1" if (device or {}).get("driver") == "digital" else "rad"


def run_dataset(store: RunStore, run_id: int) -> xr.Dataset:
    """Run ``run_id`` of ``store`` as a CF-style dataset (layout in the module docstring)."""
    import xarray as xr  # lazy: xarray takes seconds to import

    row = store.run_row(run_id)
    status = store.summary(run_id).status
    steps, epochs = store.steps(run_id), store.epochs(run_id)
    measured = recorded_measurements(store, run_id, steps)
    by_kind: dict[str, dict[int, NDArray[np.generic]]] = defaultdict(dict)
    for name in store.array_names(run_id):
        match = _ARRAY.match(name)
        if match is None:
            continue
        kind = match["kind"] if match["key"] is None else f"{match['kind']}_{match['key']}"
        array = np.asarray(store.array(run_id, name))
        if array.dtype.kind in "biuf" and 0 not in array.shape:
            by_kind[kind][int(match["layer"])] = array
    device = json.loads(row["device_json"]) if row.get("device_json") else None
    layer_scores = json.loads(row["layer_accuracy"]) if row.get("layer_accuracy") else []
    layers = sorted({r["layer"] for r in steps} | {r["layer"] for r in epochs}
                    | {layer for arrays in by_kind.values() for layer in arrays} | set(range(len(layer_scores))))
    n_epochs = max([r["epoch"] for r in epochs] + [r["epoch"] for r in steps], default=-1) + 1
    n_steps = max((r["version"] for r in steps), default=-1) + 1
    metric = row.get("metric") or "accuracy"
    score = "R^2" if metric == "r2" else "accuracy"

    data: dict[str, Any] = {}
    coords: dict[str, Any] = {
        "layer": ("layer", np.asarray(layers, dtype=np.int64),
                  {"long_name": "layer index (-1: the whole network, BP methods)"}),
        "epoch": ("epoch", np.arange(n_epochs), {"long_name": "epoch within a layer's training, from 0"}),
        "step": ("step", np.arange(n_steps),
                 {"long_name": "optimiser step within a layer's training, from 0 (the store's version)"}),
    }
    step_epoch = np.full(n_steps, -1, dtype=np.int64)
    for r in steps:
        step_epoch[r["version"]] = r["epoch"]
    coords["step_epoch"] = ("step", step_epoch, {"long_name": "epoch of the step (-1: not recorded)"})

    for column, (name, long_name, units) in EPOCH_VARIABLES.items():
        values = _grid(epochs, column, layers, "epoch", n_epochs)
        if units is None:
            data[name] = (("layer", "epoch"), _times(values), _attrs(long_name, None))
        else:
            long_name = long_name.replace("score", score) if column == "test_accuracy" else long_name
            data[name] = (("layer", "epoch"), values, _attrs(long_name, units))
    for column, (name, long_name, units) in STEP_VARIABLES.items():
        values = _grid(steps, column, layers, "version", n_steps)
        data[name] = (("layer", "step"), _times(values) if units is None else values, _attrs(long_name, units))
    if measured:
        for column, (name, long_name, units) in MEASUREMENT_VARIABLES.items():
            values = _grid(measured, column, layers, "version", n_steps)
            data[name] = (("layer", "step"), _times(values) if units is None else values, _attrs(long_name, units))

    p_units = parameter_units(device)
    named_dims = {"prototypes": ("class", "port"), "initial_parameters": ("parameter",),
                  "parameters": ("parameter",), "projections": ("channel", "projection", "channel_port"),
                  "device_bs_error": ("mesh_column", "mzi"), "device_transmission": ("mesh_column", "mzi")}
    long_names = {
        "prototypes": ("unit prototype of each class in the layer's tap space (projected space, channel-wise)", "1"),
        "initial_parameters": ("parameters before training", p_units),
        "parameters": ("parameters after training", p_units),
        "projections": ("fixed random projection of each channel's map (channel-wise layers)", "1"),
        "device_heater_phi0": ("heater phase at zero voltage, phi0 of phi = phi0 + k V^2", "rad"),
        "device_heater_k": ("heater phase per volt squared, k of phi = phi0 + k V^2", "rad V-2"),
        "device_bs_error": ("split-ratio error of each MZI (both its beam splitters), by mesh column", "1"),
        "device_transmission": ("amplitude transmission of each MZI (insertion loss), by mesh column", "1"),
    }
    n_params = {layer: a.shape[0] for layer, a in by_kind.get("initial_parameters", {}).items()}
    for kind, arrays in sorted(by_kind.items()):
        stacked = _stack(arrays, layers)
        if kind in named_dims:
            dims = named_dims[kind][: stacked.ndim - 1]
        elif stacked.ndim == 2 and all(a.ndim == 1 and a.shape[0] == n_params.get(i) for i, a in arrays.items()):
            dims = ("parameter",)
        else:
            dims = tuple(f"{kind}_dim{i}" for i in range(stacked.ndim - 1))
        long_name, units = long_names.get(kind, (f"device array {kind[len('device_'):]}" if kind.startswith("device_")
                                                 else kind.replace("_", " "), None))
        data[kind] = (("layer", *dims), stacked, _attrs(long_name, units))
    for dim in ("class", "port", "parameter"):
        if any(dim in variable[0] for variable in data.values()):
            size = max(v[1].shape[v[0].index(dim)] for v in data.values() if dim in v[0])
            coords[dim] = (dim, np.arange(size), {"long_name": {"class": "class index", "port": "output port (tap)",
                                                                "parameter": "parameter index"}[dim]})

    scores = np.full(len(layers), np.nan)
    for i, value in enumerate(layer_scores):
        if value is not None:
            scores[layers.index(i)] = value
    data["layer_test_accuracy"] = ("layer", scores, _attrs(f"test {score} of each layer's own prediction", "1"))
    final = np.nan if row.get("test_accuracy") is None else row["test_accuracy"]
    data["test_accuracy"] = ((), np.float64(final),
                             _attrs(f"test {score} of the network (voted, FF; the readout, BP)", "1"))

    attrs: dict[str, Any] = {"Conventions": "CF-1.8", "title": f"ffzero-lab run {run_id}",
                             "source": f"ffzero-lab {row.get('software_version')}", "status": status}
    for key, value in row.items():
        if value is None or key in attrs:
            continue
        attrs[key] = _iso(value) if key.endswith("_at") else value
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    for name, variable in ds.variables.items():
        if np.issubdtype(variable.dtype, np.datetime64):
            ds[name].encoding.update(TIME_ENCODING)
    return ds
