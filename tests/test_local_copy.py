"""The ``local:`` copy path: one read per byte, the md5 of what was written, folders made
only when missing, a vanished root never recreated."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from syncd.errors import TargetUnavailable
from syncd.fileio import CHUNK, copy_with_md5
from syncd.remotes.local import TMP_PREFIX, LocalRemote

SIZES = [0, 1, 4096, CHUNK, CHUNK + 1, 3 * CHUNK + 17]


def copy(src: Path, dst: Path) -> tuple[str, int]:
    s = os.open(src, os.O_RDONLY)
    d = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        return copy_with_md5(s, d, src.stat().st_size)
    finally:
        os.close(s)
        os.close(d)


@pytest.mark.parametrize("size", SIZES)
def test_the_copy_is_byte_for_byte_and_its_md5_is_the_sources(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "a").write_bytes(data)
    assert copy(tmp_path / "a", tmp_path / "b") == (hashlib.md5(data).hexdigest(), size)
    assert (tmp_path / "b").read_bytes() == data


def test_without_a_kernel_copy_the_bytes_go_through_a_buffer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """copy_file_range fails with EXDEV across filesystems on older kernels (and ENOSYS,
    EOPNOTSUPP on some FUSE mounts): the copy carries on where it was."""
    calls = []

    def refuse(src: int, dst: int, count: int, offset_src: int, offset_dst: int) -> int:
        calls.append(offset_src)
        if len(calls) > 1:
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        return real(src, dst, count, offset_src, offset_dst)

    real = os.copy_file_range
    monkeypatch.setattr(os, "copy_file_range", refuse)
    data = os.urandom(3 * CHUNK + 5)
    (tmp_path / "a").write_bytes(data)
    assert copy(tmp_path / "a", tmp_path / "b") == (hashlib.md5(data).hexdigest(), len(data))
    assert (tmp_path / "b").read_bytes() == data
    assert calls == [0, CHUNK]  # one chunk in the kernel, then the fallback


def test_a_shrunk_file_copies_what_is_there(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"12345")
    s = os.open(tmp_path / "a", os.O_RDONLY)
    d = os.open(tmp_path / "b", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        assert copy_with_md5(s, d, 100) == (hashlib.md5(b"12345").hexdigest(), 5)
    finally:
        os.close(s)
        os.close(d)


def test_an_upload_makes_missing_folders_and_keeps_the_mtime(tmp_path: Path) -> None:
    src = tmp_path / "w.bin"
    src.write_bytes(b"x" * (2 * CHUNK + 3))
    os.utime(src, ns=(1_000_000_000, 1_234_567_891_234_567_891))
    remote = LocalRemote("local:t", tmp_path / "t")
    remote.check(create=True)
    up = remote.upload("a/b/c/w.bin", src, None)
    dst = tmp_path / "t/a/b/c/w.bin"
    assert dst.read_bytes() == src.read_bytes()
    assert dst.stat().st_mtime_ns == src.stat().st_mtime_ns
    assert up.md5 == hashlib.md5(src.read_bytes()).hexdigest() == up.entry.md5
    assert up.entry.rev == f"{dst.stat().st_size}:{dst.stat().st_mtime_ns}"
    assert [p.name for p in dst.parent.iterdir()] == ["w.bin"]  # no temp file left
    assert not any(p.name.startswith(TMP_PREFIX) for p in (tmp_path / "t").rglob("*"))


def test_an_upload_never_recreates_a_vanished_root(tmp_path: Path) -> None:
    src = tmp_path / "f.txt"
    src.write_text("f")
    remote = LocalRemote("local:t", tmp_path / "t")
    remote.check(create=True)
    (tmp_path / "t").rmdir()  # the disk was unmounted
    with pytest.raises(TargetUnavailable):
        remote.upload("d/f.txt", src, None)
    with pytest.raises(TargetUnavailable):  # "not there" is not "this file is gone"
        remote.stat("d/f.txt", None)
    assert not (tmp_path / "t").exists()
