"""The paper's CNN comparison (Fig. 5): FF+DD against BP+DD as the channel count grows.

protocols/mnist_cnn.yaml: two conv layers of C channels (5x5, stride 2: 28x28 -> 14x14 ->
7x7) and a dense layer of 100, ReLU between; FF+DD trains every conv channel on its own
projected goodness (d = 32) and each layer for E epochs; BP+DD trains the whole network for E
epochs with directional derivatives over all its parameters (cross-entropy on the first 10
units), so both spend the same forward evaluations (printed). MNIST ($FFZERO_DATA_DIR with
mnist/), the first ``--train`` training images (default 20,000) and the 10,000 test images.

Learning rates, one procedure for every (method, optimiser) (part ``tune``, as in
benchmarks/mnist_mlp.py): at the largest channel count, train for one epoch with each rate of
one grid (0.003, 0.01, 0.03; one more step beyond an end, up to three times, while the best is
there) on the first ``--train`` training images, score on the last 5,000 of the 60,000
training images (never trained on; never the test set), keep the best. Optimisers: Adam and
the paper's plain step (sgd). Everything else is the protocol's.

Usage: uv run python benchmarks/mnist_cnn.py [--only tune compare] [--channels 4 16] [--epochs 2]
       [--lr ff-dd/adam=0.01 ...] [--set F=V ...]

Prints a table, then as its last line one JSON object with the same figures; the claim is
FF+DD above BP+DD at the largest channel count (``targets``).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from common import ROOT, fmt_layers, machine, report, run_protocol

PROTOCOL = ROOT / "protocols" / "mnist_cnn.yaml"
CONFIGS = (("ff-dd", "adam"), ("bp-dd", "adam"), ("ff-dd", "sgd"), ("bp-dd", "sgd"))
#: The tune part's choice (benchmarks/README.md), used when it is not run.
DEFAULT_LR = {"ff-dd/adam": 0.01, "bp-dd/adam": 0.01, "ff-dd/sgd": 0.01, "bp-dd/sgd": 0.01}
HOLDOUT = 5_000


def run(method: str, optimizer: str, channels: int, epochs: int, lr: float, train: int, extra: list[str],
        holdout: int | None = None) -> dict[str, Any]:
    overrides = [*extra, f"method={method}", f"train.optimizer={optimizer}", f"train.lr={lr}",
                 f"network.conv.channels={channels}", f"train.epochs={epochs}", f"data.train_limit={train}"]
    protocol, result = run_protocol(PROTOCOL, overrides, holdout=holdout)
    t = protocol.train
    row = {"method": method, "optimizer": optimizer, "channels": channels, "epochs": epochs, "lr": lr,
           "train_samples": train, "held_out": bool(holdout),
           "settings": f"{t.optimizer} lr {t.lr:g} {t.schedule}, K {t.directions}, eps {t.eps:g}, batch {t.batch_size}",
           **result}
    print(f"{'tune ' if holdout else ''}{method}/{optimizer} C={channels} lr {lr:g}: {result['test_accuracy']:.4f} "
          f"{fmt_layers(result['layer_accuracy'])} ({result['wall_s']:.0f} s)", flush=True)
    return row


def tune(method: str, optimizer: str, channels: int, train: int, grid: list[float], extra: list[str]
         ) -> tuple[float, list[dict[str, Any]]]:
    """The best rate of ``grid`` on the held-out images, growing the grid past an end up to three times."""
    grid = sorted(grid)
    trials = [run(method, optimizer, channels, 1, value, train, extra, HOLDOUT) for value in grid]
    best = max(trials, key=lambda r: r["test_accuracy"])
    for _ in range(3):
        if best["lr"] not in (grid[0], grid[-1]) or len(grid) < 2:
            break
        value = grid[-1] ** 2 / grid[-2] if best["lr"] == grid[-1] else grid[0] ** 2 / grid[1]
        grid = sorted([*grid, value])
        trials.append(run(method, optimizer, channels, 1, value, train, extra, HOLDOUT))
        best = max(trials, key=lambda r: r["test_accuracy"])
    return best["lr"], trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=("tune", "compare"), default=["tune", "compare"])
    parser.add_argument("--channels", nargs="+", type=int, default=[4, 16])
    parser.add_argument("--epochs", type=int, default=2, help="E: epochs per layer (FF) and per network (BP)")
    parser.add_argument("--train", type=int, default=20_000, help="training images used (the first N)")
    parser.add_argument("--optimizers", nargs="+", default=["adam", "sgd"])
    parser.add_argument("--grid", type=float, nargs="+", default=[0.003, 0.01, 0.03])
    parser.add_argument("--lr", action="append", default=[], metavar="METHOD/OPT=LR")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="applied to every run")
    args = parser.parse_args()
    started = time.perf_counter()
    largest = max(args.channels)
    configs = [c for c in CONFIGS if c[1] in args.optimizers]

    lr = dict(DEFAULT_LR)
    tuning: list[dict[str, Any]] = []
    if "tune" in args.only:
        for method, optimizer in configs:
            lr[f"{method}/{optimizer}"], trials = tune(
                method, optimizer, largest, args.train, args.grid, args.overrides
            )
            tuning += trials
    for assignment in args.lr:
        key, _, value = assignment.partition("=")
        lr[key.strip()] = float(value)

    runs: list[dict[str, Any]] = []
    if "compare" in args.only:
        runs = [run(method, optimizer, channels, args.epochs, lr[f"{method}/{optimizer}"], args.train, args.overrides)
                for optimizer in args.optimizers for channels in args.channels for method in ("ff-dd", "bp-dd")]

    targets: dict[str, Any] = {}
    for optimizer in args.optimizers:
        at = {r["method"]: r for r in runs if r["optimizer"] == optimizer and r["channels"] == largest}
        if "ff-dd" in at and "bp-dd" in at:
            ff, bp = at["ff-dd"], at["bp-dd"]
            targets[f"ff_dd_above_bp_dd_at_{largest}_channels_{optimizer}"] = {
                "ff_dd": ff["test_accuracy"], "ff_dd_last_layer": ff["layer_accuracy"][-1],
                "bp_dd": bp["test_accuracy"], "met": ff["test_accuracy"] > bp["test_accuracy"]}
    summary = {"benchmark": "mnist_cnn", "protocol": str(PROTOCOL), "overrides": args.overrides,
               "epochs": args.epochs, "train_samples": args.train, "channels": args.channels, "grid": args.grid,
               "lr": lr, **machine(), "tuning": tuning, "runs": runs, "targets": targets,
               "total_wall_s": time.perf_counter() - started}
    rows = [[("tune " if r["held_out"] else "") + r["method"], str(r["channels"]), str(r["epochs"]),
             f"{r['test_accuracy']:.4f}", fmt_layers(r["layer_accuracy"]), f"{r['evaluations']:,}",
             f"{r['wall_s']:.0f}", r["settings"]] for r in tuning + runs]
    report(f"MNIST CNN (2 conv 5x5 stride 2 + dense 100; first {args.train:,} train images, 10k test; "
           f"tune rows: 1 epoch, scored on the last 5k train images)",
           ["method", "channels", "epochs", "test acc. (voted / readout)", "per layer", "evaluations", "wall s",
            "settings"], rows, summary)


if __name__ == "__main__":
    main()
