"""The service files syncd renders, and install/uninstall/status against a temporary home.

systemctl and launchctl are replaced by a recorder (the ``run`` parameter), so
these tests never touch the machine's real service manager; the rendered unit
is checked by the real ``systemd-analyze verify`` when it is installed.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from syncd.cli import service_install as service
from syncd.cli.service_install import CommandResult
from syncd.errors import SyncdError

REPO = Path(__file__).resolve().parent.parent
# The placeholders the checked-in files in service/ are rendered with.
PLACEHOLDER_EXE = "/usr/local/bin/syncd"
PLACEHOLDER_SYSTEMD_CONFIG = "%h/.config/syncd/config.yaml"
PLACEHOLDER_LAUNCHD_CONFIG = "/Users/YOU/Library/Application Support/syncd/config.yaml"
PLACEHOLDER_LAUNCHD_LOGS = "/Users/YOU/Library/Logs/syncd"


def checked_in_files() -> dict[Path, bytes]:
    return {
        REPO / "service" / "syncd.service": service.render_systemd_unit(
            PLACEHOLDER_EXE, PLACEHOLDER_SYSTEMD_CONFIG
        ).encode(),
        REPO / "service" / "io.syncd.agent.plist": service.render_launchd_plist(
            PLACEHOLDER_EXE, PLACEHOLDER_LAUNCHD_CONFIG, PLACEHOLDER_LAUNCHD_LOGS
        ),
    }


class Recorder:
    """Stands in for systemctl/launchctl: records each command, answers from a script."""

    def __init__(self, answers: dict[str, int | CommandResult] | None = None) -> None:
        self.commands: list[list[str]] = []
        self.answers = answers or {}

    def __call__(self, cmd: list[str]) -> int | CommandResult:
        self.commands.append(cmd)
        return self.answers.get(" ".join(cmd), 0)


def missing_binary(cmd: list[str]) -> int:
    raise FileNotFoundError(2, "No such file or directory", cmd[0])


def make_exe(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, str, Path]:
    """A temporary home, an executable standing in for syncd, and a config file."""
    home = tmp_path / "home"
    home.mkdir()
    config = home / "cfg" / "config.yaml"
    config.parent.mkdir()
    config.write_text("projects: []\n")
    return home, make_exe(tmp_path / "bin" / "syncd"), config


def systemd_verify(unit: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed, so the unit cannot be verified")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config"),
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
    }
    (tmp_path / "run").mkdir(mode=0o700, exist_ok=True)
    return subprocess.run(
        [analyze, "verify", "--user", "--man=no", str(unit)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


# ------------------------------------------------------------------ rendering


def test_systemd_unit_has_the_promised_settings() -> None:
    unit = service.render_systemd_unit("/opt/syncd/bin/syncd", "/home/a/.config/syncd/c.yaml")
    lines = unit.splitlines()
    for expected in [
        "[Unit]",
        "Description=syncd — mirror projects to Google Drive and Kaggle",
        "[Service]",
        "Type=notify",
        "ExecStart=/opt/syncd/bin/syncd run -c /home/a/.config/syncd/c.yaml",
        "Restart=on-failure",
        "RestartSec=5",
        "WatchdogSec=60",
        "NotifyAccess=main",
        "Environment=PYTHONUNBUFFERED=1",
        "TimeoutStopSec=20",
        "[Install]",
        "WantedBy=default.target",
    ]:
        assert expected in lines


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    exe = make_exe(tmp_path / "bin" / "syncd")
    unit = tmp_path / "syncd.service"
    unit.write_text(service.render_systemd_unit(exe, "%h/.config/syncd/config.yaml"))

    result = systemd_verify(unit, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == ""


def test_odd_executable_path_survives_systemd_quoting(tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists, so a wrongly escaped space,
    # "%" or "$" shows up as "is not executable".
    exe = make_exe(tmp_path / "my apps 50%h $HOME ${X};" / "syncd")
    unit = tmp_path / "syncd.service"
    unit.write_text(service.render_systemd_unit(exe, str(tmp_path / "my config.yaml")))

    result = systemd_verify(unit, tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr


def test_paths_with_spaces_are_quoted() -> None:
    unit = service.render_systemd_unit("/opt/my apps/syncd", "/home/a b/it's 100% $real.yaml")
    assert (
        'ExecStart="/opt/my apps/syncd" run -c "/home/a b/it\'s 100%% $$real.yaml"'
        in unit.splitlines()
    )


def test_paths_systemd_cannot_hold_are_refused() -> None:
    with pytest.raises(SyncdError, match="control character"):
        service.render_systemd_unit("/opt/syncd", "/home/a\nExecStartPre=/bin/evil")
    with pytest.raises(SyncdError, match="quotes or backslashes"):
        service.render_systemd_unit('/opt/"odd"/syncd', "/home/a/c.yaml")


def test_launchd_plist_parses_and_restarts_on_failure_only() -> None:
    exe, config = "/Users/a/venv/bin/syncd", "/Users/a/Library/Application Support/syncd/c.yaml"
    agent = plistlib.loads(service.render_launchd_plist(exe, config, "/Users/a/Library/Logs/syncd"))

    assert agent["Label"] == "io.syncd.agent"
    assert agent["ProgramArguments"] == [exe, "run", "-c", config]
    assert agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}
    assert agent["ProcessType"] == "Background"
    assert agent["StandardOutPath"].startswith("/Users/a/Library/Logs/syncd/")
    assert agent["StandardErrorPath"].startswith("/Users/a/Library/Logs/syncd/")
    assert agent["EnvironmentVariables"]["PATH"].split(":")[:2] == [
        "/Users/a/venv/bin",
        "/usr/local/bin",
    ]


def test_checked_in_service_files_match_the_renderer() -> None:
    for path, expected in checked_in_files().items():
        assert path.read_bytes() == expected, (
            f"{path.relative_to(REPO)} drifted from syncd.service; "
            "regenerate with: PYTHONPATH=daemon python tests/test_service.py"
        )


# --------------------------------------------------------------- systemd


def test_systemd_install_writes_the_unit_and_enables_it(setup) -> None:
    home, exe, config = setup
    run = Recorder()

    lines = service.install("systemd", config_path=config, syncd_exe=exe, home=home, run=run)

    unit = home / ".config" / "systemd" / "user" / "syncd.service"
    assert unit.read_text() == service.render_systemd_unit(exe, str(config))
    assert run.commands == [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", "syncd.service"],
    ]
    assert f"wrote {unit}" in lines
    assert "ran: systemctl --user enable --now syncd.service" in lines


def test_systemd_reinstall_restarts_a_running_service(setup) -> None:
    home, exe, config = setup
    service.install("systemd", config_path=config, syncd_exe=exe, home=home, run=Recorder())
    run = Recorder()

    service.install("systemd", config_path=config, syncd_exe=exe, home=home, run=run)

    assert run.commands[-1] == ["systemctl", "--user", "try-restart", "syncd.service"]


def test_systemd_uninstall_stops_and_removes(setup) -> None:
    home, exe, config = setup
    service.install("systemd", config_path=config, syncd_exe=exe, home=home, run=Recorder())
    run = Recorder()

    lines = service.uninstall("systemd", home=home, run=run)

    unit = home / ".config" / "systemd" / "user" / "syncd.service"
    assert not unit.exists()
    assert run.commands == [
        ["systemctl", "--user", "disable", "--now", "syncd.service"],
        ["systemctl", "--user", "daemon-reload"],
    ]
    assert f"removed {unit}" in lines
    assert service.uninstall("systemd", home=home, run=run) == [
        f"syncd service is not installed (no {unit})"
    ]


def test_uninstall_removes_the_file_even_if_stopping_fails(setup) -> None:
    home, exe, config = setup
    service.install("systemd", config_path=config, syncd_exe=exe, home=home, run=Recorder())

    lines = service.uninstall("systemd", home=home, run=missing_binary)

    assert not (home / ".config" / "systemd" / "user" / "syncd.service").exists()
    assert "skipped (not found): systemctl --user disable --now syncd.service" in lines


def test_dry_run_writes_and_runs_nothing(setup) -> None:
    home, exe, config = setup
    run = Recorder()

    lines = service.install(
        "systemd", config_path=config, syncd_exe=exe, home=home, dry_run=True, run=run
    )

    assert run.commands == []
    assert not (home / ".config").exists()
    assert "Type=notify" in lines
    assert "would run: systemctl --user enable --now syncd.service" in lines


def test_missing_systemctl_leaves_the_unit_and_says_how_to_start(setup) -> None:
    home, exe, config = setup

    lines = service.install(
        "systemd", config_path=config, syncd_exe=exe, home=home, run=missing_binary
    )

    assert (home / ".config" / "systemd" / "user" / "syncd.service").is_file()
    assert lines[-1] == (
        "start it with: systemctl --user daemon-reload"
        " && systemctl --user enable --now syncd.service"
    )


def test_failing_systemctl_is_a_syncd_error_with_its_output(setup) -> None:
    home, exe, config = setup
    fail = CommandResult(1, "Failed to connect to bus: No medium found")
    run = Recorder({"systemctl --user daemon-reload": fail})

    with pytest.raises(SyncdError, match="Failed to connect to bus") as err:
        service.install("systemd", config_path=config, syncd_exe=exe, home=home, run=run)

    assert "loginctl enable-linger" in (err.value.remedy or "")


def test_systemd_status(setup) -> None:
    home, exe, config = setup
    run = Recorder({"systemctl --user is-active syncd.service": CommandResult(3, "inactive")})
    before = service.status("systemd", home=home, run=run)
    assert (before.installed, before.state) == (False, "inactive")

    service.install("systemd", config_path=config, syncd_exe=exe, home=home, run=Recorder())
    run.answers["systemctl --user is-active syncd.service"] = CommandResult(0, "active\n")
    after = service.status("systemd", home=home, run=run)

    assert (after.installed, after.state) == (True, "active")
    assert after.describe()[0].startswith("systemd service installed at ")
    gone = service.status("systemd", home=home, run=missing_binary)
    assert gone.state == "unknown (systemctl not found)"


# --------------------------------------------------------------- launchd


def test_launchd_install_and_uninstall(setup) -> None:
    home, exe, config = setup
    run = Recorder()
    domain = f"gui/{os.getuid()}"

    service.install("launchd", config_path=config, syncd_exe=exe, home=home, run=run)

    plist = home / "Library" / "LaunchAgents" / "io.syncd.agent.plist"
    agent = plistlib.loads(plist.read_bytes())
    assert agent["ProgramArguments"] == [exe, "run", "-c", str(config)]
    assert agent["StandardErrorPath"].startswith(str(home / "Library" / "Logs" / "syncd"))
    assert (home / "Library" / "Logs" / "syncd").is_dir()
    assert run.commands == [["launchctl", "bootstrap", domain, str(plist)]]

    run = Recorder({f"launchctl bootout {domain}/io.syncd.agent": 3})  # not loaded: fine
    service.install("launchd", config_path=config, syncd_exe=exe, home=home, run=run)
    assert run.commands[0] == ["launchctl", "bootout", f"{domain}/io.syncd.agent"]

    run = Recorder()
    service.uninstall("launchd", home=home, run=run)
    assert not plist.exists()
    assert run.commands == [["launchctl", "bootout", f"{domain}/io.syncd.agent"]]


def test_launchd_status_reads_the_state_line(setup) -> None:
    home, _, _ = setup
    answer = CommandResult(0, "gui/501/io.syncd.agent = {\n\tstate = running\n}")
    run = Recorder({f"launchctl print gui/{os.getuid()}/io.syncd.agent": answer})
    assert service.status("launchd", home=home, run=run).state == "running"


# ------------------------------------------------------------------ errors


def test_relative_executable_is_refused(setup) -> None:
    home, _, config = setup
    with pytest.raises(SyncdError, match="absolute path"):
        service.install("systemd", config_path=config, syncd_exe="bin/syncd", home=home)


def test_missing_config_is_refused(setup) -> None:
    home, exe, _ = setup
    with pytest.raises(SyncdError, match="no config file") as err:
        service.install("systemd", config_path=home / "nope.yaml", syncd_exe=exe, home=home)
    assert "syncd init" in (err.value.remedy or "")


def test_default_executable_is_the_running_syncd(setup, monkeypatch: pytest.MonkeyPatch) -> None:
    home, exe, config = setup
    monkeypatch.setattr(sys, "argv", [exe, "service", "install"])
    lines = service.install("systemd", config_path=config, home=home, dry_run=True)
    assert f"ExecStart={exe} run -c {config}" in lines


def test_unsupported_platform_is_a_clear_error(setup, monkeypatch: pytest.MonkeyPatch) -> None:
    home, exe, config = setup
    monkeypatch.setattr(sys, "platform", "win32")
    with pytest.raises(SyncdError, match="Linux and macOS"):
        service.install(config_path=config, syncd_exe=exe, home=home)


if __name__ == "__main__":
    for file, content in checked_in_files().items():
        file.write_bytes(content)
        print(f"wrote {file.relative_to(REPO)}")
