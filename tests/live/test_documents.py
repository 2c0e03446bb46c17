"""A run's documents are real Bluesky documents: every one passes event-model's schema validation,
as composed in process and as received from the wire, for FF and BP methods, on success, failure
and Ctrl-C."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import event_model
import numpy as np
import pytest
import zmq
from typer.testing import CliRunner

from ffzero_lab.cli.app import app
from ffzero_lab.config.protocol import parse_protocol
from ffzero_lab.data.datasets import load_digits
from ffzero_lab.live.documents import BlueskyDocuments, BlueskySink
from ffzero_lab.live.monitor import parse_message
from ffzero_lab.run.orchestrator import Orchestrator, RunSeeds
from ffzero_lab.run.prepare import build_network

from .test_live import QUICK, free_port

Docs = list[tuple[str, dict[str, Any]]]


def assert_valid_bluesky_run(docs: Docs) -> dict[str, list[dict[str, Any]]]:
    """Every document validates; the run is start, descriptors before their events, stop; events
    carry a timestamp for every key and count from 1 per stream. Returns each stream's event data."""
    for name, doc in docs:
        event_model.schema_validators[event_model.DocumentNames[name]].validate(doc)
        assert json.loads(json.dumps(doc)) == doc  # plain JSON: no numpy, nothing pickled
    names = [n for n, _ in docs]
    assert names[0] == "start" and names[-1] == "stop" and names.count("start") == names.count("stop") == 1
    start, stop = docs[0][1], docs[-1][1]
    descriptors: dict[str, dict[str, Any]] = {}
    streams: dict[str, list[dict[str, Any]]] = {}
    for name, doc in docs[1:-1]:
        if name == "descriptor":
            assert doc["run_start"] == start["uid"]
            for key in doc["data_keys"].values():
                assert {"dtype", "shape", "units", "source"} <= set(key)
            descriptors[doc["uid"]] = doc
        else:
            assert name == "event"
            descriptor = descriptors[doc["descriptor"]]  # came before
            assert set(doc["data"]) == set(doc["timestamps"]) == set(descriptor["data_keys"])
            for key, value in doc["data"].items():
                shape = descriptor["data_keys"][key]["shape"]
                assert list(np.shape(value)) == shape or value is None, key
            streams.setdefault(descriptor["name"], []).append(doc)
    for events in streams.values():
        assert [e["seq_num"] for e in events] == list(range(1, len(events) + 1))
    assert stop["run_start"] == start["uid"]
    assert stop["num_events"] == {name: len(events) for name, events in streams.items()}
    # any Bluesky consumer takes it: event-model's own router sees every document
    seen: list[str] = []
    router = event_model.RunRouter([lambda name, doc: ([lambda n, d: seen.append(n)], [])])
    for name, doc in docs:
        router(name, doc)
    assert seen == [n if n != "event" else "event_page" for n in names]  # it hands on events as pages
    return {name: [e["data"] for e in events] for name, events in streams.items()}


def protocol(method: str, epochs: int = 2) -> Any:
    return parse_protocol({
        "seed": 3, "method": method,
        "data": {"set": "digits", "encoding": "raw", "train_limit": 200, "test_limit": 50},
        "network": {"layers": 2, "width": 16, "activation": {"kind": "relu"}},
        "train": {"epochs": epochs, "batch_size": 50, "lr": 0.01, "directions": 4},
        "device": {"driver": "digital"},
    }, "<test>")


def train(method: str, *sinks: Any) -> None:
    p = protocol(method)
    dataset = load_digits()
    seeds = RunSeeds.from_seed(p.seed)
    Orchestrator(p, build_network(p, "<test>", dataset.features, seeds), dataset, list(sinks), seeds).run()


@pytest.mark.parametrize("method", ["ff-dd", "bp-dd", "ff-ad", "bp-ad"])
def test_every_document_of_a_run_validates(method: str) -> None:
    docs: Docs = []
    train(method, BlueskySink(lambda name, doc: docs.append((name, doc))))
    streams = assert_valid_bluesky_run(docs)
    start, stop = docs[0][1], docs[-1][1]
    assert start["protocol"]["method"] == method and start["uid"] == start["run_uid"]
    assert stop["exit_status"] == "success" and stop["reason"] == "" and 0 <= stop["test_accuracy"] <= 1
    layers = [-1] if method.startswith("bp") else [0, 1]
    assert [(e["layer"], e["epoch"]) for e in streams["epoch"]] == [(la, ep) for la in layers for ep in (0, 1)]
    assert len(streams["step"]) == len(streams["taps"]) == len(layers) * 2 * 4  # 200 samples / 50 per batch
    tap = streams["taps"][-1]
    assert np.linalg.norm(tap["tap"]) == pytest.approx(1.0) and 0 <= tap["label"] < 10
    if method.startswith("ff"):
        assert len(tap["goodness"]) == 10 and len(tap["prototype"]) == len(tap["tap"]) == 16
        assert tap["goodness"][tap["label"]] == pytest.approx(np.dot(tap["tap"], tap["prototype"]))
    descriptors = [d for n, d in docs if n == "descriptor"]
    step = next(d for d in descriptors if d["name"] == "step")["data_keys"]
    assert step["loss"] == {**step["loss"], "dtype": "number", "shape": [], "units": "dimensionless"}
    epoch = next(d for d in descriptors if d["name"] == "epoch")["data_keys"]
    assert epoch["evaluations_per_s"]["units"] == "1/s"


