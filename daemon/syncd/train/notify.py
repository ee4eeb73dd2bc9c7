"""A desktop notification when a run ends: ``notify-send`` (Linux) or ``osascript`` (macOS).

Best effort and never in the way: nothing happens when neither program is there (a
server, a service without a session bus), and a failing or slow one is logged at debug
level only. ``train.notify: false`` turns it off.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys

log = logging.getLogger("syncd.train")

TIMEOUT_S = 10.0


def _applescript_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def notification_command(title: str, body: str) -> list[str] | None:
    """The command that shows the notification here, or None if there is none."""
    if sys.platform == "darwin" and (osascript := shutil.which("osascript")):
        script = (
            f"display notification {_applescript_text(body)} with title {_applescript_text(title)}"
        )
        return [osascript, "-e", script]
    if notify_send := shutil.which("notify-send"):
        return [notify_send, "--app-name=syncd", title, body]
    return None


def notify(title: str, body: str) -> bool:
    """Show it; True if a notifier ran and succeeded."""
    command = notification_command(title, body)
    if command is None:
        log.debug("no notify-send or osascript: no desktop notification for %r", title)
        return False
    try:
        done = subprocess.run(
            command, capture_output=True, timeout=TIMEOUT_S, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("desktop notification failed: %s", exc)
        return False
    if done.returncode != 0:
        log.debug("desktop notification failed: %s", done.stderr.decode(errors="replace")[:200])
    return done.returncode == 0
