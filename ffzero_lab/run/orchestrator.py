"""The training orchestrator: FFzero, layer by layer, forward only (and the paper's baselines).

For ``ff-dd`` (FFzero), for each layer l in order (layers before l frozen, layers after l
ignored):

1. push the whole training set through the frozen layers once (``Network.layer_inputs``),
2. per mini-batch: draw K unit directions, issue the 2K perturbed settings as ONE batch to the
   layer (``PhysicalLayer.evaluate``), compute goodness and the margin loss on the host,
   form the directional-derivative estimate and let the optimiser write back new parameters,
3. after each epoch, read the layer's test accuracy from one forward pass.

The estimator of step 2 is the method (:mod:`ffzero_lab.ffzero.methods`); ``ff-ad`` swaps in exact
gradients, and the BP methods (``bp-dd``, ``bp-ad``) train every layer at once on the
readout cross-entropy with the same loop, optimiser and epochs.

Inference is one forward pass: every layer votes, the majority wins, the last layer breaks
ties. The orchestrator holds all run state; what it learns it reports as *documents*
(``start``, ``step``, ``epoch``, ``stop``: JSON-able dicts; ``taps``: one sample's tap beside
its prototype, for display; ``arrays``: named numpy arrays, for stores only) to the sinks it was
given, which record, display or publish them (:mod:`ffzero_lab.live.documents` turns them into
Bluesky documents).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.config.protocol import Protocol, TrainConfig
from ffzero_lab.core.network import Network
from ffzero_lab.data.datasets import Dataset
from ffzero_lab.ffzero.encoding import encode
from ffzero_lab.ffzero.goodness import TapGoodness, random_projection
from ffzero_lab.ffzero.methods import (
    GLOBAL_METHODS,
    Estimator,
    GlobalDD,
    LocalDD,
    Split,
)
from ffzero_lab.ffzero.objectives import objective_for
from ffzero_lab.ffzero.optimizers import learning_rate, make_optimizer
from ffzero_lab.ffzero.prototypes import max_separated_prototypes
from ffzero_lab.ffzero.settings import EstimatorSettings
from ffzero_lab.store.runstore import Checkpoint

#: A sink receives ``(name, document)`` for every document of a run.
Sink = Callable[[str, dict[str, Any]], None]


@dataclass
class RunResult:
    """What a finished run reports.

    Attributes:
        run_uid: the run's uuid (hex).
        test_accuracy: the test score in ``metric``: voted accuracy (FF) or the readout's (BP);
            R^2 for regression.
        layer_accuracy: ``(L,)`` accuracy of each layer's own vote on the test set (FF methods);
            for BP methods None for every layer but the last, which holds the readout's.
        evaluations: forward evaluations of the device: one input under one parameter setting.
        wall_s: wall time of training and evaluation, seconds.
        prototypes: per layer ``(C, ports)``.
        parameters: per layer ``(n,)`` final parameters.
    """

    run_uid: str
    test_accuracy: float
    layer_accuracy: list[float | None]
    metric: str
    evaluations: int
    wall_s: float
    prototypes: list[NDArray[np.float64]] = field(repr=False)
    parameters: list[NDArray[np.float64]] = field(repr=False)


def estimator_settings(train: TrainConfig) -> EstimatorSettings:
    """The plain values of the protocol's ``train`` section that the estimators read."""
    return EstimatorSettings(directions=train.directions, eps=train.eps, margin=train.margin,
                             negative_weight=train.negative_weight, negatives=train.negatives,
                             readout=train.readout, logit_scale=train.logit_scale)


@dataclass(frozen=True)
class RunSeeds:
    """Independent RNG streams derived from the protocol's one seed.

    Every stream is addressed by a counter (layer, epoch, step), never consumed in order, so
    that a resumed run draws exactly what the uninterrupted run would have.
    """

    device: int
    prototypes: np.random.SeedSequence
    directions: int
    shuffle: int
    projections: np.random.SeedSequence

    @classmethod
    def from_seed(cls, seed: int) -> "RunSeeds":
        root = np.random.SeedSequence(seed)
        device, prototypes, directions, shuffle, projections = root.spawn(5)  # the first 4 as ever
        first = (int(s.generate_state(1)[0]) for s in (device, directions, shuffle))
        return cls(next(first), prototypes, next(first), next(first), projections)

    def direction_seed(self, phase: int) -> int:
        """Seed of the directions of training phase ``phase`` (layer index, or -1 for BP)."""
        return int(np.random.SeedSequence([self.directions, phase + 1]).generate_state(1)[0])

    def order(self, phase: int, epoch: int, n: int) -> NDArray[np.intp]:
        """The shuffled sample order of one epoch of one training phase."""
        return np.random.default_rng([self.shuffle, phase + 1, epoch]).permutation(n)


