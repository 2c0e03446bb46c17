"""Regression tasks: synthetic functions and MNIST read as a number, scored by R^2; FashionMNIST's loader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ffzero_lab.cli.app import app
from ffzero_lab.config.protocol import load_protocol
from ffzero_lab.data.datasets import load_dataset
from ffzero_lab.data.idx import write_idx
from ffzero_lab.data.synthetic import franke, friedman1, regression_set
from ffzero_lab.ffzero.objectives import Regression, r2_score
from ffzero_lab.run.orchestrator import Orchestrator
from ffzero_lab.run.prepare import prepare

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_synthetic_sets_are_fixed_and_normalised() -> None:
    a, b = regression_set("franke-2d"), regression_set("franke-2d")
    assert a.task == "regression" and a.width == 1 and a.features == 2
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert a.y_train.min() == 0.0 and a.y_train.max() == 1.0
    five = regression_set("friedman-5d")
    assert five.features == 5 and five.x_train.shape == (8000, 5)
    # the functions themselves, at known points
    assert friedman1(np.array([[0.5, 1.0, 0.5, 0.0, 0.0]]))[0] == pytest.approx(10.0)
    assert franke(np.array([[2 / 9, 2 / 9]]))[0] > 0.75


def test_r2_and_regression_objective() -> None:
    y = np.linspace(0, 1, 50)[:, None]
    assert r2_score(y, y) == 1.0
    assert r2_score(np.full_like(y, y.mean()), y) == pytest.approx(0.0)
    obj = Regression(1)
    g = np.array([[[1.0], [-1.0]]])  # goodness of two samples, one setting
    np.testing.assert_allclose(obj.local_predict(g), [[[1.0], [0.0]]])
    assert obj.local_loss(g, np.array([[1.0], [0.0]]), None)[0] == 0.0


@pytest.mark.parametrize("method", ["ff-dd", "ff-ad", "bp-dd", "bp-ad"])
def test_regression_2d_learns(method: str) -> None:
    protocol, _ = load_protocol(ROOT / "protocols" / "regression_2d.yaml",
                                [f"method={method}", "train.epochs=4", "data.train_limit=2000", "data.test_limit=500"])
    prepared = prepare(protocol, "regression_2d.yaml", None)
    result = Orchestrator(protocol, prepared.network, prepared.dataset, [], prepared.seeds).run()
    assert result.metric == "r2"
    assert result.test_accuracy > 0.3, result  # a constant predictor has R^2 = 0


def test_cli_reports_r2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["dry-run", str(ROOT / "protocols" / "regression_5d.yaml"), "--set", "train.epochs=1",
                                 "--set", "data.train_limit=500", "--json", "-q", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["metric"] == "r2" and summary["test_accuracy"] is None
    assert isinstance(summary["r2"], float) and len(summary["layer_r2"]) == 2


def write_set(folder: Path, n_train: int = 30, n_test: int = 10) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte.gz", (np.arange(n_train) % 10).astype(np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", (np.arange(n_test) % 10).astype(np.uint8))


def test_fashion_mnist_reads_the_same_idx_format(tmp_path: Path) -> None:
    write_set(tmp_path / "fashion_mnist")
    ds = load_dataset("fashion_mnist", tmp_path)
    assert ds.x_train.shape == (30, 784) and ds.n_classes == 10 and ds.image_shape == (28, 28)


def test_mnist_as_a_scalar_label(tmp_path: Path) -> None:
    write_set(tmp_path / "mnist")
    protocol, _ = load_protocol(ROOT / "protocols" / "regression_2d.yaml",
                                ["data.set=mnist", "data.target=scalar", "train.epochs=1"])
    prepared = prepare(protocol, "p", tmp_path)
    ds = prepared.dataset
    assert ds.task == "regression" and ds.y_train.shape == (30, 1)
    np.testing.assert_allclose(ds.y_train[:10, 0], np.arange(10) / 9)
    result = Orchestrator(protocol, prepared.network, ds, [], prepared.seeds).run()
    assert result.metric == "r2" and np.isfinite(result.test_accuracy)
