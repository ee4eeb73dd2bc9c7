"""Which files of the ``snapshot.data`` entries go into the data dataset, and why none did.

An entry is an explicit request to ship that folder (or file) to Kaggle, so git's
``.gitignore`` files do not apply to it: students gitignore ``data/`` because it is too
big for git, which is exactly why it belongs in the data dataset.  Everything that keeps
a path out of Kaggle on purpose still applies: the built-in defaults (VCS folders,
caches, virtualenvs), the secrets guard, the config's ``ignore:`` and ``.syncignore``.

The rules are ``localfs.ignore.IgnoreRules`` with the entries un-ignored at the highest
precedence (config patterns, then ``.syncignore``) and the defaults, secret patterns and
config patterns applied again after that negation, so only the ``.gitignore`` rules (at
lower precedence) lose.  A ``.syncignore`` negation still un-ignores anything, as it does
for the mirror.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pathspec import GitIgnoreSpec

from ..errors import SyncdError
from ..localfs.ignore import DEFAULT_PATTERNS, SECRET_PATTERNS, IgnoreRules
from ..localfs.walk import LocalFile, walk

log = logging.getLogger("syncd.snapshot")

# How many files of an entry that yielded nothing are looked at to say why (error path only).
_WHY_SAMPLE = 10_000


def _literal(rel: str) -> str:
    """``rel`` as a gitignore pattern matching that path only (config entries hold no
    ``*?[]!``; a backslash or a trailing space would still be read as syntax)."""
    text = rel.replace("\\", "\\\\")
    if text.endswith(" "):
        text = text[:-1] + "\\ "
    return "/" + text


def unignore_lines(entries: Iterable[str]) -> list[str]:
    """Negations that keep each entry, everything below it and the folders above it
    (a path is ignored when a folder above it is, so those must be kept too)."""
    lines: list[str] = []
    for entry in entries:
        parts = entry.split("/")
        for depth in range(1, len(parts)):
            lines.append("!" + _literal("/".join(parts[:depth])) + "/")
        lines += ["!" + _literal(entry), "!" + _literal(entry) + "/**"]
    return lines


# (project root, path) of secrets already named in the log: once per process, as the mirror.
_WARNED: set[tuple[str, str]] = set()


class DataRules(IgnoreRules):
    """The project's ignore rules without its ``.gitignore`` files, for the data entries."""

    def __init__(self, root: Path, patterns: Sequence[str], entries: Iterable[str]) -> None:
        lines = [*unignore_lines(entries), *DEFAULT_PATTERNS, *SECRET_PATTERNS, *patterns]
        super().__init__(root, lines)
        self._secrets = GitIgnoreSpec.from_lines(SECRET_PATTERNS)

    def is_ignored(self, rel: str, is_dir: bool) -> bool:
        # The entries' negation matches every path below them, so IgnoreRules' own check
        # for a virtualenv without a telltale name (a folder holding pyvenv.cfg) never runs.
        if is_dir and os.path.exists(os.path.join(self.root, rel, "pyvenv.cfg")):
            return True
        ignored = super().is_ignored(rel, is_dir)
        if ignored and self._secrets.match_file(rel + "/" if is_dir else rel):
            self._warn_secret(rel)
        return ignored

    def _warn_secret(self, rel: str) -> None:
        # The secret patterns are plain ignore patterns here, so IgnoreRules does not name
        # them; in a gitignored data folder the mirror never saw them either.
        key = (str(self.root), rel)
        if key not in _WARNED:
            _WARNED.add(key)
            name = rel.rpartition("/")[2]
            log.warning(
                "leaving %s out of the data dataset: it looks like a secret "
                "(add !%s to .syncignore to include it)",
                rel,
                name,
            )


def in_data(rel: str, paths: Iterable[str]) -> bool:
    return any(rel == p or rel.startswith(p + "/") for p in paths)


def split_files(
    files: Mapping[str, LocalFile], paths: Iterable[str]
) -> tuple[dict[str, LocalFile], dict[str, LocalFile]]:
    """(code, data): the files under a ``snapshot.data`` path go to the data part."""
    chosen = tuple(paths)
    code: dict[str, LocalFile] = {}
    data: dict[str, LocalFile] = {}
    for rel, lf in files.items():
        (data if chosen and in_data(rel, chosen) else code)[rel] = lf
    return code, data


def entry_files(root: Path, entry: str, rules: IgnoreRules) -> dict[str, LocalFile]:
    """The regular files of one entry (a folder or a file) the rules keep; none when the
    entry, or a folder above it, is ignored or a symlink (never followed)."""
    parts = entry.split("/")
    for depth in range(1, len(parts)):
        above = "/".join(parts[:depth])
        if os.path.islink(root / above) or rules.is_ignored(above, True):
            return {}
    try:
        st = os.lstat(root / entry)
    except OSError:
        return {}
    if stat.S_ISDIR(st.st_mode):
        return {} if rules.is_ignored(entry, True) else walk(root, rules, under=entry).files
    if stat.S_ISREG(st.st_mode) and not rules.is_ignored(entry, False):
        return {entry: LocalFile(entry, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)}
    return {}


