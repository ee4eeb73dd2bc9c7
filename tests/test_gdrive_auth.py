"""Drive credentials end to end: sign-in, scopes, service accounts, and proving the folder.

``syncd auth drive`` runs the real loopback flow (pydrive2/oauth2client) against
the fake's consent page, driven like a browser; the daemon side loads what it
saved.  ``syncd doctor`` runs as a subprocess.  The fake hands out refresh
tokens and scopes the way Google does (tests/fakes/drive_oauth.py).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from syncd.cli.auth import auth_drive
from syncd.config import DriveConfig
from syncd.errors import AuthRequired, SyncdError, TargetUnavailable
from tests.conftest import run_cli, write_config
from tests.fakes.drive_server import APP, SCOPE_FILE, FakeDrive
from tests.gdrive_support import (
    SA_EMAIL,
    drive_config,
    drive_section,
    files_below,
    open_gdrive,
    service_account_key,
    write_client_secrets,
    write_credentials,
)

# oauth2client signs service-account assertions with a pyOpenSSL call that warns.
pytestmark = pytest.mark.filterwarnings("ignore:sign\\(\\) is deprecated:DeprecationWarning")


@pytest.fixture
def fake(home: Path) -> Iterator[FakeDrive]:
    with FakeDrive() as drive:
        yield drive
    assert drive.internal_errors == []


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def src(tmp_path: Path, data: bytes, name: str = "f.bin") -> Path:
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def project_config(fake: FakeDrive, tmp_path: Path, creds: Path, **drive: Any) -> Path:
    (tmp_path / "p").mkdir(exist_ok=True)
    project = {"name": "p", "path": str(tmp_path / "p"), "mirror": {"to": "gdrive:/syncd/p"}}
    return write_config(tmp_path / "c.yaml", [project], drive=drive_section(fake, creds, **drive))


def sign_in(
    cfg: DriveConfig, config_path: Path | None = None
) -> tuple[str, list[str], dict[str, Any]]:
    """Run `syncd auth drive` and say yes in the "browser": (consent URL, output, result)."""
    said: list[str] = []
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["path"] = auth_drive(
                cfg,
                no_browser=True,
                out=said.append,
                ports=(0,),
                timeout=20,
                config_path=config_path,
            )
        except Exception as exc:  # noqa: BLE001 - reported by the caller's assertions
            box["error"] = exc

    flow = threading.Thread(target=run)
    flow.start()
    url = next(line.strip() for line in _wait_lines(said) if "/auth?" in line)
    with urllib.request.urlopen(url, timeout=10) as resp:  # consent, then the redirect
        assert b"authentication flow has completed" in resp.read()
    flow.join(20)
    return url, said, box


def _wait_lines(said: list[str]) -> list[str]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any("Waiting for the answer" in line for line in said):
            return "\n".join(said).splitlines()
        time.sleep(0.02)
    raise AssertionError(f"the flow printed no URL: {said}")


# --- signing in ------------------------------------------------------------------------


def test_loopback_flow_saves_a_refresh_token(fake: FakeDrive, tmp_path: Path) -> None:
    cfg = drive_config(fake, tmp_path)
    write_client_secrets(fake, cfg.client_secrets)
    url, said, box = sign_in(cfg)
    assert "error" not in box, box.get("error")
    params = parse_qs(urlsplit(url).query)
    assert params["prompt"] == ["consent"] and params["access_type"] == ["offline"]
    assert "approval_prompt" not in params  # pydrive2's default; Google ignores it (#453)
    saved = json.loads(cfg.credentials.read_text())
    assert saved["refresh_token"].startswith("1//fake-refresh-")
    assert saved["token_response"]["scope"] == SCOPE_FILE
    assert cfg.credentials.stat().st_mode & 0o777 == 0o600
    assert fake.granted_scopes == [SCOPE_FILE]
    text = "\n".join(said)
    assert "drive.file" in text and "gdrive:/syncd/<project>" in text and "scope: full" in text
    assert "ssh -L " in text and "Signed in as fake.user@example.com." in text
    assert "no restart needed" in text
    remote = open_gdrive(fake, tmp_path)  # the daemon side can use what the flow saved
    remote.check(create=True)
    remote.upload("x.txt", src(tmp_path, b"x"), None)


def test_signing_in_again_still_gets_a_refresh_token(fake: FakeDrive, tmp_path: Path) -> None:
    # The second consent of the same user to the same client: Google gives a new refresh
    # token only for prompt=consent (pydrive2's approval_prompt=force would get none).
    cfg = drive_config(fake, tmp_path)
    write_client_secrets(fake, cfg.client_secrets)
    first = sign_in(cfg)[2]
    assert "error" not in first, first.get("error")
    old = json.loads(cfg.credentials.read_text())["refresh_token"]
    again = sign_in(cfg)[2]
    assert "error" not in again, again.get("error")
    assert json.loads(cfg.credentials.read_text())["refresh_token"] not in (None, old)


def test_sign_in_proves_the_mirror_folder(fake: FakeDrive, tmp_path: Path) -> None:
    fake.mkdir("syncd/p")  # made by hand: invisible to drive.file, so not the one
    creds = tmp_path / "drive-credentials.json"
    config_path = project_config(fake, tmp_path, creds)
    cfg = drive_config(fake, tmp_path, credentials=creds)
    write_client_secrets(fake, cfg.client_secrets)
    _, said, box = sign_in(cfg, config_path)
    assert "error" not in box, box.get("error")
    ours = fake.find("syncd/p", app=APP)
    assert ours is not None
    assert f"p: created gdrive:/syncd/p on Google Drive (folder id {ours['id']})." in said
    _, said, box = sign_in(cfg, config_path)
    assert f"p: found gdrive:/syncd/p on Google Drive (folder id {ours['id']})." in said
    assert fake.count(path_contains="/files/root") == 0


def test_a_narrower_grant_is_refused_at_sign_in(fake: FakeDrive, tmp_path: Path) -> None:
    cfg = drive_config(fake, tmp_path, scope="full")
    write_client_secrets(fake, cfg.client_secrets)
    fake.consent_grants = []  # granular consent: the user unticked the one box
    _, _, box = sign_in(cfg)
    assert isinstance(box.get("error"), SyncdError)
    assert str(box["error"]) == (
        "Google granted nothing, not what syncd asked for (drive) (run `syncd auth drive` "
        "again and leave that access ticked on the consent page)"
    )
    assert not cfg.credentials.exists()


def test_auth_drive_without_an_oauth_client_says_what_to_do(
    fake: FakeDrive, tmp_path: Path
) -> None:
    with pytest.raises(SyncdError, match="no OAuth client at .*Desktop app"):
        auth_drive(drive_config(fake, tmp_path), no_browser=True, out=lambda _: None)


# --- the daemon's side of a grant ------------------------------------------------------


def test_credentials_for_another_scope_need_a_new_sign_in(fake: FakeDrive, tmp_path: Path) -> None:
    write_credentials(fake, tmp_path / "drive-credentials.json", scope="file")
    remote = open_gdrive(fake, tmp_path, scope="full")
    with pytest.raises(AuthRequired) as err:
        remote.check(create=True)
    assert str(err.value) == (
        "the saved Drive credentials allow drive.file, but drive.scope is full "
        "(run `syncd auth drive` to sign in again for that scope)"
    )
    assert fake.requests == []  # known before asking Google anything

    wide = tmp_path / "wide"
    write_credentials(fake, wide / "drive-credentials.json", scope="full")
    with pytest.raises(AuthRequired, match="allow drive, but drive.scope is file"):
        open_gdrive(fake, wide, scope="file").check(create=True)


def test_a_refreshed_token_with_another_scope_is_caught(fake: FakeDrive, tmp_path: Path) -> None:
    # The file says drive.file, but the grant behind the refresh token is full access
    # (say the user re-consented elsewhere): the first refresh tells, and syncd stops.
    fake.allow_refresh_token("1//grown", "full")
    write_credentials(fake, tmp_path / "drive-credentials.json", "1//grown", access_token=False)
    remote = open_gdrive(fake, tmp_path)
    with pytest.raises(AuthRequired, match="allow drive, but drive.scope is file"):
        remote.check(create=True)
    assert fake.count("POST", "/token") == 1
    with pytest.raises(AuthRequired, match="allow drive, but"):
        remote.check(create=True)  # same file: no new attempt
    assert fake.count("POST", "/token") == 1


def test_revoked_grant_needs_the_user_and_new_credentials_are_picked_up(
    fake: FakeDrive, tmp_path: Path
) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    fake.revoke_all()
    with pytest.raises(AuthRequired) as err:
        remote.upload("x.txt", src(tmp_path, b"x"), None)
    assert str(err.value) == ("Google Drive access was revoked or expired (run `syncd auth drive`)")
    before = len(fake.requests)
    with pytest.raises(AuthRequired):
        remote.check()  # known bad and the file did not change: no request at all
    assert len(fake.requests) == before

    fake.allow_refresh_token("1//new-grant")
    write_credentials(fake, remote.cfg.credentials, "1//new-grant", access_token=False)
    remote.check()  # same remote object: the new file is noticed and used
    remote.upload("x.txt", src(tmp_path, b"x"), None)
    assert files_below(fake) == {"x.txt": md5(b"x")}


def test_missing_credentials(fake: FakeDrive, tmp_path: Path) -> None:
    remote = open_gdrive(fake, tmp_path, credentials=False)
    with pytest.raises(AuthRequired, match="no Google Drive credentials at .*run `syncd auth"):
        remote.check(create=True)


def test_expired_access_token_is_refreshed_without_fuss(fake: FakeDrive, tmp_path: Path) -> None:
    remote = open_gdrive(fake, tmp_path)
    remote.check(create=True)
    fake.expire_access_tokens()
    remote.upload("x.txt", src(tmp_path, b"x"), None)
    assert fake.count("POST", "/token", status=200) == 1
    assert json.loads(remote.cfg.credentials.read_text())["refresh_token"] == fake.refresh_token


# --- service accounts ------------------------------------------------------------------


def test_a_service_account_needs_scope_full(fake: FakeDrive, tmp_path: Path) -> None:
    key = service_account_key(fake, tmp_path)
    remote = open_gdrive(fake, tmp_path, service_account_key=key, credentials=False)
    with pytest.raises(AuthRequired) as err:
        remote.check(create=True)
    assert str(err.value).startswith("a service account needs `scope: full` under `drive:`")
    said: list[str] = []
    auth_drive(drive_config(fake, tmp_path), service_account=key, out=said.append)
    assert "    scope: full" in "\n".join(said)


def test_storage_quota_of_a_service_account(fake: FakeDrive, tmp_path: Path) -> None:
    key = service_account_key(fake, tmp_path)
    remote = open_gdrive(fake, tmp_path, service_account_key=key, scope="full")
    remote.check(create=True)  # folders take no storage: the root can be made
    with pytest.raises(TargetUnavailable) as err:  # the fake answers what Drive answers
        remote.upload("x.txt", src(tmp_path, b"x"), None)
    assert str(err.value) == (
        "service accounts have no storage of their own: use a Shared Drive folder (gdrive:id=...)"
    )
    assert fake.count(status=403, reason="storageQuotaExceeded") == 1

    team = fake.add_shared_drive("Team", members=[SA_EMAIL])
    folder = fake.mkdir("syncd-p", parent_id=team)
    shared = open_gdrive(
        fake, tmp_path / "t", f"gdrive:id={folder}", service_account_key=key, scope="full"
    )
    shared.check(create=True)
    shared.upload("a/x.txt", src(tmp_path, b"x"), None)
    assert fake.tree(folder) == {"a/": None, "a/x.txt": md5(b"x")}
    assert [e.path for e in shared.list_all()] == ["a/x.txt"]


def test_service_account_setup(fake: FakeDrive, tmp_path: Path) -> None:
    key = service_account_key(fake, tmp_path)
    cfg = drive_config(fake, tmp_path, scope="full")
    said: list[str] = []
    saved = auth_drive(cfg, service_account=key, out=said.append, config_path=tmp_path / "c.yaml")
    assert saved == tmp_path / "drive-service-account.json"
    assert saved.stat().st_mode & 0o777 == 0o600
    text = "\n".join(said)
    assert f"service_account_key: {saved}" in text and "Shared Drive" in text
    assert "scope: full" not in text  # already set
    team = fake.add_shared_drive("Team", members=[SA_EMAIL])
    remote = open_gdrive(
        fake,
        tmp_path,
        f"gdrive:id={team}",
        service_account_key=saved,
        credentials=False,
        scope="full",
    )
    remote.check(create=True)
    remote.upload("x.txt", src(tmp_path, b"x"), None)
    assert fake.tree(team) == {"x.txt": md5(b"x")}


# --- syncd doctor ----------------------------------------------------------------------


def doctor(config: Path) -> tuple[int, list[str]]:
    r = run_cli("doctor", "-c", str(config))
    return r.returncode, [
        line for line in r.stdout.splitlines() if "gdrive:" in line or "Drive" in line
    ]


@pytest.mark.e2e
def test_doctor_proves_the_mirror_folder(fake: FakeDrive, tmp_path: Path, home: Path) -> None:
    creds = write_credentials(fake, home / ".config/syncd/drive-credentials.json")
    config = project_config(fake, tmp_path, creds)
    code, lines = doctor(config)
    ours = fake.find("syncd/p", app=APP)
    assert ours is not None, lines
    assert f"[ok] p: syncd made gdrive:/syncd/p on Google Drive (folder id {ours['id']})" in lines
    code, lines = doctor(config)
    assert (
        f"[ok] p: syncd reaches gdrive:/syncd/p on Google Drive (folder id {ours['id']})" in lines
    )
    assert fake.count(path_contains="/files/root") == 0

    fake.revoke_all()
    code, lines = doctor(config)
    assert code == 1 and (
        "[fail] p: Google Drive refuses the credentials: Google Drive access was revoked or "
        "expired (run `syncd auth drive`)" in lines
    ), lines


@pytest.mark.e2e
def test_doctor_reports_a_hidden_id_folder(fake: FakeDrive, tmp_path: Path, home: Path) -> None:
    creds = write_credentials(fake, home / ".config/syncd/drive-credentials.json")
    folder = fake.mkdir("made by hand")
    (tmp_path / "p").mkdir()
    project = {"name": "p", "path": str(tmp_path / "p"), "mirror": {"to": f"gdrive:id={folder}"}}
    config = write_config(tmp_path / "c.yaml", [project], drive=drive_section(fake, creds))
    code, lines = doctor(config)
    assert code == 1 and any(
        line.startswith(f"[fail] p: gdrive:id={folder} is not reachable: Drive folder")
        and "drive.scope: full" in line
        for line in lines
    ), lines
