"""The daemon's lifecycle: one instance per config, its projects, the scheduler, signals.

Each project gets its ignore rules, a coalescer fed by the shared watcher, a
remote and a ``MirrorEngine`` running in its own thread.  The daemon only
wires these together and starts/stops them; every decision about files is
the engine's.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler

from .config import Config, ProjectConfig
from .errors import SyncdError
from .ignore import IgnoreRules
from .mirror import MirrorEngine
from .remotes import open_remote
from .state import StateDB
from .watch import Coalescer, Watcher

log = logging.getLogger("syncd.daemon")

RESCAN_INTERVAL_S = 3600  # the hourly safety-net walk
STOP_GRACE_S = 8.0  # in-flight copies get this long to finish on SIGTERM


class InstanceLock:
    """An flock on a file next to the state db: the kernel drops it when the holder dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise SyncdError(
                f"syncd is already running for this config as pid {holder}",
                "stop it first, or use `syncd status` to talk to it",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def holder(self) -> int | None:
        """The pid of a running holder, or None."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.pread(fd, 32, 0).decode(errors="replace").strip()
                return int(text) if text.isdigit() else None
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass
class ProjectRuntime:
    """Everything that runs for one project."""

    config: ProjectConfig
    rules: IgnoreRules
    coalescer: Coalescer
    engine: MirrorEngine
    thread: threading.Thread
    watch: object | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def build_engine(pc: ProjectConfig, db: StateDB) -> tuple[IgnoreRules, Coalescer, MirrorEngine]:
    """The pieces of one project's mirror, shared by the daemon and `sync --once`."""
    assert pc.mirror is not None
    rules = IgnoreRules(pc.path, pc.ignore)
    coalescer = Coalescer(pc.mirror.delay, pc.mirror.max_delay)
    if db.bind_target(pc.name, pc.mirror.to.raw):
        log.info("%s: the target changed to %s; starting a fresh index", pc.name, pc.mirror.to.raw)
    engine = MirrorEngine(
        pc.name,
        pc.path,
        rules,
        open_remote(pc.mirror.to),
        db,
        coalescer,
        deletions=pc.mirror.deletions,
        workers=pc.mirror.workers,
    )
    return rules, coalescer, engine


class Daemon:
    """``syncd run``: mirrors every project of a config until told to stop."""

    def __init__(self, config: Config, db: StateDB) -> None:
        self.config = config
        self.db = db
        self.started = time.time()
        self.projects: dict[str, ProjectRuntime] = {}
        self._stop = threading.Event()
        self._watcher: Watcher | None = None
        self._scheduler = BackgroundScheduler(daemon=True)

    # --- projects ------------------------------------------------------------

    def _start_project(self, pc: ProjectConfig) -> None:
        if pc.mirror is None:
            return
        if pc.mirror.pull:
            log.warning(
                "%s: mirror.pull is not implemented yet; %s stay remote-only",
                pc.name,
                ", ".join(pc.mirror.pull),
            )
        rules, coalescer, engine = build_engine(pc, self.db)
        thread = threading.Thread(target=engine.run, name=f"mirror-{pc.name}", daemon=True)
        rt = ProjectRuntime(pc, rules, coalescer, engine, thread)
        engine.on_folder_back = lambda: self._rewatch(rt)
        self.projects[pc.name] = rt
        self._rewatch(rt)  # watch before the first scan, so no edit falls between them
        thread.start()
        log.info("%s: mirroring %s → %s", pc.name, pc.path, pc.mirror.to.raw)

    def _rewatch(self, rt: ProjectRuntime) -> None:
        assert self._watcher is not None
        with rt.lock:
            if rt.watch is not None:
                self._watcher.unwatch(rt.watch)
                rt.watch = None
            if not rt.config.path.is_dir():
                return  # the engine reports it and calls back when the folder is there
            try:
                rt.watch = self._watcher.watch(
                    rt.config.path,
                    rt.rules,
                    rt.coalescer,
                    on_rules_changed=lambda: self._rules_changed(rt),
                    on_root_gone=rt.engine.request_scan,
                )
            except OSError as exc:
                log.error(
                    "%s: cannot watch %s: %s (if it says 'inotify watch limit reached', raise "
                    "fs.inotify.max_user_watches); falling back to the hourly scan",
                    rt.config.name,
                    rt.config.path,
                    exc,
                )

    @staticmethod
    def _rules_changed(rt: ProjectRuntime) -> None:
        rt.rules.reload()
        rt.engine.request_scan()

    # --- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        self._watcher = Watcher()
        for pc in self.config.projects:
            self._start_project(pc)
        self._scheduler.add_job(
            self.rescan_all,
            "interval",
            seconds=RESCAN_INTERVAL_S,
            id="rescan",
            coalesce=True,
            max_instances=1,
        )
        self._scheduler.start()

    def rescan_all(self) -> None:
        for rt in self.projects.values():
            rt.engine.request_scan()

    def request_stop(self) -> None:
        self._stop.set()

    def wait(self) -> None:
        while not self._stop.wait(1.0):
            pass

    def stop(self) -> None:
        log.info("stopping: letting in-flight copies finish")
        try:
            self._scheduler.shutdown(wait=False)
        except Exception:  # noqa: BLE001 - never block shutdown on the scheduler
            pass
        if self._watcher is not None:
            self._watcher.stop()
        for rt in self.projects.values():
            rt.engine.stop()
        deadline = time.monotonic() + STOP_GRACE_S
        for rt in self.projects.values():
            rt.thread.join(max(0.1, deadline - time.monotonic()))
            if rt.thread.is_alive():
                log.warning(
                    "%s: still busy at shutdown; the next start picks up the rest", rt.config.name
                )
        for rt in self.projects.values():
            rt.engine.remote.close()
        log.info("stopped")

    def run_forever(self) -> None:
        """The foreground daemon: SIGTERM/SIGINT stop it cleanly."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.request_stop())
        self.start()
        try:
            self.wait()
        finally:
            self.stop()
