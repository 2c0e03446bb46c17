"""Rebuilding what a recorded step did, from the run store alone.

A measurement row keeps the perturbation's seed and draw number, the eps it used, the base
parameters' version and the samples; with the protocol's K, ``train.difference`` and
``train.direction_kind`` that is enough to rebuild the exact settings of every evaluation of the step.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.ffzero.perturbation import DirectionSampler, perturbed_settings
from ffzero_lab.store.runstore import RunStore


def rebuild_settings(store: RunStore, run_id: int, layer: int, version: int) -> NDArray[np.float64]:
    """The ``(2K, n)`` parameter settings step ``version`` of ``layer`` evaluated (``(K + 1, n)``
    with forward differences).

    Row ``k`` is ``base + eps v_k``, row ``K + k`` is ``base - eps v_k`` (forward: row K is
    ``base``), as in :func:`ffzero_lab.ffzero.perturbation.perturbed_settings`. The device wrapped periodic phases
    on writing them; the rows here are as requested.

    Raises:
        KeyError: the step was not recorded with measurements, or it has no directions (AD).
    """
    m = store.measurement(run_id, layer, version)
    if not m["directions"]:
        raise KeyError(f"step {version} of layer {layer} used no perturbations")
    base = store.parameters_at(run_id, layer, version)
    # a channel-wise layer drew one unit direction per channel; its projections say how many
    try:
        groups = store.array(run_id, f"projections/{layer}").shape[0]
    except KeyError:  # a layer trained as a whole
        groups = 1
    train = store.protocol(run_id).get("train", {})
    sampler = DirectionSampler(base.size, m["directions"], m["direction_seed"], groups,
                               train.get("direction_kind", "gaussian") == "orthogonal")
    return perturbed_settings(base, sampler.draw(m["direction_draw"]), m["eps"], train.get("difference", "central"))
