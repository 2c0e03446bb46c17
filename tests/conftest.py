"""Shared fixtures. MNIST is found through $FFZERO_DATA_DIR (never a hard-coded path)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ffzero_lab.data.datasets import DATA_DIR_ENV, IDX_FILES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The data dir holding mnist/, from $FFZERO_DATA_DIR; skips when it is not there."""
    value = os.environ.get(DATA_DIR_ENV)
    if not value:
        pytest.skip(f"MNIST not configured: set {DATA_DIR_ENV} to a folder containing mnist/*.gz")
    folder = Path(value) / "mnist"
    missing = [s for s in IDX_FILES.values() if not (folder / (s + ".gz")).exists() and not (folder / s).exists()]
    if missing:
        pytest.skip(f"MNIST files missing in {folder}: {', '.join(missing)}")
    return Path(value)


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"
