"""The two places the ``Controller``'s commands land: the running daemon, or this process.

``DaemonHost`` adapts the running ``Daemon`` (engines in their threads, snapshot
services with their triggers).  ``LocalHost`` opens the config in this process
when no daemon answers: it builds a project's engine without starting it, reads
the state db for status, and takes the config's instance lock before it changes
anything, so it never writes to the index of a daemon that is starting up.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config, load_config
from ..db.statedb import StateDB, state_db_path
from ..errors import ConfigError, SyncdError
from ..mirror.model import PauseKind
from .ipc import DaemonNotRunning
from .lock import InstanceLock, instance_lock
from .status import header, mirror_status_from_disk

if TYPE_CHECKING:
    from ..mirror.model import MirrorStatus
    from ..mirror.once import OnceOutcome
    from ..mirror.runner import MirrorRunner
    from ..snapshot.service import SnapshotService
    from ..train.service import TrainService
    from .controller import MirrorControl
    from .daemon import Daemon


class StateDirError(SyncdError):
    """The state folder (index, lock) cannot be used.  Retrying cannot fix a read-only or
    forbidden folder, so that exits 2, which the service unit does not restart in a loop."""

    title = "state folder unusable"
    exit_code = 2


def state_error(exc: BaseException, where: Path) -> SyncdError:
    """An OSError or sqlite3 error about the state folder as one sentence with its remedy."""
    code = getattr(exc, "errno", None)
    if code is None and isinstance(exc.__cause__, OSError):
        code = exc.__cause__.errno
    text = str(exc).lower()
    if code == errno.EROFS or "read-only" in text:
        problem = "is on a read-only disk"
    elif code in (errno.EEXIST, errno.ENOTDIR):
        problem = "is not a folder (a file has its name)"
    elif code in (errno.EACCES, errno.EPERM) or "permission" in text or "unable to open" in text:
        problem = "cannot be written by you (permissions)"
    else:
        reason = getattr(exc, "strerror", None) or str(exc)
        return SyncdError(
            f"cannot use the state folder {where.parent}: {reason}",
            "check its disk (free space, errors)",
        )
    return StateDirError(
        f"the state folder {where.parent} {problem}",
        "make it writable, or point XDG_STATE_HOME at a writable folder",
    )


def claim_instance(config_path: Path, *, busy_hint: str | None = None) -> InstanceLock:
    """The config's instance lock, or one sentence saying who holds it or why it can't be had."""
    lock = instance_lock(config_path)
    try:
        lock.acquire()
    except OSError as exc:
        raise state_error(exc, lock.path) from exc
    except SyncdError as exc:
        if busy_hint is None or exc.exit_code != 1:  # only "held by a daemon" gets the hint
            raise
        raise SyncdError(exc.message, busy_hint) from exc
    return lock


def open_state_db(config: Config) -> StateDB:
    path = state_db_path(config.path)
    try:
        return StateDB(path)
    except (OSError, sqlite3.Error) as exc:
        raise state_error(exc, path) from exc
    except SyncdError as exc:  # StateDB's own "cannot open" sentence
        if exc.__cause__ is not None:
            raise state_error(exc.__cause__, path) from exc
        raise


class DaemonHost:
    """The running daemon, as the controller sees it."""

    running = True
    shows_progress = False  # the daemon's stderr is a log

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon

    @property
    def config(self) -> Config:
        return self._daemon.config

    @property
    def db(self) -> StateDB:
        return self._daemon.db

    def status_header(self) -> dict[str, Any]:
        return header(
            running=True, started=self._daemon.started, config_error=self._daemon.config_error
        )

    def mirror(self, name: str) -> MirrorControl:
        rt = self._daemon.projects.get(name)
        if rt is None:
            raise SyncdError(f"{name}: its mirror is not running; see `syncd status`")
        return rt.engine

    def mirror_status(self, name: str) -> MirrorStatus | None:
        rt = self._daemon.projects.get(name)
        return rt.engine.status() if rt is not None else None

    def snapshot_service(self, name: str) -> SnapshotService | None:
        return self._daemon.snapshots.get(name)

    def snapshot_block(self, name: str) -> dict[str, Any] | None:
        service = self._daemon.snapshots.get(name)
        return service.status_block() if service is not None else None

    def snapshot_history(self, name: str) -> list[dict[str, Any]]:
        service = self._daemon.snapshots.get(name)
        return service.history() if service is not None else []

    def runs_block(self, name: str) -> list[dict[str, Any]] | None:
        trainer = self._daemon.trainers.get(name)
        if trainer is not None:
            return trainer.status_block()
        return [] if self._daemon.config.project(name).train is not None else None

    def trainers(self) -> dict[str, TrainService]:
        return self._daemon.trainers

    def reconcile(self, names: list[str], confirm_deletes: bool) -> dict[str, Any]:
        for name in names:
            engine = self.mirror(name)
            held = self.db.project(name).paused == PauseKind.DELETES.value
            if confirm_deletes and held:  # the word lifts a held deletion, not a user's pause
                engine.resume(confirm_deletes=True)
            engine.request_scan()
        return {"once": False, "projects": names}

    def reload(self) -> None:
        self._daemon.reload()
        if self._daemon.config_error:
            raise ConfigError(f"kept the previous config: {self._daemon.config_error}")

    def request_stop(self) -> None:
        self._daemon.request_stop()


class LocalHost:
    """The config opened in this process, for when no daemon answers.  Close it after use."""

    running = False

    def __init__(
        self, config_path: Path, *, progress: bool = False, busy_hint: str | None = None
    ) -> None:
        self._config = load_config(config_path)
        self.shows_progress = progress
        self._busy_hint = busy_hint or (
            "it runs but its control socket does not answer; try again in a moment, or restart it"
        )
        self._db: StateDB | None = None
        self._lock: InstanceLock | None = None
        self._engines: dict[str, MirrorRunner] = {}
        self._services: dict[str, SnapshotService] = {}

    @property
    def config(self) -> Config:
        return self._config

    @property
    def db(self) -> StateDB:
        if self._db is None:
            self._db = open_state_db(self._config)
        return self._db

    def claim(self) -> None:
        """Take the instance lock before changing anything (before the db, like the daemon)."""
        if self._lock is None:
            self._lock = claim_instance(self._config.path, busy_hint=self._busy_hint)

    def status_header(self) -> dict[str, Any]:
        return header(running=False, started=None, config_error=None)

    def _project(self, name: str) -> Any:
        return self._config.project(name)

    def mirror(self, name: str) -> MirrorControl:
        from ..mirror.once import build_engine

        if name not in self._engines:
            self.claim()
            _, _, engine = build_engine(self._project(name), self.db, self._config.drive)
            self._engines[name] = engine
        return self._engines[name]

    def mirror_status(self, name: str) -> MirrorStatus | None:
        if self._project(name).mirror is None:
            return None
        return mirror_status_from_disk(self.db, name)

    def _service(self, name: str) -> SnapshotService:
        from ..snapshot.service import SnapshotService

        if name not in self._services:
            self._services[name] = SnapshotService(
                self._project(name), self.db, self._config.kaggle
            )
        return self._services[name]

    def snapshot_service(self, name: str) -> SnapshotService | None:
        self.claim()
        return self._service(name)

    def snapshot_block(self, name: str) -> dict[str, Any] | None:
        pc = self._project(name)
        if pc.snapshot is None:
            return None
        from ..snapshot.store import SnapshotStore  # ~55 ms: only when a project has one

        data = pc.snapshot.data_dataset
        store = SnapshotStore(self.db, name, pc.snapshot.dataset)
        return store.status_block(SnapshotStore(self.db, name, data) if data else None)

    def snapshot_history(self, name: str) -> list[dict[str, Any]]:
        return self._service(name).history()

    def runs_block(self, name: str) -> list[dict[str, Any]] | None:
        if self._project(name).train is None:
            return None
        from ..train.service import runs_block  # only when a project trains
        from ..train.store import RunStore

        return runs_block(RunStore(self.db), name)

    def trainers(self) -> dict[str, TrainService]:
        # `syncd train` without a daemon runs its own service (cli/commands_train.py).
        raise DaemonNotRunning(
            f"syncd is not running for {self._config.path}",
            "`syncd train` and `syncd runs` work without it; start it to have runs followed",
        )

    def reconcile(self, names: list[str], confirm_deletes: bool) -> dict[str, Any]:
        """``sync --once``: one full walk of each project, here and now."""
        from ..mirror.once import sync_once

        self.claim()
        projects = [self._project(n) for n in names]
        outcomes = sync_once(self._config, self.db, projects, confirm_deletes=confirm_deletes)
        return {"once": True, "projects": [_outcome(o) for o in outcomes]}

    def reload(self) -> None:
        raise DaemonNotRunning(
            f"syncd is not running for {self._config.path}, so there is nothing to reload",
            "start it with `syncd run` or `syncd service install`",
        )

    def request_stop(self) -> None:
        raise DaemonNotRunning(
            f"syncd is not running for {self._config.path}, so there is nothing to stop"
        )

    def close(self) -> None:
        for engine in self._engines.values():
            with contextlib.suppress(Exception):
                engine.remote.close()
        for service in self._services.values():
            service.close()
        if self._db is not None:
            self._db.close()
        if self._lock is not None:
            self._lock.release()


def _outcome(o: OnceOutcome) -> dict[str, Any]:
    """One project's ``sync --once`` result as plain data (see ``controller.outcome_lines``)."""
    st = o.status
    return {
        "name": o.project,
        "target": o.target,
        "ok": not o.failed,
        "problem": o.problem,
        "state": st.state.value if st else None,
        "files": st.files if st else None,
        "bytes": st.bytes if st else None,
        "pending": st.pending if st else None,
        "skipped": dict(st.file_errors) if st else {},
    }
