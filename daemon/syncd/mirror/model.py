"""Plain types shared across modules: project states and status snapshots."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class ProjectState(enum.StrEnum):
    STARTING = "starting"
    SCANNING = "scanning"
    SYNCING = "syncing"
    IDLE = "idle"
    PAUSED = "paused"
    OFFLINE = "offline"
    AUTH_REQUIRED = "auth_required"
    ERROR = "error"


class PauseKind(enum.StrEnum):
    USER = "user"  # syncd pause: survives restarts
    DELETES = "deletes"  # mass-deletion guard: needs --confirm-deletes, survives restarts
    FOLDER = "folder"  # project folder missing/empty: clears itself when the folder is back


@dataclass
class MirrorStatus:
    """A consistent snapshot of one project's mirror, for status and logs."""

    state: ProjectState
    reason: str | None
    pending: int
    in_flight: int
    files: int
    bytes: int
    last_sync: float | None
    last_error: str | None
    conflicts: int
    file_errors: dict[str, str] = field(default_factory=dict)
    watch: str | None = None  # "inotify", or "polling …: why" where events cannot be had
