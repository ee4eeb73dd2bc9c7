"""End-to-end: `syncd flush`, `syncd colab` and the printed cell: real daemon, fake Drive.

The daemon runs as a subprocess mirroring into FakeDrive; the cell `syncd colab`
prints runs in another Python process with only ``google.colab`` stubbed
(tests/colab_support.py), the real google-auth and googleapiclient reaching
the fake through ``SYNCD_DRIVE_ENDPOINT``.  What is checked is what the fake
holds and what the "/content" folder holds, and the requests the fake saw.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.mirror.manifest import MANIFEST_PATH
from tests.colab_support import colab_env, drive_requests, stub_dir
from tests.conftest import run_cli, tree, wait_for, write_config
from tests.fakes.drive_server import FakeDrive
from tests.gdrive_support import drive_section, files_below, write_credentials

pytestmark = pytest.mark.e2e


@pytest.fixture
def fake(home: Path) -> Iterator[FakeDrive]:
    with FakeDrive() as drive:
        drive.set_write_limit(None)
        yield drive
    assert drive.internal_errors == []


def setup(
    tmp_path: Path, home: Path, fake: FakeDrive, delay: str = "100ms", max_delay: str = "10s"
) -> Path:
    src = tmp_path / "p"
    src.mkdir(exist_ok=True)
    (src / "train.py").write_text("import model\nprint('value', model.VALUE)\n")
    (src / "model.py").write_text("VALUE = 1\n")
    creds = write_credentials(fake, home / ".config/syncd/drive-credentials.json")
    mirror = {"to": "gdrive:/syncd/p", "delay": delay, "max_delay": max_delay}
    project = {"name": "p", "path": str(src), "mirror": mirror}
    return write_config(tmp_path / "c.yaml", [project], drive=drive_section(fake, creds))


def manifest(fake: FakeDrive) -> dict:
    item = fake.find(f"syncd/p/{MANIFEST_PATH}")
    assert item is not None, "no manifest on the fake Drive"
    return json.loads(fake.content(item["id"]))


def test_flush_returns_only_once_the_edit_is_on_a_slow_drive(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    # A quiet window of 30 s: only the flush's own walk can bring the edit over in time.
    cfg = setup(tmp_path, home, fake, delay="30s", max_delay="60s")
    run_daemon(cfg)
    wait_for(lambda: fake.find(f"syncd/p/{MANIFEST_PATH}"), what="first manifest")
    fake.latency = 0.3  # every request takes 0.3 s
    (tmp_path / "p/model.py").write_text("VALUE = 2\n")
    (tmp_path / "p/new.py").write_text("NEW = True\n")
    started = time.monotonic()
    r = run_cli("flush", "p", "--json", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    took = time.monotonic() - started
    # what the fake holds now, without waiting: the edits and the manifest covering them
    assert files_below(fake) == tree(tmp_path / "p")
    m = manifest(fake)
    (done,) = json.loads(r.stdout)["projects"]
    assert done["seq"] == m["seq"] >= 2
    assert m["files"]["model.py"]["md5"] == tree(tmp_path / "p")["model.py"]
    assert set(m["files"]) == {"train.py", "model.py", "new.py"}
    assert took < 25  # not the 30 s quiet window
    status = json.loads(run_cli("status", "--json", "-c", str(cfg)).stdout)["projects"][0]
    # the flush's walk mirrored what the events had announced: nothing left for the window
    assert (status["state"], status["mirror"]["pending"]) == ("idle", 0), status
    assert status["manifest"]["seq"] == m["seq"]
    assert status["manifest"]["id"] == fake.find(f"syncd/p/{MANIFEST_PATH}")["id"]
    assert status["manifest"]["at"] == m["at"][:19] + "Z" or status["manifest"]["at"] == m["at"]
    assert f"manifest {m['seq']}, written " in run_cli("status", "-c", str(cfg)).stdout
    human = run_cli("flush", "-c", str(cfg))
    assert human.returncode == 0 and human.stdout.startswith(
        f"p: every edit is on gdrive:/syncd/p; manifest {m['seq']} ("
    )


def test_flush_fails_with_the_reason_when_paused(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    run_daemon(cfg)
    wait_for(lambda: fake.find(f"syncd/p/{MANIFEST_PATH}"), what="first manifest")
    assert run_cli("pause", "p", "-c", str(cfg)).returncode == 0
    (tmp_path / "p/model.py").write_text("VALUE = 2\n")
    started = time.monotonic()
    r = run_cli("flush", "p", "--timeout", "20", "-c", str(cfg))
    assert r.returncode == 1
    assert "p is paused: paused by the user; resume it with `syncd resume p`" in r.stderr
    assert time.monotonic() - started < 15  # at once, not at the timeout
    assert "Traceback" not in r.stderr


def test_flush_needs_the_daemon(tmp_path: Path, home: Path, fake: FakeDrive) -> None:
    cfg = setup(tmp_path, home, fake)
    r = run_cli("flush", "-c", str(cfg))
    assert r.returncode == 3
    assert "syncd is not running" in r.stderr and "syncd sync --once" in r.stderr


def run_cell(
    cell: Path, fake: FakeDrive, tmp_path: Path, *, credentials: bool = True
) -> subprocess.CompletedProcess[str]:
    """The printed cell in a fresh Python, as Colab would run it (google.colab stubbed)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path / "colab-home"),
        "PYTHONPATH": str(stub_dir(tmp_path)),
        **colab_env(fake, tmp_path, credentials=credentials),
    }
    return subprocess.run(
        [sys.executable, str(cell)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_printed_cell_runs_end_to_end(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    run_daemon(cfg)
    wait_for(lambda: fake.find(f"syncd/p/{MANIFEST_PATH}"), what="first manifest")
    r = run_cli("colab", "p", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert "paste this into a Colab cell" in r.stderr
    assert (src / ".syncd/colab.py").is_file()  # the helper, mirrored like any file
    cell = tmp_path / "cell.py"
    # the notebook's own code after the cell: it runs the fresh project code
    cell.write_text(r.stdout + "import runpy; runpy.run_path('train.py')\n")
    content = tmp_path / "content/p"

    first = run_cell(cell, fake, tmp_path)
    assert first.returncode == 0, first.stderr
    assert {p: h for p, h in tree(content).items() if "__pycache__" not in p} == tree(src)
    assert "fresh as of " in first.stdout and "value 1" in first.stdout

    (src / "model.py").write_text("VALUE = 2\n")
    assert run_cli("flush", "p", "-c", str(cfg)).returncode == 0
    fake.reset_log()
    second = run_cell(cell, fake, tmp_path)
    assert second.returncode == 0, second.stderr
    assert "1 file updated" in second.stdout and "value 2" in second.stdout
    assert len(drive_requests(fake)) == 2  # the manifest, then model.py

    fake.reset_log()
    third = run_cell(cell, fake, tmp_path)
    assert third.returncode == 0, third.stderr
    assert "0 files updated" in third.stdout
    assert [f"{r.method} {r.path}" for r in fake.requests] == drive_requests(fake)
    assert len(fake.requests) == 1  # a re-run with nothing changed: one request


def test_the_printed_cell_leaves_a_users_link_and_what_it_points_at_alone(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    """review-1 defect 1: /content/p/data -> the user's folder elsewhere; the laptop adds,
    then deletes data/labels.csv: the user's labels.csv behind the link is neither
    overwritten nor deleted, the link stays, and the cell keeps working."""
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    run_daemon(cfg)
    wait_for(lambda: fake.find(f"syncd/p/{MANIFEST_PATH}"), what="first manifest")
    r = run_cli("colab", "p", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    cell = tmp_path / "cell.py"
    cell.write_text(r.stdout)
    assert run_cell(cell, fake, tmp_path).returncode == 0
    theirs = tmp_path / "MyDrive-data"
    theirs.mkdir()
    (theirs / "labels.csv").write_text("THE USER'S OWN LABELS\n")
    link = tmp_path / "content/p/data"
    link.symlink_to(theirs)

    (src / "data").mkdir()
    (src / "data/labels.csv").write_text("id,label\n")
    (src / "model.py").write_text("VALUE = 2\n")
    assert run_cli("flush", "p", "-c", str(cfg)).returncode == 0
    added = run_cell(cell, fake, tmp_path)
    assert added.returncode == 0, added.stderr
    assert f"syncd: data/ is a symlink in {tmp_path / 'content/p'}: data/labels.csv left alone" in (
        added.stdout
    )
    assert added.stdout.strip().splitlines()[-1].startswith("NOT fresh: 1 entry refused (")
    assert (theirs / "labels.csv").read_text() == "THE USER'S OWN LABELS\n"
    assert (tmp_path / "content/p/model.py").read_text() == "VALUE = 2\n"

    (src / "data/labels.csv").unlink()
    assert run_cli("flush", "p", "-c", str(cfg)).returncode == 0
    for _ in range(2):
        again = run_cell(cell, fake, tmp_path)
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip().splitlines()[-1].startswith("fresh as of ")
    assert (theirs / "labels.csv").read_text() == "THE USER'S OWN LABELS\n"
    assert link.is_symlink() and [p.name for p in theirs.iterdir()] == ["labels.csv"]


def test_colab_without_a_daemon_mirrors_once(tmp_path: Path, home: Path, fake: FakeDrive) -> None:
    cfg = setup(tmp_path, home, fake)
    r = run_cli("colab", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    m = manifest(fake)
    helper_id = m["files"][".syncd/colab.py"]["id"]
    assert f"HELPER_ID = {helper_id!r}" in r.stdout
    assert "/content/drive/MyDrive/syncd/p" in r.stdout


def test_the_cell_for_an_id_target_without_the_api_is_one_sentence(
    tmp_path: Path, home: Path, fake: FakeDrive
) -> None:
    """A gdrive:id= target has no known path on the mounted Drive: the cell's first run
    with the API out of reach says so and what to do (it used to fail with a TypeError
    joining None, review-1 defect 16)."""
    folder_id = fake.mkdir("shared-folder")
    src = tmp_path / "p"
    src.mkdir()
    (src / "a.py").write_text("A = 1\n")
    creds = write_credentials(fake, home / ".config/syncd/drive-credentials.json", scope="full")
    project = {"name": "p", "path": str(src), "mirror": {"to": f"gdrive:id={folder_id}"}}
    drive = {**drive_section(fake, creds), "scope": "full"}
    cfg = write_config(tmp_path / "c.yaml", [project], drive=drive)
    r = run_cli("colab", "p", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert '"mounted": None' in r.stdout
    cell = tmp_path / "cell.py"
    cell.write_text(r.stdout)
    out = run_cell(cell, fake, tmp_path, credentials=False)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and "TypeError" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("syncd: the Drive API is out of reach (")
    assert "gdrive:id=" in line and "no mounted-Drive path to fall back on" in line
    assert "authenticate_user()" in line
    assert not (tmp_path / "content/p/.syncd/colab.py").exists()


def test_colab_refuses_a_local_target(tmp_path: Path, home: Path) -> None:
    (tmp_path / "p").mkdir()
    project = {"name": "p", "path": str(tmp_path / "p"), "mirror": {"to": f"local:{tmp_path}/t"}}
    cfg = write_config(tmp_path / "c.yaml", [project])
    r = run_cli("colab", "p", "-c", str(cfg))
    assert r.returncode == 2
    assert "`syncd colab` needs a gdrive: target" in r.stderr and "Traceback" not in r.stderr
