"""What Drive's answers mean: a definite refusal, a reason to retry, or lost access.

``classify`` turns an exception from googleapiclient, oauth2client, httplib2
or the socket into syncd's vocabulary; the transport retries what is
transient and hands the rest to the remote, which decides per file or for
the whole target.
"""

from __future__ import annotations

import http.client
import json
import ssl

import httplib2
from googleapiclient.errors import HttpError
from oauth2client.client import AccessTokenCredentialsError, AccessTokenRefreshError

from ...errors import AuthRequired, TransientError
from ...retry import DRIVE_REQUESTS

RETRY_AFTER_CAP = 60.0
RATE_REASONS = {"userRateLimitExceeded", "rateLimitExceeded", "dailyLimitExceeded"}
REVOKED = ("Google Drive access was revoked or expired", "run `syncd auth drive`")
GRANT_REFUSED = ("invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope")


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


def retry_after(err: HttpError) -> float | None:
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
