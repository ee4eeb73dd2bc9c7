"""Helpers for the Google Drive tests: credentials and configs that point at a FakeDrive.

The remote under test is the real one (pydrive2, googleapiclient, oauth2client
over HTTP); only the server is fake.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from oauth2client.client import OAuth2Credentials

from syncd.config import DriveConfig, parse_address
from syncd.db.statedb import StateDB
from syncd.remotes.gdrive.backend import GDriveRemote
from tests.fakes.drive_access import APP, scope_url
from tests.fakes.drive_server import FakeDrive


def write_credentials(
    fake: FakeDrive,
    path: Path,
    refresh_token: str | None = None,
    access_token: bool = True,
    scope: str = "file",
) -> Path:
    """What `syncd auth drive` leaves behind (pydrive2's oauth2client JSON), mode 0600.

    The grant is for ``scope`` ("file" or "full"), recorded as Google's token answer
    records it (``token_response.scope``).  Without ``refresh_token`` a grant for that
    scope is made on the fake, as a successful consent would; with one, the caller has
    made (or revoked) it.
    """
    if refresh_token is None:
        refresh_token = fake.refresh_token if scope == "file" else f"1//fake-{scope}-grant"
        fake.allow_refresh_token(refresh_token, scope)
    granted = scope_url(scope)
    token = fake.issue_token(scope) if access_token else None
    creds = OAuth2Credentials(
        access_token=token,
        client_id=APP,
        client_secret="fake-client-secret",
        refresh_token=refresh_token,
        token_expiry=None,
        token_uri=fake.url + "token",
        user_agent=None,
        token_response={"access_token": token, "token_type": "Bearer", "scope": granted},
        scopes=granted,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(creds.to_json())
    tmp.chmod(0o600)
    os.replace(tmp, path)  # the daemon may be watching: never show it half a file
    return path


def write_client_secrets(fake: FakeDrive, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fake.client_secrets()))
    return path


def drive_config(fake: FakeDrive, tmp: Path, **overrides: Any) -> DriveConfig:
    values: dict[str, Any] = {
        "credentials": tmp / "drive-credentials.json",
        "client_secrets": tmp / "client_secrets.json",
        "endpoint": fake.url,
        "requests_per_second": 1000.0,
        "timeout": 10.0,
    }
    values.update(overrides)
    return DriveConfig(**values)


def open_gdrive(
    fake: FakeDrive,
    tmp: Path,
    address: str = "gdrive:/syncd/p",
    *,
    db: StateDB | None = None,
    credentials: bool = True,
    **overrides: Any,
) -> GDriveRemote:
    """A GDriveRemote on the fake with its own state db (or ``db``) and fresh credentials."""
    cfg = drive_config(fake, tmp, **overrides)
    if credentials and not cfg.credentials.exists():
        write_credentials(fake, cfg.credentials, scope=cfg.scope)
    db = db or StateDB(tmp / "state.db")
    return GDriveRemote(parse_address(address, tmp), cfg, db, "p")


def files_below(fake: FakeDrive, folder: str = "syncd/p", app: str | None = APP) -> dict[str, str]:
    """Relative path → md5 of every live file (not folder) below a folder of the fake.

    The folder is found along items syncd's app can see (a hand-made folder of the same
    name is not it); below it, every file counts, whoever made it (``app`` applies to
    the way there only).
    """
    found = fake.find(folder, app=app)
    if found is None:
        return {}
    return {
        p: md5
        for p, md5 in fake.tree(found["id"]).items()
        if md5 is not None and p != ".syncd/manifest.json"  # syncd's own (README: the manifest)
    }


def uploads(fake: FakeDrive) -> list[str]:
    """Titles of the content uploads the fake committed (lost answers included), in order;
    syncd's manifest (README: the manifest) is not one of the project's files."""
    return [
        r.title
        for r in fake.requests
        if "/upload/" in r.path and r.title is not None and r.title != "manifest.json"
    ]


SA_EMAIL = "syncd-test@fake-project.iam.gserviceaccount.com"


def service_account_key(fake: FakeDrive, tmp_path: Path, email: str = SA_EMAIL) -> Path:
    """A service account key file (a real RSA key) that the fake accepts."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    fake.allow_service_account(email)
    path = tmp_path / "sa.json"
    info = {
        "type": "service_account",
        "project_id": "fake-project",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": email,
        "client_id": "1234567890",
        "token_uri": fake.url + "token",
    }
    path.write_text(json.dumps(info))
    return path


def drive_section(fake: FakeDrive, credentials: Path, **extra: Any) -> dict[str, Any]:
    """The `drive:` block of a YAML config for the daemon."""
    return {
        "credentials": str(credentials),
        "endpoint": fake.url,
        "requests_per_second": 1000,
        "timeout": "10s",
        **extra,
    }
