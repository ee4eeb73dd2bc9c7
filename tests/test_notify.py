"""sd_notify over a real AF_UNIX datagram socket, standing in for systemd."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.service.sd_notify import SystemdNotifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket and the NOTIFY_SOCKET value that reaches it."""
    path = tmp_path / "notify.sock"
    if len(os.fsencode(path)) > 100:  # sun_path holds 108 bytes; pytest's paths can be long
        path = Path(tempfile.mkdtemp(prefix="sdn")) / "n.sock"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(str(path))
            sock.settimeout(2)
            yield sock, str(path)
    finally:
        if path.parent != tmp_path:
            shutil.rmtree(path.parent, ignore_errors=True)


def receive(sock: socket.socket) -> dict[str, str]:
    lines = sock.recv(4096).decode().split("\n")
    return dict(line.split("=", 1) for line in lines)


def test_ready_sends_one_datagram_with_ready_and_status(listener) -> None:
    sock, address = listener
    notifier = SystemdNotifier({"NOTIFY_SOCKET": address})
    assert notifier.enabled

    notifier.ready("idle, 3 projects")

    assert receive(sock) == {"READY": "1", "STATUS": "idle, 3 projects"}


def test_status_watchdog_and_stopping(listener) -> None:
    sock, address = listener
    notifier = SystemdNotifier({"NOTIFY_SOCKET": address})

    notifier.status("syncing cifar: 4 pending")
    notifier.watchdog()
    notifier.stopping()

    assert receive(sock) == {"STATUS": "syncing cifar: 4 pending"}
    assert receive(sock) == {"WATCHDOG": "1"}
    assert receive(sock)["STOPPING"] == "1"


def test_notify_sends_arbitrary_fields_in_order(listener) -> None:
    sock, address = listener
    SystemdNotifier({"NOTIFY_SOCKET": address}).notify(STATUS="x", MAINPID="42")
    assert sock.recv(4096) == b"STATUS=x\nMAINPID=42"


def test_newline_in_a_value_cannot_inject_a_field(listener) -> None:
    sock, address = listener
    SystemdNotifier({"NOTIFY_SOCKET": address}).status("bad name\nREADY=1")
    assert receive(sock) == {"STATUS": "bad name READY=1"}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets are Linux-only")
def test_abstract_namespace_socket() -> None:
    name = f"syncd-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)

        SystemdNotifier({"NOTIFY_SOCKET": "@" + name}).ready("up")

        assert receive(sock) == {"READY": "1", "STATUS": "up"}


def test_disabled_without_notify_socket() -> None:
    notifier = SystemdNotifier({})
    assert not notifier.enabled
    assert notifier.watchdog_interval is None
    notifier.ready("idle")  # no socket, no error
    notifier.watchdog()
    notifier.stopping()


def test_reads_os_environ_by_default(listener, monkeypatch: pytest.MonkeyPatch) -> None:
    sock, address = listener
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    SystemdNotifier().watchdog()
    assert receive(sock) == {"WATCHDOG": "1"}


def test_unreachable_socket_never_raises(tmp_path: Path, caplog) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.enabled
    with caplog.at_level("DEBUG", logger="syncd.notify"):
        notifier.ready("idle")
    assert "sd_notify" in caplog.text


def test_no_watchdog_without_a_socket() -> None:
    assert SystemdNotifier({"WATCHDOG_USEC": "60000000"}).watchdog_interval is None


def test_unsupported_socket_kind_is_disabled() -> None:
    assert not SystemdNotifier({"NOTIFY_SOCKET": "vsock:2:1234"}).enabled


@pytest.mark.parametrize(
    ("env", "interval"),
    [
        ({"WATCHDOG_USEC": "60000000"}, 30.0),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid())}, 30.0),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
    ids=["usec", "own-pid", "other-pid", "zero", "garbage", "unset"],
)
def test_watchdog_interval(env: dict[str, str], interval: float | None) -> None:
    assert SystemdNotifier({"NOTIFY_SOCKET": "@x", **env}).watchdog_interval == interval
