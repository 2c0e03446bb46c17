"""Step calibration from measurements: eps and lr of a DD layer chosen from one batched probe.

Before a layer trains, one batch of settings is evaluated on one mini-batch (:func:`probe_settings`):
``R`` copies of the unperturbed parameters theta, then ``P`` pairs ``theta +- eps0 v_p`` along
random unit directions. From their losses (:func:`analyse_probe`):

* the loss noise ``sigma``: the standard deviation of the R repeated unperturbed losses (the
  same inputs, the same setting: what the detectors and the device add);
* the directional-derivative scale ``s``: ``d_p = (L+ - L-) / (2 eps0)``; the noise adds
  ``sigma^2 / (2 eps0^2)`` to ``E[d_p^2]``, which is taken off: ``s^2 = mean(d_p^2) - sigma^2 / (2 eps0^2)``.

eps (:func:`choose_eps`) is the smallest value that clears three floors: the noise (the
difference of a pair, ``2 eps s`` central or ``eps s`` forward, at least ``snr`` times its own
noise ``sqrt(2) sigma``), the device's resolution (each of the n parameters of a block moves by
about ``eps / sqrt(n)`` under a unit direction; that must be ``dac_steps`` steps of its DAC at
least), and ``eps_min``; then capped at ``eps_max``.

lr (:func:`choose_lr`) makes the first step move each parameter by ``target`` (root mean square,
the parameters' unit). Adam's first step is ``lr * sign(g)`` per parameter, so ``lr = target``;
an SGD or momentum step is ``lr * g`` with ``||g|| ~ n s / sqrt(K)`` for the estimate
``g = (n/K) sum_k d_k v_k`` (K << n), so ``lr = target sqrt(n) / ||g||``. Plain values in, plain
values out: the probe's evaluation and the device's resolution are the caller's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

_TINY = 1e-300


def probe_settings(theta: NDArray[np.floating], directions: NDArray[np.floating], eps: float,
                   repeats: int) -> NDArray[np.float64]:
    """The probe's settings: ``repeats`` copies of ``theta``, then ``theta + eps v_p``, then ``theta - eps v_p``.

    Args:
        theta: ``(n,)`` parameters.
        directions: ``(P, n)`` unit directions.
        eps: the probe's perturbation size (the protocol's ``train.eps``).
        repeats: R >= 2 unperturbed copies.

    Returns:
        ``(R + 2P, n)``.
    """
    theta = np.asarray(theta, dtype=np.float64)
    step = eps * np.asarray(directions, dtype=np.float64)
    return np.concatenate([np.repeat(theta[None], repeats, axis=0), theta + step, theta - step], axis=0)


@dataclass(frozen=True)
class Probe:
    """What a probe measured.

    Attributes:
        loss: mean of the unperturbed losses.
        noise: sigma, standard deviation of the repeated unperturbed losses.
        slope: s, root-mean-square directional derivative along a unit direction (noise removed),
            loss per parameter unit.
    """

    loss: float
    noise: float
    slope: float


def analyse_probe(losses: NDArray[np.floating], repeats: int, eps: float) -> Probe:
    """Noise and derivative scale from the losses ``(R + 2P,)`` of :func:`probe_settings`' rows."""
    losses = np.asarray(losses, dtype=np.float64)
    centre, pairs = losses[:repeats], losses[repeats:]
    p = pairs.shape[0] // 2
    noise = float(np.std(centre, ddof=1)) if repeats > 1 else 0.0
    d = (pairs[:p] - pairs[p:]) / (2.0 * eps)
    signal = float(np.mean(d * d)) - noise**2 / (2.0 * eps**2)
    return Probe(float(np.mean(centre)), noise, float(np.sqrt(max(signal, 0.0))))


