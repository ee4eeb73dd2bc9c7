"""The per-file decisions of the mirror, as pure functions of what is known (tested row by row).

No I/O here: the applier gathers the facts (the index record, the local file,
what the remote holds at the path right now) and carries out the answer.
Where a fact costs something (the local md5 is a read of the file, the remote's
state a request), the decision asks for it (``HASH``, ``LOOK``) and is taken
again once it is known, so nothing is read or asked unless the answer depends
on it.

The promises these encode (README, "What syncd promises"): a remote file that
syncd did not write, or that changed there since syncd wrote it, is never
overwritten or deleted — it becomes a conflict copy or is left alone; a file
whose bytes are already on the remote is adopted, not sent again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal


class Upload(enum.Enum):
    """What to do with a local file that differs from the index."""

    HASH = "hash"  # read the local md5 first, then decide again
    LOOK = "look"  # ask the remote what is at the path, then decide again
    TOUCH = "touch"  # same bytes as recorded (a touch, chmod, rename in place): record the stat
    CREATE = "create"  # nothing at the path on the remote: upload a new file
    UPDATE = "update"  # the remote holds syncd's last version: upload over it
    ADOPT = "adopt"  # the remote already holds these bytes: record them, send nothing
    LOOK_INSIDE = "look inside"  # a folder is at the path: ask whether it holds anything
    CONFLICT = "conflict"  # someone else's file (or folder) is there: rename it aside, then create
    CLEAR = "clear"  # an empty folder is in the way: trash it, then create


class Delete(enum.Enum):
    """What to do with the remote copy of a file deleted locally."""

    FORGET = "forget"  # nothing of ours there (or deletions: keep): only drop the index row
    TRASH = "trash"  # our copy, unchanged there: to the target's trash
    KEEP_THEIRS = "keep theirs"  # changed on the remote since syncd wrote it: leave it


class Move(enum.Enum):
    """What to do with a local rename whose source the index knows."""

    SKIP = "skip"  # not a move on the remote: upload + trash reconcile the two paths instead
    MOVE = "move"  # the destination is free: move
    TRASH_DESTINATION = "trash destination"  # our own copy is at the destination: trash, move
    CONFLICT_DESTINATION = "conflict destination"  # someone else's: rename it aside, move


@dataclass(frozen=True)
class Known:
    """The index's record of a path: what syncd last sent, and the remote id it got."""

    size: int
    md5: str
    remote_id: str


@dataclass(frozen=True)
class There:
    """What the remote holds at a path now."""

    is_dir: bool
    id: str = ""
    md5: str | None = None


class Unknown(enum.Enum):
    NOT_LOOKED = "not looked"  # the remote has not been asked about the path yet


NOT_LOOKED = Unknown.NOT_LOOKED


def ours(known: Known | None, there: There, stable_ids: bool) -> bool:
    """The remote item is the one syncd wrote last, unchanged since.

    Where ids are paths (``Features.stable_ids`` false: ``local:``), an id says
    nothing after a folder move, so the content alone decides.
    """
    if known is None or there.is_dir or there.md5 != known.md5:
        return False
    return not stable_ids or there.id == known.remote_id


def decide_upload(
    *,
    local_size: int,
    local_md5: str | None,
    known: Known | None,
    there: There | None | Literal[Unknown.NOT_LOOKED],
    folder_empty: bool | None,
    stable_ids: bool,
) -> Upload:
    """One local file that differs from the index by its stat.

    ``folder_empty``: when a folder is at the path, whether it holds nothing the
    remote shows (None: not asked yet).  A local folder replaced by a file leaves
    syncd's folder empty once its files are trashed: it is cleared away (to the
    trash).  A folder that still holds files syncd can see is kept aside as a
    conflict copy instead.
    """
    if known is not None and local_md5 is None and local_size == known.size:
        return Upload.HASH  # maybe only the stat moved: a hash is cheaper than an upload
    if known is not None and local_md5 == known.md5:
        return Upload.TOUCH
    if there is NOT_LOOKED:
        return Upload.LOOK
    if there is None:
        return Upload.CREATE
    if there.is_dir:
        if folder_empty is None:
            return Upload.LOOK_INSIDE
        return Upload.CLEAR if folder_empty else Upload.CONFLICT
    if ours(known, there, stable_ids):
        return Upload.UPDATE
    if local_md5 is None:
        return Upload.HASH
    if there.md5 == local_md5:
        return Upload.ADOPT  # e.g. written just before a crash, or by hand: nothing to send
    return Upload.CONFLICT


def decide_delete(*, keep: bool, known: Known, there: There | None) -> Delete:
    """A file the index knows is gone locally (``keep``: the config's ``deletions: keep``)."""
    if keep or there is None or there.is_dir:
        return Delete.FORGET
    if there.md5 == known.md5:
        return Delete.TRASH
    return Delete.KEEP_THEIRS


def decide_move(
    *,
    source: There | None,
    known_source: Known,
    destination: There | None,
    known_destination: Known | None,
) -> Move:
    """A local file rename ``src → dst`` whose source the index knows.

    A source edited on the remote is not moved: that would carry someone
    else's edit to the new name as if it were ours.
    """
    if source is None or source.is_dir or source.md5 != known_source.md5:
        return Move.SKIP
    if destination is None:
        return Move.MOVE
    if destination.is_dir:
        return Move.SKIP
    if known_destination is not None and destination.md5 == known_destination.md5:
        return Move.TRASH_DESTINATION
    return Move.CONFLICT_DESTINATION
