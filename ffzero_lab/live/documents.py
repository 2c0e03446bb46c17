"""A run's documents as Bluesky documents, composed with ``event_model`` (the bluesky ecosystem's
own package), so that any Bluesky callback (``LiveTable``, ``BestEffortCallback``,
``event_model.RunRouter``, a tiled or databroker writer) can take a run.

The orchestrator reports ``start``, ``step``, ``epoch``, ``taps``, ``arrays`` and ``stop``
(:mod:`ffzero_lab.run.orchestrator`); :class:`BlueskyDocuments` turns them into

* ``start``: ``uid`` (the run's uid; a resumed run gets a new one), ``time``, and the run's
  metadata: ``run_uid``, ``protocol``, ``device``, ``layers``, ``steps_per_epoch``, ... ;
* one ``descriptor`` per stream (``step``, ``epoch``, ``taps``) with ``data_keys`` giving each
  key's ``dtype``, ``dtype_numpy``, ``shape``, ``units`` and ``source`` (a stream whose array
  shapes change, e.g. ``taps`` of layers of different widths, gets another descriptor of the
  same name);
* ``event``s with ``data``, ``timestamps`` for every key, ``seq_num`` counting from 1 per stream;
* ``stop`` with ``exit_status`` ``success``, ``fail`` or ``abort`` (Ctrl-C or a signal), ``reason``
  and ``num_events``, plus the run's results (``test_accuracy``, ``layer_accuracy``, ...).

``arrays`` (numpy arrays for the run store) become no document. Every document is plain JSON
(numpy values as numbers and lists) and is checked against event-model's schemas as it is made.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import event_model
import numpy as np

#: A Bluesky callback: ``callback(name, document)``.
Callback = Callable[[str, dict[str, Any]], Any]


@dataclass(frozen=True)
class Key:
    """What a stream's data key holds: its JSON type, units and meaning."""

    dtype: str  # "integer", "number" or "array" (of numbers)
    units: str
    description: str


_INDEX = ""  # indices and labels have no unit
#: The keys of each stream, in order. Keys a document has beyond these are added as found.
STREAMS: dict[str, dict[str, Key]] = {
    "step": {
        "layer": Key("integer", _INDEX, "trained layer; -1: every layer at once (BP methods)"),
        "epoch": Key("integer", _INDEX, "epoch, from 0"),
        "step": Key("integer", _INDEX, "step within the epoch, from 0"),
        "version": Key("integer", _INDEX, "steps of this layer so far, from 0 (epoch * steps_per_epoch + step)"),
        "loss": Key("number", "dimensionless", "mini-batch loss (mean over the 2K settings for DD)"),
        "accuracy": Key("number", "dimensionless", "mini-batch accuracy (R^2 for regression), or null"),
        "lr": Key("number", "dimensionless", "learning rate of the step"),
        "evaluations": Key("integer", "count", "device evaluations so far (one input under one setting)"),
    },
    "epoch": {
        "layer": Key("integer", _INDEX, "trained layer; -1: every layer at once (BP methods)"),
        "epoch": Key("integer", _INDEX, "epoch, from 0"),
        "loss": Key("number", "dimensionless", "mean step loss of the epoch"),
        "test_accuracy": Key("number", "dimensionless", "this layer's test accuracy (R^2 for regression)"),
        "evaluations": Key("integer", "count", "device evaluations so far"),
        "evaluations_per_s": Key("number", "1/s", "device evaluations per second during the epoch"),
    },
    "taps": {
        "layer": Key("integer", _INDEX, "the layer the tap is from; -1: the last layer (BP methods)"),
        "label": Key("integer", _INDEX, "the sample's class"),
        "tap": Key("array", "dimensionless", "the tap (centred; projected for a channel-wise layer) at unit length"),
        "prototype": Key("array", "dimensionless", "the prototype of the sample's class (unit length)"),
        "goodness": Key("array", "dimensionless", "cosine of the tap with every class's prototype"),
    },
}
_NUMPY = {"integer": "<i8", "number": "<f8", "array": "<f8", "boolean": "|b1", "string": "<U0"}


