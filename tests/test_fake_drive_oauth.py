"""The fake's OAuth endpoints behave like Google's: refresh tokens, prompts, granted scopes.

The consent page is driven like a browser would (GET /auth, follow nothing,
read the redirect), the code exchanged like oauth2client does (POST /token);
pydrive2's own consent URL is checked against the same rules.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from pydrive2.auth import GoogleAuth

from tests.fakes.drive_server import APP, SCOPE_FILE, SCOPE_FULL, FakeDrive
from tests.test_fake_drive import with_token

REDIRECT = "http://localhost:8080/"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDrive]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with FakeDrive() as drive:
        yield drive
    assert drive.internal_errors == []


def _request(fake: FakeDrive, method: str, path: str, body: str = "") -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    conn.request(method, path, body or None, headers)
    resp = conn.getresponse()
    return resp.status, dict(resp.getheaders()), resp.read()


def consent(fake: FakeDrive, scope: str = SCOPE_FILE, **params: str) -> tuple[int, dict[str, Any]]:
    """The user says yes on the consent page; the code is exchanged. (status, token answer)."""
    query = {"client_id": APP, "redirect_uri": REDIRECT, "response_type": "code", "scope": scope}
    status, headers, body = _request(fake, "GET", "/auth?" + urlencode({**query, **params}))
    if status != 302:
        return status, json.loads(body)
    code = parse_qs(urlsplit(headers["Location"]).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": APP,
        "client_secret": "fake-client-secret",
        "redirect_uri": REDIRECT,
    }
    status, _, body = _request(fake, "POST", "/token", urlencode(form))
    return status, json.loads(body)


def refresh(fake: FakeDrive, token: str) -> tuple[int, dict[str, Any]]:
    form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": APP}
    status, _, body = _request(fake, "POST", "/token", urlencode(form))
    return status, json.loads(body)


def test_a_refresh_token_comes_with_the_first_offline_consent_only(fake: FakeDrive) -> None:
    status, first = consent(fake, access_type="offline")
    assert status == 200 and first["refresh_token"] and first["scope"] == SCOPE_FILE
    _, again = consent(fake, access_type="offline")
    assert "refresh_token" not in again and again["access_token"]
    _, forced = consent(fake, access_type="offline", approval_prompt="force")
    assert "refresh_token" not in forced  # the retired v1 parameter forces nothing
    _, prompted = consent(fake, access_type="offline", prompt="consent")
    assert prompted["refresh_token"] not in (None, first["refresh_token"])


def test_online_access_never_gets_a_refresh_token(fake: FakeDrive) -> None:
    _, answer = consent(fake, prompt="consent")
    assert "refresh_token" not in answer


def test_prompt_and_approval_prompt_together_are_refused(fake: FakeDrive) -> None:
    status, body = consent(fake, access_type="offline", prompt="consent", approval_prompt="force")
    assert status == 400 and "Conflict params" in body["error"]["message"]


def test_revoking_access_makes_the_next_consent_a_first_one(fake: FakeDrive) -> None:
    consent(fake, access_type="offline")
    fake.revoke_all()  # the user removed syncd at myaccount.google.com/permissions
    _, answer = consent(fake, access_type="offline")
    assert answer["refresh_token"]


def test_granted_scopes_are_returned_and_enforced(fake: FakeDrive) -> None:
    hand_made = fake.mkdir("made by hand")
    _, full = consent(fake, SCOPE_FULL, access_type="offline")
    assert full["scope"] == SCOPE_FULL
    status, refreshed = refresh(fake, full["refresh_token"])
    assert status == 200 and refreshed["scope"] == SCOPE_FULL
    assert with_token(fake, refreshed["access_token"]).files().get(fileId=hand_made).execute()

    # Granular consent: the user leaves full access unticked.
    fake.consent_grants = ["file"]
    _, narrow = consent(fake, f"{SCOPE_FULL} {SCOPE_FILE}", prompt="consent", access_type="offline")
    assert narrow["scope"] == SCOPE_FILE
    _, refreshed = refresh(fake, narrow["refresh_token"])
    service = with_token(fake, refreshed["access_token"])
    with pytest.raises(Exception) as err:
        service.files().get(fileId=hand_made).execute()
    assert "404" in str(err.value)
    assert fake.granted_scopes == [SCOPE_FULL, SCOPE_FILE]


def test_unknown_scopes_and_bad_codes_are_refused(fake: FakeDrive) -> None:
    assert consent(fake, "https://example.com/everything")[0] == 400
    form = {"grant_type": "authorization_code", "code": "4/forged", "redirect_uri": REDIRECT}
    status, _, body = _request(fake, "POST", "/token", urlencode(form))
    assert status == 400 and json.loads(body)["error"] == "invalid_grant"


def test_pydrive2_asks_with_approval_prompt_force(fake: FakeDrive, tmp_path: Path) -> None:
    # A characterisation of pydrive2 1.21: with get_refresh_token it adds
    # access_type=offline and approval_prompt=force, which the fake (like Google)
    # does not treat as a request for a new refresh token.
    secrets = tmp_path / "client_secrets.json"
    secrets.write_text(json.dumps(fake.client_secrets()))
    settings = {
        "client_config_backend": "file",
        "client_config_file": str(secrets),
        "get_refresh_token": True,
        "oauth_scope": [SCOPE_FILE],
    }
    gauth = GoogleAuth(settings=settings)
    gauth.GetFlow()
    gauth.flow.redirect_uri = REDIRECT
    params = parse_qs(urlsplit(gauth.GetAuthUrl()).query)
    assert params["approval_prompt"] == ["force"] and params["access_type"] == ["offline"]
    assert "prompt" not in params
    consent(fake, access_type="offline")  # an earlier consent (syncd auth drive, last month)
    pydrive_params = {k: v[0] for k, v in params.items() if k not in ("scope", "client_id")}
    pydrive_params.pop("redirect_uri", None)
    pydrive_params.pop("response_type", None)
    _, answer = consent(fake, **pydrive_params)
    assert "refresh_token" not in answer
