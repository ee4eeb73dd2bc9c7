"""The data part of a split snapshot: ``snapshot.data`` in a ``<slug>-data`` dataset of its own.

Kaggle keeps no file from one dataset version to the next: ``CreateDatasetVersion`` takes
``files[{token}]`` only, each token a blob uploaded for that call (kagglesdk 0.1.38
``ApiCreateDatasetVersionRequestBody``/``ApiDatasetNewFile``; kaggle-cli issues #206, #320
and #496 ask for reuse, still open).  So the parts that rarely change (data, weights) live in
their own dataset, which gets a version only when they changed; every snapshot's code version
then names, in its manifest, the data version it goes with (``DataPart``).

"Changed" is decided at home, without a request: the data files' paths, sizes and md5s
(known md5s are trusted while size and mtime match) against what the last data version
held, as the snapshot store recorded it.  The data version is waited for until Kaggle has
processed it, because the code manifest needs its number.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import SnapshotConfig
from ..db.statedb import StateDB
from ..errors import SyncdError
from ..localfs.walk import LocalFile
from ..remotes.kaggle import client as kaggle
from ..remotes.kaggle.rules import DatasetMetadata
from .gitinfo import GitInfo
from .manifest import DATA_MANIFEST_NAME, SnapshotManifest, manifest_hash, same_as
from .notes import compose_notes, diff, human_bytes
from .progress import byte_progress
from .stage import stage
from .store import SnapshotRecord, SnapshotStore

log = logging.getLogger("syncd.snapshots")

DATA_TITLE_SUFFIX = " (data)"


@dataclass(frozen=True)
class DataPart:
    """A ready version of the data dataset: what a code version's manifest points to."""

    dataset: str
    version: int
    manifest_hash: str
    paths: tuple[str, ...]
    files: int
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "version": self.version,
            "manifest_hash": self.manifest_hash,
            "manifest_name": DATA_MANIFEST_NAME,
            "paths": list(self.paths),
            "files": self.files,
            "bytes": self.bytes,
        }

    def same_as(self, recorded: Mapping[str, Any] | None) -> bool:
        """Whether a code version's recorded data part is this one."""
        if recorded is None:
            return False
        mine = self.to_json()
        keys = ("dataset", "version", "manifest_hash", "paths")
        return all(recorded.get(k) == mine[k] for k in keys)

    def describe(self, uploaded: bool) -> str:
        what = f"{self.files} files, {human_bytes(self.bytes)}"
        done = "uploaded" if uploaded else "unchanged"
        return f"data {self.dataset} v{self.version} {done} ({what})"


@dataclass(frozen=True)
class Origin:
    """What started a snapshot: the notes and manifests of both its parts say it."""

    trigger: str
    started: float
    message: str | None
    git: GitInfo | None


def goes_with(part: DataPart | None, recorded: Mapping[str, Any] | None) -> bool:
    """Whether a code version's recorded data part is ``part`` (both None: no data part)."""
    return recorded is None if part is None else part.same_as(recorded)


def data_metadata(meta: DatasetMetadata) -> DatasetMetadata:
    """The data dataset's metadata: ``<slug>-data`` (the config checks it fits in 50
    characters), the title with " (data)", cut to Kaggle's 50 characters."""
    room = 50 - len(DATA_TITLE_SUFFIX)
    title = meta.title[:room].rstrip() + DATA_TITLE_SUFFIX
    return DatasetMetadata(meta.owner, f"{meta.slug}-data", title, meta.license, meta.private)


def resolve_pending(store: SnapshotStore, session: kaggle.KaggleDatasets) -> None:
    """Versions uploaded without waiting: find out how processing ended."""
    pending = store.pending()
    if not pending:
        return
    done = session.finish(store.dataset)
    # The newest upload is the dataset's newest version; older ones (if any) were
    # superseded before anyone learned their numbers.
    store.update(pending[0].id, status=done.status, version=done.version, url=done.url)
    for record in pending[1:]:
        store.update(record.id, status=done.status)


