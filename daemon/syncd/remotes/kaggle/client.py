"""Kaggle datasets: the only module that imports ``kaggle`` / ``kagglesdk`` (pinned 2.2.5 / 0.1.38).

Owns everything about talking to Kaggle, so the rest of syncd sees only plain
dataclasses and ``SyncdError`` subclasses:

* importing the client without its import-time side effects (it authenticates,
  prints help text and may call the network when ``kaggle`` itself is imported),
  and pointing it at ``kaggle.endpoint``;
* credentials (the client's own files and variables) and what to say when they
  are missing or rejected;
* a deadline on every HTTP request, and retries with backoff on 429, 5xx and
  connection errors (the client retries few calls, never 5xx, and has no
  timeouts);
* uploading a staged folder (``dir_mode="zip"`` so subfolders survive) with the
  client's resumable-upload state in a private folder per upload, then
  create/version with an outcome check when a reply is lost (a blind retry can
  make a second version), and polling until Kaggle has processed it.

What Kaggle accepts, the error classes and the timing settings are in ``kaggle_rules``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import io
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import requests

from ...config import KaggleConfig
from ...retry import kaggle_requests
from .rules import (
    SETTINGS_URL,
    TERMINAL,
    DatasetMetadata,
    KaggleAuthError,
    KaggleError,
    KaggleUnavailable,
    backoff,
    describe_failure,
    http_status,
    http_timeout,
    max_attempts,
    poll_interval,
    ready_timeout,
    retriable,
    retry_after,
    short,
    tilde,
)

log = logging.getLogger("syncd.kaggle")

# --- importing the client -----------------------------------------------------------------------


@functools.cache
def _client() -> Any:
    """The client's modules, imported without ``kaggle/__init__``'s authenticate-at-import."""
    if "kaggle" not in sys.modules:
        spec = importlib.util.find_spec("kaggle")
        if spec is None:
            raise KaggleError("the kaggle package is not installed", "pip install kaggle==2.2.5")
        package = importlib.util.module_from_spec(spec)  # its __init__ is never run
        package.__version__ = importlib.metadata.version("kaggle")  # read by version checks
        sys.modules["kaggle"] = package
    with contextlib.redirect_stdout(io.StringIO()):
        from kaggle.api import kaggle_api_extended as ext
        from kagglesdk.blobs.types.blob_api_service import ApiBlobType
        from kagglesdk.datasets.types import dataset_api_service as ds
        from kagglesdk.kaggle_env import get_access_token_from_env
        from kagglesdk.kernels.types.kernels_api_service import (
            ApiGetAcceleratorQuotaStatisticsRequest,
        )
    return SimpleNamespace(
        ext=ext,
        ds=ds,
        blob_dataset=ApiBlobType.DATASET,
        token_from_env=get_access_token_from_env,
        QuotaRequest=ApiGetAcceleratorQuotaStatisticsRequest,
    )


@contextlib.contextmanager
def _no_prints() -> Iterator[None]:
    """The client prints warnings and help to stdout; syncd logs them instead."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield
    for line in buffer.getvalue().splitlines():
        if line.strip():
            log.warning("kaggle client: %s", line.strip())


def _config_location() -> tuple[Path, Path]:
    """The client's config folder and kaggle.json, as it finds them (read now, not at import)."""
    folder = os.environ.get("KAGGLE_CONFIG_DIR") or ""
    if not folder:
        folder = os.path.join(os.path.expanduser("~"), ".kaggle")
        if sys.platform.startswith("linux") and not os.path.exists(folder):
            xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
            folder = os.path.join(xdg, "kaggle")
    return Path(folder), Path(folder) / "kaggle.json"


