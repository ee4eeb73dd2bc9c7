"""The authenticated kaggle client every Kaggle call of syncd goes through.

Part of the Kaggle adapter (the only code importing ``kaggle`` / ``kagglesdk``, pinned
2.2.5 / 0.1.38). It owns what datasets and kernels share:

* importing the client without its import-time side effects (it authenticates, prints
  help text and may call the network when ``kaggle`` itself is imported), and pointing
  it at ``kaggle.endpoint``;
* authenticating with the credentials the client finds (``credentials`` says
  where), and one sentence naming both credential forms when they are missing or
  rejected;
* a deadline on every HTTP request, HTML error pages turned into errors with a status
  code (``rules.reject_html``), and retries with backoff on 429, 5xx and
  connection errors (the client retries few calls, never 5xx, and has no timeouts).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import io
import logging
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from types import SimpleNamespace
from typing import Any

import requests

from ...config import KaggleConfig
from ...retry import kaggle_requests
from .credentials import BOTH_FORMS, HOW_TO_STORE, locate_credentials
from .rules import (
    KaggleAuthError,
    KaggleError,
    backoff,
    describe_failure,
    http_status,
    http_timeout,
    max_attempts,
    reject_html,
    retriable,
    retry_after,
    short,
)

log = logging.getLogger("syncd.kaggle")


@functools.cache
def client_modules() -> Any:
    """The client's modules, imported without ``kaggle/__init__``'s authenticate-at-import."""
    if "kaggle" not in sys.modules:
        spec = importlib.util.find_spec("kaggle")
        if spec is None:
            raise KaggleError("the kaggle package is not installed", "pip install kaggle==2.2.5")
        package = importlib.util.module_from_spec(spec)  # its __init__ is never run
        # read by the client's version checks
        package.__version__ = importlib.metadata.version("kaggle")  # type: ignore[attr-defined]
        sys.modules["kaggle"] = package
    with contextlib.redirect_stdout(io.StringIO()):
        from kaggle.api import kaggle_api_extended as ext
        from kagglesdk.blobs.types.blob_api_service import ApiBlobType
        from kagglesdk.datasets.types import dataset_api_service as ds
        from kagglesdk.kernels.types import kernels_api_service as kernels
    return SimpleNamespace(ext=ext, ds=ds, kernels=kernels, blob_dataset=ApiBlobType.DATASET)


@contextlib.contextmanager
def no_prints() -> Iterator[None]:
    """The client prints warnings and help to stdout; syncd logs them instead."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield
    for line in buffer.getvalue().splitlines():
        if line.strip():
            log.warning("kaggle client: %s", line.strip())


class _ApiAdapter(requests.adapters.HTTPAdapter):
    """Every request of a client session: a default timeout (the client sets none), and
    HTML pages refused before kagglesdk parses them. (kagglesdk prepares requests itself,
    so session-level hooks never run: the adapter is the one place that sees them all.)"""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        response = super().send(request, stream, timeout or self.seconds, verify, cert, proxies)
        reject_html(response)
        return response


@functools.cache
def api_class() -> type:
    base: Any = client_modules().ext.KaggleApi  # imported at run time: see client_modules

    class SyncdKaggleApi(base):  # type: ignore[misc]
        """The client with syncd's endpoint, deadlines, HTML check, retries and quiet output."""

        endpoint: str | None = None
        retry: Callable[..., Any] | None = None
        already_printed_version_warning: bool = False

        def build_kaggle_client(self) -> Any:
            client = super().build_kaggle_client()
            http = client.http_client()
            if self.endpoint:
                http._endpoint = self.endpoint.rstrip("/")  # private in kagglesdk 0.1.38: pinned
            http._init_session()
            session = http._session
            adapter = _ApiAdapter(http_timeout())
            session.mount("http://", adapter)
            session.mount("https://", adapter)
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

    return SyncdKaggleApi


