"""End-to-end: the real `syncd run` as a subprocess, real edits, a `local:` target."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import md5, run_cli, tree, wait_for, without_read_override, write_config

pytestmark = pytest.mark.e2e  # every test here runs syncd as a subprocess


def project(tmp_path: Path, name: str = "p", delay: str = "200ms", **mirror: object) -> dict:
    src = tmp_path / name
    src.mkdir(exist_ok=True)
    return {
        "name": name,
        "path": str(src),
        "mirror": {"to": f"local:{tmp_path / (name + '-mirror')}", "delay": delay, **mirror},
    }


def expected(src: Path) -> dict[str, str]:
    """What the mirror must hold: the source minus what syncd never mirrors."""
    never = (".env", "kaggle.json", "id_rsa")
    return {
        p: h
        for p, h in tree(src).items()
        if not p.startswith((".git/", "__pycache__/"))
        and p not in never
        and (not p.endswith(".log") or p == "keep.log")
    }


def converged(src: Path, dst: Path) -> bool:
    return dst.is_dir() and tree(dst) == expected(src)


def test_edits_reach_the_target(tmp_path: Path, run_daemon) -> None:
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path)])
    src, dst = tmp_path / "p", tmp_path / "p-mirror"
    (src / "models").mkdir()
    (src / "models/net.py").write_text("class Net: ...\n")
    (src / "train.py").write_text("print('v1')\n")
    (src / ".gitignore").write_text("*.log\n!keep.log\n")
    (src / "run.log").write_text("noise")
    (src / "keep.log").write_text("kept by negation")
    (src / ".env").write_text("SECRET=1")
    (src / "kaggle.json").write_text('{"key": "x"}')
    (src / "__pycache__").mkdir()
    (src / "__pycache__/x.pyc").write_bytes(b"\0")
    d = run_daemon(cfg)
    wait_for(lambda: converged(src, dst), what="initial mirror")
    assert set(tree(dst)) == {"models/net.py", "train.py", ".gitignore", "keep.log"}

    # modify
    (src / "train.py").write_text("print('v2')\n")
    wait_for(lambda: (dst / "train.py").exists() and md5(dst / "train.py") == md5(src / "train.py"))

    # create in a new folder
    (src / "data/processed").mkdir(parents=True)
    (src / "data/processed/x.csv").write_text("1,2\n")
    wait_for(lambda: converged(src, dst), what="create in new folder")

    # rename a file: moved on the target, not re-copied
    ino = os.stat(dst / "train.py").st_ino
    os.rename(src / "train.py", src / "main.py")
    wait_for(lambda: converged(src, dst), what="file rename")
    assert os.stat(dst / "main.py").st_ino == ino

    # rename a folder: moved, not re-copied
    ino = os.stat(dst / "models/net.py").st_ino
    os.rename(src / "models", src / "nets")
    wait_for(lambda: converged(src, dst), what="folder rename")
    assert os.stat(dst / "nets/net.py").st_ino == ino
    assert not (dst / "models").exists()

    # delete: lands in .syncd-trash
    (src / "data/processed/x.csv").unlink()
    wait_for(lambda: converged(src, dst), what="delete")
    assert (dst / ".syncd-trash/data/processed/x.csv").read_text() == "1,2\n"

    # secrets and ignored files created while running never appear
    (src / "id_rsa").write_text("-----BEGIN")
    (src / "new.log").write_text("ignored")
    (src / "ok.txt").write_text("ok")
    wait_for(lambda: (dst / "ok.txt").exists())
    time.sleep(0.5)
    assert not (dst / "id_rsa").exists() and not (dst / "new.log").exists()
    assert "looks like a secret" in d.log

    # the target changed behind syncd's back → the other version is kept as a conflict copy
    (dst / "main.py").write_text("edited on the target\n")
    (src / "main.py").write_text("print('v3')\n")
    wait_for(
        lambda: (dst / "main.py").exists() and md5(dst / "main.py") == md5(src / "main.py"),
        what="overwrite after conflict",
    )
    kept = [p for p in tree(dst) if p.startswith("main (conflict ")]
    assert len(kept) == 1 and (dst / kept[0]).read_text() == "edited on the target\n"
    assert "conflict" in d.log
    assert d.stop() == 0


N_KILL = 10_000


def files_in(root: Path) -> int:
    """Files under ``root`` (syncd's temporary ones left out), by name only: a cheap poll."""
    return sum(1 for _, _, names in os.walk(root) for n in names if not n.startswith(".syncd-tmp-"))


def test_kill_9_mid_mirror_then_restart_converges_without_recopying(
    tmp_path: Path, run_daemon
) -> None:
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path, workers=2)])
    src, dst = tmp_path / "p", tmp_path / "p-mirror"
    # Enough files that a first mirror (~15,000 files/s on tmpfs since #14) is still under
    # way when the kill comes, and a progress check cheap enough (names, no md5) to poll
    # every millisecond: with 2,000 files and an md5 of the target per 50 ms poll, the
    # mirror was over before the kill on a quiet machine.
    for i in range(N_KILL):
        sub = src / f"d{i % 50:02d}"
        sub.mkdir(exist_ok=True)
        (sub / f"f{i}.txt").write_text(f"file {i}\n" * 20)
    d = run_daemon(cfg)
    deadline = time.monotonic() + 20
    while files_in(dst) < 300:
        assert time.monotonic() < deadline, "timed out waiting for the mirror to get under way"
        time.sleep(0.001)
    d.kill()
    copied = tree(dst)
    assert 0 < len(copied) < N_KILL, "the kill must land in the middle of the mirror"

    # while it is down: edit, delete and add files
    edited = sorted(copied)[:10]
    for rel in edited:
        (src / rel).write_text("edited while down\n")
    deleted = sorted(copied)[10:20]
    for rel in deleted:
        (src / rel).unlink()
    (src / "new-while-down.txt").write_text("new\n")
    untouched = {rel: os.stat(dst / rel).st_ino for rel in copied if rel not in edited + deleted}

    d2 = run_daemon(cfg)
    wait_for(lambda: converged(src, dst), timeout=60, what="convergence after restart")
    assert tree(dst) == tree(src)  # every file's md5 checked
    recopied = [rel for rel, ino in untouched.items() if os.stat(dst / rel).st_ino != ino]
    assert recopied == [], f"{len(recopied)} already-correct files were copied again"
    for rel in deleted:
        assert (dst / ".syncd-trash" / rel).exists()
    assert d2.stop() == 0


