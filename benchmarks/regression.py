"""Regression by FFzero (the paper's Fig. 6 tasks): R^2 on the 2-D and 5-D functions and on MNIST
read as a scalar 0-9 label.

Tasks (each a bundled protocol plus the overrides printed next to its numbers):

* ``franke-2d``: protocols/regression_2d.yaml (Franke's function, digital MLP 3 x 32, tanh);
* ``friedman-5d``: protocols/regression_5d.yaml (Friedman's #1, digital MLP 2 x 32, tanh);
* ``mnist-scalar``: protocols/regression_5d.yaml's network and training on MNIST (full 60k/10k)
  with ``data.target=scalar``: the label 0-9 read as a number in [0, 1]; fewer epochs, since
  an epoch is 7.5 times the synthetic sets' (needs $FFZERO_DATA_DIR with mnist/).

The must-show: franke-2d FF+DD R^2 >= 0.95 on every seed. ``--methods`` adds the other methods
on the same settings (a constant predictor has R^2 = 0).

Usage: uv run python benchmarks/regression.py [--tasks franke-2d friedman-5d mnist-scalar]
       [--seeds 0 1 2] [--mnist-seeds 0] [--methods ff-dd ...] [--set F=V ...]

Prints a table, then as its last line one JSON object with the same figures.
"""

from __future__ import annotations

import argparse

from common import ROOT, machine, report, run_protocol, train_settings

TASKS = {
    "franke-2d": ("regression_2d.yaml", []),
    "friedman-5d": ("regression_5d.yaml", []),
    "mnist-scalar": ("regression_5d.yaml", ["data.set=mnist", "data.target=scalar", "train.epochs=5"]),
}
TARGET = 0.95  # franke-2d, FF+DD, every seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--methods", nargs="+", default=["ff-dd"], choices=["ff-dd", "bp-dd", "ff-ad", "bp-ad"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the synthetic tasks")
    parser.add_argument("--mnist-seeds", type=int, nargs="+", default=[0], help="seeds of mnist-scalar")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="applied to every task")
    args = parser.parse_args()

    runs = []
    for task in args.tasks:
        name, task_overrides = TASKS[task]
        seeds = args.mnist_seeds if task == "mnist-scalar" else args.seeds
        for method in args.methods:
            for seed in seeds:
                overrides = [*task_overrides, *args.overrides, f"method={method}", f"seed={seed}"]
                protocol, result = run_protocol(ROOT / "protocols" / name, overrides)
                settings = {**train_settings(protocol), "layers": protocol.network.layers,
                            "width": protocol.network.width, "activation": protocol.network.activation.get("kind"),
                            "train_samples": protocol.data.train_limit or "all"}
                runs.append({"task": task, "method": method, "seed": seed, "protocol": name,
                             "overrides": [*task_overrides, *args.overrides], "r2": result["test_accuracy"],
                             "layer_r2": result["layer_accuracy"], "evaluations": result["evaluations"],
                             "wall_s": result["wall_s"], "settings": settings})
                print(f"{task} {method} seed {seed}: R^2 {result['test_accuracy']:.4f} "
                      f"({result['wall_s']:.0f} s)", flush=True)

    rows = [[r["task"], r["method"], str(r["seed"]), f"{r['r2']:.4f}",
             " ".join("-" if v is None else f"{v:.3f}" for v in r["layer_r2"]), f"{r['evaluations']:,}",
             f"{r['wall_s']:.1f}",
             "{optimizer} lr {lr} {schedule}, {epochs} ep/layer, batch {batch_size}, K {directions}, eps {eps}; "
             "{layers} x {width} {activation}".format(**r["settings"])] for r in runs]
    cells: dict[str, dict[str, list[float]]] = {}
    for r in runs:
        cells.setdefault(r["task"], {}).setdefault(r["method"], []).append(r["r2"])
    mean_r2 = {t: {m: sum(v) / len(v) for m, v in ms.items()} for t, ms in cells.items()}
    summary = {"benchmark": "regression", **machine(), "runs": runs, "mean_r2": mean_r2,
               "min_r2": {t: {m: min(v) for m, v in ms.items()} for t, ms in cells.items()}}
    franke = cells.get("franke-2d", {}).get("ff-dd")
    if franke:
        summary["franke_2d_ff_dd_min_r2"] = min(franke)
        summary["franke_2d_target_met"] = min(franke) >= TARGET
    report("Regression, test R^2 (last layer's prediction; FF: each layer E epochs)",
           ["task", "method", "seed", "R^2", "per layer", "evaluations", "wall s", "settings"], rows, summary)


if __name__ == "__main__":
    main()
