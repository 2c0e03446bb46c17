"""``ffzero-lab calibrate``: sweep the rig's heaters and fit their phase laws.

Bad input, a set-point the rig cannot reach or an instrument that fails is one line on stderr
and exit code 2; the heaters are left at their safe values on any exit. The work is in
:mod:`ffzero_lab.calibration.procedure`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

from ffzero_lab.cli.common import err, fail, interrupted, out
from ffzero_lab.core.errors import ConfigError, UserError


def register(app: typer.Typer) -> None:
    """Add ``calibrate`` to the ``ffzero-lab`` app."""
    app.command("calibrate")(calibrate)


def calibrate(
    instruments: Annotated[
        Path, typer.Option("--instruments", "-i", help="The rig's instruments file.")
    ] = Path("instruments.yaml"),
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", metavar="FILE", help="Calibration file to write.",
                     show_default="the one instruments.yaml names"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the calibration file if it exists.")] = False,
    timestamped: Annotated[
        bool, typer.Option("--timestamped", help="Write a new file beside it, named with the time: "
                           "calibration-20261208-143000.yaml (then name it in instruments.yaml).")
    ] = False,
    plots: Annotated[
        Optional[Path], typer.Option("--plots", metavar="DIR", help="Folder for one PNG per channel's fit.")
    ] = None,
    points: Annotated[int, typer.Option("--points", help="Voltages per sweep, evenly spaced in V^2.", min=6)] = 24,
    starts: Annotated[
        int,
        typer.Option("--starts", help="Most starts of the mesh-phase fit (decompositions first, then random).", min=1),
    ] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Seeds the fit's random starts.")] = 0,
) -> None:
    """Sweep every heater channel of the rig's meshes, fit phi = phi0 + k V^2 and write the calibration file.

    An existing calibration file is never overwritten without --force (runs record the file
    they used and its SHA-256); --timestamped writes a new one beside it instead.
    """
    from ffzero_lab.calibration.procedure import run_calibration

    source = str(instruments)
    try:
        from ffzero_lab.rig import load_rig

        rig = load_rig(instruments)
        target = output or rig.calibration
        if target is None:
            raise ConfigError(
                "name the calibration file: --output FILE, or 'calibration' in the file", source, "calibration"
            )
        target = calibration_target(Path(target), force, timestamped)
    except UserError as exc:
        raise fail(exc) from None
    try:
        result = run_calibration(rig, source, target, points=points, starts=starts, seed=seed,
                                 progress=lambda line: err.print(line, highlight=False))
    except UserError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt as exc:
        raise interrupted(exc, "no calibration file was written; the heaters are at their safe values") from None
    except Exception as exc:  # an instrument failed or a limit was hit: the heaters are already safe
        from ffzero_lab.core.contract import ParameterRangeError
        from ffzero_lab.rig import InstrumentError

        if isinstance(exc, (InstrumentError, ParameterRangeError)):
            raise fail(UserError(str(exc), source)) from None
        raise
    if plots is not None:
        from ffzero_lab.calibration.plots import plot_sweeps  # lazy: imports matplotlib

        plot_sweeps(result.sweeps, plots)
    out.print(result.table(), highlight=False)
    out.print(f"wrote {target}" + (f"; plots in {plots}" if plots else ""), highlight=False)
    if target != (output or rig.calibration):
        out.print(f"to train with it, name it in {source}: calibration: {target.name}", highlight=False)


def calibration_target(path: Path, force: bool, timestamped: bool) -> Path:
    """The file ``calibrate`` writes: ``path``; with ``timestamped`` a new file beside it named
    with the local time (``<stem>-YYYYmmdd-HHMMSS<suffix>``).

    Raises:
        UserError: the file exists and neither ``force`` nor ``timestamped`` is given (a
            calibration that runs were trained with is a record, not a scratch file).
    """
    if timestamped:
        path = path.with_name(f"{path.stem}-{datetime.now():%Y%m%d-%H%M%S}{path.suffix}")
    if path.exists() and not force:
        raise UserError("exists; runs record which calibration they used, so it is not overwritten: give "
                        "--force to overwrite it, --timestamped to write a new file beside it, or --output FILE",
                        str(path))
    return path
