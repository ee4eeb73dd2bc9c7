"""What a snapshot tells its caller: ``SnapshotResult`` and its one-sentence messages."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .notes import human_bytes
from .store import SnapshotRecord


@dataclass
class SnapshotResult:
    version: int | None  # the Kaggle version number once ready
    status: str  # "ready" | "failed" | "pending" | "unchanged" | "error"
    message: str  # one sentence for the user
    url: str | None
    files: int
    bytes: int
    data: dict[str, Any] | None = None  # the data part (``DataPart.to_json``) + "uploaded"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def unchanged_result(last: SnapshotRecord) -> SnapshotResult:
    since = f"v{last.version}" if last.version is not None else "the last snapshot"
    data = last.data
    return SnapshotResult(
        version=last.version,
        status="unchanged",
        message=f"unchanged since {since}; nothing uploaded (use --force to upload anyway)",
        url=last.url,
        files=last.files,
        bytes=last.bytes,
        data={**data, "uploaded": False} if data is not None else None,
    )


def outcome_message(
    ref: str, status: str, version: int | None, url: str | None, files: int, size: int
) -> str:
    what = f"{files} files, {human_bytes(size)}"
    if status == "ready":
        return f"{ref} v{version} is ready ({what}): {url}"
    if status == "pending":
        return f"{ref}: uploaded a new version ({what}); Kaggle is processing it: {url}"
    return f"{ref}: Kaggle could not process the new version ({what}); see {url}"
