"""The shape of ``syncd status --json``: the daemon's, and the same rebuilt from disk.

The JSON shape is a contract (scripts depend on it, see the README): build it
only here.  Without a daemon, the same shape is rebuilt from the state db with
``running: false``.  The human rendering of it is the CLI's (``cli.render``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..mirror.model import MirrorStatus, ProjectState

if TYPE_CHECKING:
    from ..config import Config, ProjectConfig
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
    run: dict[str, Any] | None = None,
    runs: list[dict[str, Any]] | None = None,
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
        },
        "snapshot": snapshot,
        "run": run,
        "runs": runs if runs is not None else ([] if pc.train is not None else None),
    }


def daemon_status(
    projects: list[dict[str, Any]], started: float, config_error: str | None
) -> dict[str, Any]:
    import os

    return {
        "running": True,
        "pid": os.getpid(),
        "version": __version__,
        "uptime_s": int(time.time() - started),
        "config_error": config_error,
        "projects": projects,
    }


def status_from_disk(config: Config, db: StateDB) -> dict[str, Any]:
    """What the state db remembers, for ``syncd status`` when no daemon runs."""
    projects = []
    for pc in config.projects:
        rec = db.project(pc.name)
        files, size = db.count(pc.name)
        if rec.paused:
            state = ProjectState.PAUSED
        else:
            state = ProjectState(rec.state) if rec.state else ProjectState.STARTING
        mirror = MirrorStatus(
            state=state,
            reason=rec.pause_reason if rec.paused else rec.last_error,
            pending=0,
            in_flight=0,
            files=files,
            bytes=size,
            last_sync=rec.last_sync,
            last_error=rec.last_error,
            conflicts=db.conflict_count(pc.name),
        )
        snapshot = None
        if pc.snapshot is not None:
            from ..snapshot.store import SnapshotStore  # ~55 ms: only when a project has one

            snapshot = SnapshotStore(db, pc.name, pc.snapshot.dataset).status_block()
        runs = None
        if pc.train is not None:
            from ..train.service import runs_block  # only when a project trains
            from ..train.store import RunStore

            runs = runs_block(RunStore(db), pc.name)
        projects.append(project_status(pc, mirror if pc.mirror else None, snapshot, runs=runs))
    return {
        "running": False,
        "pid": None,
        "version": __version__,
        "uptime_s": None,
        "config_error": None,
        "projects": projects,
    }
