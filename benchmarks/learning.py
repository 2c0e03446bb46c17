"""Evaluations to the same accuracy: the quickstart to 0.88 and 0.90, estimator choices at equal budgets.

Usage:
  uv run python benchmarks/learning.py [--only reach variants] [--seeds 0 1 2 3 4] [--presets ideal realistic]
      [--budget 1000000] [--variants paper forward ...] [--set F=V ...]

``reach``: the protocol as it is (with ``--set`` overrides) over seeds and presets: the evaluations
and wall time at the end of the first epoch whose validation / test accuracy reaches 0.88 and
0.90 (the accuracy of the layer being trained: with two layers, the last layer's is the voted
one), the final voted test accuracy and what the whole run cost. ``variants``: every variant of
:data:`VARIANTS` on the same total evaluation budget (``train.budget.evaluations``), final
voted test accuracy over seeds.

Prints a table per part (every row with its settings and a command that reproduces one seed's
run), then as its last line one JSON object with the same figures.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import time
from typing import Any

from common import ROOT, fmt_layers, machine
from rich.console import Console
from rich.table import Table

from ffzero_lab.config.protocol import load_protocol
from ffzero_lab.data.datasets import resolve_data_dir
from ffzero_lab.run.orchestrator import Orchestrator
from ffzero_lab.run.prepare import prepare

THRESHOLDS = (0.88, 0.90)

#: Estimator and loss variants, each a list of overrides on top of the protocol (plus the budget).
VARIANTS: dict[str, list[str]] = {
    "central": ["train.difference=central", "train.direction_kind=gaussian"],  # the paper's estimate
    "forward": ["train.difference=forward", "train.direction_kind=gaussian"],
    "orthogonal": ["train.difference=central", "train.direction_kind=orthogonal"],
    "forward-orthogonal": ["train.difference=forward", "train.direction_kind=orthogonal"],
    "forward-batch64": ["train.difference=forward", "train.batch_size=64"],
    "forward-K5": ["train.difference=forward", "train.directions=5"],
    "forward-K20": ["train.difference=forward", "train.directions=20"],
    "forward-constant-lr": ["train.difference=forward", "train.schedule=constant"],
    "forward-margin0.3": ["train.difference=forward", "train.margin=0.3"],
    "forward-max-negatives": ["train.difference=forward", "train.negatives=max"],
    "forward-blocking": ["train.difference=forward", "train.calibrate=true", "train.calibration.block=true"],
}


def command(protocol: str, overrides: list[str]) -> str:
    """The CLI command that trains one seed's run with these overrides."""
    path = protocol.replace(str(ROOT) + "/", "")
    return "uv run ffzero-lab dry-run " + path + "".join(f" --set {shlex.quote(o)}" for o in overrides)


def train(protocol_path: str, overrides: list[str]) -> dict[str, Any]:
    """One run, in-process, no store: final figures and the first epoch reaching each threshold."""
    protocol, _ = load_protocol(protocol_path, overrides)
    prepared = prepare(protocol, protocol_path, resolve_data_dir(None))
    started = time.perf_counter()
    reached: dict[str, dict[str, float] | None] = {f"{kind}_{t:.2f}": None for kind in ("validation", "test")
                                                   for t in THRESHOLDS}

    def sink(name: str, doc: dict[str, Any]) -> None:
        if name != "epoch":
            return
        for kind, key in (("validation", "validation_accuracy"), ("test", "test_accuracy")):
            value = doc.get(key)
            for t in THRESHOLDS:
                slot = f"{kind}_{t:.2f}"
                if value is not None and value >= t and reached[slot] is None:
                    reached[slot] = {"evaluations": doc["evaluations"], "wall_s": time.perf_counter() - started,
                                     "layer": doc["layer"], "epoch": doc["epoch"]}

    orchestrator = Orchestrator(protocol, prepared.network, prepared.dataset, [sink], prepared.seeds)
    cpu = time.process_time()
    result = orchestrator.run()
    return {"test_accuracy": result.test_accuracy, "layer_accuracy": result.layer_accuracy,
            "evaluations": result.evaluations, "wall_s": result.wall_s, "cpu_s": time.process_time() - cpu,
            "soft_vote_accuracy": orchestrator.soft_vote_accuracy, "reached": reached, "phases": orchestrator.phases}


def progress(run: dict[str, Any], what: str) -> None:
    """One line per finished run, as it finishes (a long benchmark shows where it is)."""
    print(f"# {what}: voted {run['test_accuracy']:.4f}, soft vote {run['soft_vote_accuracy']:.4f}, "
          f"{run['evaluations']:,} evaluations, {run['wall_s']:.0f} s", flush=True)


def table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    out = Table(title=title, title_justify="left")
    for col in columns:
        out.add_column(col, justify="right", overflow="fold")
    for row in rows:
        out.add_row(*row)
    Console(width=200).print(out)