class _Deadline(requests.adapters.HTTPAdapter):
    """A default timeout for every request of a client session (the client sets none)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def send(self, request: Any, **kwargs: Any) -> Any:
        kwargs["timeout"] = kwargs.get("timeout") or self.seconds
        return super().send(request, **kwargs)


class _CountingReader(io.BufferedReader):
    def __init__(self, raw: Any, progress: Callable[[int], None] | None) -> None:
        super().__init__(raw)
        self.progress = progress

    def read(self, *args: Any) -> bytes:
        data = super().read(*args)
        if self.progress and data:
            self.progress(len(data))
        return data


@functools.cache
def _api_class() -> type:
    ext = _client().ext

    class SyncdKaggleApi(ext.KaggleApi):
        """The client with syncd's endpoint, deadlines, retries, quiet output and progress."""

        endpoint: str | None = None
        retry: Callable[..., Any] | None = None
        upload_retry: Callable[[str, BaseException], None] | None = None
        progress: Callable[[int], None] | None = None

        def build_kaggle_client(self) -> Any:
            client = super().build_kaggle_client()
            http = client.http_client()
            if self.endpoint:
                http._endpoint = self.endpoint.rstrip("/")  # private in kagglesdk 0.1.38: pinned
            http._init_session()
            adapter = _Deadline(http_timeout())
            http._session.mount("http://", adapter)
            http._session.mount("https://", adapter)
            return client

        def with_retry(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            return functools.partial(self.retry, func.__name__, func) if self.retry else func

        def get_response_processor(self) -> Callable[[Any], None]:
            def check(response: Any) -> None:
                latest = response.headers.get("X-Kaggle-APIVersion")
                if latest and not self.already_printed_version_warning:
                    self.already_printed_version_warning = True
                    log.debug("Kaggle reports API version %s", latest)

            return check

        def upload_complete(self, path: str, url: str, quiet: bool, resume: bool = False) -> Any:
            """One blob upload, like the client's but with a deadline and syncd's progress."""
            result = _client().ext.ResumableUploadResult
            name = os.path.basename(path)
            try:
                outcome = self._put_blob(path, url, resume)
            except requests.RequestException as exc:
                if not retriable(exc):
                    log.warning("the upload of %s was refused: %s", name, short(exc))
                    return result.FAILED
                outcome, problem = result.INCOMPLETE, exc
            else:
                problem = KaggleUnavailable(f"the upload of {name} stopped short")
            if outcome == result.INCOMPLETE and self.upload_retry is not None:
                self.upload_retry(name, problem)  # waits, or raises when attempts are used up
            return outcome

        def _put_blob(self, path: str, url: str, resume: bool) -> int:
            """GCS-style resumable PUT: probe the offset when resuming, then send the rest."""
            result = _client().ext.ResumableUploadResult
            size = os.path.getsize(path)
            start = 0
            with requests.Session() as session:
                if resume:
                    probe = {"Content-Length": "0", "Content-Range": f"bytes */{size}"}
                    r = session.put(url, headers=probe, timeout=http_timeout())
                    if r.status_code in (200, 201):
                        return result.COMPLETE
                    if r.status_code == 404:
                        return result.EXPIRED  # the client starts a new upload session
                    if r.status_code != 308:
                        r.raise_for_status()
                        return result.FAILED
                    got = self._get_bytes_already_uploaded(r, True)
                    if got is None:
                        return result.EXPIRED
                    start = max(0, got + 1)
                headers = {"Content-Length": str(size - start)}
                if start:
                    headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
                with open(path, "rb", buffering=0) as raw:
                    raw.seek(start)
                    body = _CountingReader(raw, self.progress)
                    r = session.put(url, data=body, headers=headers, timeout=http_timeout())
            if r.status_code in (200, 201):
                return result.COMPLETE
            if r.status_code == 308:
                return result.INCOMPLETE
            r.raise_for_status()
            return result.FAILED

    return SyncdKaggleApi


class _SlugTaken(Exception):
    """CreateDataset said the slug is in use: someone else's, or our own late create."""


# --- the session ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    status: str  # "ready" | "failed" | "pending"
    version: int | None
    url: str | None
    created: bool  # the dataset was created by this upload


class KaggleDatasets:
    """An authenticated client for one config's ``kaggle:`` section."""

    def __init__(
        self,
        config: KaggleConfig,
        *,
        progress: Callable[[int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.cancel = cancel or threading.Event()
        self.config_dir, self.config_file = _config_location()
        api = _api_class()()
        api.config_dir, api.config = str(self.config_dir), str(self.config_file)
        api.endpoint, api.progress = config.endpoint, progress
        api.retry, api.upload_retry = self._retrying, self._upload_retry
        self._api = api
        self._upload_tries: dict[str, int] = {}
        try:
            with _no_prints():
                api.authenticate()
        except SystemExit:
            found = "has no username and key" if self.config_file.exists() else "does not exist"
            raise KaggleAuthError(
                f"no Kaggle credentials: {tilde(self.config_file)} {found} and "
                "KAGGLE_USERNAME/KAGGLE_KEY are not set",
                f"create an API token at {SETTINGS_URL}, save it as {tilde(self.config_file)} "
                "(chmod 600), then run `syncd auth kaggle`",
            ) from None
        except Exception as exc:  # noqa: BLE001 - the access-token check may call the network
            raise self._convert(exc, "checking the Kaggle credentials") from None
        self.username = str(api.config_values.get("username") or "")

    @property
    def progress(self) -> Callable[[int], None] | None:
        return self._api.progress

    @progress.setter
    def progress(self, callback: Callable[[int], None] | None) -> None:
        self._api.progress = callback  # uploaded bytes, for a progress bar

    @property
    def source(self) -> str:
        method = str(self._api.config_values.get("auth_method") or "")
        if method == "ACCESS_TOKEN":
            return (
                "KAGGLE_API_TOKEN"
                if os.environ.get("KAGGLE_API_TOKEN")
                else "~/.kaggle/access_token"
            )
        if method == "OAUTH":
            return "the kaggle client's OAuth login"
        if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
            return "KAGGLE_USERNAME/KAGGLE_KEY"
        return tilde(self.config_file)

    # --- calls, retries, errors -------------------------------------------------------------

    def _sleep(self, seconds: float) -> None:
        if self.cancel.wait(seconds):
            raise KaggleError("the snapshot was cancelled: syncd is stopping")

    def _wait_before_retry(self, what: str, exc: BaseException, attempt: int) -> None:
        limit = max_attempts()
        wait = retry_after(exc)
        if wait is None:
            wait = kaggle_requests(limit, backoff()).delay(attempt - 1)
        log.info("%s: %s; retry %d of %d in %.1f s", what, short(exc), attempt, limit - 1, wait)
        self._sleep(wait)

    def _retrying(self, what: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``func`` with retries on 429, 5xx, timeouts and connection errors."""
        limit = max_attempts()
        for attempt in range(1, limit + 1):
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                if not retriable(exc) or attempt >= limit:
                    exc.syncd_attempts = attempt  # type: ignore[attr-defined]
                    raise
                self._wait_before_retry(what, exc, attempt)
        raise AssertionError("unreachable")

    def _upload_retry(self, name: str, exc: BaseException) -> None:
        """A blob upload failed for a passing reason: wait before the client resumes it."""
        attempt = self._upload_tries[name] = self._upload_tries.get(name, 0) + 1
        if attempt >= max_attempts():
            exc.syncd_attempts = attempt  # type: ignore[attr-defined]
            raise exc
        self._wait_before_retry(f"uploading {name}", exc, attempt)

    def _call(self, what: str, rpc: Callable[[Any], Any]) -> Any:
        def once() -> Any:
            with self._api.build_kaggle_client() as client:
                return rpc(client.datasets.dataset_api_client)

        return self._retrying(what, once)

    def _convert(self, exc: BaseException, what: str) -> Exception:
        """One client failure → one sentence with a remedy."""
        if http_status(exc) != 401:
            return describe_failure(exc, what, self.config.endpoint, self.username)
        token, origin = _client().token_from_env()
        remedy = f"create a new API token at {SETTINGS_URL}, save it as {tilde(self.config_file)}"
        if token and self.source not in ("KAGGLE_API_TOKEN", "~/.kaggle/access_token"):
            remedy += f", delete the stale access token ({origin}) that is sent instead"
        return KaggleAuthError(
            f"Kaggle rejected the credentials for {self.username or '?'} from {self.source}",
            remedy + ", then run `syncd auth kaggle`",
        )

    # --- reading ------------------------------------------------------------------------------

    def check(self) -> str:
        """One cheap authenticated call; the sentence ``syncd auth kaggle`` prints."""

        def quota() -> Any:
            with self._api.build_kaggle_client() as client:
                return client.kernels.kernels_api_client.get_accelerator_quota_statistics(
                    _client().QuotaRequest()
                )

        try:
            self._retrying("checking the Kaggle credentials", quota)
        except Exception as exc:  # noqa: BLE001 - converted into one sentence
            raise self._convert(exc, "checking the Kaggle credentials") from None
        return f"Kaggle credentials for {self.username} work (from {self.source})"

    def status(self, ref: str) -> str | None:
        """The newest version's state (``ready``, ``failed``, processing...); None: no dataset."""
        request = _client().ds.ApiGetDatasetStatusRequest()
        request.owner_slug, request.dataset_slug = ref.split("/")
        try:
            response = self._call(f"checking {ref}", lambda c: c.get_dataset_status(request))
        except requests.HTTPError as exc:
            if http_status(exc) == 404:
                return None
            raise self._convert(exc, f"checking {ref}") from None
        except Exception as exc:  # noqa: BLE001
            raise self._convert(exc, f"checking {ref}") from None
        return str(response.status.name).lower()

    def current(self, ref: str) -> tuple[int | None, str | None]:
        """(newest ready version number, dataset URL)."""
        request = _client().ds.ApiGetDatasetRequest()
        request.owner_slug, request.dataset_slug = ref.split("/")
        try:
            found = self._call(f"reading {ref}", lambda c: c.get_dataset(request))
        except Exception as exc:  # noqa: BLE001
            raise self._convert(exc, f"reading {ref}") from None
        url = found.url or f"https://www.kaggle.com/datasets/{ref}"
        return (found.current_version_number or None), url

    def wait_processed(self, ref: str, timeout: float | None = None) -> str | None:
        """Poll until the newest version is ready, failed or deleted (or the dataset is gone)."""
        limit = ready_timeout() if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            state = self.status(ref)
            if state is None or state in TERMINAL:
                return state
            left = deadline - time.monotonic()
            if left <= 0:
                raise KaggleUnavailable(
                    f"{ref} is still processing on Kaggle ({state}) after {limit:g} s",
                    "`syncd snapshots` shows when it is ready; raise SYNCD_KAGGLE_READY_TIMEOUT_S "
                    "for big datasets",
                )
            self._sleep(min(left, poll_interval()))

    # --- writing ------------------------------------------------------------------------------

    def _upload(self, folder: Path) -> list[Any]:
        """Each top-level file and folder (zipped) of ``folder`` as a blob; the new-file entries."""
        ext = _client().ext
        holder = _client().ds.ApiCreateDatasetVersionRequestBody()
        holder.files = []
        # A private folder for the client's resume state: a retry within this upload reuses
        # finished blobs, and no stale state (with a dead upload URL) outlives it.
        self._upload_tries.clear()
        state = tempfile.mkdtemp(prefix="syncd-kaggle-uploads-")
        context = ext.ResumableUploadContext()
        context._temp_dir = state
        try:
            with context:
                self._api.upload_files(
                    holder, None, str(folder), _client().blob_dataset, context, True, "zip"
                )
        except Exception as exc:  # noqa: BLE001
            raise self._convert(exc, "uploading the snapshot") from None
        finally:
            shutil.rmtree(state, ignore_errors=True)
        return list(holder.files)

    def _processing(self, ref: str) -> bool:
        state = self.status(ref)
        return state is not None and state not in TERMINAL

    def _landed(self, ref: str, creating: bool, before: int | None) -> bool:
        """Whether a create whose reply was lost took effect (syncd is the dataset's one writer)."""
        state = self.status(ref)
        if creating or state is None:
            return state is not None
        if state not in TERMINAL:
            return True  # a version is processing, and the previous one had finished before
        now, _ = self.current(ref)
        return (now or 0) > (before or 0)

    def _create(
        self,
        meta: DatasetMetadata,
        notes: str,
        files: list[Any],
        creating: bool,
        before: int | None,
    ) -> None:
        ds = _client().ds
        if creating:
            request = ds.ApiCreateDatasetRequest()
            request.owner_slug, request.slug, request.title = meta.owner, meta.slug, meta.title
            request.license_name, request.is_private, request.files = (
                meta.license,
                meta.private,
                files,
            )
            request.description = (
                "Snapshots of a project folder made by syncd. Each version's notes say what "
                "changed; syncd-snapshot.json lists every file with its md5."
            )
            what, rpc = f"creating {meta.ref}", lambda c: c.create_dataset(request)
        else:
            body = ds.ApiCreateDatasetVersionRequestBody()
            body.version_notes, body.files = notes, files
            request = ds.ApiCreateDatasetVersionRequest()
            request.owner_slug, request.dataset_slug, request.body = meta.owner, meta.slug, body
            what, rpc = (
                f"creating a new version of {meta.ref}",
                lambda c: c.create_dataset_version(request),
            )
        limit = max_attempts()
        unsure = False  # an earlier attempt may have landed without our knowing
        for attempt in range(1, limit + 1):
            try:
                with self._api.build_kaggle_client() as client:
                    response = rpc(client.datasets.dataset_api_client)
            except Exception as exc:  # noqa: BLE001
                code = http_status(exc)
                if code == 403 and ("process" in str(exc).lower() or self._processing(meta.ref)):
                    if unsure and not creating:
                        return  # the version still processing is the one whose reply was lost
                    log.info("%s: the previous version is still processing; waiting", meta.ref)
                    self.wait_processed(meta.ref)
                    before = self.current(meta.ref)[0]
                    continue
                if not retriable(exc) or attempt == limit:
                    exc.syncd_attempts = attempt  # type: ignore[attr-defined]
                    raise self._convert(exc, what) from None
                # No reply, or a 5xx: the create may still have happened. Never make two.
                if self._landed(meta.ref, creating, before):
                    return
                unsure = True
                self._wait_before_retry(what, exc, attempt)
                continue
            if (response.status or "").lower() == "ok":
                return
            error = response.error or "no reason given"
            if creating and "already in use" in error:
                raise _SlugTaken(error)
            raise KaggleError(f"Kaggle refused {what}: {error}")
        raise KaggleUnavailable(f"Kaggle kept refusing {what} ({limit} attempts)")

    def publish(self, folder: Path, meta: DatasetMetadata, notes: str, *, wait: bool) -> Published:
        """Upload ``folder`` as the first or next version; with ``wait``, poll until processed."""
        state = self.status(meta.ref)
        creating = state is None
        if not creating and state not in TERMINAL:
            log.info("%s: waiting for the previous version to finish processing", meta.ref)
            self.wait_processed(meta.ref)
        before = None if creating else self.current(meta.ref)[0]
        files = self._upload(folder)
        try:
            self._create(meta, notes, files, creating, before)
        except _SlugTaken:
            if self.status(meta.ref) is None:
                raise KaggleError(
                    f"the dataset slug {meta.slug!r} is already taken on Kaggle",
                    "choose another snapshot.dataset",
                ) from None
            # Ours after all: an earlier create whose reply was lost landed late.
            self.wait_processed(meta.ref)
            creating, before = False, self.current(meta.ref)[0]
            self._create(meta, notes, files, creating, before)
        url = f"https://www.kaggle.com/datasets/{meta.ref}"
        if not wait:
            return Published("pending", None, url, creating)
        return self.finish(meta.ref, creating)

    def finish(self, ref: str, created: bool = False, timeout: float | None = None) -> Published:
        """Wait for the newest version to be processed; its number once ready."""
        final = self.wait_processed(ref, timeout)
        if final != "ready":
            return Published("failed", None, f"https://www.kaggle.com/datasets/{ref}", created)
        version, url = self.current(ref)
        return Published("ready", version, url, created)


def check_credentials(config: KaggleConfig) -> str:
    return KaggleDatasets(config).check()
