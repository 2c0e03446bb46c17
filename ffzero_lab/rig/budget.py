"""The rig's heater power budget and the write order that keeps every state between two
settings inside it: one place, used by every heater driver (within an instrument) and by the
rig's IO (across instruments).

A heater of resistance R at V draws ``V^2 / R``. Between an old and a new setting each channel
draws its old or its new power (or less, through 0 when its sign flips), so writing first the
channels whose power falls and then the others never draws more than the larger of the two ends.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ffzero_lab.rig.errors import PowerBudgetError


class PowerBudget:
    """The rig's total heater power budget, shared by every heater instrument of the rig.

    Each heater driver records what its channels draw; a write is checked against the budget
    minus what the others draw. The rig (``ffzero_lab.rig.RigIO``) gives one budget to all
    its heater drivers (:func:`.connect.open_instrument`), so each driver's own check is rig-wide.

    Args:
        budget_W: the budget, W.
    """

    def __init__(self, budget_W: float) -> None:
        self.budget_W = float(budget_W)
        self._drawn_W: dict[str, float] = {}

    def others_W(self, instrument: str) -> float:
        """Power drawn by every instrument but ``instrument``, W."""
        drawn = self._drawn_W
        if len(drawn) == 1 and instrument in drawn:  # a budget of one instrument (the usual private one)
            return 0.0
        return sum(w for name, w in drawn.items() if name != instrument)

    def check(self, instrument: str, channel_power_W: NDArray[np.float64]) -> float:
        """Total power if ``instrument``'s channels drew ``channel_power_W`` ``(channels,)``, W;
        raises PowerBudgetError."""
        return self.check_total(instrument, float(np.sum(channel_power_W)))

    def check_total(self, instrument: str, power_W: float, others_W: float | None = None) -> float:
        """Total power if ``instrument`` drew ``power_W`` in all, W; raises PowerBudgetError.
        ``others_W``: :meth:`others_W`, if the caller has it already."""
        total = (self.others_W(instrument) if others_W is None else others_W) + power_W
        if not total <= self.budget_W:
            raise PowerBudgetError(instrument, total, self.budget_W)
        return total

    def fits(self, instrument: str, power_W: float, others_W: float | None = None) -> bool:
        """Whether ``instrument`` may draw ``power_W`` in all, W, with what the others draw
        (``others_W``: :meth:`others_W`, if the caller has it already)."""
        return (self.others_W(instrument) if others_W is None else others_W) + power_W <= self.budget_W

    def record(self, instrument: str, channel_power_W: NDArray[np.float64]) -> None:
        """Note what ``instrument``'s channels draw now."""
        self.record_total(instrument, float(np.sum(channel_power_W)))

    def record_total(self, instrument: str, power_W: float) -> None:
        """Note what ``instrument`` draws now in all, W."""
        self._drawn_W[instrument] = power_W

    @property
    def drawn_W(self) -> float:
        """Total power drawn now, W."""
        return sum(self._drawn_W.values())

    def check_rig(self, power_W: float) -> float:
        """The whole rig drawing ``power_W``, W; raises PowerBudgetError above the budget."""
        if not power_W <= self.budget_W:
            raise PowerBudgetError("all heaters of the rig", power_W, self.budget_W)
        return power_W

    def fits_rig(self, power_W: float) -> bool:
        """Whether the whole rig may draw ``power_W``, W."""
        return power_W <= self.budget_W


def power_falls(old_V: NDArray[np.float64], new_V: NDArray[np.float64]) -> NDArray[np.bool_]:
    """``(k,)`` whether each channel's power falls from ``old_V`` to ``new_V`` (``|new| < |old|``)."""
    return np.abs(new_V) < np.abs(old_V)


def rising_power_W(old_W: NDArray[np.float64], new_W: NDArray[np.float64]) -> float:
    """How much more than now any order of writing the changed channels can draw on the way, W.

    Each heater draws its old or its new power until and after its own write, so no state in
    between exceeds ``sum(max(old, new))`` over the changed channels; less their present power,
    that is ``sum(max(new - old, 0))``.

    Args:
        old_W, new_W: ``(k,)`` power of each changed heater before and after, W.
    """
    return float(np.maximum(new_W - old_W, 0.0).sum())


def power_ordered_steps(old_V: NDArray[np.float64],
                        new_V: NDArray[np.float64]) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Split a change of heater voltages into two steps whose power never exceeds both ends.

    Step 1 writes the channels whose power falls (and sends channels whose sign flips to 0);
    step 2 writes every other channel to its new value. During step 1 no heater draws more than
    before; during step 2 none draws more than after. So when the old and the new state both
    fit the budget, so does every state in between, whatever order the commands arrive in.

    Args:
        old_V, new_V: ``(k,)`` voltages (or ``I R``) of the channels to be written, V.

    Returns:
        ``(falling, crossing)`` masks: ``falling`` channels go to their new value in step 1;
        ``crossing`` channels go to 0 in step 1 and to their new value in step 2.
    """
    crossing = (np.sign(old_V) * np.sign(new_V)) < 0
    falling = ~crossing & power_falls(old_V, new_V)
    return falling, crossing
