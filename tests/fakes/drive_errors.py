"""Google's JSON error shape for the fake Drive, and the errors real Drive answers.

Every body is ``{"error": {"errors": [{"domain", "reason", "message", ...}],
"code", "message"}}`` (Drive v2 "Resolve errors" guide,
https://developers.google.com/drive/api/guides/handle-errors).  The messages
below are the ones Google sends, where we know them; each says where from.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

# Default body of a status answered by an injected fault (`FakeDrive.inject(status=...)`).
STANDARD_REASONS = {
    400: ("badRequest", "Bad Request"),
    403: ("userRateLimitExceeded", "User Rate Limit Exceeded"),
    429: ("rateLimitExceeded", "Rate Limit Exceeded"),
    500: ("backendError", "Backend Error"),
    502: ("backendError", "Bad Gateway"),
    503: ("backendError", "The service is currently unavailable."),
}

# The body Drive sends when a user writes faster than it allows, as seen in the wild
# (tidyverse/googledrive#380): domain usageLimits, this exact message, an extendedHelp link.
USER_RATE_LIMIT_MESSAGE = (
    "User Rate Limit Exceeded. Rate of requests for user exceed configured project quota. "
    "You may consider re-evaluating expected per-user traffic to the API and adjust project "
    "quota limits accordingly. You may monitor aggregate quota usage and adjust limits in the "
    "API Console: https://console.developers.google.com/apis/api/drive.googleapis.com/quotas"
    "?project=000000000000"
)


class DriveApiError(Exception):
    """An error answered to the client in Google's JSON error shape."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        location: str | None = None,
        *,
        domain: str = "global",
        extended_help: str | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message, self.location = status, reason, message, location
        self.domain, self.extended_help = domain, extended_help

    def body(self) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "domain": self.domain,
            "reason": self.reason,
            "message": self.message,
        }
        if self.location:
            header = self.location in ("Authorization", "If-Match")
            detail["locationType"] = "header" if header else "parameter"
            detail["location"] = self.location
        if self.extended_help:
            detail["extendedHelp"] = self.extended_help
        return {"error": {"errors": [detail], "code": self.status, "message": self.message}}


def not_found(file_id: str) -> DriveApiError:
    # Drive says 404 both for ids that do not exist and for items the caller may not see
    # (drive.file scope, not shared): rclone commit 1e423d21e, botpress PR #13912.
    return DriveApiError(404, "notFound", f"File not found: {file_id}.", "fileId")


def invalid(message: str, location: str | None = None) -> DriveApiError:
    return DriveApiError(400, "invalid", message, location)


def check_if_match(etag: str, headers: Any) -> None:
    """A write with ``If-Match`` only goes through while the item's etag is that one.

    Drive v2 answers a stale etag with 412 ``conditionNotMet`` located at the If-Match
    header (Chromium's Drive v2 client: google_apis/test/data/drive/error.json, and its
    drive_api_requests tests, which send If-Match when uploading over an existing file
    and expect 412 PRECONDITION_FAILED for a changed one).  ``*`` matches anything.
    """
    wanted = headers.get("If-Match")
    if wanted is not None and wanted.strip() not in ("*", etag):
        raise DriveApiError(412, "conditionNotMet", "Precondition Failed", "If-Match")


def user_rate_limited() -> DriveApiError:
    return DriveApiError(
        403,
        "userRateLimitExceeded",
        USER_RATE_LIMIT_MESSAGE,
        domain="usageLimits",
        extended_help="https://console.developers.google.com/apis/api/drive.googleapis.com/quotas",
    )


def insufficient_scope() -> DriveApiError:
    # What Google answers a token whose scopes do not cover the call.
    return DriveApiError(
        403,
        "insufficientPermissions",
        "Insufficient Permission: Request had insufficient authentication scopes.",
    )


def storage_quota_exceeded() -> DriveApiError:
    # Service accounts have no storage of their own: every upload into their own My Drive
    # fails like this (Google's "Service accounts" guide; rclone docs, "Service Account").
    return DriveApiError(
        403,
        "storageQuotaExceeded",
        "The user's Drive storage quota has been exceeded.",
        domain="usageLimits",
    )


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_file_id() -> str:
    # Same alphabet and length as real Drive file ids (33 chars, starting with "1").
    return "1" + secrets.token_urlsafe(24)


def new_root_id() -> str:
    # My Drive roots and Shared Drives have short ids starting with "0A" (e.g. 0AB…Uk9PVA).
    return "0A" + secrets.token_urlsafe(12).replace("-", "x").replace("_", "y") + "Uk9PVA"
