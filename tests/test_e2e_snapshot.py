"""End-to-end: Kaggle snapshots through the real daemon and CLI, against the fake Kaggle.

The daemon is a subprocess configured with ``kaggle.endpoint: <fake>``; it and the
CLI run the real kaggle client with the fake's credentials in an isolated HOME.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.kaggle_server import FakeKaggle

from .conftest import md5, run_cli, syncd_env, wait_for, write_config
from .kaggle_support import DATASET, EXPECTED, FAST, make_project, running_fake, settle

pytestmark = pytest.mark.e2e  # every test here runs syncd as a subprocess

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
UPLOADS = ("StartBlobUpload", "upload", "CreateDataset", "CreateDatasetVersion")


@pytest.fixture
def fake() -> Iterator[FakeKaggle]:
    yield from running_fake()


def daemon_env(fake: FakeKaggle, home: Path, auth: str = "env_key", **extra: str) -> dict[str, str]:
    env = fake.client_env(home=home, via_proxy=False, auth=auth)
    env.update(FAST, **extra)
    return env


def git(repo: Path, *args: str) -> str:
    who = {"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "a"}
    env = {**os.environ, **who, "GIT_COMMITTER_EMAIL": "a@x"}
    done = subprocess.run(["git", "-C", str(repo), *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def cifar(tmp_path: Path, *, name: str = "cifar", delay: str = "100ms", **snapshot: Any) -> dict:
    return {
        "name": name,
        "path": str(tmp_path / name),
        "mirror": {"to": f"local:{tmp_path / (name + '-mirror')}", "delay": delay},
        "ignore": ["*.ckpt"],
        "snapshot": {"dataset": DATASET, "title": "CIFAR code", **snapshot},
    }


def config(tmp_path: Path, fake: FakeKaggle, *projects: dict) -> Path:
    return write_config(tmp_path / "c.yaml", list(projects), kaggle={"endpoint": fake.url})


def cli(cfg: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, "-c", str(cfg), env=env, timeout=60)


def status(cfg: Path, env: dict[str, str]) -> dict[str, Any]:
    done = cli(cfg, env, "status", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def up(cfg: Path, env: dict[str, str]) -> None:
    wait_for(lambda: cli(cfg, env, "status", "--json").returncode == 0, 20, "daemon socket")


def uploads(fake: FakeKaggle) -> list[str]:
    return [r.rpc for r in fake.requests if r.rpc in UPLOADS]


def test_snapshot_command_creates_then_versions_and_skips_when_unchanged(
    tmp_path: Path, home: Path, fake: FakeKaggle, run_daemon
) -> None:
    root = make_project(tmp_path / "cifar")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "train.py", "models")
    git(root, "commit", "-q", "-m", "baseline")
    commit = git(root, "rev-parse", "HEAD")
    cfg = config(tmp_path, fake, cifar(tmp_path))
    env = daemon_env(fake, home)
    d = run_daemon(cfg, env=env)
    up(cfg, env)

    first = cli(cfg, env, "snapshot", "cifar", "-m", "try lr 3e-4", "--wait")
    assert first.returncode == 0, first.stderr + d.log
    assert first.stdout.startswith(f"{DATASET} v1 is ready (4 files, ")
    assert fake.count("CreateDataset") == 1

    (root / "train.py").write_text("print('lr 3e-4')\n")
    (root / "models" / "new_head.py").write_text("HEAD = 1\n")
    settle(root)
    second = cli(cfg, env, "snapshot", "cifar", "-m", "try lr 3e-4", "--wait")
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith(f"{DATASET} v2 is ready (5 files, ")

    v2 = fake.dataset(DATASET).versions[1]
    # The project minus ignored files: subfolders present; secrets, .git, caches absent.
    assert set(v2.files) == EXPECTED | {"models/new_head.py", "syncd-snapshot.json"}
    for rel in EXPECTED:
        assert v2.files[rel] == (root / rel).read_bytes()
    notes = v2.notes.splitlines()
    assert notes[0] == "try lr 3e-4" and "trigger: manual" in notes
    assert f"git: {commit[:7]}-dirty on main, commit {commit[:12]}" in notes
    assert "files: 5, " in v2.notes and "  A models/new_head.py" in notes
    manifest = json.loads(v2.files["syncd-snapshot.json"])
    assert manifest["git"]["commit"] == commit and manifest["file_count"] == 5
    assert manifest["files"]["train.py"]["md5"] == md5(root / "train.py")

    fake.reset_log()
    same = cli(cfg, env, "snapshot", "cifar", "--wait")
    assert same.returncode == 0
    assert same.stdout.strip() == (
        "unchanged since v2; nothing uploaded (use --force to upload anyway)"
    )
    assert fake.requests == []  # no upload, not even a status call
    assert "cifar: unchanged since v2" in d.log
    block = status(cfg, env)["projects"][0]["snapshot"]
    assert (block["dataset"], block["last_version"], block["status"]) == (DATASET, 2, "unchanged")
    human = cli(cfg, env, "status").stdout
    assert f"snapshot {DATASET}: v2 (unchanged)" in human

    forced = cli(cfg, env, "snapshot", "cifar", "--force", "--wait")
    assert forced.returncode == 0 and forced.stdout.startswith(f"{DATASET} v3 is ready")
    assert "StartBlobUpload" in uploads(fake) and "CreateDatasetVersion" in uploads(fake)

    history = cli(cfg, env, "snapshots", "cifar", "--json")
    assert history.returncode == 0, history.stderr
    rows = json.loads(history.stdout)
    assert [(r["version"], r["status"], r["files"]) for r in rows] == [
        (3, "ready", 5),
        (2, "ready", 5),
        (1, "ready", 4),
    ]
    table = cli(cfg, env, "snapshots").stdout
    assert "v3" in table and "v1" in table and "try lr 3e-4" in table
    block = status(cfg, env)["projects"][0]["snapshot"]
    assert (block["last_version"], block["status"], block["next_at"]) == (3, "ready", None)
    assert d.stop() == 0

    # Without a daemon the CLI snapshots in-process, from the same history.
    alone = cli(cfg, env, "snapshot", "--wait")
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout.startswith("unchanged since v3")


def test_pending_edits_are_included_and_simultaneous_triggers_make_one_version(
    tmp_path: Path, home: Path, fake: FakeKaggle, run_daemon
) -> None:
    root = make_project(tmp_path / "cifar")
    mirror = tmp_path / "cifar-mirror"
    cfg = config(tmp_path, fake, cifar(tmp_path, delay="1500ms"))
    env = daemon_env(fake, home)
    run_daemon(cfg, env=env)
    up(cfg, env)
    wait_for(lambda: (mirror / "train.py").exists(), 20, "first mirror")

    (root / "late.py").write_text("edited just before the snapshot\n")
    results: list[subprocess.CompletedProcess[str]] = []
    calls = [
        threading.Thread(target=lambda: results.append(cli(cfg, env, "snapshot", "--wait")))
        for _ in range(2)
    ]
    for call in calls:
        call.start()
    for call in calls:
        call.join(60)

    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert results[0].stdout == results[1].stdout  # one shared result
    assert results[0].stdout.startswith(f"{DATASET} v1 is ready (5 files")
    versions = fake.dataset(DATASET).versions
    assert len(versions) == 1 and fake.count("CreateDataset") == 1
    assert versions[0].files["late.py"] == b"edited just before the snapshot\n"
    # The snapshot waited for the mirror: Drive (here a folder) and Kaggle agree.
    assert (mirror / "late.py").read_text() == "edited just before the snapshot\n"


def test_schedule_and_git_tag_triggers(
    tmp_path: Path, home: Path, fake: FakeKaggle, run_daemon
) -> None:
    root = make_project(tmp_path / "cifar")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "train.py")
    git(root, "commit", "-q", "-m", "baseline")
    git(root, "tag", "v1.0")  # existed before the daemon: not a trigger
    cfg = config(tmp_path, fake, cifar(tmp_path, every="1s", on_git_tag=True))
    env = daemon_env(fake, home)
    d = run_daemon(cfg, env=env)
    up(cfg, env)

    wait_for(lambda: fake.count("CreateDataset"), 20, f"a scheduled snapshot\n{d.log}")
    v1 = fake.dataset(DATASET).versions[0]
    assert json.loads(v1.files["syncd-snapshot.json"])["trigger"] == "schedule"
    block = status(cfg, env)["projects"][0]["snapshot"]
    assert re.fullmatch(ISO, block["next_at"] or "")

    git(root, "tag", "-a", "v1.2", "-m", "baseline with lr 3e-4")

    def tag_version() -> str | None:
        for version in fake.dataset(DATASET).versions:
            if "trigger: git tag v1.2" in version.notes:
                return version.notes
        return None

    notes = wait_for(tag_version, 20, f"a version for the tag\n{d.log}")
    assert str(notes).splitlines()[0] == "baseline with lr 3e-4"
    assert not any("v1.0" in v.notes for v in fake.dataset(DATASET).versions)
    time.sleep(1.5)  # later schedule runs find nothing new
    assert len(fake.dataset(DATASET).versions) == 1 + 1
    assert d.stop() == 0


def test_faults_give_clear_errors_and_the_daemon_stays_healthy(
    tmp_path: Path, home: Path, fake: FakeKaggle, run_daemon
) -> None:
    make_project(tmp_path / "cifar")
    make_project(tmp_path / "badmeta")
    cfg = config(
        tmp_path,
        fake,
        cifar(tmp_path),
        cifar(tmp_path, name="badmeta", title="CIFAR", dataset="alice/other-data"),
    )
    env = daemon_env(fake, home, SYNCD_KAGGLE_TIMEOUT_S="0.5", SYNCD_KAGGLE_RETRIES="2")
    d = run_daemon(cfg, env=env)
    up(cfg, env)

    auth = cli(cfg, env, "auth", "kaggle")
    assert auth.returncode == 0, auth.stderr
    assert auth.stdout.strip() == (
        "Kaggle credentials for alice work (legacy key from KAGGLE_USERNAME/KAGGLE_KEY)"
    )

    fake.reset_log()
    bad = cli(cfg, env, "snapshot", "badmeta", "--wait")
    assert bad.returncode != 0
    assert "badmeta: snapshot.title: 'CIFAR' has 5 characters; Kaggle needs 6 to 50" in bad.stderr
    assert fake.requests == []  # refused before any upload

    fake.inject(hang=True, count=2, rpc="GetDatasetStatus")  # both attempts time out
    started = time.monotonic()
    hung = cli(cfg, env, "snapshot", "cifar", "--wait")
    assert hung.returncode == 1
    assert hung.stderr.strip() == (
        "syncd: Kaggle did not answer while checking alice/cifar-code within 0.5 s "
        "(2 attempts) (syncd tries again at the next trigger; check the connection)"
    )
    assert time.monotonic() - started < 20
    after = status(cfg, env)
    assert after["projects"][0]["snapshot"]["status"] == "error"
    assert after["projects"][0]["state"] == "idle" and d.proc.poll() is None

    fake.release()
    fake.inject(status=429, count=1, rpc="GetDatasetStatus", retry_after=0)
    fake.inject(status=503, count=1, rpc="CreateDataset")
    again = cli(cfg, env, "snapshot", "cifar", "--wait")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"{DATASET} v1 is ready")
    calls = [(r.rpc, r.status) for r in fake.requests if r.rpc != "upload"]
    assert ("GetDatasetStatus", 429) in calls and ("CreateDataset", 503) in calls
    assert len(fake.dataset(DATASET).versions) == 1
    assert d.stop() == 0


@pytest.mark.parametrize("auth", ["token_file", "env_token", "kaggle_json"])
def test_snapshots_work_with_each_credential_form_through_404s_and_html_429s(
    tmp_path: Path, home: Path, fake: FakeKaggle, run_daemon, auth: str
) -> None:
    root = make_project(tmp_path / "cifar")
    fake.fresh_404_polls = 3  # kaggle-cli #890
    cfg = config(tmp_path, fake, cifar(tmp_path))
    env = daemon_env(fake, home, auth=auth)
    d = run_daemon(cfg, env=env)
    up(cfg, env)
    page = {"status": 429, "html": True, "retry_after": 0}
    fake.inject(rpc="GetDatasetStatus", count=2, **page)
    fake.inject(rpc="CreateDataset", **page)

    first = cli(cfg, env, "snapshot", "cifar", "--wait")
    assert first.returncode == 0, first.stderr + d.log
    assert first.stdout.startswith(f"{DATASET} v1 is ready (4 files, ")

    (root / "train.py").write_text("print('v2')\n")
    settle(root)
    fake.inject(rpc="CreateDatasetVersion", content_type="application/json", **page)
    second = cli(cfg, env, "snapshot", "cifar", "--wait")
    assert second.returncode == 0, second.stderr + d.log
    assert second.stdout.startswith(f"{DATASET} v2 is ready (4 files, ")

    calls = [(r.rpc, r.status) for r in fake.requests]
    for seen in [("GetDatasetStatus", 404), ("GetDataset", 404), ("GetDatasetStatus", 429)]:
        assert seen in calls
    assert [s for r, s in calls if r == "CreateDataset"] == [429, 200]
    assert [s for r, s in calls if r == "CreateDatasetVersion"] == [429, 200]
    assert len(fake.dataset(DATASET).versions) == 2
    schemes = {r.auth_scheme for r in fake.requests if r.rpc not in ("upload", "download")}
    assert schemes == ({"Basic"} if auth == "kaggle_json" else {"Bearer"})
    assert "Traceback" not in d.log
    assert d.stop() == 0


def test_credentials_stored_by_auth_kaggle_and_one_sentence_without_them(
    tmp_path: Path, home: Path, fake: FakeKaggle
) -> None:
    make_project(tmp_path / "cifar")
    cfg = config(tmp_path, fake, cifar(tmp_path))
    env = daemon_env(fake, home, auth="none")

    missing = cli(cfg, env, "snapshot", "cifar", "--wait")
    assert missing.returncode == 1
    # One error sentence (log lines such as "not mirroring .env" may precede it).
    lines = [line for line in missing.stderr.splitlines() if line.startswith("syncd: ")]
    assert len(lines) == 1 and "Traceback" not in missing.stderr
    assert lines[0].startswith(
        "syncd: no Kaggle credentials found: syncd needs an API token (KAGGLE_API_TOKEN or "
        "~/.kaggle/access_token) or a legacy key (~/.kaggle/kaggle.json or "
        "KAGGLE_USERNAME/KAGGLE_KEY)"
    )
    assert "`syncd auth kaggle -`" in lines[0] and fake.requests == []

    token = fake.issue_token("alice")
    stored = subprocess.run(
        [sys.executable, "-m", "syncd", "auth", "kaggle", "-", "-c", str(cfg)],
        input=token + "\n",
        env=syncd_env(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout.splitlines() == [
        "Saved the API token to ~/.kaggle/access_token (mode 0600).",
        "Kaggle credentials for alice work (API token from ~/.kaggle/access_token)",
    ]
    assert (home / ".kaggle" / "access_token").read_text() == token + "\n"
    assert cli(cfg, env, "snapshot", "cifar", "--wait").returncode == 0

    fake.revoke_token(token)
    rejected = cli(cfg, env, "snapshot", "cifar", "--force", "--wait")
    errors = [line for line in rejected.stderr.splitlines() if line.startswith("syncd: ")]
    assert rejected.returncode == 1 and "Traceback" not in rejected.stderr
    assert len(errors) == 1 and errors[0].startswith(
        "syncd: Kaggle rejected the API token in ~/.kaggle/access_token (create an API token"
    )

    (home / ".kaggle" / "access_token").unlink()
    download = tmp_path / "kaggle.json"
    download.write_text(json.dumps({"username": "alice", "key": "key123"}))
    legacy = cli(cfg, env, "auth", "kaggle", str(download))
    assert legacy.returncode == 0, legacy.stderr
    assert legacy.stdout.splitlines()[-1] == (
        "Kaggle credentials for alice work (legacy key from ~/.kaggle/kaggle.json)"
    )
