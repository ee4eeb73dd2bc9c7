"""What Kaggle accepts and how syncd reacts when it does not: no client code here.

Owns the dataset metadata rules (checked before any upload, each problem named
by its config key), the names the kaggle client treats specially, the error
classes every Kaggle failure becomes, which failures are worth a retry, and the
timing settings.  ``kaggle`` (the only module importing the client) and
``snapshots`` use these.

Timings are read from the environment at each use, so tests can make them small:
``SYNCD_KAGGLE_TIMEOUT_S`` (deadline of each HTTP request, 60), ``SYNCD_KAGGLE_POLL_S``
(status poll interval, 5), ``SYNCD_KAGGLE_READY_TIMEOUT_S`` (how long processing may
take, 3600), ``SYNCD_KAGGLE_RETRIES`` (attempts per call, 5) and
``SYNCD_KAGGLE_BACKOFF_S`` (first backoff, doubled each retry, with jitter, 1) and
``SYNCD_KAGGLE_PENDING_GRACE_S`` (how long a dataset or version may answer 404 right
after it was created, before syncd believes it, 60: kaggle-cli #890).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import requests

from ...config import SnapshotConfig
from ...errors import AuthRequired, ConfigError, RemoteError, TransientError

# Top-level names the client never uploads (it reads them as metadata) and what it always
# drops besides .git: a snapshot leaves these out, so its manifest says what Kaggle holds.
RESERVED_TOP_LEVEL = (
    "dataset-metadata.json",
    "datapackage.json",
    *(f"dataset-cover-image{ext}" for ext in (".png", ".jpg", ".jpeg", ".webp")),
    "kernel-metadata.json",
    "model-metadata.json",
    "model-instance-metadata.json",
)
CLIENT_SKIPS = (".cache/", ".huggingface/")
TERMINAL = ("ready", "failed", "deleted")


def _setting(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def http_timeout() -> float:
    return _setting("SYNCD_KAGGLE_TIMEOUT_S", 60.0)


def poll_interval() -> float:
    return _setting("SYNCD_KAGGLE_POLL_S", 5.0)


def ready_timeout() -> float:
    return _setting("SYNCD_KAGGLE_READY_TIMEOUT_S", 3600.0)


def max_attempts() -> int:
    return max(1, int(_setting("SYNCD_KAGGLE_RETRIES", 5)))


def backoff() -> float:
    return _setting("SYNCD_KAGGLE_BACKOFF_S", 1.0)


def pending_grace() -> float:
    return _setting("SYNCD_KAGGLE_PENDING_GRACE_S", 60.0)


class KaggleError(RemoteError):
    title = "Kaggle error"


class KaggleUnavailable(TransientError):
    title = "Kaggle unreachable"


class KaggleAuthError(AuthRequired):
    title = "Kaggle credentials"


class KaggleMetadataError(ConfigError):
    title = "Kaggle dataset settings"


# --- metadata ---------------------------------------------------------------------------------

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_OWNER = re.compile(r"[A-Za-z0-9]+(?:[_-][A-Za-z0-9]+)*")
# The licence names Kaggle accepts for datasets (kaggle-cli docs/datasets_metadata.md).
LICENSES = (
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


@dataclass(frozen=True)
class DatasetMetadata:
    owner: str
    slug: str
    title: str
    license: str
    private: bool

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.slug}"

    def write(self, folder: Path) -> Path:
        """``dataset-metadata.json``, so the staged folder also works with the kaggle CLI."""
        meta = {"title": self.title, "id": self.ref, "licenses": [{"name": self.license}]}
        path = folder / "dataset-metadata.json"
        path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        return path


def dataset_metadata(project: str, cfg: SnapshotConfig) -> DatasetMetadata:
    """The dataset's metadata from the config, checked against Kaggle's rules before any upload."""

    def bad(key: str, problem: str, remedy: str) -> KaggleMetadataError:
        return KaggleMetadataError(f"{project}: snapshot.{key}: {problem}", remedy)

    owner, _, slug = cfg.dataset.partition("/")
    if not _OWNER.fullmatch(owner):
        raise bad("dataset", f"{owner!r} is not a Kaggle user name", "write it as owner/slug")
    if not 6 <= len(slug) <= 50:
        raise bad(
            "dataset",
            f"the slug {slug!r} has {len(slug)} characters; Kaggle needs 6 to 50",
            "choose a slug such as cifar-code",
        )
    if not _SLUG.fullmatch(slug):
        raise bad(
            "dataset",
            f"the slug {slug!r} may only hold lowercase letters, digits and single hyphens",
            "choose a slug such as cifar-code",
        )
    title = (cfg.title if cfg.title is not None else slug).strip()
    if not 6 <= len(title) <= 50:
        raise bad(
            "title",
            f"{title!r} has {len(title)} characters; Kaggle needs 6 to 50",
            "set snapshot.title to a title of 6 to 50 characters",
        )
    if cfg.license not in LICENSES:
        raise bad(
            "license",
            f"{cfg.license!r} is not a license name Kaggle accepts",
            "use e.g. other, CC0-1.0, CC-BY-4.0, apache-2.0 or GPL-3.0",
        )
    return DatasetMetadata(owner, slug, title, cfg.license, cfg.private)


# --- failures worth a retry ------------------------------------------------------------------


class KaggleHtmlPage(requests.HTTPError):
    """Kaggle's front end answered an HTML page where the API speaks JSON: throttling or
    an outage. Without this, kagglesdk fails in ``response.json()`` ("Expecting value:
    line 1 column 1 (char 0)") with no status code, and nothing would be retried."""


def reject_html(response: Any) -> None:
    """For API responses: raise ``KaggleHtmlPage`` for a body that is not JSON, before
    kagglesdk tries to parse it. Only small bodies are read: an error,
    or a 200 that claims to be JSON (downloads are octet-streams and are left alone)."""
    ctype = (response.headers.get("Content-Type") or "").lower()
    if "text/event-stream" in ctype:
        return
    html = "text/html" in ctype
    if not html and "json" in ctype:
        html = response.content.lstrip()[:1] not in (b"{", b"[", b"")
    if html:
        raise KaggleHtmlPage(
            f"HTTP {response.status_code}: an HTML page instead of JSON", response=response
        )


def http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None) if response is not None else None


