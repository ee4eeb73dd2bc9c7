"""How fast the fake Drive lets a client go: write throttling, latency, upload bandwidth.

- **Write throttling** (on by default): Drive sustains only a few file
  creations per second per user — "Drive has quite a lot of rate limiting.
  This causes rclone to be limited to transferring about 2 files per second
  only" (rclone docs/content/drive.md, Limitations) — and answers the excess
  with ``403 userRateLimitExceeded`` (body as in tidyverse/googledrive#380).
  A token bucket per user: ``rate`` creations a second on average, bursts
  of ``burst``.  Google publishes neither figure; 3/s and a burst of 10 are
  the fake's defaults, configurable per test.  The bucket reads ``clock``
  (``time.monotonic`` unless a test sets its own), so a test of the limit
  itself can freeze time: on a loaded machine the wall clock refills the
  bucket between requests and a check of "the 11th create is refused" flakes.
- **Latency**: every request waits ``latency`` seconds before it is handled
  (a real round trip to Google is ~150–300 ms; loopback is ~0).
- **Upload bandwidth**: upload bodies are read no faster than
  ``upload_bytes_per_s``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

DEFAULT_CREATE_RATE = 3.0
DEFAULT_CREATE_BURST = 10.0


class FrozenClock:
    """A monotonic clock that moves only when a test says so (``FakeDrive.set_clock``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class WriteThrottle:
    """Creations per second per user; ``rate=None`` turns it off."""

    rate: float | None = DEFAULT_CREATE_RATE
    burst: float = DEFAULT_CREATE_BURST
    refused: int = 0  # 403s answered so far
    clock: Callable[[], float] = time.monotonic  # seconds; tests may set a frozen one
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, user: str) -> bool:
        """True if ``user`` may create one more item now (and count it)."""
        if self.rate is None:
            return True
        with self._lock:
            now = self.clock()
            bucket = self._buckets.setdefault(user, _Bucket(self.burst, now))
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            if bucket.tokens < 1.0:
                self.refused += 1
                return False
            bucket.tokens -= 1.0
            return True

    def configure(self, rate: float | None, burst: float | None = None) -> None:
        with self._lock:
            self.rate = rate
            if burst is not None:
                self.burst = burst
            self._buckets.clear()


@dataclass
class Network:
    """Per-request latency and an upload bandwidth cap (None: unlimited)."""

    latency: float = 0.0
    upload_bytes_per_s: float | None = None

    def read_paced(self, reader: BinaryIO, length: int, limit: int | None) -> bytes:
        """Read an upload body of ``length`` bytes (at most ``limit``) at the capped rate."""
        want = length if limit is None else min(limit, length)
        rate = self.upload_bytes_per_s
        if rate is None or want == 0:
            return reader.read(want)
        started, got = time.monotonic(), bytearray()
        step = max(4096, int(rate / 20))  # ~50 ms of data per read
        while len(got) < want:
            chunk = reader.read(min(step, want - len(got)))
            if not chunk:
                break
            got += chunk
            ahead = len(got) / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        return bytes(got)
