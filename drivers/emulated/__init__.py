"""An emulated rig: the instruments of an ``instruments.yaml`` served on 127.0.0.1 TCP sockets in
their real command sets, with configurable latency and injectable faults, coupled through a simple
chip model, so that a dry run can go through the real drivers and pyvisa-py.

* :mod:`.server`: a line-oriented TCP server with latency and fault rules,
* :mod:`.qontrol`, :mod:`.n774x`: the Qontrol and Keysight N774x command sets, server side,
* :mod:`.chip`: heater voltages -> phases -> MZI meshes -> detector powers,
* :mod:`.rig`: the emulated rig file and the servers it starts (``ffzero-lab instruments emulate``),
* :mod:`.daqmx`: an emulated NI-DAQmx gRPC device server (sample-clocked AO/AI tasks on a virtual
  clock) that NI's own ``nidaqmx`` package drives through its ``grpc_options``,
* :mod:`.bench`: the emulated chip as that server's device model, for the NI instruments of an
  ``instruments.yaml`` (a hardware-timed bench; ``emulated-rig --timing hardware``).
"""
