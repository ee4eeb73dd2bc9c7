"""The index rows kept between transactions (``db.journal``): a crash loses none of them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from syncd.db.statedb import FileRecord, StateDB


def row(path: str, md5: str = "0" * 32) -> FileRecord:
    return FileRecord(path, 3, 1, md5, path, "3:1", time.time(), 7, 9)


def recorder(db: Path, paths: list[str], then: str) -> subprocess.Popen[str]:
    """Another process that records rows and then exits hard or waits for a line."""
    code = textwrap.dedent(
        f"""
        import os, sys, time
        from pathlib import Path
        from syncd.db.statedb import FileRecord, StateDB
        db = StateDB(Path({str(db)!r}))
        for p in {paths!r}:
            db.record_file("p", FileRecord(p, 3, 1, "0" * 32, p, "3:1", time.time(), 7, 9))
        print("recorded", flush=True)
        if {then!r} == "crash":
            os._exit(9)  # no flush, no close: what kill -9 leaves
        sys.stdin.readline()
        db.flush_files()
        print("flushed", flush=True)
        sys.stdin.readline()
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )


def test_a_crash_mid_stream_is_replayed_by_the_next_owner(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    proc = recorder(path, ["a.txt", "dir/b 'q'\n.txt", "café.txt"], "crash")
    assert proc.stdout is not None and proc.stdout.readline() == "recorded\n"
    assert proc.wait(30) == 9
    db = StateDB(path)
    got = db.files("p")
    assert sorted(got) == sorted(["a.txt", "dir/b 'q'\n.txt", "café.txt"])
    assert got["a.txt"].key == (7, 3, 1, 9) and got["a.txt"].md5 == "0" * 32
    assert Path(f"{path}-rows").stat().st_size == 0
    db.close()
    assert len(StateDB(path).files("p")) == 3  # replayed once, kept


def test_a_second_process_leaves_a_live_recorders_journal_alone(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    proc = recorder(path, ["a.txt", "b.txt"], "wait")
    assert proc.stdout is not None and proc.stdout.readline() == "recorded\n"
    try:
        other = StateDB(path)  # e.g. `syncd status` while the daemon copies
        assert other.files("p") == {}
        assert Path(f"{path}-rows").stat().st_size > 0  # still the recorder's
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "flushed\n"
        assert sorted(other.files("p")) == ["a.txt", "b.txt"]
        assert Path(f"{path}-rows").stat().st_size == 0
        other.close()
    finally:
        proc.kill()
        proc.wait(30)


def test_kept_rows_land_before_any_later_write(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.db")
    db.record_file("p", row("a.txt"))
    db.record_file("p", row("b.txt"))
    assert db.files("p") == {}  # kept, not written yet
    db.forget_files("p", ["a.txt"])  # a later write: the kept rows go first, then this
    assert sorted(db.files("p")) == ["b.txt"]
    assert db.project("p").last_sync is not None
    db.record_file("p", row("c.txt"))
    db.close()  # closing writes what is kept
    assert sorted(StateDB(tmp_path / "state.db").files("p")) == ["b.txt", "c.txt"]


def test_a_damaged_or_cut_journal_entry_is_skipped_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    proc = recorder(path, ["a.txt", "b.txt", "c.txt"], "crash")
    assert proc.stdout is not None and proc.stdout.readline() == "recorded\n"
    assert proc.wait(30) == 9
    journal = Path(f"{path}-rows").read_bytes()
    entry = len(journal) // 3  # three entries of one size
    damaged = journal[entry : entry + 4] + b"\xff" * (entry - 4)  # b: right length, bad bytes
    cut = journal[2 * entry : -3]  # c: cut short, as by a power loss
    Path(f"{path}-rows").write_bytes(journal[:entry] + damaged + cut)
    assert sorted(StateDB(path).files("p")) == ["a.txt"]


def test_two_indexes_on_one_file_in_one_process_never_hang(tmp_path: Path) -> None:
    first, second = StateDB(tmp_path / "state.db"), StateDB(tmp_path / "state.db")
    first.record_file("p", row("a.txt"))
    second.record_file("p", row("b.txt"))  # the journal's lock is the first one's
    second.flush_files()
    first.flush_files()
    assert sorted(first.files("p")) == ["a.txt", "b.txt"]
