"""Which Drive folders are pull folders, by id: what turns a feed entry into a local path.

Under the full scope the changes feed reports all of My Drive; a change
belongs to the return path when its parent is a known folder whose path lies
inside a pull subfolder (``outputs/``, and every folder below it, including
those Colab makes later: they are learned from the feed as they appear).  The
folders *above* a pull subfolder (the project folder itself, ``a/`` for
``a/b/``) are known too, so a pull subfolder created after the start is
recognised when its own change arrives.

Several Drive folders may share a title (Drive allows it): each is followed by
its own id, so two ``outputs/run1`` folders both map to ``outputs/run1`` and a
file leaves the pull area only when the folder it is in does.  Files are
pulled only from *below* a pull subfolder: a Drive file titled like the pull
subfolder itself (``outputs``) is not pulled.

A path is only ever built from titles that can be one local name
(``usable_name``): no ``/``, no NUL, not ``.`` or ``..``, at most 255 bytes.
"""

from __future__ import annotations

import os

NAME_MAX = 255


def usable_name(title: str) -> bool:
    """A Drive title that can be one file name in the project folder, and only there."""
    return (
        bool(title)
        and title not in (".", "..")
        and "/" not in title
        and "\0" not in title
        and len(os.fsencode(title)) <= NAME_MAX
    )


class PullTree:
    """Folder id → project-relative path ("" is the project folder) for the pull area."""

    def __init__(self, root_id: str, pull: tuple[str, ...]) -> None:
        self.root_id = root_id
        self.pull = tuple(p.rstrip("/") for p in pull)  # "outputs", "a/b"
        self.dirs: dict[str, str] = {root_id: ""}
        self.parents: dict[str, str | None] = {root_id: None}

    def inside(self, path: str) -> bool:
        """``path`` is a pull subfolder or lies below one."""
        return any(path == p or path.startswith(p + "/") for p in self.pull)

    def below(self, path: str) -> bool:
        """``path`` lies strictly below a pull subfolder: where pulled files may go."""
        return any(path.startswith(p + "/") for p in self.pull)

    def above(self, path: str) -> bool:
        """``path`` is a folder on the way to a pull subfolder (the project folder included)."""
        return path == "" or any(p.startswith(path + "/") for p in self.pull)

    def wanted_dir(self, path: str) -> bool:
        return self.inside(path) or self.above(path)

    def path_of(self, parent: str | None, title: str) -> str | None:
        """The local path of a child of ``parent``, None when outside the known folders."""
        if parent is None or parent not in self.dirs or not usable_name(title):
            return None
        base = self.dirs[parent]
        return f"{base}/{title}" if base else title

    def add(self, folder_id: str, path: str, parent: str | None = None) -> None:
        self.dirs[folder_id] = path
        self.parents[folder_id] = parent

    def folders_at(self, path: str) -> list[str]:
        """The ids of every known folder at ``path`` (Drive allows equal titles)."""
        return [fid for fid, p in self.dirs.items() if p == path]

    def drop(self, folder_id: str) -> set[str]:
        """Forget a folder and every known folder below it (by id: a folder that shares
        its path stays); returns the ids forgotten."""
        if folder_id not in self.dirs or folder_id == self.root_id:
            return set()
        gone = {folder_id}
        grew = True
        while grew:
            below = {f for f, up in self.parents.items() if up in gone and f not in gone}
            grew = bool(below)
            gone |= below
        for fid in gone:
            self.dirs.pop(fid, None)
            self.parents.pop(fid, None)
        return gone
