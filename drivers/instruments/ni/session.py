"""NI-DAQmx tasks on the local driver or on an NI gRPC Device Server, and DAQmx errors as one line.

``nidaqmx.Task(name)`` talks to the NI-DAQmx driver installed on this computer;
``nidaqmx.Task(name, grpc_options=nidaqmx.GrpcSessionOptions(channel, name))`` to a gRPC Device
Server (NI's, on a remote chassis, or :mod:`drivers.emulated.daqmx`). A driver's tasks share one
gRPC channel, opened without the client's 4 MiB cap on received messages (a sweep's block can be
larger).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import nidaqmx
from nidaqmx.error_codes import DAQmxErrors
from nidaqmx.errors import DaqError, RpcError

from ffzero_lab.rig import InstrumentError

#: DAQmx properties named in refusals -> what sets them in ``instruments.yaml``.
SETTINGS = {
    "DAQmx_SampClk_Rate": "timing.sample_rate_Sps",
    "DAQmx_SampClk_Src": "timing.sample_clock",
    "DAQmx_DigEdge_StartTrig_Src": "timing.start_trigger",
    "DAQmx_SampQuant_SampPerChan": "samples per sweep",
    "DAQmx_Buf_Output_BufSize": "samples per sweep (settings x (dropped_samples + inputs x samples_per_input))",
    "DAQmx_Buf_Input_BufSize": "samples per sweep (settings x (dropped_samples + inputs x samples_per_input))",
    "DAQmx_AO_Max": "channels (voltage_min_V .. voltage_max_V)",
    "DAQmx_AI_Max": "settings.range_V",
}


class DaqmxSession:
    """Where an instrument's tasks live: the local NI-DAQmx driver (``grpc`` None) or the gRPC
    Device Server at ``grpc`` (``host:port``).

    Args:
        instrument: the instrument's name (task names start with it).
        grpc: the server's address, or None.
    """

    def __init__(self, instrument: str, grpc: str | None) -> None:
        self.instrument, self.address = instrument, grpc
        self.channel: Any = None
        if grpc is not None:
            import grpc as grpc_lib

            self.channel = grpc_lib.insecure_channel(grpc, options=[("grpc.max_receive_message_length", -1),
                                                                    ("grpc.max_send_message_length", -1)])
        self.tasks: list[nidaqmx.Task] = []

    @property
    def where(self) -> str:
        """``local NI-DAQmx`` or ``NI gRPC Device Server at host:port``."""
        return "local NI-DAQmx" if self.address is None else f"NI gRPC Device Server at {self.address}"

    def task(self, role: str) -> nidaqmx.Task:
        """A new task named ``<instrument>-<role>-<random>`` (unique on a shared server)."""
        name = f"{self.instrument}-{role}-{uuid.uuid4().hex[:8]}"
        if self.channel is None:
            task = nidaqmx.Task(name)
        else:
            task = nidaqmx.Task(name, grpc_options=nidaqmx.GrpcSessionOptions(self.channel, name))
        self.tasks.append(task)
        return task

    def close(self) -> None:
        """Clear every task and close the channel (errors ignored: the link may be gone)."""
        for task in self.tasks:
            try:
                task.close()
            except Exception:
                pass
        self.tasks.clear()
        if self.channel is not None:
            self.channel.close()
            self.channel = None


class ClockedTask:
    """What both NI drivers do with their sample-clocked task ``_clocked``: stop it."""

    _clocked: Any
    transfers: int

    def stop(self) -> None:
        """Stop the sweep's task (errors ignored: it is called after failures too)."""
        try:
            self._clocked.stop()
            self.transfers += 1
        except Exception:
            pass


def daq_failure(exc: Exception, instrument: str, doing: str, timing: Any = None) -> InstrumentError:
    """A DAQmx refusal (or a lost gRPC link) as one line naming the instrument and the setting.

    Args:
        exc: a ``DaqError`` (``DaqReadError``, ``DaqWriteError``) or ``RpcError``.
        instrument: the instrument's name.
        doing: what the driver was doing, e.g. ``"loading a sweep of 1764 samples at 2e+06 S/s"``.
        timing: the instrument's hardware timing (names the trigger a wait never got).
    """
    if isinstance(exc, RpcError):
        return InstrumentError(f"gRPC link failed while {doing}: {str(exc).splitlines()[0]}", instrument,
                               command=doing, transient=True)
    text = str(exc)
    code = getattr(exc, "error_code", None)
    fields = dict(re.findall(r"^([A-Za-z ]+?):\s*(.+)$", text, flags=re.MULTILINE))
    prop = fields.get("Property", "")
    setting = SETTINGS.get(prop)
    if code == DAQmxErrors.WAIT_UNTIL_DONE_DOES_NOT_INDICATE_DONE.value:
        trigger = getattr(timing, "start_trigger", "") or "its start"
        within = fields.get("Timeout Specified", "?")
        message = (f"timing.start_trigger {trigger!r}: the sweep did not finish within {within}"
                   f" (waiting for {fields.get('Waiting for', 'the trigger or clock')})")
    elif code in (DAQmxErrors.SAMPLES_CAN_NOT_YET_BE_WRITTEN.value,) or "BufSize" in prop:
        message = (f"{SETTINGS['DAQmx_Buf_Output_BufSize']}: {fields.get('Samples per channel in this write', '?')} "
                   f"is more than the buffer of {fields.get('Buffer Size', fields.get('Maximum Value', '?'))}")
    elif setting is not None:
        limit = fields.get("Maximum Value")
        message = f"{setting} = {_number(fields.get('Requested Value', '?'))} refused" + (
            f" (maximum {_number(limit)})" if limit is not None else "")
    else:
        first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
        message = first
    if isinstance(exc, DaqError) and code is not None:
        message += f" [DAQmx error {code}]"
    return InstrumentError(f"{message} while {doing}", instrument)


def _number(text: str) -> str:
    """A number of a DAQmx message, shortly (``2.000000e+06`` -> ``2e+06``); other text as it is."""
    try:
        return f"{float(text):.6g}"
    except ValueError:
        return text
