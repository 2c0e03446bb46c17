"""Validation split, early stopping, evaluation budgets, calibration and the estimator choices in a run."""

from __future__ import annotations

import numpy as np
import pytest

from ffzero_lab.config.protocol import parse_protocol
from ffzero_lab.core.errors import ConfigError
from ffzero_lab.data.datasets import load_digits
from ffzero_lab.run.orchestrator import Orchestrator, RunSeeds
from ffzero_lab.run.prepare import build_network
from ffzero_lab.run.stopping import EarlyStopping, phase_limit


def protocol(data: dict | None = None, **train: object):
    doc = {
        "seed": 3,
        "data": {"set": "digits", "encoding": "raw", "train_limit": 600, **(data or {})},
        "network": {"layers": 2, "width": 32, "activation": {"kind": "relu"}},
        "train": {"epochs": 3, "batch_size": 50, "lr": 0.01, "directions": 4, **train},
        "device": {"driver": "digital"},
    }
    return parse_protocol(doc, "<test>")


def run(p):
    docs: list[tuple[str, dict]] = []
    dataset = load_digits()
    seeds = RunSeeds.from_seed(p.seed)
    network = build_network(p, "<test>", dataset.features, seeds)
    orch = Orchestrator(p, network, dataset, [lambda n, d: docs.append((n, d))], seeds)
    return orch, orch.run(), docs


# -- pieces ---------------------------------------------------------------------------------


def test_early_stopping_keeps_best_and_counts_patience() -> None:
    s = EarlyStopping(patience=2)
    assert s.update(0, 0.5, 1.0, np.array([0.0]))
    assert s.update(1, 0.5, 0.9, np.array([1.0]))  # same score, lower loss: better
    assert not s.update(2, 0.4, 0.5, np.array([2.0]))
    assert not s.should_stop
    assert not s.update(3, 0.5, 0.95, np.array([3.0]))
    assert s.should_stop and s.best_epoch == 1 and s.best_theta.tolist() == [1.0]
    assert not EarlyStopping(None, stale=10 ** 6).should_stop


def test_early_stopping_state_round_trips() -> None:
    s = EarlyStopping(patience=3)
    assert s.state() == {}
    s.update(0, 0.5, 1.0, np.array([1.0, 2.0]))
    s.update(1, 0.4, 1.0, np.array([3.0, 4.0]))
    again = EarlyStopping(patience=3)
    again.restore(s.state())
    assert (again.best_score, again.best_loss, again.best_epoch, again.stale) == (0.5, 1.0, 0, 1)
    assert again.best_theta.tolist() == [1.0, 2.0]


def test_phase_limit() -> None:
    assert phase_limit(100, None, None, 2) is None
    assert phase_limit(100, 50, None, 2) == 150
    assert phase_limit(100, None, 1100, 2) == 600  # an equal share of what is left
    assert phase_limit(100, 300, 1100, 2) == 400
    assert phase_limit(2000, None, 1100, 1) == 2000  # spent already: stop after the first step


def test_validation_split_is_fixed_by_seed_and_disjoint() -> None:
    a = RunSeeds.from_seed(1).validation_split(100, 0.2)
    b = RunSeeds.from_seed(1).validation_split(100, 0.2)
    c = RunSeeds.from_seed(2).validation_split(100, 0.2)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    assert len(a[1]) == 20 and len(a[0]) == 80 and not set(a[0]) & set(a[1])
    assert len(RunSeeds.from_seed(1).validation_split(100, 0.0)[1]) == 0
    # the streams that existed before the validation split are unchanged
    old = np.random.SeedSequence(1).spawn(5)
    assert RunSeeds.from_seed(1).shuffle == int(old[3].generate_state(1)[0])


def test_patience_needs_a_validation_split() -> None:
    with pytest.raises(ConfigError, match="data.validation"):
        protocol(patience=3)


# -- in a run -------------------------------------------------------------------------------


def test_validation_held_out_scored_and_counted() -> None:
    orch, result, docs = run(protocol({"validation": 0.25}, epochs=1))
    assert orch.x_train.shape[0] == 450 and orch.x_val.shape[0] == 150
    epochs = [d for n, d in docs if n == "epoch"]
    assert all(0.0 <= d["validation_accuracy"] <= 1.0 and "validation_loss" in d for d in epochs)
    n_train, n_val, n_test = 450, 150, orch.x_test.shape[0]
    training = 2 * (2 * 4 * n_train)
    monitoring = 2 * (n_test + n_val)  # one test and one validation pass per layer per epoch
    frozen = 1 * (n_train + n_test + n_val)
    final = 2 * n_test
    assert result.evaluations == training + monitoring + frozen + final


