"""An optional interface: a target that copies many new files in one call (``local:``).

Like rclone's optional interfaces (``fs.Copier``, ``fs.Purger``: a backend has the method
or not, and the caller checks), not a ``Features`` flag: the engine needs the method itself.
Only the plain case is the target's to do in bulk — nothing at the path yet, the source a
small regular file that did not change while read; every other path comes back for the
engine's per-file ``upload``, which decides about it as for any other file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable


class Created(NamedTuple):
    """A new file a bulk copy placed: the source's stat (of the open file: the version
    copied), the md5 of the bytes copied, and the new entry's id and rev."""

    path: str
    source: os.stat_result
    md5: str
    id: str
    rev: str


@runtime_checkable
class CreatesNew(Protocol):
    def create_new(
        self, source_root: Path, paths: Iterable[str], created: Callable[[Created], None]
    ) -> list[str]:
        """Copy the new files at ``paths`` (relative to ``source_root``) to the same paths on
        the target, never over anything there; ``created`` is called right after each one
        is in place.  Returns the paths not done (the caller uploads them one by one)."""
        ...
