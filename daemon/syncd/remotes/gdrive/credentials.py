"""Google Drive credentials: loading them in the daemon, and getting them with the user.

This module owns everything about OAuth for Drive, through pydrive2's
``GoogleAuth`` (oauth2client underneath):

- ``CredentialSource``: the daemon's read-only view of the saved credentials
  file (what pydrive2's ``SaveCredentialsFile`` writes) or of a service
  account key.  It never prompts and never opens a browser; a missing,
  revoked or expired grant is ``AuthRequired``.  It notices when the file
  changed on disk (``syncd auth drive`` ran) and reloads it, so the engine's
  next check succeeds without a restart.  The daemon never writes the file:
  refreshed access tokens stay in memory, so it can never overwrite the grant
  the user just made.
- The loopback flow (``loopback_flow``) and the service-account check
  (``service_account_flow``) that ``syncd auth drive`` runs, and saving the
  result atomically with mode 0600.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httplib2
from oauth2client.client import FlowExchangeError
from oauth2client.tools import ClientRedirectHandler, ClientRedirectServer
from pydrive2.auth import GoogleAuth, InvalidCredentialsError
from pydrive2.settings import InvalidConfigError

from ...config import DriveConfig
from ...errors import AuthRequired, SyncdError
from .api_errors import REVOKED, ApiError
from .pacing import PacedHttp, Pacer, shared_pacer
from .scopes import SA_NEEDS_FULL, SCOPES, granted_scopes, scope_names, scope_problem
from .transport import DriveApi

REJECTED_RECHECK_S = 300.0  # a rejected grant is asked about again this often (else: file change)


def _settings(cfg: DriveConfig) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "client_config_backend": "file",
        "client_config_file": str(cfg.client_secrets),
        "save_credentials": False,
        "get_refresh_token": True,  # without it the grant dies after an hour
        "oauth_scope": [SCOPES[cfg.scope]],
    }
    if cfg.service_account_key is not None:
        settings["client_config_backend"] = "service"
        settings["service_config"] = {
            "client_json_file_path": str(cfg.service_account_key),
            "client_user_email": None,
        }
    return settings


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class CredentialSource:
    """The saved grant (or service account key) as the daemon sees it; thread-safe."""

    def __init__(self, cfg: DriveConfig) -> None:
        # pydrive2 would open a browser and block when it has no refresh token;
        # this process must raise instead (syncd never calls those paths, this is a guard).
        os.environ.setdefault("GDRIVE_NON_INTERACTIVE", "1")
        self.cfg = cfg
        self.path = cfg.service_account_key or cfg.credentials
        self.service_account = cfg.service_account_key is not None
        self._lock = threading.Lock()
        self._gauth: GoogleAuth | None = None
        self._sig: tuple[int, int, int] | None = None
        self._generation = 0
        self._rejected: tuple[tuple[int, int, int] | None, float, AuthRequired] | None = None
        self._checked: Any = None  # the token answer whose scopes were last checked
        self.service: Any = None  # our Drive service, handed to pydrive2 (see load)

    def generation(self) -> int:
        return self._generation

    def _missing(self) -> AuthRequired:
        if self.service_account:
            return AuthRequired(
                f"the service account key {self.path} is missing or unreadable",
                "run `syncd auth drive --service-account KEY`",
            )
        return AuthRequired(f"no Google Drive credentials at {self.path}", REVOKED[1])

    def load(self) -> None:
        """Load the file if it is new or changed; raise AuthRequired if it cannot be used."""
        with self._lock:
            sig = _signature(self.path)
            if self._rejected is not None:
                rejected_sig, at, why = self._rejected
                if sig == rejected_sig and time.monotonic() - at < REJECTED_RECHECK_S:
                    raise why
            if sig is None:
                self._gauth = None
                raise self._missing()
            if self.service_account and self.cfg.scope != "full":
                raise AuthRequired(SA_NEEDS_FULL, "set it in the config; syncd picks it up")
            if sig == self._sig and self._gauth is not None:
                return
            gauth = GoogleAuth(settings=_settings(self.cfg), http_timeout=self.cfg.timeout)
            try:
                if self.service_account:
                    gauth.ServiceAuth()
                else:
                    gauth.LoadCredentialsFile(str(self.path))
            except (OSError, ValueError, KeyError, InvalidConfigError) as exc:
                raise self._missing() from exc
            if gauth.credentials is None:
                raise self._missing()
            # pydrive2 attaches the file as the credentials' store, and oauth2client then
            # rewrites it after every refresh: this process only reads the file.
            gauth.credentials.set_store(None)
            # pydrive2 builds its own service only when it has none: give it ours.
            gauth.service = self.service
            if not self.service_account and gauth.credentials.refresh_token is None:
                raise AuthRequired(
                    f"the Drive credentials in {self.path} have no refresh token",
                    REVOKED[1],
                )
            problem = scope_problem(self.cfg, granted_scopes(gauth.credentials))
            if problem is not None:
                raise problem
            self._checked = getattr(gauth.credentials, "token_response", None)
            self._gauth, self._sig, self._rejected = gauth, sig, None
            self._generation += 1

    def ensure(self) -> None:
        """Cheap: usable credentials are loaded (and were not rejected since).

        After a token refresh (a new token answer) its granted scopes are checked again:
        a grant narrowed or widened since it was saved stops here, not in a 404 later.
        """
        if self._gauth is None or self._rejected is not None:
            self.load()
        gauth = self._gauth
        assert gauth is not None  # load() either set it or raised
        response = getattr(gauth.credentials, "token_response", None)
        if response is not self._checked:
            self._checked = response
            problem = scope_problem(self.cfg, granted_scopes(gauth.credentials))
            if problem is not None:
                self.rejected(problem)
                raise problem

    def rejected(self, err: AuthRequired) -> None:
        """Google refused the grant: stop asking until the file changes (or a while passed)."""
        with self._lock:
            self._rejected = (self._sig, time.monotonic(), err)

    def authorize(self, conn: httplib2.Http) -> httplib2.Http:
        self.ensure()
        gauth = self._gauth
        assert gauth is not None
        return gauth.credentials.authorize(conn)


# --------------------------------------------------------------------------- the user's side


@dataclass(frozen=True)
class Grant:
    """What ``syncd auth drive`` obtained and checked."""

    email: str
    saved_to: Path
    scope: str


def _fail(message: str, remedy: str | None = None) -> SyncdError:
    return SyncdError(message, remedy)


def save_credentials(gauth: GoogleAuth, path: Path) -> None:
    """pydrive2's credentials JSON, mode 0600, replaced atomically.

    The daemon watches this file: a reader must never see half of it.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp.unlink(missing_ok=True)
        gauth.SaveCredentialsFile(str(tmp))  # oauth2client creates it with umask 0177
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except (OSError, InvalidCredentialsError) as exc:
        tmp.unlink(missing_ok=True)
        raise _fail(f"cannot write {path}: {exc}") from exc


