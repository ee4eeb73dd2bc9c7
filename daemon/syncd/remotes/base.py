"""The small interface every mirror target implements, and the values it trades in.

Paths are POSIX paths relative to the target's root ("a/b.txt"); the remote
alone knows how they map to its own ids.  A remote never decides policy: the
mirror engine asks ``stat`` before it overwrites anything and chooses between
updating, adopting an identical copy and keeping a conflict copy.

What differs between targets is said by ``Features`` (rclone's ``fs.Features``),
never found out by asking which class a remote is.  What a remote must remember
across restarts it keeps in ``RemoteState``, its own corner of the state db.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Features:
    """What a target can do or guarantees; the engine's policy reads these, not class names."""

    stable_ids: bool  # an entry keeps its id across moves (Drive); else the id is the path
    listing_md5: bool  # list_all/stat know md5 without reading the content back (Drive)
    prunes_folders: bool  # prune_folder really removes emptied folders
    trash: bool  # trash() keeps a recoverable copy (else deletions would be final)
    duplicate_names: bool  # one folder may hold two items with one name (Drive)
    name_max_bytes: int | None  # the longest name the target accepts, in bytes (None: no limit)


class RemoteState(Protocol):
    """A remote's corner of the state db: small string values per project, nothing else."""

    def kv_get(self, project: str, key: str) -> str | None: ...

    def kv_set(self, project: str, key: str, value: str | None) -> None: ...

    def kv_items(self, project: str, prefix: str) -> dict[str, str]: ...


@dataclass(frozen=True)
class RemoteEntry:
    """One file or folder as the remote sees it."""

    path: str
    id: str
    size: int
    md5: str | None
    rev: str | None
    is_dir: bool = False


@dataclass(frozen=True)
class UploadResult:
    """What the remote holds after an upload; ``md5`` is the md5 of the bytes sent."""

    entry: RemoteEntry
    md5: str
    size: int
    mtime_ns: int


class Remote(Protocol):
    """A mirror target.  Every method raises only ``syncd.errors`` classes."""

    address: str
    features: Features

    def check(self, create: bool = False) -> None:
        """Raise TransientError / AuthRequired / TargetUnavailable if the target can't be used.

        ``create``: make the root if it is missing (only on a project's first sync:
        a root that vanished later may be an unmounted disk, not a request to start over).
        The first successful check of a remote object also removes what an interrupted
        run of syncd left behind (a ``local:`` target's partial temporary files).
        """

    def list_all(self) -> Iterator[RemoteEntry]:
        """Every file (not folder) syncd can see under the root."""

    def stat(self, path: str, known: RemoteEntry | None) -> RemoteEntry | None:
        """Current state of ``path`` (``known``: what syncd last recorded for it), or None.

        ``md5`` is filled in whenever ``rev`` differs from ``known.rev``.  A remote may
        answer from what it learned itself (its own writes, a listing, a changes feed)
        instead of asking, only if every write based on that answer is conditional on
        it: ``upload`` over an entry that changed since raises ``FileChanged`` and
        writes nothing (Drive: ``If-Match``), and the next batch's ``stat`` tells.
        """

    def current(self, path: str, known: RemoteEntry) -> RemoteEntry | None:
        """``known``'s file as the target holds it now, asked of the target itself (Drive:
        one ``files.get``), or None when it is gone, trashed or no longer at ``path``.

        For the rare question nothing else would correct (is syncd's manifest still
        there?); ``stat`` may answer from what the remote learned earlier.
        """

    def head(self, entry: RemoteEntry, size: int) -> bytes:
        """The first ``size`` bytes of a file of syncd's own (the manifest's sequence number
        after a lost state db); one request on Drive."""

    def upload(self, path: str, source: Path, replace: RemoteEntry | None) -> UploadResult:
        """Write ``source`` to ``path``: over ``replace`` if given, else as a new file.

        Raises FileChanged if ``source`` changed while being read; nothing is
        then left at ``path`` that claims to be final.
        """

    def move(self, entry: RemoteEntry, new_path: str) -> RemoteEntry:
        """Rename/move a file or folder without copying its content.

        Never replaces what is at ``new_path``: on a target where names are unique
        that is a ``FileError`` (the engine clears the way first, or keeps a conflict).
        """

    def trash(self, entry: RemoteEntry) -> None:
        """Move a file or folder to the target's trash (recoverable), never a hard delete."""

    def folder(self, path: str) -> RemoteEntry | None:
        """The folder at ``path``, or None if there is none."""

    def folder_is_empty(self, path: str) -> bool:
        """The folder at ``path`` holds nothing syncd can see (True when there is no folder)."""

    def prune_folder(self, path: str) -> None:
        """Remove the folder at ``path`` and its parents while they are empty."""

    def leftovers(self) -> Iterator[tuple[str, RemoteEntry | None]]:
        """Paths an interrupted create may have left on the target without syncd recording it
        (killed after the target made the file, before the index row): the file made there,
        if it still holds what syncd sent, else None."""

    def forget_leftover(self, path: str) -> None:
        """Drop the record of an unfinished create at ``path``."""

    def begin_batch(self) -> None:
        """A new batch of operations begins: what the remote learned in bulk for the last
        batch (Drive: its changes feed) is asked again, once, when first needed."""

    def close(self) -> None:
        """Release connections and file handles."""


class OwnFileReads:
    """``current`` and ``head`` for a target whose ``stat`` always asks the target itself
    and whose files are paths on this machine (``local:``)."""

    def stat(self, path: str, known: RemoteEntry | None) -> RemoteEntry | None:
        raise NotImplementedError

    def _abs(self, path: str) -> Path:
        raise NotImplementedError

    def current(self, path: str, known: RemoteEntry) -> RemoteEntry | None:
        found = self.stat(path, known)
        return None if found is None or found.is_dir else found

    def head(self, entry: RemoteEntry, size: int) -> bytes:
        with open(self._abs(entry.path), "rb") as f:
            return f.read(size)