def test_patience_stops_a_layer_and_keeps_its_best_parameters() -> None:
    params: dict[tuple[int, int], np.ndarray] = {}
    p = protocol({"validation": 0.25}, epochs=40, patience=2, lr=0.05)
    dataset = load_digits()
    seeds = RunSeeds.from_seed(p.seed)
    network = build_network(p, "<test>", dataset.features, seeds)
    docs: list[tuple[str, dict]] = []

    def sink(name, doc):
        docs.append((name, doc))
        if name == "epoch":
            params[doc["layer"], doc["epoch"]] = network.layers[doc["layer"]].get_parameters().copy()

    orch = Orchestrator(p, network, dataset, [sink], seeds)
    result = orch.run()
    for layer in (0, 1):
        epochs = [d for n, d in docs if n == "epoch" and d["layer"] == layer]
        best = orch.phases[layer]["best_epoch"]
        scores = [d["validation_accuracy"] for d in epochs]
        assert orch.phases[layer]["stopped"] == "patience"
        assert len(epochs) < 40 and len(epochs) - 1 - best == 2  # two epochs without improvement
        assert scores[best] == max(scores)
        np.testing.assert_array_equal(result.parameters[layer], params[layer, best])


def test_evaluation_budget_per_layer_and_total() -> None:
    orch, result, docs = run(protocol(epochs=50, budget={"evaluations_per_layer": 20_000}))
    assert [orch.phases[i]["stopped"] for i in (0, 1)] == ["budget", "budget"]
    counts = [d["evaluations"] for n, d in docs if n == "step" and d["layer"] == 0]
    assert counts[-2] < 20_000 <= counts[-1]  # layer 0 started at 0: it stopped after the step that reached it
    orch, result, docs = run(protocol(epochs=50, budget={"evaluations": 60_000}))
    assert result.evaluations < 60_000 + 2 * 4 * 50 + 2 * 1000  # overshoot: one step, the final passes
    assert orch.phases[1]["stopped"] == "budget"


def test_calibration_recorded_and_used() -> None:
    orch, result, docs = run(protocol(epochs=1, calibrate=True, eps=0.05,
                                      calibration={"eps_min": 0.002, "target_step": 0.004, "resolution": 1e-5,
                                                   "dac_steps": 2}))
    arrays = {k: v for n, d in docs if n == "arrays" for k, v in d["arrays"].items()}
    for layer in (0, 1):
        cal = orch.phases[layer]["calibration"]
        assert cal["noise"] == 0.0 and cal["slope"] > 0  # a digital layer: no noise
        # resolution floor 2 x 1e-5 x sqrt(n) against eps_min 0.002
        n = orch.network.layers[layer].n_params
        assert cal["eps"] == pytest.approx(max(0.002, 2e-5 * np.sqrt(n)))
        assert cal["lr"] == 0.004 == orch.phases[layer]["lr"]  # adam: the target step
        assert arrays[f"calibration/{layer}/eps"].tolist() == [cal["eps"]]
    steps = [d for n, d in docs if n == "step"]
    assert {d["lr"] for d in steps} == {0.004}
    # the probe: 8 repeats + 2 x 4 pairs of one batch of 50, per layer
    assert result.evaluations == run(protocol(epochs=1))[1].evaluations + 2 * 16 * 50


def test_blocking_counts_its_evaluations() -> None:
    orch, result, _ = run(protocol(epochs=1, calibrate=True, calibration={"block": True}))
    plain = run(protocol(epochs=1, calibrate=True))[1]
    steps = 2 * 12
    assert result.evaluations == plain.evaluations + steps * 50
    assert all(0 <= orch.phases[i]["blocked_steps"] <= 12 for i in (0, 1))


def test_forward_differences_cost_k_plus_one() -> None:
    orch, result, docs = run(protocol(epochs=1, difference="forward", direction_kind="orthogonal"))
    central = run(protocol(epochs=1))[1]
    assert central.evaluations - result.evaluations == 2 * (4 - 1) * 600
    assert result.test_accuracy > 0.2


def test_soft_vote_reported_and_selectable() -> None:
    orch, result, docs = run(protocol(epochs=2))
    stop = docs[-1][1]
    assert stop["soft_vote_accuracy"] == orch.soft_vote_accuracy is not None
    p = protocol(epochs=2)
    p = p.model_copy(update={"goodness": p.goodness.model_copy(update={"vote": "sum"})})
    orch_sum, result_sum, _ = run(p)
    assert result_sum.test_accuracy == orch_sum.soft_vote_accuracy == pytest.approx(orch.soft_vote_accuracy)
    # by hand: argmax of the goodness summed over layers
    taps = orch.network.all_taps(orch.x_test)
    summed = sum(orch.goodness[i](tap) for i, tap in enumerate(taps))
    assert orch.soft_vote_accuracy == pytest.approx(float(np.mean(summed.argmax(axis=1) == orch.y_test)))
