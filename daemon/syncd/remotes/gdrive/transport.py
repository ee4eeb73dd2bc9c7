"""Google Drive v2 over HTTP: the paced, timed-out, retried transport under ``gdrive.py``.

This module owns the wire: the Drive service built from the bundled discovery
document pointed at ``drive.endpoint`` (so upload URLs follow it too), one
authorized httplib2 connection per thread (httplib2 is not thread-safe), the
token-bucket pacer in front of every request, retrying with exponential
backoff, turning every failure into syncd's error vocabulary, and the media
objects that send a file in one multipart request or in resumable chunks.

Resumable uploads are driven by calling ``next_chunk()`` without
``num_retries``: googleapiclient 2.202 re-sends an already drained stream when
it retries a chunk itself, and then hangs until the socket times out.  After a
failed chunk the next call probes the session (``Content-Range: bytes */N``)
and resumes where the server stopped.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import httplib2
from googleapiclient.discovery import build_from_document
from googleapiclient.discovery_cache import get_static_doc
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest, MediaUpload
from oauth2client.client import AccessTokenCredentialsError, AccessTokenRefreshError

from ...errors import AuthRequired, TransientError
from ...retry import DRIVE_RATE_LIMITED, DRIVE_REQUESTS, rate_limit_pause

log = logging.getLogger("syncd.gdrive")

# googleapiclient warns about every 403/429 it meets and oauth2client narrates each token
# refresh; this module retries and reports those itself (at debug level).
if not log.isEnabledFor(logging.DEBUG):
    for _name, _level in (
        ("googleapiclient.http", logging.ERROR),
        ("oauth2client", logging.WARNING),
    ):
        if logging.getLogger(_name).level == logging.NOTSET:
            logging.getLogger(_name).setLevel(_level)

MULTIPART_MAX = 5 * 1024 * 1024  # up to here one request; above, resumable chunks
CHUNK = 8 * 1024 * 1024  # a multiple of 256 KiB, as resumable uploads require
ATTEMPTS = DRIVE_REQUESTS.attempts  # tries per request before the engine hears about it
RETRY_AFTER_CAP = 60.0
RATE_REASONS = {"userRateLimitExceeded", "rateLimitExceeded", "dailyLimitExceeded"}
RATE_ATTEMPTS = DRIVE_RATE_LIMITED.attempts  # a rate limit is expected on Drive: more tries
PAUSE_DOUBLINGS = 5  # pauses after rate limits in a row: 1, 2, 4, 8, 16 s (rclone's)
REVOKED = ("Google Drive access was revoked or expired", "run `syncd auth drive`")
GRANT_REFUSED = ("invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope")

# --------------------------------------------------------------------------- pacing


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


class PacedHttp(httplib2.Http):
    """httplib2 with a timeout on every socket operation, the pacer, and 308 left alone.

    A plain ``httplib2.Http`` follows the 308 "Resume Incomplete" of resumable
    uploads as if it were a redirect (``googleapiclient.http.build_http`` does
    the same removal).
    """

    def __init__(self, pacer: Pacer, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.redirect_codes = self.redirect_codes - {308}
        self.pacer = pacer

    def request(self, *args: Any, **kwargs: Any) -> Any:
        self.pacer.take()
        return super().request(*args, **kwargs)


def drive_service(endpoint: str, http: httplib2.Http) -> Any:
    """The Drive v2 service with every URL (uploads included) under ``endpoint``."""
    root = endpoint if endpoint.endswith("/") else endpoint + "/"
    doc = json.loads(get_static_doc("drive", "v2"))
    doc["rootUrl"] = doc["mtlsRootUrl"] = root
    doc["baseUrl"] = root + doc["servicePath"]
    return build_from_document(doc, http=http)


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """A definite answer from Drive (not worth retrying) that the caller interprets."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message


