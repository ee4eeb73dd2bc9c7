"""Edits that overtake the batch being applied: a rename must not become trash + upload.

The runner takes a settled batch, makes its moves on the remote, then plans
every path of it against the disk.  The folder does not stop meanwhile.  A file
renamed again in that gap — ``train.py → main.py`` is being moved on Drive while
``main.py → models/main.py`` happens on disk — is gone from the path the batch
saw it at, and the plan would trash its remote copy; the next batch's move then
starts at ``main.py``, finds no index row and uploads ``models/main.py`` as a new
file: a new Drive id (what Colab and shared links point at is in the trash) and
the whole file sent again.  The same happens when the second rename comes before
the first move is made (the move is skipped: its destination is gone).

A path the batch saw present (any pending kind but deleted) that the plan finds
gone has an event on its way: the kernel queued one when the path went, for the
path or for a folder above it.  So the deletion of its file is not this batch's
to decide: it is left to the batch that brings the event (``Coalescer.carry_on``),
whose move starts at the path where the index still has the file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .coalescer import Coalescer, Kind, Pending
from .plan import Plan

log = logging.getLogger("syncd.mirror")


@dataclass(frozen=True)
class Overtaken:
    """A path of the batch that moved on; the index has its file (or folder) at ``origin``."""

    origin: str
    path: str
    is_dir: bool

    def holds(self, path: str) -> bool:
        return path == self.origin or (self.is_dir and path.startswith(self.origin + "/"))


def find_overtaken(
    root: Path,
    seen: Mapping[str, Pending],
    moves: list[tuple[str, str, bool]],
    plan: Plan,
) -> list[Overtaken]:
    """The paths of the batch ``seen`` present whose file the plan would now trash."""
    doomed = {r.path for r in plan.deletes}
    if not doomed:
        return []
    sources = {dst: src for src, dst, _ in moves}
    found: list[Overtaken] = []
    for path, entry in seen.items():
        if entry.kind is Kind.DELETED:
            continue  # seen gone: its deletion is this batch's own
        if not entry.is_dir and path in doomed:
            found.append(Overtaken(path, path, False))  # the plan found it gone: later news
            continue
        if os.path.lexists(root / path):
            continue
        for origin in (path, sources.get(path)):
            held = Overtaken(origin, path, entry.is_dir) if origin else None
            if held and (origin in doomed or (held.is_dir and any(map(held.holds, doomed)))):
                found.append(held)
                break
    return found


def hold_overtaken(
    name: str,
    root: Path,
    seen: Mapping[str, Pending],
    moves: list[tuple[str, str, bool]],
    plan: Plan,
    coalescer: Coalescer,
) -> None:
    """Take the overtaken paths' deletions out of ``plan``; the coalescer carries them on."""
    for o in find_overtaken(root, seen, moves, plan):
        plan.deletes = [r for r in plan.deletes if not o.holds(r.path)]
        coalescer.carry_on(o.origin, o.path, is_dir=o.is_dir)
        log.debug("%s: %s changed again while its batch ran; it waits for the next", name, o.path)
