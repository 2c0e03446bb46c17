"""Data sets: the bundled digits, MNIST from $FFZERO_DATA_DIR, clear errors when missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ffzero_lab.core.errors import DataError
from ffzero_lab.data.datasets import (
    load_dataset,
    load_digits,
    load_idx_set,
    resolve_data_dir,
    stratified_split,
)
from ffzero_lab.data.idx import write_idx
from ffzero_lab.ffzero.encoding import amplitude


def test_digits_fixed_split() -> None:
    a, b = load_digits(), load_digits()
    assert a.x_train.shape == (1347, 64) and a.x_test.shape == (450, 64)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert 0.0 <= a.x_train.min() and a.x_train.max() <= 1.0
    assert set(np.unique(a.y_train)) == set(range(10))


def test_digits_are_scikit_learns_set_and_split_without_importing_it() -> None:
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    from sklearn.model_selection import train_test_split

    bunch = sklearn_datasets.load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(bunch.data / 16.0, bunch.target, test_size=0.25, random_state=0,
                                              stratify=bunch.target)
    ours = load_digits()
    for got, expected in ((ours.x_train, x_tr), (ours.x_test, x_te), (ours.y_train, y_tr), (ours.y_test, y_te)):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("fraction, seed", [(0.25, 0), (0.3, 5), (0.1, 1)])
def test_stratified_split_is_scikit_learns(fraction: float, seed: int) -> None:
    from sklearn.model_selection import train_test_split

    labels = np.random.default_rng(seed).integers(0, 7, 203)  # uneven classes: ties in the shares
    train, test = train_test_split(np.arange(203), test_size=fraction, random_state=seed, stratify=labels)
    got_train, got_test = stratified_split(labels, fraction, seed)
    np.testing.assert_array_equal(got_train, train)
    np.testing.assert_array_equal(got_test, test)


def test_amplitude_encoding_unit_power() -> None:
    x = amplitude(load_digits().x_train)
    np.testing.assert_allclose((x**2).sum(axis=1), 1.0)


def test_mnist_from_data_dir(mnist_dir: Path) -> None:
    ds = load_dataset("mnist", mnist_dir)
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert ds.n_classes == 10 and ds.image_shape == (28, 28)
    assert ds.x_train.max() == 1.0


def test_idx_set_plain_and_gz(tmp_path: Path) -> None:
    folder = tmp_path / "tiny"
    folder.mkdir()
    rng = np.random.default_rng(0)
    write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (12, 4, 5), dtype=np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte", rng.integers(0, 3, 12, dtype=np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte", rng.integers(0, 256, (6, 4, 5), dtype=np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2, 0, 1, 2], dtype=np.uint8))
    ds = load_idx_set("tiny", tmp_path)
    assert ds.x_train.shape == (12, 20) and ds.features == 20 and ds.image_shape == (4, 5)


def test_missing_set_says_where_files_go(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_idx_set("mnist", tmp_path)
    assert str(tmp_path / "mnist") in str(info.value)
    assert "train-images-idx3-ubyte" in str(info.value)


def test_no_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FFZERO_DATA_DIR", raising=False)
    assert resolve_data_dir(None) is None
    with pytest.raises(DataError, match="FFZERO_DATA_DIR"):
        load_dataset("mnist", None)


def test_mismatched_counts(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte", np.zeros((3, 2, 2), np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((1, 2, 2), np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(1, np.uint8))
    with pytest.raises(DataError, match="do not match"):
        load_idx_set("bad", tmp_path)
