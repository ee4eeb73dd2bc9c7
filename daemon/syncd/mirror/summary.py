"""What one mirrored batch did, counted by the applier's threads, said in one INFO line."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class BatchSummary:
    """What one batch did, for its one INFO line."""

    up: int = 0
    moved: int = 0
    trashed: int = 0
    conflicts: int = 0
    adopted: int = 0
    skipped: int = 0
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, what: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + n)

    def line(self) -> str | None:
        """``3 files up, 1 moved, 2 trashed in 0.4 s``; None when nothing was done."""
        parts = [
            f"{self.up} file{'s' if self.up != 1 else ''} up" if self.up else "",
            f"{self.moved} moved" if self.moved else "",
            f"{self.trashed} trashed" if self.trashed else "",
            f"{self.adopted} already there" if self.adopted else "",
            f"{self.conflicts} conflict cop{'ies' if self.conflicts != 1 else 'y'} kept"
            if self.conflicts
            else "",
            f"{self.skipped} skipped" if self.skipped else "",
        ]
        done = ", ".join(p for p in parts if p)
        return f"{done} in {time.monotonic() - self.started:.1f} s" if done else None
