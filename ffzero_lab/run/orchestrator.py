"""The training orchestrator: FFzero, layer by layer, forward only (and the paper's baselines).

For ``ff-dd`` (FFzero), for each layer l in order (layers before l frozen, layers after l
ignored):

1. push the whole training set through the frozen layers once (``Network.layer_inputs``),
2. per mini-batch: draw K unit directions, issue the 2K perturbed settings as ONE batch to the
   layer (``PhysicalLayer.evaluate``), compute goodness and the margin loss on the host,
   form the directional-derivative estimate and let the optimiser write back new parameters,
3. after each epoch, read the layer's test accuracy from one forward pass, and with a
   validation split (``data.validation``) its validation score from another: the layer stops
   when that has not improved for ``train.patience`` epochs, or when its evaluation budget
   (``train.budget``) is spent, and ends with its best-scoring parameters (``train.keep_best``).

With ``train.calibrate`` a DD layer first measures its loss noise and derivative scale with one
batched probe and trains with the eps and lr chosen from them (:mod:`ffzero_lab.ffzero.calibration`).

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

import dataclasses
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.config.protocol import Protocol, TrainConfig
from ffzero_lab.core.errors import ConfigError
from ffzero_lab.core.network import Network
from ffzero_lab.data.datasets import Dataset
from ffzero_lab.ffzero.calibration import Calibration, analyse_probe, blocked, calibrate, probe_settings
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
from ffzero_lab.ffzero.perturbation import DirectionSampler, orthogonal_misfit
from ffzero_lab.ffzero.prototypes import max_separated_prototypes
from ffzero_lab.ffzero.settings import EstimatorSettings
from ffzero_lab.run.stopping import EarlyStopping, phase_limit
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
                             readout=train.readout, logit_scale=train.logit_scale, difference=train.difference,
                             orthogonal=train.direction_kind == "orthogonal")


#: Draw number of a calibration probe's directions: far beyond any training step's, so a probe
#: never repeats a step's directions.
PROBE_DRAW = 2**62


def parameter_resolution(layer: object, fallback: float | None) -> float:
    """The smallest step of one of ``layer``'s parameters (rad for a phase), for calibration.

    What the layer states as ``parameter_resolution`` (a float attribute a driver may provide,
    e.g. a heater DAC's step as a phase); else ``fallback`` (``train.calibration.resolution``);
    else 0 (continuous).
    """
    stated = getattr(layer, "parameter_resolution", None)
    if stated is not None:
        return float(stated)
    return float(fallback) if fallback is not None else 0.0


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
    validation: int = 0

    @classmethod
    def from_seed(cls, seed: int) -> "RunSeeds":
        root = np.random.SeedSequence(seed)
        device, prototypes, directions, shuffle, projections, validation = root.spawn(6)  # the first 5 as ever
        first = (int(s.generate_state(1)[0]) for s in (device, directions, shuffle, validation))
        return cls(next(first), prototypes, next(first), next(first), projections, next(first))

    def validation_split(self, n: int, fraction: float) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """``(training indices, validation indices)`` of ``n`` samples, ``round(fraction n)`` held
        out (at least one if ``fraction`` > 0), each sorted; fixed by the seed."""
        held = 0 if fraction <= 0 else min(max(1, round(fraction * n)), n - 1)
        order = np.random.default_rng(self.validation).permutation(n)
        return np.sort(order[held:]), np.sort(order[:held])

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
        #: the network's lab-time ledger when the last step was recorded, s (None: it keeps none)
        self._instrument_mark = network.instrument_time_s()
        self.objective = objective_for(dataset.task, dataset.width)
        self.goodness = make_goodness(protocol, network, self.objective.width, self.seeds)
        self.prototypes = [scored.prototypes for scored in self.goodness]
        limit_tr, limit_te = protocol.data.train_limit, protocol.data.test_limit
        x_train = encode(dataset.x_train[:limit_tr], protocol.data.encoding)
        y_train = dataset.y_train[:limit_tr]
        keep, held = self.seeds.validation_split(x_train.shape[0], protocol.data.validation)
        #: Indices into the data set's training samples of those trained on (all without a validation split).
        self.train_index = keep
        self.x_train, self.y_train = x_train[keep], y_train[keep]
        self.x_val, self.y_val = x_train[held], y_train[held]
        #: Per training phase: calibration, early stopping and budget outcome (plain values).
        self.phases: dict[int, dict[str, Any]] = {}
        #: Test accuracy of the soft vote (classification, FF methods), whichever vote the run reports.
        self.soft_vote_accuracy: float | None = None
        self.x_test = encode(dataset.x_test[:limit_te], protocol.data.encoding)
        self.y_test = dataset.y_test[:limit_te]
        self._check_orthogonal()

    def _check_orthogonal(self) -> None:
        """K orthonormal directions need K dimensions: refuse, before anything trains, a layer (or,
        trained channel-wise, a channel's block) with fewer parameters than ``train.directions``.

        Raises:
            ConfigError: naming ``train.direction_kind`` and the layer.
        """
        t = self.protocol.train
        if t.direction_kind != "orthogonal" or not self.protocol.method.endswith("-dd"):
            return
        if self.protocol.method == "bp-dd":
            blocks = [("the network", sum(layer.n_params for layer in self.network.layers), 1)]
        else:
            blocks = [(f"layer {i}", layer.n_params, max(1, self.goodness[i].channels))
                      for i, layer in enumerate(self.network.layers)]
        for where, n, groups in blocks:
            problem = orthogonal_misfit(n, groups, t.directions)
            if problem:
                raise ConfigError(f"{problem} ({where}): lower train.directions or use gaussian directions",
                                  self.protocol.source, "train.direction_kind")

    def _instrument_time(self) -> dict[str, float]:
        """``{"instrument_s": ...}``: the instrument time spent since the last step (this step,
        with the validation and test passes before it), s; empty when the network keeps no ledger."""
        now = self.network.instrument_time_s()
        if now is None or self._instrument_mark is None:
            return {}
        spent, self._instrument_mark = now - self._instrument_mark, now
        return {"instrument_s": spent}

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

    def _estimator(self, layer: int | None) -> tuple[Estimator, Split]:
        """The method's estimator for one layer (FF methods) or the whole network (BP methods),
        and the validation split as that layer sees it (empty without one)."""
        estimator = self._make_estimator(layer)
        if layer is None or self.x_val.shape[0] == 0:
            return estimator, Split(self.x_val, self.y_val)
        self.evaluations += layer * self.x_val.shape[0]
        return estimator, Split(self.network.layer_inputs(layer, self.x_val), self.y_val)

    def _make_estimator(self, layer: int | None) -> Estimator:
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
        phases_left = 1 if layer is None else len(self.network) - layer
        estimator, validation = self._estimator(layer)
        first_epoch, first_step, losses = 0, 0, []
        resume, self.resume = self.resume, None
        if resume is not None:  # the device already holds the checkpoint's parameters
            self.evaluations = resume.checkpoint.evaluations
            ck = resume.checkpoint
            first_epoch, first_step, losses = ck.epoch, ck.step + 1, list(resume.epoch_losses)
        phase_start = self.evaluations
        if resume is not None and "phase_start" in resume.checkpoint.optimizer:
            phase_start = int(resume.checkpoint.optimizer["phase_start"])
        limit = phase_limit(phase_start, t.budget.evaluations_per_layer, t.budget.evaluations, phases_left)
        lr, eps, calibration = t.lr, t.eps, None
        if t.calibrate and estimator.direction_seed is not None:
            saved = resume.checkpoint.optimizer if resume is not None else {}
            if "calibrated_eps" in saved:  # a resumed phase keeps what it measured before
                lr, eps = float(saved["calibrated_lr"]), float(saved["calibrated_eps"])
            else:
                calibration = self._calibrate(estimator, phase)
                lr, eps = calibration.lr, calibration.eps
            estimator.config = dataclasses.replace(estimator.config, eps=eps)  # type: ignore[attr-defined]
        optimizer = make_optimizer(t.optimizer, estimator.n, lr)
        if resume is not None:
            optimizer.restore(resume.checkpoint.optimizer)
        block = t.calibrate and t.calibration.block and calibration is not None
        stopping = EarlyStopping(t.patience) if validation.x.shape[0] else None
        if stopping is not None and resume is not None:  # the best epoch before the interruption counts
            stopping.restore(resume.checkpoint.optimizer)
        theta = estimator.parameters()
        n = estimator.train.x.shape[0]
        steps_per_epoch = -(-n // t.batch_size)
        total_steps = t.epochs * steps_per_epoch
        measure = self.protocol.record.measurements
        outcome: dict[str, Any] = {"eps": eps, "lr": lr, "stopped": "epochs", "blocked_steps": 0}
        if calibration is not None:
            outcome["calibration"] = calibration.as_dict()
        self.phases[phase] = outcome
        # kept with every checkpoint beside the optimiser's state (with the early stopping's, below),
        # so that a resumed phase goes on as the uninterrupted one would
        saved_state = {"calibrated_eps": np.array(eps), "calibrated_lr": np.array(lr)} if t.calibrate else {}
        if limit is not None:
            saved_state["phase_start"] = np.array(phase_start)
        for epoch in range(first_epoch, t.epochs):
            order = self.seeds.order(phase, epoch, n) if t.shuffle else np.arange(n)
            started = time.perf_counter()
            evals_before = self.evaluations
            for step in range(first_step, steps_per_epoch):
                if limit is not None and self.evaluations >= limit:  # reached before a resume
                    outcome["stopped"] = "budget"
                    break
                version = epoch * steps_per_epoch + step
                batch = order[step * t.batch_size : (step + 1) * t.batch_size]
                progress = version / total_steps if limit is None else max(
                    version / total_steps, (self.evaluations - phase_start) / max(limit - phase_start, 1))
                optimizer.lr = learning_rate(lr, t.schedule, progress, t.lr_final)
                t_start = time.time()
                result = estimator.loss_and_gradient(theta, batch, version)
                t_end = time.time()
                self.evaluations += result.evaluations
                base = theta
                candidate = optimizer.step(theta, result.grad)
                if calibration is not None and block and self._refused(estimator, candidate, batch, result,
                                                                       calibration):
                    outcome["blocked_steps"] += 1
                else:
                    theta = estimator.write(candidate)
                losses.append(result.loss)
                kept = {**optimizer.state(), **saved_state, **(stopping.state() if stopping is not None else {})}
                record: dict[str, Any] = {"checkpoint": {"theta": theta, "optimizer": kept}}
                if measure:
                    record.update(samples=self.train_index[batch], readings=result.readings, base=base,
                                  t_start=t_start, t_end=t_end,
                                  direction_seed=estimator.direction_seed, direction_draw=result.direction_draw,
                                  directions=t.directions if result.direction_draw is not None else 0,
                                  eps=eps if result.direction_draw is not None else None,
                                  difference=t.difference)
                self._emit("step", {"layer": phase, "epoch": epoch, "step": step, "version": version,
                                    "loss": result.loss, "accuracy": result.accuracy, "lr": optimizer.lr,
                                    "evaluations": self.evaluations, "record": record,
                                    **self._instrument_time()})
                if self.sinks and result.readings is not None:
                    self._emit("taps", self._taps(phase, result.readings, batch[0]))
                if limit is not None and self.evaluations >= limit:
                    outcome["stopped"] = "budget"
                    break
            first_step = 0
            elapsed = time.perf_counter() - started
            rate = (self.evaluations - evals_before) / max(elapsed, 1e-9)
            accuracy, evaluations = estimator.test_accuracy()
            self.evaluations += evaluations
            document = {"layer": phase, "epoch": epoch, "loss": float(np.mean(losses)) if losses else 0.0,
                        "test_accuracy": accuracy, "evaluations": self.evaluations, "evaluations_per_s": rate}
            if stopping is not None:
                score, val_loss, evaluations = estimator.validate(validation)
                self.evaluations += evaluations
                stopping.update(epoch, score, val_loss, theta)
                document.update(validation_accuracy=score, validation_loss=val_loss, evaluations=self.evaluations,
                                best_epoch=stopping.best_epoch)
            self._emit("epoch", document)
            losses = []
            if outcome["stopped"] == "budget":
                break
            if stopping is not None and stopping.should_stop:
                outcome["stopped"] = "patience"
                break
        if stopping is not None:
            outcome.update(best_epoch=stopping.best_epoch, validation_accuracy=stopping.best_score)
            if t.keep_best and stopping.best_theta is not None and not np.array_equal(stopping.best_theta, theta):
                estimator.write(stopping.best_theta)
        outcome["evaluations"] = self.evaluations
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

    def _calibrate(self, estimator: Estimator, phase: int) -> Calibration:
        """Measure one phase's loss noise and derivative scale with ONE batched probe on its first
        mini-batch, and choose eps and lr from them (recorded as ``calibration/<phase>/<name>``)."""
        t, c = self.protocol.train, self.protocol.train.calibration
        groups = getattr(estimator, "groups", 1)
        sampler = DirectionSampler(estimator.n, c.pairs, int(estimator.direction_seed or 0), groups)
        theta = estimator.parameters()
        batch = self.seeds.order(phase, 0, estimator.train.x.shape[0])[: t.batch_size]
        settings = probe_settings(theta, sampler.draw(PROBE_DRAW), t.eps, c.repeats)
        losses, evaluations = estimator.batch_losses(settings, batch)
        self.evaluations += evaluations
        layers = self.network.layers if phase < 0 else [self.network.layers[phase]]
        resolution = max(parameter_resolution(layer, c.resolution) for layer in layers)
        chosen = calibrate(analyse_probe(losses, c.repeats, t.eps), n=estimator.n, block_size=estimator.n // groups,
                           directions=t.directions, optimizer=t.optimizer, lr=t.lr, target_step=c.target_step,
                           resolution=resolution, snr=c.snr, dac_steps=c.dac_steps, eps_min=c.eps_min,
                           eps_max=c.eps_max, difference=t.difference)
        self._emit("arrays", {"arrays": {f"calibration/{phase}/{key}": np.array([value])  # (1,): every export takes it
                                         for key, value in chosen.as_dict().items() if key != "limited_by"}})
        return chosen

    def _refused(self, estimator: Estimator, candidate: NDArray[np.float64], batch: NDArray[np.intp],
                 result: Any, calibration: Calibration) -> bool:
        """Evaluate a step's new parameters on its batch (as a setting: the device keeps its
        parameters); True if the loss rose beyond the noise allowance over the loss before it."""
        losses, evaluations = estimator.batch_losses(candidate[None], batch)
        self.evaluations += evaluations
        centre = result.centre if result.centre is not None else result.loss
        return blocked(float(losses[0]), centre, calibration.noise, self.protocol.train.calibration.block_sigmas)

    def evaluate(self) -> tuple[float, list[float | None]]:
        """Test score of the method's prediction, and of each layer's own (FF methods).

        The score is the objective's metric: accuracy, or R^2 for regression. FF methods:
        every layer predicts from its goodness; classification takes the majority vote (the last
        layer breaks ties; ``goodness.vote: sum``: the class of the largest goodness summed over
        layers), regression the last layer's prediction. BP methods: the readout of
        the last layer; per-layer entries are None except the last, the readout's score.
        """
        taps = self.network.all_taps(self.x_test)
        self.evaluations += len(self.network) * self.x_test.shape[0]
        objective = self.objective
        if self.protocol.method in GLOBAL_METHODS:
            score = objective.score(objective.readout_predict(taps[-1], self.settings), self.y_test)
            return score, [None] * (len(self.network) - 1) + [score]
        goodness = [self.goodness[i](tap) for i, tap in enumerate(taps)]
        predictions = [objective.local_predict(g) for g in goodness]
        per_layer: list[float | None] = [objective.score(p, self.y_test) for p in predictions]
        if objective.metric == "accuracy":  # the soft vote, from the same taps: argmax_c sum_l G_l[c]
            self.soft_vote_accuracy = objective.score(objective.local_predict(np.sum(goodness, axis=0)), self.y_test)
            if self.protocol.goodness.vote == "sum":
                return self.soft_vote_accuracy, per_layer
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
             "train_samples": int(self.x_train.shape[0]), "test_samples": int(self.x_test.shape[0]),
             "validation_samples": int(self.x_val.shape[0])},
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
             "layer_accuracy": per_layer, "phases": {str(k): v for k, v in self.phases.items()},
             "soft_vote_accuracy": self.soft_vote_accuracy,
             "evaluations": self.evaluations, "wall_s": result.wall_s},
        )
        return result
