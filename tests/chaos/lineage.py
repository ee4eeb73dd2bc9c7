"""The workload's bookkeeping: which files syncd must mirror, and file identities.

A *lineage* follows each file identity (created once, then modified, renamed,
swapped) through the paths it had, so the invariant checker can tell a deletion
(must reach the trash) from a move.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

GITIGNORE = "*.log\nbuild/\n"


def no_trailing_cr(data: bytes) -> bytes:
    """A trailing CR is lost on the way to the fake Drive (its own test:
    test_e2e_hostile_names.py::test_content_ending_in_a_carriage_return_arrives_whole);
    kept out of the workload so that the chaos figures are about #8."""
    return data[:-1] + b"\n" if data.endswith(b"\r") else data


def is_ignored(rel: str) -> bool:
    """What the workload makes that syncd must never mirror (.git, caches, .gitignore rules)."""
    parts = rel.split("/")
    return (
        any(p in (".git", "__pycache__", "build") for p in parts[:-1])
        or parts[-1].endswith((".log", ".pyc"))
        or parts[0] == ".git"
    )


def files_of(root: Path) -> dict[str, Path]:
    """Mirrored (not ignored) regular files below root, by relative path."""
    out: dict[str, Path] = {}
    for dirpath, dirs, names in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        dirs[:] = [d for d in dirs if d not in (".git", "__pycache__", "build")]
        for name in names:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            full = Path(dirpath) / name
            if not is_ignored(rel) and full.is_file() and not full.is_symlink():
                out[rel] = full
    return out


def git(repo: Path, *args: str) -> None:
    who = {"GIT_AUTHOR_NAME": "chaos", "GIT_AUTHOR_EMAIL": "c@x", "GIT_COMMITTER_NAME": "chaos"}
    env = {**os.environ, **who, "GIT_COMMITTER_EMAIL": "c@x"}
    r = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {r.stderr.strip()}")


@dataclass
class Lineage:
    """File identities: which one lives where, every path each had, which ones ended."""

    at: dict[str, int] = field(default_factory=dict)  # path → identity
    paths: dict[int, set[str]] = field(default_factory=dict)  # identity → every path it had
    ended: set[int] = field(default_factory=set)
    _next: int = 0

    def new(self, path: str) -> None:
        self.end(path)
        self._next += 1
        self.at[path] = self._next
        self.paths[self._next] = {path}

    def touch(self, path: str) -> None:
        if path not in self.at:
            self.new(path)

    def end(self, path: str) -> None:
        ident = self.at.pop(path, None)
        if ident is not None:
            self.ended.add(ident)

    def move(self, src: str, dst: str) -> None:
        """A rename.  A file it lands on is *overwritten*, not deleted: after a restart the
        walk cannot tell `mv a b` from `cat a > b; rm a`, and either way Drive keeps b's
        old content as a revision, so no trash copy is expected for it."""
        ident = self.at.pop(src, None)
        self.at.pop(dst, None)
        if ident is None:
            self.new(dst)
            return
        self.at[dst] = ident
        self.paths[ident].add(dst)

    def move_tree(self, src: str, dst: str) -> None:
        for p in [p for p in self.at if p.startswith(src + "/")]:
            self.move(p, dst + p[len(src) :])

    def end_tree(self, folder: str) -> None:
        for p in [p for p in self.at if p.startswith(folder + "/")]:
            self.end(p)
