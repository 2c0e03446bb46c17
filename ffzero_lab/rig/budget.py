"""The rig's total heater power budget, one object shared by the heater drivers of a rig."""

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
