"""Secrets audit (issue #8): plant an OAuth access token, a refresh token, a client secret and
a Kaggle key where syncd reads them, plus a project `.env`, `kaggle.json`, token file and SSH
key in the mirrored folder; run the daemon (a Drive mirror with a Kaggle snapshot, and a
`local:` mirror) and every CLI command, with and without `--debug`; then scan everything
syncd logged, printed, stored and reported.  None of the secrets may appear.

Scanned: the daemon's log, the stdout/stderr of every command, `status --json`, every
file under the state, cache, config (minus the credential files themselves) and runtime
folders, the `local:` target (trash included), every item on the fake Drive (titles and
contents, trashed ones too), every file and the notes of every Kaggle dataset version, and
whatever is left in the staging folder (TMPDIR).  Credential files are where secrets are
supposed to be; the project folder is the user's.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from oauth2client.client import OAuth2Credentials

from tests.chaos.control import Daemon, syncd_env, wait_quiet, write_config
from tests.conftest import wait_for
from tests.fakes.drive_server import ROOT_ID, FakeDrive
from tests.fakes.kaggle_server import FakeKaggle
from tests.kaggle_support import FAST

pytestmark = pytest.mark.e2e  # every test here starts syncd as a subprocess

USER = "alice"
DATASET = "alice/audit-code"
REFRESH = "1//0gAUDITrefresh-" + secrets.token_hex(12)
CLIENT_SECRET = "GOCSPX-AUDITclient-" + secrets.token_hex(10)
KAGGLE_KEY = "kgAUDIT" + secrets.token_hex(13)  # 32 characters, like a real key
WANDB = "wandbAUDIT" + secrets.token_hex(16)
SSH = "AUDITsshKEY" + secrets.token_hex(16)
# Any access token the fake hands out (the planted one and every refreshed one) starts so.
PATTERNS = [re.compile(re.escape(s)) for s in (REFRESH, CLIENT_SECRET, KAGGLE_KEY, WANDB, SSH)]
PATTERNS.append(re.compile(r"ya29\.[A-Za-z0-9_\-]{8,}"))


def found_in(text: str) -> list[str]:
    return [m.group(0)[:24] + "…" for p in PATTERNS for m in p.finditer(text)]


@pytest.fixture
def drive(home: Path) -> Iterator[FakeDrive]:
    with FakeDrive(refresh_token=REFRESH) as fake:
        yield fake


@pytest.fixture
def kaggle(home: Path) -> Iterator[FakeKaggle]:
    with FakeKaggle() as server:
        server.add_user(USER, KAGGLE_KEY)
        yield server


def plant_credentials(drive: FakeDrive, home: Path) -> tuple[Path, Path, Path]:
    conf = home / ".config/syncd"
    conf.mkdir(parents=True, exist_ok=True)
    creds = OAuth2Credentials(
        access_token=drive.issue_token(),
        client_id="audit-client.apps.googleusercontent.com",
        client_secret=CLIENT_SECRET,
        refresh_token=REFRESH,
        token_expiry=None,
        token_uri=drive.url + "token",
        user_agent=None,
    )
    token_file = conf / "drive-credentials.json"
    token_file.write_text(creds.to_json())
    secrets_file = conf / "client_secrets.json"
    secrets_file.write_text(
        json.dumps(
            {
                "installed": {
                    "client_id": "audit-client.apps.googleusercontent.com",
                    "client_secret": CLIENT_SECRET,
                    "auth_uri": drive.url + "auth",
                    "token_uri": drive.url + "token",
                    "redirect_uris": ["http://localhost"],
                }
            }
        )
    )
    kaggle_json = home / ".kaggle/kaggle.json"
    kaggle_json.parent.mkdir(parents=True, exist_ok=True)
    kaggle_json.write_text(json.dumps({"username": USER, "key": KAGGLE_KEY}))
    for f in (token_file, secrets_file, kaggle_json):
        f.chmod(0o600)
    return token_file, secrets_file, kaggle_json


def plant_project(root: Path) -> None:
    files = {
        "train.py": "print('train')\n",
        "models/net.py": "class Net: ...\n",
        ".env": f"WANDB_API_KEY={WANDB}\nKAGGLE_KEY={KAGGLE_KEY}\n",
        "config/.env.local": f"WANDB_API_KEY={WANDB}\n",
        "kaggle.json": json.dumps({"username": USER, "key": KAGGLE_KEY}),
        "client_secrets.json": json.dumps({"installed": {"client_secret": CLIENT_SECRET}}),
        "token.json": json.dumps({"refresh_token": REFRESH}),
        ".ssh/id_ed25519": f"-----BEGIN OPENSSH PRIVATE KEY-----\n{SSH}\n",
        "id_rsa": f"-----BEGIN RSA PRIVATE KEY-----\n{SSH}\n",
        "deploy.pem": f"{SSH}\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    past = 1_600_000_000  # settled: snapshots copy them at once
    for dirpath, _, names in os.walk(root):
        for name in names:
            os.utime(os.path.join(dirpath, name), (past, past))


def drive_dump(drive: FakeDrive) -> str:
    """Titles and contents of every item on the fake Drive, trashed ones included."""
    out, stack = [], [ROOT_ID]
    while stack:
        for item in drive.children(stack.pop(), include_trashed=True):
            out.append(item["title"])
            if item["mimeType"].endswith("folder"):
                stack.append(item["id"])
            else:
                out.append(drive.content(item["id"]).decode("utf-8", "replace"))
    return "\n".join(out)


def kaggle_dump(kaggle: FakeKaggle) -> str:
    try:
        ds = kaggle.dataset(DATASET)
    except (KeyError, LookupError):
        return ""
    out = []
    for v in ds.versions:
        out.append(v.notes or "")
        out.extend(f"{name}\n{data.decode('utf-8', 'replace')}" for name, data in v.files.items())
    return "\n".join(out)


def files_text(root: Path, skip: set[Path]) -> dict[str, str]:
    out = {}
    if not root.exists():
        return out
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if path in skip or path.is_symlink() or not path.is_file():
                continue
            out[str(path)] = path.read_bytes().decode("utf-8", "replace")
    return out


@pytest.fixture
def started() -> Iterator[list[Daemon]]:
    daemons: list[Daemon] = []
    yield daemons
    for d in daemons:
        d.kill()


def test_no_secret_is_logged_printed_stored_or_reported(
    tmp_path: Path, home: Path, drive: FakeDrive, kaggle: FakeKaggle, started: list[Daemon]
) -> None:
    token_file, secrets_file, kaggle_json = plant_credentials(drive, home)
    src, other = tmp_path / "audit", tmp_path / "other"
    plant_project(src)
    plant_project(other)
    projects = [
        {
            "name": "audit",
            "path": str(src),
            "mirror": {"to": "gdrive:/syncd/audit", "delay": "100ms"},
            "snapshot": {"dataset": DATASET, "title": "Audit code"},
        },
        {"name": "other", "path": str(other), "mirror": {"to": f"local:{tmp_path / 'mirror'}"}},
    ]
    top = {
        "drive": {
            "credentials": str(token_file),
            "client_secrets": str(secrets_file),
            "endpoint": drive.url,
            "requests_per_second": 1000,
        },
        "kaggle": {"endpoint": kaggle.url},
    }
    cfg = write_config(tmp_path / "c.yaml", projects, **top)
    env = kaggle.client_env(home=home, via_proxy=False, base=syncd_env())
    env.update(FAST, KAGGLE_CONFIG_DIR=str(kaggle_json.parent))
    outputs: dict[str, str] = {}

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [sys.executable, "-m", "syncd", *args, "-c", str(cfg)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        outputs[" ".join(args)] = r.stdout + r.stderr
        return r

    d = Daemon(cfg, env, tmp_path / "daemon.log").start()
    started.append(d)
    d.wait_up()
    wait_quiet(d)
    drive.expire_access_tokens()  # the next request refreshes: a new token is written back
    (src / "train.py").write_text("print('after the refresh')\n")
    (other / "train.py").write_text("print('edited')\n")
    wait_quiet(d)
    (other / "models/net.py").unlink()  # something in the local trash
    wait_quiet(d)
    for args in (
        ("status",),
        ("status", "--json"),
        ("status", "audit", "--json"),
        ("doctor",),
        ("sync", "audit"),
        ("pause", "other"),
        ("resume", "other"),
        ("snapshot", "audit", "-m", "audit run", "--wait"),
        ("snapshots", "audit"),
        ("snapshots", "audit", "--json"),
        ("auth", "kaggle"),
        ("service", "install", "--dry-run"),
        ("reload",),
        ("status", "nope"),
    ):
        run(*args)
    status = d.status()
    outputs["socket status"] = json.dumps(status)
    assert run("stop").returncode == 0
    wait_for(lambda: not d.alive(), what="the daemon to stop")
    drive.expire_access_tokens()
    (src / "models/net.py").write_text("class Net2: ...\n")
    for args in (
        ("status", "--json"),
        ("--debug", "sync", "--once"),
        ("--debug", "snapshot", "audit", "-m", "in process", "--force", "--wait"),
        ("--debug", "doctor"),
        ("--debug", "status"),
    ):
        run(*args)
    d2 = Daemon(cfg, env, tmp_path / "daemon-debug.log", options=("--debug",)).start()
    started.append(d2)
    d2.wait_up()
    (src / "train.py").write_text("print('debug run')\n")
    wait_quiet(d2)
    d2.stop()

    skip = {token_file, secrets_file, kaggle_json}
    places: dict[str, str] = {
        "daemon log": d.log,
        "daemon --debug log": d2.log,
        **{f"output of `syncd {k}`": v for k, v in outputs.items()},
        "fake Drive (titles and contents)": drive_dump(drive),
        "Kaggle dataset versions (files and notes)": kaggle_dump(kaggle),
    }
    for folder in (
        home / ".local/state",
        home / ".cache",
        home / ".config",
        home / "run",
        tmp_path / "mirror",
        Path(env["TMPDIR"]),
    ):
        places.update(files_text(folder, skip))
    leaks = {where: found_in(text) for where, text in places.items() if found_in(text)}
    assert leaks == {}, json.dumps(leaks, indent=1)[:4000]
    # The audit must have looked at real things, and its patterns must match real secrets.
    assert found_in(token_file.read_text()) and found_in((src / ".env").read_text())
    assert "train.py" in places["fake Drive (titles and contents)"]
    assert "syncd-snapshot.json" in places["Kaggle dataset versions (files and notes)"]
    assert any(p.endswith(".db") for p in places), sorted(places)[:20]
    assert drive.count("POST", "/token") >= 1, "no token refresh happened"
