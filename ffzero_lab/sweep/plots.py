"""Figures of a sweep's results (PNG, matplotlib's Agg backend).

* Accuracy against depth, ``<metric>_vs_network_layers.png``, when ``network.layers`` is a grid
  axis with two values or more (the paper's Fig. 4): one panel per method when ``method`` is an
  axis, one line per combination of the other axes (e.g. per width).
* Otherwise, when the grid has exactly one numeric axis (besides ``seed``) with two values or
  more, the same figure against that axis.
* Otherwise, when some axis besides ``seed`` has two values or more, a bar chart
  ``<metric>_by_<axes>.png``: one group of bars per combination of the other axes (e.g. per
  task, a ``data`` section), one bar per method (the paper's Fig. 6, R^2 per method per task).

Every point is the mean over ``seed`` (when it is an axis) with min/max error bars. Only
complete cells are plotted. One figure for ``test_accuracy`` and one for ``r2`` (regression
runs), for each that some cell has a value for.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

SEED = "seed"
DEPTH = "network.layers"
METHOD = "method"


def numeric_axis(values: Iterable[Any]) -> bool:
    """Every value a number (not a bool)."""
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def x_axes(grid: dict[str, list[Any]]) -> list[str]:
    """The axes to plot against: ``network.layers``, else the one numeric axis, else none."""
    numeric = [a for a, values in grid.items() if a != SEED and len(values) > 1 and numeric_axis(values)]
    if DEPTH in numeric:
        return [DEPTH]
    return numeric if len(numeric) == 1 else []


def metrics(rows: Sequence[dict[str, Any]]) -> list[str]:
    """``test_accuracy`` and ``r2`` (regression), those that some row has a number for."""
    return [m for m in ("test_accuracy", "r2")
            if any(isinstance(r.get(m), int | float) and not isinstance(r.get(m), bool) for r in rows)]


LABELS = {"test_accuracy": "test accuracy", "r2": "test R²"}


def _value(v: Any) -> Any:
    """A hashable stand-in for a grid value (mappings and lists as text)."""
    return repr(v) if isinstance(v, dict | list) else v


def series(grid: dict[str, list[Any]], rows: Sequence[dict[str, Any]], x: str, metric: str
           ) -> dict[Any, dict[tuple[tuple[str, Any], ...], list[tuple[Any, float, float, float, int]]]]:
    """Points to draw: panel -> line -> [(x, mean, min, max, n)], seeds pooled.

    The panel is the method when ``method`` is an axis with two values or more (else None);
    a line is the values of the other axes with two values or more.
    """
    panel_axis = METHOD if METHOD != x and len(grid.get(METHOD, [])) > 1 else None
    line_axes = [a for a, vs in grid.items() if a not in (x, SEED, panel_axis) and len(vs) > 1]
    pooled: dict[Any, dict[tuple, dict[Any, list[float]]]] = {}
    for row in rows:
        y = row.get(metric)
        if not isinstance(y, int | float) or isinstance(y, bool):
            continue
        panel = row.get(panel_axis) if panel_axis else None
        line = tuple((a, _value(row.get(a))) for a in line_axes)
        pooled.setdefault(panel, {}).setdefault(line, {}).setdefault(_value(row.get(x)), []).append(float(y))
    out: dict[Any, dict[tuple, list[tuple[Any, float, float, float, int]]]] = {}
    order = {_value(v): i for i, v in enumerate(grid[x])}
    for panel, lines in pooled.items():
        for line, points in lines.items():
            out.setdefault(panel, {})[line] = [
                (xv, sum(ys) / len(ys), min(ys), max(ys), len(ys))
                for xv, ys in sorted(points.items(), key=lambda item: order.get(item[0], 0))
            ]
    panels = [_value(v) for v in grid.get(METHOD, [])] if panel_axis else [None]
    return {p: out[p] for p in panels if p in out}


def _short(axis: str) -> str:
    return axis.rsplit(".", 1)[-1]


def category_axes(grid: dict[str, list[Any]]) -> list[str]:
    """Axes of a bar chart (when there is no axis to plot against): every one with two values or
    more but ``seed``; ``method`` last (it picks the bar within a group)."""
    axes = [a for a, vs in grid.items() if a != SEED and len(vs) > 1]
    return [a for a in axes if a != METHOD] + [a for a in axes if a == METHOD]


def value_label(axis: str, value: Any, values: Sequence[Any]) -> str:
    """A short label of a grid value: a mapping (a whole section such as ``data``) shows only the
    keys whose values differ between the axis's values, the first as its bare value
    (``franke-2d``; ``mnist`` and ``target=scalar`` on two lines)."""
    if not isinstance(value, dict):
        return str(value)
    mappings = [v for v in values if isinstance(v, dict)]
    keys = [k for k in value if any(m.get(k) != value.get(k) for m in mappings)] or list(value)
    parts = [f"{value[k]}" if i == 0 else f"{k}={value[k]}" for i, k in enumerate(keys)]
    return "\n".join(parts)


def bar_groups(grid: dict[str, list[Any]], rows: Sequence[dict[str, Any]], metric: str
               ) -> tuple[list[str], list[str], dict[tuple[str, str], tuple[float, float, float, int]]]:
    """Bars to draw: ``(groups, bars, (group, bar) -> (mean, min, max, n))``, seeds pooled.

    A bar is a method when ``method`` is an axis with two values or more; a group is a
    combination of the other axes' values (in grid order).
    """
    axes = category_axes(grid)
    bar_axis = METHOD if METHOD in axes else None
    group_axes = [a for a in axes if a != bar_axis]

    def labels(axis_list: list[str], row: dict[str, Any]) -> str:
        return "\n".join(value_label(a, row.get(a), grid[a]) for a in axis_list)

    order_groups = [labels(group_axes, dict(zip(group_axes, combo)))
                    for combo in itertools.product(*(grid[a] for a in group_axes))]
    order_bars = [str(v) for v in grid[bar_axis]] if bar_axis else [""]
    pooled: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        y = row.get(metric)
        if not isinstance(y, int | float) or isinstance(y, bool):
            continue
        bar = str(row.get(bar_axis)) if bar_axis else ""
        pooled.setdefault((labels(group_axes, row), bar), []).append(float(y))
    stats = {key: (sum(ys) / len(ys), min(ys), max(ys), len(ys)) for key, ys in pooled.items()}
    groups = [g for g in order_groups if any((g, b) in stats for b in order_bars)]
    bars = [b for b in order_bars if any((g, b) in stats for g in groups)]
    return groups, bars, stats


def _bar_figure(plt: Any, grid: dict[str, list[Any]], rows: Sequence[dict[str, Any]], metric: str,
                folder: Path, title: str | None) -> Path | None:
    groups, bars, stats = bar_groups(grid, rows, metric)
    if not groups:
        return None
    fig, pane = plt.subplots(figsize=(max(4.5, 1.2 + 0.45 * len(groups) * max(len(bars), 1)), 4.0))
    width = 0.8 / max(len(bars), 1)
    for j, bar in enumerate(bars):
        xs, means, low, high = [], [], [], []
        for i, group in enumerate(groups):
            if (group, bar) in stats:
                mean, lo, hi, _ = stats[(group, bar)]
                xs.append(i + (j - (len(bars) - 1) / 2) * width)
                means.append(mean)
                low.append(mean - lo)
                high.append(hi - mean)
        pane.bar(xs, means, width=width * 0.95, yerr=[low, high], capsize=3, label=bar or None)
    pane.set_xticks(range(len(groups)))
    pane.set_xticklabels(groups, fontsize="small")
    pane.set_ylabel(LABELS[metric])
    pane.axhline(0.0, color="black", linewidth=0.6)
    pane.grid(axis="y", alpha=0.3)
    if any(bars):
        pane.legend(fontsize="small")
    return _save(plt, fig, grid, f"{title + ': ' if title else ''}{LABELS[metric]}",
                 folder / f"{metric}_by_{'_'.join(_short(a) for a in category_axes(grid))}.png")


def _save(plt: Any, fig: Any, grid: dict[str, list[Any]], heading: str, path: Path) -> Path:
    """Title (saying when points pool seeds), lay out, write the PNG and close the figure."""
    seeds = len(grid.get(SEED, [])) > 1
    fig.suptitle(heading + (" (mean over seeds, min/max bars)" if seeds else ""), fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_figures(grid: dict[str, list[Any]], rows: Sequence[dict[str, Any]], folder: Path,
                  title: str | None = None) -> list[Path]:
    """Draw the figures the grid calls for (see the module doc); returns the files written."""
    axes = x_axes(grid)
    found = metrics(rows)
    if not found or not (axes or category_axes(grid)):
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    if not axes:
        for metric in found:
            path = _bar_figure(plt, grid, rows, metric, folder, title)
            if path is not None:
                paths.append(path)
        return paths
    for x in axes:
        for metric in found:
            data = series(grid, rows, x, metric)
            if not data:
                continue
            n = len(data)
            fig, panes = plt.subplots(1, n, figsize=(4.2 * n + 1.0, 3.8), sharey=True, squeeze=False)
            for pane, (panel, lines) in zip(panes[0], data.items()):
                for line, points in lines.items():
                    xs = [p[0] for p in points]
                    means = [p[1] for p in points]
                    err = [[p[1] - p[2] for p in points], [p[3] - p[1] for p in points]]
                    label = ", ".join(f"{_short(a)} {v}" for a, v in line) or None
                    pane.errorbar(xs, means, yerr=err, marker="o", capsize=3, label=label)
                values = [v for v in grid[x] if isinstance(v, int | float)]
                if values and min(values) > 0 and max(values) / min(values) >= 100:
                    pane.set_xscale("log")
                elif all(isinstance(v, int) for v in values):
                    pane.set_xticks(sorted(values))
                pane.set_xlabel(x)
                if panel is not None:
                    pane.set_title(str(panel))
                pane.grid(alpha=0.3)
                if any(line for line in lines):
                    pane.legend(fontsize="small")
            panes[0][0].set_ylabel(LABELS[metric])
            paths.append(_save(plt, fig, grid, f"{title + ': ' if title else ''}{LABELS[metric]} vs {x}",
                               folder / f"{metric}_vs_{x.replace('.', '_')}.png"))
    return paths
