"""Snapshots of one project as Kaggle dataset versions: one at a time, history, status.

Owns the order of a snapshot and nothing below it: check the dataset settings,
wait (bounded) for the mirror to settle (a callable the daemon injects; this
package never imports the mirror), select files (``select``), decide
"unchanged" from known md5s before copying anything (``manifest``), stage a
consistent copy (``stage``), write the manifest and notes (``notes``), upload
(``remotes.kaggle``), record the outcome (``store``).  With ``snapshot.data`` the
data folders go to their own dataset, versioned only when they change (``parts``).  Triggers (cron,
interval, new git tags) are ``triggers``; one snapshot at a time is ``flight``.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..config import KaggleConfig, ProjectConfig
from ..db.statedb import StateDB
from ..errors import SyncdError
from ..localfs.ignore import IgnoreRules
from ..remotes.kaggle import client as kaggle
from ..remotes.kaggle.rules import DatasetMetadata, dataset_metadata
from . import gitinfo
from .flight import SingleFlight
from .manifest import SnapshotManifest, known_md5s, manifest_hash, same_as
from .notes import compose_notes, diff
from .parts import DataPart, DataSnapshots, Origin, goes_with, resolve_pending
from .progress import byte_progress
from .result import SnapshotResult, outcome_message, unchanged_result
from .select import SnapshotSelection, project_selection
from .stage import StagedSnapshot, settle_seconds, stage
from .store import SnapshotStore
from .triggers import SnapshotTriggers

log = logging.getLogger("syncd.snapshots")


class SnapshotService:
    """Snapshots of one project that has a ``snapshot:`` section."""

    def __init__(
        self,
        project: ProjectConfig,
        db: StateDB,
        kaggle: KaggleConfig,
        *,
        settled: Callable[[float], bool] | None = None,
        rules: IgnoreRules | None = None,
    ) -> None:
        if project.snapshot is None:
            raise SyncdError(f"project {project.name!r} has no `snapshot:` section")
        self.project = project
        self.cfg = project.snapshot
        self.kaggle_config = kaggle
        self.db = db
        self.store = SnapshotStore(db, project.name, self.cfg.dataset)
        self.data = DataSnapshots(project.name, self.cfg, db) if self.cfg.data else None
        self._settled = settled
        self._rules = rules
        self._own_rules: IgnoreRules | None = None
        self._flight: SingleFlight[SnapshotResult] = SingleFlight(project.name)
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last = self.store.get("last_attempt") or {}
        self.triggers = SnapshotTriggers(
            project.name,
            self.cfg,
            project.path,
            self.store,
            fire=self._triggered,
            busy=lambda: self._flight.busy or self._closed.is_set(),
            spawn=self._spawn,
        )

    @property
    def name(self) -> str:
        return self.project.name

    # --- taking a snapshot ------------------------------------------------------------------

    def take(
        self,
        trigger: str,
        message: str | None = None,
        *,
        force: bool = False,
        wait: bool = True,
        progress: bool = False,
    ) -> SnapshotResult:
        """One snapshot now, or the result of the one already running (single flight)."""
        return self._single_flight(trigger, message, force, wait, progress, join=True)

    def _single_flight(
        self,
        trigger: str,
        message: str | None,
        force: bool,
        wait: bool,
        progress: bool,
        *,
        join: bool,
    ) -> SnapshotResult:
        """Lead a new snapshot, or share the running one's result (``join``) or wait it out."""
        return self._flight.run(
            trigger, lambda: self._take(trigger, message, force, wait, progress), join=join
        )

    def _take(
        self, trigger: str, message: str | None, force: bool, wait: bool, progress: bool
    ) -> SnapshotResult:
        started = time.time()
        self._remember("running", started)
        try:
            result = self._snapshot(trigger, message, force, wait, progress, started)
        except SyncdError as exc:
            self._remember("error", started)
            # A manual snapshot's failure is reported once, by whoever asked (the CLI prints
            # it); a triggered one has nobody waiting, so it is the log's to say.
            level = logging.INFO if trigger == "manual" else logging.ERROR
            log.log(level, "%s: snapshot failed: %s", self.name, exc)
            raise
        except Exception:
            self._remember("error", started)
            raise
        self._remember(result.status, started)
        log.info("%s: %s", self.name, result.message)
        return result

    def _selection(self) -> SnapshotSelection:
        rules = self._rules
        if rules is None:
            # No mirror shares its rules with us: keep one set (it warns about a secret once
            # per process) and re-read the .gitignore files for each snapshot.
            if self._own_rules is None:
                self._own_rules = IgnoreRules(self.project.path, self.project.ignore)
            else:
                self._own_rules.reload()
            rules = self._own_rules
        return project_selection(self.project, rules)

    def _snapshot(
        self,
        trigger: str,
        message: str | None,
        force: bool,
        wait: bool,
        progress: bool,
        started: float,
    ) -> SnapshotResult:
        meta = dataset_metadata(self.name, self.cfg)  # refuse bad settings before any work
        root = self.project.path
        if not root.is_dir():
            raise SyncdError(f"{self.name}: the project folder {root} is missing")
        if self._settled is not None and not self._settled(settle_seconds()):
            log.warning(
                "%s: the mirror still has pending edits; snapshotting the folder as it is now",
                self.name,
            )
        parts = self._selection().parts()
        if parts.empty:  # an entry the user listed would silently be missing on Kaggle
            raise parts.empty[0].error(self.name)
        code, data_files, files = parts.code, parts.data, parts.files
        # The mirror's md5s count only while the whole stat matches (inode and ctime too: two
        # files swapped through a temporary name keep their sizes and mtimes).
        index = (
            {
                p: (r.size, r.mtime_ns, r.md5)
                for p, r in self.db.files(self.name).items()
                if p in files and r.key == files[p].key
            }
            if self.project.mirror is not None
            else {}
        )
        cache = self.store.hash_cache()
        known = known_md5s(files, index, cache)
        hashed: dict[str, str] = {}
        connect = functools.cache(self._client)  # one client, made at the first request
        part: DataPart | None = None
        if self.data is not None and data_files:
            part, hashed = self.data.reusable(root, data_files, known, connect, force)
        last = self.store.last_uploaded()
        unchanged = False
        if last is not None and not force and (part is not None or not data_files):
            same, more = same_as(root, code, known, last[1])
            hashed.update(more)
            unchanged = same and goes_with(part, last[0].data)
        fresh = {p: (files[p].size, files[p].mtime_ns, md5) for p, md5 in hashed.items()}
        self.store.save_hashes(fresh, cache, files)
        cache = {p: row for p, row in {**cache, **fresh}.items() if p in files}
        if unchanged:
            assert last is not None
            return unchanged_result(last[0])

        session = connect()
        git = gitinfo.git_info(root)
        uploaded_data = False
        if self.data is not None and data_files and part is None:
            origin = Origin(trigger, started, message, git)
            part, staged_hashes = self.data.upload(
                session, meta, root, data_files, origin, progress
            )
            self.store.save_hashes(staged_hashes, cache, files)
            cache = {**cache, **staged_hashes}
            uploaded_data = True
        with byte_progress(progress, "staging", sum(f.size for f in code.values())) as tick:
            staged = stage(root, code, progress=tick)
        try:
            current = {p: (e.size, staged.mtimes[p], e.md5) for p, e in staged.files.items()}
            self.store.save_hashes(current, cache, files)
            digest = manifest_hash(staged.files)
            if (
                last
                and not force
                and digest == last[0].manifest_hash
                and goes_with(part, last[0].data)
            ):
                return unchanged_result(last[0])  # only mtimes had changed
            notes = compose_notes(
                message=message,
                trigger=trigger,
                git=git,
                files=staged.files,
                changes=diff(last[1], staged.files) if last is not None else None,
                since_version=last[0].version if last is not None else None,
                mtimes=staged.mtimes,
                left_out=staged.left_out,
            )
            if part is not None:
                notes = f"{notes}\n{part.describe(uploaded_data)}"
            pointer = part.to_json() if part is not None else None
            manifest = SnapshotManifest(
                self.name, started, trigger, staged.files, message, git, data=pointer
            )
            manifest.write(staged.folder)
            meta.write(staged.folder)
            self._resolve_pending(session)
            result = self._upload(session, meta, staged, notes, trigger, wait, progress, pointer)
        finally:
            staged.cleanup()
        if part is not None:
            result.data = {**part.to_json(), "uploaded": uploaded_data}
            result.message = f"{result.message}; {part.describe(uploaded_data)}"
        return result

    def _upload(
        self,
        session: kaggle.KaggleDatasets,
        meta: DatasetMetadata,
        staged: StagedSnapshot,
        notes: str,
        trigger: str,
        wait: bool,
        progress: bool,
        data: dict[str, Any] | None = None,
    ) -> SnapshotResult:
        files = staged.files
        size = sum(entry.size for entry in files.values())
        # "uploading" until Kaggle accepted the version: a crash in between must not leave a
        # row that later snapshots would call "unchanged since".
        row = self.store.add(
            trigger=trigger,
            notes=notes,
            files=files,
            manifest_hash=manifest_hash(files),
            status="uploading",
            data=data,
        )
        try:
            with byte_progress(progress, "uploading", None) as tick:
                session.progress = tick
                done = session.publish(staged.folder, meta, notes, wait=False)
        except BaseException:
            self.store.update(row, status="error")
            raise
        self.store.update(row, status="pending")
        if wait:
            try:
                done = session.finish(meta.ref, done.created)
            except SyncdError:
                self._poll_later(row, session)  # uploaded: the version may still become ready
                raise
        self.store.update(row, status=done.status, version=done.version, url=done.url)
        if done.status == "pending":
            self._poll_later(row, session)
        message = outcome_message(
            self.cfg.dataset, done.status, done.version, done.url, len(files), size
        )
        return SnapshotResult(done.version, done.status, message, done.url, len(files), size)

    # --- pending versions -------------------------------------------------------------------

    def _client(self) -> kaggle.KaggleDatasets:
        return kaggle.KaggleDatasets(self.kaggle_config, cancel=self._closed)

    def _resolve_pending(self, session: kaggle.KaggleDatasets) -> None:
        """Versions uploaded without waiting: find out how processing ended."""
        resolve_pending(self.store, session)

    def settle_pending(self) -> None:
        """Wait until Kaggle has processed versions uploaded without waiting (``syncd train``
        needs the version it reuses to be ready)."""
        if self.store.pending():
            self._resolve_pending(kaggle.KaggleDatasets(self.kaggle_config, cancel=self._closed))

    def _poll_later(self, row: int, session: kaggle.KaggleDatasets) -> None:
        def poll() -> None:
            try:
                done = session.finish(self.cfg.dataset)
                if self._closed.is_set():
                    return  # `syncd snapshot` without a daemon has exited: the next one asks
                self.store.update(row, status=done.status, version=done.version, url=done.url)
                self._remember(done.status, time.time())
            except Exception as exc:  # noqa: BLE001 - a background poll only informs
                if not self._closed.is_set():
                    log.warning("%s: could not learn how processing ended: %s", self.name, exc)
                return
            log.info("%s: %s v%s is %s", self.name, self.cfg.dataset, done.version, done.status)

        self._spawn(poll, f"snapshot-poll-{self.name}")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    # --- status and history -----------------------------------------------------------------

    def _remember(self, status: str, at: float) -> None:
        self._last = {"status": status, "at": at}
        if status != "running":
            self.store.set("last_attempt", self._last)

    def status_block(self) -> dict[str, Any]:
        """The ``snapshot`` object of ``syncd status --json``."""
        block = self.store.status_block(self.data.store if self.data is not None else None)
        block["status"] = self._last.get("status") or block["status"]  # incl. "running"
        block["next_at"] = self.triggers.next_at()
        return block

    def history(self) -> list[dict[str, Any]]:
        """Every recorded upload, newest first."""
        return [record.to_dict() for record in self.store.history()]

    # --- triggers ---------------------------------------------------------------------------

    def install_triggers(self, scheduler: Any) -> None:
        """Start the triggers (``triggers``) and settle what a previous process left."""
        self.triggers.install(scheduler)
        self.store.interrupted()  # the daemon starts: no upload of ours is in flight
        if self.store.pending():
            self._spawn(self._resolve_pending_quietly, f"snapshot-resolve-{self.name}")

    def _resolve_pending_quietly(self) -> None:
        try:
            self._resolve_pending(kaggle.KaggleDatasets(self.kaggle_config, cancel=self._closed))
        except SyncdError as exc:
            log.warning("%s: could not learn how processing ended: %s", self.name, exc)

    def _triggered(self, trigger: str, message: str | None = None, tag: bool = False) -> None:
        if self._closed.is_set():
            return
        try:
            # A tag is a person naming this state: it gets its own version (and its notes on
            # Kaggle) even when the files equal the last snapshot's or another trigger runs.
            self._single_flight(trigger, message, tag, wait=True, progress=False, join=not tag)
        except SyncdError:
            pass  # logged by take(); status shows it
        except Exception:
            log.exception("%s: snapshot (%s) failed", self.name, trigger)

    def poll_tags(self) -> None:
        """Look for new git tags now (also a scheduled job when ``on_git_tag`` is set)."""
        self.triggers.poll_tags()

    def close(self) -> None:
        """Stop triggers and background polls (an upload in progress is cancelled)."""
        self._closed.set()
        self.triggers.remove()
        for thread in self._threads:
            thread.join(timeout=2)


def check_kaggle_credentials(config: KaggleConfig) -> str:
    """For ``syncd auth kaggle``: one cheap call; the sentence to print, or a SyncdError."""
    return kaggle.check_credentials(config)
