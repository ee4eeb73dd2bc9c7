"""Value parsers and checks: durations, remote addresses, paths, names, cron schedules.

Each raises ``ValueError`` with a short reason; ``loader`` adds the file, line
and key.  ``parse_duration``, ``parse_address``, ``resolve_path`` and
``default_config_path`` are public because the CLI and the daemon reuse them.
"""

from __future__ import annotations

import datetime
import math
import os
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from .model import RemoteAddress, config_dir

_DURATION_HINT = "use e.g. 500ms, 1s, 10m"
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d)")


def parse_duration(text: str | int | float) -> float:
    """Seconds from ``500ms``, ``1.5s``, ``10m``, ``2h``, ``1d``, ``1h30m`` or a bare number."""
    # bool is an int subclass; ``delay: yes`` must not mean one second.
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration ({_DURATION_HINT})")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        spec = text.strip().replace(" ", "")
        if spec.startswith("-"):
            raise ValueError(f"{text!r} is negative (a duration must be 0 or more)")
        try:
            seconds = float(spec)
        except ValueError:
            if not spec or _DURATION_PART.sub("", spec):
                raise ValueError(f"{text!r} is not a duration ({_DURATION_HINT})") from None
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(spec))
    if not math.isfinite(seconds):
        raise ValueError(f"{text!r} is not a duration ({_DURATION_HINT})")
    if seconds < 0:
        raise ValueError(f"{text!r} is negative (a duration must be 0 or more)")
    return seconds


_DRIVE_ID = re.compile(r"[A-Za-z0-9_-]+")


def parse_address(raw: str, base_dir: Path) -> RemoteAddress:
    """``local:PATH``, ``gdrive:/PATH`` or ``gdrive:id=FOLDER_ID`` (rclone's ``KIND:PATH``)."""
    kind, sep, rest = raw.partition(":")
    if not sep or kind not in ("local", "gdrive"):
        raise ValueError(
            f"{raw!r} is not a remote address (use local:/some/dir or gdrive:/syncd/NAME)"
        )
    if kind == "local":
        if not rest.strip():
            raise ValueError("local: needs a folder, e.g. local:/mnt/usb/NAME")
        return RemoteAddress(raw, "local", str(resolve_path(rest, base_dir)), None)
    if rest.startswith("id="):
        folder_id = rest[3:]
        if not _DRIVE_ID.fullmatch(folder_id):
            raise ValueError(
                f"{folder_id!r} is not a Drive folder id (copy it from the folder URL)"
            )
        return RemoteAddress(raw, "gdrive", None, folder_id)
    if not rest.startswith("/"):
        raise ValueError(
            f"{raw!r}: a Drive path must start with / (e.g. gdrive:/syncd/NAME) or be gdrive:id=ID"
        )
    parts = [p for p in rest.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"{raw!r}: '..' is not allowed in a Drive path")
    return RemoteAddress(raw, "gdrive", "/" + "/".join(parts), None)


def resolve_path(text: str, base_dir: Path) -> Path:
    """``~`` expanded, relative paths taken from ``base_dir`` (the config file's folder)."""
    try:
        path = Path(text.strip()).expanduser()
    except RuntimeError as exc:  # "~nobody/..." when that user does not exist
        raise ValueError(f"{text!r}: {exc}") from None
    return (base_dir / path).resolve()


def default_config_path() -> Path:
    """``$SYNCD_CONFIG`` if set, else ``config.yaml`` in the platform's config folder."""
    env = os.environ.get("SYNCD_CONFIG")
    return Path(env).expanduser() if env else config_dir() / "config.yaml"


# --- value checks used by the schema (each raises ValueError with a short reason) -------------


