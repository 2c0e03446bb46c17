"""examples/quickstart.ipynb runs headless (nbclient, a kernel on 127.0.0.1) and its run reads back
as an xarray.Dataset, so the notebook cannot rot."""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest
import xarray as xr

import ffzero_lab as fz
from ffzero_lab.store.runstore import RUNS_DIR_ENV

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"


def test_the_quickstart_notebook_runs_and_its_run_reads_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    monkeypatch.setenv(RUNS_DIR_ENV, str(tmp_path / "runs"))  # the kernel inherits it: nothing lands in examples/
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    manager = KernelManager(kernel_name="python3", ip="127.0.0.1", transport="tcp")  # loopback only
    client = NotebookClient(notebook, km=manager, timeout=300)
    try:
        manager.start_kernel(cwd=str(NOTEBOOK.parent))  # as Jupyter runs a notebook: in its folder
    except Exception as exc:  # no kernel to talk to: say so rather than fail on the notebook
        pytest.skip(f"a Jupyter kernel could not start: {type(exc).__name__}: {exc}")
    try:
        assert manager.ip == "127.0.0.1"
        client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails
    finally:
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)
    assert not (NOTEBOOK.parent / "runs").exists()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the accuracy plot was drawn

    with fz.open_runs(tmp_path / "runs") as runs:
        [run_id] = runs.runs().index
        assert runs.runs().loc[run_id, "status"] == "complete"
        ds = runs.dataset(run_id)
    assert isinstance(ds, xr.Dataset)
    assert ds.sizes["layer"] == 2 and ds.sizes["epoch"] == 3 and ds.sizes["port"] == 64 and ds.sizes["class"] == 10
    # 3 epochs of 28 steps: 512 samples less the 15 % validation split, in batches of 16
    assert ds.sizes["step"] == 3 * 28
    assert ds["step_epoch"].values.tolist() == [0] * 28 + [1] * 28 + [2] * 28
    assert ds["parameters"].attrs["units"] == "rad" and ds["evaluations_per_s"].attrs["units"] == "s-1"
    assert np.isfinite(ds["epoch_test_accuracy"]).all()
    assert 0.0 <= float(ds["test_accuracy"]) <= 1.0
