"""syncd's one backoff formula and its two named retry levels.

Two levels, never nested blindly (rclone's ``--low-level-retries`` and
``--retries``):

* **request** retries live in a transport: one HTTP request to Drive or
  Kaggle is sent again after a 5xx, a 429, a reset or a timeout.  The engine
  never sees these failures unless the transport gave up.
* **operation** retries live in the mirror engine: one whole operation on a
  remote (upload a file, move it, trash it) is tried again when the transport
  gave up with a ``TransientError``.  Its worst case is therefore
  ``operation.attempts × request.attempts`` requests; both numbers are here.

Every wait uses the same formula: exponential backoff with full jitter
(``uniform(0, min(cap, base × 2^attempt))``, AWS's "full jitter"), so parallel
workers and many clients do not retry in lockstep.  A server's own
``Retry-After`` still wins where a transport knows it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

REQUEST = "request"
OPERATION = "operation"


def full_jitter(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after failed try number ``attempt`` (0 for the first failure)."""
    return random.uniform(0, min(cap, base * 2**attempt))


@dataclass(frozen=True)
class Backoff:
    """The wait before try ``attempt + 2``: ``floor`` plus full jitter under the ceiling."""

    base: float  # seconds; the ceiling of the first wait
    cap: float  # seconds; the ceiling never grows past it
    floor: float = 0.0  # seconds always waited on top

    def delay(self, attempt: int) -> float:
        """The wait after failed try number ``attempt`` (0-based)."""
        return self.floor + full_jitter(attempt, self.base, self.cap)


@dataclass(frozen=True)
class RetryPolicy:
    """How many tries one thing gets at one level, and how long to wait between them."""

    level: str  # REQUEST or OPERATION
    attempts: int  # tries in all, the first one included
    backoff: Backoff

    def delay(self, attempt: int) -> float:
        """The wait after failed try number ``attempt`` (0-based)."""
        return self.backoff.delay(attempt)

    def run(
        self,
        op: Callable[[], T],
        *,
        retry_if: Callable[[BaseException], bool],
        give_up: Callable[[], bool] = lambda: False,
        sleep: Callable[[float], object] = time.sleep,
    ) -> T:
        """``op()``, tried again while ``retry_if(error)`` holds and tries are left.

        The last error is raised as it is; ``give_up()`` (e.g. "the daemon is
        stopping") ends the retries early.
        """
        for attempt in range(self.attempts):
            try:
                return op()
            except Exception as exc:
                if not retry_if(exc) or attempt == self.attempts - 1 or give_up():
                    raise
            sleep(self.delay(attempt))
        raise AssertionError("unreachable: attempts must be at least 1")


def rate_limit_pause(in_a_row: int) -> float:
    """Not a retry but a pause of every Drive sender of one account after a rate-limit
    answer (``remotes.gdrive.pacing.Pacer``): at least 1, 2, 4, 8, 16 s while they keep
    coming (``in_a_row`` from 0), as rclone's drive pacer doubles its sleep, plus full jitter
    of up to as much again so the paused workers do not resume in lockstep."""
    ceiling = min(16.0, 2.0**in_a_row)
    return ceiling + full_jitter(in_a_row, 1.0, 16.0)


# Request level: one Drive request (``remotes.gdrive.transport``).
DRIVE_REQUESTS = RetryPolicy(REQUEST, attempts=5, backoff=Backoff(base=0.25, cap=8.0))
# The same request when Drive answers "rate limit": expected on Drive, so more tries (rclone:
# 10 low-level retries); the waits come from the shared pacer's pause (``rate_limit_pause``).
DRIVE_RATE_LIMITED = RetryPolicy(REQUEST, attempts=10, backoff=DRIVE_REQUESTS.backoff)


def kaggle_requests(attempts: int, base: float) -> RetryPolicy:
    """Request level for one Kaggle call (``remotes.kaggle.session``).

    Both numbers come from the environment (``SYNCD_KAGGLE_RETRIES``,
    ``SYNCD_KAGGLE_BACKOFF_S``), read at each use so tests can shrink them.
    """
    return RetryPolicy(REQUEST, attempts=max(1, attempts), backoff=Backoff(base=base, cap=60.0))


# Operation level: one upload, move or trash by the mirror engine (``mirror.apply``).
ENGINE_OPERATIONS = RetryPolicy(OPERATION, attempts=3, backoff=Backoff(base=0.5, cap=60.0))

# Not a retry of one thing but the engine loop's pause before it tries the whole project
# again (it retries for as long as it runs): after the remote gave up (offline, auth
# required) and after an unexpected error.  The floor keeps a flapping remote from being
# asked again at once.
ENGINE_RECOVERY_REMOTE = Backoff(base=1.0, cap=30.0, floor=0.5)
ENGINE_RECOVERY_UNEXPECTED = Backoff(base=2.0, cap=60.0, floor=1.0)