@dataclass(frozen=True)
class Calibration:
    """The values chosen for one layer, and what they were chosen from.

    Attributes:
        eps: perturbation size, the parameters' unit.
        lr: learning rate.
        noise: measured loss noise sigma.
        slope: measured rms directional derivative s.
        loss: measured unperturbed loss.
        resolution: the device's step per parameter used (0: continuous).
        eps_noise, eps_resolution: the floors eps had to clear.
        limited_by: which bound set eps: ``noise``, ``resolution``, ``eps_min`` or ``eps_max``.
    """

    eps: float
    lr: float
    noise: float
    slope: float
    loss: float
    resolution: float
    eps_noise: float
    eps_resolution: float
    limited_by: str

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able values."""
        return asdict(self)


def choose_eps(noise: float, slope: float, block_size: int, resolution: float, *, snr: float = 3.0,
               dac_steps: float = 4.0, eps_min: float = 1e-3, eps_max: float = 1.0,
               difference: str = "central") -> tuple[float, float, float, str]:
    """The smallest eps that clears the noise, the device's resolution and ``eps_min``, at most ``eps_max``.

    Args:
        noise: sigma, the loss's noise.
        slope: s, rms directional derivative along a unit direction.
        block_size: parameters sharing one unit direction (n, or n / G for G channels).
        resolution: the device's smallest step of one parameter (a DAC step as a phase), 0 if continuous.
        snr: how many times its own noise ``sqrt(2) sigma`` a pair's difference must be.
        dac_steps: how many device steps each parameter's share ``eps / sqrt(block_size)`` must span.
        eps_min, eps_max: bounds.
        difference: ``central`` (the pair differs by ``2 eps s``) or ``forward`` (``eps s``).

    Returns:
        ``(eps, eps_noise, eps_resolution, limited_by)``.
    """
    spread = 2.0 if difference == "central" else 1.0
    eps_noise = snr * np.sqrt(2.0) * noise / (spread * max(slope, _TINY)) if noise > 0 else 0.0
    eps_resolution = dac_steps * resolution * np.sqrt(block_size)
    floors = {"noise": eps_noise, "resolution": eps_resolution, "eps_min": eps_min}
    limited_by = max(floors, key=floors.__getitem__)
    eps = floors[limited_by]
    if eps > eps_max:
        eps, limited_by = eps_max, "eps_max"
    return float(eps), float(min(eps_noise, 1e300)), float(eps_resolution), limited_by


def choose_lr(optimizer: str, target: float, slope: float, n: int, directions: int) -> float:
    """Learning rate whose first step moves each of ``n`` parameters by ``target`` (rms).

    ``adam``: ``target``. ``sgd``, ``momentum``: ``target sqrt(n) / ||g||`` with
    ``||g|| = n s / sqrt(K)``, i.e. ``target sqrt(K) / (sqrt(n) s)``.
    """
    if optimizer == "adam":
        return float(target)
    return float(target * np.sqrt(directions) / (np.sqrt(n) * max(slope, _TINY)))


def calibrate(probe: Probe, *, n: int, block_size: int, directions: int, optimizer: str, lr: float,
              target_step: float | None, resolution: float, snr: float, dac_steps: float, eps_min: float,
              eps_max: float, difference: str) -> Calibration:
    """eps and lr for one layer from its probe (see the module docstring); ``target_step`` None keeps ``lr``."""
    eps, eps_noise, eps_res, limited_by = choose_eps(
        probe.noise, probe.slope, block_size, resolution, snr=snr, dac_steps=dac_steps, eps_min=eps_min,
        eps_max=eps_max, difference=difference)
    chosen_lr = lr if target_step is None else choose_lr(optimizer, target_step, probe.slope, n, directions)
    return Calibration(eps, chosen_lr, probe.noise, probe.slope, probe.loss, resolution, eps_noise, eps_res,
                       limited_by)


def blocked(candidate_loss: float, centre_loss: float, noise: float, sigmas: float = 2.0) -> bool:
    """Whether a step is refused: its loss on the step's batch rose above the loss before it by
    more than ``sigmas`` times the measured noise."""
    return candidate_loss > centre_loss + sigmas * noise
