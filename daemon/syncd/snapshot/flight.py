"""Single flight: one snapshot at a time per project, and what callers that arrive meanwhile do.

A caller either *joins* the running snapshot (waits and shares its result or its
error: two triggers at once make one version) or *waits it out* and then leads
its own (a new git tag names a state of its own).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

log = logging.getLogger("syncd.snapshots")


@dataclass
class _Flight(Generic[T]):
    label: str
    done: threading.Event
    result: T | None = None
    error: BaseException | None = None


class SingleFlight(Generic[T]):
    """At most one ``work()`` at a time; see the module docstring for the two ways to wait."""

    def __init__(self, name: str) -> None:
        self.name = name  # the project, for the log
        self._lock = threading.Lock()
        self._flight: _Flight[T] | None = None

    @property
    def busy(self) -> bool:
        return self._flight is not None

    def run(self, label: str, work: Callable[[], T], *, join: bool) -> T:
        """Lead ``work()``, or share the running one's result (``join``) or wait it out."""
        while True:
            with self._lock:
                flight = self._flight
                if flight is None:
                    flight = self._flight = _Flight(label, threading.Event())
                    break
            if join:
                log.info("%s: %s joins the running snapshot (%s)", self.name, label, flight.label)
                flight.done.wait()
                if flight.error is not None:
                    raise flight.error
                assert flight.result is not None
                return flight.result
            flight.done.wait()
        try:
            flight.result = work()
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                self._flight = None
            flight.done.set()
