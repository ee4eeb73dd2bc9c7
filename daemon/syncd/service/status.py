"""The shape of ``syncd status --json`` and its human rendering.

The JSON shape is a contract (scripts depend on it, see the README): build it
only here.  Without a daemon, the same shape is rebuilt from the state db with
``running: false``.
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
        projects.append(project_status(pc, mirror if pc.mirror else None, snapshot))
    return {
        "running": False,
        "pid": None,
        "version": __version__,
        "uptime_s": None,
        "config_error": None,
        "projects": projects,
    }


def _ago(stamp: str | None, now: float) -> str:
    if stamp is None:
        return "never"
    ts = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    secs = max(0, int(now - ts))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if secs >= size:
            return f"{secs // size} {unit} ago"
    return f"{secs} s ago"


def human_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def render(status: dict[str, Any], now: float | None = None) -> str:
    """The compact human view: one block per project."""
    now = time.time() if now is None else now
    lines = []
    if status["running"]:
        lines.append(
            f"syncd {status['version']} running as pid {status['pid']}, "
            f"up {_ago(iso(now - status['uptime_s']), now).replace(' ago', '')}"
        )
    else:
        lines.append("syncd is not running; last known state:")
    if status.get("config_error"):
        lines.append(f"config error (still running the previous config): {status['config_error']}")
    for p in status["projects"]:
        lines.append("")
        head = f"{p['name']}: {p['state']}"
        if p.get("reason") and p["state"] in ("paused", "offline", "auth_required", "error"):
            head += f" — {p['reason']}"
        lines.append(head)
        m = p.get("mirror")
        if m:
            lines.append(f"  mirror   {p['path']} → {m['to']}")
            lines.append(
                f"           {m['files']} files, {human_size(m['bytes'])}; pending {m['pending']}, "
                f"in flight {m['in_flight']}; last sync {_ago(m['last_sync'], now)}"
            )
            if m["conflicts"]:
                lines.append(f"           {m['conflicts']} conflict copies kept on the target")
            if m["last_error"] and m["last_error"] != p.get("reason"):
                lines.append(f"           last error: {m['last_error']}")
        s = p.get("snapshot")
        if s:
            version = f"v{s['last_version']}" if s.get("last_version") else "no version yet"
            lines.append(
                f"  snapshot {s['dataset']}: {version} ({s.get('status') or '-'}), "
                f"last {_ago(s.get('last_at'), now)}, next {s.get('next_at') or '-'}"
            )
        r = p.get("run")
        if r:
            lines.append(f"  run      {r['kernel']} v{r.get('version')}: {r.get('status')}")
    return "\n".join(lines)
