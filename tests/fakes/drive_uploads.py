"""Uploads on the fake Drive: multipart bodies parsed strictly, and resumable sessions.

**Multipart** (``uploadType=multipart``): exactly two parts, the JSON
metadata then the media, framed by ``--boundary`` lines.  googleapiclient
writes them with ``email.generator`` and *bare LF* line breaks (checked
against google-api-python-client 2.202: ``…\\n\\nabc\\r\\n--===…==--\\n``);
other clients use CRLF.  The line break before a delimiter belongs to the
delimiter (RFC 2046 §5.1.1), so the framing's own break — LF or CRLF, as the
first delimiter line shows — is removed and nothing else: a file whose last
byte is CR keeps it.  ``eat_cr=True`` models a parser that always strips
CRLF before a boundary (what a lenient server may do with LF-framed bodies);
the client then sees the wrong ``md5Checksum`` in the answer.

**Resumable** (``uploadType=resumable``): a POST/PUT opens a session whose
``Location`` is a capability (no token needed, as on Google); chunks carry
``Content-Range: bytes a-b/total``; ``308 Resume Incomplete`` with ``Range``
until the last byte; a ``bytes */total`` probe answers how much arrived;
what arrived of a chunk whose connection broke is kept (Drive v2 "Perform a
resumable upload" guide).
"""

from __future__ import annotations

import contextlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from .drive_access import Access
from .drive_errors import DriveApiError, invalid, not_found
from .drive_wire import json_object


def parse_multipart(
    body: bytes, content_type: str, eat_cr: bool = False
) -> tuple[dict[str, Any], str | None, bytes]:
    """Split a multipart/related upload into (metadata, media type, media bytes)."""
    m = re.fullmatch(r'\s*multipart/related\s*;\s*boundary="?([^";]+)"?\s*', content_type)
    if m is None:
        raise invalid("Multipart upload needs a multipart/related body with a boundary.")
    delim = b"--" + m.group(1).encode("latin-1")
    if not body.startswith(delim):
        raise invalid("Multipart body must start with its boundary.")
    rest = body[len(delim) :]
    nl = b"\r\n" if rest.startswith(b"\r\n") else b"\n" if rest.startswith(b"\n") else None
    if nl is None:
        raise invalid("Malformed multipart boundary line.")
    parts: list[bytes] = []
    pos = len(delim) + len(nl)
    while True:
        end = body.find(nl + delim, pos)
        if end < 0:
            raise invalid("Multipart body has no closing boundary.")
        parts.append(body[pos:end])
        pos = end + len(nl) + len(delim)
        if body.startswith(b"--", pos):
            if body[pos + 2 :] not in (b"", nl):
                raise invalid("Data after the closing multipart boundary.")
            break
        if not body.startswith(nl, pos):
            raise invalid("Malformed multipart boundary line.")
        pos += len(nl)
    if len(parts) != 2:
        raise invalid(f"Multipart upload must have 2 parts, got {len(parts)}.")
    (meta_headers, meta), (media_headers, media) = (_part(p, nl) for p in parts)
    if not meta_headers.get("content-type", "").startswith("application/json"):
        raise invalid("The first multipart part must be application/json metadata.")
    if media_headers.get("content-transfer-encoding", "binary").lower() != "binary":
        raise invalid("Only binary media parts are supported.")
    if eat_cr and nl == b"\n" and media.endswith(b"\r"):
        media = media[:-1]  # the lenient parser took "\r\n--boundary" as the delimiter
    return json_object(meta), media_headers.get("content-type"), media


def _part(raw: bytes, nl: bytes) -> tuple[dict[str, str], bytes]:
    head, sep, data = raw.partition(nl + nl)
    if not sep:
        raise invalid("A multipart part has no header/body separator.")
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").split(nl.decode()):
        name, colon, value = line.partition(":")
        if not colon:
            raise invalid(f"Malformed multipart header: {line!r}")
        headers[name.strip().lower()] = value.strip()
    return headers, data


def parse_content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """`bytes a-b/T` → (a, b, T); `bytes */T` → (None, None, T); `*` totals → None."""
    if value is None:
        return None, None, None
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*", value)
    if m is None:
        raise invalid(f"Invalid Content-Range: {value}")
    start, end, total = (None if g in (None, "*") else int(g) for g in m.groups())
    return start, end, total


@dataclass
class UploadSession:
    id: str
    file_id: str | None  # None: the upload creates a file
    meta: dict[str, Any]
    mime_type: str | None
    declared_size: int | None
    query: dict[str, str]  # addParents/removeParents/fields given when the session started
    access: Access | None
    received: bytearray = field(default_factory=bytearray)
    result: dict[str, Any] | None = None
    result_title: str | None = None
    if_match: str | None = None  # the If-Match the session was opened with

    def accept(self, start: int, data: bytes) -> None:
        # Overlap with bytes already stored is allowed (a client may resend a
        # chunk it is unsure about); only the new tail is appended.
        if start <= len(self.received):
            self.received += data[len(self.received) - start :]

    def range_header(self) -> dict[str, str]:
        return {"Range": f"bytes=0-{len(self.received) - 1}"} if self.received else {}

    @classmethod
    def open(
        cls,
        file_id: str | None,
        meta: dict[str, Any],
        headers: Any,
        query: dict[str, str],
        access: Access | None,
    ) -> UploadSession:
        declared = headers.get("X-Upload-Content-Length")
        return cls(
            id=secrets.token_urlsafe(24),
            file_id=file_id,
            meta=meta,
            mime_type=headers.get("X-Upload-Content-Type"),
            declared_size=int(declared) if declared else None,
            query=query,
            access=access,
            if_match=headers.get("If-Match"),
        )


def chunk_step(session: UploadSession, content_range: str | None, body: bytes) -> bool:
    """Store one chunk; True when the session now holds every byte (commit it)."""
    if content_range is None:  # googleapiclient sends an empty upload without Content-Range
        start, end, total = 0, len(body) - 1, len(body)
    else:
        start, end, total = parse_content_range(content_range)
    if total is not None and session.declared_size not in (None, total):
        raise invalid("Content-Range total differs from X-Upload-Content-Length.")
    if start is not None and end is not None:
        if end - start + 1 != len(body):
            raise invalid("Content-Range does not match the request body length.")
        session.accept(start, body)
    if total is not None and len(session.received) > total:
        raise invalid("More bytes received than the declared total.")
    return total is not None and len(session.received) == total


def keep_partial(session: UploadSession | None, content_range: str, data: bytes) -> None:
    """Like Google, keep what arrived of a chunk whose connection broke."""
    with contextlib.suppress(DriveApiError):
        start = parse_content_range(content_range)[0]
        if session is not None and session.result is None and start is not None:
            session.accept(start, data)


def session_or_404(sessions: dict[str, UploadSession], upload_id: str) -> UploadSession:
    session = sessions.get(upload_id)
    if session is None:
        raise not_found(upload_id)
    return session
