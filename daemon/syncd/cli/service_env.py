"""What a syncd service sees, as opposed to a shell: its environment and its credentials.

A systemd user unit gets the user manager's environment (``systemctl --user
show-environment``: what the login session and ``environment.d`` put there), a
launchd agent only what its plist sets; neither sees what a shell ``export``\\ ed.
``service_environment`` rebuilds that environment as well as it can tell, so that
``syncd doctor`` checks the credentials *as the service will see them*, and
``credentials_story`` is what ``syncd service install`` (and the README) say
about where the daemon looks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..config import Config
from ..config.template import tilde

# What every service manager passes on (or sets to the same value) whatever the shell says.
_ALWAYS = ("HOME", "USER", "LOGNAME", "PATH", "LANG", "TMPDIR")
_XDG = ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME")
SHELL_ONLY = ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR")


def _systemd_user_environment() -> dict[str, str] | None:
    try:
        done = subprocess.run(
            ["systemctl", "--user", "show-environment"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    env = {}
    for line in done.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep and key:
            env[key] = value
    return env


def service_environment() -> dict[str, str]:
    """The environment ``syncd run`` would start with under the service manager."""
    env = {k: os.environ[k] for k in (*_ALWAYS, *_XDG) if k in os.environ}
    if sys.platform.startswith("linux"):
        manager = _systemd_user_environment()
        if manager is not None:
            # The manager's own values win, but keep HOME/XDG from here when it has none
            # (they decide where credentials are looked for).
            env.update(manager)
    env["PYTHONUNBUFFERED"] = "1"  # the unit and the plist set it
    return env


def shell_only_variables() -> list[str]:
    """``KAGGLE_*`` variables set in this shell that the service will not see."""
    env = service_environment()
    return [v for v in SHELL_ONLY if os.environ.get(v) and env.get(v) != os.environ[v]]


def credentials_story(config: Config) -> list[str]:
    """Where the daemon looks for credentials, in order (what `service install` prints)."""
    lines = ["The service does not see variables exported in your shell. It looks for:"]
    drive = config.drive
    if any(pc.mirror and pc.mirror.to.kind == "gdrive" for pc in config.projects):
        if drive.service_account_key:
            lines.append(f"  Drive:  the service account key {tilde(drive.service_account_key)}")
        else:
            lines.append(
                f"  Drive:  {tilde(drive.credentials)} (written by `syncd auth drive`, mode 0600)"
            )
    if any(pc.snapshot for pc in config.projects):
        home = Path("~/.kaggle")
        lines.append(
            f"  Kaggle: an API token in {home}/access_token, else a legacy key in "
            f"{home}/kaggle.json (both written by `syncd auth kaggle`, mode 0600)"
        )
    shell = shell_only_variables()
    if shell:
        lines.append(
            f"  ({', '.join(shell)} set in this shell will not reach it: store them with "
            "`syncd auth kaggle`; `syncd doctor` checks what the service will see)"
        )
    return lines if len(lines) > 1 else []
