"""The command line's side of the rig: ``run --instruments``, ``serve INSTRUMENTS.yaml`` and
``calibrate``. Bad input, a set-point the rig cannot reach or an instrument that fails is one line
on stderr and exit code 2; the heaters are left at their safe values on any exit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import typer
import yaml

from .encoding import encode
from .errors import ConfigError, UserError
from .protocol import Protocol
from .orchestrator import RunSeeds
from .runner import Prepared


def is_instruments_file(path: Path) -> bool:
    """Whether ``path`` looks like an ``instruments.yaml`` (it has an ``instruments`` section)
    rather than a protocol; an unreadable file is left to the protocol loader to report."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(document, dict) and "instruments" in document and "power_budget_W" in document


def open_rig(instruments: Path, seed: int) -> Any:
    """Read the instruments and calibration files, open the instruments (reads only) and build
    the rig's network. Initial phases come from ``seed``.

    Raises:
        UserError: either file is wrong.
        InstrumentError: an instrument cannot be opened or read.
    """
    from .hardware import load_specs, open_network  # lazy: opens pyvisa

    rig, specs = load_specs(instruments)
    return open_network(rig, specs, seed, str(instruments))


def check_rig_setpoints(network: Any, instruments: Path, protocol: Protocol | None = None,
                        prepared: Prepared | None = None, protocol_source: str = "protocol") -> None:
    """Check every set-point the run can reach (the protocol's own inputs for the first mesh when
    given, else any input) against the limits and the power budget, before anything is written.

    Raises:
        ConfigError: naming the channel, or the protocol's encoding when its inputs are not
            amplitudes in [0, 1].
    """
    from .hardware import check_setpoints

    inputs = None
    if protocol is not None and prepared is not None:
        data = protocol.data
        inputs = np.concatenate([encode(prepared.dataset.x_train[: data.train_limit], data.encoding),
                                 encode(prepared.dataset.x_test[: data.test_limit], data.encoding)])
        if np.iscomplexobj(inputs) or inputs.min(initial=0.0) < 0 or inputs.max(initial=0.0) > 1 + 1e-9:
            raise ConfigError("the input modulators set amplitudes in [0, 1]; this encoding gives "
                              f"values in [{inputs.min():.3g}, {inputs.max():.3g}]", protocol_source, "data.encoding")
    check_setpoints(network.config, network.specs, str(instruments), inputs)


def device_seed(protocol: Protocol) -> int:
    """The seed a protocol gives its device (the rig's initial phases)."""
    return RunSeeds.from_seed(protocol.seed).device


def register(app: typer.Typer) -> None:
    """Add ``calibrate`` to the ``ffzero-lab`` app."""
    app.command("calibrate")(calibrate)


def calibrate(
    instruments: Annotated[Path, typer.Option("--instruments", "-i", help="The rig's instruments file.")] = Path("instruments.yaml"),
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Calibration file to write [default: the one instruments.yaml names].")] = None,
    plots: Annotated[Optional[Path], typer.Option("--plots", help="Folder for one PNG per channel's fit.")] = None,
    points: Annotated[int, typer.Option("--points", help="Voltages per sweep, evenly spaced in V^2.", min=6)] = 24,
    starts: Annotated[int, typer.Option("--starts", help="Most starts of the mesh-phase fit (decompositions first, then random).", min=1)] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Seeds the fit's random starts.")] = 0,
) -> None:
    """Sweep every heater channel of the rig's meshes, fit phi = phi0 + k V^2 and write the calibration file."""
    from .cli import err, fail, out
    from .hardware.calibrate import run_calibration

    source = str(instruments)
    try:
        from .instruments import load_rig

        rig = load_rig(instruments)
        target = output or rig.calibration
        if target is None:
            raise ConfigError("name the calibration file: --output FILE, or 'calibration' in the file", source, "calibration")
    except UserError as exc:
        raise fail(exc) from None
    try:
        result = run_calibration(rig, source, target, points=points, starts=starts, seed=seed,
                                 plots=plots, progress=lambda line: err.print(line, highlight=False))
    except UserError as exc:
        raise fail(exc) from None
    except Exception as exc:  # an instrument failed or a limit was hit: the heaters are already safe
        from .contract import ParameterRangeError
        from .instruments import InstrumentError

        if isinstance(exc, (InstrumentError, ParameterRangeError)):
            raise fail(UserError(str(exc), source)) from None
        raise
    out.print(result.table(), highlight=False)
    out.print(f"wrote {target}" + (f"; plots in {plots}" if plots else ""), highlight=False)