@dataclass(frozen=True)
class Resume:
    """Where an interrupted run continues: its checkpoint and the step losses of that epoch."""

    checkpoint: Checkpoint
    epoch_losses: list[float]


def make_goodness(protocol: Protocol, network: Network, n_classes: int, seeds: RunSeeds) -> list[TapGoodness]:
    """How each layer's tap is scored: its prototypes, each layer from its own seed, and for a
    channel-wise layer its fixed random projections.

    A layer scored on its ports gets ``(C, ports)`` prototypes (in the sum-zero hyperplane when
    taps are centred). A channel-wise layer (``layer.channels`` G > 1) gets ``(G, d, ports / G)``
    projections and ``(C, d)`` prototypes, d = ``goodness.projection``.
    """
    g = protocol.goodness
    per_layer = seeds.prototypes.spawn(len(network))
    per_projection = seeds.projections.spawn(len(network))
    scored = []
    for i, layer in enumerate(network.layers):
        if layer.channels > 1:
            projection = random_projection(
                layer.channels, layer.ports // layer.channels, g.projection, per_projection[i]
            )
            prototypes = max_separated_prototypes(
                n_classes, g.projection, per_layer[i], centred=False, steps=g.prototype_steps
            )
            scored.append(TapGoodness(prototypes, g.centre, projection))
        else:
            prototypes = max_separated_prototypes(
                n_classes, layer.ports, per_layer[i], centred=g.centre, steps=g.prototype_steps
            )
            scored.append(TapGoodness(prototypes, g.centre))
    return scored


