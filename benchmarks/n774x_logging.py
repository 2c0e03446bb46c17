"""A logged N774x run read back through the real driver, pyvisa-py and a loopback socket.

The emulated N7744A (4 ports) is served on a free 127.0.0.1 port in this process. For each size
the driver arms a run of one sample per trigger (``arm_log``), the emulator receives that many
trigger edges with random port powers (``trigger_samples``, what a sweep's sample clock does),
and the driver reads it (``fetch_log_W``: one status poll, one float32 block per port). Figures:
wall time of the fetch, the calling thread's CPU time in it (``time.thread_time``: the driver and
pyvisa; the emulator's threads excluded), that CPU per logged sample (all ports), and the lab-time
ledger's projection for a real meter (``logging_instrument_time_s`` at 1 us averaging and the
default 5 MB/s link). Every fetched value is checked equal to the float32 of what was triggered.

Usage: uv run python benchmarks/n774x_logging.py [--points 1344 100000 1000000]

Prints a table, then as its last line one JSON object with the same figures.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyvisa
from common import machine, report

from drivers.emulated.n774x import N774xEmulator
from drivers.emulated.server import LineServer
from drivers.instruments.keysight_n774x import KeysightN774x, N774xSettings

AVERAGING_S = 1e-6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, nargs="+", default=[1344, 100_000, 1_000_000])
    args = parser.parse_args()
    emulator = N774xEmulator(lambda n: np.zeros((4, n)))
    server = LineServer("meter", emulator.handle)
    server.start()
    rm = pyvisa.ResourceManager("@py")
    rows, results = [], []
    try:
        resource = rm.open_resource(server.resource, timeout=60_000, **KeysightN774x.resource_options)
        driver = KeysightN774x(resource, "meter", N774xSettings(poll_interval_s=0.001))
        ports = driver.ports
        for points in args.points:
            powers = 10.0 ** np.random.default_rng(points).uniform(-7, -3, (points, ports))
            driver.arm_log(points, AVERAGING_S)
            emulator.trigger_samples(powers)
            wall, cpu = time.perf_counter(), time.thread_time()
            logged = driver.fetch_log_W(timeout_s=60.0)
            wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
            if not np.array_equal(logged, powers.astype(np.float32)):
                raise SystemExit(f"{points} points: the fetched samples differ from the triggered ones")
            ledger = driver.logging_instrument_time_s(points, AVERAGING_S)
            result = {"points": points, "ports": ports, "fetch_wall_ms": 1e3 * wall, "fetch_cpu_ms": 1e3 * cpu,
                      "cpu_us_per_sample": 1e6 * cpu / points, "ledger_s": ledger,
                      "ledger_transfer_s": driver.log_transfer_s(points)}
            results.append(result)
            rows.append([f"{points:,}", str(ports), f"{result['fetch_wall_ms']:.1f}", f"{result['fetch_cpu_ms']:.1f}",
                         f"{result['cpu_us_per_sample']:.3f}", f"{ledger:.4f}", f"{result['ledger_transfer_s']:.4f}"])
        driver.close()
    finally:
        rm.close()
        server.stop()
    report(f"N7744A logged run over a loopback socket (averaging {AVERAGING_S:g} s, pyvisa-py)",
           ["points/port", "ports", "fetch wall ms", "fetch CPU ms", "CPU us/sample", "ledger s", "of it transfer s"],
           rows, {"machine": machine(), "averaging_s": AVERAGING_S, "runs": results})


if __name__ == "__main__":
    main()
