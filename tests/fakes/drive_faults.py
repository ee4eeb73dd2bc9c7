"""Fault injection for the fake Drive: errors, dropped connections, lost and late answers.

The test-facing API (``inject``, ``inject_random``, ``drop_upload_after``,
``clear_faults``) is used by the chaos tests too: extend it, never rename.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from .drive_errors import STANDARD_REASONS, DriveApiError, user_rate_limited


@dataclass
class Fault:
    """One injected failure; fires `count` times on matching requests after skipping `after`."""

    status: int | None = None
    reason: str | None = None
    message: str | None = None
    count: int = 1
    method: str | None = None
    path_contains: str | None = None
    after: int = 0
    drop: bool = False
    delay: float = 0.0
    lose_response: bool = False
    delay_response: float = 0.0

    def describe(self) -> str:
        if self.lose_response:
            return "lost response"
        if self.delay_response:
            return f"response delayed {self.delay_response}s"
        return "drop" if self.drop else str(self.status or f"delay {self.delay}s")

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path_contains is None or self.path_contains in path
        )

    def error(self) -> DriveApiError:
        status = self.status or 500
        if status == 403 and self.reason in (None, "userRateLimitExceeded") and not self.message:
            return user_rate_limited()  # the body Drive really sends
        default_reason, default_message = STANDARD_REASONS.get(status, ("backendError", "Error"))
        return DriveApiError(status, self.reason or default_reason, self.message or default_message)


@dataclass
class RandomFaults:
    rate: float
    statuses: list[int]
    rng: random.Random
    method: str | None
    path_contains: str | None

    def pick(self, method: str, path: str) -> Fault | None:
        probe = Fault(method=self.method, path_contains=self.path_contains)
        if probe.matches(method, path) and self.rng.random() < self.rate:
            return Fault(status=self.rng.choice(self.statuses))
        return None


class FaultInjection:
    """The fault-injection half of FakeDrive (a mixin)."""

    _lock: threading.RLock

    def _init_faults(self) -> None:
        self._faults: list[Fault] = []
        self._random_faults: RandomFaults | None = None
        self._upload_drop: int | None = None
        self._upload_drops_left = 0
        self._corrupt_left = 0

    def inject(
        self,
        status: int | None = None,
        reason: str | None = None,
        *,
        count: int = 1,
        method: str | None = None,
        path_contains: str | None = None,
        after: int = 0,
        drop: bool = False,
        delay: float = 0.0,
        message: str | None = None,
        lose_response: bool = False,
        delay_response: float = 0.0,
    ) -> Fault:
        """Fail the next `count` matching requests (after skipping `after` of them).

        `status` answers a Google-shaped error; `drop` resets the connection
        before the request is handled; `lose_response` handles it (a create
        really happens) and then resets the connection, the case that makes
        blind retries create duplicates; `delay` stalls first (alone, it only
        slows the call); `delay_response` handles the request and then holds
        the answer that long (or until `stop()`), which leaves a test time to
        kill a client between the server's commit and the client's bookkeeping.
        """
        if status is None and not (drop or delay or lose_response or delay_response):
            raise ValueError("inject() needs status, drop, lose_response, delay or delay_response")
        fault = Fault(
            status=status,
            reason=reason,
            message=message,
            count=count,
            method=method,
            path_contains=path_contains,
            after=after,
            drop=drop,
            delay=delay,
            lose_response=lose_response,
            delay_response=delay_response,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def inject_random(
        self,
        rate: float,
        statuses: list[int] | tuple[int, ...] = (500, 503),
        seed: int | None = None,
        *,
        method: str | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Fail a `rate` share of matching requests until `clear_faults()`."""
        rng = random.Random(seed)
        with self._lock:
            self._random_faults = RandomFaults(rate, list(statuses), rng, method, path_contains)

    def drop_upload_after(self, bytes_: int, times: int = 1) -> None:
        """The next `times` resumable chunks keep their first `bytes_` bytes, then the
        connection resets (times > 1: a link too slow for a chunk to make it in one go)."""
        with self._lock:
            self._upload_drop, self._upload_drops_left = bytes_, times

    def corrupt_next_uploads(self, count: int = 1) -> None:
        """The next `count` committed uploads store other bytes than were sent (the last
        byte flipped) and answer their md5: what a client must catch by comparing hashes."""
        with self._lock:
            self._corrupt_left = count

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._random_faults = None
            self._upload_drop = None
            self._corrupt_left = 0

    def _maybe_corrupt(self, data: bytes) -> bytes:
        with self._lock:
            if self._corrupt_left <= 0:
                return data
            self._corrupt_left -= 1
        return data[:-1] + bytes([data[-1] ^ 1]) if data else b"\0"

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if not fault.matches(method, path):
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
            return self._random_faults.pick(method, path) if self._random_faults else None

    def _take_upload_drop(self) -> int | None:
        with self._lock:
            limit = self._upload_drop
            self._upload_drops_left -= 1
            if self._upload_drops_left <= 0:
                self._upload_drop = None
            return limit