def test_sigterm_exits_cleanly(tmp_path: Path, run_daemon) -> None:
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path)])
    (tmp_path / "p/a.txt").write_text("a")
    d = run_daemon(cfg)
    wait_for(lambda: (tmp_path / "p-mirror/a.txt").exists())
    d.signal(signal.SIGTERM)
    assert d.proc.wait(10) == 0
    assert "stopped" in d.log


def test_deleting_the_project_folder_trashes_nothing(tmp_path: Path, run_daemon) -> None:
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path)])
    src, dst = tmp_path / "p", tmp_path / "p-mirror"
    for i in range(20):
        (src / f"f{i}.txt").write_text(str(i))
    d = run_daemon(cfg)
    wait_for(lambda: converged(src, dst))
    shutil.rmtree(src)
    d.wait_log("paused")
    time.sleep(1.0)
    assert len(tree(dst)) == 20 and not (dst / ".syncd-trash").exists()
    assert "is missing" in d.log or "is empty" in d.log

    # the folder comes back: mirroring resumes by itself
    src.mkdir()
    for i in range(20):
        (src / f"f{i}.txt").write_text(str(i))
    (src / "back.txt").write_text("back")
    wait_for(lambda: (dst / "back.txt").exists(), what="resume after the folder is back")
    assert d.stop() == 0


def test_config_pointed_at_an_empty_folder_trashes_nothing(tmp_path: Path, run_daemon) -> None:
    src, dst = tmp_path / "p", tmp_path / "p-mirror"
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path)])
    for i in range(5):
        (src / f"f{i}.txt").write_text(str(i))
    assert run_cli("sync", "--once", "-c", str(cfg)).returncode == 0
    assert len(tree(dst)) == 5
    empty = tmp_path / "empty"
    empty.mkdir()
    conf = project(tmp_path)
    conf["path"] = str(empty)
    write_config(cfg, [conf])
    d = run_daemon(cfg)
    d.wait_log("paused")
    assert len(tree(dst)) == 5
    assert d.stop() == 0


