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
``SYNCD_KAGGLE_BACKOFF_S`` (first backoff, doubled each retry, with jitter, 1).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

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
SETTINGS_URL = "https://www.kaggle.com/settings"


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
_LICENSE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]*")


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
    if not _LICENSE.fullmatch(cfg.license):
        raise bad("license", f"{cfg.license!r} is not a license name", "use e.g. CC0-1.0 or other")
    return DatasetMetadata(owner, slug, title, cfg.license, cfg.private)


# --- failures worth a retry ------------------------------------------------------------------


def http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None) if response is not None else None


def retriable(exc: BaseException) -> bool:
    code = http_status(exc)
    if isinstance(exc, requests.HTTPError) and code is not None:
        return code == 429 or code >= 500
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


def retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return min(300.0, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None


def short(exc: BaseException) -> str:
    code = http_status(exc)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"HTTP {code} {text}"[:200] if code else text[:200]


def tilde(path: Path) -> str:
    home = os.path.expanduser("~")
    text = str(path)
    return "~" + text[len(home) :] if home != "/" and text.startswith(home + os.sep) else text


def describe_failure(exc: BaseException, what: str, endpoint: str | None, user: str) -> Exception:
    """A failed Kaggle call (other than rejected credentials) as one sentence with a remedy."""
    if isinstance(exc, KaggleError | KaggleUnavailable | KaggleAuthError):
        return exc
    tries = getattr(exc, "syncd_attempts", 1)
    tried = f" ({tries} attempts)" if tries > 1 else ""
    code = http_status(exc)
    if isinstance(exc, requests.Timeout):
        return KaggleUnavailable(
            f"Kaggle did not answer while {what} within {http_timeout():g} s{tried}",
            "syncd tries again at the next trigger; check the connection",
        )
    if code is None and isinstance(exc, requests.ConnectionError):
        where = endpoint or "api.kaggle.com"
        return KaggleUnavailable(
            f"cannot reach Kaggle ({where}) while {what}{tried}", "check the connection"
        )
    message = str(exc).strip() or type(exc).__name__
    if code is not None and (code == 429 or code >= 500):
        return KaggleUnavailable(
            f"Kaggle kept failing while {what}: HTTP {code} {message}{tried}",
            "syncd tries again at the next trigger",
        )
    if code == 403:
        return KaggleError(
            f"Kaggle refused {what} for {user or 'this account'}: {message}",
            "check that snapshot.dataset's owner is your Kaggle user name",
        )
    suffix = f" (HTTP {code})" if code else ""
    return KaggleError(f"Kaggle failed while {what}: {message}{suffix}")
