"""Figures of one recorded run (``ffzero-lab plot``), drawn with matplotlib's Agg backend (no display).

Three files, ``run-<id>-<what>.<png|svg|pdf>``, each titled with the run, its protocol's name,
method and training settings (:func:`run_title`: ``K`` directions and ``eps`` for the
directional-derivative methods, ``lr``):

* ``loss``: every step's loss (thin line) and each epoch's mean step loss (dots, at the
  epoch's last step) against the step number within each layer's training (the step's
  ``version``), one colour per layer; layer -1, "network", is the whole network of a BP method.
* ``accuracy``: each layer's own test accuracy after every epoch (a BP method's readout as
  "network").
* ``taps`` (FF methods, with readings recorded): tap readings against prototypes, one row per
  layer, from the last epoch of the layer that has readings recorded. Left: the layer's
  prototypes ``(C, ports)``. Right: the mean, per class, of that epoch's readings (every step,
  all 2K perturbed settings of each of its B samples: every training sample 2K times, the
  parameters moving on as the epoch goes), each reading centred over its ports first if the
  protocol's goodness is centred and scaled to unit length, so that its dot product with a
  prototype is its goodness. A class is a sample's label when the run's data set can be loaded
  (labels are not stored; the recorded sample indices pick them from the training set), else
  the class the reading's goodness predicts. Row labels give the readings per class and the
  cosine of the class's mean reading with its prototype: near 1 where the layer has learnt to
  point that class at its prototype. A channel-wise (conv) layer's readings are its channels'
  projected maps ``R_g z_g`` (each channel one reading), against its ``(C, d)`` prototypes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.core.errors import DataError
from ffzero_lab.data.datasets import load_dataset
from ffzero_lab.ffzero.goodness import TapGoodness
from ffzero_lab.ffzero.goodness import centre as centre_taps
from ffzero_lab.store.runstore import RunStore

_TINY = 1e-30


def layer_label(layer: int) -> str:
    """``layer 0`` ..., or ``network`` for -1 (a BP method trains every layer at once)."""
    return "network" if layer < 0 else f"layer {layer}"


def epoch_ends(steps: Sequence[dict[str, Any]]) -> dict[tuple[int, int], int]:
    """``(layer, epoch) -> version`` of the epoch's last recorded step."""
    ends: dict[tuple[int, int], int] = {}
    for s in steps:
        key = (s["layer"], s["epoch"])
        ends[key] = max(ends.get(key, s["version"]), s["version"])
    return ends


@dataclass(frozen=True)
class TapSummary:
    """A layer's tap readings grouped by class, next to its prototypes.

    Attributes:
        layer: the layer.
        epoch: the epoch the readings were taken in.
        prototypes: ``(C, P)`` unit prototypes.
        means: ``(C, P)`` mean unit (centred) reading per class; NaN for a class with none.
        counts: ``(C,)`` readings per class.
        cosine: ``(C,)`` cosine of each class's mean reading with its prototype (NaN if none).
        by_label: True if the classes are the samples' labels, False if predicted classes.
    """

    layer: int
    epoch: int
    prototypes: NDArray[np.float64]
    means: NDArray[np.float64]
    counts: NDArray[np.int64]
    cosine: NDArray[np.float64]
    by_label: bool


