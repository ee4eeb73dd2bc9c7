"""What the CLI prints for people: the status view, sizes, the snapshot history table.

Reads only the ``status --json`` shape (``service.status``) and plain records,
so the same text comes out with and without a running daemon.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from ..service.status import iso


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
            mf = p.get("manifest")
            if mf:  # the target's manifest (syncd flush, syncd colab)
                lines.append(f"           manifest {mf['seq']}, written {_ago(mf['at'], now)}")
        if pl := p.get("pull"):  # the return path (mirror.pull)
            lines.append(
                f"  pull     {', '.join(pl['paths'])} every {pl['interval_s']:g}s: "
                f"{pl['files_pulled']} pulled, {pl['conflicts']} conflict copies, "
                f"{pl['trashed']} to {pl['trash']}; last poll {_ago(pl['last_poll'], now)}"
            )
            if pl["last_error"]:
                lines.append(f"           pull error: {pl['last_error']}")
        s = p.get("snapshot")
        if s:
            version = f"v{s['last_version']}" if s.get("last_version") else "no version yet"
            lines.append(
                f"  snapshot {s['dataset']}: {version} ({s.get('status') or '-'}), "
                f"last {_ago(s.get('last_at'), now)}, next {s.get('next_at') or '-'}"
            )
            if d := s.get("data"):  # snapshot.data: the data part's own dataset
                held = f", {d['files']} files, {human_size(d['bytes'])}" if d.get("files") else ""
                data_version = (
                    f"v{d['last_version']}" if d.get("last_version") else "no version yet"
                )
                lines.append(
                    f"  data     {d['dataset']}: {data_version} ({d.get('status') or '-'}{held}), "
                    f"last {_ago(d.get('last_at'), now)}"
                )
        for run in p.get("runs") or []:  # active runs and the last few (train/)
            where = f"v{run['version']}" if run.get("version") else "not pushed"
            lines.append(
                f"  run      {run['id']} {run['kernel']} {where} on {run['machine_shape']}, "
                f"snapshot v{run['snapshot_version']}: {run['state']}"
                + (f" — {run['failure']}" if run.get("failure") else "")
            )
    return "\n".join(lines)


def snapshot_history(history: list[dict[str, Any]]) -> list[str]:
    """``syncd snapshots``: one line per version, newest first, under a header; with
    ``snapshot.data``, a ``data`` column: the data dataset's version each code version uses."""
    split = any(h.get("data") for h in history)
    data_head = f"  {'data':>16}" if split else ""
    lines = [
        f"{'version':>7}  {'time (UTC)':20}  {'files':>6}  {'size':>9}  {'status':9}"
        f"{data_head}  notes"
    ]
    for h in history:
        version = f"v{h['version']}" if h.get("version") else "-"
        first_line = (h.get("notes") or "").splitlines()[0] if h.get("notes") else ""
        data = ""
        if split:
            d = h.get("data")
            held = f"v{d['version']} {human_size(d['bytes'])}" if d else "-"
            data = f"  {held:>16}"
        lines.append(
            f"{version:>7}  {h['at'] or '-':20}  {h['files']:>6}  {human_size(h['bytes']):>9}  "
            f"{h['status']:9}{data}  {first_line[:60]}"
        )
    if split:
        ref = next(h["data"]["dataset"] for h in history if h.get("data"))
        lines.append(f"data: the version of {ref} (snapshot.data) each code version goes with")
    return lines


def sync_lines(result: dict[str, Any]) -> Iterator[tuple[bool, str]]:
    """``syncd sync``'s answer as (is_a_problem, line) pairs: problems go to stderr."""
    if not result.get("once"):
        for name in result["projects"]:
            yield False, f"asked the daemon to reconcile {name} now."
        return
    for p in result["projects"]:
        for path, why in p["skipped"].items():
            yield True, f"{p['name']}: skipped {path}: {why}"
        if p["problem"]:
            yield True, f"{p['name']}: {p['problem']}"
        if p["files"] is not None:
            yield (
                False,
                f"{p['name']}: {p['files']} files ({human_size(p['bytes'])}) mirrored to "
                f"{p['target']}; {p['pending']} pending, {len(p['skipped'])} skipped",
            )
