"""An emulated rig: the instruments of an ``instruments.yaml`` served on 127.0.0.1 TCP sockets,
speaking their real command sets, coupled through a simple chip model.

The emulated rig file names the instruments file it plays; the emulator takes the instruments,
their socket ports (``TCPIP0::127.0.0.1::<port>::SOCKET`` resources), heater resistances and layer
maps from it, so the two files cannot disagree. Per instrument it adds a reply latency and fault
rules; the ``chip`` section sets the optical model (:mod:`drivers.emulated.chip`). The NI-DAQmx
instruments (:mod:`drivers.instruments.ni`) are served together by one emulated NI gRPC device
server (:mod:`drivers.emulated.daqmx`) at the address their ``settings.grpc`` names, one device per
instrument (its ``resource``), the chip as its device model (:mod:`drivers.emulated.bench`); per
device the file may set ``max_rate_Sps`` and ``buffer_samples``.

```yaml
emulator: drivers.emulated.rig:EmulatedRig
instruments_file: instruments.emulated.yaml
chip: {seed: 0, p_pi_W: 0.025, input_power_W: 0.001, noise: 0.001}
instruments:
  heaters: {latency_s: 0.0005, faults: [{match: "V3=*", reply: "E15:03", count: 1}]}
```
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ffzero_lab.core.errors import ConfigError, validation_error
from ffzero_lab.rig import RigConfig, find_emulator, import_object, load_rig, resolve_driver_class

from .bench import ChipBench, ni_kind
from .chip import ChipSettings, EmulatedChip
from .daqmx import DaqmxServer, DeviceSpec
from .instrument import EmulatedInstrument, EmulationContext
from .server import Fault, LineServer


class FaultConfig(BaseModel):
    """A fault rule (see :class:`drivers.emulated.server.Fault`)."""

    model_config = ConfigDict(extra="forbid")

    match: str = Field(description="Glob on the command line, e.g. 'V3=*'.")
    reply: str | None = Field(None, description="Reply this line instead, e.g. 'E15:03'.")
    silent: bool = Field(False, description="Reply nothing (the client times out).")
    drop: bool = Field(False, description="Close the connection instead of replying (the client may reconnect).")
    delay_s: float = Field(0.0, ge=0, description="Extra latency, s.")
    count: int | None = Field(None, ge=1, description="How many commands it hits; null: all.")
    after: int = Field(0, ge=0, description="Matching commands answered normally before it starts to hit.")


class ServedInstrument(BaseModel):
    """How one instrument is served."""

    model_config = ConfigDict(extra="forbid")

    latency_s: float = Field(0.0, ge=0, description="Delay before every reply, s.")
    faults: list[FaultConfig] = Field(default_factory=list)
    model: str | None = Field(
        None, description="Emulated model, as its emulator knows it (Q8iv or Q8b for a Qontrol, default Q8iv; "
        "N7744A or N7745A for an N774x, default N7744A).")
    emulator: str | None = Field(
        None, description="Emulator factory as 'module:function'; default: the entry point of "
        "'ffzero_lab.emulated_instruments' named as the instrument's driver.")
    max_rate_Sps: float | None = Field(None, gt=0, description="NI devices: the module's highest sample rate, "
                                       "S/s (default 1e6 for AO, as a PXIe-6739; 2e6 for AI, as a PXIe-6368).")
    buffer_samples: int | None = Field(None, ge=2, description="NI devices: buffer size, samples per channel "
                                       "(default 4194304).")


class EmulatedRigConfig(BaseModel):
    """An emulated rig file."""

    model_config = ConfigDict(extra="forbid")

    emulator: str = Field(description="This class, 'drivers.emulated.rig:EmulatedRig'.")
    instruments_file: Path = Field(description="The instruments.yaml played, relative to this file.")
    chip: ChipSettings = Field(default_factory=ChipSettings)
    instruments: dict[str, ServedInstrument] = Field(default_factory=dict)


class EmulatedRig:
    """The servers of an emulated rig; a context manager that starts and stops them.

    Args:
        config: the emulated rig file's contents.
        rig: the instruments file it plays.
        any_port: serve on free ports instead of the instruments file's (see :attr:`resources`).
    """

    def __init__(self, config: EmulatedRigConfig, rig: RigConfig, any_port: bool = False) -> None:
        self.config, self.rig = config, rig
        self.chip = EmulatedChip(rig, config.chip)
        self.lock = threading.Lock()
        self.heaters: dict[str, Any] = {}  # heater instrument -> its emulator (volts, version)
        self.servers: dict[str, LineServer] = {}
        self.daqmx: DaqmxServer | None = None
        devices = {}
        for name, inst in rig.instruments.items():
            if ni_kind(inst.driver) is not None:
                devices[inst.resource] = _device(inst, config.instruments.get(name, ServedInstrument()))
        if devices:
            self.daqmx = DaqmxServer(devices, ChipBench(self.chip, rig), port=0 if any_port else _grpc_port(rig),
                                     max_wall_wait_s=60.0)
        for name in rig.instruments:
            if ni_kind(rig.instruments[name].driver) is not None:
                continue
            served = config.instruments.get(name, ServedInstrument())
            port = 0 if any_port else _socket_port(rig, name)
            faults = [Fault(**f.model_dump()) for f in served.faults]
            self.servers[name] = LineServer(name, self._emulator(name, served), port, served.latency_s, faults)

    @classmethod
    def from_file(cls, path: str | Path, any_port: bool = False) -> "EmulatedRig":
        """Read an emulated rig file (and the instruments file it names)."""
        path = Path(path)
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read emulated rig: {exc}", str(path)) from None
        try:
            config = EmulatedRigConfig.model_validate(document)
        except ValidationError as exc:
            raise validation_error(exc, str(path)) from None
        rig = load_rig(path.parent / config.instruments_file)
        unknown = set(config.instruments) - set(rig.instruments)
        if unknown:
            raise ConfigError(
                f"not in {config.instruments_file}: {', '.join(sorted(unknown))}", str(path), "instruments"
            )
        return cls(config, rig, any_port)

    def _emulator(self, name: str, served: ServedInstrument) -> Any:
        """Instrument ``name``'s emulator, its handler serialised with the rest of the rig."""
        inst, where = self.rig.instruments[name], f"instruments.{name}"
        if served.emulator is not None:
            factory = import_object(served.emulator, "emulated rig", f"{where}.emulator")
        else:
            factory = find_emulator(inst.driver, "emulated rig", f"{where}.driver")
        context = EmulationContext(name, self.rig, served.model,
                                   lambda ports, samples: self._read(name, ports, samples))
        try:
            emulator: EmulatedInstrument = factory(context)
        except (KeyError, ValueError) as exc:  # e.g. a model the emulator does not know
            raise ConfigError(f"cannot emulate {inst.driver!r}: {exc}", "emulated rig", where) from None
        if resolve_driver_class(inst.driver, "emulated rig", f"{where}.driver").kind == "heater":
            self.heaters[name] = emulator
        return self._locked(emulator.handle)

    def _locked(self, handle: Any) -> Any:
        def locked(line: str) -> list[bytes]:
            with self.lock:
                return handle(line)
        return locked

    def _read(self, meter: str, ports: int, samples: int) -> np.ndarray:
        volts = {name: q.volts for name, q in self.heaters.items()}
        state = tuple(q.version for q in self.heaters.values())
        return self.chip.port_powers_W(meter, ports, volts, samples, state)

    # -- running ---------------------------------------------------------------------------
    def start(self) -> "EmulatedRig":
        """Start every server."""
        for server in self.servers.values():
            server.start()
        if self.daqmx is not None:
            self.daqmx.start()
        return self

    def stop(self) -> None:
        """Stop every server."""
        for server in self.servers.values():
            server.stop()
        if self.daqmx is not None:
            self.daqmx.stop()

    def __enter__(self) -> "EmulatedRig":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def resources(self) -> dict[str, str]:
        """Instrument name -> the resource string that reaches its server (an NI instrument: the
        gRPC address of the bench's device server)."""
        out = {name: server.resource for name, server in self.servers.items()}
        if self.daqmx is not None:
            out.update({name: self.daqmx.address for name in self.rig.instruments if name not in out})
        return out

    def instruments_config(self) -> RigConfig:
        """The instruments file with every resource pointing at this rig's servers (pyvisa-py)."""
        return served_config(self.rig, self.resources)

    def inject(self, name: str, fault: Fault) -> None:
        """Add a fault rule to instrument ``name``'s server while it runs."""
        self.servers[name].inject(fault)