def test_mass_deletion_waits_for_confirmation(tmp_path: Path, run_daemon) -> None:
    src, dst = tmp_path / "p", tmp_path / "p-mirror"
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path)])
    for i in range(100):
        (src / f"f{i}.txt").write_text(str(i))
    d = run_daemon(cfg)
    wait_for(lambda: converged(src, dst))
    for i in range(80):
        (src / f"f{i}.txt").unlink()
    d.wait_log("--confirm-deletes")
    assert len(tree(dst)) == 100
    assert d.stop() == 0
    r = run_cli("sync", "p", "--once", "--confirm-deletes", "-c", str(cfg))
    assert r.returncode == 0, r.stderr
    assert len(tree(dst)) == 20


def test_bad_files_are_skipped_and_the_rest_still_mirrors(tmp_path: Path, run_daemon) -> None:
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path)])
    src, dst = tmp_path / "p", tmp_path / "p-mirror"
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/private.txt").write_text("never")
    os.symlink(tmp_path / "outside", src / "out-link")
    os.symlink(src / "loop", src / "loop")
    (src / "good.txt").write_text("good")
    d = run_daemon(cfg)
    wait_for(lambda: (dst / "good.txt").exists())
    # a file that is created and deleted again and again while other edits go on
    for i in range(30):
        (src / "flicker.tmpfile").write_text("x" * 10000)
        (src / "flicker.tmpfile").unlink()
        (src / f"after{i}.txt").write_text(str(i))
    wait_for(lambda: converged(src, dst), what="other files despite the flicker")
    assert not (dst / "private.txt").exists() and not (dst / "out-link").exists()
    assert "out-link: symlink" in d.log and "loop: symlink" in d.log
    assert d.proc.poll() is None
    assert d.stop() == 0


def test_unreadable_file_is_reported_and_the_rest_mirrors(tmp_path: Path, run_daemon) -> None:
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: chmod 000 files stay readable")
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path)])
    src, dst = tmp_path / "p", tmp_path / "p-mirror"
    (src / "locked.bin").write_text("private")
    (src / "locked.bin").chmod(0)
    (src / "fine.txt").write_text("fine")
    d = run_daemon(cfg, prefix=without_read_override())
    wait_for(lambda: (dst / "fine.txt").exists())
    d.wait_log("skipping locked.bin: cannot read it: Permission denied")
    (src / "later.txt").write_text("later")
    wait_for(lambda: (dst / "later.txt").exists(), what="mirroring goes on")
    assert not (dst / "locked.bin").exists()
    (src / "locked.bin").chmod(0o644)  # fixed by the user: mirrored once it changes
    (src / "locked.bin").write_text("readable now")
    wait_for(lambda: (dst / "locked.bin").exists(), what="retry after the fix")
    assert d.stop() == 0


def test_missing_project_folder_is_reported_and_others_keep_running(
    tmp_path: Path, run_daemon
) -> None:
    good = project(tmp_path, "good")
    missing = project(tmp_path, "gone")
    os.rmdir(tmp_path / "gone")
    cfg = write_config(tmp_path / "c.yaml", [missing, good])
    d = run_daemon(cfg)
    (tmp_path / "good/a.txt").write_text("a")
    wait_for(lambda: (tmp_path / "good-mirror/a.txt").exists())
    d.wait_log("does not exist")
    assert d.stop() == 0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("projects: [\n  {name: x", "not valid YAML"),
        ("projects:\n  - name: x\n    path: .\n    mirorr: {to: 'local:/tmp/x'}\n", "did you mean"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path: Path, home: Path, text: str, needle: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    r = run_cli("run", "-c", str(cfg))
    assert r.returncode == 2
    assert needle in r.stderr and "bad.yaml:" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_second_daemon_on_the_same_config_refuses(tmp_path: Path, run_daemon) -> None:
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path)])
    d = run_daemon(cfg)
    d.wait_log("mirroring")
    r = run_cli("run", "-c", str(cfg))
    assert r.returncode == 1 and f"already running for this config as pid {d.proc.pid}" in r.stderr
    d.kill()
    d2 = run_daemon(cfg)  # kill -9 leaves no stale lock
    d2.wait_log("mirroring")
    assert d2.stop() == 0


