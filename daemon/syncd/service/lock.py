"""One daemon per config file: an flock next to the state db.

The kernel drops the lock when its holder dies, so a ``kill -9`` never leaves a
stale lock behind.  ``syncd sync --once`` takes the same lock, so it never
opens the index of a running daemon.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..db.statedb import state_db_path
from ..errors import SyncdError


def instance_lock(config_path: Path) -> InstanceLock:
    """The lock of the daemon (or ``sync --once``) of this config file."""
    return InstanceLock(state_db_path(config_path).with_suffix(".lock"))


class InstanceLock:
    """An flock on a file next to the state db: the kernel drops it when the holder dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise SyncdError(
                f"syncd is already running for this config as pid {holder}",
                "stop it first, or use `syncd status` to talk to it",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def holder(self) -> int | None:
        """The pid of a running holder, or None."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.pread(fd, 32, 0).decode(errors="replace").strip()
                return int(text) if text.isdigit() else None
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
