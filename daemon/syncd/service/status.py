"""The shape of ``syncd status --json``: the daemon's, and the same rebuilt from disk.

The JSON shape is a contract (scripts depend on it, see the README's "status
--json" section): build it only here.  Without a daemon, the controller fills
the same shape from the state db (``mirror_status_from_disk``) with
``running: false``.  The human rendering of it is the CLI's (``cli.render``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..mirror.model import MirrorStatus, ProjectState

if TYPE_CHECKING:
    from ..config import ProjectConfig
    from ..db.statedb import StateDB


def iso(ts: float | None) -> str | None:
    """UTC ISO-8601 with a Z, or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def project_status(
    pc: ProjectConfig,
    mirror: MirrorStatus | None,
    snapshot: dict[str, Any] | None = None,
    runs: list[dict[str, Any]] | None = None,
    manifest: dict[str, Any] | None = None,
    pull: dict[str, Any] | None = None,
) -> dict[str, Any]:
    state = mirror.state.value if mirror else ProjectState.IDLE.value
    return {
        "name": pc.name,
        "path": str(pc.path),
        "state": state,
        "reason": mirror.reason if mirror else None,
        "mirror": None
        if pc.mirror is None or mirror is None
        else {
            "to": pc.mirror.to.raw,
            "pending": mirror.pending,
            "in_flight": mirror.in_flight,
            "files": mirror.files,
            "bytes": mirror.bytes,
            "last_sync": iso(mirror.last_sync),
            "last_error": mirror.last_error,
            "conflicts": mirror.conflicts,
            "watch": mirror.watch,
        },
        "snapshot": snapshot,
        "manifest": manifest,  # the target's manifest (mirror.manifest), null before the first
        # Kaggle kernel runs (train/): null for a project without a `train:` section.
        "runs": runs if runs is not None else ([] if pc.train is not None else None),
        "pull": pull,  # the return path (mirror.pull); null when not configured
    }


def pull_block(db: StateDB, pc: ProjectConfig) -> dict[str, Any] | None:
    """The return path's state (``pullback.records``), the same with or without a daemon."""
    if pc.mirror is None or not pc.mirror.pull:
        return None
    from ..pullback.records import PullRecords

    stats = PullRecords(db, pc.name).stats()
    return {
        "paths": list(pc.mirror.pull.paths),
        "interval_s": pc.mirror.pull.interval,
        "last_poll": iso(stats["last_poll"]),
        "files_pulled": stats["files_pulled"],
        "conflicts": stats["conflicts"],
        "trashed": stats["trashed"],
        "pending": len(PullRecords(db, pc.name).pending()),  # files to try again next poll
        "trash": str(pc.path / ".syncd-trash"),
        "last_error": stats["last_error"],
    }


def header(*, running: bool, started: float | None, config_error: str | None) -> dict[str, Any]:
    """The top of the shape: whether a daemon answered, and since when."""
    import os

    return {
        "running": running,
        "pid": os.getpid() if running else None,
        "version": __version__,
        "uptime_s": int(time.time() - started) if running and started is not None else None,
        "config_error": config_error,
    }


# Every state a project may have been left in, except "paused" without a pause on record.
_RESTING_STATES = {s.value for s in ProjectState if s is not ProjectState.PAUSED}


def mirror_status_from_disk(db: StateDB, name: str) -> MirrorStatus:
    """What the state db remembers of one project's mirror (no daemon runs it now)."""
    rec = db.project(name)
    files, size = db.count(name)
    if rec.paused:
        state = ProjectState.PAUSED
    elif rec.state in _RESTING_STATES:
        state = ProjectState(rec.state)
    else:
        # Never run, or resumed since it was paused: the next start begins from "starting".
        state = ProjectState.STARTING
    return MirrorStatus(
        state=state,
        reason=rec.pause_reason if rec.paused else rec.last_error,
        pending=0,
        in_flight=0,
        files=files,
        bytes=size,
        last_sync=rec.last_sync,
        last_error=rec.last_error,
        conflicts=db.conflict_count(name),
    )
