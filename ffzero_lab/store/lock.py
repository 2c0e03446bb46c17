"""One owner per run record: an advisory lock on ``<runs dir>/locks/run-<id>.lock``.

``fcntl.flock`` locks belong to the open file, so the operating system releases them when the
holding process ends, however it ends (SIGKILL and power loss included): there is no PID to
guess and no stale lock to clear by hand. The file also holds the holder's PID and host, for the
message that refuses a second owner. POSIX only (Linux, macOS), as the lab machines are.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path
from types import TracebackType

from ffzero_lab.core.errors import UserError


class RunLock:
    """The lock of run ``run_id`` in ``runs_dir``; a context manager that holds it.

    Raises (on entering):
        UserError: another process holds it (named by PID and host), or the lock file cannot
            be written.
    """

    def __init__(self, runs_dir: Path, run_id: int) -> None:
        self.path = runs_dir / "locks" / f"run-{run_id}.lock"
        self.run_id = run_id
        self._file: int | None = None

    def acquire(self) -> RunLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UserError(f"cannot write the run's lock: {exc.strerror or exc}", str(self.path)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise UserError(f"run {self.run_id} is held by {holder}; only one process may drive a run "
                            "(wait for it to end, or stop it)", str(self.path)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._file = fd
        return self

    def release(self) -> None:
        if self._file is not None:
            try:
                os.ftruncate(self._file, 0)
            finally:
                os.close(self._file)  # closing the file releases the lock
                self._file = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