class Orchestrator:
    """Runs one protocol on one network.

    Args:
        protocol: the validated protocol.
        network: the device's layers (already built by its driver).
        dataset: train and test data.
        sinks: receivers of the run's documents.
        seeds: RNG streams; default derived from ``protocol.seed``.
        resume: continue an interrupted run from its checkpoint (its device already holds the
            parameters the checkpoint describes) instead of starting afresh.
        run_uid: the run's uid (a resumed run keeps its own).
    """

    def __init__(
        self,
        protocol: Protocol,
        network: Network,
        dataset: Dataset,
        sinks: Sequence[Sink] = (),
        seeds: RunSeeds | None = None,
        resume: Resume | None = None,
        run_uid: str | None = None,
    ) -> None:
        self.protocol = protocol
        self.network = network
        self.dataset = dataset
        self.sinks = list(sinks)
        self.seeds = seeds or RunSeeds.from_seed(protocol.seed)
        self.settings = estimator_settings(protocol.train)
        self.resume = resume
        self.run_uid = run_uid or uuid.uuid4().hex
        self.evaluations = 0
        self.objective = objective_for(dataset.task, dataset.width)
        self.goodness = make_goodness(protocol, network, self.objective.width, self.seeds)
        self.prototypes = [scored.prototypes for scored in self.goodness]
        limit_tr, limit_te = protocol.data.train_limit, protocol.data.test_limit
        self.x_train = encode(dataset.x_train[:limit_tr], protocol.data.encoding)
        self.y_train = dataset.y_train[:limit_tr]
        self.x_test = encode(dataset.x_test[:limit_te], protocol.data.encoding)
        self.y_test = dataset.y_test[:limit_te]

    def _emit(self, name: str, document: dict[str, Any]) -> None:
        document = {"run_uid": self.run_uid, "time": time.time(), **document}
        for sink in self.sinks:
            sink(name, document)

    def _emit_all(self, name: str, document: dict[str, Any]) -> None:
        """Every sink gets the document; one sink's failure neither stops the others nor hides
        the exception the run is already ending with."""
        document = {"run_uid": self.run_uid, "time": time.time(), **document}
        for sink in self.sinks:
            try:
                sink(name, document)
            except Exception:  # the run is failing already: that error is the one to report
                pass

    def _estimator(self, layer: int | None) -> Estimator:
        """The method's estimator for one layer (FF methods) or the whole network (BP methods)."""
        p = self.protocol
        if layer is None:
            train, test = Split(self.x_train, self.y_train), Split(self.x_test, self.y_test)
            if p.method == "bp-dd":
                return GlobalDD(self.network, train, test, self.objective, self.settings, self.seeds.direction_seed(-1))
            from ffzero_lab.ffzero.autodiff import GlobalAD  # lazy: imports TensorFlow

            return GlobalAD(self.network, train, test, self.objective, self.settings)
        x_train = self.network.layer_inputs(layer, self.x_train)
        x_test = self.network.layer_inputs(layer, self.x_test)
        self.evaluations += layer * (x_train.shape[0] + x_test.shape[0])
        train, test = Split(x_train, self.y_train), Split(x_test, self.y_test)
        goodness = self.goodness[layer]
        if p.method == "ff-dd":
            return LocalDD(self.network, layer, train, test, goodness, self.settings, self.objective,
                           self.seeds.direction_seed(layer))
        from ffzero_lab.ffzero.autodiff import LocalAD  # lazy: imports TensorFlow

        return LocalAD(self.network, layer, train, test, goodness, self.settings, self.objective)

    def train(self, layer: int | None) -> None:
        """Train one layer (FF methods; the layers before it stay as they are) or, with
        ``layer=None``, every layer at once (BP methods). Documents name the layer, -1 for all.

        Every step's document carries what the run store needs to resume after it: the
        parameters written and the optimiser's state (``record.checkpoint``), and, when
        measurements are recorded, how the step's settings can be rebuilt (direction seed and
        draw, base parameters, samples) with the raw readings.
        """
        t = self.protocol.train
        phase = -1 if layer is None else layer
        estimator = self._estimator(layer)
        optimizer = make_optimizer(t.optimizer, estimator.n, t.lr)
        first_epoch, first_step, losses = 0, 0, []
        if self.resume is not None:  # the device already holds the checkpoint's parameters
            ck = self.resume.checkpoint
            optimizer.restore(ck.optimizer)
            self.evaluations = ck.evaluations
            first_epoch, first_step, losses = ck.epoch, ck.step + 1, list(self.resume.epoch_losses)
            self.resume = None
        theta = estimator.parameters()
        n = estimator.train.x.shape[0]
        steps_per_epoch = -(-n // t.batch_size)
        total_steps = t.epochs * steps_per_epoch
        measure = self.protocol.record.measurements
        for epoch in range(first_epoch, t.epochs):
            order = self.seeds.order(phase, epoch, n) if t.shuffle else np.arange(n)
            started = time.perf_counter()
            evals_before = self.evaluations
            for step in range(first_step, steps_per_epoch):
                version = epoch * steps_per_epoch + step
                batch = order[step * t.batch_size : (step + 1) * t.batch_size]
                optimizer.lr = learning_rate(t.lr, t.schedule, version / total_steps, t.lr_final)
                t_start = time.time()
                result = estimator.loss_and_gradient(theta, batch, version)
                t_end = time.time()
                self.evaluations += result.evaluations
                base = theta
                theta = estimator.write(optimizer.step(theta, result.grad))
                losses.append(result.loss)
                record: dict[str, Any] = {"checkpoint": {"theta": theta, "optimizer": optimizer.state()}}
                if measure:
                    record.update(samples=batch, readings=result.readings, base=base, t_start=t_start, t_end=t_end,
                                  direction_seed=estimator.direction_seed, direction_draw=result.direction_draw,
                                  directions=t.directions if result.direction_draw is not None else 0,
                                  eps=t.eps if result.direction_draw is not None else None)
                self._emit("step", {"layer": phase, "epoch": epoch, "step": step, "version": version,
                                    "loss": result.loss, "accuracy": result.accuracy, "lr": optimizer.lr,
                                    "evaluations": self.evaluations, "record": record})
                if self.sinks and result.readings is not None:
                    self._emit("taps", self._taps(phase, result.readings, batch[0]))
            first_step = 0
            elapsed = time.perf_counter() - started
            rate = (self.evaluations - evals_before) / max(elapsed, 1e-9)
            accuracy, evaluations = estimator.test_accuracy()
            self.evaluations += evaluations
            self._emit("epoch", {"layer": phase, "epoch": epoch, "loss": float(np.mean(losses)) if losses else 0.0,
                                 "test_accuracy": accuracy, "evaluations": self.evaluations,
                                 "evaluations_per_s": rate})
            losses = []
        trained = range(len(self.network)) if layer is None else [layer]
        self._emit("arrays", {"arrays": {f"parameters/{i}": self.network.layers[i].get_parameters()
                                         for i in trained}})

    def _taps(self, phase: int, readings: NDArray[np.floating], sample: int) -> dict[str, Any]:
        """The ``taps`` document of a step: the batch's first sample as its layer sees it.

        Its reading is averaged over the step's 2K settings (DD: to first order in eps the tap
        at the step's base parameters; AD: the one reading). FF methods: ``tap`` is what the
        layer's prototypes are compared with, at unit length (``(D,)``), with ``goodness``
        ``(C,)`` and, for classification, the ``label`` and its ``prototype`` ``(D,)``. BP
        methods (``layer`` -1): the last layer's tap ``(P,)`` at unit length, and the label.
        """
        r = np.asarray(readings, dtype=np.float64)
        tap = r[:, 0].mean(axis=0) if r.ndim == 3 else r[0]
        label = self.y_train[sample]
        doc: dict[str, Any] = {"layer": phase}
        if phase < 0:
            doc["tap"] = tap / max(float(np.linalg.norm(tap)), 1e-30)
        else:
            scored = self.goodness[phase]
            doc["tap"], doc["goodness"] = scored.view(tap)
            if np.ndim(label) == 0:
                doc["prototype"] = scored.prototypes[int(label)]
        if np.ndim(label) == 0:
            doc["label"] = int(label)
        return doc

    def evaluate(self) -> tuple[float, list[float | None]]:
        """Test score of the method's prediction, and of each layer's own (FF methods).

        The score is the objective's metric: accuracy, or R^2 for regression. FF methods:
        every layer predicts from its goodness; classification takes the majority vote (the last
        layer breaks ties), regression the last layer's prediction. BP methods: the readout of
        the last layer; per-layer entries are None except the last, the readout's score.
        """
        taps = self.network.all_taps(self.x_test)
        self.evaluations += len(self.network) * self.x_test.shape[0]
        objective = self.objective
        if self.protocol.method in GLOBAL_METHODS:
            score = objective.score(objective.readout_predict(taps[-1], self.settings), self.y_test)
            return score, [None] * (len(self.network) - 1) + [score]
        predictions = [objective.local_predict(self.goodness[i](tap)) for i, tap in enumerate(taps)]
        per_layer: list[float | None] = [objective.score(p, self.y_test) for p in predictions]
        return objective.score(objective.combine(predictions), self.y_test), per_layer

    def run(self) -> RunResult:
        """Train every layer in order, then evaluate. Emits start, step, epoch and stop documents."""
        started = time.perf_counter()
        t = self.protocol.train
        self._emit(
            "start",
            {"protocol": self.protocol.model_dump(mode="json"),
             "device": self.network.description or {"driver": self.protocol.device.driver,
                                                    "settings": self.protocol.device.settings,
                                                    "seed": self.seeds.device},
             "resumed": self.resume is not None,
             "layers": [{"n_params": layer.n_params, "ports": layer.ports, "channels": layer.channels}
                        for layer in self.network.layers],
             "steps_per_epoch": -(-self.x_train.shape[0] // t.batch_size),
             "train_samples": int(self.x_train.shape[0]), "test_samples": int(self.x_test.shape[0])},
        )
        if self.resume is None:
            self._emit("arrays", {"arrays": {
                **{f"prototypes/{i}": p for i, p in enumerate(self.prototypes)},
                **{f"projections/{i}": g.projection for i, g in enumerate(self.goodness) if g.projection is not None},
                **{f"initial_parameters/{i}": layer.get_parameters() for i, layer in enumerate(self.network.layers)},
                **{f"device/{i}/{key}": value for i, layer in enumerate(self.network.layers)
                   for key, value in layer.state().items()},
            }})
        try:
            if self.protocol.method in GLOBAL_METHODS:
                self.train(None)
            else:
                first = 0 if self.resume is None else self.resume.checkpoint.layer
                for index in range(first, len(self.network)):
                    self.train(index)
            accuracy, per_layer = self.evaluate()
        except BaseException as exc:
            stop = {"exit_status": "failed", "reason": f"{type(exc).__name__}: {exc}",
                    "aborted": isinstance(exc, KeyboardInterrupt),  # Ctrl-C or a signal (Interrupted)
                    "wall_s": time.perf_counter() - started, "evaluations": self.evaluations}
            self._emit_all("stop", stop)
            raise
        result = RunResult(
            run_uid=self.run_uid,
            test_accuracy=accuracy,
            layer_accuracy=per_layer,
            metric=self.objective.metric,
            evaluations=self.evaluations,
            wall_s=time.perf_counter() - started,
            prototypes=self.prototypes,
            parameters=[layer.get_parameters() for layer in self.network.layers],
        )
        self._emit(
            "stop",
            {"exit_status": "complete", "metric": self.objective.metric, "test_accuracy": accuracy,
             "layer_accuracy": per_layer,
             "evaluations": self.evaluations, "wall_s": result.wall_s},
        )
        return result