def _error_detail(err: HttpError) -> tuple[str, str]:
    """(reason, message) from Google's JSON error body; a proxy's HTML page gives ("", "")."""
    try:
        body = json.loads(err.content.decode("utf-8", "replace"))["error"]
        errors = body.get("errors") or [{}]
        return str(errors[0].get("reason", "")), str(body.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        return "", ""


def _retry_after(err: HttpError) -> float | None:
    try:
        return min(RETRY_AFTER_CAP, float(err.resp.get("retry-after", "")))
    except (TypeError, ValueError):
        return None


def is_rate_limit(exc: BaseException) -> bool:
    """Drive's "slow down": 429, or 403 with a rate-limit reason."""
    if not isinstance(exc, HttpError):
        return False
    status = exc.resp.status
    return status == 429 or (status == 403 and _error_detail(exc)[0] in RATE_REASONS)


def classify(exc: BaseException) -> Exception | None:
    """What a failure means: ApiError (definite), TransientError (retry), AuthRequired.

    None for exceptions that are not about the network or Drive (bugs: let them fly).
    """
    if isinstance(exc, HttpError):
        status = exc.resp.status
        reason, message = _error_detail(exc)
        if status == 401:
            return AuthRequired(*REVOKED)
        if status >= 500 or status in (408, 429) or (status == 403 and reason in RATE_REASONS):
            return TransientError(f"Google Drive answered {status} {reason or ''}".rstrip())
        return ApiError(status, reason, message or http.client.responses.get(status, ""))
    if isinstance(exc, AccessTokenRefreshError):
        # oauth2client puts the OAuth error code first in the message ("invalid_grant: ...").
        status = getattr(exc, "status", None)
        if not any(code in str(exc) for code in GRANT_REFUSED) and (
            status is None or status >= 500 or status in (403, 408, 429)
        ):
            return TransientError(f"Google's token endpoint answered {status or str(exc)}")
        return AuthRequired(*REVOKED)
    if isinstance(exc, AccessTokenCredentialsError):
        return AuthRequired(*REVOKED)
    if isinstance(exc, OSError | http.client.HTTPException | httplib2.HttpLib2Error | ssl.SSLError):
        return TransientError(f"cannot reach Google Drive ({type(exc).__name__}: {exc})")
    if isinstance(exc, ValueError):  # a truncated or non-JSON body in a 2xx answer
        return TransientError(f"Google Drive sent an unreadable answer ({exc})")
    return None


def backoff(attempt: int) -> float:
    """The request-level wait (``syncd.retry``: one formula, full jitter)."""
    return DRIVE_REQUESTS.delay(attempt)


# --------------------------------------------------------------------------- media


class SourceChanged(Exception):
    """The local file changed while it was being sent; the upload was not committed."""


class BytesMedia(MediaUpload):
    """A file's content read into memory (≤ MULTIPART_MAX): sent in one multipart request."""

    def __init__(self, data: bytes, mimetype: str) -> None:
        self._data, self._mimetype = data, mimetype

    def chunksize(self) -> int:
        return len(self._data)

    def mimetype(self) -> str:
        return self._mimetype

    def size(self) -> int:
        return len(self._data)

    def resumable(self) -> bool:
        return False

    def getbytes(self, begin: int, length: int) -> bytes:
        return self._data[begin : begin + length]

    def has_stream(self) -> bool:
        return False


class FileChunks(MediaUpload):
    """An open file sent in resumable chunks, read with ``pread`` (no shared file offset).

    ``has_stream()`` is False so every (re)sent chunk is a fresh ``bytes`` read.
    Before the final chunk, the one that commits the upload, ``verify_final``
    runs: if the file changed since it was hashed it raises ``SourceChanged``
    and nothing is committed.
    """

    def __init__(self, fd: int, size: int, mimetype: str, verify_final: Callable[[], None]) -> None:
        self._fd, self._size, self._mimetype = fd, size, mimetype
        self._verify_final = verify_final

    def chunksize(self) -> int:
        return CHUNK

    def mimetype(self) -> str:
        return self._mimetype

    def size(self) -> int:
        return self._size

    def resumable(self) -> bool:
        return True

    def getbytes(self, begin: int, length: int) -> bytes:
        if begin + length >= self._size:
            self._verify_final()
        return os.pread(self._fd, min(length, self._size - begin), begin)

    def has_stream(self) -> bool:
        return False


# --------------------------------------------------------------------------- requests


class Credentials(Protocol):
    """What DriveApi needs from a credential source (``credentials.CredentialSource``)."""

    def authorize(self, conn: httplib2.Http) -> httplib2.Http: ...

    def generation(self) -> int: ...

    def ensure(self) -> None: ...

    def rejected(self, err: AuthRequired) -> None: ...


class DriveApi:
    """Runs Drive requests: pooled connections, pacing, retries, error conversion.

    Connections are httplib2 objects (not thread-safe), so each request checks
    one out of a pool and returns it: the engine's upload threads come and go
    with every batch, and keep-alive connections must not pile up with them.
    A connection is authorized for one credentials ``generation``; after a
    reload the old ones are closed as they come back.
    """

    def __init__(self, endpoint: str, timeout: float, pacer: Pacer, creds: Credentials) -> None:
        self.timeout = timeout
        self.pacer = pacer
        self.creds = creds
        self._idle: list[tuple[int, httplib2.Http]] = []
        self._lock = threading.Lock()
        self._closed = False
        self.service = drive_service(endpoint, PacedHttp(pacer, timeout))

    def files(self) -> Any:
        return self.service.files()

    @contextlib.contextmanager
    def connection(self) -> Iterator[httplib2.Http]:
        """An authorized connection for one request or one whole resumable upload."""
        self.creds.ensure()  # fails fast (no request) while a refused grant is unchanged
        gen = self.creds.generation()
        conn: httplib2.Http | None = None
        stale: list[httplib2.Http] = []
        with self._lock:
            while self._idle and conn is None:
                conn_gen, candidate = self._idle.pop()
                if conn_gen == gen:
                    conn = candidate
                else:
                    stale.append(candidate)
        for old in stale:
            old.close()
        if conn is None:
            conn = self.creds.authorize(PacedHttp(self.pacer, self.timeout))
        try:
            yield conn
        finally:
            with self._lock:
                keep = not self._closed and gen == self.creds.generation()
                if keep:
                    self._idle.append((gen, conn))
            if not keep:
                conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle, self._closed = self._idle, [], True
        for _, conn in idle:
            conn.close()

    def _fail(self, exc: BaseException, what: str) -> Exception:
        err = classify(exc)
        if err is None:
            raise exc
        if isinstance(err, AuthRequired):
            self.creds.rejected(err)
        elif isinstance(err, TransientError):
            err = TransientError(f"{what}: {err.message}", "syncd retries")
        return err

    def call(self, make: Callable[[], HttpRequest], what: str) -> Any:
        """Execute a request (built afresh for every attempt); retry what is transient.

        Rate limits get ``RATE_ATTEMPTS`` tries and slow the shared pacer down; other
        transient failures get ``ATTEMPTS``.
        """
        attempt = 0
        while True:
            try:
                with self.connection() as conn:
                    result = make().execute(http=conn)
                self.pacer.succeeded()
                return result
            except Exception as exc:  # noqa: BLE001 - classified below; unknown ones re-raised
                err = self._fail(exc, what)
                limited = is_rate_limit(exc)
                if limited:
                    self.pacer.throttled()
                attempt += 1
                budget = RATE_ATTEMPTS if limited else ATTEMPTS
                if not isinstance(err, TransientError) or attempt >= budget:
                    raise err from exc
                wait = _retry_after(exc) if isinstance(exc, HttpError) else None
                log.debug("%s: %s; retry %d", what, err.message, attempt)
                # After a rate limit the slowed, emptied pacer is the wait (shared by all
                # workers); a private backoff on top would only leave the link idle.
                time.sleep(wait or (0.0 if limited else backoff(attempt - 1)))

    def upload_resumable(self, make: Callable[[], HttpRequest], what: str) -> Any:
        """Drive a resumable upload to the end, resuming after every failed step.

        Only failures without progress count against ``ATTEMPTS``: a chunk that
        got through, or a probe showing that part of a broken chunk arrived (a
        slow link where a chunk outlasts the timeout), resets the count.  A
        session the server forgot (404/410) starts over.
        """
        request = make()
        failures = 0
        while True:
            before = request.resumable_progress
            try:
                with self.connection() as conn:
                    status, body = request.next_chunk(http=conn)
                self.pacer.succeeded()
                if body is not None:
                    return body
                failures = 0
                log.debug(
                    "%s: %d of %d bytes sent", what, status.resumable_progress, status.total_size
                )
            except SourceChanged:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below; unknown ones re-raised
                err = self._fail(exc, what)
                restart = isinstance(err, ApiError) and err.status in (404, 410)
                if restart and request.resumable_uri is not None:
                    request, err = make(), TransientError(f"{what}: the upload session expired")
                if not isinstance(err, TransientError):
                    raise err from exc
                limited = is_rate_limit(exc)
                if limited:
                    self.pacer.throttled()
                failures = 0 if request.resumable_progress > before else failures + 1
                if failures >= (RATE_ATTEMPTS if limited else ATTEMPTS):
                    raise err from exc
                log.debug("%s: %s; resuming (%d)", what, err.message, failures)
                time.sleep(0.0 if limited else backoff(failures))
