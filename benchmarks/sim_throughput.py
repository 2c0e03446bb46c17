"""Simulated-chip throughput: the compiled kernel, the numpy reference and naive neurophox, against
the bound a measured zgemm/cgemm rate sets on this machine.

From one run, for complex128 ("double") and complex64 ("single"):

* the compiled kernel (``photonics/kernel.py``, ``MeshEvaluator.fields``) on 1 and 2 threads,
* the same through the simulated chip's whole step (``SimulatedMesh.evaluate``: bounds, heaters,
  kernel, detection) on 1 thread,
* the numpy reference (``clements.propagate``, ``kernel: numpy``) on 1 thread,
* the naive neurophox path (rebuild an ``RMNumpy`` mesh and take ``.matrix`` per setting; double),
* the bound: the flops of one setting-batch (28 per MZI and sample: 4 complex multiplies and 2
  complex adds) at the rate ``np.matmul`` reaches on complex 512x512 matrices (8 flops per complex
  multiply-add), one thread,
* TensorFlow's import cost (neurophox imports it; in a fresh interpreter).

1-thread figures are CPU time of the calling thread (``time.thread_time``), so they hold on a
shared machine; 2-thread figures are given as wall time and as CPU time of the process
(``time.process_time``): the wall speed-up is only meaningful when two cores are free.
BLAS/OpenMP threads are pinned to 1.

Usage: uv run python benchmarks/sim_throughput.py [--modes 64] [--batch 64] [--directions 10]

Prints a table, then as its last line one JSON object with the same figures.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from drivers.simulated.mesh import MeshSettings, SimulatedMesh  # noqa: E402
from ffzero_lab.photonics.kernel import MeshEvaluator  # noqa: E402

PRECISIONS = {"double": np.complex128, "single": np.complex64}


def timed(fn: Callable[[], object], min_seconds: float) -> dict[str, float]:
    """Seconds per call of ``fn`` (after a warm-up call): thread CPU, process CPU and wall."""
    fn()
    calls = 0
    wall, thread, process = time.perf_counter(), time.thread_time(), time.process_time()
    while time.thread_time() - thread < min_seconds and time.perf_counter() - wall < 6 * min_seconds:
        fn()
        calls += 1
    calls = max(calls, 1)
    return {"thread": (time.thread_time() - thread) / calls, "process": (time.process_time() - process) / calls,
            "wall": (time.perf_counter() - wall) / calls, "calls": calls}


def gemm_rate(dtype: type, size: int, min_seconds: float) -> float:
    """flop/s of one-thread ``np.matmul`` on complex ``size x size`` matrices (8 flops per complex MAC)."""
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((size, size)) + 1j * rng.standard_normal((size, size))).astype(dtype)
    b = a.copy()
    t = timed(lambda: a @ b, min_seconds)
    return 8.0 * size**3 / t["thread"]


def tensorflow_import() -> dict[str, float]:
    """Wall and CPU seconds of ``import tensorflow`` in a fresh interpreter (and its resident memory, MB)."""
    code = ("import os, resource, time; os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3'); "
            "w, c = time.perf_counter(), time.process_time(); import tensorflow; "
            "print(time.perf_counter() - w, time.process_time() - c, "
            "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return {"wall_s": float(out[0]), "cpu_s": float(out[1]), "peak_rss_MB": float(out[2])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--directions", type=int, default=10, help="K; 2K settings per step")
    parser.add_argument("--naive-settings", type=int, default=4, help="settings timed on the naive path")
    parser.add_argument("--seconds", type=float, default=2.0, help="CPU seconds per measurement")
    args = parser.parse_args()
    n, b, s = args.modes, args.batch, 2 * args.directions

    rng = np.random.default_rng(0)
    x = rng.random((b, n))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    flops = n * (n // 2) * b * 28.0  # per setting-batch: N columns of N/2 MZIs (odd columns: one empty slot)
    figures: dict[str, dict] = {key: {} for key in (
        "kernel_settings_per_s", "kernel_settings_per_s_wall", "kernel_settings_per_s_process_cpu",
        "evaluate_settings_per_s", "numpy_settings_per_s", "ratio_to_numpy", "bound_settings_per_s",
        "gemm_gflop_per_s", "fraction_of_bound", "two_thread_wall_speedup", "two_thread_cpu_per_setting_ratio")}
    rows = []
    for precision, dtype in PRECISIONS.items():
        mesh = SimulatedMesh(n, MeshSettings(precision=precision, preset="realistic", laser_drift_per_sqrt_s=0.0,
                                             shot_noise=False, read_noise_W=0.0, adc_bits=0, dac_bits=0,
                                             crosstalk=0.0, thermal_tau_s=0.0, threads=1), seed=0)
        settings = mesh.get_parameters() + 0.01 * rng.standard_normal((s, mesh.n_params))
        kernels = {t: MeshEvaluator(mesh.geometry, dtype, "numba", threads=t) for t in (1, 2)}
        numpy_path = MeshEvaluator(mesh.geometry, dtype, "numpy")
        one = timed(lambda: kernels[1].fields(x, settings), args.seconds)
        two = timed(lambda: kernels[2].fields(x, settings), args.seconds)
        ref = timed(lambda: numpy_path.fields(x, settings), args.seconds)
        step = timed(lambda: mesh.evaluate(x, settings), args.seconds)
        rate = gemm_rate(dtype, 512, args.seconds)
        f = figures
        f["kernel_settings_per_s"][precision] = {"1": s / one["thread"], "2": s / two["wall"]}
        f["kernel_settings_per_s_wall"][precision] = {"1": s / one["wall"], "2": s / two["wall"]}
        f["kernel_settings_per_s_process_cpu"][precision] = {"1": s / one["process"], "2": s / two["process"]}
        f["evaluate_settings_per_s"][precision] = s / step["thread"]
        f["numpy_settings_per_s"][precision] = s / ref["thread"]
        f["ratio_to_numpy"][precision] = ref["thread"] / one["thread"]
        f["gemm_gflop_per_s"][precision] = rate / 1e9
        f["bound_settings_per_s"][precision] = rate / flops
        f["fraction_of_bound"][precision] = (s / one["thread"]) / (rate / flops)
        f["two_thread_wall_speedup"][precision] = one["wall"] / two["wall"]
        f["two_thread_cpu_per_setting_ratio"][precision] = two["process"] / one["process"]
        for label, t, clock, threads in (("kernel", one, "thread", 1), ("kernel", two, "wall", 2),
                                         ("kernel", two, "process", 2), ("SimulatedMesh.evaluate", step, "thread", 1),
                                         ("numpy reference", ref, "thread", 1)):
            rows.append([f"{label} ({precision})", str(threads), clock, f"{s / t[clock]:,.0f}",
                         f"{flops * s / t[clock] / 1e9:.1f}", str(t["calls"])])
        rows.append([f"bound: np.matmul {'zgemm' if precision == 'double' else 'cgemm'} rate", "1", "thread",
                     f"{rate / flops:,.0f}", f"{rate / 1e9:.1f}", ""])

    from neurophox.numpy import RMNumpy  # the naive path (imports TensorFlow)

    mesh = SimulatedMesh(n, MeshSettings(threads=1), seed=0)
    naive_settings = mesh.get_parameters() + 0.01 * rng.standard_normal((args.naive_settings, mesh.n_params))
    reference = RMNumpy(n, basis="sm")
    theta, phi, gamma = mesh.unpack(naive_settings)

    def naive() -> np.ndarray:
        out = []
        for i in range(args.naive_settings):
            reference.theta, reference.phi, reference.gamma = theta[i], phi[i], gamma[i][None]
            reference.mesh_layers = reference.mesh.mesh_layers(reference.phases)
            out.append(np.abs(x @ reference.matrix) ** 2)
        return np.stack(out)

    t = timed(naive, args.seconds)
    naive_rate = args.naive_settings / t["thread"]
    rows.append(["naive neurophox (rebuild + .matrix per setting, double)", "1", "thread", f"{naive_rate:,.0f}",
                 f"{flops * naive_rate / 1e9:.2f}", str(t["calls"])])
    figures["naive_neurophox_settings_per_s"] = naive_rate
    figures["kernel_ratio_to_naive"] = {p: figures["kernel_settings_per_s"][p]["1"] / naive_rate for p in PRECISIONS}
    tf = tensorflow_import()

    console = Console(width=140)
    table = Table(title=f"simulated chip throughput: N={n} modes, batch {b}, 2K={s} settings per call; "
                        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (shared machine)")
    for col in ("path", "threads", "clock", "settings/s", "GFLOP/s", "timed calls"):
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for p in PRECISIONS:
        console.print(f"{p}: kernel {figures['ratio_to_numpy'][p]:.1f}x numpy, "
                      f"{100 * figures['fraction_of_bound'][p]:.0f} % of the gemm bound; 2 threads "
                      f"{figures['two_thread_wall_speedup'][p]:.2f}x wall, CPU per setting "
                      f"{figures['two_thread_cpu_per_setting_ratio'][p]:.2f}x one thread's")
    console.print(f"import tensorflow (neurophox): {tf['wall_s']:.1f} s wall, {tf['cpu_s']:.1f} s CPU, "
                  f"{tf['peak_rss_MB']:.0f} MB resident")
    print(json.dumps({"benchmark": "sim_throughput", "modes": n, "batch": b, "settings_per_call": s,
                      "flops_per_setting": flops, "cpus": os.cpu_count(), "load_average": os.getloadavg()[0],
                      **figures, "tensorflow_import": tf}))


if __name__ == "__main__":
    main()
