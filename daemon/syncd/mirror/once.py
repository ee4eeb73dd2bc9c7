"""``syncd sync --once``, and the pieces of one project's mirror.

``build_engine`` assembles a project's ignore rules, coalescer, remote and
runner: the daemon runs the runner in a thread, ``sync_once`` runs one full
scan per project and reports how it ended.  The caller holds the config's
instance lock (``service.lock``), so no daemon uses the same index meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..config import Config, DriveConfig, ProjectConfig
from ..db.statedb import StateDB
from ..errors import SyncdError
from ..localfs.ignore import IgnoreRules
from ..remotes import open_remote
from .coalescer import Coalescer
from .model import MirrorStatus, ProjectState
from .runner import MirrorRunner

log = logging.getLogger("syncd.daemon")  # the logger these lines always had


def build_engine(
    pc: ProjectConfig, db: StateDB, drive: DriveConfig, after: MirrorRunner | None = None
) -> tuple[IgnoreRules, Coalescer, MirrorRunner]:
    """The pieces of one project's mirror, shared by the daemon and `sync --once`.

    ``after``: the project's previous runner (a reload), which the new one lets finish.
    """
    assert pc.mirror is not None
    rules = IgnoreRules(pc.path, pc.ignore)
    coalescer = Coalescer(pc.mirror.delay, pc.mirror.max_delay)
    if db.bind_target(pc.name, pc.mirror.to.raw):
        log.info("%s: the target changed to %s; starting a fresh index", pc.name, pc.mirror.to.raw)
    engine = MirrorRunner(
        pc.name,
        pc.path,
        rules,
        open_remote(pc.mirror.to, drive=drive, state=db, project=pc.name),
        db,
        coalescer,
        deletions=pc.mirror.deletions,
        workers=pc.mirror.workers,
        after=after,
    )
    return rules, coalescer, engine


@dataclass(frozen=True)
class OnceOutcome:
    """How one project's one-shot mirror ended."""

    project: str
    target: str  # as written in the config, e.g. "gdrive:/syncd/cifar"
    status: MirrorStatus | None  # after the scan; None when no scan ran
    paused: str | None = None  # why the project is paused (before or after the scan)
    error: str | None = None  # the remote failed: nothing more was done

    @property
    def failed(self) -> bool:
        """Anything short of "every file mirrored" (a cron job should hear about it)."""
        return self.problem is not None or bool(self.status and self.status.file_errors)

    @property
    def problem(self) -> str | None:
        """Why the project as a whole is not mirrored, as one sentence; None when it is.

        Files skipped one by one are in ``status.file_errors``, not here.
        """
        st = self.status
        if self.error:
            return self.error
        if self.paused:
            return f"paused: {self.paused}"
        if st is None:
            return "nothing was mirrored"
        if st.state is not ProjectState.IDLE:
            return f"{st.state.value}: {st.reason or st.last_error or 'the walk did not finish'}"
        if st.pending:
            return f"{st.pending} changes are still pending"
        return None


def sync_once(
    config: Config, db: StateDB, projects: Iterable[ProjectConfig], *, confirm_deletes: bool
) -> Iterator[OnceOutcome]:
    """One full scan of each mirrored project, in order; an outcome as each one ends."""
    for pc in projects:
        if pc.mirror is None:
            continue
        target = pc.mirror.to.raw
        _, _, engine = build_engine(pc, db, config.drive)
        try:
            if confirm_deletes:
                engine.resume(confirm_deletes=True)
            elif engine.status().state is ProjectState.PAUSED:
                yield OnceOutcome(pc.name, target, None, paused=engine.status().reason)
                continue
            try:
                wrote = engine.manifest.writes
                engine.full_scan()
                if engine.state is ProjectState.IDLE and engine.manifest.writes == wrote:
                    engine.manifest.write(check=True)  # deleted or trashed by hand: anew
            except SyncdError as exc:
                yield OnceOutcome(pc.name, target, None, error=str(exc))
                continue
            except Exception as exc:  # one project's bug must not hide the others' outcomes
                log.debug("%s: sync --once failed", pc.name, exc_info=True)
                yield OnceOutcome(pc.name, target, None, error=f"unexpected error: {exc}")
                continue
        finally:
            engine.applier.idle()
            engine.remote.close()
        st = engine.status()
        paused = st.reason if st.state is ProjectState.PAUSED else None
        yield OnceOutcome(pc.name, target, st, paused=paused)