class _Fixed:
    """Credentials that were just obtained: nothing to reload or to refuse."""

    def __init__(self, gauth: GoogleAuth) -> None:
        self.gauth = gauth

    def authorize(self, conn: httplib2.Http) -> httplib2.Http:
        return self.gauth.credentials.authorize(conn)

    def generation(self) -> int:
        return 0

    def ensure(self) -> None:
        pass

    def rejected(self, err: AuthRequired) -> None:
        pass


def _check_account(cfg: DriveConfig, gauth: GoogleAuth) -> str:
    """One authorized call (about.get) through the same transport the daemon uses."""
    api = DriveApi(cfg.endpoint, cfg.timeout, Pacer(cfg.requests_per_second), _Fixed(gauth))
    try:
        about = api.call(lambda: api.service.about().get(fields="user"), "checking the account")
    except ApiError as err:
        raise _fail(f"Google Drive refused the new credentials ({err})") from err
    finally:
        api.close()
    gauth.service = api.service
    user = about.get("user") or {}
    return str(user.get("emailAddress") or user.get("displayName") or "?")


def _redirect_server(ports: tuple[int, ...]) -> ClientRedirectServer:
    for port in ports:
        try:
            return ClientRedirectServer(("localhost", port), ClientRedirectHandler)
        except OSError:
            continue
    raise _fail(
        f"cannot listen on localhost port {' or '.join(map(str, ports))} for Google's redirect",
        "stop what uses the port, or run `syncd auth drive` on another machine and copy "
        "the credentials file",
    )


