"""Pacing Drive requests: a token bucket per account, and a shared pause after "too fast".

Every request to Drive (``transport.DriveApi``, pydrive2's own service) goes
through ``PacedHttp``, an httplib2 connection that first takes a token from the
account's ``Pacer``.  The rate is configuration (``drive.requests_per_second``):
Drive's quotas are unpublished and have changed several times.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httplib2

from ...retry import rate_limit_pause

PAUSE_DOUBLINGS = 5  # pauses after rate limits in a row: 1, 2, 4, 8, 16 s (rclone's)


class Pacer:
    """A token bucket: ``rate`` requests a second on average, bursts of up to ``burst``;
    and a shared pause after Drive says "too fast".

    Drive's own limit is per user, unpublished and lower for creations than for
    reads (rclone: "about 2 files per second").  Like rclone's Drive pacer
    (lib/pacer ``GoogleDrive.Calculate``), a rate-limit answer (``throttled``)
    pauses *every* sender of the account for 1 s, then 2, 4, 8, 16 s while they
    keep coming (plus up to as much again at random, so workers do not return in
    step); one request that gets through (``succeeded``) ends the series.  One
    pacer per account is shared by all its projects and workers, so one 403
    slows every sender, not only the one that met it.
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self._tokens = self.burst
        self._at = time.monotonic()
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._in_a_row = 0  # rate-limit answers since the last success
        self.slowdowns = 0  # rate-limit answers seen (benches read it)

    def take(self) -> None:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            self._tokens -= 1.0  # may go negative: the deficit is this caller's wait
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        time.sleep(wait)
        while True:  # a pause that began while this caller waited applies to it too
            with self._lock:
                pause = self._paused_until - time.monotonic()
            if pause <= 0:
                return
            time.sleep(pause)

    def throttled(self) -> None:
        """Drive said "too fast": pause every sender (longer each time in a row)."""
        with self._lock:
            now = time.monotonic()
            self.slowdowns += 1
            if now < self._paused_until:
                return  # another request of the same burst: that pause covers it
            self._in_a_row = min(self._in_a_row + 1, PAUSE_DOUBLINGS)
            self._paused_until = now + rate_limit_pause(self._in_a_row - 1)
            self._tokens = min(self._tokens, 0.0)

    def succeeded(self) -> None:
        if self._in_a_row:
            with self._lock:
                self._in_a_row = 0


_pacers: dict[tuple[str, str, float], Pacer] = {}
_pacers_lock = threading.Lock()


def shared_pacer(endpoint: str, account: str, rate: float) -> Pacer:
    """Drive's quotas are per user: projects of one account share one bucket."""
    with _pacers_lock:
        return _pacers.setdefault((endpoint, account, rate), Pacer(rate))


class PacedHttp(httplib2.Http):  # type: ignore[misc]  # httplib2 is untyped
    """httplib2 with a timeout on every socket operation, the pacer, and 308 left alone.

    A plain ``httplib2.Http`` follows the 308 "Resume Incomplete" of resumable
    uploads as if it were a redirect (``googleapiclient.http.build_http`` does
    the same removal).
    """

    def __init__(self, pacer: Pacer, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.redirect_codes = httplib2.REDIRECT_CODES - {308}
        self.pacer = pacer

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.pacer.take()
        return super().request(*args, **kwargs)
