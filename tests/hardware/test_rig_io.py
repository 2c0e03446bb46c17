"""RigIO on the emulated rig: what it notes of the heaters when a write fails, and how it reads ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from drivers.emulated.rig import EmulatedRig
from drivers.emulated.server import Fault
from drivers.instruments.qontrol import QontrolError
from ffzero_lab.hardware import load_specs, open_network
from ffzero_lab.hardware.rig import RigIO
from ffzero_lab.instruments import PortRef

from .conftest import live_instruments_file


@pytest.fixture
def io(emulated: EmulatedRig, tmp_path: Path) -> Iterator[RigIO]:
    """The emulated rig's instruments, open; the heaters safe again at the end."""
    network = open_network(*load_specs(live_instruments_file(emulated, tmp_path)), seed=0)
    try:
        yield network.rig
    finally:
        network.safe_state()
        network.close()


def test_a_refused_write_leaves_the_rigs_record_of_the_heaters_as_it_was(emulated: EmulatedRig, io: RigIO) -> None:
    channels = np.arange(16, 20, dtype=np.intp)
    assert io.write({"heaters": (channels, np.full(4, 1.0))}, "input")
    drawn = io.power_W()
    emulated.inject("heaters", Fault("VVEC16=*", reply="E01:17", count=1))  # over-voltage: not retried
    with pytest.raises(QontrolError, match="E01"):
        io.write({"heaters": (channels, np.full(4, 2.0))}, "input")
    np.testing.assert_array_equal(io.volts["heaters"][16:], 1.0)
    assert io.power_W() == drawn
    assert io.write({"heaters": (channels, np.full(4, 2.0))}, "input")  # the driver reads its state first
    np.testing.assert_array_equal(emulated.heaters["heaters"].volts[16:20], 2.0)


def test_ports_are_read_in_their_order_from_one_meter(io: RigIO) -> None:
    every = io.read_ports(tuple(PortRef(instrument="meter", port=p) for p in (1, 2, 3, 4)))
    assert every.shape == (4,) and np.all(every > 0)
    some = io.read_ports((PortRef(instrument="meter", port=1), PortRef(instrument="meter", port=2)))
    np.testing.assert_allclose(some, every[:2], rtol=1e-6)  # ports 1..2 of a 4-port meter
    backwards = io.read_ports(tuple(PortRef(instrument="meter", port=p) for p in (4, 3, 2, 1)))
    np.testing.assert_allclose(backwards, every[::-1], rtol=1e-6)
