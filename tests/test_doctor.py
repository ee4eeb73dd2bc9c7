"""``syncd doctor`` checks what it says (issue #11): it fails, with the fix printed, for an
unwritable ``local:`` target, a snapshot slug Kaggle refuses, credentials the service would
not see and an inotify limit too low for the tree; it passes on a healthy setup."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.cli import doctor as doctor_module
from syncd.cli import main
from tests.conftest import syncd_env, without_read_override, write_config
from tests.fakes.drive_server import APP, FakeDrive
from tests.fakes.kaggle_server import FakeKaggle
from tests.gdrive_support import drive_section, write_credentials


@pytest.fixture(autouse=True)
def no_shell_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)


def project(tmp_path: Path, name: str = "p", to: str | None = None, **extra: object) -> dict:
    (tmp_path / name).mkdir(exist_ok=True)
    (tmp_path / name / "train.py").write_text("print('train')\n")
    target = to or f"local:{tmp_path / (name + '-mirror')}"
    return {"name": name, "path": str(tmp_path / name), "mirror": {"to": target}, **extra}


def doctor(capsys: pytest.CaptureFixture[str], cfg: Path) -> tuple[int, list[str], str]:
    code = main(["doctor", "-c", str(cfg)])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def failures(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("[fail]")]


def test_a_healthy_setup_passes(
    capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path)])
    code, lines, err = doctor(capsys, cfg)
    assert (code, err) == (0, ""), lines
    text = "\n".join(lines)
    assert "is valid (1 project)" in text  # not "1 projects"
    assert "has 1 folder to watch" in text
    assert "state folder" in text and "the clock" in text
    assert f"target local:{tmp_path / 'p-mirror'} will be created at the first sync" in text
    assert "MB free in" in text and "for the target" in text


def test_a_target_syncd_cannot_create_fails_with_the_fix(
    capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path
) -> None:
    (tmp_path / "disk").write_text("a file, not a folder\n")
    cfg = write_config(
        tmp_path / "c.yaml", [project(tmp_path, to=f"local:{tmp_path / 'disk/mirror'}")]
    )
    code, lines, err = doctor(capsys, cfg)
    assert code == 1 and "doctor found 1 problem;" in err and len(err.splitlines()) == 1
    (fail,) = failures(lines)
    assert "cannot create target" in fail and "it is not a folder" in fail
    assert "choose another folder" in fail


@pytest.mark.e2e
def test_an_unwritable_local_target_fails_with_the_fix(home: Path, tmp_path: Path) -> None:
    """Run as a user the permission bits apply to (CI runs as root: setpriv drops the
    override capability, as tests/conftest.py's without_read_override does)."""
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: permission bits do not apply")
    target = tmp_path / "mirror"
    target.mkdir()
    target.chmod(0o555)
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path, to=f"local:{target}")])
    try:
        r = subprocess.run(
            [*without_read_override(), sys.executable, "-m", "syncd", "doctor", "-c", str(cfg)],
            env=syncd_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        target.chmod(0o755)
    assert r.returncode == 1, r.stdout + r.stderr
    (fail,) = failures(r.stdout.splitlines())
    assert f"cannot write to target local:{target}: Permission denied" in fail
    assert f"chmod u+rwx {target}" in fail


@pytest.mark.parametrize(
    ("dataset", "title", "needle"),
    [
        ("alice/cifar", None, "the slug 'cifar' has 5 characters; Kaggle needs 6 to 50"),
        ("alice/CIFAR_code", None, "may only hold lowercase letters, digits and single hyphens"),
        ("alice/cifar-code", "CIFAR", "'CIFAR' has 5 characters; Kaggle needs 6 to 50"),
    ],
)
def test_a_snapshot_setting_kaggle_refuses_fails(
    capsys: pytest.CaptureFixture[str],
    home: Path,
    tmp_path: Path,
    dataset: str,
    title: str | None,
    needle: str,
) -> None:
    snapshot = {"dataset": dataset} | ({"title": title} if title else {})
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path, snapshot=snapshot)])
    store = home / ".kaggle"
    store.mkdir(mode=0o700)
    (store / "kaggle.json").write_text('{"username": "alice", "key": "k"}')
    (store / "kaggle.json").chmod(0o600)
    code, lines, _ = doctor(capsys, cfg)
    assert code == 1
    (fail,) = failures(lines)
    assert needle in fail and "fix it in" in fail


