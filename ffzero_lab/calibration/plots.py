"""One PNG per calibrated channel: its sweep's readings against ``V^2`` and the fitted sinusoids."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ffzero_lab.calibration.procedure import ChannelSweep

#: Series drawn per channel: those the phase moves most.
_MOST = 6


def plot_sweeps(sweeps: Sequence[ChannelSweep], folder: Path) -> list[Path]:
    """Write ``<instrument>-<channel>.png`` for every sweep into ``folder``; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    fig, ax = plt.subplots(figsize=(6.4, 4.0))  # one figure, redrawn per channel (much cheaper)
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.12, top=0.86)
    try:
        for sweep in sweeps:
            ax.clear()
            fine = np.linspace(sweep.u.min(), sweep.u.max(), 200)
            curves = sweep.fit.predict(fine)
            for i in np.argsort(-np.abs(sweep.fit.coefficient))[:_MOST]:
                line, = ax.plot(fine, curves[:, i] * 1e3, lw=1.2)
                ax.plot(sweep.u, sweep.readings[:, i] * 1e3, "o", ms=3, color=line.get_color(), label=sweep.labels[i])
            law = sweep.law
            title = f"{sweep.ref.instrument} channel {sweep.ref.channel}: {sweep.role}"
            if law is not None:
                title += (f"\nphi0 = {law.phi0_rad:.3f} rad{' (pinned)' if law.pinned else ''}, "
                          f"k = {law.k_rad_per_V2:.4f} rad/V$^2$, residual {sweep.fit.residual:.1e}")
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("V$^2$ (V$^2$)")
            ax.set_ylabel("detected power (mW)")
            ax.legend(fontsize=7, loc="upper right")
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{sweep.ref.instrument}-{sweep.ref.channel:03d}") + ".png"
            fig.savefig(folder / name, dpi=80)
            paths.append(folder / name)
    finally:
        plt.close(fig)
    return paths
