"""What the return path reads from the remote (``remotes.gdrive.pull_source`` answers it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    from ..remotes.gdrive.changes import FileChange
    from ..remotes.gdrive.tree import DriveItem


class PullSource(Protocol):
    """What the poller reads from the remote (``remotes.gdrive.pull_source``)."""

    def root(self) -> DriveItem: ...

    def children(self, folder_ids: list[str], folders_only: bool = False) -> list[DriveItem]: ...

    def named(self, folder_ids: list[str], title: str) -> list[DriveItem]: ...

    def start_token(self) -> str: ...

    def changes(self, token: str) -> tuple[list[FileChange], str]: ...

    def download(self, file_id: str, out: BinaryIO, path: str) -> str: ...

    def close(self) -> None: ...
