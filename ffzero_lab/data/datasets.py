"""Data sets: scikit-learn's bundled 8x8 digits and MNIST-format IDX files.

Every loader returns pixel values scaled to [0, 1] as float64 ``(samples, features)`` and
integer labels. Nothing is downloaded: digits ship with scikit-learn, IDX files are read
from ``<data dir>/<set>/``.
"""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.core.errors import DataError
from ffzero_lab.data.dataset import Dataset
from ffzero_lab.data.idx import read_idx

DATA_DIR_ENV = "FFZERO_DATA_DIR"

#: Most classes an IDX set may have (its labels 0..C-1).
MAX_CLASSES = 1024

#: File stems of an MNIST-format set, read with or without ``.gz``.
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def resolve_data_dir(option: str | Path | None) -> Path | None:
    """The data directory: ``--data-dir`` if given, else ``$FFZERO_DATA_DIR``, else None."""
    if option:
        return Path(option)
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else None


def load_digits(test_fraction: float = 0.25) -> Dataset:
    """scikit-learn's 8x8 digits (1797 samples, bundled), with a fixed stratified split.

    Read from the file scikit-learn ships and split as its ``train_test_split(..., random_state=0,
    stratify=y)`` splits (:func:`stratified_split`, tested equal), without importing scikit-learn
    (and scipy.stats with it: a second or more of start-up).
    """
    data = np.loadtxt(_sklearn_file("datasets/data/digits.csv.gz"), delimiter=",")
    x = data[:, :-1] / 16.0
    y = data[:, -1].astype(np.int64)
    train, test = stratified_split(y, test_fraction, seed=0)
    return Dataset("digits", x[train], y[train], x[test], y[test], 10, (8, 8))


