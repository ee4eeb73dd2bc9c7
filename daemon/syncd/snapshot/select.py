"""Which files of a project go into its snapshots.

The files a mirror would see (ignore rules and the secrets guard, via
``localfs.walk``), narrowed by the project's ``snapshot.include`` /
``snapshot.exclude`` and by names the destination reserves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from pathspec import GitIgnoreSpec

from ..localfs.ignore import IgnoreRules
from ..localfs.walk import LocalFile, walk
from .manifest import DATA_MANIFEST_NAME, MANIFEST_NAME

log = logging.getLogger("syncd.snapshot")

# syncd's own folder in the project (the Colab helper ``.syncd/colab.py`` that
# ``syncd colab`` writes to be mirrored): tooling for Drive, not the user's code,
# so it stays out of Kaggle datasets like the manifest does.
SYNCD_OWN = ("/.syncd/",)


class SnapshotSelection:
    """Which files of a project go into its snapshots.

    ``rules`` are the mirror's (shared with the daemon's watcher, so a changed
    .gitignore counts at once); ``include`` keeps only matching paths,
    ``exclude`` and ``extra_exclude`` (patterns of the destination's own) drop
    paths, syncd's own ``.syncd/`` folder is always left out, and ``reserved``
    top-level names are left out with a warning because the destination would
    silently drop or overwrite them.
    """

    def __init__(
        self,
        root: Path,
        rules: IgnoreRules,
        include: Iterable[str] = (),
        exclude: Iterable[str] = (),
        *,
        extra_exclude: Iterable[str] = (),
        reserved: Iterable[str] = (),
    ) -> None:
        self.root = Path(root)
        self.rules = rules
        include = [p for p in include if p.strip()]
        self._include = GitIgnoreSpec.from_lines(include) if include else None
        self._exclude = GitIgnoreSpec.from_lines([*SYNCD_OWN, *extra_exclude, *exclude])
        self._reserved = {MANIFEST_NAME, DATA_MANIFEST_NAME, *reserved}
        self._warned: set[str] = set()

    def wanted(self, rel: str) -> bool:
        if rel in self._reserved:
            if rel not in self._warned:
                self._warned.add(rel)
                log.warning("leaving %s out of snapshots: the name is reserved at the top", rel)
            return False
        if self._include is not None and not self._include.match_file(rel):
            return False
        return not self._exclude.match_file(rel)

    def files(self) -> dict[str, LocalFile]:
        """Regular files to snapshot, by relative path (symlinks are never followed)."""
        found = walk(self.root, self.rules)
        for rel, why in found.skipped.items():
            log.debug("snapshot skips %s: %s", rel, why)
        return {rel: lf for rel, lf in found.files.items() if self.wanted(rel)}