def fmt_reach(hit: dict[str, float] | None) -> str:
    return "-" if hit is None else f"{hit['evaluations'] / 1e6:.2f} M / {hit['wall_s']:.0f} s"


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def reach_part(args: argparse.Namespace) -> dict[str, Any]:
    runs = []
    for preset in args.presets:
        for seed in args.seeds:
            overrides = [*args.overrides, f"seed={seed}", f"device.settings.preset={preset}"]
            runs.append({"preset": preset, "seed": seed, "command": command(args.protocol, overrides),
                         **train(args.protocol, overrides)})
            progress(runs[-1], f"{preset} seed {seed}")
    rows = [[r["preset"], str(r["seed"]), f"{r['test_accuracy']:.4f}", f"{r['soft_vote_accuracy']:.4f}",
             fmt_layers(r["layer_accuracy"]),
             f"{r['evaluations']:,}", f"{r['wall_s']:.0f}",
             *(fmt_reach(r["reached"][f"{kind}_{t:.2f}"]) for kind in ("validation", "test") for t in THRESHOLDS),
             " ".join(f"{p['eps']:.3g}/{p['lr']:.3g}/{p.get('best_epoch', '-')}/{p['stopped']}"
                      for p in r["phases"].values())]
            for r in runs]
    summary: dict[str, Any] = {}
    for preset in args.presets:
        mine = [r for r in runs if r["preset"] == preset]
        summary[preset] = {
            "mean_test_accuracy": mean([r["test_accuracy"] for r in mine]),
            "mean_soft_vote_accuracy": mean([r["soft_vote_accuracy"] for r in mine]),
            "min_test_accuracy": min(r["test_accuracy"] for r in mine),
            "mean_evaluations": mean([r["evaluations"] for r in mine]),
            "mean_wall_s": mean([r["wall_s"] for r in mine]),
            **{f"mean_evaluations_to_{kind}_{t:.2f}": mean([r["reached"][f"{kind}_{t:.2f}"]["evaluations"]
                                                           for r in mine if r["reached"][f"{kind}_{t:.2f}"]])
               for kind in ("validation", "test") for t in THRESHOLDS},
            **{f"runs_reaching_{kind}_{t:.2f}": sum(r["reached"][f"{kind}_{t:.2f}"] is not None for r in mine)
               for kind in ("validation", "test") for t in THRESHOLDS},
        }
    if "ideal" in summary and "realistic" in summary:
        summary["realistic_loss_points"] = 100 * (summary["ideal"]["mean_test_accuracy"]
                                                  - summary["realistic"]["mean_test_accuracy"])
    table(f"reach: {args.protocol}; overrides {' '.join(args.overrides) or '-'}; "
           f"reach = evaluations / wall s at the end of the first epoch at or above the threshold; "
           f"phases = eps/lr/best epoch/why it stopped per layer; one seed: {runs[0]['command']}",
           ["preset", "seed", "voted test", "soft vote", "per layer", "evaluations", "wall s", "val 0.88", "val 0.90",
            "test 0.88", "test 0.90", "phases"], rows)
    return {"runs": runs, "summary": summary}


def variants_part(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    rows = []
    for name in args.variants:
        overrides = [*args.overrides, *VARIANTS[name], f"train.budget.evaluations={args.budget}"]
        runs = []
        for seed in args.seeds:
            runs.append(train(args.protocol, [*overrides, f"seed={seed}"]))
            progress(runs[-1], f"{name} seed {seed}")
        accuracies = [r["test_accuracy"] for r in runs]
        soft = [r["soft_vote_accuracy"] for r in runs]
        out[name] = {"overrides": overrides, "test_accuracy": accuracies, "mean_test_accuracy": mean(accuracies),
                     "soft_vote_accuracy": soft, "mean_soft_vote_accuracy": mean(soft),
                     "evaluations": [r["evaluations"] for r in runs], "wall_s": [r["wall_s"] for r in runs],
                     "command": command(args.protocol, [*overrides, f"seed={args.seeds[0]}"])}
        rows.append([name, " ".join(f"{a:.3f}" for a in accuracies), f"{mean(accuracies):.4f}", f"{mean(soft):.4f}",
                     f"{mean(out[name]['evaluations']) / 1e6:.2f} M", f"{mean(out[name]['wall_s']):.0f}",
                     out[name]["command"]])
    table(f"variants at an equal budget of {args.budget:,} evaluations per run; {args.protocol}; "
           f"seeds {' '.join(map(str, args.seeds))}",
           ["variant", "voted test per seed", "mean", "soft vote mean", "mean evaluations", "mean wall s",
            "one seed's run"],
           rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default=str(ROOT / "protocols" / "quickstart.yaml"))
    parser.add_argument("--only", nargs="+", choices=["reach", "variants"], default=["reach", "variants"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--presets", nargs="+", default=["ideal"])
    parser.add_argument("--budget", type=int, default=1_000_000, help="variants: evaluations per run")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    summary: dict[str, Any] = {"benchmark": "learning", "protocol": args.protocol, "overrides": args.overrides,
                               "seeds": args.seeds, **machine()}
    if "reach" in args.only:
        summary["reach"] = reach_part(args)
    if "variants" in args.only:
        summary["variants"] = variants_part(args)
    print(json.dumps(summary, default=float))


if __name__ == "__main__":
    main()
