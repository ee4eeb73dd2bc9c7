"""Accounts and credentials: legacy API keys (Basic) and new-style API tokens (Bearer).

Rules, from kaggle 2.2.5 / kagglesdk 0.1.38:

* A legacy key (`kaggle.json` or KAGGLE_USERNAME/KAGGLE_KEY) is sent as HTTP Basic
  `username:key` (kagglesdk/kaggle_http_client.py `_try_fill_auth`).
* An API token (KAGGLE_API_TOKEN or `~/.kaggle/access_token`; Kaggle calls them KGAT,
  kagglesdk/users/types/account_service.py) is sent as `Authorization: Bearer <token>`,
  and *wins* over a legacy key whenever one is found, valid or not (`_try_fill_auth`
  looks for a token first).
* `KaggleApi.authenticate()` checks a token with `security.OAuthService/IntrospectToken`
  {token} (kaggle_api_extended.py `_introspect_token`), sent with the same Bearer token.
  The client ignores the token (and falls back to a legacy key) when the answer is
  `{"active": false}` or an HTTP 400/403/404, and raises on anything else. What Kaggle
  answers for a revoked or unknown token is not documented: `inactive_token_reply`
  chooses (default 401, the branch that makes `authenticate()` itself fail).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .model import ApiError


class Accounts:
    _lock: threading.RLock
    _users: dict[str, str]  # username -> legacy key
    _user_ids: dict[str, int]
    _tokens: dict[str, str]  # active token -> username
    inactive_token_reply: int | str
    url: str

    def add_user(self, username: str, key: str) -> None:
        with self._lock:
            self._users[username] = key
            self._user_ids.setdefault(username, 10_000 + len(self._user_ids))

    def issue_token(self, username: str) -> str:
        """A new API token for `username`, as kaggle.com/settings hands it out."""
        token = "KGAT_" + secrets.token_hex(16)
        with self._lock:
            if username not in self._users:
                raise KeyError(username)
            self._tokens[token] = username
        return token

    def revoke_token(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def client_env(
        self,
        home: Path | None = None,
        user: str | None = None,
        via_proxy: bool = True,
        base: Mapping[str, str] | None = None,
        auth: str = "env_key",
    ) -> dict[str, str]:
        """A complete environment for a subprocess running the real client: `base` (default
        os.environ) without KAGGLE_* and proxy variables, HOME and TMPDIR under `home`, the
        proxy settings, and credentials in the form `auth` names:

        * "env_key": KAGGLE_USERNAME/KAGGLE_KEY (legacy API key)
        * "kaggle_json": `home/.kaggle/kaggle.json` (legacy, mode 0600)
        * "env_token": KAGGLE_API_TOKEN (a new-style token, issued now)
        * "token_file": `home/.kaggle/access_token` (a new-style token, mode 0600)
        * "none": no credentials at all

        Without a proxy (`via_proxy=False`) the program must point kagglesdk at `self.url`
        itself, as syncd's `kaggle.endpoint` setting does. With one, KAGGLE_API_ENVIRONMENT=
        LOCALHOST (read when `kaggle` is imported) sends calls to `http://localhost/api/v1/...`
        and HTTP_PROXY routes them here; NO_PROXY=127.0.0.1 lets upload and download URLs go
        direct (do not add `localhost` in that mode)."""
        proxies = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
        env = {
            name: value
            for name, value in (os.environ if base is None else base).items()
            if not name.startswith("KAGGLE_") and name.lower() not in proxies
        }
        if home is not None:
            (home / "tmp").mkdir(parents=True, exist_ok=True)
            env.update(HOME=str(home), KAGGLE_CONFIG_DIR=str(home / ".kaggle"))
            env["TMPDIR"] = str(home / "tmp")
        env.update(self.credentials_env(auth, home, user))
        direct = "127.0.0.1" if via_proxy else "127.0.0.1,localhost"
        env.update(NO_PROXY=direct, no_proxy=direct)
        if via_proxy:
            env.update(KAGGLE_API_ENVIRONMENT="LOCALHOST", HTTP_PROXY=self.url, http_proxy=self.url)
        return env

    def credentials_env(
        self, auth: str, home: Path | None = None, user: str | None = None
    ) -> dict[str, str]:
        """The environment variables for credentials of kind `auth` (see `client_env`),
        writing the credential file under `home` (mode 0600) for the file kinds."""
        with self._lock:
            user = user or next(iter(self._users))
            key = self._users[user]
        if auth == "none":
            return {}
        if auth == "env_key":
            return {"KAGGLE_USERNAME": user, "KAGGLE_KEY": key}
        if auth == "env_token":
            return {"KAGGLE_API_TOKEN": self.issue_token(user)}
        if home is None:
            raise ValueError(f"credentials of kind {auth!r} need a home folder")
        folder = home / ".kaggle"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if auth == "kaggle_json":
            path, text = folder / "kaggle.json", json.dumps({"username": user, "key": key})
        elif auth == "token_file":
            path, text = folder / "access_token", self.issue_token(user) + "\n"
        else:
            raise ValueError(f"unknown credentials kind {auth!r}")
        path.write_text(text)
        path.chmod(0o600)
        return {}

    def _authenticate(self, header: str | None, rpc: str = "", body: Any = None) -> str:
        if rpc == "IntrospectToken":
            return ""  # the handler judges the token it is asked about
        scheme, _, value = (header or "").partition(" ")
        with self._lock:
            if scheme == "Basic":
                try:
                    user, _, key = base64.b64decode(value).decode().partition(":")
                except ValueError:
                    user, key = "", ""
                if user in self._users and self._users[user] == key:
                    return user
            elif scheme == "Bearer" and value in self._tokens:
                return self._tokens[value]
        raise ApiError(401, "Unauthenticated: the credentials sent are not valid")

    def _rpc_IntrospectToken(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        token = str(req.get("token") or "")
        owner = self._tokens.get(token)
        if owner is not None:
            # kagglesdk/security/types/oauth_service.py IntrospectTokenResponse
            return {
                "active": True,
                "clientId": "kaggle-api-token",
                "username": owner,
                "userId": self._user_ids[owner],
                "scope": "resources.admin:*",
            }
        if self.inactive_token_reply == "inactive":
            return {"active": False}
        status = int(self.inactive_token_reply)
        raise ApiError(status, "Unauthenticated: the access token is not valid")
