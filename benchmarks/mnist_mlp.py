"""MNIST on a digital MLP of width 100 (the paper's Fig. 4 setting): FF+DD against depth, the BP+AD
reference, and BP+DD against depth under the paper's plain update (sgd) and under Adam.

Full MNIST (60k train, 10k test; $FFZERO_DATA_DIR with mnist/), protocols/mnist_mlp.yaml (raw
pixels in [0, 1], ReLU between layers, K = 10 directions, eps 0.01, batch 64, cosine decay of
the learning rate to 5 %; FF: margin 0.5, mean over wrong classes; BP: cross-entropy on the
last layer's first 10 units).

Budget: FF methods give each layer E epochs; BP methods train the network for the same E
epochs. An evaluation is one input through one layer under one setting, so a BP+DD step over
L layers costs L times an FF+DD step of one layer and the two spend the same number of
evaluations at every depth (printed next to each number).

Learning rates, one procedure for every method (part ``tune``): for each (method, optimiser),
train a depth-2 network for ``--tune-epochs`` epochs on the first 50,000 training images for
every learning rate of one grid (``--grid``, the same for all: 0.003, 0.01, 0.03), score on the
held-out last 10,000 training images (never the test set), and keep the best; when the best is
at an end of the grid, try one more step beyond that end (up to ``--extend`` times). The other
settings are the protocol's for every method. Without ``tune`` the rates of ``DEFAULT_LR``
(the outcome of the tune run recorded in benchmarks/README.md) are used, or ``--lr``.

Parts (``--only``, default all, in this order):
  tune      the learning-rate procedure above
  ff-depth  FF+DD at ``--depths`` (default 1 2 6): voted and per-layer test accuracy
  ff-long   FF+DD at depth 2 with ``--long-epochs`` per layer (the >= 0.90 target)
  bp-ad     BP+AD at depth 2 (the reference)
  bp-dd     BP+DD at ``--depths`` with sgd and with adam

Targets: FF+DD >= 0.90 at depth 2; FF+DD voted at depth 6 >= depth 1 - 0.02; BP+AD >= 0.95;
BP+DD: does it fall towards chance (0.10) with depth?

Usage: uv run python benchmarks/mnist_mlp.py [--only tune ff-depth bp-ad bp-dd] [--epochs E]
       [--depths 1 2 6] [--seed 0] [--lr ff-dd/adam=0.005 ...] [--set F=V ...]

Prints a table, then as its last line one JSON object with the same figures.
"""

from __future__ import annotations

import argparse
import time

from common import ROOT, fmt_layers, machine, report, run_protocol

PROTOCOL = ROOT / "protocols" / "mnist_mlp.yaml"
PARTS = ("tune", "ff-depth", "ff-long", "bp-ad", "bp-dd")
#: (method, optimiser) pairs that get a learning rate of their own.
CONFIGS = (("ff-dd", "adam"), ("bp-ad", "adam"), ("bp-dd", "sgd"), ("bp-dd", "adam"))
#: The tune part's choice (benchmarks/README.md), used when it is not run.
DEFAULT_LR = {"ff-dd/adam": 0.03, "bp-ad/adam": 0.01, "bp-dd/sgd": 0.01, "bp-dd/adam": 0.003}
HOLDOUT = 10_000
CHANCE = 0.10


def settings_text(protocol) -> str:
    t = protocol.train
    text = (f"{t.optimizer} lr {t.lr:g} {t.schedule}, {t.epochs} ep, batch {t.batch_size}, "
            f"K {t.directions}, eps {t.eps:g}")
    if protocol.method.startswith("ff"):
        text += f", margin {t.margin:g} {t.negatives}"
    return text