class DataSnapshots:
    """The data dataset of one project: when to reuse its last version, and new versions."""

    def __init__(self, project: str, cfg: SnapshotConfig, db: StateDB) -> None:
        assert cfg.data_dataset is not None
        self.project = project
        self.paths = cfg.data
        self.ref = cfg.data_dataset
        self.store = SnapshotStore(db, project, self.ref)

    def _part(self, record: SnapshotRecord) -> DataPart:
        assert record.version is not None
        return DataPart(
            self.ref, record.version, record.manifest_hash, self.paths, record.files, record.bytes
        )

    def reusable(
        self,
        root: Path,
        files: Mapping[str, LocalFile],
        known: Mapping[str, str],
        connect: Callable[[], kaggle.KaggleDatasets],
        force: bool = False,
    ) -> tuple[DataPart | None, dict[str, str]]:
        """The last ready data version if ``files`` hold exactly its content, and the md5s
        read to find out. No request, unless a data version was left processing (it is
        settled first) or ``force`` asks Kaggle whether it still serves that version."""
        if self.store.pending():
            resolve_pending(self.store, connect())
        last = self.store.last_uploaded()
        if last is None or last[0].status != "ready" or last[0].version is None:
            return None, {}
        same, hashed = same_as(root, files, known, last[1])
        part = self._part(last[0]) if same else None
        if force and part is not None and not self.still_served(connect(), part):
            what = f"{self.ref} v{part.version}"
            log.info(
                "%s: %s is not the newest data on Kaggle any more; uploading again",
                self.project,
                what,
            )
            part = None
        return part, hashed

    def still_served(self, session: kaggle.KaggleDatasets, part: DataPart) -> bool:
        """For ``--force``: whether Kaggle still serves ``part`` as the data dataset's newest
        ready version. Deleted on kaggle.com, or versioned there since, it is uploaded again
        (a kernel mounts the newest version, and would refuse another one's files)."""
        if session.status(self.ref) is None:
            return False
        return session.current(self.ref)[0] == part.version

    def upload(
        self,
        session: kaggle.KaggleDatasets,
        meta: DatasetMetadata,
        root: Path,
        files: Mapping[str, LocalFile],
        origin: Origin,
        progress: bool,
    ) -> tuple[DataPart, dict[str, tuple[int, int, str]]]:
        """Stage and upload the data files as the next data version; wait until it is ready.
        Returns the part and the (size, mtime_ns, md5) of every staged file."""
        data_meta = data_metadata(meta)
        with byte_progress(progress, "staging data", sum(f.size for f in files.values())) as tick:
            staged = stage(root, files, progress=tick)
        try:
            hashes = {p: (e.size, staged.mtimes[p], e.md5) for p, e in staged.files.items()}
            if not staged.files:
                raise SyncdError(f"{self.project}: no file of snapshot.data could be read")
            digest = manifest_hash(staged.files)
            last = self.store.last_uploaded()
            notes = compose_notes(
                message=origin.message,
                trigger=origin.trigger,
                git=origin.git,
                files=staged.files,
                changes=diff(last[1], staged.files) if last is not None else None,
                since_version=last[0].version if last is not None else None,
                mtimes=staged.mtimes,
                left_out=staged.left_out,
            )
            manifest = SnapshotManifest(
                self.project,
                origin.started,
                origin.trigger,
                staged.files,
                origin.message,
                origin.git,
                part="data",
            )
            manifest.write(staged.folder)
            data_meta.write(staged.folder)
            row = self.store.add(
                trigger=origin.trigger,
                notes=notes,
                files=staged.files,
                manifest_hash=digest,
                status="uploading",
            )
            try:
                with byte_progress(progress, "uploading data", None) as tick:
                    session.progress = tick
                    done = session.publish(staged.folder, data_meta, notes, wait=False)
            except BaseException:
                self.store.update(row, status="error")
                raise
            finally:
                session.progress = None
            self.store.update(row, status="pending")
            done = session.finish(self.ref, done.created)  # a SyncdError leaves it pending
            self.store.update(row, status=done.status, version=done.version, url=done.url)
            if done.status != "ready" or done.version is None:
                raise SyncdError(
                    f"{self.ref}: Kaggle could not process the new data version ({done.url}); "
                    "the code was not uploaded",
                    "see the dataset's page on Kaggle, then take the snapshot again",
                )
            log.info("%s: %s v%s is ready", self.project, self.ref, done.version)
            record = self.store.latest()
            assert record is not None
            return self._part(record), hashes
        finally:
            staged.cleanup()
