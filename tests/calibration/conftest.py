"""The emulated rig's fixtures, shared with tests/rig."""

from tests.rig.conftest import emulated, start_rig  # noqa: F401  (pytest fixtures)
