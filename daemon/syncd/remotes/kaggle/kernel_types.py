"""The plain types syncd's Kaggle kernel calls take and return (``kernels``).

No client code here: what a push asks for (``KernelSpec``, checked before any upload),
what comes back (``Pushed``, ``KernelStatus``, ``KernelOutputs``, ``LogEntry``,
``LiveLog``, ``GpuQuota``), the push refusal (``KernelPushError``), and the log format.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .rules import KaggleError

# docs/kernels.md "Accelerators available as of Feb 2026" (some for competitions/admins only)
MACHINE_SHAPES = (
    "NvidiaTeslaT4",  # T4 x2, the default GPU
    "NvidiaTeslaP100",  # retired: runs on a T4 (kaggle 2.2.5 _RETIRED_ACCELERATORS)
    "NvidiaTeslaT4Highmem",
    "NvidiaTeslaA100",
    "NvidiaL4",
    "NvidiaL4X1",
    "NvidiaH100",
    "NvidiaRtxPro6000",
    "TpuV38",
    "Tpu1VmV38",
    "TpuV5E8",
    "TpuV6E8",
)
DONE = ("complete", "error", "cancel_acknowledged")
GPU_CAP = re.compile(r"Maximum batch GPU session count of (\d+) reached")
INVALID_LISTS = {
    "invalid_dataset_sources": "dataset sources",
    "invalid_kernel_sources": "kernel sources",
    "invalid_competition_sources": "competition sources",
    "invalid_model_sources": "model sources",
}


class KernelPushError(KaggleError):
    """Kaggle refused the push, or dropped sources the run needs. When a version was made
    anyway (``pushed``), it runs without them: the caller decides whether to delete it."""

    title = "Kaggle kernel push"

    def __init__(
        self,
        message: str,
        remedy: str | None = None,
        *,
        pushed: Pushed | None = None,
        invalid: dict[str, list[str]] | None = None,
        gpu_cap: int | None = None,
    ) -> None:
        super().__init__(message, remedy)
        self.pushed, self.invalid, self.gpu_cap = pushed, invalid or {}, gpu_cap


@dataclass(frozen=True)
class KernelSpec:
    ref: str  # owner/slug; the slug must be the slugified title (Kaggle derives it)
    title: str
    code: str  # the one script file Kaggle runs
    machine_shape: str | None  # an id from MACHINE_SHAPES; None: CPU only
    enable_internet: bool
    dataset_sources: tuple[str, ...] = ()
    kernel_sources: tuple[str, ...] = ()
    docker_image: str | None = None
    private: bool = True
    timeout_s: int | None = None  # session timeout Kaggle enforces (12 h when None)

    def problems(self) -> list[str]:
        """What Kaggle would refuse or silently change, found before any upload."""
        from slugify import slugify  # the client's own dependency, used the client's way

        found = []
        owner, _, slug = self.ref.partition("/")
        if not owner or not slug or "/" in slug:
            found.append(f"the kernel id {self.ref!r} is not owner/slug")
        if len(self.title) < 5:
            found.append(f"the title {self.title!r} is shorter than 5 characters")
        elif slugify(self.title) != slug:
            found.append(
                f"the slug {slug!r} is not the title's ({slugify(self.title)!r}); Kaggle "
                "would file the kernel under the title's"
            )
        if self.machine_shape is not None and self.machine_shape not in MACHINE_SHAPES:
            found.append(f"{self.machine_shape!r} is not a Kaggle accelerator id")
        return found

    def metadata(self, code_file: str) -> dict[str, Any]:
        shape = self.machine_shape or ""
        meta: dict[str, Any] = {
            "id": self.ref,
            "title": self.title,
            "code_file": code_file,
            "language": "python",
            "kernel_type": "script",
            "is_private": self.private,
            "enable_gpu": shape.startswith("Nvidia"),
            "enable_tpu": shape.startswith("Tpu"),
            "enable_internet": self.enable_internet,
            "machine_shape": shape,
            "dataset_sources": list(self.dataset_sources),
            "kernel_sources": list(self.kernel_sources),
            "competition_sources": [],
            "model_sources": [],
        }
        if self.docker_image:
            meta["docker_image"] = self.docker_image
        return meta


@dataclass(frozen=True)
class Pushed:
    ref: str
    version: int
    url: str


@dataclass(frozen=True)
class KernelStatus:
    ref: str
    version: int
    state: str  # queued, running, complete, error, cancel_requested, cancel_acknowledged, ...
    failure: str | None

    @property
    def done(self) -> bool:
        return self.state in DONE


@dataclass(frozen=True)
class OutputFile:
    name: str  # as the kernel wrote it: untrusted until OutputDownloader checks it
    url: str


@dataclass(frozen=True)
class LogEntry:
    stream: str  # stdout | stderr
    time: float  # seconds since the session started
    data: str


@dataclass(frozen=True)
class KernelOutputs:
    files: tuple[OutputFile, ...]
    log: tuple[LogEntry, ...]
    log_text: str  # the blob as Kaggle keeps it (what `kaggle kernels output` saves)


@dataclass(frozen=True)
class LiveLog:
    entries: tuple[LogEntry, ...]  # from the start of the session (the stream replays)
    ended: bool  # the session is over: no more entries will come


@dataclass(frozen=True)
class GpuQuota:
    used_s: float
    reserved_s: float  # held for sessions still running
    total_s: float
    refresh_at: datetime | None
    remaining_s: float = field(init=False)

    def __post_init__(self) -> None:
        left = max(0.0, self.total_s - self.used_s - self.reserved_s)
        object.__setattr__(self, "remaining_s", left)


def parse_log(text: str) -> tuple[LogEntry, ...]:
    """Kaggle's log blob (a JSON list of {stream_name, time, data}); other text by line."""
    try:
        items = json.loads(text) if text.strip() else []
    except ValueError:
        items = None
    if not isinstance(items, list):
        return tuple(LogEntry("stdout", 0.0, line + "\n") for line in text.splitlines())
    return tuple(
        LogEntry(
            str(e.get("stream_name", "stdout")), float(e.get("time") or 0), str(e.get("data", ""))
        )
        for e in items
        if isinstance(e, dict)
    )
