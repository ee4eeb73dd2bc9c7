"""One project's state, its reason and its per-file errors, behind one lock (Syncthing's
``stateTracker``).

Every change of state is logged once, with how long the previous state lasted;
the same state with the same reason is not news.  A state that means waiting
for the user or the network (``offline``, ``auth_required``) is logged when it
begins and then at most every ``REMIND_S``, however often the runner retries.
Per-file errors are logged once per (path, message) and leave ``status`` as
soon as the file is mirrored, deleted or gone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .model import ProjectState

REMIND_S = 600.0  # a long wait (credentials, network) is logged again this often
TROUBLE = (ProjectState.OFFLINE, ProjectState.AUTH_REQUIRED, ProjectState.ERROR)


@dataclass(frozen=True)
class TrackedState:
    """A consistent view of the tracker, for ``status``."""

    state: ProjectState
    reason: str | None
    last_error: str | None
    file_errors: dict[str, str]


class StateTracker:
    """State + reason + file errors of one project; safe to call from any thread."""

    def __init__(
        self,
        name: str,
        log: logging.Logger,
        persist: Callable[[ProjectState, str | None], None],
        state: ProjectState = ProjectState.STARTING,
        reason: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.log = log
        self._persist = persist
        self._clock = clock
        self._lock = threading.Lock()
        self._state = state
        self._reason = reason
        self._since = clock()
        self._logged_at = clock()
        self._global_error: str | None = None
        self._file_errors: dict[str, str] = {}
        self._reported: set[tuple[str, str]] = set()

    # --- the state -----------------------------------------------------------

    @property
    def state(self) -> ProjectState:
        return self._state

    @property
    def reason(self) -> str | None:
        return self._reason

    def set(self, state: ProjectState, reason: str | None = None) -> bool:
        """Change the state; log and record it if it really changed.  True when it did."""
        with self._lock:
            if state == self._state and reason == self._reason:
                return False
            old, lasted = self._state, self._clock() - self._since
            self._state, self._reason = state, reason
            self._since = self._logged_at = self._clock()
            if state in TROUBLE:
                self._global_error = reason
            elif state is not ProjectState.PAUSED:
                self._global_error = None
        self.log.info(
            "%s: %s → %s%s (after %s %s)",
            self.name,
            old.value,
            state.value,
            f": {reason}" if reason else "",
            _duration(lasted),
            old.value,
        )
        self._persist(state, reason if state in TROUBLE else None)
        return True

    def remind(self, waiting: int) -> None:
        """Still in a waiting state after a retry: say so again only every ``REMIND_S``."""
        with self._lock:
            now = self._clock()
            if self._state not in TROUBLE or now - self._logged_at < REMIND_S:
                return
            self._logged_at = now
            state, reason, lasted = self._state, self._reason, now - self._since
        self.log.warning(
            "%s: still %s after %s (%s); %d local changes wait",
            self.name,
            state.value,
            _duration(lasted),
            reason,
            waiting,
        )

    # --- per-file errors -----------------------------------------------------

    def file_error(self, path: str, message: str) -> None:
        """One file could not be mirrored: shown in status until it is fixed or gone."""
        with self._lock:
            self._file_errors[path] = message
            new = (path, message) not in self._reported
            self._reported.add((path, message))
        if new:
            self.log.warning("%s: skipping %s: %s", self.name, path, message)

    def notice(self, path: str, what: str) -> None:
        """A deliberate skip (a symlink): said once at INFO, never an error in status."""
        with self._lock:
            new = (path, what) not in self._reported
            self._reported.add((path, what))
        if new:
            self.log.info("%s: skipping %s: %s", self.name, path, what)

    def file_ok(self, path: str) -> None:
        """The file was mirrored, deleted or is gone: its error leaves status.

        Its "reported" marks go too, so the same trouble later is logged again.
        """
        with self._lock:
            self._file_errors.pop(path, None)
            self._reported = {r for r in self._reported if r[0] != path}

    def files_ok(self, paths: list[str]) -> None:
        """``file_ok`` for many paths (a bulk copy's), in one pass over the marks."""
        with self._lock:
            for path in paths:
                self._file_errors.pop(path, None)
            if self._reported:
                done = set(paths)
                self._reported = {r for r in self._reported if r[0] not in done}

    def keep_errors_of(self, paths: Iterable[str]) -> None:
        """After a full walk: only these paths still have a problem (the rest were fixed)."""
        keep = set(paths)
        with self._lock:
            fixed = set(self._file_errors) - keep
            self._file_errors = {p: m for p, m in self._file_errors.items() if p in keep}
            self._reported = {r for r in self._reported if r[0] not in fixed}

    def unexpected(self, message: str) -> None:
        """A bug or an environment failure outside any one file: state ``error``."""
        self.set(ProjectState.ERROR, message)

    def snapshot(self) -> TrackedState:
        with self._lock:
            errors = dict(self._file_errors)
            # A file's error names the file: "cannot read it" alone says not which one.
            newest = next(reversed(errors.items())) if errors else None
            last = self._global_error or (f"{newest[0]}: {newest[1]}" if newest else None)
            return TrackedState(self._state, self._reason, last, errors)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