def _matching(pattern: str, what: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def check(text: str) -> str:
        if not compiled.fullmatch(text):
            raise ValueError(f"{text!r} is not {what}")
        return text

    return check


project_name = _matching(r"[A-Za-z0-9][A-Za-z0-9._-]*", "a name (letters, digits, . _ -)")
dataset_ref = _matching(r"[^/\s]+/[^/\s]+", "owner/slug (e.g. alice/cifar-code)")
http_url = _matching(r"https?://[^/\s]+\S*", "an http(s) URL")


def cron_schedule(text: str) -> str:
    # Imported here: apscheduler costs ~30 ms, and `syncd status` should not pay it.
    from apscheduler.triggers.cron import CronTrigger

    try:
        # The timezone only matters for firing times; a fixed one keeps validation independent
        # of the machine's local zone configuration.
        CronTrigger.from_crontab(text, timezone=datetime.UTC)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a cron schedule ({exc})") from None
    return text


def positive(value: float) -> float:
    if value <= 0:
        raise ValueError(f"must be more than 0, got {value:g}")
    return value


def worker_count(value: int) -> int:
    if not 1 <= value <= 32:
        raise ValueError(f"must be from 1 to 32, got {value}")
    return value


def data_path(text: str) -> str:
    """A ``snapshot.data`` entry: ``data/``, ``./weights``, ``assets/big/`` → ``data``,
    ``weights``, ``assets/big`` (a folder or file of the project, no patterns). An absolute
    path stays absolute here; the loader makes it relative to the project or refuses it."""
    raw = text.strip()
    if any(c in raw for c in "*?[]!"):
        raise ValueError(f"{text!r}: name a folder or file of the project (no patterns)")
    absolute = raw.startswith("/") or raw.startswith("~")
    parts = [p for p in PurePosixPath(raw).parts if p not in ("/", ".")]
    if ".." in parts:
        raise ValueError(f"{text!r}: '..' would leave the project folder")
    if absolute:
        return raw
    if not parts:
        raise ValueError(f"{text!r}: name a folder of the project (e.g. data/), not all of it")
    return "/".join(parts)


def subfolder(text: str) -> str:
    """``outputs``, ``/outputs``, ``./outputs/`` → ``outputs/`` (relative to the project)."""
    parts = [p for p in PurePosixPath(text.strip()).parts if p not in ("/", ".")]
    if not parts:
        raise ValueError(f"{text!r}: name a subfolder (e.g. outputs/), not the whole project")
    if ".." in parts:
        raise ValueError(f"{text!r}: '..' would leave the project folder")
    return "/".join(parts) + "/"


# Folders that are syncd's own or git's: pulling Drive's copy of them down would overwrite
# syncd's state (the Colab helper, the local trash, temp files) or a repository.
_NOT_PULLED = (".syncd", ".syncd-trash", ".git")


def pull_folder(text: str) -> str:
    """A ``mirror.pull`` entry: a subfolder (``./outputs`` → ``outputs/``), never syncd's
    own folders nor ``.git/``, nor a folder inside them."""
    folder = subfolder(text)
    top = folder.split("/")[0]
    if top in _NOT_PULLED or top.startswith(".syncd-tmp"):
        raise ValueError(
            f"{text!r} is {'git' if top == '.git' else 'syncd'}'s own folder and cannot be "
            "pulled from Drive; name a folder your notebook writes to (e.g. outputs/)"
        )
    return folder


_GLOB = set("\\*?[]!#")


def literal_ignore(folder: str) -> str:
    """A gitignore rule matching exactly the project's subfolder ``folder`` (``run[1]/``):
    every character gitignore gives a meaning (``* ? [ ] ! # \\``, a trailing space) is
    escaped with a backslash, so a pull folder's name never works as a pattern."""
    body = "".join("\\" + c if c in _GLOB else c for c in folder.rstrip("/"))
    if body.endswith(" "):
        body = body[:-1] + "\\ "
    return "/" + body + "/"


_SCOPES = {"file": "file", "drive.file": "file", "full": "full", "drive": "full"}


def drive_scope(text: str) -> str:
    """``file`` | ``full``, also spelled as Google names the scopes: ``drive.file`` | ``drive``."""
    scope = _SCOPES.get(text.strip())
    if scope is None:
        raise ValueError(f"{text!r} is not one of file, full (also spelled drive.file, drive)")
    return scope


def pull_interval(seconds: float) -> float:
    if seconds < 1:
        raise ValueError(f"{seconds:g}s is too often to poll Google Drive (at least 1s)")
    return seconds
