"""National Instruments DAQ modules through NI-DAQmx (``nidaqmx``, NI's own Python API), on the
local NI-DAQmx driver or a remote NI gRPC Device Server (``settings.grpc``):

* :mod:`.analog_output`: :class:`NiAnalogOutput`, an analog-output module (e.g. PXIe-6739, 64
  channels, 16 bit) as heater DAC or input-modulator driver: buffered, sample-clocked,
  non-regenerating tables, single on-demand writes;
* :mod:`.analog_input`: :class:`NiAnalogInput`, an analog-input module (e.g. PXIe-6363 / 6375)
  reading photodiode transimpedance amplifiers, volts turned into watts per channel;
* :mod:`.session`: tasks (local or gRPC) and DAQmx errors as one line naming the setting.
"""

from .analog_input import NiAnalogInput, NiInputSettings
from .analog_output import NiAnalogOutput, NiOutputSettings

__all__ = ["NiAnalogInput", "NiAnalogOutput", "NiInputSettings", "NiOutputSettings"]
