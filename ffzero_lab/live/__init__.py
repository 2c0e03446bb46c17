"""Live: the progress display, publishing documents on ZMQ, the monitor, and serving a rig's layers
to a remote trainer (``serve`` / ``run --rig``). Imports ``store`` and the rooms below it.
"""
