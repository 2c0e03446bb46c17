"""The DAQmx faults the emulator raises: the driver's status codes and its style of error text.

A :class:`DaqmxFault` carries a DAQmx status code (from ``nidaqmx.error_codes.DAQmxErrors``; negative
= error) and the extended error text. The servicer sends it the way NI's gRPC Device Server does
(gRPC status UNKNOWN, details = the text, trailing metadata ``ni-error``), so ``nidaqmx`` raises
``DaqError``, ``DaqReadError`` or ``DaqWriteError``. ``_NonDriver`` is a gRPC-level failure that is
not a DAQmx status (session handling, a device model that returns the wrong shape).
"""

from __future__ import annotations

import grpc
from nidaqmx.error_codes import DAQmxErrors


class DaqmxFault(Exception):
    """A DAQmx status (negative = error) with the extended error text the server sends.

    Attributes:
        code: DAQmx status code, e.g. -200077.
        message: Extended error information (what ``DAQmxGetExtendedErrorInfo`` would return).
        samps_per_chan_read: Sent as ``ni-samps-per-chan-read`` trailing metadata when not None.
        samps_per_chan_written: Sent as ``ni-samps-per-chan-written`` when not None.
    """

    def __init__(
        self,
        code: int,
        message: str,
        *,
        samps_per_chan_read: int | None = None,
        samps_per_chan_written: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = int(code)
        self.message = message
        self.samps_per_chan_read = samps_per_chan_read
        self.samps_per_chan_written = samps_per_chan_written
        self.reported = False


# --- DAQmx error texts --------------------------------------------------------------------------
# Codes are the driver's (nidaqmx.error_codes). The first paragraph follows the driver's wording
# (SAMPLES_NOT_YET_AVAILABLE is verbatim from nidaqmx._grpc_interpreter); detail lines name the
# property/setting involved, in the driver's "Property: ... / Requested Value: ..." style.
_TEXT: dict[DAQmxErrors, str] = {
    DAQmxErrors.INVALID_ATTRIBUTE_VALUE: (
        "Requested value is not a supported value for this property. The property value may be "
        "monotonically increasing or decreasing."
    ),
    DAQmxErrors.SAMPLES_CAN_NOT_YET_BE_WRITTEN: (
        "Some or all of the samples to write could not be written to the buffer yet. More space "
        "will free up as samples currently in the buffer are generated.\n\nTo wait for more space "
        "to become available, use a longer write timeout. To make the space available sooner, "
        "increase the sample rate."
    ),
    DAQmxErrors.WAIT_UNTIL_DONE_DOES_NOT_INDICATE_DONE: (
        "Wait Until Done did not indicate that the task was done within the specified timeout.\n\n"
        "Increase the timeout, check the program, and make sure connections for external timing "
        "and triggering are in place."
    ),
    DAQmxErrors.SAMPLES_NOT_YET_AVAILABLE: (
        "Some or all of the samples requested have not yet been acquired.\n\nTo wait for the "
        "samples to become available use a longer read timeout or read later in your program. To "
        "make the samples available sooner, increase the sample rate. If your task uses a start "
        "trigger, make sure that your start trigger is configured correctly. It is also possible "
        "that you configured the task for external timing, and no clock was supplied. If this is "
        "the case, supply an external clock."
    ),
    DAQmxErrors.SAMPLES_WILL_NEVER_BE_AVAILABLE: (
        "Attempted to read a sample beyond the final sample acquired. The acquisition has stopped, "
        "therefore the sample specified by the combination of position and offset will never be "
        "available.\n\nSpecify a position and offset which selects a sample up to, but not beyond, "
        "the final sample acquired. The final sample acquired can be determined by querying the "
        "total samples acquired after an acquisition has stopped."
    ),
    DAQmxErrors.GEN_STOPPED_TO_PREVENT_REGEN_OF_OLD_SAMPLES: (
        "The generation has stopped to prevent the regeneration of old samples. Your application "
        "was unable to write samples to the background buffer fast enough to prevent old samples "
        "from being regenerated."
    ),
    DAQmxErrors.ADC_OVERRUN: (
        "ADC conversion attempted before the prior conversion was complete.\n\nIncrease the "
        "period between ADC conversions. If you are using an external clock, check your signal "
        "for the presence of noise or glitches."
    ),
    DAQmxErrors.INVALID_TASK: "Task specified is invalid or does not exist.",
    DAQmxErrors.INVALID_DEVICE_ID: "Device identifier is invalid.",
    DAQmxErrors.PHYSICAL_CHAN_DOES_NOT_EXIST: (
        "Physical channel specified does not exist on this device.\n\nRefer to the documentation "
        "for channels available on this device."
    ),
    DAQmxErrors.INVALID_SYNTAX_FOR_PHYSICAL_CHANNEL_RANGE: (
        "Syntax for a range of objects in the input string is invalid."
    ),
    DAQmxErrors.CAN_NOT_PERFORM_OP_WHILE_TASK_RUNNING: (
        "Specified operation cannot be performed while the task is running.\n\nStop the task "
        "prior to performing the operation."
    ),
    DAQmxErrors.CAN_NOT_PERFORM_OP_WHEN_NO_CHANS_IN_TASK: (
        "Specified operation cannot be performed when there are no channels in the task."
    ),
    DAQmxErrors.ATTRIBUTE_NOT_SUPPORTED_IN_TASK_CONTEXT: (
        "Specified property is not supported by the device or is not applicable to the task."
    ),
    DAQmxErrors.INVALID_ROUTING_SOURCE_TERMINAL_NAME_ROUTING: (
        "Source terminal to be routed could not be found on the device.\n\nMake sure the terminal "
        "name is valid for the specified device."
    ),
    DAQmxErrors.PAL_RESOURCE_RESERVED: (
        "The specified resource is reserved. The operation could not be completed as specified."
    ),
    DAQmxErrors.MIN_NOT_LESS_THAN_MAX: "Minimum is not less than maximum.",
    DAQmxErrors.DUPLICATE_PHYSICAL_CHANS_NOT_SUPPORTED: (
        "Physical channel specified more than once in the task; duplicate physical channels are not "
        "supported."
    ),
    DAQmxErrors.CHAN_NOT_IN_TASK: "Channel specified is not in the task.",
    DAQmxErrors.INVALID_CHANNEL: "Channel name specified is not valid.",
    DAQmxErrors.WRITE_NO_OUTPUT_CHANS_IN_TASK: (
        "Write cannot be performed, because the task contains no output channels."
    ),
    DAQmxErrors.READ_NO_INPUT_CHANS_IN_TASK: (
        "Read cannot be performed, because the task contains no input channels."
    ),
    DAQmxErrors.OUTPUT_BUFFER_EMPTY: (
        "Generation cannot be started because the output buffer is empty.\n\nWrite data before "
        "starting a buffered generation."
    ),
    DAQmxErrors.INVALID_AO_DATA_WRITE: (
        "Attempted writing analog data that is outside the range of the channel."
    ),
    DAQmxErrors.WRITE_NUM_CHANS_MISMATCH: (
        "Number of samples written does not match the number of channels in the task."
    ),
    DAQmxErrors.CANNOT_WRITE_BEYOND_FINAL_FINITE_SAMPLE: (
        "Cannot write beyond the final finite sample: the finite generation has already "
        "generated all of its samples.\n\nStop the task before writing the next table."
    ),
    DAQmxErrors.READ_BUFFER_TOO_SMALL: "Buffer is too small to fit read data.",
    DAQmxErrors.RUNTIME_ABORTED_ROUTING: (
        "The specified operation cannot be performed because a task has been aborted or a "
        "device has been removed from the system."
    ),
    DAQmxErrors.SAMP_CLK_RATE_MUST_BE_SPECD: (
        "Sample clock rate must be specified when the sample clock source is set to an external terminal."
    ),
    DAQmxErrors.INVALID_NUMBER_SAMPLES_TO_READ: "Number of samples to read must be -1 or greater.",
}
_RESOURCE_RESERVED = DAQmxErrors.PAL_RESOURCE_RESERVED.value  # -50103, an NI-PAL status


def _fault(
    err: DAQmxErrors | int,
    task_name: str | None = None,
    *details: str,
    samps_per_chan_read: int | None = None,
    samps_per_chan_written: int | None = None,
) -> DaqmxFault:
    code = int(err.value if isinstance(err, DAQmxErrors) else err)
    try:
        text = _TEXT.get(DAQmxErrors(code), "")
    except ValueError:
        text = ""
    parts = [text]
    detail = "\n".join(d for d in details if d)
    if detail:
        parts.append(detail)
    if task_name:
        parts.append(f"Task Name: {task_name}")
    parts.append(f"Status Code: {code}")
    return DaqmxFault(
        code,
        "\n\n".join(parts),
        samps_per_chan_read=samps_per_chan_read,
        samps_per_chan_written=samps_per_chan_written,
    )


def _fmt(x: float) -> str:
    return f"{x:.6e}"


class _NonDriver(Exception):
    """A gRPC-level failure that is not a DAQmx status (session handling, model bugs)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
