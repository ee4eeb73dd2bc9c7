"""Every error syncd reports to a person: a short title plus what to do about it.

Errors are converted from errno / API failures in one place (the remotes and
``config``), so the engine only ever sees these classes and can decide whether
a failure concerns one file (record it and go on) or the whole project (change
the project's state and keep recording edits).
"""

from __future__ import annotations


class SyncdError(Exception):
    """Base class: ``str(err)`` is one sentence saying what is wrong and what to do.

    ``exit_code`` is what the ``syncd`` command exits with when this error ends it
    (the README's table: 1 failure, 2 usage or config error, 3 daemon not running).
    """

    title = "error"
    exit_code = 1

    def __init__(self, message: str, remedy: str | None = None) -> None:
        self.message = message
        self.remedy = remedy
        super().__init__(message if not remedy else f"{message} ({remedy})")


class ConfigError(SyncdError):
    """The configuration file cannot be used; the message names file, line and key."""

    title = "configuration error"
    exit_code = 2


class UsageError(SyncdError):
    """The command asked for something that cannot be (an unknown project, a missing name)."""

    title = "usage error"
    exit_code = 2


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