def plain(value: Any) -> Any:
    """A value as JSON has it: numpy arrays and scalars as lists and Python numbers."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def _inferred(value: Any) -> Key | None:
    """The key of a value no stream declares (a field a newer orchestrator adds), or None for
    what an event cannot carry (objects)."""
    if isinstance(value, bool | np.bool_):
        return Key("boolean", _INDEX, "")
    if isinstance(value, int | np.integer):
        return Key("integer", _INDEX, "")
    if value is None or isinstance(value, float | np.floating):
        return Key("number", "", "")
    if isinstance(value, str):
        return Key("string", _INDEX, "")
    if isinstance(value, list | tuple | np.ndarray):
        return Key("array", "", "")
    return None


class BlueskyDocuments:
    """Turns a run's documents into Bluesky documents (see the module docstring).

    Call it with each ``(name, document)`` the orchestrator emits; it returns the Bluesky
    documents that follow, as ``(name, document)`` pairs (none for ``arrays``, a descriptor
    before a stream's first event).

    Args:
        validate: check every document against event-model's schemas as it is composed.
    """

    def __init__(self, validate: bool = True) -> None:
        self.validate = validate
        self._run: event_model.ComposeRunBundle | None = None
        self._keys: dict[str, dict[str, Key]] = {}  # stream -> its data keys, fixed by its first event
        self._descriptors: dict[tuple[str, tuple[Any, ...]], event_model.ComposeDescriptorBundle] = {}

    @property
    def descriptors(self) -> dict[str, str]:
        """The uid of each stream's latest descriptor in the current run."""
        return {stream: bundle.descriptor_doc["uid"] for (stream, _), bundle in self._descriptors.items()}

    def __call__(self, name: str, doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        if name == "start":
            return [("start", self._start(doc))]
        if self._run is None:
            return []
        if name in STREAMS:
            return self._event(name, doc)
        if name == "stop":
            return [("stop", self._stop(doc))]
        return []

    def _start(self, doc: dict[str, Any]) -> dict[str, Any]:
        metadata = {k: plain(v) for k, v in doc.items() if k not in ("time", "uid")}
        method = (doc.get("protocol") or {}).get("method")
        metadata.setdefault("plan_type", "ffzero-lab")
        metadata.setdefault("plan_name", f"train {method}" if method else "train")
        metadata.setdefault("hints", {"dimensions": [[["version"], "step"]]})
        # one Bluesky run per process: a resumed run's start is a new run (the same run_uid)
        uid = uuid.uuid4().hex if doc.get("resumed") or not doc.get("run_uid") else doc["run_uid"]
        self._run = event_model.compose_run(uid=uid, time=doc["time"], metadata=metadata, validate=self.validate)
        self._keys, self._descriptors = {}, {}
        return dict(self._run.start_doc)

    def _event(self, stream: str, doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        assert self._run is not None
        keys = self._keys.get(stream)
        if keys is None:
            keys = {k: key for k, key in STREAMS[stream].items() if k in doc}
            for k, value in doc.items():
                if k not in keys and k not in ("run_uid", "time", "record") and (key := _inferred(value)):
                    keys[k] = key
            self._keys[stream] = keys
        data = {k: plain(doc.get(k)) for k in keys}
        shapes = tuple(np.shape(data[k]) if keys[k].dtype == "array" and data[k] is not None else ()
                       for k in keys)
        out: list[tuple[str, dict[str, Any]]] = []
        bundle = self._descriptors.get((stream, shapes))
        if bundle is None:
            data_keys = {k: {"dtype": key.dtype, "dtype_numpy": _NUMPY[key.dtype], "shape": list(shape),
                             "units": key.units, "source": f"ffzero-lab:{stream}", "object_name": "ffzero",
                             **({"description": key.description} if key.description else {})}
                         for (k, key), shape in zip(keys.items(), shapes)}
            bundle = self._run.compose_descriptor(
                name=stream, data_keys=data_keys, time=doc["time"], object_keys={"ffzero": list(keys)},
                hints={"ffzero": {"fields": [k for k in keys if keys[k].dtype == "number"]}},
                validate=self.validate)
            self._descriptors[(stream, shapes)] = bundle
            out.append(("descriptor", dict(bundle.descriptor_doc)))
        event = bundle.compose_event(data=data, timestamps=dict.fromkeys(keys, doc["time"]), time=doc["time"],
                                     validate=self.validate)
        out.append(("event", dict(event)))
        return out

    def _stop(self, doc: dict[str, Any]) -> dict[str, Any]:
        assert self._run is not None
        status = "success" if doc.get("exit_status") == "complete" else "abort" if doc.get("aborted") else "fail"
        stop = dict(self._run.compose_stop(exit_status=status, reason=doc.get("reason") or "", time=doc["time"],
                                           validate=self.validate))
        stop.update({k: plain(v) for k, v in doc.items()
                     if k not in ("run_uid", "time", "exit_status", "reason", "aborted") and k not in stop})
        if self.validate:
            event_model.schema_validators[event_model.DocumentNames.stop].validate(stop)
        self._run = None
        return stop


class BlueskySink:
    """A run's sink that hands Bluesky documents to a Bluesky callback.

    Example: ``Orchestrator(..., sinks=[BlueskySink(LiveTable(["loss"], stream_name="step"))])``.

    Args:
        callback: called as ``callback(name, document)`` for every Bluesky document.
        validate: check every document against event-model's schemas.
    """

    def __init__(self, callback: Callback, validate: bool = True) -> None:
        self.callback = callback
        self.documents = BlueskyDocuments(validate)

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        for bluesky_name, bluesky_doc in self.documents(name, doc):
            self.callback(bluesky_name, bluesky_doc)
