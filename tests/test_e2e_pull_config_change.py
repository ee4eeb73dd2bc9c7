"""End-to-end: a folder taken out of a multi-folder ``mirror.pull`` (README "Changing
``mirror.pull``") becomes an ordinary mirrored folder: its pulled files stay home and
Colab's Drive files are adopted by md5, nothing goes to either trash; a file that was
pending in it is pending no more."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli, wait_for
from tests.fakes.drive_server import FakeDrive
from tests.test_e2e_pull import (
    colab_writes,
    first_mirror,
    local,
    pull_status,
    setup,
    trashed_copies,
)

pytestmark = pytest.mark.e2e

TWO = {"paths": ["outputs/", "ckpt/"], "interval": "1s"}


@pytest.fixture
def fake(home: Path) -> Iterator[FakeDrive]:
    with FakeDrive() as drive:
        yield drive
    assert drive.internal_errors == []


@pytest.mark.parametrize("how", ["reload", "restart"])
def test_a_folder_dropped_from_pull_is_mirrored_and_nothing_is_trashed(
    tmp_path: Path, home: Path, fake: FakeDrive, run_daemon, how: str
) -> None:
    cfg = setup(tmp_path, home, fake, pull=TWO)
    src = tmp_path / "p"
    d = run_daemon(cfg)
    folder = first_mirror(fake)
    wait_for(lambda: (pull_status(cfg) or {}).get("last_poll"), what="a first poll")
    a = colab_writes(fake, folder, "outputs/a.txt", b"A")
    colab_writes(fake, folder, "ckpt/c.txt", b"C")
    wait_for(lambda: local(src, "outputs/a.txt") == b"A", what="outputs/a.txt pulled")
    wait_for(lambda: local(src, "ckpt/c.txt") == b"C", what="ckpt/c.txt pulled")
    q = colab_writes(fake, folder, "outputs/q.bin", b"Q")
    fake.inject(403, "downloadQuotaExceeded", count=10**6, method="GET", path_contains=q,
                message="The download quota for this file has been exceeded.")  # fmt: skip
    wait_for(lambda: pull_status(cfg)["pending"] == 1, what="outputs/q.bin pending")

    cfg.write_text(cfg.read_text().replace("- outputs/\n", ""))
    if how == "reload":
        assert run_cli("reload", "-c", str(cfg)).returncode == 0
    else:
        d.stop()
        d = run_daemon(cfg)
    wait_for(lambda: pull_status(cfg)["paths"] == ["ckpt/"], what="the new pull list")
    for _ in range(2):  # two polls of the new poller: the first one lists the folders
        polled = pull_status(cfg)["last_poll"]
        wait_for(lambda p=polled: pull_status(cfg)["last_poll"] != p, what="a new poll")
    (src / "train.py").write_text("print('v2')\n")  # the mirror has done a round since
    wait_for(lambda: fake.tree(folder).get("train.py") is not None, what="the mirror alive")
    time.sleep(1.5)

    assert local(src, "outputs/a.txt") == b"A"
    assert trashed_copies(src, "a.txt") == []
    drive_a = fake.find("syncd/p/outputs/a.txt")
    assert drive_a is not None and drive_a["id"] == a  # adopted, not trashed nor re-uploaded
    assert "a.txt" not in [t["title"] for t in fake.trashed()]
    assert len([c for c in fake.children(fake.find("syncd/p/outputs")["id"])
                if c["title"] == "a.txt"]) == 1  # fmt: skip
    assert pull_status(cfg)["pending"] == 0
    assert local(src, "ckpt/c.txt") == b"C"  # still pulled
    assert "was deleted on Drive" not in d.log
    d.stop()
