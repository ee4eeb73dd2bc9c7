"""Renders, installs, uninstalls and reports the syncd background service.

Owns the two service definitions (a systemd *user* unit on Linux, a launchd
agent on macOS) and the few ``systemctl``/``launchctl`` calls that put them in
place. The unit template is package data (``service_templates/``) and the plist is
built with ``plistlib``, so both ship inside the wheel; the repo's ``service/``
folder holds this module's output for placeholder paths, kept identical by a test.
"""

from __future__ import annotations

import os
import plistlib
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Literal

from ..errors import SyncdError

ServiceKind = Literal["systemd", "launchd"]

SYSTEMD_UNIT = "syncd.service"
LAUNCHD_LABEL = "io.syncd.agent"


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    output: str = ""


# A runner may return a bare exit code (enough for tests that record commands)
# or a CommandResult when the output matters (error messages, ``status``).
Runner = Callable[[list[str]], "int | CommandResult"]


def run_command(cmd: list[str]) -> CommandResult:
    """The default runner. A missing binary raises FileNotFoundError for the caller."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        return CommandResult(124, f"{cmd[0]} did not answer within 60 s")
    return CommandResult(proc.returncode, (proc.stdout + proc.stderr).strip())


_LEADING_SPECIFIER = re.compile(r"%[A-Za-z]")
_NEEDS_QUOTES = re.compile(r"[\s\"'\\;]")


def _systemd_word(value: str, *, executable: bool = False) -> str:
    """One ExecStart word, escaped per systemd.service(5) "Command lines"."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise SyncdError(
            f"the path {value!r} contains a control character a unit file cannot hold",
            "move syncd or the config file to a plain path",
        )
    if executable and any(ch in value for ch in "\"'\\"):
        # systemd refuses such a program path outright ("contains special characters").
        raise SyncdError(
            f"systemd cannot run a program whose path contains quotes or backslashes: {value}",
            "install syncd under a plain path (a venv or pipx) and run the install again",
        )
    # Real paths here are absolute, so a leading "%h" can only be meant as systemd's
    # home specifier (the checked-in unit uses it); every other "%" is literal.
    lead = ""
    if match := _LEADING_SPECIFIER.match(value):
        lead, value = match.group(), value[match.end() :]
    word = lead + value.replace("%", "%%")
    if not executable:
        # "$" expansion applies to arguments only; systemd reads the program path as is.
        word = word.replace("$", "$$")
    if word and not _NEEDS_QUOTES.search(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_systemd_unit(syncd_exe: str, config_path: str) -> str:
    """The user unit that runs ``syncd run -c CONFIG`` under systemd."""
    exec_start = " ".join(
        [_systemd_word(syncd_exe, executable=True), "run", "-c", _systemd_word(config_path)]
    )
    template = resources.files("syncd.cli") / "service_templates" / SYSTEMD_UNIT
    # The template is a plain unit file with one ${exec_start} placeholder.
    return Template(template.read_text(encoding="utf-8")).substitute(exec_start=exec_start)


# launchd starts agents with PATH=/usr/bin:/bin:/usr/sbin:/sbin, which misses
# Homebrew and python.org installs.
_LAUNCHD_PATH = ["/usr/local/bin", "/opt/homebrew/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]


def render_launchd_plist(syncd_exe: str, config_path: str, log_dir: str) -> bytes:
    """The launchd agent that runs ``syncd run -c CONFIG``, restarted only on failure."""
    exe_dir = os.path.dirname(syncd_exe)
    path = ([exe_dir] if exe_dir and exe_dir not in _LAUNCHD_PATH else []) + _LAUNCHD_PATH
    agent = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": [syncd_exe, "run", "-c", config_path],
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ProcessType": "Background",
        "StandardOutPath": f"{log_dir}/syncd.out.log",
        "StandardErrorPath": f"{log_dir}/syncd.log",
        "EnvironmentVariables": {"PATH": ":".join(path), "PYTHONUNBUFFERED": "1"},
    }
    return plistlib.dumps(agent, fmt=plistlib.FMT_XML, sort_keys=False)


@dataclass(frozen=True)
class _Target:
    kind: ServiceKind
    file: Path
    log_dir: Path | None = None  # launchd only: systemd logs go to the journal


def _target(kind: ServiceKind | None, home: Path | None) -> _Target:
    if kind is None:
        if sys.platform == "darwin":
            kind = "launchd"
        elif sys.platform.startswith("linux"):
            kind = "systemd"
        else:
            raise SyncdError(
                f"syncd can install itself as a service on Linux and macOS, not {sys.platform}",
                "start `syncd run` from your system's own autostart mechanism instead",
            )
    base = home or Path.home()
    if kind == "systemd":
        xdg = os.environ.get("XDG_CONFIG_HOME") if home is None else None
        unit_dir = (Path(xdg) if xdg else base / ".config") / "systemd" / "user"
        return _Target("systemd", unit_dir / SYSTEMD_UNIT)
    if kind == "launchd":
        agent = base / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"
        return _Target("launchd", agent, base / "Library" / "Logs" / "syncd")
    raise SyncdError(f"unknown service kind {kind!r}", "use 'systemd' or 'launchd'")


def _find_exe(syncd_exe: str | None) -> str:
    if syncd_exe is None:
        # Prefer the syncd being run right now over whatever PATH finds first (another
        # venv's); abspath rather than resolve keeps a pipx-style symlink, which
        # survives upgrades where the file it points to does not.
        argv0 = Path(sys.argv[0])
        found = str(argv0) if argv0.name == "syncd" and argv0.is_file() else None
        beside = Path(sys.executable).parent / "syncd"  # `python -m syncd` in a venv
        found = found or (str(beside) if beside.is_file() else None) or shutil.which("syncd")
        if not found:
            raise SyncdError(
                "cannot find the syncd executable to put in the service file",
                "install syncd so that `syncd` is on PATH, or pass its absolute path",
            )
        syncd_exe = os.path.abspath(found)
    if not os.path.isabs(syncd_exe):
        raise SyncdError(
            f"the syncd executable must be an absolute path, not {syncd_exe!r}",
            "pass the full path, e.g. the output of `command -v syncd`",
        )
    if not (os.path.isfile(syncd_exe) and os.access(syncd_exe, os.X_OK)):
        raise SyncdError(f"{syncd_exe} is not an executable file", "pass the installed `syncd`")
    return syncd_exe


def _start_commands(target: _Target, reinstall: bool) -> list[list[str]]:
    if target.kind == "systemd":
        ctl = ["systemctl", "--user"]
        cmds = [[*ctl, "daemon-reload"], [*ctl, "enable", "--now", SYSTEMD_UNIT]]
        # enable --now would leave an already running daemon on its old definition.
        return cmds + ([[*ctl, "try-restart", SYSTEMD_UNIT]] if reinstall else [])
    bootstrap = ["launchctl", "bootstrap", _domain(), str(target.file)]
    # bootstrap refuses a label that is already loaded, so the old one goes first.
    return [*_stop_commands(target), bootstrap] if reinstall else [bootstrap]


def _stop_commands(target: _Target) -> list[list[str]]:
    if target.kind == "systemd":
        return [["systemctl", "--user", "disable", "--now", SYSTEMD_UNIT]]
    return [["launchctl", "bootout", f"{_domain()}/{LAUNCHD_LABEL}"]]


def _domain() -> str:
    return f"gui/{os.getuid()}"


def _run(run: Runner, cmd: list[str]) -> CommandResult:
    result = run(cmd)
    return result if isinstance(result, CommandResult) else CommandResult(result)


def _best_effort(run: Runner, cmd: list[str]) -> str:
    """Run a command whose failure is acceptable; returns the line reporting it."""
    try:
        code = _run(run, cmd).returncode
    except FileNotFoundError:
        return f"skipped (not found): {shlex.join(cmd)}"
    return f"ran: {shlex.join(cmd)}" if code == 0 else f"exit {code}: {shlex.join(cmd)}"


def install(
    kind: ServiceKind | None = None,
    *,
    config_path: Path,
    syncd_exe: str | None = None,
    home: Path | None = None,
    dry_run: bool = False,
    run: Runner = run_command,
) -> list[str]:
    """Write the service file and start the service; returns what was done, line by line."""
    target = _target(kind, home)
    exe = _find_exe(syncd_exe)
    config = config_path.expanduser().resolve()
    if not config.is_file() and not dry_run:
        # The service would fail with a config error on every start.
        raise SyncdError(
            f"there is no config file at {config}",
            "create one with `syncd init`, or pass -c with the config to use",
        )
    if target.log_dir is None:
        content = render_systemd_unit(exe, str(config)).encode()
    else:
        content = render_launchd_plist(exe, str(config), str(target.log_dir))
    reinstall = target.file.exists()
    cmds = _start_commands(target, reinstall)
    if dry_run:
        return [
            f"would write {target.file}:",
            *content.decode().splitlines(),
            *(f"would run: {shlex.join(c)}" for c in cmds),
        ]

    try:
        target.file.parent.mkdir(parents=True, exist_ok=True)
        if target.log_dir is not None:
            target.log_dir.mkdir(parents=True, exist_ok=True)
        tmp = target.file.with_name(target.file.name + ".tmp")
        tmp.write_bytes(content)
        os.replace(tmp, target.file)  # a half-written unit must never be loaded
    except OSError as exc:
        raise SyncdError(
            f"cannot write {target.file}: {exc.strerror or exc}", "check that folder's permissions"
        ) from exc
    lines = [f"wrote {target.file}"]
    if target.log_dir is not None:
        lines.append(f"logs go to {target.log_dir}")

    for i, cmd in enumerate(cmds):
        if cmd[:2] == ["launchctl", "bootout"]:  # unloading a label that is not loaded is fine
            lines.append(_best_effort(run, cmd))
            continue
        try:
            result = _run(run, cmd)
        except FileNotFoundError:
            start = " && ".join(shlex.join(c) for c in cmds[i:])
            return [
                *lines,
                f"{cmd[0]} not found, so the service was not started",
                f"start it with: {start}",
            ]
        if result.returncode != 0:
            output = f": {result.output}" if result.output else ""
            raise SyncdError(
                f"`{shlex.join(cmd)}` failed (exit {result.returncode}){output}; "
                f"the service file is at {target.file}",
                _remedy(target),
            )
        lines.append(f"ran: {shlex.join(cmd)}")
    return lines


def uninstall(
    kind: ServiceKind | None = None,
    *,
    home: Path | None = None,
    dry_run: bool = False,
    run: Runner = run_command,
) -> list[str]:
    """Stop the service and remove its file (logs are kept); returns what was done."""
    target = _target(kind, home)
    if not target.file.exists():
        return [f"syncd service is not installed (no {target.file})"]
    reload = [["systemctl", "--user", "daemon-reload"]] if target.kind == "systemd" else []
    if dry_run:
        return [
            *(f"would run: {shlex.join(c)}" for c in _stop_commands(target)),
            f"would remove {target.file}",
            *(f"would run: {shlex.join(c)}" for c in reload),
        ]
    # Stopping something that is not running fails harmlessly: removal is the goal.
    lines = [_best_effort(run, cmd) for cmd in _stop_commands(target)]
    try:
        target.file.unlink(missing_ok=True)
    except OSError as exc:
        raise SyncdError(
            f"cannot remove {target.file}: {exc.strerror}", "remove it by hand"
        ) from exc
    lines.append(f"removed {target.file}")
    lines += [_best_effort(run, cmd) for cmd in reload]
    if target.log_dir is not None and target.log_dir.exists():
        lines.append(f"logs kept in {target.log_dir}")
    return lines


@dataclass(frozen=True)
class ServiceStatus:
    kind: ServiceKind
    path: Path
    installed: bool
    state: str  # systemd: the `is-active` word; launchd: `print`'s "state = ..."

    def describe(self) -> list[str]:
        where = f"installed at {self.path}" if self.installed else f"not installed ({self.path})"
        return [f"{self.kind} service {where}", f"state: {self.state}"]


def status(
    kind: ServiceKind | None = None, *, home: Path | None = None, run: Runner = run_command
) -> ServiceStatus:
    """Whether the service file is installed, and what the service manager says about it."""
    target = _target(kind, home)
    if target.kind == "systemd":
        cmd = ["systemctl", "--user", "is-active", SYSTEMD_UNIT]
    else:
        cmd = ["launchctl", "print", f"{_domain()}/{LAUNCHD_LABEL}"]
    try:
        result = _run(run, cmd)
    except FileNotFoundError:
        state = f"unknown ({cmd[0]} not found)"
    else:
        state = _state(target.kind, result)
    return ServiceStatus(target.kind, target.file, target.file.exists(), state)


def _state(kind: ServiceKind, result: CommandResult) -> str:
    if kind == "systemd":
        # is-active prints one word (active, inactive, failed, ...); exit 0 means active.
        words = result.output.split()
        return words[0] if words else ("active" if result.returncode == 0 else "inactive")
    if result.returncode != 0:
        return "not loaded"
    match = re.search(r"^\s*state = (\S+)", result.output, re.MULTILINE)
    return match.group(1) if match else "loaded"


def _remedy(target: _Target) -> str:
    if target.kind == "systemd":
        return (
            "see `systemctl --user status syncd` and `journalctl --user -u syncd`; "
            "without a desktop session (e.g. over SSH) run `loginctl enable-linger` first"
        )
    return f"see `launchctl print {_domain()}/{LAUNCHD_LABEL}` and the logs in {target.log_dir}"