def loopback_flow(
    cfg: DriveConfig,
    *,
    show_url: Callable[[str, int], None],
    ports: tuple[int, ...] = (8080, 8090),
    timeout: float = 600.0,
) -> Grant:
    """The "Desktop app" loopback flow: consent in a browser, a refresh token saved 0600.

    ``show_url(url, port)`` presents the consent URL (prints it, opens a browser);
    the redirect to ``http://localhost:PORT/`` is awaited for ``timeout`` seconds.
    """
    if not cfg.client_secrets.is_file():
        raise _fail(
            f"no OAuth client at {cfg.client_secrets}",
            "create a 'Desktop app' OAuth client in Google Cloud Console (APIs & Services → "
            "Credentials), download its JSON to that path, and run this again",
        )
    gauth = GoogleAuth(settings=_settings(cfg), http_timeout=cfg.timeout)
    try:
        gauth.GetFlow()
    except InvalidConfigError as exc:
        raise _fail(f"{cfg.client_secrets} is not a usable OAuth client file ({exc})") from exc
    # pydrive2 asks with approval_prompt=force, the v1 endpoint's parameter, which does
    # not make Google hand out a new refresh token once the user consented before
    # (googleapis/oauth2client#453); prompt=consent does.  Google refuses the two together.
    gauth.flow.params.pop("approval_prompt", None)
    gauth.flow.params.update(access_type="offline", prompt="consent")
    server = _redirect_server(ports)
    try:
        port = server.server_address[1]
        redirect_uri = f"http://localhost:{port}/"
        gauth.flow.redirect_uri = redirect_uri
        show_url(gauth.GetAuthUrl(), port)
        server.timeout = 1.0
        server.query_params = {}
        deadline = time.monotonic() + timeout
        # A browser may ask for /favicon.ico first: wait for the request that has the answer.
        while not ({"code", "error"} & set(server.query_params)):
            if time.monotonic() > deadline:
                raise _fail(
                    f"no answer from the browser within {int(timeout)} s",
                    "run `syncd auth drive` again",
                )
            server.handle_request()
        params = dict(server.query_params)
    finally:
        server.server_close()
    if "error" in params:
        raise _fail(f"Google refused access ({params['error']})", "run `syncd auth drive` again")
    http = PacedHttp(shared_pacer(cfg.endpoint, "auth", cfg.requests_per_second), cfg.timeout)
    try:
        gauth.credentials = gauth.flow.step2_exchange(params["code"], http=http)
    except FlowExchangeError as exc:
        raise _fail(f"Google did not accept the sign-in ({exc})", "run it again") from exc
    except (OSError, httplib2.HttpLib2Error) as exc:
        raise _fail(f"cannot reach Google's token endpoint ({exc})", "check the network") from exc
    finally:
        http.close()
    if gauth.credentials.refresh_token is None:
        raise _fail(
            "Google gave no refresh token",
            "remove syncd's access at https://myaccount.google.com/permissions and run again",
        )
    problem = scope_problem(cfg, granted_scopes(gauth.credentials))
    if problem is not None:
        granted = granted_scopes(gauth.credentials) or set()
        raise _fail(
            f"Google granted {scope_names(granted)}, not what syncd asked for "
            f"({scope_names({SCOPES[cfg.scope]})})",
            "run `syncd auth drive` again and leave that access ticked on the consent page",
        )
    email = _check_account(cfg, gauth)
    save_credentials(gauth, cfg.credentials)
    return Grant(email, cfg.credentials, SCOPES[cfg.scope])


def whoami(cfg: DriveConfig) -> str:
    """The account the saved credentials (or service account key) act as; one request.

    Raises AuthRequired or TransientError like the daemon would (for ``syncd doctor``).
    """
    source = CredentialSource(cfg)
    source.load()
    gauth = source._gauth
    assert gauth is not None
    return _check_account(cfg, gauth)


def service_account_flow(cfg: DriveConfig, key: Path, install_to: Path) -> Grant:
    """Check a service account key against Drive, then copy it to ``install_to`` (0600)."""
    try:
        info = json.loads(key.read_text())
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot read the service account key {key}: {exc}") from exc
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise _fail(
            f"{key} is not a service account key",
            "download a JSON key of a service account from Google Cloud Console",
        )
    sa_cfg = DriveConfig(
        credentials=cfg.credentials,
        client_secrets=cfg.client_secrets,
        service_account_key=key,
        endpoint=cfg.endpoint,
        scope="full",  # SA_NEEDS_FULL: checked with the scope it will have to run with
        requests_per_second=cfg.requests_per_second,
        timeout=cfg.timeout,
    )
    gauth = GoogleAuth(settings=_settings(sa_cfg), http_timeout=cfg.timeout)
    try:
        gauth.ServiceAuth()
    except (OSError, ValueError, KeyError, InvalidConfigError) as exc:
        raise _fail(f"the service account key {key} is not usable ({exc})") from exc
    _check_account(sa_cfg, gauth)
    email = str(info.get("client_email", "?"))
    try:
        if key.resolve() != install_to.resolve():
            install_to.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=".drive-sa-", dir=install_to.parent)
            with os.fdopen(fd, "w") as out:  # mkstemp made it 0600
                out.write(json.dumps(info))
            os.replace(tmp, install_to)
        os.chmod(install_to, 0o600)
    except OSError as exc:
        raise _fail(f"cannot write {install_to}: {exc}") from exc
    return Grant(email, install_to, SCOPES["full"])
