"""The one control facade: pause, resume, status, sync, snapshot, reload, stop.

A ``Controller`` carries out every control command, once.  It works on a
*host*: the running daemon (``DaemonHost``: the engines in their threads, the
snapshot services with their triggers), or, when no daemon runs, the config
opened in this process (``LocalHost``: engines built but not started, the state
db, a snapshot service per call).  The daemon's socket hands requests to its
controller (``protocol.dispatch``); the CLI sends the same requests over the
socket and, when nobody listens, to a local controller (Maestral's
``MaestralProxy(fallback=True)``), so there is no second, hand-written offline
path.  What differs between the hosts is only what must: where a project's
mirror status comes from (live, or the state db's last word) and what ``sync``
means (ask the running engine for a full walk, or walk now: ``sync --once``).

Every method returns plain JSON-able data, so the answer is the same over the
socket and in-process; failures are ``SyncdError``s whose ``exit_code`` is the
command's exit code.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import SyncdError, UsageError
from ..mirror.flush import FlushOutcome
from ..mirror.manifest import manifest_record
from ..mirror.model import MirrorStatus, PauseKind
from .status import project_status, pull_block

if TYPE_CHECKING:
    from ..config import Config, ProjectConfig
    from ..db.statedb import StateDB
    from ..snapshot.service import SnapshotService
    from ..train.service import TrainService

log = logging.getLogger("syncd.control")

USER_PAUSE = "paused by the user"


class MirrorControl(Protocol):
    """What the controller needs of one project's mirror engine."""

    def pause(self, reason: str = ..., kind: PauseKind = ...) -> None: ...

    def resume(self, confirm_deletes: bool = False) -> None: ...

    def request_scan(self) -> None: ...

    def status(self) -> MirrorStatus: ...

    def flush(self, timeout: float) -> FlushOutcome: ...


class ControlHost(Protocol):
    """Where the controller's commands land: the daemon, or this process."""

    @property
    def config(self) -> Config: ...

    @property
    def db(self) -> StateDB: ...

    @property
    def running(self) -> bool:
        """True in the daemon (engines run in their threads)."""
        ...

    def status_header(self) -> dict[str, Any]: ...

    def mirror(self, name: str) -> MirrorControl:
        """The project's engine (it has a ``mirror:`` section)."""
        ...

    def mirror_status(self, name: str) -> MirrorStatus | None: ...

    def snapshot_service(self, name: str) -> SnapshotService | None: ...

    def snapshot_block(self, name: str) -> dict[str, Any] | None: ...

    def snapshot_history(self, name: str) -> list[dict[str, Any]]: ...

    def runs_block(self, name: str) -> list[dict[str, Any]] | None: ...

    def trainers(self) -> dict[str, TrainService]:
        """The projects' training services (``train/``); raises when they cannot run here."""
        ...

    def reconcile(self, names: list[str], confirm_deletes: bool) -> dict[str, Any]: ...

    def reload(self) -> None: ...

    def request_stop(self) -> None: ...

    @property
    def shows_progress(self) -> bool: ...