def _sklearn_file(relative: str) -> Path:
    """A data file of the installed scikit-learn package (found without importing it)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the digits set ships with scikit-learn, which is not installed", "data.set")
    return Path(list(spec.submodule_search_locations)[0]) / relative


def _approximate_mode(counts: NDArray[np.int64], draws: int, rng: np.random.RandomState) -> NDArray[np.int64]:
    """Per-class draws closest to ``counts / counts.sum() * draws``, ties broken by ``rng``
    (scikit-learn's ``_approximate_mode``)."""
    continuous = counts / counts.sum() * draws
    floored = np.floor(continuous)
    need = int(draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (where,) = np.where(remainder == value)
            now = min(len(where), need)
            floored[rng.choice(where, size=now, replace=False)] += 1
            need -= now
            if need == 0:
                break
    return floored.astype(int)


def stratified_split(labels: NDArray[np.integer], test_fraction: float, seed: int
                     ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Train and test indices of a stratified shuffle split: the same indices as scikit-learn's
    ``train_test_split(test_size=test_fraction, random_state=seed, stratify=labels)``.

    ``ceil(test_fraction * n)`` test samples, each class in proportion; a legacy
    ``RandomState(seed)`` draws the class shares' ties, each class's permutation, then both orders.
    """
    n = labels.shape[0]
    n_test = math.ceil(test_fraction * n)
    n_train = n - n_test
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    members = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(seed)
    train_share = _approximate_mode(counts, n_train, rng)
    test_share = _approximate_mode(counts - train_share, n_test, rng)
    train: list[int] = []
    test: list[int] = []
    for c, indices in enumerate(members):
        shuffled = indices.take(rng.permutation(counts[c]), mode="clip")
        train.extend(shuffled[: train_share[c]])
        test.extend(shuffled[train_share[c] : train_share[c] + test_share[c]])
    return rng.permutation(train), rng.permutation(test)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def load_idx_set(name: str, data_dir: Path | None) -> Dataset:
    """An MNIST-format set (MNIST, FashionMNIST) from ``<data_dir>/<name>/``.

    Besides the IDX checks of :func:`~ffzero_lab.data.idx.read_idx` (header against data, gzip
    bounded, finite values): images ``(samples, height, width)`` with at least one sample, train
    and test images of one size, integer labels ``(samples,)`` matching the images, training
    labels 0..C-1 with C at most :data:`MAX_CLASSES`, and test labels among them.

    Raises:
        DataError: no data directory, or files missing (the message says where they go); a
            malformed file, naming it and the field.
    """
    if data_dir is None:
        raise DataError(
            f"data set '{name}' needs a data directory: pass --data-dir DIR or set "
            f"{DATA_DIR_ENV}=DIR, with the IDX files in DIR/{name}/"
        )
    folder = data_dir / name
    paths = {key: _find(folder, stem) for key, stem in IDX_FILES.items()}
    missing = [IDX_FILES[k] + "[.gz]" for k, p in paths.items() if p is None]
    if missing:
        raise DataError(f"data set '{name}' is missing {', '.join(missing)}; put the IDX files in {folder}/")
    arrays = {key: read_idx(path) for key, path in paths.items()}  # type: ignore[arg-type]
    for split in ("train", "test"):
        xs, ys = arrays[f"x_{split}"], arrays[f"y_{split}"]
        images, labels = str(paths[f"x_{split}"]), str(paths[f"y_{split}"])
        if xs.ndim != 3:
            raise DataError(f"images must have 3 dimensions (samples, height, width), not {xs.shape}", images, "header")
        if ys.ndim != 1:
            raise DataError(f"labels must have 1 dimension (samples), not {ys.shape}", labels, "header")
        if xs.shape[0] != ys.shape[0]:
            raise DataError(f"{split} images {xs.shape} and labels {ys.shape} do not match", str(folder))
        if xs.shape[0] == 0 or min(xs.shape[1:]) == 0:
            raise DataError(f"the {split} images are empty: {xs.shape}", images, "header")
        if ys.dtype.kind not in "iu":
            raise DataError(f"labels must be integers, not {ys.dtype}", labels, "header")
    if arrays["x_test"].shape[1:] != arrays["x_train"].shape[1:]:
        raise DataError(f"test images are {arrays['x_test'].shape[1:]}, the training images "
                        f"{arrays['x_train'].shape[1:]}", str(paths["x_test"]), "header")
    n_classes = _check_labels(arrays["y_train"], arrays["y_test"], str(paths["y_train"]), str(paths["y_test"]))
    scale = 255.0 if arrays["x_train"].dtype == np.uint8 else 1.0
    flat = {k: arrays[k].reshape(arrays[k].shape[0], -1).astype(np.float64) / scale for k in ("x_train", "x_test")}
    y_tr = arrays["y_train"].astype(np.int64)
    y_te = arrays["y_test"].astype(np.int64)
    h, w = arrays["x_train"].shape[1:]
    return Dataset(name, flat["x_train"], y_tr, flat["x_test"], y_te, n_classes, (int(h), int(w)))


def _check_labels(y_train: NDArray[np.integer], y_test: NDArray[np.integer], train: str, test: str) -> int:
    """C, the classes of the set: the training labels are 0..C-1 (C at most :data:`MAX_CLASSES`), and
    every test label is one of them.

    Raises:
        DataError: a negative label, more than :data:`MAX_CLASSES` classes, or a test label the
            training set does not have, naming the file and the label's index.
    """
    for labels, source in ((y_train, train), (y_test, test)):
        negative = np.flatnonzero(labels < 0)
        if negative.size:
            i = int(negative[0])
            raise DataError(f"label {int(labels[i])} is negative: classes are 0..C-1", source, f"labels[{i}]")
    top = int(y_train.max())
    if top >= MAX_CLASSES:
        i = int(np.argmax(y_train))
        raise DataError(f"label {top} is outside 0..{MAX_CLASSES - 1}: at most {MAX_CLASSES} classes",
                        train, f"labels[{i}]")
    n_classes = top + 1
    outside = np.flatnonzero(y_test >= n_classes)
    if outside.size:
        i = int(outside[0])
        raise DataError(f"label {int(y_test[i])} is outside the training set's classes 0..{n_classes - 1}",
                        test, f"labels[{i}]")
    return n_classes


def load_dataset(name: str, data_dir: Path | None) -> Dataset:
    """Load a set by its protocol name: ``digits``, a synthetic regression set
    (``franke-2d``, ``friedman-5d``), or an IDX set such as ``mnist`` or ``fashion_mnist``."""
    from ffzero_lab.data.synthetic import SYNTHETIC, regression_set

    if name == "digits":
        return load_digits()
    if name in SYNTHETIC:
        return regression_set(name)
    return load_idx_set(name, data_dir)


def block_average(images: NDArray[np.floating], shape: tuple[int, int]) -> NDArray[np.float64]:
    """Downsample images ``(B, H, W)`` to ``(B, h, w)`` by averaging blocks.

    The images are zero-padded evenly on both sides to multiples of ``(h, w)`` first, so 28x28
    MNIST becomes 32x32 and then 8x8 with 4x4 blocks.
    """
    b, height, width = images.shape
    h, w = shape
    ph, pw = -(-height // h) * h, -(-width // w) * w
    top, left = (ph - height) // 2, (pw - width) // 2
    padded = np.zeros((b, ph, pw))
    padded[:, top : top + height, left : left + width] = images
    return padded.reshape(b, h, ph // h, w, pw // w).mean(axis=(2, 4))


def resize(dataset: Dataset, shape: tuple[int, int]) -> Dataset:
    """The same data set with every image block-averaged to ``shape`` (see :func:`block_average`)."""
    h, w = dataset.image_shape

    def flat(x: NDArray[np.float64]) -> NDArray[np.float64]:
        return block_average(x.reshape(-1, h, w), shape).reshape(x.shape[0], -1)

    return Dataset(dataset.name, flat(dataset.x_train), dataset.y_train, flat(dataset.x_test),
                   dataset.y_test, dataset.n_classes, tuple(shape), dataset.task)  # type: ignore[arg-type]
