"""RigIO on the emulated rig: what it notes of the heaters when a write fails, and how it reads ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from drivers.emulated.rig import EmulatedRig
from drivers.emulated.server import Fault
from drivers.instruments.qontrol import QontrolError
from ffzero_lab.rig import PortRef, build_rig_network, load_specs
from ffzero_lab.rig import io as rig_module
from ffzero_lab.rig.io import RigIO

from .conftest import live_instruments_file


@pytest.fixture
def io(emulated: EmulatedRig, tmp_path: Path) -> Iterator[RigIO]:
    """The emulated rig's instruments, open; the heaters safe again at the end."""
    network = build_rig_network(*load_specs(live_instruments_file(emulated, tmp_path)), seed=0)
    try:
        yield network.rig
    finally:
        network.safe_state()
        network.close()


def test_after_a_refused_write_the_rig_counts_the_worse_case_until_it_reads_the_instrument_again(
        emulated: EmulatedRig, io: RigIO) -> None:
    channels = np.arange(16, 20, dtype=np.intp)
    assert io.write({"heaters": (channels, np.full(4, 1.0))}, "input")
    drawn = io.power_W()
    emulated.inject("heaters", Fault("VVEC16=*", reply="E01:17", count=1))  # over-voltage: not retried
    with pytest.raises(QontrolError, match="E01"):
        io.write({"heaters": (channels, np.full(4, 2.0))}, "input")
    np.testing.assert_array_equal(io.volts["heaters"][16:], 2.0)  # part of it might have been taken
    assert io.power_W() > drawn
    # the instrument is read first: it still holds 1 V, so asking for 1 V again writes nothing
    assert not io.write({"heaters": (channels, np.full(4, 1.0))}, "input")
    assert io.power_W() == pytest.approx(drawn)
    assert io.write({"heaters": (channels, np.full(4, 2.0))}, "input")
    np.testing.assert_array_equal(emulated.heaters["heaters"].volts[16:20], 2.0)


def test_ports_are_read_in_their_order_from_one_meter(io: RigIO) -> None:
    every = io.read_ports(tuple(PortRef(instrument="meter", port=p) for p in (1, 2, 3, 4)))
    assert every.shape == (4,) and np.all(every > 0)
    some = io.read_ports((PortRef(instrument="meter", port=1), PortRef(instrument="meter", port=2)))
    np.testing.assert_allclose(some, every[:2], rtol=1e-6)  # ports 1..2 of a 4-port meter
    backwards = io.read_ports(tuple(PortRef(instrument="meter", port=p) for p in (4, 3, 2, 1)))
    np.testing.assert_allclose(backwards, every[::-1], rtol=1e-6)


@pytest.mark.parametrize("same", [[], [2, 5], list(range(16))])
def test_a_few_channels_are_added_up_in_floats_as_numpy_adds_them(io: RigIO, same: list[int],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    channels = np.arange(16, dtype=np.intp)
    io.volts["heaters"][:16] = now = rng.uniform(0.0, 3.0, 16)  # as if written (the rig's record only)
    values = rng.uniform(0.0, 3.0, 16)
    values[same] = now[same]
    small = io._changes("heaters", channels, values)
    monkeypatch.setattr(rig_module, "SMALL_WRITE", 0)
    large = io._changes("heaters", channels, values)
    if len(same) == 16:
        assert small is None and large is None
        return
    assert small is not None and large is not None
    for a, b in zip(small[:3], large[:3], strict=True):
        np.testing.assert_array_equal(a, b)
    assert small[0].size == 16 - len(same)
    np.testing.assert_allclose(small[3:], large[3:], rtol=1e-12)
