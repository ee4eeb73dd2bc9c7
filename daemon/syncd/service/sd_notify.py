"""Tells systemd how the daemon is doing: the sd_notify protocol, spoken directly.

Owns readiness (``READY=1``), the one-line status ``systemctl status`` shows
(``STATUS=...``), watchdog pings (``WATCHDOG=1``) and the shutdown notice
(``STOPPING=1``). The protocol is one datagram of ``KEY=VALUE`` lines sent to the
AF_UNIX socket named in ``$NOTIFY_SOCKET``, so a few lines of ``socket`` replace
a compiled dependency on libsystemd. Outside systemd (launchd, a terminal, tests)
the variable is unset and every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("syncd.notify")  # the name it had before the service/ package


class SystemdNotifier:
    """Sends sd_notify messages to the service manager that started this process."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self._address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self.enabled: bool = self._address is not None
        # Without a socket there is nobody to ping, so no reason to schedule pings.
        self.watchdog_interval: float | None = _watchdog_interval(env) if self.enabled else None

    def notify(self, **fields: str) -> None:
        """Send ``fields`` as one datagram, e.g. ``notify(READY="1", STATUS="idle")``.

        Never raises: a lost status line must not take the daemon down with it,
        and systemd itself treats notifications as best-effort.
        """
        if self._address is None or not fields:
            return
        # A newline inside a value would start a new KEY=VALUE line, letting a
        # status string (which may contain a file name) inject e.g. "READY=1".
        message = "\n".join(
            f"{key}={' '.join(str(value).splitlines())}" for key, value in fields.items()
        )
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message.encode("utf-8", "replace"), self._address)
        except OSError as exc:
            log.debug("sd_notify to %r failed: %s", self._address, exc)

    def ready(self, status: str) -> None:
        """Startup is complete (ends ``systemctl start`` for ``Type=notify``)."""
        self.notify(READY="1", STATUS=status)

    def status(self, text: str) -> None:
        """Replace the free-form status line shown by ``systemctl status``."""
        self.notify(STATUS=text)

    def watchdog(self) -> None:
        """Prove liveness; call every :attr:`watchdog_interval` seconds when it is set."""
        self.notify(WATCHDOG="1")

    def stopping(self) -> None:
        """Shutdown has begun, so systemd does not mistake it for a hang."""
        self.notify(STOPPING="1", STATUS="stopping")


def _socket_address(value: str) -> str | None:
    """The ``sendto`` address for ``$NOTIFY_SOCKET``, or None when there is nothing usable."""
    if value.startswith("@"):
        # Linux abstract namespace: systemd writes it with "@", the kernel wants a NUL.
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    if value:
        # e.g. "vsock:CID:PORT" (systemd in a VM guest); not a case syncd runs in.
        log.debug("ignoring unsupported NOTIFY_SOCKET %r", value)
    return None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Half the watchdog timeout, as sd_watchdog_enabled(3) recommends, in seconds."""
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = env.get("WATCHDOG_PID")
    # The variables are inherited by children; only the pid systemd named may ping.
    if pid and pid.strip() != str(os.getpid()):
        return None
    return usec / 2 / 1_000_000
