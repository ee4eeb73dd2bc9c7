"""Helpers for the opt-in live tests against a real Google Drive (see README, "Live tests").

Everything happens below one fresh folder, ``syncd-live/<run id>`` in the
account's My Drive, made with the default drive.file scope; the fixtures
trash it at the end.  The credentials are the file ``syncd auth drive``
saves; the tests only read it (the daemon and the remotes never write it).
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from oauth2client.client import OAuth2Credentials

from syncd.config import DriveConfig
from syncd.remotes.gdrive.drive_calls import quote
from syncd.remotes.gdrive.pacing import PacedHttp, Pacer
from syncd.remotes.gdrive.transport import drive_service

ENV = "SYNCD_LIVE_DRIVE_CREDENTIALS"
SCOPE_ENV = "SYNCD_LIVE_DRIVE_SCOPE"  # "file" (default) or "full", as the credentials were made
# Another API root instead of Google's: only for checking the harness itself against the
# fake (tests/test_live_harness.py); a maintainer never sets it.
ENDPOINT_ENV = "SYNCD_LIVE_DRIVE_ENDPOINT"
RPS_ENV = "SYNCD_LIVE_DRIVE_RPS"  # requests per second for syncd and the checks (default 5)
FOLDER_MIME = "application/vnd.google-apps.folder"
SKIP_REASON = (
    f"live Drive tests: set {ENV} to a credentials file made by `syncd auth drive` "
    "(README, Live tests)"
)


def credentials_path() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value).expanduser() if value else None


def private_copy(src: Path, dest_dir: Path) -> Path:
    """The credentials, copied 0600 into the test's own folder (never touched in place)."""
    dest_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    dest = dest_dir / "drive-credentials.json"
    shutil.copyfile(src, dest)
    dest.chmod(0o600)
    return dest


def live_config(credentials: Path, **overrides: Any) -> DriveConfig:
    values: dict[str, Any] = {
        "credentials": credentials,
        "client_secrets": credentials.with_name("client_secrets.json"),  # not needed to refresh
        "scope": os.environ.get(SCOPE_ENV, "file"),
        # polite by default: the account's quota is shared with its owner's own apps
        "requests_per_second": float(os.environ.get(RPS_ENV, "5")),
        "timeout": 60.0,
    }
    if os.environ.get(ENDPOINT_ENV):
        values["endpoint"] = os.environ[ENDPOINT_ENV]
    values.update(overrides)
    return DriveConfig(**values)


def run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


class LiveDrive:
    """A plain googleapiclient view of the real Drive, for checking what syncd did."""

    def __init__(self, cfg: DriveConfig) -> None:
        creds = OAuth2Credentials.from_json(cfg.credentials.read_text())
        creds.set_store(None)
        self.http = creds.authorize(PacedHttp(Pacer(cfg.requests_per_second), cfg.timeout))
        self.service = drive_service(cfg.endpoint, self.http)
        self.root = self.service.about().get(fields="rootFolderId").execute()["rootFolderId"]

    def children(self, folder_id: str, trashed: bool = False) -> list[dict[str, Any]]:
        q = f"'{folder_id}' in parents and trashed = {'true' if trashed else 'false'}"
        items, token = [], None
        while True:
            page = (
                self.service.files()
                .list(
                    q=q,
                    maxResults=1000,
                    pageToken=token,
                    fields="nextPageToken,items(id,title,mimeType,md5Checksum)",
                )
                .execute()
            )
            items.extend(page.get("items", []))
            token = page.get("nextPageToken")
            if not token:
                return items

    def find(self, path: str) -> dict[str, Any] | None:
        """The live item at ``path`` below My Drive (one the app can see), or None."""
        item: dict[str, Any] | None = {"id": self.root}
        for name in [p for p in path.split("/") if p]:
            assert item is not None
            found = [c for c in self.children(item["id"]) if c["title"] == name]
            item = found[0] if found else None
            if item is None:
                return None
        return item

    def files(self, path: str) -> dict[str, str]:
        """Relative path → md5 of every live file below ``path``."""
        top = self.find(path)
        out: dict[str, str] = {}
        stack = [(top["id"], "")] if top else []
        while stack:
            folder_id, prefix = stack.pop()
            for item in self.children(folder_id):
                rel = prefix + item["title"]
                if item["mimeType"] == FOLDER_MIME:
                    stack.append((item["id"], rel + "/"))
                elif rel != ".syncd/manifest.json":  # syncd's own (README: the manifest)
                    out[rel] = item.get("md5Checksum", "")
        return out

    def write(self, path: str, data: bytes) -> None:
        """Another client (same OAuth app) writes ``path``: a new revision, or a new file."""
        from googleapiclient.http import MediaInMemoryUpload

        parent_path, _, title = path.rpartition("/")
        parent = self.find(parent_path)
        assert parent is not None, f"no folder {parent_path!r} on Drive"
        media = MediaInMemoryUpload(data, "application/octet-stream", resumable=False)
        existing = [c for c in self.children(parent["id"]) if c["title"] == title]
        if existing:
            self.service.files().update(fileId=existing[0]["id"], media_body=media).execute()
        else:
            body = {"title": title, "parents": [{"id": parent["id"]}]}
            self.service.files().insert(body=body, media_body=media, fields="id").execute()

    def trash(self, path: str) -> None:
        item = self.find(path)
        if item is not None:
            self.service.files().trash(fileId=item["id"], fields="id").execute()

    def trashed_copy(self, below_id: str, title: str, md5: str) -> bool:
        """A trashed file called ``title`` with that md5 somewhere below folder ``below_id``."""
        q = f"title = {quote(title)} and trashed = true"
        page = self.service.files().list(q=q, fields="items(id,md5Checksum,parents/id)").execute()
        for item in page.get("items", []):
            if item.get("md5Checksum") == md5 and self._below(item, below_id):
                return True
        return False

    def _below(self, item: dict[str, Any], folder_id: str) -> bool:
        for _ in range(12):  # the test trees are shallow
            parents = [p["id"] for p in item.get("parents", [])]
            if folder_id in parents:
                return True
            if not parents or parents[0] == self.root:
                return False
            item = self.service.files().get(fileId=parents[0], fields="parents/id").execute()
        return False