def test_each_snapshot_data_entry_must_hold_files_gitignored_ones_count(
    capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path
) -> None:
    snapshot = {"dataset": "alice/cifar-code", "data": ["data/", "weights/", "extra/"]}
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path, snapshot=snapshot)])
    root = tmp_path / "p"
    for rel in ("data/x.csv", "weights/w.pt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("1,2\n")
    (root / ".gitignore").write_text("data/\nweights/\n")  # git's business, not Kaggle's
    (root / ".syncignore").write_text("weights/\n")  # kept home on purpose
    store = home / ".kaggle"
    store.mkdir(mode=0o700)
    (store / "kaggle.json").write_text('{"username": "alice", "key": "k"}')
    (store / "kaggle.json").chmod(0o600)
    code, lines, _ = doctor(capsys, cfg)
    assert code == 1, lines
    assert "[ok] p: snapshot.data data/ has 1 file, 4 B for alice/cifar-code-data" in lines
    assert failures(lines) == [
        "[fail] p: snapshot.data: weights/ has no files: it is ignored by .syncignore (remove "
        "the rule that matches it from .syncignore, or remove weights/ from snapshot.data)",
        f"[fail] p: snapshot.data: extra has no files: it does not exist in {root} (create it, "
        "or remove extra from snapshot.data)",
    ]


def test_kaggle_credentials_only_in_the_shell_fail_as_the_service_sees_them(
    capsys: pytest.CaptureFixture[str],
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeKaggle,
) -> None:
    fake.add_user("bob", "secret-key-in-the-shell")
    monkeypatch.setenv("KAGGLE_USERNAME", "bob")
    monkeypatch.setenv("KAGGLE_KEY", "secret-key-in-the-shell")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    snapshot = {"dataset": "bob/cifar-code"}
    cfg = write_config(
        tmp_path / "c.yaml",
        [project(tmp_path, snapshot=snapshot)],
        kaggle={"endpoint": fake.url},  # `auth kaggle` checks the stored key with one call
    )
    code, lines, _ = doctor(capsys, cfg)
    assert code == 1
    (fail,) = failures(lines)
    assert "no usable Kaggle credentials where the service looks" in fail
    assert "KAGGLE_USERNAME, KAGGLE_KEY in this shell do not reach a service" in fail
    assert "`syncd auth kaggle --from-env`" in fail
    assert "secret-key-in-the-shell" not in "\n".join(lines)

    # The fix it names: store what the shell holds where the service looks (0600).
    assert main(["auth", "kaggle", "--from-env", "-c", str(cfg)]) == 0
    out = capsys.readouterr().out
    # Where the client reads kaggle.json: ~/.kaggle, or ~/.config/kaggle while there is none.
    saved = home / ".config/kaggle/kaggle.json"
    assert (
        "Saved the legacy key from KAGGLE_USERNAME/KAGGLE_KEY to ~/.config/kaggle/kaggle.json"
        in out
    )
    assert saved.stat().st_mode & 0o777 == 0o600
    assert json.loads(saved.read_text()) == {"username": "bob", "key": "secret-key-in-the-shell"}
    code, lines, _ = doctor(capsys, cfg)
    assert code == 0, failures(lines)
    assert any(
        "Kaggle legacy key for bob in ~/.config/kaggle/kaggle.json, where the service looks first"
        in line
        for line in lines
    ), lines


def test_missing_drive_credentials_fail_with_the_two_ways_out(
    capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path, to="gdrive:/syncd/p")])
    code, lines, _ = doctor(capsys, cfg)
    assert code == 1
    (fail,) = failures(lines)
    assert "Drive credentials" in fail and "syncd auth drive" in fail and "--to local:" in fail


