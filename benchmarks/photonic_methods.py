"""The paper's photonic experiment (Fig. 7): four methods on two simulated 64-mode meshes.

MNIST block-averaged to 8x8 (protocols/mnist_photonic.yaml). Every method gets the same
epochs, so FF+DD (each layer E epochs) and BP+DD (the network E epochs) spend the same number
of forward evaluations of a mesh. Needs $FFZERO_DATA_DIR with mnist/.

Usage: uv run python benchmarks/photonic_methods.py [--methods ff-dd bp-dd ff-ad bp-ad] [--set F=V ...]

Prints a table, then as its last line one JSON object with the same figures.
"""

from __future__ import annotations

import argparse

from common import ROOT, fmt_layers, machine, report, run_protocol, train_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default=str(ROOT / "protocols" / "mnist_photonic.yaml"))
    parser.add_argument("--methods", nargs="+", default=["ff-dd", "bp-dd", "ff-ad", "bp-ad"])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    runs = []
    for method in args.methods:
        protocol, result = run_protocol(args.protocol, [*args.overrides, f"method={method}"])
        runs.append({"method": method, **result})
    rows = [[r["method"], f"{r['test_accuracy']:.4f}", fmt_layers(r["layer_accuracy"]),
             f"{r['evaluations']:,}", f"{r['wall_s']:.0f}"] for r in runs]
    acc = {r["method"]: r["test_accuracy"] for r in runs}
    summary = {"benchmark": "photonic_methods", "protocol": args.protocol, "overrides": args.overrides,
               "train": train_settings(protocol), "device": protocol.device.settings, **machine(),
               "runs": runs, "test_accuracy": acc}
    if "ff-dd" in acc and "bp-dd" in acc:
        summary["ff_dd_minus_bp_dd"] = acc["ff-dd"] - acc["bp-dd"]
    report(f"MNIST 8x8 on two 64-mode meshes; {train_settings(protocol)}",
           ["method", "test acc. (voted / readout)", "per layer", "evaluations", "wall s"], rows, summary)


if __name__ == "__main__":
    main()
