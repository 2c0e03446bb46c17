"""Running a sweep's cells on Dask ``distributed``.

By default a :class:`distributed.LocalCluster` of N worker processes with one thread each,
bound to 127.0.0.1 with no dashboard; its workers exit with the process that started them
(distributed closes a pipe they watch), so a killed sweep leaves none behind. With a scheduler
address, an existing cluster is used instead: its workers need this package installed (and
the data dir, for IDX sets). A worker gets the cell's validated protocol as plain data, not a
file path, and returns plain data; the client stores each record the moment its future
finishes, so whatever is stored survives a kill.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ffzero_lab.core.errors import UserError
from ffzero_lab.sweep.grid import (
    Cell,
    ResultStore,
    make_record,
    result_fields,
)


def run_cell(document: dict[str, Any], source: str, data_dir: str | None) -> dict[str, Any]:
    """Train one cell (on a worker); never raises: a failure comes back as ``status: failed``."""
    started, cpu = time.time(), time.process_time()
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def timing() -> dict[str, Any]:
        return {"started_at": started, "cell_s": time.time() - started, "cpu_s": time.process_time() - cpu,
                "worker": worker}

    try:
        from ffzero_lab.config.protocol import parse_protocol
        from ffzero_lab.data.datasets import resolve_data_dir
        from ffzero_lab.run.orchestrator import Orchestrator
        from ffzero_lab.run.prepare import prepare

        protocol = parse_protocol(document, source)
        prepared = prepare(protocol, source, resolve_data_dir(data_dir))
        result = Orchestrator(protocol, prepared.network, prepared.dataset, [], prepared.seeds).run()
        return {"status": "complete", "result": result_fields(result), **timing()}
    except Exception as exc:  # recorded with the cell; the sweep goes on
        last = traceback.extract_tb(exc.__traceback__)[-1:] if not isinstance(exc, UserError) else []
        where = f" (at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}{where}", **timing()}


#: The thread counts of a local cluster's worker (one thread each): BLAS, OpenMP and the compiled
#: mesh kernel (its default is capped by NUMBA_NUM_THREADS). Read by the libraries as they load,
#: so they are in the worker's environment from its start, whatever the caller's says.
WORKER_THREADS = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                         "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS")}


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` while the block runs (distributed's nannies read their workers'
    pre-spawn variables from it, ahead of their configuration, when they are made)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def dask_client(scheduler: str | None = None, workers: int = 2) -> Iterator[Any]:
    """A Dask client: of an existing scheduler, or of a fresh local cluster (closed on exit).

    Raises:
        UserError: the scheduler cannot be reached.
    """
    import dask
    from distributed import Client, LocalCluster  # lazy: a second or so to import

    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise UserError(f"cannot reach the Dask scheduler: {exc}", "--scheduler") from None
        try:
            yield client
        finally:
            client.close()
        return
    if workers < 1:
        raise UserError("need at least 1 worker", "--workers")
    # No dashboard; the scheduler's HTTP server (health and metrics routes, always started) on a
    # free loopback port rather than 8787, which another cluster may hold. Workers do not get
    # Dask's MALLOC_TRIM_THRESHOLD_: set at all, it turns off glibc's adaptive mmap threshold, and
    # every large numpy temporary becomes an mmap and page faults (a digital cell ran 2.6x slower).
    environ = {f"distributed.nanny.pre-spawn-environ.{name}": value for name, value in WORKER_THREADS.items()}
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None, **environ}), \
            _environ(WORKER_THREADS):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, worker_dashboard_address=None, silence_logs=logging.ERROR,
                               scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"})
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def run_cells(client: Any, cells: Sequence[Cell], store: ResultStore, data_dir: str | None = None,
              on_record: Callable[[Cell, dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Submit every cell, store each record as its future finishes; returns the records.

    A cell whose worker died (Dask gives up after retrying it elsewhere) is recorded as failed
    like one that raised. Ctrl-C cancels what has not finished; what was stored stays.
    """
    from distributed import as_completed

    futures = {}
    for cell in cells:
        future = client.submit(run_cell, cell.document, f"cell {cell.label}", data_dir,
                               key=f"ffzero-cell-{cell.key}-{uuid.uuid4().hex[:8]}", pure=False)
        futures[future] = cell
    records = []
    try:
        for future in as_completed(futures):
            cell = futures[future]
            try:
                outcome = future.result()
            except Exception as exc:  # the task never returned: a worker lost, a pickling error
                outcome = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            record = make_record(cell, outcome, store.get(cell.key))
            store.put(record)
            records.append(record)
            if on_record is not None:
                on_record(cell, record)
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
    return records
