"""The promises checked after quiescence, as counts (issue #8, "A chaos test").

* the target's live tree equals the project minus ignored files, md5 by md5
  (``lost``: missing, ``stale``: other content, ``extra``: live but not in the
  project, ``conflicts``: conflict copies nobody caused);
* no duplicate titles (``duplicated``);
* every file the user deleted since the last check is in the trash (``untrashed``);
* nothing syncd did not create was touched (``foreign_touched``);
* no temp files left (``temp_leftovers``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .lineage import Lineage, files_of
from .targets import CONFLICT, DriveTarget, LocalTarget, md5_file

KINDS = (
    "lost",
    "stale",
    "extra",
    "conflicts",
    "duplicated",
    "untrashed",
    "foreign_touched",
    "temp_leftovers",
)


@dataclass
class Counts:
    lost: int = 0
    stale: int = 0
    extra: int = 0
    conflicts: int = 0
    duplicated: int = 0
    untrashed: int = 0
    foreign_touched: int = 0
    temp_leftovers: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)

    def total(self) -> int:
        return sum(getattr(self, k) for k in KINDS)

    def add(self, other: Counts) -> None:
        for k in KINDS:
            setattr(self, k, getattr(self, k) + getattr(other, k))
        for k, v in other.examples.items():
            self.examples.setdefault(k, []).extend(v)
            del self.examples[k][6:]

    def note(self, kind: str, items: list[str]) -> None:
        setattr(self, kind, getattr(self, kind) + len(items))
        if items:
            self.examples.setdefault(kind, []).extend(sorted(items)[:6])

    def summary(self) -> str:
        text = " ".join(f"{k}={getattr(self, k)}" for k in KINDS)
        if self.examples:
            text += "  e.g. " + "; ".join(f"{k}: {v[:3]}" for k, v in self.examples.items())
        return text


def expected_tree(root: Path) -> dict[str, str]:
    return {rel: md5_file(full) for rel, full in files_of(root).items()}


def check(
    root: Path,
    target: LocalTarget | DriveTarget,
    lineage: Lineage,
    verified: set[int],
    foreign: dict[str, str],
) -> tuple[Counts, set[int]]:
    """Compare the project at ``root`` with ``target``; also return the identities verified
    live now (the deletions checked at the next call are among those)."""
    counts = Counts()
    want = expected_tree(root)
    live = target.live()
    counts.note("foreign_touched", [p for p, h in foreign.items() if live.get(p) != h])
    trashed = target.trashed()
    counts.note("foreign_touched", [p for p in foreign if p in trashed])
    have = {p: h for p, h in live.items() if p not in foreign}
    counts.note("lost", [p for p in want if p not in have])
    counts.note("stale", [p for p in want if p in have and have[p] != want[p]])
    extra = [p for p in have if p not in want]
    counts.note("conflicts", [p for p in extra if CONFLICT.search(p)])
    counts.note("extra", [p for p in extra if not CONFLICT.search(p)])
    counts.note("duplicated", target.duplicates())
    counts.note("temp_leftovers", target.temp_leftovers())
    # A trashed Drive item keeps its parent, so a folder moved after the deletion moves
    # the item's path too: a trashed item with the same name counts.
    trashed_names = {p.rsplit("/", 1)[-1] for p in trashed}
    untrashed = []
    for ident in lineage.ended & verified:
        paths = lineage.paths[ident]
        if any(p in want for p in paths):
            # A file is at that path again (file → folder → file, or rm + create): if syncd
            # did not look in between, that is a modification — the old content becomes a
            # Drive revision or is overwritten on local:, as with any edit (the README's
            # combine table: delete then create = modify).  The new content is checked above.
            continue
        if not any(p in trashed or p.rsplit("/", 1)[-1] in trashed_names for p in paths):
            untrashed.append(sorted(paths)[0])
    counts.note("untrashed", untrashed)
    now_verified = {lineage.at[p] for p, h in want.items() if have.get(p) == h and p in lineage.at}
    return counts, now_verified
