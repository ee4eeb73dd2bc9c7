"""What a mirror target holds, read without syncd's help: a ``local:`` folder or the fake Drive.

Both expose the same view: live files (path → md5), trashed paths, syncd's
temp leftovers, duplicate titles, and a way to seed and edit items the way
another client (a person, Colab) would.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.drive_server import FOLDER_MIME, FakeDrive

TRASH = ".syncd-trash"
TMP_PREFIX = ".syncd-tmp-"
# syncd's own file on every target (README, "The manifest"): not a mirrored file
MANIFEST = ".syncd/manifest.json"
REMOTES = ["local", "gdrive"]


def remotes(**xfail: str) -> list[Any]:
    """``REMOTES`` for parametrize, with a strict xfail on the named ones: remotes(local="…")."""
    return [
        pytest.param(r, marks=pytest.mark.xfail(strict=True, reason=xfail[r])) if r in xfail else r
        for r in REMOTES
    ]


# syncd's trash names: "NAME (deleted STAMP)", or "(deleted STAMP)/NAME" when the suffix
# would not fit 255 bytes (README, "Nothing is lost"); both map back to NAME.
_DELETED_SUFFIX = re.compile(r" ?\(deleted [^)]*\)$")
CONFLICT = re.compile(r" \(conflict [^)]*\)")


def md5_bytes(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def md5_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _manifest_only(folder: Path) -> bool:
    """The ``.syncd`` folder syncd made on the target for its manifest alone."""
    return folder.name == ".syncd" and os.listdir(folder) == ["manifest.json"]


class LocalTarget:
    """A ``local:`` target folder (the README: deletions go to ``.syncd-trash/``)."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def address(self) -> str:
        return f"local:{self.root}"

    def _files(self, under: Path) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for dirpath, _dirs, names in os.walk(under):
            for name in names:
                full = Path(dirpath) / name
                if full.is_symlink():
                    continue
                out[str(full.relative_to(under))] = full
        return out

    def live(self) -> dict[str, str]:
        """Every regular file outside the trash, temp files excluded."""
        if not self.root.is_dir():
            return {}
        out = {}
        for rel, full in self._files(self.root).items():
            if rel.split("/")[0] == TRASH or full.name.startswith(TMP_PREFIX) or rel == MANIFEST:
                continue
            try:
                out[rel] = md5_file(full)
            except OSError:
                continue
        return out

    def live_dirs(self) -> set[str]:
        out = set()
        for dirpath, dirs, _ in os.walk(self.root):
            rel = os.path.relpath(dirpath, self.root)
            for d in dirs:
                path = d if rel == "." else f"{rel}/{d}"
                if path.split("/")[0] != TRASH and not _manifest_only(self.root / path):
                    out.add(path)
        return out

    def trashed(self) -> dict[str, list[str]]:
        """Original path → md5s of the trashed copies (suffixes like "(deleted …)" removed)."""
        trash = self.root / TRASH
        out: dict[str, list[str]] = {}
        if not trash.is_dir():
            return out
        for rel, full in self._files(trash).items():
            parts = [_DELETED_SUFFIX.sub("", p) for p in rel.split("/")]
            out.setdefault("/".join(p for p in parts if p), []).append(md5_file(full))
        return out

    def temp_leftovers(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return [rel for rel, full in self._files(self.root).items() if TMP_PREFIX in full.name]

    def duplicates(self) -> list[str]:
        return []  # a folder cannot hold two entries with one name

    def put(self, rel: str, data: bytes) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def edit(self, rel: str, data: bytes) -> None:
        """Another writer changes the target copy (as a person or Colab on a mount would)."""
        self.put(rel, data)

    def read(self, rel: str) -> bytes | None:
        try:
            return (self.root / rel).read_bytes()
        except OSError:
            return None


class DriveTarget:
    """A folder of the fake Drive (``gdrive:/syncd/NAME``), read through the fake's own API."""

    kind = "gdrive"

    def __init__(self, fake: FakeDrive, folder: str) -> None:
        self.fake = fake
        self.folder = folder.strip("/")

    def address(self) -> str:
        return f"gdrive:/{self.folder}"

    def _root_id(self) -> str | None:
        try:
            found = self.fake.find(self.folder)
        except AssertionError:  # two folders with that title: report as duplicates
            return None
        return found["id"] if found else None

    def _walk(self, include_trashed: bool = False) -> list[tuple[str, dict[str, Any]]]:
        """(path, item) for everything below the root; duplicates appear once each."""
        root = self._root_id()
        if root is None:
            return []
        out: list[tuple[str, dict[str, Any]]] = []
        stack = [(root, "")]
        while stack:
            folder, prefix = stack.pop()
            for item in self.fake.children(folder, include_trashed=include_trashed):
                path = prefix + item["title"]
                out.append((path, item))
                if item["mimeType"] == FOLDER_MIME:
                    stack.append((item["id"], path + "/"))
        return out

    def live(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for path, item in self._walk():
            if item["mimeType"] != FOLDER_MIME and path != MANIFEST:
                out[path] = item.get("md5Checksum", "")
        return out

    def live_dirs(self) -> set[str]:
        walked = self._walk()
        own = {p for p, _ in walked if p.startswith(".syncd/")} == {MANIFEST}
        return {
            p
            for p, item in walked
            if item["mimeType"] == FOLDER_MIME and not (own and p == ".syncd")
        }

    def _path_of(self, item: dict[str, Any], root: str) -> str | None:
        parts = [item["title"]]
        parents = item.get("parents") or []
        seen = 0
        while parents and seen < 100:
            pid = parents[0]["id"]
            if pid == root:
                return "/".join(reversed(parts))
            parent = self.fake.get(pid)
            parts.append(parent["title"])
            parents = parent.get("parents") or []
            seen += 1
        return None  # not below the root

    def trashed(self) -> dict[str, list[str]]:
        root = self._root_id()
        out: dict[str, list[str]] = {}
        if root is None:
            return out
        for item in self.fake.trashed():
            if item["mimeType"] == FOLDER_MIME:
                continue
            path = self._path_of(item, root)
            if path is not None:
                out.setdefault(path, []).append(item.get("md5Checksum", ""))
        return out

    def temp_leftovers(self) -> list[str]:
        return [p for p, _ in self._walk() if p.rsplit("/", 1)[-1].startswith(TMP_PREFIX)]

    def duplicates(self) -> list[str]:
        """ "parent-path/title" for every title held by several live items of one folder."""
        seen: dict[str, int] = {}
        for path, _ in self._walk():
            seen[path] = seen.get(path, 0) + 1
        dup = [p for p, n in seen.items() if n > 1]
        if self._root_id() is None and self.fake.duplicates():
            dup.append(self.folder)
        return dup

    def put(self, rel: str, data: bytes) -> str:
        return self.fake.put_file(f"{self.folder}/{rel}", data)

    def edit(self, rel: str, data: bytes) -> None:
        found = self.fake.find(f"{self.folder}/{rel}")
        assert found is not None, f"nothing at {rel} on the fake Drive"
        self.fake.set_content(found["id"], data)

    def read(self, rel: str) -> bytes | None:
        found = self.fake.find(f"{self.folder}/{rel}")
        return None if found is None else self.fake.content(found["id"])


def write_drive_credentials(fake: FakeDrive, path: Path, refresh_token: str | None = None) -> Path:
    """What `syncd auth drive` leaves behind (oauth2client JSON, mode 0600)."""
    from oauth2client.client import OAuth2Credentials

    creds = OAuth2Credentials(
        access_token=fake.issue_token(),
        client_id="fake-client-id.apps.googleusercontent.com",
        client_secret="fake-client-secret",
        refresh_token=refresh_token or fake.refresh_token,
        token_expiry=None,
        token_uri=fake.url + "token",
        user_agent=None,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(creds.to_json())
    tmp.chmod(0o600)
    os.replace(tmp, path)
    return path


def drive_section(fake: FakeDrive, credentials: Path, **extra: Any) -> dict[str, Any]:
    return {
        "credentials": str(credentials),
        "endpoint": fake.url,
        "requests_per_second": 1000,
        "timeout": "10s",
        **extra,
    }
