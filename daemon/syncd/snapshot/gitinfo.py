"""What git says about a project folder: commit, ``describe``, branch, and its tags.

Owns the few ``git`` subprocess calls snapshots need, each bounded by a timeout
and each answering ``None`` (or nothing) when the folder is not in a repository
or git is missing: a snapshot never fails because of git.  The tag listing is a
single ``git for-each-ref`` so polling it every few seconds stays cheap.
"""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("syncd.gitinfo")

GIT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class GitInfo:
    commit: str  # full hash of HEAD
    describe: str  # `git describe --always --dirty`, e.g. "v1.2-3-gabc1234-dirty"
    branch: str | None  # None on a detached HEAD

    def to_dict(self) -> dict[str, str | None]:
        return {"commit": self.commit, "describe": self.describe, "branch": self.branch}


@dataclass(frozen=True)
class GitTag:
    name: str
    target: str  # the object the ref points at (tag object or commit)
    message: str  # the annotation's text, or the commit's subject for a lightweight tag


def _git(path: Path, *args: str) -> str | None:
    # GIT_OPTIONAL_LOCKS=0: `describe --dirty` refreshes the index otherwise, taking
    # index.lock under the user's feet while they commit.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(
            ["git", "-C", str(path), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.debug("git %s in %s failed: %s", args[0], path, exc)
        return None
    if done.returncode != 0:
        return None
    return done.stdout


def git_info(path: Path) -> GitInfo | None:
    """HEAD's commit, describe and branch; None outside a repository or before a first commit."""
    heads = _git(path, "rev-parse", "HEAD", "--abbrev-ref", "HEAD")
    if heads is None:
        return None
    lines = heads.split()
    if len(lines) != 2:
        return None
    commit, branch = lines
    describe = _git(path, "describe", "--always", "--dirty")
    return GitInfo(
        commit=commit,
        describe=(describe or commit[:7]).strip(),
        branch=None if branch == "HEAD" else branch,
    )


def list_tags(path: Path) -> dict[str, str] | None:
    """Tag name → object it points at; None when the folder is not in a repository."""
    out = _git(path, "for-each-ref", "refs/tags", "--format=%(refname:strip=2)%09%(objectname)")
    if out is None:
        return None
    tags = {}
    for line in out.splitlines():
        name, _, target = line.partition("\t")
        if name:
            tags[name] = target
    return tags


def tag_details(path: Path, names: list[str]) -> list[GitTag]:
    """The given tags with their messages, newest first (by tag or commit date)."""
    if not names:
        return []
    fmt = "%(refname:strip=2)%00%(objectname)%00%(contents)%00%00"
    refs = [f"refs/tags/{name}" for name in names]
    out = _git(path, "for-each-ref", "--sort=-creatordate", f"--format={fmt}", *refs)
    if out is None:
        return [GitTag(name, "", "") for name in names]
    tags = []
    for record in out.split("\0\0"):
        parts = record.lstrip("\n").split("\0")
        if len(parts) >= 3 and parts[0]:
            tags.append(GitTag(parts[0], parts[1], parts[2].strip()))
    return tags
