"""Instrument drivers for a photonic training rig, each speaking its instrument's own command set
through a pyvisa resource (the NI-DAQmx modules through NI's ``nidaqmx``).

* :mod:`.qontrol`: Qontrol Q8iv / Q8b multichannel heater driver (serial ASCII),
* :mod:`.keithley2600`: Keithley 2600 SMU (TSP) as one or two heater channels,
* :mod:`.keysight_n774x`: Keysight N7744A / N7745A multiport optical power meter (SCPI),
* :mod:`.thorlabs_pm100`: Thorlabs PM100D / PM100USB single-port power meter (SCPI),
* :mod:`.ni`: NI-DAQmx analog-output (heaters, modulators) and analog-input (photodiode
  amplifiers) modules through ``nidaqmx``, locally or over NI's gRPC Device Server; hardware-timed
  sweeps as one block per module.

Shared pieces: :mod:`.base` (named VISA I/O, errors), :mod:`.limits` (pure checks on heater
writes: limits, power budget, write order), :mod:`.heater` (the heater-driver base class),
:mod:`.meter` (the power-meter base class), :mod:`.transcript` (command transcripts for a
driver's tests). Instruments are named in ``instruments.yaml`` by their entry points in the group
``ffzero_lab.instruments`` (``qontrol``, ``keithley2600``, ``keysight-n774x``, ``thorlabs-pm100``)
or as ``drivers.instruments.<module>:<Class>``; docs/drivers.md shows how to write one.
"""
