"""The small interface every mirror target implements, and the values it trades in.

Paths are POSIX paths relative to the target's root ("a/b.txt"); the remote
alone knows how they map to its own ids.  A remote never decides policy: the
mirror engine asks ``stat`` before it overwrites anything and chooses between
updating, adopting an identical copy and keeping a conflict copy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


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

    def check(self, create: bool = False) -> None:
        """Raise TransientError / AuthRequired / TargetUnavailable if the target can't be used.

        ``create``: make the root if it is missing (only on a project's first sync:
        a root that vanished later may be an unmounted disk, not a request to start over).
        """

    def list_all(self) -> Iterator[RemoteEntry]:
        """Every file (not folder) syncd can see under the root."""

    def stat(self, path: str, known: RemoteEntry | None) -> RemoteEntry | None:
        """Current state of ``path`` (``known``: what syncd last recorded for it), or None.

        ``md5`` is filled in whenever ``rev`` differs from ``known.rev``.
        """

    def upload(self, path: str, source: Path, replace: RemoteEntry | None) -> UploadResult:
        """Write ``source`` to ``path``: over ``replace`` if given, else as a new file.

        Raises FileChanged if ``source`` changed while being read; nothing is
        then left at ``path`` that claims to be final.
        """

    def move(self, entry: RemoteEntry, new_path: str) -> RemoteEntry:
        """Rename/move a file or folder without copying its content."""

    def trash(self, entry: RemoteEntry) -> None:
        """Move a file or folder to the target's trash (recoverable), never a hard delete."""

    def folder(self, path: str) -> RemoteEntry | None:
        """The folder at ``path``, or None if there is none."""

    def prune_folder(self, path: str) -> None:
        """Remove the folder at ``path`` and its parents while they are empty."""

    def close(self) -> None:
        """Release connections and file handles."""