def class_sums(readings: NDArray[np.floating], prototypes: NDArray[np.floating], centred: bool,
               labels: NDArray[np.integer] | None = None) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Sum and number of one step's unit readings per class (see the module docstring).

    Args:
        readings: ``(2K, B, P)`` (DD) or ``(B, P)`` (AD) tap readings, any unit.
        prototypes: ``(C, P)`` unit prototypes.
        centred: centre each reading over its ports (the protocol's ``goodness.centre``).
        labels: ``(B,)`` the samples' classes; None groups by the predicted class.

    Returns:
        ``(C, P)`` sums of unit readings and ``(C,)`` counts.
    """
    p = np.asarray(prototypes, dtype=np.float64)
    z = np.asarray(readings, dtype=np.float64)
    z = z.reshape(-1, *z.shape[-2:])  # (S, B, P)
    z = centre_taps(z) if centred else z
    z = z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), _TINY)
    classes = (z @ p.T).argmax(-1) if labels is None else np.broadcast_to(np.asarray(labels), z.shape[:2])
    flat, cls = z.reshape(-1, z.shape[-1]), classes.reshape(-1)
    keep = cls < p.shape[0]
    sums = np.zeros_like(p)
    np.add.at(sums, cls[keep], flat[keep])
    return sums, np.bincount(cls[keep], minlength=p.shape[0]).astype(np.int64)


def tap_summary(steps: Iterable[tuple[NDArray[np.floating], NDArray[np.integer] | None]],
                prototypes: NDArray[np.floating], centred: bool, layer: int = 0, epoch: int = 0) -> TapSummary:
    """Mean unit reading per class over ``steps``: ``(readings, labels or None)`` pairs as
    :func:`class_sums` takes them (all with labels, or all without)."""
    p = np.asarray(prototypes, dtype=np.float64)
    sums, counts, by_label = np.zeros_like(p), np.zeros(p.shape[0], dtype=np.int64), True
    for readings, labels in steps:
        s, n = class_sums(readings, p, centred, labels)
        sums, counts, by_label = sums + s, counts + n, labels is not None
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts[:, None]
        cosine = np.einsum("cp,cp->c", means, p) / np.linalg.norm(means, axis=-1)
    return TapSummary(layer, epoch, p, means, counts, cosine, by_label)


def training_labels(protocol: dict[str, Any], data_dir: Path | None) -> NDArray[np.int64] | None:
    """The labels of the run's training set as the run saw it (first ``data.train_limit``), or
    None when its data set cannot be loaded here."""
    try:
        dataset = load_dataset(protocol["data"]["set"], data_dir)
    except DataError:
        return None
    return dataset.y_train[: protocol["data"].get("train_limit")]


def last_epoch_readings(store: RunStore, run_id: int, steps: Sequence[dict[str, Any]],
                        layer: int) -> tuple[int, list[tuple[NDArray[np.float32], NDArray[np.int32]]]]:
    """``(epoch, [(readings, samples) per step])`` of ``layer``'s last epoch with readings
    recorded (``(-1, [])`` if none)."""
    for epoch in sorted({s["epoch"] for s in steps if s["layer"] == layer}, reverse=True):
        found = []
        for s in steps:
            if s["layer"] == layer and s["epoch"] == epoch:
                try:
                    m = store.measurement(run_id, layer, s["version"])
                except KeyError:
                    continue
                if m["readings"] is not None:
                    found.append((m["readings"], m["samples"]))
        if found:
            return epoch, found
    return -1, []


def channel_readings(projected: NDArray[np.floating]) -> NDArray[np.float64]:
    """A channel-wise layer's projected readings ``(S, B, G, d)`` (or ``(B, G, d)``) as
    ``(S G, B, d)``: each channel's projection counts as a reading of its own."""
    z = np.asarray(projected, dtype=np.float64)
    z = z.reshape(-1, *z.shape[-3:])  # (S, B, G, d)
    return np.moveaxis(z, 2, 1).reshape(-1, z.shape[1], z.shape[3])


def tap_summaries(store: RunStore, run_id: int, data_dir: Path | None = None) -> list[TapSummary]:
    """A :class:`TapSummary` per layer with prototypes and recorded readings (FF methods only);
    the run's data set is looked for in ``data_dir`` (digits need none) for the labels."""
    if not str(store.run_row(run_id)["method"] or "").startswith("ff"):
        return []
    protocol = store.protocol(run_id)
    centred, labels, loaded = bool(protocol["goodness"]["centre"]), None, False
    steps = store.steps(run_id)
    names = store.array_names(run_id)
    layers = sorted(int(n.split("/")[1]) for n in names if n.startswith("prototypes/"))
    out = []
    for layer in layers:
        epoch, found = last_epoch_readings(store, run_id, steps, layer)
        if not found:
            continue
        if not loaded:
            labels, loaded = training_labels(protocol, data_dir), True
        usable = labels is not None and all(int(s.max(initial=0)) < labels.shape[0] for _, s in found)
        pairs = [(r, labels[s] if usable else None) for r, s in found]
        prototypes = store.array(run_id, f"prototypes/{layer}")
        if f"projections/{layer}" in names:  # channel-wise: every channel's projected map is a reading
            scored = TapGoodness(prototypes, centred, store.array(run_id, f"projections/{layer}"))
            pairs = [(channel_readings(scored.projected(r)), y) for r, y in pairs]
            out.append(tap_summary(pairs, prototypes, False, layer, epoch))
            continue
        out.append(tap_summary(pairs, prototypes, centred, layer, epoch))
    return out

# -- figures -----------------------------------------------------------------------------
def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib is slow to import
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def loss_figure(steps: Sequence[dict[str, Any]], epochs: Sequence[dict[str, Any]], title: str) -> Any:
    """Step loss and epoch mean loss against the step number within each layer's training."""
    fig = _figure(7, 4)
    ax = fig.add_subplot()
    ends = epoch_ends(steps)
    for i, layer in enumerate(sorted({s["layer"] for s in steps} | {e["layer"] for e in epochs})):
        colour = f"C{i}"
        mine = sorted((s for s in steps if s["layer"] == layer), key=lambda s: s["version"])
        ax.plot([s["version"] for s in mine], [s["loss"] for s in mine], color=colour, lw=0.8, alpha=0.5,
                label=f"{layer_label(layer)}: step")
        done = [e for e in epochs if e["layer"] == layer and (layer, e["epoch"]) in ends]
        ax.plot([ends[layer, e["epoch"]] for e in done], [e["loss"] for e in done], "o-", color=colour, ms=4,
                label=f"{layer_label(layer)}: epoch mean")
    ax.set(xlabel="step (within the layer's training)", ylabel="loss", title=title)
    if steps or epochs:
        ax.legend(fontsize="small")
    return fig


def accuracy_figure(epochs: Sequence[dict[str, Any]], title: str) -> Any:
    """Each layer's test accuracy after every epoch."""
    fig = _figure(7, 4)
    ax = fig.add_subplot()
    for i, layer in enumerate(sorted({e["layer"] for e in epochs})):
        mine = [e for e in epochs if e["layer"] == layer and e["test_accuracy"] is not None]
        ax.plot([e["epoch"] for e in mine], [e["test_accuracy"] for e in mine], "o-", color=f"C{i}", ms=4,
                label=layer_label(layer))
    ax.set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1), title=title)
    if epochs:
        ax.legend(fontsize="small")
    return fig


