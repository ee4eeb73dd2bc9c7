"""Running syncd's Colab helper outside Colab, against the fake Drive.

Only ``google.colab`` is stubbed (it exists only inside Colab): ``auth.authenticate_user()``
does nothing and ``drive.mount()`` records its calls.  Everything else is real:
``google.auth.default()`` reads an "authorized_user" credentials file named by
``GOOGLE_APPLICATION_CREDENTIALS`` — the kind Colab's ``authenticate_user()``
leaves behind — holding an access token the fake issued (Colab's app, full scope);
googleapiclient is pointed at the fake by ``SYNCD_DRIVE_ENDPOINT``.  So the
credentials path under test is google-auth's own, with no stub at its edge.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from syncd.remotes.gdrive import colab_helper
from tests.fakes.drive_access import COLAB
from tests.fakes.drive_server import FakeDrive

HELPER_SOURCE = Path(colab_helper.__file__)
COLAB_REFRESH = "1//fake-colab-grant"

# The stub package: put its folder first on PYTHONPATH (google is a namespace package).
STUB_COLAB = '''"""google.colab as far as syncd's helper uses it (tests only)."""
import json, os, types

def _authenticate_user():
    pass

def _mount(mountpoint, force_remount=False):
    log = os.environ.get("COLAB_STUB_MOUNT_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps([mountpoint, force_remount]) + "\\n")

auth = types.SimpleNamespace(authenticate_user=_authenticate_user)
drive = types.SimpleNamespace(mount=_mount)
'''


def colab_credentials(fake: FakeDrive, path: Path) -> Path:
    """What Colab's authenticate_user() leaves: an authorized_user file with full Drive scope."""
    fake.allow_refresh_token(COLAB_REFRESH, "full", app=COLAB)
    # google-auth always refreshes authorized_user credentials at Google's own token
    # endpoint (from_authorized_user_info: "always overrides" token_uri), so the file
    # carries a live access token the fake issued, as a fresh Colab login's does.
    expiry = datetime.now(UTC) + timedelta(hours=1)
    path.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": COLAB,
                "client_secret": "fake-colab-secret",
                "refresh_token": COLAB_REFRESH,
                "token": fake.issue_token("full", app=COLAB),
                "expiry": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    )
    path.chmod(0o600)
    return path


def stub_dir(tmp: Path) -> Path:
    """A folder to put first on sys.path/PYTHONPATH that provides ``google.colab``."""
    root = tmp / "colab-stub"
    (root / "google" / "colab").mkdir(parents=True, exist_ok=True)
    (root / "google" / "colab" / "__init__.py").write_text(STUB_COLAB)
    return root


def colab_env(fake: FakeDrive, tmp: Path, *, credentials: bool = True) -> dict[str, str]:
    env = {
        "SYNCD_DRIVE_ENDPOINT": fake.url,
        "SYNCD_COLAB_CONTENT": str(tmp / "content"),
        "NO_GCE_CHECK": "True",  # google.auth.default(): no metadata server to probe here
        "NO_PROXY": "127.0.0.1,localhost",
        "COLAB_STUB_MOUNT_LOG": str(tmp / "mounts.log"),
        "GOOGLE_APPLICATION_CREDENTIALS": str(
            colab_credentials(fake, tmp / "adc.json") if credentials else tmp / "no-adc.json"
        ),
    }
    return env


def load_helper(monkeypatch: pytest.MonkeyPatch, tmp: Path, source: Path = HELPER_SOURCE) -> Any:
    """The helper as the cell loads it (from its file, under the name ``syncd_colab``)."""
    monkeypatch.syspath_prepend(str(stub_dir(tmp)))
    for name in ("google.colab", "_syncd_colab_cache"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    spec = importlib.util.spec_from_file_location("syncd_colab", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "syncd_colab", module)  # as the cell does (dataclasses)
    spec.loader.exec_module(module)
    return module


def mounts(tmp: Path) -> list[list[Any]]:
    log = tmp / "mounts.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def drive_requests(fake: FakeDrive) -> list[str]:
    """The Drive API requests the fake saw (token refreshes are not Drive requests)."""
    return [f"{r.method} {r.path}" for r in fake.requests if "/drive/" in r.path]


def manifest_id(rig: Any) -> str:
    """The Drive id of the manifest a ``mirror_support.Rig``'s mirror wrote."""
    from syncd.mirror.manifest import manifest_record

    rec = manifest_record(rig.db, "p")
    assert rec is not None
    return rec.id