@pytest.mark.parametrize(("error", "status"), [(KeyboardInterrupt, "abort"), (RuntimeError, "fail")])
def test_a_run_that_ends_early_stops_with_abort_or_fail(error: type[BaseException], status: str) -> None:
    docs: Docs = []
    bluesky = BlueskySink(lambda name, doc: docs.append((name, doc)))

    def breaks(name: str, doc: dict[str, Any]) -> None:
        if name == "step" and doc["step"] == 2:
            raise error("stopped here")

    with pytest.raises(error):
        train("ff-dd", bluesky, breaks)
    assert_valid_bluesky_run(docs)
    assert docs[-1][1]["exit_status"] == status and "stopped here" in docs[-1][1]["reason"]


def test_a_resumed_run_is_a_new_bluesky_run_naming_its_run_uid() -> None:
    documents = BlueskyDocuments()
    [(name, start)] = documents("start", {"run_uid": "abc", "time": 1.0, "resumed": True, "protocol": {}})
    assert name == "start" and start["uid"] != "abc" and start["run_uid"] == "abc"
    assert documents("arrays", {"run_uid": "abc", "time": 1.0, "arrays": {"x": np.zeros(3)}}) == []


def test_fields_a_stream_does_not_declare_are_described_too() -> None:
    """A field a newer orchestrator adds to a document reaches the event, with a data key."""
    documents = BlueskyDocuments()
    documents("start", {"run_uid": "abc", "time": 1.0})
    out = documents("epoch", {"run_uid": "abc", "time": 2.0, "layer": 0, "epoch": 0, "loss": 0.5,
                              "val_accuracy": np.float64(0.75), "stopped_early": False, "record": {"x": 1}})
    (_, descriptor), (_, event) = out
    assert descriptor["data_keys"]["val_accuracy"]["dtype"] == "number"
    assert descriptor["data_keys"]["stopped_early"]["dtype"] == "boolean"
    assert event["data"] == {"layer": 0, "epoch": 0, "loss": 0.5, "val_accuracy": 0.75, "stopped_early": False}


def published(args: list[str]) -> tuple[Any, Docs]:
    """Run ``ffzero-lab ARGS --publish ADDRESS --wait-subscribers 1``; what it printed, and every
    document a subscriber received until the stop."""
    address = f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(address)
    sub.setsockopt(zmq.SUBSCRIBE, b"ffzero")
    received: Docs = []

    def collect() -> None:
        while sub.poll(30_000):
            name, doc = parse_message(sub.recv_multipart())
            received.append((name, doc))
            if name == "stop":
                return

    thread = threading.Thread(target=collect)
    thread.start()
    try:
        result = CliRunner().invoke(app, [*args, "--publish", address, "--wait-subscribers", "1"])
        thread.join(60)
    finally:
        sub.close(0)
        ctx.term()
    return result, received


def test_documents_on_the_wire_validate(tmp_path: Path) -> None:
    """What a dry run publishes (JSON over ZMQ) is the same valid Bluesky run."""
    result, received = published(["dry-run", *QUICK, "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    streams = assert_valid_bluesky_run(received)
    assert received[-1][1]["exit_status"] == "success"
    # 2 layers x 2 epochs x 14 steps (as test_live)
    assert [len(streams[s]) for s in ("step", "epoch", "taps")] == [56, 4, 56]


def test_bluesky_best_effort_callback_plots_a_run() -> None:
    """Bluesky's own BestEffortCallback takes the documents as they come and plots the hinted
    fields: the step stream against its version, the epoch stream against time."""
    pytest.importorskip("bluesky")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from bluesky.callbacks.best_effort import BestEffortCallback

    plt.close("all")
    bec = BestEffortCallback()
    try:
        train("ff-dd", BlueskySink(bec))
        figures = {plt.figure(n).get_label(): plt.figure(n) for n in plt.get_fignums()}
        assert set(figures) == {"accuracy loss lr vs version", "evaluations_per_s loss test_accuracy vs time"}
        steps = figures["accuracy loss lr vs version"]
        points = [len(line.get_xdata()) for ax in steps.axes for line in ax.get_lines()]
        assert points and set(points) == {2 * 2 * 4}  # every step of both layers
    finally:
        plt.close("all")


CNN = ["protocols/mnist_cnn.yaml", "--set", "data.set=digits", "--set", "network.conv.channels=4",
       "--set", "network.conv.kernel=3", "--set", "network.conv.stride=1", "--set", "network.width=32",
       "--set", "goodness.projection=8", "--set", "train.batch_size=32"]


@pytest.mark.parametrize(("args", "taps", "label"), [
    # a conv layer (channel 0's projection, d = 8) then a dense one (32 ports): two taps descriptors
    (CNN, [8, 32], True),
    (["protocols/regression_2d.yaml", "--set", "network.layers=2"], [32], False),  # no classes: no label
])
def test_conv_and_regression_runs_validate(tmp_path: Path, args: list[str], taps: list[int], label: bool) -> None:
    root = Path(__file__).resolve().parents[2]
    result, docs = published(["dry-run", str(root / args[0]), *args[1:], "--set", "train.epochs=1",
                              "--set", "data.train_limit=64", "--set", "data.test_limit=32",
                              "--runs-dir", str(tmp_path), "-q"])
    assert result.exit_code == 0, result.output
    events = assert_valid_bluesky_run(docs)["taps"]
    assert sorted({len(t["tap"]) for t in events}) == taps and all(("label" in t) is label for t in events)
    shapes = [d["data_keys"]["tap"]["shape"] for n, d in docs if n == "descriptor" and d["name"] == "taps"]
    assert shapes == [[size] for size in taps]
