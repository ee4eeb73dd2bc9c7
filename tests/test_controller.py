"""The one control facade, both ways: the daemon's controller over its socket, and the same
controller in this process when no daemon runs (issue #10, "One control facade").

Each test runs twice: ``daemon`` starts the real ``Daemon`` (engines, watcher, socket)
in this process and talks to it through ``ControlClient`` over the socket; ``no daemon``
uses the same ``ControlClient``, which finds nobody listening and carries the request
out in-process.  The answers must be the same.  The Kaggle parts run the real client
against the fake Kaggle.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncd.config import load_config
from syncd.db.statedb import StateDB, state_db_path
from syncd.errors import SyncdError
from syncd.service.daemon import Daemon
from syncd.service.hosts import claim_instance
from syncd.service.ipc import socket_path
from syncd.service.protocol import ControlClient
from tests.conftest import tree, wait_for, write_config
from tests.fakes.kaggle_server import FakeKaggle
from tests.kaggle_support import DATASET, make_project

PATHS = ("daemon", "no daemon")


class Setup:
    """A config with two mirrored projects (one also snapshots) and, maybe, its daemon."""

    def __init__(self, tmp_path: Path, kaggle: FakeKaggle) -> None:
        self.tmp = tmp_path
        self.src = make_project(tmp_path / "cifar")
        (tmp_path / "other").mkdir()
        (tmp_path / "other/o.txt").write_text("o\n")
        self.cfg = write_config(
            tmp_path / "c.yaml",
            [
                self.project(
                    "cifar",
                    ignore=["*.ckpt"],
                    snapshot={"dataset": DATASET, "title": "CIFAR code"},
                ),
                self.project("other"),
            ],
            kaggle={"endpoint": kaggle.url},
        )
        self.daemon: Daemon | None = None
        self.db: StateDB | None = None

    def project(self, name: str, **extra: object) -> dict:
        to = f"local:{self.tmp / (name + '-mirror')}"
        return {"name": name, "path": str(self.tmp / name), "mirror": {"to": to}, **extra}

    def start(self) -> Daemon:
        config = load_config(self.cfg)
        self.lock = claim_instance(config.path)
        self.db = StateDB(state_db_path(config.path))
        self.daemon = Daemon(config, self.db)
        self.daemon.start()
        return self.daemon

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()
            self.daemon = None
        if self.db is not None:
            self.db.close()
            self.db = None
            self.lock.release()

    def client(self, **kw: object) -> ControlClient:
        return ControlClient(self.cfg, **kw)  # type: ignore[arg-type]

    def call(self, cmd: str, **fields: object) -> object:
        with self.client() as ctl:
            result = ctl.call(cmd, **fields)
            assert ctl.in_process is (self.daemon is None)
        return result

    def paused_on_disk(self, name: str) -> str | None:
        db = self.db or StateDB(state_db_path(self.cfg))
        try:
            return db.project(name).paused
        finally:
            if db is not self.db:
                db.close()


@pytest.fixture(params=PATHS)
def setup(
    request: pytest.FixtureRequest, tmp_path: Path, kaggle_env: Path, fake: FakeKaggle
) -> Iterator[Setup]:
    s = Setup(tmp_path, fake)
    if request.param == "daemon":
        s.start()
        wait_for(lambda: _states(s) == {"idle"}, what="both projects idle")
    try:
        yield s
    finally:
        s.stop()


def _states(s: Setup) -> set[str]:
    return {p["state"] for p in s.call("status")["projects"]}  # type: ignore[index]


def _error(call: Callable[[], object]) -> SyncdError:
    with pytest.raises(SyncdError) as info:
        call()
    return info.value


# --- status -------------------------------------------------------------------------------------


def test_status_has_one_shape_on_both_paths(setup: Setup) -> None:
    st = setup.call("status")
    assert isinstance(st, dict)
    assert set(st) == {"running", "pid", "version", "uptime_s", "config_error", "projects"}
    assert st["running"] is (setup.daemon is not None)
    assert [p["name"] for p in st["projects"]] == ["cifar", "other"]
    for p in st["projects"]:
        assert set(p) == {
            "name", "path", "state", "reason", "mirror", "snapshot", "manifest", "runs", "pull"
        }  # fmt: skip
        assert p["pull"] is None  # no mirror.pull (the return path) here
        assert p["mirror"]["to"].startswith("local:")
    assert st["projects"][0]["snapshot"]["dataset"] == DATASET
    assert st["projects"][1]["snapshot"] is None
    one = setup.call("status", project="other")
    assert [p["name"] for p in one["projects"]] == ["other"]  # type: ignore[index]


def test_an_unknown_project_is_a_usage_error_on_both_paths(setup: Setup) -> None:
    for cmd in ("status", "pause", "resume", "sync", "snapshot", "snapshots"):
        err = _error(lambda cmd=cmd: setup.call(cmd, project="nope"))
        assert err.exit_code == 2, (cmd, str(err))
        assert "no project named 'nope'" in str(err) and "cifar, other" in str(err)


# --- pause / resume -----------------------------------------------------------------------------


def test_pause_and_resume_are_recorded_and_obeyed(setup: Setup) -> None:
    paused = setup.call("pause", project="other")
    states = {p["name"]: p["state"] for p in paused["projects"]}  # type: ignore[index]
    assert states == {"other": "paused"}
    assert setup.paused_on_disk("other") == "user" and setup.paused_on_disk("cifar") is None
    if setup.daemon is None:
        setup.start()  # the next start obeys what was recorded without a daemon
    (setup.tmp / "other/while-paused.txt").write_text("recorded\n")
    (setup.src / "new.py").write_text("mirrored\n")
    wait_for(lambda: (setup.tmp / "cifar-mirror/new.py").exists(), what="cifar still mirrors")
    time.sleep(0.5)
    assert not (setup.tmp / "other-mirror/while-paused.txt").exists()
    assert setup.call("status", project="other")["projects"][0]["state"] == "paused"  # type: ignore[index]
    setup.call("resume", project="other")
    wait_for(lambda: (setup.tmp / "other-mirror/while-paused.txt").exists(), what="after resume")
    assert setup.paused_on_disk("other") is None


@pytest.mark.parametrize("path", PATHS)
def test_resume_without_the_word_keeps_a_held_mass_deletion(
    tmp_path: Path, kaggle_env: Path, fake: FakeKaggle, path: str
) -> None:
    s = Setup(tmp_path, fake)
    db = StateDB(state_db_path(s.cfg))
    db.set_paused("other", "deletes", "60 of 70 mirrored files vanished at once")
    db.close()
    if path == "daemon":
        s.start()
    try:
        err = _error(lambda: s.call("resume"))  # all projects: the others resume
        assert err.exit_code == 1 and "syncd resume other --confirm-deletes" in str(err)
        assert s.paused_on_disk("other") == "deletes"
        s.call("resume", project="other", confirm_deletes=True)
        assert s.paused_on_disk("other") is None
    finally:
        s.stop()


# --- sync ---------------------------------------------------------------------------------------


def test_sync_walks_now(setup: Setup) -> None:
    target = setup.tmp / "cifar-mirror"
    if setup.daemon is not None:
        wait_for(lambda: (target / "train.py").exists())
        (target / "train.py").unlink()  # deleted by hand: only a walk puts it back
        assert setup.call("sync", project="cifar") == {"once": False, "projects": ["cifar"]}
        wait_for(lambda: (target / "train.py").exists(), what="the walk")
        return
    with setup.client() as ctl:
        result = ctl.local("sync")
    assert result["once"] is True
    by_name = {p["name"]: p for p in result["projects"]}
    assert by_name["cifar"]["ok"] and by_name["other"]["ok"], result
    assert by_name["cifar"]["files"] == 4 and by_name["cifar"]["problem"] is None
    assert set(tree(target)) == {"train.py", "models/resnet.py", "models/layers/conv.py",
                                 "data/labels.csv"}  # fmt: skip


def test_sync_once_reports_a_missing_folder_as_not_mirrored(
    tmp_path: Path, kaggle_env, fake
) -> None:
    s = Setup(tmp_path, fake)
    (tmp_path / "other/o.txt").unlink()
    (tmp_path / "other").rmdir()
    with s.client() as ctl:
        result = ctl.local("sync")
    other = next(p for p in result["projects"] if p["name"] == "other")
    assert other["ok"] is False and "does not exist" in other["problem"]
    assert next(p for p in result["projects"] if p["name"] == "cifar")["ok"] is True


def test_sync_once_refuses_while_a_daemon_holds_the_config(
    tmp_path: Path, kaggle_env, fake
) -> None:
    s = Setup(tmp_path, fake)
    s.start()
    try:
        with s.client(busy_hint="ask it with `syncd sync`") as ctl:
            err = _error(lambda: ctl.local("sync"))
        assert "already running" in str(err) and "ask it with `syncd sync`" in str(err)
    finally:
        s.stop()


# --- snapshot -----------------------------------------------------------------------------------


def test_snapshot_makes_a_version_on_both_paths(setup: Setup, fake: FakeKaggle) -> None:
    result = setup.call("snapshot", project="cifar", message="first", wait=True)
    assert result["status"] == "ready" and result["version"] == 1, result  # type: ignore[index]
    assert len(fake.dataset(DATASET).versions) == 1
    again = setup.call("snapshot", wait=True)  # the only project with a snapshot section
    assert again["status"] == "unchanged"  # type: ignore[index]
    history = setup.call("snapshots", project="cifar")
    assert [h["version"] for h in history] == [1]  # type: ignore[union-attr,index]
    block = setup.call("status", project="cifar")["projects"][0]["snapshot"]  # type: ignore[index]
    assert block["last_version"] == 1


def test_snapshot_commands_name_the_right_command(setup: Setup) -> None:
    err = _error(lambda: setup.call("snapshot", project="other"))
    assert err.exit_code == 2 and "has no `snapshot:` section" in str(err)


def test_without_a_second_snapshot_project_the_hint_names_the_command(
    tmp_path: Path, kaggle_env, fake
) -> None:
    s = Setup(tmp_path, fake)
    two = [s.project("cifar", snapshot={"dataset": DATASET}),
           s.project("other", snapshot={"dataset": "alice/other-code"})]  # fmt: skip
    write_config(s.cfg, two, kaggle={"endpoint": fake.url})
    err = _error(lambda: s.call("snapshots"))
    assert err.exit_code == 2 and "`syncd snapshots PROJECT` (one of cifar, other)" in str(err)
    err = _error(lambda: s.call("snapshot"))
    assert "`syncd snapshot PROJECT`" in str(err)


# --- reload / stop ------------------------------------------------------------------------------


def test_reload_and_stop_need_a_daemon(setup: Setup) -> None:
    if setup.daemon is None:
        for cmd in ("reload", "stop"):
            err = _error(lambda cmd=cmd: setup.call(cmd))
            assert err.exit_code == 3 and "not running" in str(err)
        return
    assert setup.call("reload")["running"] is True  # type: ignore[index]
    setup.cfg.write_text(setup.cfg.read_text() + "\n  - name: [broken\n")
    err = _error(lambda: setup.call("reload"))
    assert err.exit_code == 2 and "kept the previous config" in str(err)
    assert setup.call("stop") == {"stopping": True}


# --- the protocol -------------------------------------------------------------------------------


def _raw(path: Path, request: dict) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(str(path))
        s.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def test_a_request_past_its_deadline_is_dropped(tmp_path: Path, kaggle_env, fake) -> None:
    s = Setup(tmp_path, fake)
    s.start()
    try:
        sock = socket_path(s.cfg)
        late = _raw(sock, {"cmd": "pause", "deadline": time.time() - 1})
        assert late["ok"] is False and "after its deadline" in late["error"]
        assert s.paused_on_disk("cifar") is None and s.paused_on_disk("other") is None
        on_time = _raw(sock, {"cmd": "pause", "project": "other", "deadline": time.time() + 5})
        assert on_time["ok"] is True and s.paused_on_disk("other") == "user"
        bad_requests = [
            {"cmd": "pause", "deadline": "soon"},
            {"cmd": "pause", "project": 3},
            {"cmd": "pause", "force": True},
            {"cmd": "sync", "confirm_deletes": "yes"},
        ]
        for bad in bad_requests:
            reply = _raw(sock, bad)
            assert reply["ok"] is False and reply["exit_code"] == 2, (bad, reply)
    finally:
        s.stop()
