"""Google Drive v2 over HTTP: the timed-out, retried requests under the ``gdrive:`` remote.

This module owns the wire: the Drive service built from the bundled discovery
document pointed at ``drive.endpoint`` (so upload URLs follow it too), a pool
of authorized httplib2 connections (httplib2 is not thread-safe), and
retrying with exponential backoff.  Pacing is ``pacing``, what an answer
means is ``api_errors``, what an upload sends is ``media``.

Resumable uploads are driven by calling ``next_chunk()`` without
``num_retries``: googleapiclient 2.202 re-sends an already drained stream when
it retries a chunk itself, and then hangs until the socket times out.  After a
failed chunk the next call probes the session (``Content-Range: bytes */N``)
and resumes where the server stopped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import httplib2
from googleapiclient.discovery import build_from_document
from googleapiclient.discovery_cache import get_static_doc
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest

from ...errors import AuthRequired, TransientError
from ...retry import DRIVE_RATE_LIMITED, DRIVE_REQUESTS
from .api_errors import ApiError, backoff, classify, is_rate_limit, retry_after
from .media import SourceChanged
from .pacing import PacedHttp, Pacer

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

ATTEMPTS = DRIVE_REQUESTS.attempts  # tries per request before the engine hears about it
RATE_ATTEMPTS = DRIVE_RATE_LIMITED.attempts  # a rate limit is expected on Drive: more tries


def drive_service(endpoint: str, http: httplib2.Http) -> Any:
    """The Drive v2 service with every URL (uploads included) under ``endpoint``."""
    root = endpoint if endpoint.endswith("/") else endpoint + "/"
    doc = json.loads(get_static_doc("drive", "v2"))
    doc["rootUrl"] = doc["mtlsRootUrl"] = root
    doc["baseUrl"] = root + doc["servicePath"]
    return build_from_document(doc, http=http)


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
            except Exception as exc:  # classified below; unknown ones re-raised
                err = self._fail(exc, what)
                limited = is_rate_limit(exc)
                if limited:
                    self.pacer.throttled()
                attempt += 1
                budget = RATE_ATTEMPTS if limited else ATTEMPTS
                if not isinstance(err, TransientError) or attempt >= budget:
                    raise err from exc
                wait = retry_after(exc) if isinstance(exc, HttpError) else None
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
            except Exception as exc:  # classified below; unknown ones re-raised
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
