"""Quickstart accuracy and wall time over seeds, and the realistic preset against the ideal one.

Usage: uv run python benchmarks/quickstart.py [--seeds 0 1 2] [--presets ideal realistic] [--set F=V ...]

Prints a table (one row per preset and seed, settings in the title), then as its last line one
JSON object with the same figures.
"""

from __future__ import annotations

import argparse

from common import ROOT, fmt_layers, machine, report, run_protocol, train_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default=str(ROOT / "protocols" / "quickstart.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--presets", nargs="+", default=["ideal"])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    runs = []
    for preset in args.presets:
        for seed in args.seeds:
            protocol, result = run_protocol(args.protocol, [*args.overrides, f"seed={seed}",
                                                            f"device.settings.preset={preset}"])
            runs.append({"preset": preset, "seed": seed, **result})
    rows = [[r["preset"], str(r["seed"]), f"{r['test_accuracy']:.4f}", fmt_layers(r["layer_accuracy"]),
             f"{r['evaluations']:,}", f"{r['wall_s']:.1f}"] for r in runs]
    by_preset = {p: [r["test_accuracy"] for r in runs if r["preset"] == p] for p in args.presets}
    mean = {p: sum(v) / len(v) for p, v in by_preset.items()}
    summary = {"benchmark": "quickstart", "protocol": args.protocol, "overrides": args.overrides,
               "train": train_settings(protocol), **machine(), "runs": runs,
               "mean_test_accuracy": mean, "min_test_accuracy": {p: min(v) for p, v in by_preset.items()},
               "max_wall_s": max(r["wall_s"] for r in runs)}
    if "ideal" in mean and "realistic" in mean:
        summary["realistic_loss_points"] = 100 * (mean["ideal"] - mean["realistic"])
    report(f"quickstart dry run; {train_settings(protocol)}",
           ["preset", "seed", "voted test acc.", "per layer", "evaluations", "wall s"], rows, summary)


if __name__ == "__main__":
    main()
