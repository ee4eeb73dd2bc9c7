"""The CLI's contract (issue #11): the README's exit codes for every command, and never a
traceback, walked as one table.

Every command runs as a real subprocess in four situations: no daemon, a hung daemon
(SIGSTOPped: the socket accepts, nobody answers), a broken config file, and a state
folder syncd cannot use.  Each row says the exit code the README's table promises
(0 ok, 1 failure, 2 usage or config error, 3 daemon not running); whatever the code,
the output holds no traceback, and a non-zero exit says why in exactly one line on
stderr.  Usage errors and unknown projects are walked with and without a daemon.
Nothing here reaches the network: Drive and Kaggle endpoints point at a closed port.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, run_cli, wait_for, write_config

pytestmark = pytest.mark.e2e  # every row runs the real CLI as a subprocess

CLOSED = "http://127.0.0.1:9/"  # nothing listens there
FAST = {"SYNCD_CONTROL_TIMEOUT_S": "1"}

# (argv, and the exit code in each situation: no daemon, hung daemon, broken config,
# unusable state folder).  None: the command does not apply there (`run` without a
# daemon would start one).
TABLE: list[tuple[tuple[str, ...], tuple[int | None, int, int, int]]] = [
    (("status",), (3, 1, 2, 2)),
    (("status", "--json", "p"), (3, 1, 2, 2)),
    (("pause",), (0, 1, 2, 2)),
    (("resume", "p"), (0, 1, 2, 2)),
    (("sync",), (3, 1, 3, 3)),
    (("sync", "--once"), (0, 1, 2, 2)),
    (("reload",), (3, 1, 3, 3)),
    (("stop",), (3, 1, 3, 3)),
    (("snapshot", "p", "--wait"), (1, 1, 2, 2)),
    (("snapshots", "p"), (0, 1, 2, 2)),
    (("run",), (None, 1, 2, 2)),
    (("doctor",), (1, 1, 2, 1)),
    (("auth", "drive", "--no-browser"), (1, 1, 2, 1)),
    (("auth", "kaggle"), (1, 1, 2, 1)),
    (("service", "install", "--dry-run"), (0, 0, 2, 0)),
    (("service", "uninstall", "--dry-run"), (0, 0, 0, 0)),
    (("init", "{src}"), (0, 0, 2, 0)),
]
SITUATIONS = ("no daemon", "hung daemon", "broken config", "unusable state folder")


class World:
    def __init__(self, tmp_path: Path, home: Path) -> None:
        self.home = home
        self.src = tmp_path / "p"
        self.src.mkdir()
        (self.src / "a.txt").write_text("a\n")
        project = {
            "name": "p",
            "path": str(self.src),
            "mirror": {"to": f"local:{tmp_path / 'mirror'}", "delay": "100ms"},
            "snapshot": {"dataset": "alice/p-code", "title": "p code"},
        }
        self.cfg = write_config(
            tmp_path / "c.yaml", [project], drive={"endpoint": CLOSED}, kaggle={"endpoint": CLOSED}
        )

    def cli(self, *args: str) -> tuple[int, str, str]:
        argv = [a.format(src=self.src) for a in args]
        r = run_cli(*argv, "-c", str(self.cfg), env=FAST, timeout=60)
        return r.returncode, r.stdout, r.stderr


def one_sentence(code: int, out: str, err: str, what: str) -> None:
    assert "Traceback" not in out + err, f"{what}: a traceback\n{err[-1500:]}"
    lines = [line for line in err.splitlines() if line.strip()]
    if code != 0:
        assert len(lines) == 1, f"{what}: exit {code} with {len(lines)} lines on stderr: {err!r}"
        assert lines[0].startswith("syncd"), f"{what}: {lines[0]!r}"
    else:
        assert len(lines) <= 1, f"{what}: exit 0 with {len(lines)} lines on stderr: {err!r}"


@pytest.fixture
def world(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    return World(tmp_path, home)


@pytest.fixture
def hung(world: World, run_daemon) -> Iterator[DaemonProcess]:
    d = run_daemon(world.cfg)
    wait_for(lambda: world.cli("status")[0] == 0, what="the daemon's socket")
    assert d.proc is not None
    d.proc.send_signal(signal.SIGSTOP)
    try:
        yield d
    finally:
        d.proc.send_signal(signal.SIGCONT)


def walk(world: World, situation: int) -> None:
    problems = []
    for argv, codes in TABLE:
        expected = codes[situation]
        if expected is None:
            continue
        what = f"{SITUATIONS[situation]}: syncd {' '.join(argv)}"
        code, out, err = world.cli(*argv)
        try:
            one_sentence(code, out, err, what)
        except AssertionError as exc:
            problems.append(str(exc))
        if code != expected:
            problems.append(f"{what}: exit {code}, the README says {expected} ({err.strip()!r})")
    assert problems == [], "\n".join(problems)


def test_every_command_without_a_daemon(world: World) -> None:
    walk(world, 0)


def test_every_command_against_a_hung_daemon(world: World, hung: DaemonProcess) -> None:
    walk(world, 1)


def test_every_command_with_a_broken_config(world: World) -> None:
    world.cfg.write_text(world.cfg.read_text() + "\n  - name: [broken\n")
    walk(world, 2)


def test_every_command_with_an_unusable_state_folder(world: World) -> None:
    state = world.home / ".local/state/syncd"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text("a file where syncd keeps its index\n")
    walk(world, 3)


# --- usage errors and unknown projects, with and without a daemon --------------------------------

USAGE = [
    (),  # no command
    ("explode",),
    ("pause", "--bogus"),
    ("status", "p", "q"),
    ("auth", "dropbox"),
    ("service", "restart"),
    ("sync", "--once", "--confirm"),
]
UNKNOWN = [
    ("status", "nope"),
    ("pause", "nope"),
    ("resume", "nope"),
    ("snapshot", "nope"),
    ("snapshots", "nope"),
]


@pytest.mark.parametrize("daemon", ["no daemon", "daemon"])
def test_usage_errors_and_unknown_projects_are_2(world: World, run_daemon, daemon: str) -> None:
    if daemon == "daemon":
        run_daemon(world.cfg)
        wait_for(lambda: world.cli("status")[0] == 0, what="the daemon's socket")
    problems = []
    for argv in [*USAGE, *UNKNOWN, ("sync", "nope")]:
        code, out, err = world.cli(*argv)
        what = f"{daemon}: syncd {' '.join(argv)}"
        # `sync` without a daemon says so before it looks at names
        expected = 3 if argv == ("sync", "nope") and daemon == "no daemon" else 2
        try:
            one_sentence(code, out, err, what)
        except AssertionError as exc:
            problems.append(str(exc))
        if code != expected:
            problems.append(f"{what}: exit {code}, expected {expected} ({err.strip()!r})")
        if argv in UNKNOWN and "no project named 'nope'" not in err:
            problems.append(f"{what}: {err.strip()!r} does not name the project")
    assert problems == [], "\n".join(problems)
