"""A snapshot version's notes: message, trigger, git, size, and what changed since the last one.

Kaggle keeps the notes with the version; the most recently edited changes are
listed first because they are the ones the person remembers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .gitinfo import GitInfo
from .manifest import FileEntry

MAX_NOTES_CHARS = 2000
MAX_LISTED_CHANGES = 10


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.added) + len(self.modified) + len(self.removed)


def diff(old: Mapping[str, FileEntry], new: Mapping[str, FileEntry]) -> Changes:
    changes = Changes()
    for rel, entry in new.items():
        before = old.get(rel)
        if before is None:
            changes.added.append(rel)
        elif before != entry:
            changes.modified.append(rel)
    changes.removed = sorted(rel for rel in old if rel not in new)
    return changes


def _short(path: str, width: int = 80) -> str:
    return path if len(path) <= width else "…" + path[-(width - 1) :]


def compose_notes(
    *,
    message: str | None,
    trigger: str,
    git: GitInfo | None,
    files: Mapping[str, FileEntry],
    changes: Changes | None,
    since_version: int | None,
    mtimes: Mapping[str, int] | None = None,
    left_out: Mapping[str, str] | None = None,
) -> str:
    """Version notes: message, trigger, git, size, and the most recently edited changes first."""
    text = (message or "").strip()
    if len(text) > MAX_NOTES_CHARS // 2:  # keep room for what only syncd can say
        text = text[: MAX_NOTES_CHARS // 2 - 1] + "…"
    lines = [text] if text else []
    lines.append(f"trigger: {trigger}")
    if git is not None:
        where = f" on {git.branch}" if git.branch else " (detached HEAD)"
        lines.append(f"git: {git.describe}{where}, commit {git.commit[:12]}")
    total = sum(entry.size for entry in files.values())
    lines.append(f"files: {len(files)}, {human_bytes(total)}")
    if changes is None:
        lines.append("first snapshot")
    else:
        since = f"v{since_version}" if since_version is not None else "the last snapshot"
        lines.append(
            f"changed since {since}: {len(changes.modified)} modified, "
            f"{len(changes.added)} added, {len(changes.removed)} removed"
        )
        mt = mtimes or {}
        # The files edited last are the ones the person remembers: list those first.
        touched = sorted(
            [("M", p) for p in changes.modified] + [("A", p) for p in changes.added],
            key=lambda item: -mt.get(item[1], 0),
        ) + [("D", p) for p in changes.removed]
        for mark, path in touched[:MAX_LISTED_CHANGES]:
            lines.append(f"  {mark} {_short(path)}")
        if len(touched) > MAX_LISTED_CHANGES:
            lines.append(f"  … and {len(touched) - MAX_LISTED_CHANGES} more")
    if left_out:
        names = ", ".join(_short(p, 60) for p in sorted(left_out)[:5])
        more = f" and {len(left_out) - 5} more" if len(left_out) > 5 else ""
        lines.append(f"left out (changing or unreadable): {names}{more}")
    notes = "\n".join(lines)
    if len(notes) > MAX_NOTES_CHARS:
        notes = notes[: MAX_NOTES_CHARS - 2].rsplit("\n", 1)[0] + "\n…"
    return notes
