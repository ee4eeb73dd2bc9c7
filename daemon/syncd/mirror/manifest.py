"""The target's manifest: ``.syncd/manifest.json``, rewritten after each settled batch.

Colab's mounted Drive serves stale files for seconds to minutes
(googlecolab/colabtools #958, #3567), so the Colab helper (``syncd colab``)
reads this one file through the Drive API by its id and fetches what differs.
The manifest lists every file the index says the target holds — path → size,
md5, remote id — with a sequence number, the time and the git commit.

It is written only after the batch's files (the index is written after the
remote confirmed each one), only when the listing changed, and as an update of
the same file (its id is remembered in the state db), so a batch of 50 files
costs one manifest request, and the id a Colab cell holds stays valid.  The
manifest is never in the index, so the mirror neither lists it as "lost" nor
trashes it; the ignore rules keep a local file of that name from being
mirrored over it.  ``local:`` targets get the same file (ids are then the
relative paths), so ``syncd flush`` works for every target.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..db.statedb import StateDB
from ..errors import FileError
from ..remotes.base import Remote, RemoteEntry

log = logging.getLogger("syncd.mirror")

MANIFEST_PATH = ".syncd/manifest.json"
MANIFEST_FORMAT = 1
STATE_KEY = "mirror.manifest"  # the state db's record of the last manifest written
GIT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ManifestRecord:
    """What syncd remembers of the last manifest it wrote (status, the next update)."""

    seq: int
    at: float
    id: str
    rev: str | None
    digest: str  # of the listing and commit it held: an unchanged batch writes nothing
    files: int
    commit: str | None = None

    def to_status(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": datetime.fromtimestamp(self.at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "path": MANIFEST_PATH,
            "id": self.id,
            "files": self.files,
            "commit": self.commit,
        }


def manifest_record(db: StateDB, project: str) -> ManifestRecord | None:
    """The last manifest written for ``project`` (None: none yet, or a record unreadable)."""
    raw = db.kv_get(project, STATE_KEY)
    if not raw:
        return None
    try:
        return ManifestRecord(**json.loads(raw))
    except (TypeError, ValueError):
        return None


def head_commit(root: Path) -> str | None:
    """HEAD's commit hash when ``root`` is in a git repository, else None (git never fails us)."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--verify", "-q", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            env=env,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


class ManifestWriter:
    """Writes one project's manifest to its target; called by the runner after each batch."""

    def __init__(
        self,
        name: str,
        root: Path,
        remote: Remote,
        db: StateDB,
        commit_of: Callable[[Path], str | None] = head_commit,
        beat: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self.root = root
        self.remote = remote
        self.db = db
        self.commit_of = commit_of
        self.beat = beat  # the runner's heartbeat: a big project's manifest takes a while
        self.writes = 0  # manifests written by this writer (tests, bench)
        self._listed: dict[str, str] | None = None  # path → md5 the last write listed

    @property
    def record(self) -> ManifestRecord | None:
        return manifest_record(self.db, self.name)

    def _listing(self) -> tuple[dict[str, dict[str, Any]], float | None]:
        """The listing, and the newest modification time among the files new or changed
        since the last write (all of them after a start; None when files only went away)."""
        files = self.db.files(self.name)
        before = self._listed or {}
        listing: dict[str, dict[str, Any]] = {}
        newest: int | None = None
        for n, path in enumerate(sorted(files)):
            if n % 2000 == 0:
                self.beat()
            rec = files[path]
            listing[path] = {"size": rec.size, "md5": rec.md5, "id": rec.remote_id or None}
            if before.get(path) != rec.md5 and (newest is None or rec.mtime_ns > newest):
                newest = rec.mtime_ns
        return listing, None if newest is None else newest / 1e9

    def write(self) -> ManifestRecord | None:
        """Write the manifest if what it would list changed; the record now standing.

        Raises the remote's ``RemoteError`` (the runner recovers and the next batch
        writes it); a ``FileError`` (the target refuses the name) is logged and skipped.
        """
        listing, newest = self._listing()
        last = self.record
        # Serialized once, compact (a 30,000-file listing is ~2 MB): the digest and the body.
        files_json = json.dumps(listing, separators=(",", ":"))
        digest = hashlib.sha1(files_json.encode()).hexdigest()
        self.beat()
        if last is not None and last.digest == digest:
            self._listed = {p: f["md5"] for p, f in listing.items()}
            return last
        commit = self.commit_of(self.root)
        now = time.time()
        seq = (last.seq if last else 0) + 1
        body = {
            "syncd_manifest": MANIFEST_FORMAT,
            "project": self.name,
            "seq": seq,
            "at": _iso(now),
            "at_epoch": round(now, 3),
            "commit": commit,
            # the newest modification time among the files this write brought in (null
            # when files only went away): the Colab helper's "lag" is at - this
            "newest_mtime": None if newest is None else round(newest, 3),
        }
        data = (json.dumps(body)[:-1] + ', "files": ' + files_json + "}\n").encode()
        try:
            entry = self._upload(data, last)
        except FileError as exc:
            log.warning("%s: cannot write %s: %s", self.name, MANIFEST_PATH, exc.message)
            return last
        finally:
            self.beat()
        self._listed = {p: f["md5"] for p, f in listing.items()}
        rec = ManifestRecord(seq, now, entry.id, entry.rev, digest, len(listing), commit)
        self.db.kv_set(self.name, STATE_KEY, json.dumps(asdict(rec)))
        self.writes += 1
        log.debug("%s: manifest %d written (%d files)", self.name, seq, len(listing))
        return rec

    def _upload(self, data: bytes, last: ManifestRecord | None) -> RemoteEntry:
        if last is not None:
            replace: RemoteEntry | None = RemoteEntry(
                MANIFEST_PATH, last.id, 0, None, last.rev, False
            )
        else:
            # No record (a first run, or a lost state db): update the manifest already
            # there, so the id a Colab cell holds stays the one that is written.
            replace = self.remote.stat(MANIFEST_PATH, None)
        fd, tmp = tempfile.mkstemp(prefix="syncd-manifest-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return self.remote.upload(MANIFEST_PATH, Path(tmp), replace).entry
        finally:
            Path(tmp).unlink(missing_ok=True)