def retriable(exc: BaseException) -> bool:
    code = http_status(exc)
    if isinstance(exc, KaggleHtmlPage) and code is not None and code < 400:
        return True  # a 200 HTML page: a front end in the way, not an answer
    if isinstance(exc, requests.HTTPError) and code is not None:
        return code == 429 or code >= 500
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


def retry_after(exc: BaseException) -> float | None:
    """The server's Retry-After, in seconds (bounded to 300): a number or an HTTP date."""
    response = getattr(exc, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(300.0, max(0.0, seconds))


def short(exc: BaseException, limit: int = 200) -> str:
    """One line about a failed call, for logs and errors: never cut mid-word.

    urllib3's connection errors run to several hundred characters of pool and
    object reprs; they become "cannot reach HOST: REASON" instead.
    """
    code = http_status(exc)
    if isinstance(exc, requests.Timeout | requests.ConnectionError) and code is None:
        text = _network_failure(exc)
    else:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return clip(f"HTTP {code} {text}" if code else text, limit)


_HOST = re.compile(r"host='([^']+)'")
_ERRNO_REASON = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def _network_failure(exc: BaseException) -> str:
    text = str(exc)
    host = _HOST.search(text)
    where = host.group(1) if host else "Kaggle"
    if isinstance(exc, requests.Timeout) or "timed out" in text:
        return f"no answer from {where} in time"
    reason = _ERRNO_REASON.search(text)
    if reason:
        return f"cannot reach {where}: {reason.group(1).strip()}"
    if "RemoteDisconnected" in text or "reset" in text.lower():
        return f"{where} closed the connection"
    return f"cannot reach {where}"


def clip(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, marked with "…"."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"


def describe_failure(
    exc: BaseException,
    what: str,
    endpoint: str | None,
    user: str,
    *,
    again: str = "syncd tries again at the next trigger",
    forbidden: str = "check that snapshot.dataset's owner is your Kaggle user name",
) -> Exception:
    """A failed Kaggle call (other than rejected credentials) as one sentence with a remedy:
    `again` says what happens next after a passing failure, `forbidden` what to do on 403."""
    if isinstance(exc, KaggleError | KaggleUnavailable | KaggleAuthError):
        return exc
    tries = getattr(exc, "syncd_attempts", 1)
    tried = f" ({tries} attempts)" if tries > 1 else ""
    code = http_status(exc)
    if isinstance(exc, requests.Timeout):
        return KaggleUnavailable(
            f"Kaggle did not answer while {what} within {http_timeout():g} s{tried}",
            f"{again}; check the connection",
        )
    if code is None and isinstance(exc, requests.ConnectionError):
        where = endpoint or "api.kaggle.com"
        return KaggleUnavailable(
            f"cannot reach Kaggle ({where}) while {what}{tried}", "check the connection"
        )
    message = str(exc).strip() or type(exc).__name__
    if isinstance(exc, KaggleHtmlPage):
        what_kaggle_does = "is throttling requests" if code == 429 else "is unavailable"
        return KaggleUnavailable(
            f"Kaggle {what_kaggle_does} (HTTP {code}) while {what}{tried}", again
        )
    if code is not None and (code == 429 or code >= 500):
        return KaggleUnavailable(
            f"Kaggle kept failing while {what}: HTTP {code} {message}{tried}", again
        )
    if code == 403:
        return KaggleError(
            f"Kaggle refused {what} for {user or 'this account'}: {message}", forbidden
        )
    suffix = f" (HTTP {code})" if code else ""
    return KaggleError(f"Kaggle failed while {what}: {message}{suffix}")
