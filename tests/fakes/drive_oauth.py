"""Google's OAuth 2.0 endpoints as the fake serves them: consent, tokens, scopes.

The rules that matter to a client, each as Google behaves:

- A refresh token comes only with ``access_type=offline``, and only on the
  user's *first* consent to that client, or when the consent URL says
  ``prompt=consent`` (googleapis/google-api-php-client#1686: "Refresh tokens
  are only provided on the first user authorization, or when prompt is set
  to consent").  ``approval_prompt=force`` is the retired parameter of the
  v1 endpoint and does not force a new one (googleapis/oauth2client#453;
  authomatic PR #243: "Setting approval_prompt=force does not provide
  refresh_token repeatedly"); sending both ``prompt`` and
  ``approval_prompt`` is refused (authomatic PR #243: "creates a conflict
  error").
- The token answer says which scopes were *granted* (``scope``, space
  separated); with granular consent the user may grant fewer than asked
  (``consent_grants``).  Refreshed tokens carry the grant's scopes; every
  API call is checked against them (``drive_access``).
- Service accounts get tokens for a signed JWT (``jwt-bearer`` grant) whose
  ``scope`` claim says what they may do; signatures are not checked here.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from .drive_access import APP, SCOPE_FILE, SCOPE_FULL, USER, Access
from .drive_errors import DriveApiError, invalid
from .drive_wire import Call, Response

KNOWN_SCOPES = {
    SCOPE_FULL,
    SCOPE_FILE,
    "https://www.googleapis.com/auth/drive.readonly",
    "https://www.googleapis.com/auth/drive.metadata.readonly",
    "https://www.googleapis.com/auth/drive.appdata",
    "email",
    "profile",
    "openid",
}


@dataclass(frozen=True)
class Grant:
    """What a refresh token stands for."""

    user: str
    app: str
    scopes: frozenset[str]


@dataclass(frozen=True)
class _Code:
    redirect_uri: str
    app: str
    scopes: frozenset[str]
    refresh: bool  # this consent hands out a refresh token


class OAuthServer:
    """Access tokens, refresh grants, consents and the /auth and /token endpoints."""

    def __init__(self, refresh_token: str) -> None:
        self.access: dict[str, Access] = {}
        self.grants: dict[str, Grant] = {refresh_token: Grant(USER, APP, frozenset({SCOPE_FILE}))}
        self.service_accounts: set[str] = set()
        self.consented: set[tuple[str, str]] = set()  # (user, app) that consented before
        self.codes: dict[str, _Code] = {}
        self.granted_scopes: list[str] = []  # the scope string of every code exchange
        self.consent_grants: frozenset[str] | None = None  # the user unticks all but these

    # ---------------------------------------------------------------- tokens

    def issue(self, access: Access) -> str:
        token = "ya29.fake-" + secrets.token_urlsafe(16)
        self.access[token] = access
        return token

    def check(self, authorization: str) -> Access:
        access = self.access.get(authorization[7:]) if authorization.startswith("Bearer ") else None
        if access is None:
            raise DriveApiError(401, "authError", "Invalid Credentials", "Authorization")
        return access

    def revoke_all(self) -> None:
        self.access.clear()
        self.grants.clear()
        self.consented.clear()  # removing the app's access also forgets the consent

    # ---------------------------------------------------------------- /auth

    def authorize(self, call: Call) -> Response:
        """The consent page: a user who says yes is redirected back with a one-time code."""
        q = call.query
        redirect_uri = q.get("redirect_uri", "")
        if not redirect_uri.startswith(("http://localhost", "http://127.0.0.1")):
            raise invalid("redirect_uri must be a loopback address", "redirect_uri")
        if q.get("response_type") != "code" or not q.get("client_id"):
            raise invalid("Missing response_type=code or client_id")
        if "prompt" in q and "approval_prompt" in q:
            raise DriveApiError(
                400, "invalid_request", "Conflict params: approval_prompt and prompt", "prompt"
            )
        asked = frozenset(q.get("scope", "").split())
        if not asked or not asked <= KNOWN_SCOPES:
            raise DriveApiError(400, "invalid_scope", f"Some requested scopes are invalid: {asked}")
        granted = asked if self.consent_grants is None else asked & self.consent_grants
        app = q["client_id"]
        first = (USER, app) not in self.consented
        forced = "consent" in q.get("prompt", "").split()
        offline = q.get("access_type") == "offline"
        self.consented.add((USER, app))
        code = "4/fake-code-" + secrets.token_urlsafe(12)
        self.codes[code] = _Code(redirect_uri, app, granted, offline and (first or forced))
        answer = {"code": code, "scope": " ".join(sorted(granted))}
        if "state" in q:
            answer["state"] = q["state"]
        sep = "&" if "?" in redirect_uri else "?"
        return Response(302, b"", {"Location": f"{redirect_uri}{sep}{urlencode(answer)}"})

    # ---------------------------------------------------------------- /token

    def token(self, call: Call) -> Response:
        form = dict(parse_qsl(call.body.decode("utf-8", "replace")))
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange(form)
        if grant_type == "refresh_token":
            grant = self.grants.get(form.get("refresh_token", ""))
            if grant is None:
                return _invalid_grant("Token has been expired or revoked.")
            return self._answer(Access(grant.user, grant.app, grant.scopes))
        if grant_type == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            claims = jwt_claims(form.get("assertion", ""))
            issuer = str(claims.get("iss", ""))
            if issuer not in self.service_accounts:
                return _invalid_grant("Invalid JWT Signature.")
            scopes = frozenset(str(claims.get("scope", "")).split())
            user = str(claims.get("sub") or issuer)
            return self._answer(Access(user, issuer, scopes), scope=False)
        return Response.json(400, {"error": "unsupported_grant_type"})

    def _exchange(self, form: dict[str, str]) -> Response:
        code = self.codes.pop(form.get("code", ""), None)
        if code is None or code.redirect_uri != form.get("redirect_uri"):
            return _invalid_grant("Bad Request")
        if code.app != form.get("client_id"):
            body = {"error": "invalid_client", "error_description": "Unauthorized"}
            return Response.json(400, body)
        self.granted_scopes.append(" ".join(sorted(code.scopes)))
        refresh = None
        if code.refresh:
            refresh = "1//fake-refresh-" + secrets.token_urlsafe(12)
            self.grants[refresh] = Grant(USER, code.app, code.scopes)
        return self._answer(Access(USER, code.app, code.scopes), refresh=refresh)

    def _answer(self, access: Access, refresh: str | None = None, scope: bool = True) -> Response:
        body: dict[str, object] = {
            "access_token": self.issue(access),
            "expires_in": 3599,
            "token_type": "Bearer",
        }
        if scope:
            body["scope"] = " ".join(sorted(access.scopes))
        if refresh is not None:
            body["refresh_token"] = refresh
        return Response.json(200, body)


def _invalid_grant(description: str) -> Response:
    return Response.json(400, {"error": "invalid_grant", "error_description": description})


def jwt_claims(assertion: str) -> dict[str, object]:
    try:
        payload = assertion.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, TypeError):
        return {}
    return claims if isinstance(claims, dict) else {}
