"""Which paths of a project are never mirrored or snapshotted.

Owns the ignore rules of one project, in increasing precedence: built-in
defaults (VCS folders, caches, editor droppings, virtualenvs), the secrets
guard, the project's ``.gitignore`` files, the config's ``ignore:`` list and a
root ``.syncignore``.  A negation in the last three un-ignores anything, even a
secret.

pathspec turns each gitignore pattern into a regex; this module applies them
the way git does: a path is ignored if a folder above it is, otherwise the last
rule that matches the path *itself* decides.  Folder verdicts are cached, so the
scanner and the watcher can ask about every path cheaply.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from pathspec import GitIgnoreSpec

log = logging.getLogger("syncd.ignore")

DEFAULT_PATTERNS: tuple[str, ...] = (
    *(".git/", ".hg/", ".svn/", "__pycache__/", "*.pyc", "*.pyo", ".ipynb_checkpoints/"),
    *(".DS_Store", "Thumbs.db"),
    # Editor swap/backup files; 4913 is the file vim creates to test that it can write.
    *("*.swp", "*.swo", "*~", ".#*", r"\#*#", "4913", "*.kate-swp"),
    *(".mypy_cache/", ".pytest_cache/", ".ruff_cache/", ".venv/", "venv/", ".syncd-trash/"),
    # syncd writes this one on the target itself (mirror.manifest): a local file of that
    # name must not be mirrored over it
    "/.syncd/manifest.json",
)
SECRET_PATTERNS: tuple[str, ...] = (
    *("kaggle.json", "client_secrets*.json", "drive-credentials.json", "credentials.json"),
    *("token.json", "token.pickle", "mycreds.txt", "service-account*.json", ".env", ".env.*"),
    *("*.pem", "*.key", "*.p12", "*.pfx", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*"),
    *(".netrc", ".pypirc", ".git-credentials", ".ssh/", ".aws/", ".kaggle/", ".gnupg/"),
)

# A path's verdict; a folder's verdict is inherited by everything below it.
_KEPT, _IGNORED, _SECRET = 0, 1, 2

# Regex shapes pathspec (>= 1.0) emits, rewritten to match a path *itself* with
# fullmatch: callers append "/" to folders, so "/?" means file or folder and "/"
# folder only.  pathspec's own matching also hits everything below a matched
# folder, which would let a folder negation (`!keep/`) re-include files that a
# file rule (`*.log`) excludes; git does not.
_ANY_PARENT = "^(?:.+/)?"
_TAILS = (("(?:(?P<ps_d>/)|$)", "/?", True), ("(?P<ps_d>/)", "/", True), ("/", "/(?s:.+)", False))
_WHOLE = {".": "(?s:.+)", "(?P<ps_d>/)": "(?s:.+)/", "/": "(?s:.+/.+)"}


def _own_regex(regex: str, negated: bool) -> tuple[bool, str]:
    """(matches the last path component only, regex for fullmatch) for one pattern."""
    if regex in _WHOLE:
        return False, _WHOLE[regex]
    for tail, own_tail, one_part in _TAILS:
        if regex.startswith("^") and regex.endswith(tail):
            body = regex[: -len(tail)]
            name = body.removeprefix(_ANY_PARENT)
            # Only a pattern that cannot span a "/" can be tested on the name alone.
            if one_part and name != body and "/" not in name.replace("[^/]", ""):
                return True, name + own_tail
            return False, body[1:] + own_tail
    # A shape this module does not know (another pathspec version): err towards
    # ignoring more, so an exclusion also matches everything below its match and
    # a negation only what its regex matches whole.
    plain = re.sub(r"\(\?P<\w+>", "(?:", regex).removeprefix("^")
    if negated:
        return False, plain
    return False, ("" if regex.startswith("^") else "(?s:.*?)") + plain + "(?s:.*)"


class _RuleSet:
    """The patterns of sources sharing one base folder, compiled into two regexes.

    Alternatives are in reverse order, so the first that matches is the last rule
    in file order, and its group number says which rule it was.
    """

    __slots__ = ("base", "_name_re", "_name_hits", "_path_re", "_path_hits")

    def __init__(self, base: str, sources: Iterable[tuple[Iterable[str], int]]) -> None:
        self.base = base  # "" for the root, "sub/" for sub/.gitignore
        rules: list[tuple[str, bool, int]] = []
        for lines, kind in sources:
            for line in lines:
                try:
                    compiled = GitIgnoreSpec.from_lines([line]).patterns
                    for pattern in compiled:  # compile here, so a bad range fails this line only
                        if pattern.regex is not None:
                            re.compile(pattern.regex.pattern)
                except (ValueError, re.error):  # one bad line must not take the others down
                    log.warning("skipping invalid ignore pattern %r", line)
                    continue
                for pattern in compiled:
                    if pattern.include is not None and pattern.regex is not None:
                        rules.append((pattern.regex.pattern, not pattern.include, kind))
        names: list[str] = []
        paths: list[str] = []
        self._name_hits: list[tuple[int, int]] = [(-1, _KEPT)]  # group numbers start at 1
        self._path_hits: list[tuple[int, int]] = [(-1, _KEPT)]
        for index in reversed(range(len(rules))):
            regex, negated, kind = rules[index]
            by_name, own = _own_regex(regex, negated)
            (names if by_name else paths).append(f"({own})")
            hit = (index, _KEPT if negated else kind)
            (self._name_hits if by_name else self._path_hits).append(hit)
        self._name_re = re.compile("|".join(names)) if names else None
        self._path_re = re.compile("|".join(paths)) if paths else None

    def match(self, name: str, path: str) -> int | None:
        """The verdict of the last rule matching ``path`` (``name`` is its last part)."""
        best = None
        if self._name_re is not None and (m := self._name_re.fullmatch(name)):
            best = self._name_hits[m.lastindex or 0]
        if self._path_re is not None and (m := self._path_re.fullmatch(path)):
            hit = self._path_hits[m.lastindex or 0]
            if best is None or hit[0] > best[0]:
                best = hit
        return None if best is None else best[1]


# A folder's cache entry: (verdict, verdict came from the pyvenv.cfg check alone,
# nested .gitignore rule sets applying below it, deepest first).
_DirEntry = tuple[int, bool, tuple[_RuleSet, ...]]


class _Rules:
    """One reading of the rules files plus its folder cache.

    ``reload`` builds a new one and swaps it in whole, so a thread asking meanwhile
    never sees half-read rules or verdicts cached under the old ones.
    """

    def __init__(self, root: str, low: _RuleSet, high: _RuleSet, warned: set[str]) -> None:
        self.root = root
        self.low = low  # defaults, secrets, root .gitignore
        self.high = high  # config patterns, .syncignore
        self.nested: dict[str, _RuleSet] = {}
        self.dirs: dict[str, _DirEntry] = {"": (_KEPT, False, ())}
        self.warned = warned

    def own_verdict(
        self, rel: str, name: str, is_dir: bool, scopes: tuple[_RuleSet, ...]
    ) -> int | None:
        """The verdict of the highest-precedence source with a rule matching ``rel`` itself.

        Order: config and .syncignore, nested .gitignore files (deepest first), then
        the root .gitignore, secrets and defaults in one set.  None: no rule matched.
        """
        if is_dir:
            rel += "/"
            name += "/"
        kind = self.high.match(name, rel)
        if kind is None:
            for scope in scopes:
                kind = scope.match(name, rel[len(scope.base) :])
                if kind is not None:
                    return kind
            kind = self.low.match(name, rel)
        return kind

    def dir_entry(self, rel: str) -> _DirEntry:
        entry = self.dirs.get(rel)
        pending = []
        while entry is None:  # climb to the nearest cached folder, then fill in downwards
            pending.append(rel)
            rel = rel.rpartition("/")[0]
            entry = self.dirs.get(rel)
        for rel in reversed(pending):
            entry = self.dirs[rel] = self._compute_dir(rel, entry)
        return entry

    def _compute_dir(self, rel: str, parent: _DirEntry) -> _DirEntry:
        if parent[0] != _KEPT:
            return (parent[0], False, ())
        name = rel.rpartition("/")[2]
        kind = self.own_verdict(rel, name, True, parent[2])
        by_venv_check = kind is None
        if kind is None:
            is_venv = os.path.exists(f"{self.root}/{rel}/pyvenv.cfg")
            kind = _IGNORED if is_venv else _KEPT
        elif kind == _SECRET:
            self.warn_secret(rel, name + "/")
        nested = self.nested.get(rel)
        return (kind, by_venv_check, (nested, *parent[2]) if nested else parent[2])

    def verdict(self, rel: str, is_dir: bool) -> int:
        parent, _, name = rel.rpartition("/")
        entry = self.dirs.get(parent) or self.dir_entry(parent)
        if entry[0] != _KEPT:
            return entry[0]
        if is_dir:
            return self.dir_entry(rel)[0]
        if name == "pyvenv.cfg" and entry[1]:
            # The folder may have been judged before `python -m venv` wrote this file.
            self.forget(parent)
            entry = self.dir_entry(parent)
            if entry[0] != _KEPT:
                return entry[0]
        kind = self.own_verdict(rel, name, False, entry[2])
        if kind == _SECRET:
            self.warn_secret(rel, name)
        return _KEPT if kind is None else kind

    def forget(self, rel: str) -> None:
        below = rel + "/"
        for key in list(self.dirs):  # list() first: other threads may add entries meanwhile
            if key == rel or key.startswith(below):
                self.dirs.pop(key, None)

    def warn_secret(self, rel: str, name: str) -> None:
        if rel not in self.warned:
            self.warned.add(rel)
            log.warning(
                "not mirroring %s: it looks like a secret (add !%s to .syncignore to include it)",
                rel,
                name,
            )

    def load_nested(self) -> None:
        """Read the .gitignore of every folder git would read: none inside ignored ones."""
        stack = [""]
        while stack:
            rel = stack.pop()
            prefix = f"{rel}/" if rel else ""
            subdirs = []
            try:
                with os.scandir(f"{self.root}/{rel}") as it:
                    for entry in it:
                        if entry.name == ".gitignore" and rel and entry.is_file():
                            lines = _read_lines(Path(entry.path))
                            self.nested[rel] = _RuleSet(prefix, [(lines, _IGNORED)])
                            self.dirs.pop(rel, None)  # cached before its own rules were read
                        elif entry.is_dir(follow_symlinks=False):
                            subdirs.append(prefix + entry.name)
            except OSError as exc:
                log.debug("cannot list %s for .gitignore files: %s", rel or ".", exc)
            stack.extend(sub for sub in subdirs if self.dir_entry(sub)[0] == _KEPT)


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning("cannot read %s (%s): its ignore rules are not applied", path, exc.strerror)
        return []


class IgnoreRules:
    """Whether a project path is kept out of the mirror and snapshots."""

    def __init__(self, root: Path, patterns: Sequence[str] = ()) -> None:
        self.root = Path(root)
        self.patterns = tuple(patterns)
        self._warned: set[str] = set()  # survives reload: warn once per path per process
        self._rules = self._build()

    def reload(self) -> None:
        """Re-read every .gitignore and the .syncignore (call when one of them changes)."""
        self._rules = self._build()

    def _build(self) -> _Rules:
        root = str(self.root)
        low = _RuleSet(
            "",
            [
                (DEFAULT_PATTERNS, _IGNORED),
                (SECRET_PATTERNS, _SECRET),
                (_read_lines(self.root / ".gitignore"), _IGNORED),
            ],
        )
        syncignore = _read_lines(self.root / ".syncignore")
        high = _RuleSet("", [(self.patterns, _IGNORED), (syncignore, _IGNORED)])
        rules = _Rules(root, low, high, self._warned)
        rules.load_nested()
        return rules

    def is_ignored(self, rel: str, is_dir: bool) -> bool:
        """``rel`` is a POSIX path relative to the root; anything below an ignored folder is."""
        return rel != "" and self._rules.verdict(rel, is_dir) != _KEPT

    def is_secret(self, rel: str, is_dir: bool) -> bool:
        """Kept out by the secrets guard (itself or a folder above it) and not un-ignored."""
        return rel != "" and self._rules.verdict(rel, is_dir) == _SECRET

    @staticmethod
    def is_rules_file(rel: str) -> bool:
        """True for a .gitignore at any depth and the root .syncignore."""
        return rel in (".gitignore", ".syncignore") or rel.endswith("/.gitignore")