def test_edits_arrive_on_a_tree_of_20000_folders(tmp_path: Path, run_daemon) -> None:
    """watchdog's default event mask loops forever on trees this size (see the notes)."""
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path)])
    src, dst = tmp_path / "p", tmp_path / "p-mirror"
    for i in range(20000):
        (src / f"a{i // 200:03d}" / f"b{i:05d}").mkdir(parents=True)
    for i in range(0, 20000, 100):
        (src / f"a{i // 200:03d}" / f"b{i:05d}" / "f.txt").write_text(str(i))
    d = run_daemon(cfg)
    wait_for(lambda: dst.is_dir() and len(tree(dst)) == 200, timeout=120, what="first mirror")
    for k in range(20):
        i = k * 997
        path = src / f"a{i // 200:03d}" / f"b{i:05d}" / "edit.txt"
        path.write_text(f"edit {k}")
        wait_for(lambda p=path: (dst / p.relative_to(src)).exists(), timeout=10, what=f"edit {k}")
    proc = __import__("psutil").Process(d.proc.pid)
    proc.cpu_percent(None)
    time.sleep(3)
    assert proc.cpu_percent(None) < 20, "the daemon should idle, not rescan in a loop"
    assert d.stop() == 0


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 1 MiB tmpfs to fill up (needs root and mount; skipped where neither is there)."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_target_disk_goes_offline_and_loses_nothing(
    tmp_path: Path, run_daemon, small_disk: Path
) -> None:
    conf = project(tmp_path)
    conf["mirror"]["to"] = f"local:{small_disk / 'mirror'}"
    cfg = write_config(tmp_path / "c.yaml", [conf])
    src, dst = tmp_path / "p", small_disk / "mirror"
    (src / "a.txt").write_text("a")
    d = run_daemon(cfg)
    wait_for(lambda: (dst / "a.txt").exists())
    filler = small_disk / "filler.bin"
    with open(filler, "wb") as f:  # someone else fills the disk
        try:
            f.write(b"\0" * (2 * 1024 * 1024))
        except OSError:
            pass
    (src / "big.bin").write_bytes(os.urandom(300 * 1024))
    d.wait_log("is full")
    assert "Traceback" not in d.log
    filler.unlink()
    wait_for(
        lambda: (dst / "big.bin").exists() and md5(dst / "big.bin") == md5(src / "big.bin"),
        timeout=60,
        what="mirror after space was freed",
    )
    assert not list(dst.glob(".syncd-tmp-*"))  # no half-written temp file left behind
    assert d.stop() == 0


@pytest.mark.parametrize("files", [5, 200])  # the per-file path, and the bulk copy (≥ 64)
def test_a_symlink_on_the_target_is_never_written_through(tmp_path: Path, files: int) -> None:
    """A user's link on the target (``lk -> somewhere else``) where the source has a folder
    of that name: syncd wrote ``lk/secret.txt`` into the folder it points at, outside the
    target, and counted it mirrored. Now that file is one file's error; the rest goes."""
    cfg = write_config(tmp_path / "c.yaml", [project(tmp_path)])
    src, dst, outside = tmp_path / "p", tmp_path / "p-mirror", tmp_path / "outside"
    outside.mkdir()
    dst.mkdir()
    os.symlink(outside, dst / "lk")
    (src / "lk").mkdir()
    (src / "lk/secret.txt").write_text("must not leave the target\n")
    for i in range(files):
        (src / f"f{i:03d}.txt").write_text(f"{i}\n")
    r = run_cli("sync", "--once", "-c", str(cfg))
    assert list(outside.iterdir()) == [], "written through the link, outside the target"
    assert r.returncode == 1, r.stdout + r.stderr
    assert "lk/secret.txt" in r.stderr and "lk/ on the target is a symlink" in r.stderr, r.stderr
    assert os.path.islink(dst / "lk")  # the user's link is left alone
    assert sum(1 for p in tree(dst) if p.startswith("f")) == files