def served_config(rig: RigConfig, resources: dict[str, str]) -> RigConfig:
    """``rig`` with every instrument pointed at its emulated server: a VISA instrument's resource,
    an NI instrument's ``settings.grpc`` (given as ``resources[name]``, ``host:port``)."""
    instruments = {}
    for name, inst in rig.instruments.items():
        if ni_kind(inst.driver) is not None:
            instruments[name] = inst.model_copy(update={"settings": {**inst.settings, "grpc": resources[name]}})
        else:
            instruments[name] = inst.model_copy(update={"resource": resources[name]})
    return rig.model_copy(update={"instruments": instruments, "visa_library": "@py"})


def _device(inst: Any, served: ServedInstrument) -> DeviceSpec:
    """The emulated DAQ device of an NI instrument: AO with its channels, or AI with its ports."""
    buffer = {"buffer_samps_per_chan": served.buffer_samples} if served.buffer_samples else {}
    if ni_kind(inst.driver) == "ao":
        count = inst.channels.count
        return DeviceSpec("ao", count, max_rate=served.max_rate_Sps, product_type=f"PXIe-6739 x {-(-count // 64)} "
                          f"(emulated, {count} channels)", **buffer)
    ports = int(inst.settings.get("ports", 1))
    return DeviceSpec("ai", ports, max_rate=served.max_rate_Sps, product_type=f"PXIe-6368 (emulated, {ports} "
                      "channels)", **buffer)


def _grpc_port(rig: RigConfig) -> int:
    """The one port on 127.0.0.1 every NI instrument's ``settings.grpc`` names."""
    addresses = {str(inst.settings.get("grpc")) for inst in rig.instruments.values()
                 if ni_kind(inst.driver) is not None}
    host, _, port = next(iter(addresses)).rpartition(":")
    if len(addresses) != 1 or host not in ("127.0.0.1", "localhost") or not port.isdigit():
        raise ConfigError(f"the emulated bench serves every NI instrument at one 127.0.0.1:<port>, not "
                          f"{sorted(addresses)}", "instruments file", "instruments.<NI>.settings.grpc")
    return int(port)


def _socket_port(rig: RigConfig, name: str) -> int:
    """The port of a ``TCPIP::127.0.0.1::<port>::SOCKET`` resource (the emulator serves only there)."""
    parts = rig.instruments[name].resource.split("::")
    if len(parts) != 4 or parts[-1].upper() != "SOCKET" or parts[1] not in ("127.0.0.1", "localhost"):
        raise ConfigError(f"the emulated rig serves TCPIP::127.0.0.1::<port>::SOCKET resources, not {parts!r}",
                          "instruments file", f"instruments.{name}.resource")
    return int(parts[2])