@dataclass(frozen=True)
class EmptyEntry:
    """A ``snapshot.data`` entry that yielded no file, and what to do about it."""

    entry: str
    shown: str  # "data/" for a folder, the path itself otherwise
    why: str
    fix: str

    def error(self, project: str) -> SyncdError:
        return SyncdError(
            f"{project}: snapshot.data: {self.shown} has no files: {self.why}",
            f"{self.fix}, or remove {self.shown} from snapshot.data",
        )


@dataclass(frozen=True)
class _Source:
    what: str  # "is ignored by <what>"
    fix: str
    matches: Callable[[str], bool]


def _sources(
    root: Path, patterns: Sequence[str], skipped_by_snapshot: Callable[[str], bool]
) -> list[_Source]:
    syncignore = _read(root / ".syncignore")
    specs = [
        (".syncignore", "remove the rule that matches it from .syncignore", syncignore),
        (
            "the project's ignore: list in the config",
            "remove the pattern that matches it from the project's ignore: list",
            list(patterns),
        ),
        (
            "the secrets guard",
            "if a name only looks like a credential, add a `!NAME` line for it to .syncignore",
            list(SECRET_PATTERNS),
        ),
    ]
    sources = [_Source(w, f, GitIgnoreSpec.from_lines(lines).match_file) for w, f, lines in specs]
    defaults = GitIgnoreSpec.from_lines(DEFAULT_PATTERNS)

    def built_in(rel: str) -> bool:
        parts = rel.rstrip("/").split("/")
        folders = (root.joinpath(*parts[:i]) for i in range(1, len(parts) + 1))
        return defaults.match_file(rel) or any((f / "pyvenv.cfg").exists() for f in folders)

    sources.append(
        _Source(
            "syncd's built-in ignores (VCS folders, caches, virtualenvs)",
            "move the data out of that folder",
            built_in,
        )
    )
    sources.append(
        _Source(
            "snapshot.exclude or a name Kaggle datasets leave out",
            "remove its pattern from snapshot.exclude (or move the data to another name)",
            skipped_by_snapshot,
        )
    )
    return sources


def _read(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    except OSError:
        return []


def why_empty(
    root: Path,
    entry: str,
    patterns: Sequence[str],
    skipped_by_snapshot: Callable[[str], bool],
) -> EmptyEntry:
    """Why ``entry`` yielded no file: missing, a symlink, empty, or which rule left it out."""
    path = root / entry
    parts = entry.split("/")
    for above in ("/".join(parts[:depth]) for depth in range(1, len(parts) + 1)):
        if (root / above).is_symlink():  # checked first: lstat below would follow it
            where = "it is" if above == entry else f"{above}/ above it is"
            return EmptyEntry(
                entry,
                entry,
                f"{where} a symlink, and syncd never follows a symlink out of the project",
                "move the data itself into the project folder",
            )
    try:
        path.lstat()
    except FileNotFoundError:
        return EmptyEntry(entry, entry, f"it does not exist in {root}", "create it")
    except OSError as exc:
        why = f"it cannot be read ({exc.strerror})"
        return EmptyEntry(entry, entry, why, "fix its permissions")
    is_dir = path.is_dir()
    shown = entry + "/" if is_dir else entry
    if not is_dir and not path.is_file():
        return EmptyEntry(entry, shown, "it is not a regular file or folder", "replace it")
    sources = _sources(root, patterns, skipped_by_snapshot)
    hit = [s for s in sources if s.matches(shown)]
    if hit:
        return _ignored(entry, shown, "it is ignored by", hit)
    files = _raw_files(root, entry) if is_dir else [entry]
    if not files:
        why = "the folder holds no regular file (symlinks in it are never followed)"
        return EmptyEntry(entry, shown, why, "put the data files in it")
    hit = [s for s in sources if any(s.matches(rel) for rel in files)]
    if hit:
        return _ignored(entry, shown, "every file in it is ignored by", hit)
    return EmptyEntry(entry, shown, "none of its files can be read", "fix their permissions")


def _ignored(entry: str, shown: str, lead: str, hit: list[_Source]) -> EmptyEntry:
    return EmptyEntry(
        entry,
        shown,
        f"{lead} {' and '.join(s.what for s in hit)}",
        "; ".join(s.fix for s in hit),
    )


def _raw_files(root: Path, entry: str) -> list[str]:
    """Up to ``_WHY_SAMPLE`` regular files below ``entry``, whatever the rules say."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root / entry):  # never follows symlinks
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        dirnames.sort()
        for name in filenames:
            full = os.path.join(dirpath, name)
            if os.path.isfile(full) and not os.path.islink(full):
                found.append(f"{rel_dir}/{name}")
                if len(found) >= _WHY_SAMPLE:
                    return found
    return found
