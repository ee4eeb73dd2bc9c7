"""End-to-end: the return path when Drive holds several items with one title (review-2 #1–#3, #5).

Drive allows equal titles in one folder; Colab makes them (an atomic save —
write ``ckpt.pt.tmp``, rename it over ``ckpt.pt`` — leaves two ``ckpt.pt`` for
a moment; two processes racing on ``makedirs`` make two ``run1`` folders).
The real ``syncd run`` polls the fake every second; changes made while the
project is paused arrive in one poll, in Drive's order.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import run_cli, wait_for
from tests.fakes.drive_server import COLAB, FakeDrive
from tests.gdrive_support import uploads
from tests.test_e2e_pull import fake, first_mirror, local, pull_status, setup, trashed_copies

pytestmark = pytest.mark.e2e
__all__ = ["fake"]  # the fixture, shared

FOLDER = "application/vnd.google-apps.folder"


def polled_after(cfg: Path, when: float) -> bool:
    """A poll that started after ``when`` has finished (``last_poll`` is whole seconds)."""
    last = pull_status(cfg)["last_poll"]
    return bool(last) and time.strptime(last, "%Y-%m-%dT%H:%M:%SZ") > time.gmtime(when + 1)


def in_one_poll(cfg: Path, act: object) -> None:
    """Run ``act`` while the project is paused, so that its changes come in one poll."""
    assert run_cli("pause", "p", "-c", str(cfg)).returncode == 0
    time.sleep(1.5)  # a poll under way finishes
    act()  # type: ignore[operator]
    assert run_cli("resume", "p", "-c", str(cfg)).returncode == 0


def test_an_atomic_save_on_drive_brings_the_new_version_in_either_order(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    d = run_daemon(cfg)
    folder = first_mirror(fake)
    first = fake.put_file("outputs/ckpt.pt", b"epoch 1", parent_id=folder, by=COLAB)
    wait_for(lambda: local(src, "outputs/ckpt.pt") == b"epoch 1", what="epoch 1")
    out = fake.find("syncd/p/outputs")["id"]
    current = first
    for n, new_first in ((2, True), (3, False)):
        data = f"epoch {n}".encode()

        def save(old: str = current, data: bytes = data, new_first: bool = new_first) -> None:
            if not new_first:
                fake.trash(old)
            new = fake.put_file("ckpt.pt.tmp", data, parent_id=out, by=COLAB)
            fake.move(new, out, title="ckpt.pt")
            if new_first:
                fake.trash(old)  # the new file had the title first, then the old one left

        in_one_poll(cfg, save)
        wait_for(lambda data=data: local(src, "outputs/ckpt.pt") == data, what=f"epoch {n}")
        start = time.time()
        wait_for(lambda start=start: polled_after(cfg, start), what="two more polls")
        assert local(src, "outputs/ckpt.pt") == data  # and it stays
        current = fake.ids(out)["ckpt.pt"]
    st = pull_status(cfg)
    assert st["last_error"] is None and st["pending"] == 0
    assert sorted(p.read_bytes() for p in trashed_copies(src, "ckpt.pt")) in ([b"epoch 2"], [])
    d.stop()


def test_when_the_file_at_a_path_goes_the_remaining_file_with_its_title_comes_down(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    d = run_daemon(cfg)
    folder = first_mirror(fake)
    a = fake.put_file("outputs/x.txt", b"A", parent_id=folder, by=COLAB)
    wait_for(lambda: local(src, "outputs/x.txt") == b"A", what="A")
    b = fake.put_file("outputs/x.txt", b"B", parent_id=folder, by=COLAB)  # a second x.txt
    wait_for(lambda: local(src, "outputs/x.txt") == b"B", what="the latest change wins")
    fake.trash(b)
    wait_for(lambda: local(src, "outputs/x.txt") == b"A", what="A back: it is still on Drive")
    # Both in one poll: C and D made, then D trashed.
    out = fake.find("syncd/p/outputs")["id"]

    def two() -> None:
        fake.put_file("y.txt", b"C", parent_id=out, by=COLAB)
        fake.trash(fake.put_file("y.txt", b"D", parent_id=out, by=COLAB))

    in_one_poll(cfg, two)
    wait_for(lambda: local(src, "outputs/y.txt") == b"C", what="C, the one left on Drive")
    fake.trash(a)
    wait_for(lambda: local(src, "outputs/x.txt") is None, what="x.txt gone with the last copy")
    assert pull_status(cfg)["last_error"] is None
    d.stop()


def test_folders_sharing_a_title_keep_their_own_files(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    d = run_daemon(cfg)
    folder = first_mirror(fake)
    fake.put_file("outputs/seed.txt", b"s", parent_id=folder, by=COLAB)
    wait_for(lambda: local(src, "outputs/seed.txt") == b"s", what="outputs/ pulled")
    out = fake.find("syncd/p/outputs")["id"]
    one = fake._seed(out, "run1", FOLDER, None, COLAB).id  # two run1 folders, as Drive allows
    two = fake._seed(out, "run1", FOLDER, None, COLAB).id
    fake.put_file("a.txt", b"a", parent_id=one, by=COLAB)
    fake.put_file("b.txt", b"b", parent_id=two, by=COLAB)
    wait_for(lambda: local(src, "outputs/run1/a.txt") == b"a", what="a.txt")
    wait_for(lambda: local(src, "outputs/run1/b.txt") == b"b", what="b.txt")
    d.stop()
    d = run_daemon(cfg)  # a start lists both folders: both files stay
    start = time.time()
    wait_for(lambda: polled_after(cfg, start), what="polls after the restart")
    assert local(src, "outputs/run1/a.txt") == b"a" and local(src, "outputs/run1/b.txt") == b"b"
    assert trashed_copies(src, "b.txt") == [] and "b.txt was" not in d.log
    fake.trash(one)
    wait_for(lambda: local(src, "outputs/run1/a.txt") is None, what="a.txt trashed with run1 #1")
    start = time.time()
    wait_for(lambda: polled_after(cfg, start), what="two more polls")
    assert local(src, "outputs/run1/b.txt") == b"b"  # its folder is still on Drive
    assert trashed_copies(src, "b.txt") == []
    d.stop()


def test_a_file_titled_like_the_pull_folder_is_not_pulled(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon
) -> None:
    cfg = setup(tmp_path, home, fake)
    src = tmp_path / "p"
    d = run_daemon(cfg)
    folder = first_mirror(fake)
    wait_for(lambda: pull_status(cfg)["last_poll"], what="a first poll")
    fake.put_file("outputs", b"a file, not the folder", parent_id=folder, by=COLAB)
    start = time.time()
    wait_for(lambda: polled_after(cfg, start), what="two more polls")
    assert not (src / "outputs").exists()
    fake.put_file("outputs/in.txt", b"inside", parent_id=folder, by=COLAB)
    wait_for(lambda: local(src, "outputs/in.txt") == b"inside", what="the file inside")
    assert (src / "outputs").is_dir()
    assert [p.name for p in src.iterdir() if p.name.startswith(".syncd-tmp")] == []
    (src / "train.py").write_text("print('v2')\n")
    wait_for(lambda: "train.py" in uploads(fake)[1:], what="an unrelated edit mirrored")
    assert [t for t in uploads(fake) if t in ("outputs", "in.txt")] == []
    assert pull_status(cfg)["files_pulled"] == 1
    d.stop()
