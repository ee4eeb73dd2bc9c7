"""Every error syncd reports to a person: a short title plus what to do about it.

Errors are converted from errno / API failures in one place (the remotes and
``config``), so the engine only ever sees these classes and can decide whether
a failure concerns one file (record it and go on) or the whole project (change
the project's state and keep recording edits).
"""

from __future__ import annotations


class SyncdError(Exception):
    """Base class: ``str(err)`` is one sentence saying what is wrong and what to do."""

    title = "error"

    def __init__(self, message: str, remedy: str | None = None) -> None:
        self.message = message
        self.remedy = remedy
        super().__init__(message if not remedy else f"{message} ({remedy})")


class ConfigError(SyncdError):
    """The configuration file cannot be used; the message names file, line and key."""

    title = "configuration error"


class StateUnavailable(ConfigError):
    """syncd's own state folder cannot be written (a read-only or full disk, permissions).

    A ``ConfigError`` on purpose: like a broken config it is the setup, not a passing
    fault, so it exits 2 — which the systemd unit does not restart
    (``RestartPreventExitStatus=2``) instead of crash-looping every few seconds.
    """

    title = "state folder unusable"


class RemoteError(SyncdError):
    """Base for failures reported by a remote."""


class TransientError(RemoteError):
    """Network trouble, 5xx, rate limits: retry later with backoff (project goes ``offline``)."""

    title = "remote unreachable"


class AuthRequired(RemoteError):
    """Credentials are missing, expired or revoked: the user has to act."""

    title = "authorization required"


class TargetUnavailable(RemoteError):
    """The target itself is not there (unmounted disk, missing root folder)."""

    title = "target unavailable"


class FileError(SyncdError):
    """A problem with one file only (unreadable, vanished, rejected name): skip it, go on."""

    title = "file skipped"

    def __init__(self, path: str, message: str, remedy: str | None = None) -> None:
        self.path = path
        super().__init__(message, remedy)


class FileChanged(FileError):
    """The file changed while it was being copied; it is retried once it settles."""

    title = "file changed during copy"
