"""Records the fake keeps, the errors its handlers raise, and the wire helpers they share."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROCESSING_STATES = ("blobs_received", "blobs_decompressed", "blobs_copied_to_sds")
# The dataset licence names Kaggle accepts (kaggle-cli docs/datasets_metadata.md, "Licenses").
LICENSES = frozenset(
    (
        "CC0-1.0",
        "CC-BY-SA-3.0",
        "CC-BY-SA-4.0",
        "CC-BY-NC-SA-4.0",
        "GPL-2.0",
        "ODbL-1.0",
        "DbCL-1.0",
        "copyright-authors",
        "other",
        "unknown",
        "CC-BY-4.0",
        "CC-BY-NC-4.0",
        "PDDL",
        "CC-BY-3.0",
        "CC-BY-3.0-IGO",
        "US-Government-Works",
        "CC-BY-NC-SA-3.0-IGO",
        "CDLA-Permissive-1.0",
        "CDLA-Sharing-1.0",
        "CC-BY-ND-4.0",
        "CC-BY-NC-ND-4.0",
        "ODC-BY-1.0",
        "LGPL-3.0",
        "AGPL-3.0",
        "FDL-1.3",
        "EU-ODP-Legal-Notice",
        "apache-2.0",
        "GPL-3.0",
    )
)


@dataclass
class DatasetVersion:
    number: int
    notes: str
    files: dict[str, bytes]  # unpacked path -> content
    status: str = PROCESSING_STATES[0]
    outcome: str = "ready"  # the status processing ends in
    delete_old_versions: bool = False  # done when this version becomes ready
    polls: int = 0
    created: float = field(default_factory=time.time)

    @property
    def md5s(self) -> dict[str, str]:
        return {path: hashlib.md5(data).hexdigest() for path, data in self.files.items()}


@dataclass
class Dataset:
    owner: str
    slug: str
    id: int
    title: str
    license_name: str = "CC0-1.0"
    is_private: bool = True
    subtitle: str | None = None
    versions: list[DatasetVersion] = field(default_factory=list)
    # GetDatasetStatus / GetDataset calls still to answer 404 after the last create/version
    unseen: dict[str, int] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.slug}"

    @property
    def current(self) -> DatasetVersion | None:
        """The newest ready version: what readers see while a newer one processes."""
        return next((v for v in reversed(self.versions) if v.status == "ready"), None)


@dataclass
class RequestRecord:
    method: str
    path: str
    rpc: str  # RPC method name, "upload", "download", "logs-stream" or "unknown"
    body: Any  # the parsed JSON of RPCs
    bytes_in: int
    status: int | None = None  # None: dropped, hung until stop, or still in flight
    user: str | None = None  # set when the credentials were accepted
    auth_scheme: str | None = None  # "Basic", "Bearer" (an access token) or None
    headers: dict[str, str] = field(default_factory=dict)  # Range, If-Range (downloads)


@dataclass
class Fault:
    remaining: int
    rpc: str | None
    status: int | None
    retry_after: float | str | None
    delay: float | None
    hang: bool
    drop: bool | str
    partial: int | None
    message: str | None
    html: bool
    content_type: str | None


class ApiError(Exception):
    """An error reply: `{"code": N, "message": ...}` with HTTP status N (kagglesdk raises it
    as `requests.HTTPError(message)`), or an HTML page when `html` is set."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        html: bool = False,
        content_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}
        self.html, self.content_type = html, content_type


class Dropped(Exception):
    """Close the connection without a response."""


@dataclass
class FileBody:
    """A reply body streamed from disk (kernel outputs can be hundreds of MB)."""

    path: Path
    start: int = 0
    length: int = 0


Reply = tuple[int, "bytes | FileBody", dict[str, str]]  # status, body, headers


def json_reply(payload: Mapping[str, Any], status: int = 200) -> Reply:
    return status, json.dumps(payload).encode(), {"Content-Type": "application/json"}


def iso(ts: float) -> str:
    """A timestamp as kagglesdk's DateTimeSerializer writes and reads it."""
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None).isoformat("T", "milliseconds") + "Z"


def duration(seconds: float) -> str:
    """A google.protobuf.Duration in JSON ("151.500s"), as kagglesdk's TimeDeltaSerializer
    reads it."""
    whole = int(seconds)
    millis = int(round((seconds - whole) * 1000))
    return f"{whole}.{millis:03d}s" if millis else f"{whole}s"


def html_page(status: int) -> bytes:
    """What Google's front end serves instead of JSON when it throttles or is down."""
    title = {429: "429 Too Many Requests", 503: "503 Service Unavailable"}.get(
        status, f"{status} Error"
    )
    return (
        "<!DOCTYPE html>\n<html lang=en><meta charset=utf-8><title>"
        f"Error {title}</title><p><b>{status}.</b> <ins>That's an error.</ins>"
        "<p>We're sorry, but you have sent too many requests to us recently. "
        "Please try again later. <ins>That's all we know.</ins></html>\n"
    ).encode()


def page(items: list[Any], req: Mapping[str, Any], max_size: int = 200) -> tuple[list[Any], dict]:
    """One page of `items`. Tokens are opaque (as on Kaggle): a client must echo them back,
    not compute them. A malformed token is a 400."""
    token = str(req.get("pageToken") or "")
    try:
        start = (
            int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("o:"))
            if token
            else 0
        )
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, f"Invalid page token: {token}") from None
    size = min(int(req.get("pageSize") or 20), max_size)
    if size <= 0:
        raise ApiError(400, "pageSize must be positive")
    end = start + size
    more = {}
    if end < len(items):
        more = {"nextPageToken": base64.urlsafe_b64encode(f"o:{end}".encode()).decode()}
    return items[start:end], more