def test_an_inotify_limit_too_low_for_the_tree_fails_with_the_sysctl_line(
    capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = project(tmp_path)
    for i in range(12):
        (tmp_path / "p" / f"d{i}").mkdir()
    cfg = write_config(tmp_path / "c.yaml", [p])
    limit = tmp_path / "max_inotify_watches"
    limit.write_text("10\n")  # what /proc/sys/user/max_inotify_watches says in a small namespace
    monkeypatch.setattr(doctor_module, "INOTIFY_WATCHES_NS", limit)
    code, lines, _ = doctor(capsys, cfg)
    assert code == 1
    (fail,) = failures(lines)
    assert "inotify allows 10 watches and the projects need 13" in fail
    assert "echo fs.inotify.max_user_watches=524288 | sudo tee" in fail and "sysctl" in fail


def test_an_unusable_state_folder_fails(
    capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path
) -> None:
    (home / ".local/state/syncd").write_text("a file where the index goes\n")
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path)])
    code, lines, _ = doctor(capsys, cfg)
    assert code == 1
    (fail,) = failures(lines)
    assert "the state folder" in fail and "not a folder" in fail and "XDG_STATE_HOME" in fail


def test_a_broken_config_is_2(
    capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("projects: [\n")
    code, lines, err = doctor(capsys, cfg)
    assert code == 2 and lines[0].startswith("[fail] ") and "not valid YAML" in lines[0]
    assert "doctor found 1 problem" in err


# --- Drive targets, against the fake Drive ------------------------------------------------------


@pytest.fixture
def drive(home: Path) -> Iterator[FakeDrive]:
    with FakeDrive() as fake:
        yield fake


def _drive_config(tmp_path: Path, fake: FakeDrive, creds: Path) -> Path:
    return write_config(
        tmp_path / "c.yaml",
        [project(tmp_path, to="gdrive:/syncd/p")],
        drive=drive_section(fake, creds),
    )


def test_a_drive_target_is_reached_with_the_saved_credentials(
    capsys: pytest.CaptureFixture[str],
    home: Path,
    tmp_path: Path,
    drive: FakeDrive,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    creds = write_credentials(drive, tmp_path / "drive-credentials.json")
    cfg = _drive_config(tmp_path, drive, creds)
    code, lines, _ = doctor(capsys, cfg)
    assert code == 0, failures(lines)
    # Under drive.file a token that answers proves little: doctor finds or, before the
    # first sync, makes the project's folder, as the daemon's first sync would (issue #9).
    made = drive.find("syncd/p", app=APP)
    assert made is not None
    assert any(
        f"syncd made gdrive:/syncd/p on Google Drive (folder id {made['id']})" in ln for ln in lines
    ), lines
    code, lines, _ = doctor(capsys, cfg)
    assert code == 0 and any("syncd reaches gdrive:/syncd/p" in ln for ln in lines), lines

    drive.revoke_all()
    code, lines, _ = doctor(capsys, cfg)
    assert code == 1
    (fail,) = failures(lines)
    assert "Google Drive refuses the credentials" in fail and "syncd auth drive" in fail


def test_a_train_setting_kaggle_refuses_fails(
    capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path
) -> None:
    p = project(
        tmp_path,
        snapshot={"dataset": "alice/cifar-code"},
        train={"machine_shape": "NvidiaV100"},
    )
    cfg = write_config(tmp_path / "c.yaml", [p])
    store = home / ".kaggle"
    store.mkdir(mode=0o700)
    (store / "kaggle.json").write_text('{"username": "alice", "key": "k"}')
    (store / "kaggle.json").chmod(0o600)
    code, lines, _ = doctor(capsys, cfg)
    assert code == 1
    (fail,) = failures(lines)
    assert "p: train.machine_shape: 'NvidiaV100' is not a Kaggle accelerator id" in fail
    assert "NvidiaTeslaT4" in fail