def taps_figure(summaries: Sequence[TapSummary], title: str) -> Any:
    """Per layer: prototypes (left) and the mean unit reading per class (right), both ``(C, P)``."""
    fig = _figure(12, 2.6 * len(summaries) + 0.6)
    fig.suptitle(title)
    axes = fig.subplots(len(summaries), 2, squeeze=False)
    for (left, right), s in zip(axes, summaries):
        classes = np.arange(s.prototypes.shape[0])
        for ax, data, what in ((left, s.prototypes, "prototypes"),
                               (right, s.means, "mean unit reading per " + ("label" if s.by_label
                                                                             else "predicted class"))):
            limit = float(np.nanmax(np.abs(data))) if np.isfinite(data).any() else 1.0
            image = ax.imshow(data, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
            fig.colorbar(image, ax=ax, shrink=0.9)
            ax.set(title=f"{layer_label(s.layer)}: {what}" + (f" (epoch {s.epoch})" if ax is right else ""),
                   xlabel="port", ylabel="class")
        left.set_yticks(classes, [str(c) for c in classes], fontsize="x-small")
        right.set_yticks(classes, [f"{c}  n={n}" + (f"  cos {cos:+.2f}" if n else "")
                                   for c, n, cos in zip(classes, s.counts, s.cosine)], fontsize="x-small")
    return fig


#: File formats :func:`write_plots` writes (matplotlib's Agg, SVG and PDF backends).
PLOT_FORMATS = ("png", "svg", "pdf")


def run_title(run_id: int, protocol: dict[str, Any]) -> str:
    """``run 3 quickstart: ff-dd, K=10, eps=0.1, lr=0.007``: the run and what it trained with
    (``K`` perturbation directions and ``eps`` (rad) only for a directional-derivative method)."""
    train = protocol.get("train") or {}
    method = protocol.get("method") or "?"
    settings = [method]
    if method.endswith("-dd"):
        settings += [f"K={train.get('directions', '?')}", f"eps={train.get('eps', '?'):g}"
                     if isinstance(train.get("eps"), int | float) else "eps=?"]
    if isinstance(train.get("lr"), int | float):
        settings.append(f"lr={train['lr']:g}")
    name = protocol.get("name")
    return f"run {run_id}{' ' + name if name else ''}: {', '.join(settings)}"


def write_plots(store: RunStore, run_id: int, folder: Path, data_dir: Path | None = None, fmt: str = "png",
                dpi: int = 120) -> list[Path]:
    """Write ``run-<id>-loss.<fmt>``, ``-accuracy.<fmt>`` and (FF runs with readings) ``-taps.<fmt>``.

    Args:
        data_dir: where the run's data set is, for the labels of the taps plot (digits need none).
        fmt: ``png``, ``svg`` or ``pdf``.
        dpi: dots per inch of a PNG (and of the images inside an SVG or PDF).

    Returns:
        The paths written.

    Raises:
        ValueError: ``fmt`` is not one of :data:`PLOT_FORMATS`.
        OSError: the folder cannot be made or written.
    """
    if fmt not in PLOT_FORMATS:
        raise ValueError(f"format {fmt!r}: one of {', '.join(PLOT_FORMATS)}")
    steps, epochs = store.steps(run_id), store.epochs(run_id)
    title = run_title(run_id, store.protocol(run_id))
    figures = {"loss": loss_figure(steps, epochs, f"{title}\nloss"),
               "accuracy": accuracy_figure(epochs, f"{title}\ntest accuracy per epoch")}
    summaries = tap_summaries(store, run_id, data_dir)
    if summaries:
        figures["taps"] = taps_figure(summaries, f"{title}\ntap readings against prototypes")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for what, fig in figures.items():
        path = folder / f"run-{run_id}-{what}.{fmt}"
        fig.savefig(path, dpi=dpi, format=fmt)
        paths.append(path)
    return paths