class KaggleSession:
    """An authenticated client for one config's ``kaggle:`` section."""

    again = "syncd tries again at the next trigger"  # after a passing failure
    forbidden = "check that snapshot.dataset's owner is your Kaggle user name"  # on a 403

    def __init__(self, config: KaggleConfig, *, cancel: threading.Event | None = None) -> None:
        self.config = config
        self.cancel = cancel or threading.Event()
        self.username = ""  # set first: error messages name the account
        self.credentials = locate_credentials()
        self._api = self._make_api()
        self._authenticate()

    def _make_api(self) -> Any:
        api = api_class()()
        folder = self.credentials.config_dir
        api.config_dir, api.config = str(folder), str(folder / "kaggle.json")
        api.endpoint, api.retry = self.config.endpoint, self._retrying
        return api

    def _authenticate(self) -> None:
        what = "checking the Kaggle credentials"

        def once() -> None:
            with no_prints():
                self._api.authenticate()

        try:
            self._retrying(what, once)
        except SystemExit:  # the client found nothing it can use
            token = self.credentials.token
            if token is not None:  # found, but Kaggle's introspection called it inactive
                raise KaggleAuthError(
                    f"Kaggle rejected the API token in {token.where}", HOW_TO_STORE
                ) from None
            raise KaggleAuthError(
                f"no usable Kaggle credentials ({self.credentials.describe()})"
                if self.credentials.sources
                else f"no Kaggle credentials found: syncd needs {BOTH_FORMS}",
                HOW_TO_STORE,
            ) from None
        except Exception as exc:  # noqa: BLE001 - the token check calls the network
            raise self._convert(exc, what) from None
        self.username = str(self._api.config_values.get("username") or "")

    @property
    def auth_method(self) -> str:
        """ACCESS_TOKEN, LEGACY_API_KEY or OAUTH: what the client authenticated with."""
        return str(self._api.config_values.get("auth_method") or "")

    @property
    def source(self) -> str:
        """Where the credentials in use come from, for messages (never the secret)."""
        kinds = {"ACCESS_TOKEN": "token", "LEGACY_API_KEY": "legacy", "OAUTH": "oauth"}
        kind = kinds.get(self.auth_method)
        found = next((s for s in self.credentials.sources if s.kind == kind and s.usable), None)
        return found.where if found else "the kaggle client's settings"

    # --- calls, retries, errors -------------------------------------------------------------

    def _sleep(self, seconds: float) -> None:
        if self.cancel.wait(seconds):
            raise KaggleError("cancelled: syncd is stopping")

    def _wait_before_retry(self, what: str, exc: BaseException, attempt: int) -> None:
        limit = max_attempts()
        wait = retry_after(exc)
        if wait is None:
            wait = kaggle_requests(limit, backoff()).delay(attempt - 1)
        log.info("%s: %s; retry %d of %d in %.1f s", what, short(exc), attempt, limit - 1, wait)
        self._sleep(wait)

    def _retrying(self, what: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``func`` with retries on 429, 5xx, HTML pages, timeouts and connection errors."""
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

    def call(self, what: str, rpc: Callable[[Any], Any], *, missing_ok: bool = False) -> Any:
        """``rpc(client)`` on a fresh KaggleClient, with retries; raises converted errors.
        With ``missing_ok``, an HTTP 404 returns None instead."""

        def once() -> Any:
            with self._api.build_kaggle_client() as client:
                return rpc(client)

        try:
            return self._retrying(what, once)
        except Exception as exc:  # noqa: BLE001 - converted into one sentence
            if missing_ok and http_status(exc) == 404:
                return None
            raise self._convert(exc, what) from None

    def _convert(self, exc: BaseException, what: str) -> Exception:
        """One client failure → one sentence with a remedy."""
        if http_status(exc) != 401:
            return describe_failure(
                exc,
                what,
                self.config.endpoint,
                self.username,
                again=self.again,
                forbidden=self.forbidden,
            )
        token = self.credentials.token
        legacy = next((s for s in self.credentials.sources if s.kind == "legacy"), None)
        if token is not None and self.auth_method != "ACCESS_TOKEN" and legacy is not None:
            # The client skipped the token at authenticate() but sends it with every call.
            return KaggleAuthError(
                f"Kaggle rejected the stale API token in {token.where}, which the kaggle "
                f"client sends instead of the legacy key in {legacy.where}",
                f"delete it, or store a new token with `syncd auth kaggle -` ({HOW_TO_STORE})",
            )
        if token is not None and self.auth_method in ("", "ACCESS_TOKEN"):
            return KaggleAuthError(f"Kaggle rejected the API token in {token.where}", HOW_TO_STORE)
        who = f" for {self.username}" if self.username else ""
        where = legacy.where if legacy else self.source
        return KaggleAuthError(f"Kaggle rejected the legacy key{who} in {where}", HOW_TO_STORE)

    def check(self) -> str:
        """One cheap authenticated call; the sentence ``syncd auth kaggle`` prints."""
        request = client_modules().kernels.ApiGetAcceleratorQuotaStatisticsRequest()
        self.call(
            "checking the Kaggle credentials",
            lambda c: c.kernels.kernels_api_client.get_accelerator_quota_statistics(request),
        )
        kind = "API token" if self.auth_method == "ACCESS_TOKEN" else "legacy key"
        return f"Kaggle credentials for {self.username} work ({kind} from {self.source})"
