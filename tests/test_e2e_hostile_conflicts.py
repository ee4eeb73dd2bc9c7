"""Hostile: conflict copies must never overwrite each other (issue #8, "Conflict copies").

The README: "A target file that syncd did not write, or that changed there since
syncd wrote it, is never overwritten: it is renamed to NAME (conflict …).EXT first."
Each remote version displaced by a local edit must survive as its own copy.
"""

from __future__ import annotations

import time

import pytest

from tests.chaos.targets import CONFLICT, REMOTES, md5_bytes
from tests.conftest import wait_for

pytest_plugins = ["tests.chaos.fixtures"]  # the drive and scenario fixtures
pytestmark = pytest.mark.e2e  # every test here starts syncd as a subprocess

pytestmark = pytest.mark.e2e  # every test here starts syncd as a subprocess

ROUNDS = 10  # even at 0.5 s a round (a loaded machine), some share a second


@pytest.mark.parametrize("remote", REMOTES)
def test_two_remote_edits_within_a_second_keep_both_conflict_copies(scenario, remote) -> None:
    sc = scenario(remote, delay="100ms")
    (sc.src / "a.txt").write_text("v0\n")
    d = sc.start()
    wait_for(lambda: sc.target.read("a.txt") == b"v0\n", what="first mirror")

    remote_versions = []
    for i in range(ROUNDS):  # ~0.1-0.3 s a round: several land in one wall-clock second
        theirs = f"edited on the target, round {i}\n".encode()
        remote_versions.append(md5_bytes(theirs))
        sc.target.edit("a.txt", theirs)
        ours = f"local edit {i}\n".encode()
        (sc.src / "a.txt").write_bytes(ours)
        wait_for(lambda o=ours: sc.target.read("a.txt") == o, what=f"round {i}")
    sc.quiet(d)

    kept = {p: h for p, h in sc.target.live().items() if CONFLICT.search(p)}
    assert sc.target.duplicates() == [], "two live items with one conflict title"
    missing = [h for h in remote_versions if h not in kept.values()]
    assert missing == [], f"{len(missing)} of {ROUNDS} remote versions lost; kept: {sorted(kept)}"
    assert len(kept) == ROUNDS
    st = d.status()
    assert st is not None and st["projects"][0]["mirror"]["conflicts"] == ROUNDS


@pytest.mark.parametrize("remote", REMOTES)
def test_a_conflict_copy_is_reported_once_and_the_local_version_wins(scenario, remote) -> None:
    """The baseline the test above builds on: one conflict is handled as the README says."""
    sc = scenario(remote, delay="100ms")
    (sc.src / "a.txt").write_text("v0\n")
    d = sc.start()
    wait_for(lambda: sc.target.read("a.txt") == b"v0\n", what="first mirror")
    sc.target.edit("a.txt", b"theirs\n")
    time.sleep(0.05)
    (sc.src / "a.txt").write_text("ours\n")
    wait_for(lambda: sc.target.read("a.txt") == b"ours\n", what="local edit")
    sc.quiet(d)
    kept = [p for p in sc.target.live() if CONFLICT.search(p)]
    assert len(kept) == 1 and sc.target.read(kept[0]) == b"theirs\n"
    assert "conflict" in d.log
