"""The daemon's lifecycle: one instance per config, its projects, the scheduler, signals.

Each project gets its ignore rules, a coalescer fed by the shared watcher, a
remote and a ``MirrorRunner`` running in its own thread.  The daemon only
wires these together and starts/stops them; every decision about files is
the mirror's.  A folder that cannot be watched (inotify limits) is polled by
its runner instead, and status says so.  A reload never runs two runners of
one project at once: the new one waits until the old one's uploads are done.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.background import BackgroundScheduler

from ..config import Config, ProjectConfig, load_config
from ..db.statedb import StateDB
from ..errors import ConfigError
from ..localfs.ignore import IgnoreRules
from ..mirror.coalescer import Coalescer
from ..mirror.once import build_engine
from ..mirror.runner import POLL_MIN_S, MirrorRunner
from .controller import Controller
from .hosts import DaemonHost
from .ipc import Server, socket_path
from .protocol import dispatch
from .sd_notify import SystemdNotifier
from .watcher import PartialWatch, Watch, Watcher, WatchUnavailable

if TYPE_CHECKING:
    from ..pullback.poller import PullPoller
    from ..snapshot.service import SnapshotService
    from ..train.service import TrainService

log = logging.getLogger("syncd.daemon")

RESCAN_INTERVAL_S = 3600  # the hourly safety-net walk
STOP_GRACE_S = 8.0  # in-flight copies get this long to finish on SIGTERM


@dataclass
class ProjectRuntime:
    """Everything that runs for one project's mirror."""

    config: ProjectConfig
    rules: IgnoreRules
    coalescer: Coalescer
    engine: MirrorRunner
    thread: threading.Thread
    watch: Watch | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class Daemon:
    """``syncd run``: mirrors every project of a config until told to stop."""

    def __init__(self, config: Config, db: StateDB) -> None:
        self.config = config
        self.db = db
        self.started = time.time()
        self.projects: dict[str, ProjectRuntime] = {}
        self.config_error: str | None = None
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._watcher_dead = threading.Event()  # watchdog's thread died: start a new one
        self._watcher: Watcher | None = None
        self._scheduler = BackgroundScheduler(daemon=True)
        self._notifier = SystemdNotifier()
        self._ipc: Server | None = None
        self.snapshots: dict[str, SnapshotService] = {}  # imported when a project has one
        self.trainers: dict[str, TrainService] = {}  # projects with a `train:` section
        self.pullers: dict[str, PullPoller] = {}  # projects with `mirror.pull` (pullback/)
        self._reload_lock = threading.Lock()  # SIGHUP and `syncd reload` may race
        # Every control request goes through the one controller (as the CLI's in-process ones do).
        self.control = Controller(DaemonHost(self))

    # --- projects ------------------------------------------------------------

    def _start_project(self, pc: ProjectConfig, after: MirrorRunner | None = None) -> None:
        """Start a project's mirror; ``after``: its previous runner (a reload), let finish."""
        if pc.mirror is None:
            return
        rules, coalescer, engine = build_engine(pc, self.db, self.config.drive, after)
        thread = threading.Thread(target=engine.run, name=f"mirror-{pc.name}", daemon=True)
        rt = ProjectRuntime(pc, rules, coalescer, engine, thread)
        engine.on_folder_back = lambda: self._rewatch(rt)
        engine.on_root_replaced = lambda: self._rewatch(rt)
        self.projects[pc.name] = rt
        self._rewatch(rt)  # watch before the first scan, so no edit falls between them
        thread.start()
        log.info("%s: mirroring %s → %s", pc.name, pc.path, pc.mirror.to.raw)
        if pc.mirror.pull:
            from ..pullback.poller import start_pull  # imported for configs that use it

            self.pullers[pc.name] = start_pull(pc, self.db, self.config.drive)

    def _stop_pull(self, name: str, deadline: float) -> None:
        """Stop a project's return path; a download in flight gets until ``deadline``."""
        poller = self.pullers.pop(name, None)
        if poller is not None:
            poller.stop()
            poller.join(max(0.1, deadline - time.monotonic()))

    def _start_snapshots(self, pc: ProjectConfig) -> None:
        if pc.snapshot is None:
            return
        from ..snapshot.service import SnapshotService

        rt = self.projects.get(pc.name)
        service = SnapshotService(
            pc,
            self.db,
            self.config.kaggle,
            settled=rt.engine.wait_settled if rt else None,
            rules=rt.rules if rt else None,
        )
        service.install_triggers(self._scheduler)
        self.snapshots[pc.name] = service

    def _stop_snapshots(self, name: str) -> None:
        trainer = self.trainers.pop(name, None)
        if trainer is not None:
            trainer.close()
        service = self.snapshots.pop(name, None)
        if service is not None:
            service.close()

    # --- training runs (train/): follow each project's runs, from where they were --------

    @staticmethod
    def _training() -> Any:
        from . import training  # imports train/ only for configs that use it

        return training

    def _start_training(self, pc: ProjectConfig) -> None:
        snapshots = self.snapshots.get(pc.name)
        if pc.train is None or snapshots is None:
            return
        trainer = self._training().train_service(pc, self.db, self.config.kaggle, snapshots)
        trainer.start()
        self.trainers[pc.name] = trainer

    def _retire(self, rt: ProjectRuntime) -> MirrorRunner:
        """Stop watching and tell the runner to stop; it closes its remote once done."""
        with rt.lock:
            if self._watcher is not None and rt.watch is not None:
                self._watcher.unwatch(rt.watch)
                rt.watch = None
        rt.engine.stop()
        return rt.engine

    def _stop_project(self, rt: ProjectRuntime, deadline: float) -> None:
        self._retire(rt)
        rt.thread.join(max(0.1, deadline - time.monotonic()))
        if rt.thread.is_alive() or not rt.engine.finished.wait(0):
            log.warning(
                "%s: still busy at shutdown; the next start picks up the rest", rt.config.name
            )

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
            except WatchUnavailable as exc:
                if isinstance(exc, PartialWatch):
                    rt.watch = exc.watch  # events for what it covers, polling for the rest
                if rt.engine.poll_every is None:
                    log.warning(
                        "%s: cannot watch %s: %s; polling it instead",
                        rt.config.name,
                        rt.config.path,
                        exc,
                    )
                rt.engine.poll(POLL_MIN_S, str(exc))
            else:
                rt.engine.watched()

    @staticmethod
    def _rules_changed(rt: ProjectRuntime) -> None:
        rt.rules.reload()
        rt.engine.request_scan()

    # --- requests (IPC) ------------------------------------------------------

    def handle(self, request: dict[str, Any]) -> Any:
        """One control request from the socket; see ``ipc`` for the framing."""
        return dispatch(self.control, request)

    def status(self, project: str | None = None) -> dict[str, Any]:
        return self.control.status(project)

    def _summary(self) -> str:
        states = [f"{name} {rt.engine.state.value}" for name, rt in self.projects.items()]
        return ", ".join(states) or "no projects to mirror"

    # --- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        self._watcher = Watcher(on_dead=lambda _why: self._watcher_dead.set())
        for pc in self.config.projects:
            self._start_project(pc)
            self._start_snapshots(pc)
            self._start_training(pc)
        self._scheduler.add_job(
            self.rescan_all,
            "interval",
            seconds=RESCAN_INTERVAL_S,
            id="rescan",
            coalesce=True,
            max_instances=1,
        )
        self._scheduler.start()
        self._ipc = Server(socket_path(self.config.path), self.handle)
        self._ipc.start()
        self._notifier.ready(self._summary())

    def rescan_all(self) -> None:
        """The hourly safety net: a full walk of every project, and a look at whether each
        watch still covers its tree (folders made later may have hit the watch limit)."""
        for rt in self.projects.values():
            rt.engine.request_scan()
            if self._watcher is None or rt.watch is None or rt.engine.poll_every is not None:
                continue
            missing = self._watcher.unwatched(rt.watch, rt.config.path)
            if missing:
                why = f"{missing} folders could not be watched: inotify watch limit reached"
                log.warning("%s: %s; polling it as well", rt.config.name, why)
                rt.engine.poll(POLL_MIN_S, why)

    def reload(self) -> None:
        """Re-read the config: start added projects, stop removed ones, restart changed ones.

        Queued edits of a restarted project are not lost: its first scan finds them.
        A broken config keeps the running one and is reported in status.
        """
        with self._reload_lock:
            self._reload_locked()

    def _reload_locked(self) -> None:
        try:
            new = load_config(self.config.path)
        except ConfigError as exc:
            self.config_error = str(exc)
            log.error("reload failed, still running the previous config: %s", exc)
            return
        self.config_error = None
        old = {pc.name: pc for pc in self.config.projects}
        fresh = {pc.name: pc for pc in new.projects}
        self.config = new
        previous: dict[str, MirrorRunner] = {}
        for name, pc in old.items():
            if fresh.get(name) != pc:
                log.info(
                    "%s: %s by the new config", name, "changed" if name in fresh else "removed"
                )
                self._stop_snapshots(name)  # its rules, path or dataset may have changed
                self._stop_pull(name, time.monotonic() + STOP_GRACE_S)
                if name in self.projects:
                    # Not joined here: the new runner waits for it (an upload may be in flight).
                    previous[name] = self._retire(self.projects.pop(name))
        for name, pc in fresh.items():
            if name not in self.projects and name not in self.snapshots:
                self._start_project(pc, after=previous.get(name))
                self._start_snapshots(pc)
                self._start_training(pc)
        log.info("config reloaded: %s", self._summary())

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload.set()

    def wait(self) -> None:
        """The main thread's loop: watchdog pings, status line, reloads, until stopped."""
        interval = self._notifier.watchdog_interval
        last_status = ""
        while not self._stop.wait(min(1.0, interval or 1.0)):
            if self._reload.is_set():
                self._reload.clear()
                self.reload()
            if self._watcher_dead.is_set():
                self._watcher_dead.clear()
                self._restart_watcher()
            summary = self._summary()
            if summary != last_status:
                self._notifier.status(summary)
                last_status = summary
            if interval and self._engines_alive(interval * 4):
                self._notifier.watchdog()

    def _restart_watcher(self) -> None:
        """A new observer for every project, then a full scan of each: what changed while
        no event could arrive is found by the walk (nothing silently different, #8)."""
        if self._watcher is not None:
            self._watcher.stop()
        self._watcher = Watcher(on_dead=lambda _why: self._watcher_dead.set())
        for rt in self.projects.values():
            with rt.lock:
                rt.watch = None  # the old observer's watch: gone with it
            self._rewatch(rt)
            rt.engine.request_scan()

    def _engines_alive(self, max_silence: float) -> bool:
        """Ping systemd's watchdog only while every engine loop still turns."""
        for name, rt in self.projects.items():
            if not rt.thread.is_alive() or not rt.engine.alive(max_silence):
                log.error(
                    "%s: the mirror engine stopped responding; not pinging the watchdog", name
                )
                return False
        return True

    def stop(self) -> None:
        log.info("stopping: letting in-flight copies finish")
        self._notifier.stopping()
        if self._ipc is not None:
            self._ipc.close()
        try:
            self._scheduler.shutdown(wait=False)
        except Exception:  # noqa: BLE001 - never block shutdown on the scheduler
            pass
        for name in list(self.snapshots):
            self._stop_snapshots(name)
        for rt in self.projects.values():
            rt.engine.stop()
        for poller in self.pullers.values():
            poller.stop()
        deadline = time.monotonic() + STOP_GRACE_S
        for name in list(self.pullers):
            self._stop_pull(name, deadline)
        for rt in self.projects.values():
            self._stop_project(rt, deadline)
        if self._watcher is not None:
            self._watcher.stop()
        log.info("stopped")

    def run_forever(self) -> None:
        """The foreground daemon: SIGTERM/SIGINT stop it cleanly, SIGHUP reloads the config."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.request_stop())
        signal.signal(signal.SIGHUP, lambda *_: self.request_reload())
        self.start()
        try:
            self.wait()
        finally:
            self.stop()
