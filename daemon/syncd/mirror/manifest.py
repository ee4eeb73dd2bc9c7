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
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..db.statedb import StateDB
from ..errors import FileChanged, FileError, SyncdError
from ..remotes.base import Remote, RemoteEntry

log = logging.getLogger("syncd.mirror")

MANIFEST_PATH = ".syncd/manifest.json"
MANIFEST_FORMAT = 1
STATE_KEY = "mirror.manifest"  # the state db's record of the last manifest written
GIT_TIMEOUT_S = 5.0
SEQ_HEAD_BYTES = 512  # the manifest's first fields, "seq" among them, fit in this
_SEQ = re.compile(rb'"seq":\s*(\d+)')


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

    @property
    def record(self) -> ManifestRecord | None:
        return manifest_record(self.db, self.name)

    def _listing(self) -> tuple[dict[str, dict[str, Any]], float | None]:
        """The listing, and the newest modification time among the listed files (None: none)."""
        files = self.db.files(self.name)
        listing: dict[str, dict[str, Any]] = {}
        newest: int | None = None
        for n, path in enumerate(sorted(files)):
            if n % 2000 == 0:
                self.beat()
            rec = files[path]
            listing[path] = {"size": rec.size, "md5": rec.md5, "id": rec.remote_id or None}
            if newest is None or rec.mtime_ns > newest:
                newest = rec.mtime_ns
        return listing, None if newest is None else newest / 1e9

    def write(self, check: bool = False) -> ManifestRecord | None:
        """Write the manifest if what it would list (files and commit) changed; the record
        now standing.

        ``check`` (a flush, ``syncd colab``): also when nothing changed, ask the target
        once whether the manifest is still there (deleted or trashed by hand: a new one
        is written, with a new id).  A batch never asks when nothing changed.

        Raises the remote's ``RemoteError`` (the runner recovers and the next batch
        writes it); a ``FileError`` (the target refuses the name) is logged and skipped.
        """
        listing, newest = self._listing()
        last = self.record
        commit = self.commit_of(self.root)
        # Serialized once, compact (a 30,000-file listing is ~2 MB): the digest and the body.
        files_json = json.dumps(listing, separators=(",", ":"))
        digest = hashlib.sha1(f"{commit}\n{files_json}".encode()).hexdigest()
        self.beat()
        if last is not None and last.digest == digest:
            if not check or self._still_there(last):
                return last
            log.info("%s: %s is gone from the target; writing a new one", self.name, MANIFEST_PATH)
        try:
            # Over the manifest standing at its place (stat answers from what the remote
            # already knows: no request in a batch); without a record (a first run, a lost
            # state db) the one already there, whose seq goes on so it never goes back.
            replace = self.remote.stat(MANIFEST_PATH, self._known(last) if last else None)
            now = time.time()
            seq = (last.seq if last else self._seq_of(replace)) + 1
            entry = self._upload(self._body(seq, now, commit, newest, files_json), last, replace)
        except FileError as exc:
            log.warning("%s: cannot write %s: %s", self.name, MANIFEST_PATH, exc.message)
            return last
        finally:
            self.beat()
        rec = ManifestRecord(seq, now, entry.id, entry.rev, digest, len(listing), commit)
        self.db.kv_set(self.name, STATE_KEY, json.dumps(asdict(rec)))
        self.writes += 1
        log.debug("%s: manifest %d written (%d files)", self.name, seq, len(listing))
        return rec

    def _body(
        self, seq: int, now: float, commit: str | None, newest: float | None, files_json: str
    ) -> bytes:
        head = {
            "syncd_manifest": MANIFEST_FORMAT,
            "project": self.name,
            "seq": seq,
            "at": _iso(now),
            "at_epoch": round(now, 3),
            "commit": commit,
            # the newest modification time among the listed files (null when none):
            # the Colab helper's "lag" is at - this
            "newest_mtime": None if newest is None else round(newest, 3),
        }
        return (json.dumps(head)[:-1] + ', "files": ' + files_json + "}\n").encode()

    @staticmethod
    def _known(last: ManifestRecord) -> RemoteEntry:
        return RemoteEntry(MANIFEST_PATH, last.id, 0, None, last.rev, False)

    def _still_there(self, last: ManifestRecord) -> bool:
        """The manifest syncd last wrote is still at its place, not trashed (one request)."""
        found = self.remote.current(MANIFEST_PATH, self._known(last))
        return found is not None and found.id == last.id

    def _seq_of(self, found: RemoteEntry | None) -> int:
        """The seq of a manifest found on the target without a record of it (0: none)."""
        if found is None:
            return 0
        try:
            head = self.remote.head(found, SEQ_HEAD_BYTES)
        except (SyncdError, OSError) as exc:
            log.info("%s: cannot read the existing %s (%s)", self.name, MANIFEST_PATH, exc)
            return 0
        m = _SEQ.search(head)  # "seq" is in the first fields, before the listing
        return int(m.group(1)) if m else 0

    def _upload(
        self, data: bytes, last: ManifestRecord | None, replace: RemoteEntry | None
    ) -> RemoteEntry:
        """Write over ``replace`` (what ``stat`` answered), or make a new manifest.

        The write is conditional on that answer (Drive: If-Match), so a manifest trashed
        or changed since the remote last heard of it is refused (``FileChanged``), then
        asked about once more, for real: gone or trashed → a new file (a new id); changed
        → written over (it is syncd's alone).
        """
        fd, tmp = tempfile.mkstemp(prefix="syncd-manifest-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            try:
                return self.remote.upload(MANIFEST_PATH, Path(tmp), replace).entry
            except FileChanged:
                if last is not None:
                    replace = self.remote.current(MANIFEST_PATH, self._known(last))
                else:
                    replace = self.remote.stat(MANIFEST_PATH, None)
                return self.remote.upload(MANIFEST_PATH, Path(tmp), replace).entry
        finally:
            Path(tmp).unlink(missing_ok=True)
