"""The training hyper-parameters the estimators and objectives read, as plain values.

The protocol's pydantic ``train`` section is validated at the edge; the run turns it into this
frozen dataclass (:func:`ffzero_lab.run.orchestrator.estimator_settings`), so the math here never
imports a configuration model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class EstimatorSettings:
    """What a loss and a gradient estimate depend on.

    Attributes:
        directions: K, perturbation directions per step (2K settings).
        eps: perturbation size, radians for a phase (the parameters' unit).
        margin: margin m of the hinge loss ``relu(m - g_true + lambda g_wrong)`` on goodness
            (cosines).
        negative_weight: lambda, the weight of the wrong classes' goodness.
        negatives: ``mean`` (every wrong class) or ``max`` (the worst wrong class).
        readout: how the last layer's taps become class scores for the BP methods:
            ``power-fraction`` (each class's port power over the total) or ``raw`` (the taps as they are).
        logit_scale: factor on the readout scores before the softmax cross-entropy.
        difference: ``central`` (2K settings a step, the paper's) or ``forward`` (K + 1: the
            K plus settings and one shared centre).
        orthogonal: orthonormalise the K directions of a step (each still uniform on the sphere).
    """

    directions: int
    eps: float
    margin: float
    negative_weight: float
    negatives: Literal["mean", "max"]
    readout: Literal["power-fraction", "raw"]
    logit_scale: float
    difference: Literal["central", "forward"] = "central"
    orthogonal: bool = False