class Controller:
    """Every control command, carried out on a host (see the module docstring)."""

    def __init__(self, host: ControlHost) -> None:
        self.host = host

    # --- which projects ------------------------------------------------------------------

    def _projects(self, name: str | None) -> list[ProjectConfig]:
        config = self.host.config
        if name is None:
            return list(config.projects)
        for pc in config.projects:
            if pc.name == name:
                return [pc]
        known = ", ".join(p.name for p in config.projects) or "none"
        raise UsageError(f"no project named {name!r} in {config.path} (projects: {known})")

    def _mirrored(self, name: str | None, verb: str) -> list[ProjectConfig]:
        projects = self._projects(name)
        mirrored = [pc for pc in projects if pc.mirror is not None]
        if name is not None and not mirrored:
            raise UsageError(f"project {name!r} has no `mirror:` section, so nothing to {verb}")
        return mirrored

    def _snapshot_project(self, name: str | None, command: str) -> ProjectConfig:
        """The project a snapshot command is about: the named one, or the only candidate."""
        config = self.host.config
        if name is not None:
            pc = self._projects(name)[0]
            if pc.snapshot is None:
                raise UsageError(f"project {name!r} has no `snapshot:` section in {config.path}")
            return pc
        candidates = [pc for pc in config.projects if pc.snapshot is not None]
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise UsageError(
                f"no project in {config.path} has a `snapshot:` section "
                "(add one: see config.example.yaml)"
            )
        names = ", ".join(p.name for p in candidates)
        raise UsageError(f"name the project: `syncd {command} PROJECT` (one of {names})")

    # --- the commands --------------------------------------------------------------------

    def status(self, project: str | None = None) -> dict[str, Any]:
        """The ``status --json`` shape (service.status): live, or the state db's last word."""
        projects = [
            project_status(
                pc,
                self.host.mirror_status(pc.name),
                self.host.snapshot_block(pc.name),
                runs=self.host.runs_block(pc.name),
                manifest=self._manifest_block(pc),
                pull=pull_block(self.host.db, pc),
            )
            for pc in self._projects(project)
        ]
        return {**self.host.status_header(), "projects": projects}

    def _manifest_block(self, pc: ProjectConfig) -> dict[str, Any] | None:
        rec = manifest_record(self.host.db, pc.name) if pc.mirror is not None else None
        return rec.to_status() if rec is not None else None

    def pause(self, project: str | None = None) -> dict[str, Any]:
        """Stop uploading; edits keep being recorded.  Survives restarts."""
        for pc in self._mirrored(project, "pause"):
            self.host.mirror(pc.name).pause(USER_PAUSE, PauseKind.USER)
        return self.status(project)

    def resume(self, project: str | None = None, confirm_deletes: bool = False) -> dict[str, Any]:
        """Start uploading again.  A project holding back a mass deletion needs the word."""
        refused = []
        for pc in self._mirrored(project, "resume"):
            if self.host.db.project(pc.name).paused == PauseKind.DELETES.value and not (
                confirm_deletes
            ):
                refused.append(pc.name)
                continue
            self.host.mirror(pc.name).resume(confirm_deletes=confirm_deletes)
        if refused:
            which = " ".join(refused)
            raise SyncdError(
                f"{', '.join(refused)} {'holds' if len(refused) == 1 else 'hold'} back a mass "
                f"deletion and stays paused; check the target, then run "
                f"`syncd resume {which} --confirm-deletes`"
            )
        return self.status(project)

    def sync(self, project: str | None = None, confirm_deletes: bool = False) -> dict[str, Any]:
        """Reconcile now: the daemon schedules a full walk; in-process it walks here and now."""
        names = [pc.name for pc in self._mirrored(project, "sync")]
        return self.host.reconcile(names, confirm_deletes)

    def flush(self, project: str | None = None, wait: float | None = None) -> dict[str, Any]:
        """Return once every edit made before the call is on the target and in its manifest."""
        from . import colab

        projects = self._mirrored(project, "flush")
        return colab.flush(self.host, projects, colab.FLUSH_TIMEOUT_S if wait is None else wait)

    def colab(self, project: str | None = None, wait: float | None = None) -> dict[str, Any]:
        """Put the Colab helper on Drive with the manifest; what the printed cell needs."""
        from . import colab

        candidates = self._mirrored(project, "open in Colab")
        drive = [pc for pc in candidates if pc.mirror and pc.mirror.to.kind == "gdrive"]
        if project is None and len(drive) != 1:
            names = ", ".join(pc.name for pc in drive) or "none mirrors to gdrive:"
            raise UsageError(f"name the project: `syncd colab PROJECT` ({names})")
        pc = candidates[0] if project is not None else drive[0]
        return colab.colab(self.host, pc, colab.FLUSH_TIMEOUT_S if wait is None else wait)

    def snapshot(
        self,
        project: str | None = None,
        message: str | None = None,
        force: bool = False,
        wait: bool = False,
    ) -> dict[str, Any]:
        """A new Kaggle dataset version now (or the one already running)."""
        pc = self._snapshot_project(project, "snapshot")
        service = self.host.snapshot_service(pc.name)
        if service is None:  # the daemon could not start it (its config changed meanwhile)
            raise SyncdError(f"{pc.name}: snapshots are not running; see `syncd status`")
        result = service.take(
            "manual", message, force=force, wait=wait, progress=self.host.shows_progress
        )
        return result.to_dict()

    def history(self, project: str | None = None) -> list[dict[str, Any]]:
        """``syncd snapshots``: every recorded upload of one project, newest first."""
        pc = self._snapshot_project(project, "snapshots")
        return self.host.snapshot_history(pc.name)

    # --- training runs (train/; the rules live in service/training.py) --------------------

    def train(
        self,
        project: str | None = None,
        message: str | None = None,
        gpu: str | None = None,
        command: str | None = None,
    ) -> dict[str, Any]:
        """Snapshot if needed, push a kernel that trains on it; the run as data."""
        from . import training

        self._projects(project)  # an unknown name is a usage error, as everywhere
        fields = {"message": message, "gpu": gpu, "command": command}
        return training.train_command(self.host.trainers(), project, fields)

    def runs(
        self,
        project: str | None = None,
        run: str | None = None,
        after: float | None = None,
        wait: float | None = None,
    ) -> Any:
        """The run list, or (``run``) that run's events after ``after`` for ``train --wait``."""
        from . import training

        self._projects(project)
        fields = {"run": run, "after": after, "wait": wait}
        return training.runs_command(self.host.trainers(), project, fields)

    def runs_stop(self, run: str | None = None) -> dict[str, Any]:
        from . import training

        return training.stop_command(self.host.trainers(), {"run": run})

    def reload(self) -> dict[str, Any]:
        """Re-read the config; a broken one is refused and the running one kept."""
        self.host.reload()
        return self.status()

    def stop(self) -> dict[str, Any]:
        self.host.request_stop()
        return {"stopping": True}
