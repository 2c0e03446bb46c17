"""The benchmark sweep files (benchmarks/sweeps/): they load, every cell validates, and the grid is
the one their header documents."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ffzero_lab.sweep.grid import expand, load_sweep
from ffzero_lab.sweep.plots import category_axes, x_axes

SWEEPS = Path(__file__).resolve().parents[2] / "benchmarks" / "sweeps"


def documented_cells(path: Path) -> int:
    """The cell count the file's header comment states ('... 72 cells ...')."""
    header = "".join(line for line in path.read_text().splitlines(keepends=True) if line.startswith("#"))
    found = re.findall(r"(\d+) cells", header)
    assert found, f"{path.name}: the header does not say how many cells"
    return int(found[0])


@pytest.mark.parametrize("name", ["fig4_mlp.yaml", "fig6_regression.yaml"])
def test_a_benchmark_sweep_expands_to_the_cells_its_header_documents(name: str) -> None:
    path = SWEEPS / name
    cells = expand(load_sweep(path))
    assert len(cells) == documented_cells(path)


def test_fig4_is_accuracy_against_depth_per_method_and_width_on_mnist() -> None:
    sweep = load_sweep(SWEEPS / "fig4_mlp.yaml")
    grid = sweep.grid
    assert grid["method"] == ["ff-dd", "bp-dd", "ff-ad", "bp-ad"]
    assert grid["network.width"] == [10, 50, 100]
    assert grid["network.layers"][0] == 1 and grid["network.layers"][-1] == 10
    assert x_axes(grid) == ["network.layers"]
    protocol = expand(sweep)[0].protocol
    assert protocol.data.set == "mnist" and protocol.device.driver == "digital"
    assert protocol.train.directions == 10


def test_fig6_is_r2_per_method_per_task() -> None:
    sweep = load_sweep(SWEEPS / "fig6_regression.yaml")
    grid = sweep.grid
    assert grid["method"] == ["ff-dd", "bp-dd", "ff-ad", "bp-ad"]
    assert [d["set"] for d in grid["data"]] == ["franke-2d", "friedman-5d", "mnist"]
    assert x_axes(grid) == [] and category_axes(grid) == ["data", "method"]
    cells = expand(sweep)
    assert {c.protocol.data.target for c in cells if c.protocol.data.set == "mnist"} == {"scalar"}
    assert {c.protocol.data.encoding for c in cells} == {"raw"}
