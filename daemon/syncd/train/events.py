"""What happened to runs, as a stream ``syncd train --wait`` can follow: state changes,
log lines, outputs. In memory, bounded, numbered; readers wait for news with a timeout.

The numbers restart with the process; the records in the state db are the truth, this
is only the play-by-play.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

KEEP = 20_000  # events kept (log lines are most of them)


@dataclass(frozen=True)
class RunEvent:
    seq: int  # position in the stream
    run: str  # run id
    kind: str  # "state" | "log" | "outputs" | "note"
    text: str  # the new state, the log line, or a sentence
    stream: str = ""  # for "log": stdout | stderr
    at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RunEvents:
    def __init__(self) -> None:
        self._events: deque[RunEvent] = deque(maxlen=KEEP)
        self._next = 1
        self._cond = threading.Condition()

    def add(self, run: str, kind: str, text: str, stream: str = "") -> None:
        with self._cond:
            self._events.append(RunEvent(self._next, run, kind, text, stream, time.time()))
            self._next += 1
            self._cond.notify_all()

    @property
    def cursor(self) -> int:
        """The number the next event will get."""
        with self._cond:
            return self._next

    def after(self, run: str, cursor: int, wait: float = 0.0) -> tuple[list[RunEvent], int]:
        """Events of ``run`` numbered ``cursor`` or later (waiting up to ``wait`` s for one),
        and the cursor to ask with next time."""
        deadline = time.monotonic() + wait
        with self._cond:
            while True:
                found = [e for e in self._events if e.seq >= cursor and e.run == run]
                left = deadline - time.monotonic()
                if found or left <= 0:
                    return found, self._next
                self._cond.wait(left)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()
