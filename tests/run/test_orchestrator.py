"""The orchestrator: layer-local FFzero training through the PhysicalLayer contract."""

from __future__ import annotations

import numpy as np
import pytest

from ffzero_lab.config.protocol import parse_protocol
from ffzero_lab.data.datasets import load_digits
from ffzero_lab.run.orchestrator import Orchestrator, RunSeeds
from ffzero_lab.run.prepare import build_network


def digital_protocol(**train: object):
    doc = {
        "seed": 3,
        "data": {"set": "digits", "encoding": "raw", "train_limit": 600},
        "network": {"layers": 2, "width": 32, "activation": {"kind": "relu"}},
        "train": {"epochs": 3, "batch_size": 50, "lr": 0.01, "directions": 10, **train},
        "device": {"driver": "digital"},
    }
    return parse_protocol(doc, "<test>")


def run(protocol, sinks=()):
    dataset = load_digits()
    seeds = RunSeeds.from_seed(protocol.seed)
    network = build_network(protocol, "<test>", dataset.features, seeds)
    orch = Orchestrator(protocol, network, dataset, list(sinks), seeds)
    return orch, orch.run()


def test_digital_mlp_learns_well_above_chance() -> None:
    _, result = run(digital_protocol(epochs=30))
    assert result.test_accuracy > 0.6  # chance is 0.1
    assert all(acc > 0.5 for acc in result.layer_accuracy)


def test_same_seed_same_parameters_different_seed_differs() -> None:
    _, a = run(digital_protocol(epochs=1))
    _, b = run(digital_protocol(epochs=1))
    for pa, pb in zip(a.parameters, b.parameters):
        np.testing.assert_array_equal(pa, pb)
    other = digital_protocol(epochs=1).model_copy(update={"seed": 4})
    _, c = run(other)
    assert not np.array_equal(a.parameters[0], c.parameters[0])


def test_training_is_layer_local_and_documents_in_order() -> None:
    """While layer 1 trains, layer 0's parameters never change; documents come in order."""
    docs: list[tuple[str, dict]] = []
    snapshots: dict[int, list[np.ndarray]] = {0: [], 1: []}
    orch_holder: list[Orchestrator] = []

    def sink(name: str, doc: dict) -> None:
        docs.append((name, doc))
        if name == "step" and orch_holder:
            snapshots[doc["layer"]].append(orch_holder[0].network.layers[0].get_parameters())

    protocol = digital_protocol(epochs=2)
    dataset = load_digits()
    seeds = RunSeeds.from_seed(protocol.seed)
    network = build_network(protocol, "<test>", dataset.features, seeds)
    orch = Orchestrator(protocol, network, dataset, [sink], seeds)
    orch_holder.append(orch)
    result = orch.run()
    frozen = snapshots[1]
    assert len(frozen) == 2 * 12  # 600 samples / 50 per batch, 2 epochs
    assert all(np.array_equal(frozen[0], s) for s in frozen)
    assert not np.array_equal(snapshots[0][0], snapshots[0][-1])
    names = [n for n, _ in docs]
    assert names[0] == "start" and names[-1] == "stop"
    assert names.count("epoch") == 4
    assert docs[-1][1]["exit_status"] == "complete"
    assert docs[-1][1]["test_accuracy"] == pytest.approx(result.test_accuracy)


def test_evaluation_count() -> None:
    """2K settings x batch per step, plus the forward passes of monitoring and inference."""
    protocol = digital_protocol(epochs=1, directions=4)
    orch, result = run(protocol)
    n_train, n_test = 600, orch.x_test.shape[0]
    training = 2 * (2 * 4 * n_train)  # two layers, one epoch each
    monitoring = 2 * n_test  # one test pass per layer per epoch
    frozen = 1 * (n_train + n_test)  # layer 1's inputs through layer 0
    final = 2 * n_test
    assert result.evaluations == training + monitoring + frozen + final


def test_failed_run_emits_failed_stop() -> None:
    docs: list[tuple[str, dict]] = []
    protocol = digital_protocol(epochs=1)
    dataset = load_digits()
    seeds = RunSeeds.from_seed(protocol.seed)
    network = build_network(protocol, "<test>", dataset.features, seeds)

    def explode(inputs, settings):
        raise RuntimeError("instrument did not answer")

    network.layers[0].evaluate = explode  # type: ignore[method-assign]
    orch = Orchestrator(protocol, network, dataset, [lambda n, d: docs.append((n, d))], seeds)
    with pytest.raises(RuntimeError):
        orch.run()
    assert docs[-1][0] == "stop"
    assert docs[-1][1]["exit_status"] == "failed"
    assert "instrument did not answer" in docs[-1][1]["reason"]
