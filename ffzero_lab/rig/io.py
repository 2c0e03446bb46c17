"""The rig's instruments, open: heater writes, detector readings, retries, the safe state.

Drivers are reached only through the :class:`~ffzero_lab.rig.InstrumentDriver` protocol
(``HeaterInstrument``, ``PowerMeterInstrument``), opened from their ``module:Class`` in
``instruments.yaml``. Every heater write goes through the driver, which checks the channel limits
and its power budget before a byte is sent; here the *rig's* total (every heater instrument
together) is checked too, and a change that involves several instruments is written falling
channels first, so that no state in between draws more than before and after.

A command that fails for a passing reason (``InstrumentError.transient``: a timeout, a dropped
connection, a communication error) is retried ``retries`` times, each after reopening its
instrument (a heater driver then reads its outputs afresh before its next write; a power meter is
configured again). Anything else stops at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pyvisa
from numpy.typing import NDArray

from ffzero_lab.core.errors import ConfigError
from ffzero_lab.core.waits import wait_s
from ffzero_lab.rig.budget import PowerBudget, power_falls
from ffzero_lab.rig.config import HardwareTiming, PortRef, RigConfig
from ffzero_lab.rig.connect import open_instrument, resource_manager
from ffzero_lab.rig.driver import InstrumentIdentity, limit_problems, resolve_driver_class
from ffzero_lab.rig.errors import InstrumentError, PowerBudgetError
from ffzero_lab.rig.plan import SweepGeometry
from ffzero_lab.rig.spec import group_by_instrument

T = TypeVar("T")

#: instrument -> (channels ``(k,)``, values ``(..., k)``)
Tables = dict[str, tuple[NDArray[np.intp], NDArray[np.float64]]]

#: Most channels of one instrument a write adds up in Python floats (more: numpy).
SMALL_WRITE = 16


@dataclass
class RigCounters:
    """What the rig did: settles after phase writes and after input writes, detector readings
    (one per meter per input), retried commands, time spent waiting for heaters to settle and
    time spent in the drivers' calls (commands and their replies), s; the calling thread's
    CPU time in the settle waits, s (a wait that spins burns some); hardware-timed sweeps played;
    and the instrument time the rig has cost (the lab-time ledger: settle waits, and each sweep's
    samples / sample rate), s."""

    phase_settles: int = 0
    input_settles: int = 0
    readings: int = 0
    retries: int = 0
    settle_s: float = 0.0
    io_s: float = 0.0
    settle_cpu_s: float = 0.0
    sweeps: int = 0
    instrument_s: float = 0.0
    log: list[str] = field(default_factory=list)


class RigIO:
    """Every instrument of ``rig``, opened (reads only: identities are not asked, outputs are).

    Args:
        rig: the validated instruments file.
        source: its name, for messages.
        sleep: waits for the settle times (replaceable in tests).

    Raises:
        ConfigError: the VISA library or a driver cannot be loaded.
        InstrumentError: an instrument cannot be opened or read.
    """

    def __init__(self, rig: RigConfig, source: str = "instruments", sleep: Callable[[float], None] = wait_s) -> None:
        self.rig, self.source, self.sleep = rig, source, sleep
        self.counters = RigCounters()
        needs_visa = any(getattr(resolve_driver_class(inst.driver, source, f"instruments.{n}.driver"), "visa", True)
                         for n, inst in rig.instruments.items())
        self.rm: pyvisa.ResourceManager | None = resource_manager(rig, source) if needs_visa else None
        self.drivers: dict[str, Any] = {}
        #: instrument -> what it said it is when opened (``identify()``), recorded with a run
        self.identities: dict[str, InstrumentIdentity] = {}
        #: one budget for every heater driver, so each driver's own check counts the whole rig
        self.budget = PowerBudget(rig.power_budget_W)
        self.heaters = [n for n, inst in rig.instruments.items() if inst.channels is not None]
        self._timings = {n: inst.hardware for n, inst in rig.instruments.items()}
        #: mesh index -> the phases (rad) its heaters hold now, as a hardware-timed sweep or a write
        #: left them; forgotten on the safe state and on any failure (then written again)
        self.holding: dict[int, NDArray[np.float64]] = {}
        self.resistance_ohm = {n: np.array([lim.resistance_ohm for lim in rig.heater_channel_limits(n)])
                               for n in self.heaters}
        self.safe_V = {n: np.array([lim.safe_V for lim in rig.heater_channel_limits(n)]) for n in self.heaters}
        self.volts: dict[str, NDArray[np.float64]] = {}
        self._stale: set[str] = set()  # instruments whose last write failed: read before the next one
        self._unsure: set[str] = set()  # instruments whose last exchange failed or was cut: resync first
        self._drawn_W = 0.0  # what every heater draws now, W (kept with each write, summed afresh when all are set)
        # per sequence of ports read: (it, meter -> (positions, indices), the meter when it is the
        # only one and they are its ports 1..n in order, else None)
        self._port_plans: dict[
            int, tuple[Sequence[PortRef], dict[str, tuple[NDArray[np.intp], NDArray[np.intp]]], str | None]
        ] = {}
        try:
            for name in rig.instruments:
                self.drivers[name] = self._open(name, check=True)
            for name in self.heaters:
                self._note_volts(name, self.call(name, self._read_all))
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _read_all(driver: Any) -> NDArray[np.float64]:
        """Every channel's output, V; a driver that keeps a power account (``sync_state``) counts
        it into the rig's shared budget as it reads."""
        sync = getattr(driver, "sync_state", None)
        return np.asarray(driver.read_voltages_V() if sync is None else sync(), dtype=np.float64)

    # -- instruments ------------------------------------------------------------------------
    def _open(self, name: str, check: bool = False) -> Any:
        """Open instrument ``name``; with ``check``, first hold the file's limits against what the
        instrument says it is (what ``instruments check`` does), before anything is written to it.

        Raises:
            ConfigError: the file promises more than the instrument can do (full scale, channels,
                ports), naming the instrument; it is closed again, nothing was written.
        """
        driver = open_instrument(self.rig, name, self.rm, self.source, self.budget)
        if check:
            try:
                identity = self.identities[name] = driver.identify()
                problems = limit_problems(name, self.rig.instruments[name], identity, self.rig.ports_used(name))
            except BaseException:
                driver.close()
                raise
            if problems:
                driver.close()
                more = f" (and {len(problems) - 1} more: ffzero-lab instruments check)" if len(problems) > 1 else ""
                raise ConfigError(problems[0] + more, self.source, f"instruments.{name}")
        if driver.kind == "power_meter":
            driver.configure()
        return driver

    def _reopen(self, name: str) -> None:
        old = self.drivers.pop(name, None)
        if old is not None:
            try:
                old.close()
            except Exception:  # the link is already broken; the new one matters
                pass
        self.drivers[name] = self._open(name)

    def call(self, name: str, action: Callable[[Any], T], retry: Callable[[Any], T] | None = None) -> T:
        """``action(driver)`` on instrument ``name``, retried (as ``retry(driver)`` if given: e.g. the
        whole query when ``action`` only reads its reply) after a transient failure."""
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                if name not in self.drivers:
                    self._reopen(name)
                return (action if attempt == 0 or retry is None else retry)(self.drivers[name])
            except InstrumentError as exc:
                if not exc.transient or attempt >= self.rig.retries:
                    self._unsure.add(name)
                    raise
                attempt += 1
                self.counters.retries += 1
                self.counters.log.append(f"retry {attempt} after: {exc}")
                self.drivers.pop(name, None)  # reopened on the next attempt
                try:
                    self._reopen(name)
                except InstrumentError as reopen_exc:
                    if not reopen_exc.transient:
                        raise
                    self.counters.log.append(f"reopen failed: {reopen_exc}")
            except BaseException:  # interrupted mid-exchange (a signal): a reply may be left on the link
                self._unsure.add(name)
                raise
            finally:
                self.counters.io_s += time.perf_counter() - started

    # -- heaters ------------------------------------------------------------------------------
    def power_W(self, volts: dict[str, NDArray[np.float64]] | None = None) -> float:
        """Electrical power of every heater of the rig, W (now, or for ``volts``)."""
        volts = self.volts if volts is None else volts
        return float(sum(np.sum(volts[n] ** 2 / self.resistance_ohm[n]) for n in self.heaters))

    def _note_volts(self, name: str, volts: NDArray[np.float64]) -> None:
        """Instrument ``name``'s heaters are at ``volts`` (all its channels), V."""
        self.volts[name] = volts
        self._drawn_W = self.power_W() if len(self.volts) == len(self.heaters) else 0.0

    def write(self, targets: dict[str, tuple[NDArray[np.intp], NDArray[np.float64]]], kind: str = "phase",
              keep_holding: bool = False) -> bool:
        """Set heater channels (instrument -> (channels, voltages V)); wait the settle time if
        anything changed. Channels already at their value are not written. Unless ``keep_holding``
        (the caller notes in :attr:`holding` what its meshes now hold), :attr:`holding` is forgotten.

        Returns:
            Whether anything was written.

        Raises:
            PowerBudgetError: the rig's heaters together would draw more than ``power_budget_W``;
                nothing was written.
            LimitError: from the driver; nothing was written to that instrument.
            InstrumentError: an instrument failed (after the retries).
        """
        changes: dict[str, tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]] = {}
        change_W = rise_W = 0.0  # the heaters' change of power, and the sum of its rises, W
        for name in self._stale.intersection(targets):  # a write failed there: read what it holds
            self._note_volts(name, self.call(name, self._read_all))
            self._stale.discard(name)
        for name, (channels, values) in targets.items():
            found = self._changes(name, channels, values)
            if found is not None:
                channels, values, now, change, rise = found
                changes[name] = (channels, values, now)
                change_W, rise_W = change_W + change, rise_W + rise
        if not changes:
            return False
        if not keep_holding:
            self.holding.clear()
        drawn = self._drawn_W
        after = drawn + change_W
        self.budget.check_rig(after)
        # one step when no order of the writes can cross the budget, else falling channels first
        one_step = len(changes) == 1 or self.budget.fits_rig(drawn + rise_W)
        try:
            for step in [changes] if one_step else self._falling_first(changes):
                for name, (channels, values, before) in step.items():
                    # noted before the command goes out, so that only its reply is left for after it
                    self.volts[name][channels] = values
                    try:
                        self.call(name, lambda d, c=channels, v=values: d.set_voltages_V(c, v))
                    except BaseException:
                        self.holding.clear()
                        # part of it may have been taken (a pipelined or two-step write): until the
                        # instrument is read again, count each channel at the larger power of the two
                        self.volts[name][channels] = np.where(np.abs(values) > np.abs(before), values, before)
                        self._stale.add(name)
                        raise
        except BaseException:
            self._drawn_W = self.power_W()  # of what was written
            raise
        self._drawn_W = after
        settle = self.rig.settle_time_s if kind == "phase" else self.input_settle_s
        if kind == "phase":
            self.counters.phase_settles += 1
        else:
            self.counters.input_settles += 1
        self.counters.settle_s += settle
        self.counters.instrument_s += settle
        if settle > 0:
            cpu = time.thread_time()
            self.sleep(settle)
            self.counters.settle_cpu_s += time.thread_time() - cpu
        return True

    def _changes(self, name: str, channels: NDArray[np.intp], values: NDArray[np.float64]
                 ) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64], float, float] | None:
        """The channels of heater instrument ``name`` that ``values`` (V) change: (those channels,
        their new and present voltages, the change of their power and the sum of its rises, W);
        None if none changes. A few channels (an input write) are added up in floats: numpy's cost
        per call is more than the work there."""
        now = self.volts[name][channels]
        if channels.size <= SMALL_WRITE:
            change_W = rise_W = 0.0
            same = 0
            for new, old, resistance in zip(
                values.tolist(), now.tolist(), self.resistance_ohm[name][channels].tolist()
            ):
                if new == old:
                    same += 1
                    continue
                step = (new * new - old * old) / resistance
                change_W += step
                rise_W += max(step, 0.0)
            if same == 0:
                return channels, values, now, change_W, rise_W
            if same == channels.size:
                return None
            differ = now != values
            return channels[differ], values[differ], now[differ], change_W, rise_W
        differ = now != values
        if not differ.all():
            if not differ.any():
                return None
            channels, values, now = channels[differ], values[differ], now[differ]
        step_W = (values * values - now * now) / self.resistance_ohm[name][channels]
        return channels, values, now, float(step_W.sum()), float(np.maximum(step_W, 0.0).sum())

    def _falling_first(self, changes: dict[str, tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]]
                       ) -> list[dict[str, tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.float64]]]]:
        """Across instruments: first every channel whose power falls, then the others."""
        falling, rising = {}, {}
        for name, (channels, values, before) in changes.items():
            down = power_falls(before, values)
            if down.any():
                falling[name] = (channels[down], values[down], before[down])
            if (~down).any():
                rising[name] = (channels[~down], values[~down], before[~down])
        return [falling, rising]

    @property
    def input_settle_s(self) -> float:
        """Wait after an input-modulator write, s."""
        value = self.rig.input_settle_time_s
        return self.rig.settle_time_s if value is None else value

    def safe_state(self) -> None:
        """Every channel of every heater instrument to its safe value; every instrument is tried
        even if one fails (the first error is raised).

        An instrument whose last exchange failed or was interrupted (a reply may still be on its
        link) is reopened first, so the safe state does not read a stale reply. If the driver's
        own safe state (usually one vector write) fails, the instrument is reopened and its
        channels are written one by one, the simplest command a heater driver has.
        """
        errors: list[Exception] = []
        self.holding.clear()
        for name in self.heaters:
            try:
                self._make_safe(name)
                self._note_volts(name, self.safe_V[name].copy())
            except Exception as exc:  # keep going: the other heaters must still be made safe
                errors.append(exc)
        if errors:
            raise errors[0]

    def _make_safe(self, name: str) -> None:
        """Instrument ``name``'s heaters to their safe values: resynchronised, then its own safe
        state, then channel by channel."""
        if name in self._unsure:
            self._resync(name)
        try:
            self.call(name, lambda d: d.safe_state())
        except Exception as first:
            self.counters.log.append(f"safe state of {name!r} failed ({first}); channel by channel")
            try:
                self._resync(name)
                for channel, volts in enumerate(self.safe_V[name].tolist()):
                    self.call(name, lambda d, c=channel, v=volts: d.set_voltage_V(c, v))
            except Exception:
                raise first from None
        self._unsure.discard(name)

    def _resync(self, name: str) -> None:
        """A fresh link to instrument ``name`` (what a stale reply on the old one cannot spoil)."""
        self.drivers.pop(name, None)
        try:
            self._reopen(name)
        except InstrumentError as exc:
            self.counters.log.append(f"reopen of {name!r} failed: {exc}")  # call() tries again

    # -- hardware-timed sweeps ---------------------------------------------------------------------
    def hardware(self, name: str) -> HardwareTiming | None:
        """Instrument ``name``'s hardware timing, or None (software-timed)."""
        return self._timings[name]

    def geometry(self, settings: int, inputs: int, modulators: Iterable[str],
                 ports: Sequence[PortRef]) -> SweepGeometry | None:
        """The sweep of ``settings`` x ``inputs`` on these modulator instruments and detector
        ports, or None when they are not all hardware-timed (then every value is set and read by
        its own command). The master (the modulator instrument without a start trigger) gives the
        sample rate, samples per input and dropped samples (default ``ceil(settle_time_s x rate)``)."""
        names = set(modulators) | {p.instrument for p in ports}
        timings = [self.hardware(n) for n in names]
        if not names or any(t is None for t in timings):
            return None
        master = next(t for n in sorted(modulators) if (t := self.hardware(n)) is not None and not t.start_trigger)
        assert master.sample_rate_Sps is not None  # RigConfig.problems
        dropped = master.dropped_samples
        if dropped is None:
            dropped = math.ceil(self.rig.settle_time_s * master.sample_rate_Sps - 1e-9)
        return SweepGeometry(settings, inputs, master.samples_per_input, dropped, master.sample_rate_Sps)

    def sweep(self, geometry: SweepGeometry, heaters: Tables, inputs: Tables,
              ports: Sequence[PortRef]) -> NDArray[np.float64]:
        """Play ``geometry``'s S x B evaluations and return the detectors' readings ``(S, B, ports)`` W.

        Args:
            geometry: the sweep.
            heaters: instrument -> (channels ``(k,)``, phase voltages ``(S, k)`` V), one row per setting.
            inputs: instrument -> (channels ``(k,)``, modulator voltages ``(samples, k)`` V, from
                :meth:`SweepGeometry.input_table`).
            ports: the detector ports read, in order.

        Every table is checked (channel limits by its driver; the rig's power budget with each
        heater at the highest power it has anywhere in the sweep) before any sample is written.
        Hardware-timed heaters put out one sample per setting, started by the master's trigger:
        one sweep. Software-timed heaters are written (and waited for) per setting, each followed
        by a sweep of that setting's inputs.

        Raises:
            LimitError, PowerBudgetError: nothing was written.
            InstrumentError: an instrument refused or failed (every started instrument is stopped).
        """
        for name in self._stale.intersection({**heaters, **inputs}):  # a write failed there: read what it holds
            self._note_volts(name, self.call(name, self._read_all))
            self._stale.discard(name)
        clocked = {n: t for n, t in heaters.items() if self.hardware(n) is not None}
        software = {n: t for n, t in heaters.items() if n not in clocked}
        tables: dict[str, tuple[NDArray[np.intp], NDArray[np.float64], bool]] = {}  # name -> (c, t, per tick)
        for name, (channels, table) in clocked.items():
            tables[name] = (channels, table, False)
        for name, (channels, table) in inputs.items():
            if name in tables:  # heaters and modulators on one instrument: the heaters per tick too
                c, t, _ = tables[name]
                tables[name] = (np.concatenate([c, channels]),
                                np.concatenate([np.repeat(t, geometry.period, axis=0), table], axis=1), True)
            else:
                tables[name] = (channels, table, True)
        checked = {name: (c, self.call(name, lambda d, c=c, t=t: d.check_table(c, t)), tick)
                   for name, (c, t, tick) in tables.items()}
        for name, (channels, table) in software.items():
            self.call(name, lambda d, c=channels, t=table: d.check_table(c, t))
        self._check_sweep_budget({n: (c, t) for n, (c, t, _) in checked.items()} | software)
        if not software:
            return self._play(geometry, checked, ports)
        one = geometry.with_settings(1)
        out = np.empty((geometry.settings, geometry.inputs, len(ports)))
        for s in range(geometry.settings):
            self.write({name: (c, t[s]) for name, (c, t) in software.items()}, "phase")
            rows = {name: (c, t[s * geometry.period:(s + 1) * geometry.period] if tick else t[s:s + 1], tick)
                    for name, (c, t, tick) in checked.items()}
            out[s] = self._play(one, rows, ports)[0]
        return out

    def _check_sweep_budget(self, tables: dict[str, tuple[NDArray[np.intp], NDArray[np.float64]]]) -> None:
        """The rig's heaters, each at the highest power it has in ``tables`` or now, fit the budget."""
        highest: dict[str, NDArray[np.float64]] = {}
        for name, (channels, table) in tables.items():
            peak = np.abs(self.volts[name])
            peak[channels] = np.maximum(peak[channels], np.abs(table).max(axis=0, initial=0.0))
            highest[name] = peak
        total = self.power_W({n: highest.get(n, self.volts[n]) for n in self.heaters})
        if not total <= self.rig.power_budget_W:
            raise PowerBudgetError("all heaters of the rig, at their highest in the sweep", total,
                                   self.rig.power_budget_W)

    def _play(self, geometry: SweepGeometry, tables: dict[str, tuple[NDArray[np.intp], NDArray[np.float64], bool]],
              ports: Sequence[PortRef]) -> NDArray[np.float64]:
        """One sweep: every table written, every acquisition armed, the triggered instruments
        started before the master, every output waited for, every block fetched; all stopped."""
        plan = group_by_instrument([(p.instrument, p.port - 1) for p in ports])
        triggered = [n for n in list(plan) + list(tables) if (t := self.hardware(n)) is not None and t.start_trigger]
        masters = [n for n in tables if n not in triggered]
        timeout_s = 1.1 * geometry.duration_s + 2.0
        started: list[str] = []
        out = np.empty((geometry.samples, len(ports)))
        began = time.perf_counter()
        try:
            for name, (channels, table, tick) in tables.items():
                rate = geometry.rate_Sps if tick else geometry.heater_rate_Sps
                self._do(name, lambda d, c=channels, t=table, r=rate: d.load_table(c, t, r))
            for meter in plan:
                self._do(meter, lambda d: d.arm(geometry.samples, geometry.rate_Sps))
            for name in dict.fromkeys(triggered + masters):
                self._do(name, lambda d: d.start())
                started.append(name)
            for name in tables:
                self._do(name, lambda d: d.finish(timeout_s))
            for meter, (positions, indices) in plan.items():
                block = np.asarray(self._do(meter, lambda d: d.fetch_block_W(timeout_s)), dtype=np.float64)
                out[:, positions] = block[:, indices]
        except BaseException:
            self.holding.clear()
            raise
        finally:
            for name in reversed(started):
                try:
                    self.drivers[name].stop()
                except Exception:  # stopping must reach every instrument
                    pass
            for name, (channels, table, _) in tables.items():
                if name in self.volts:
                    self.volts[name][channels] = table[-1]
            self._drawn_W = self.power_W()
            self.counters.io_s += time.perf_counter() - began
        self.counters.sweeps += 1
        self.counters.phase_settles += geometry.settings
        self.counters.readings += len(plan)
        self.counters.instrument_s += geometry.duration_s
        return geometry.readings(out)

    def _do(self, name: str, action: Callable[[Any], T]) -> T:
        """``action(driver)`` within a sweep: not retried (the sweep's state is on the instruments)."""
        try:
            return action(self.drivers[name])
        except BaseException:
            self._unsure.add(name)
            raise

    # -- detectors -------------------------------------------------------------------------------
    def read(self, meter: str) -> NDArray[np.float64]:
        """Every port of power meter ``meter`` (port p at index p - 1), W."""
        self.counters.readings += 1
        return np.asarray(self.call(meter, lambda d: d.fetch_power_W()), dtype=np.float64)

    def read_ports(self, ports: Sequence[PortRef]) -> NDArray[np.float64]:
        """The readings of ``ports`` in order (every meter involved read once), W."""
        cached = self._port_plans.get(id(ports))
        if cached is None or cached[0] is not ports:  # a new sequence (the layers' are reused)
            plan = group_by_instrument([(p.instrument, p.port - 1) for p in ports])  # port p at index p - 1
            ordered = [m for m, (_, indices) in plan.items() if np.array_equal(indices, np.arange(len(ports)))]
            cached = self._port_plans[id(ports)] = (ports, plan, ordered[0] if len(plan) == 1 and ordered else None)
        plan, ordered_meter = cached[1], cached[2]
        if ordered_meter is not None:  # ports 1..n of one meter: its readings as they come
            readings = self.read(ordered_meter)
            if readings.shape == (len(ports),):
                return readings  # as read() gives it
            return readings[plan[ordered_meter][1]]  # the meter has more ports (or too few: IndexError)
        out = np.empty(len(ports))
        if len(plan) == 1 or not all(hasattr(self.drivers.get(m), "request_power") for m in plan):
            for meter, (positions, indices) in plan.items():
                out[positions] = self.read(meter)[indices]
            return out
        # every meter asked first, then every reply read: the meters answer in parallel
        for meter in plan:
            self.call(meter, lambda d: d.request_power())
        for meter, (positions, indices) in plan.items():
            self.counters.readings += 1
            readings = self.call(meter, lambda d: d.receive_power_W(), retry=lambda d: d.fetch_power_W())
            out[positions] = np.asarray(readings, dtype=np.float64)[indices]
        return out

    def close(self) -> None:
        """Close every instrument and the resource manager."""
        for driver in self.drivers.values():
            try:
                driver.close()
            except Exception:
                pass
        self.drivers.clear()
        try:
            if self.rm is not None:
                self.rm.close()
        except Exception:
            pass
