"""Which files of a project go into its snapshots.

The code part: the files a mirror would see (ignore rules and the secrets guard,
via ``localfs.walk``), narrowed by the project's ``snapshot.include`` /
``snapshot.exclude`` and by names the destination reserves.  The data part
(``snapshot.data``, see ``data_select``): every file of the entries that the same
rules minus ``.gitignore`` keep, ``snapshot.exclude`` and reserved names still
applying; ``snapshot.include`` narrows the code part only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from pathspec import GitIgnoreSpec

from ..config import ProjectConfig
from ..localfs.ignore import IgnoreRules
from ..localfs.walk import LocalFile, walk
from ..remotes.kaggle.rules import CLIENT_SKIPS, RESERVED_TOP_LEVEL
from .data_select import DataRules, EmptyEntry, entry_files, in_data, why_empty
from .manifest import DATA_MANIFEST_NAME, MANIFEST_NAME

log = logging.getLogger("syncd.snapshot")

# syncd's own folder in the project (the Colab helper ``.syncd/colab.py`` that
# ``syncd colab`` writes to be mirrored): tooling for Drive, not the user's code,
# so it stays out of Kaggle datasets like the manifest does.
SYNCD_OWN = ("/.syncd/",)


@dataclass
class Parts:
    """The files of both parts of a snapshot, and the data entries that yielded none."""

    code: dict[str, LocalFile] = field(default_factory=dict)
    data: dict[str, LocalFile] = field(default_factory=dict)
    empty: list[EmptyEntry] = field(default_factory=list)

    @property
    def files(self) -> dict[str, LocalFile]:
        return {**self.code, **self.data}


class SnapshotSelection:
    """Which files of a project go into its snapshots.

    ``rules`` are the mirror's (shared with the daemon's watcher, so a changed
    .gitignore counts at once); ``include`` keeps only matching paths,
    ``exclude`` and ``extra_exclude`` (patterns of the destination's own) drop
    paths, syncd's own ``.syncd/`` folder is always left out, and ``reserved``
    top-level names are left out with a warning because the destination would
    silently drop or overwrite them.  ``data`` are the ``snapshot.data`` entries.
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
        data: Iterable[str] = (),
    ) -> None:
        self.root = Path(root)
        self.rules = rules
        self.data = tuple(data)
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

    def left_out(self, rel: str) -> bool:
        """Kept out of every part: a reserved name, syncd's own folder, ``snapshot.exclude``."""
        return rel in self._reserved or self._exclude.match_file(rel)

    def files(self) -> dict[str, LocalFile]:
        """Regular files to snapshot, by relative path (symlinks are never followed)."""
        return self.parts().files

    def parts(self) -> Parts:
        """The code files (outside the data entries) and the data files, apart."""
        # The code walk does not enter the data entries: their own walk below finds them.
        found = walk(self.root, cast(IgnoreRules, _OutsideData(self.rules, self.data)))
        for rel, why in found.skipped.items():
            log.debug("snapshot skips %s: %s", rel, why)
        parts = Parts()
        parts.code = {rel: lf for rel, lf in found.files.items() if self.wanted(rel)}
        if not self.data:
            return parts
        # Built for each snapshot, so a changed .syncignore counts at once.
        rules = DataRules(self.root, self.rules.patterns, self.data)
        for entry in self.data:
            mine = {
                rel: lf
                for rel, lf in entry_files(self.root, entry, rules).items()
                if not self.left_out(rel)
            }
            if not mine:
                parts.empty.append(why_empty(self.root, entry, self.rules.patterns, self.left_out))
            parts.data.update(mine)
        return parts


class _OutsideData:
    """The mirror's rules (``is_ignored``, all ``walk`` asks), with the data entries ignored."""

    def __init__(self, rules: IgnoreRules, data: tuple[str, ...]) -> None:
        self.rules = rules
        self.data = data

    def is_ignored(self, rel: str, is_dir: bool) -> bool:
        return in_data(rel, self.data) or self.rules.is_ignored(rel, is_dir)


def project_selection(
    project: ProjectConfig, rules: IgnoreRules | None = None
) -> SnapshotSelection:
    """The selection of a project with a ``snapshot:`` section, for Kaggle datasets."""
    assert project.snapshot is not None
    return SnapshotSelection(
        project.path,
        rules if rules is not None else IgnoreRules(project.path, project.ignore),
        project.snapshot.include,
        project.snapshot.exclude,
        extra_exclude=CLIENT_SKIPS,
        reserved=RESERVED_TOP_LEVEL,
        data=project.snapshot.data,
    )