def run(method: str, optimizer: str, depth: int, epochs: int, lr: float, seed: int, extra: list[str],
        holdout: int | None = None) -> dict:
    overrides = [*extra, f"method={method}", f"train.optimizer={optimizer}", f"train.lr={lr}",
                 f"network.layers={depth}", f"train.epochs={epochs}", f"seed={seed}"]
    protocol, result = run_protocol(PROTOCOL, overrides, holdout=holdout)
    row = {"method": method, "optimizer": optimizer, "depth": depth, "epochs": epochs, "lr": lr, "seed": seed,
           "settings": settings_text(protocol), "held_out": bool(holdout), **result}
    print(f"{'tune ' if holdout else ''}{method}/{optimizer} depth {depth} lr {lr:g}: {result['test_accuracy']:.4f} "
          f"{fmt_layers(result['layer_accuracy'])} ({result['wall_s']:.0f} s)", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--epochs", type=int, default=5, help="E: epochs per layer (FF) and per network (BP)")
    parser.add_argument("--long-epochs", type=int, default=50,
                        help="epochs per layer of the ff-long run (50 reached 0.901)")
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2, 6])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tune-epochs", type=int, default=1)
    parser.add_argument("--grid", type=float, nargs="+", default=[0.003, 0.01, 0.03],
                        help="the learning rates tried for every (method, optimiser)")
    parser.add_argument("--tune-only", nargs="+", default=[], metavar="METHOD/OPT",
                        help="tune these (method, optimiser) pairs only, e.g. ff-dd/adam")
    parser.add_argument("--extend", type=int, default=2,
                        help="steps the grid may grow beyond an end when the best rate is at that end")
    parser.add_argument("--lr", action="append", default=[], metavar="METHOD/OPT=LR",
                        help="a learning rate instead of the tuned one, e.g. bp-dd/sgd=0.01")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="applied to every run")
    args = parser.parse_args()
    started = time.perf_counter()

    lr = dict(DEFAULT_LR)
    tuning: list[dict] = []
    if "tune" in args.only:
        for method, optimizer in CONFIGS:
            if args.tune_only and f"{method}/{optimizer}" not in args.tune_only:
                continue
            grid = sorted(args.grid)
            trials = [run(method, optimizer, 2, args.tune_epochs, value, args.seed, args.overrides, HOLDOUT)
                      for value in grid]
            best = max(trials, key=lambda r: r["test_accuracy"])
            for _ in range(args.extend):  # the best at an end of the grid: one more step beyond it
                if best["lr"] not in (grid[0], grid[-1]) or len(grid) < 2:
                    break
                value = grid[-1] * grid[-1] / grid[-2] if best["lr"] == grid[-1] else grid[0] * grid[0] / grid[1]
                grid = sorted([*grid, value])
                trials.append(run(method, optimizer, 2, args.tune_epochs, value, args.seed, args.overrides, HOLDOUT))
                best = max(trials, key=lambda r: r["test_accuracy"])
            tuning += trials
            lr[f"{method}/{optimizer}"] = best["lr"]
    for assignment in args.lr:
        key, _, value = assignment.partition("=")
        lr[key.strip()] = float(value)

    runs: list[dict] = []
    if "ff-depth" in args.only:
        runs += [run("ff-dd", "adam", d, args.epochs, lr["ff-dd/adam"], args.seed, args.overrides)
                 for d in args.depths]
    if "ff-long" in args.only:
        runs.append(run("ff-dd", "adam", 2, args.long_epochs, lr["ff-dd/adam"], args.seed, args.overrides))
    if "bp-ad" in args.only:
        runs.append(run("bp-ad", "adam", 2, args.epochs, lr["bp-ad/adam"], args.seed, args.overrides))
    if "bp-dd" in args.only:
        runs += [run("bp-dd", optimizer, d, args.epochs, lr[f"bp-dd/{optimizer}"], args.seed, args.overrides)
                 for optimizer in ("sgd", "adam") for d in args.depths]

    def acc(method: str, optimizer: str, depth: int, epochs: int = args.epochs) -> float | None:
        found = [r["test_accuracy"] for r in runs
                 if (r["method"], r["optimizer"], r["depth"], r["epochs"]) == (method, optimizer, depth, epochs)]
        return found[0] if found else None

    summary: dict = {"benchmark": "mnist_mlp", "protocol": str(PROTOCOL), "overrides": args.overrides,
                     "epochs": args.epochs, "seed": args.seed, "lr": lr, **machine(), "tuning": tuning, "runs": runs}
    targets: dict = {}
    ff1, ff6 = acc("ff-dd", "adam", 1), acc("ff-dd", "adam", 6)
    for epochs in sorted({args.epochs, args.long_epochs}):
        ff2 = acc("ff-dd", "adam", 2, epochs)
        if ff2 is not None:
            targets[f"ff_dd_depth2_{epochs}_epochs"] = {"accuracy": ff2, "target": 0.90, "met": ff2 >= 0.90}
    if ff1 is not None and ff6 is not None:
        targets["ff_dd_depth6_minus_depth1_points"] = {"points": 100 * (ff6 - ff1), "target": -2.0,
                                                       "met": ff6 >= ff1 - 0.02}
    bpad = acc("bp-ad", "adam", 2)
    if bpad is not None:
        targets["bp_ad_depth2"] = {"accuracy": bpad, "target": 0.95, "met": bpad >= 0.95}
    for optimizer in ("sgd", "adam"):
        curve = {d: acc("bp-dd", optimizer, d) for d in sorted(args.depths)}
        curve = {d: a for d, a in curve.items() if a is not None}
        if len(curve) >= 2:
            first, last = curve[min(curve)], curve[max(curve)]
            ff_curve = {d: acc("ff-dd", "adam", d) for d in curve}
            targets[f"bp_dd_{optimizer}_vs_depth"] = {
                "accuracy": curve, "ff_dd": ff_curve, "chance": CHANCE,
                "falls_with_depth": last < first - 0.02,
                "fraction_of_way_to_chance": (first - last) / (first - CHANCE) if first > CHANCE else None}
    summary["targets"] = targets
    summary["total_wall_s"] = time.perf_counter() - started

    rows = [[("tune " if r["held_out"] else "") + r["method"], str(r["depth"]), f"{r['test_accuracy']:.4f}",
             fmt_layers(r["layer_accuracy"]), f"{r['evaluations']:,}", f"{r['wall_s']:.0f}", r["settings"]]
            for r in tuning + runs]
    report(f"MNIST MLP width 100, digital (60k/10k; tune rows: held-out 10k of train); seed {args.seed}",
           ["method", "depth", "test acc. (voted / readout)", "per layer", "evaluations", "wall s", "settings"],
           rows, summary)


if __name__ == "__main__":
    main()
