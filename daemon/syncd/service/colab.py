"""``syncd flush`` and ``syncd colab``: the control side of the target's manifest.

``flush`` asks each project's running engine to walk, mirror and write the
manifest (``mirror.flush``), and turns a flush that did not finish into one
sentence with the reason: paused, offline, waiting for credentials.  ``colab``
puts the Colab helper into the project (``.syncd/colab.py``, mirrored like any
file), makes sure it and the manifest are on Drive (a flush, or without a daemon
a one-shot walk), and returns what the cell needs: the manifest's and the
helper's Drive ids and the project's folder on the mounted Drive.
"""

from __future__ import annotations

import os
import tempfile
import threading
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SyncdError, UsageError
from ..mirror.flush import FlushOutcome
from ..mirror.manifest import manifest_record
from ..mirror.model import PauseKind, ProjectState
from .ipc import DaemonNotRunning
from .status import iso

if TYPE_CHECKING:
    from ..config import ProjectConfig
    from .controller import ControlHost

HELPER_PATH = ".syncd/colab.py"
FLUSH_TIMEOUT_S = 60.0  # `syncd flush` without --timeout
MOUNT_ROOT = "/content/drive/MyDrive"  # where `drive.mount("/content/drive")` shows My Drive


FILES_NAMED = 5  # a flush that failed on files names this many, then "and N more"


def _files_failure(name: str, errors: dict[str, str]) -> str:
    named = [f"{path} ({why})" for path, why in sorted(errors.items())[:FILES_NAMED]]
    more = len(errors) - len(named)
    listed = ", ".join(named) + (f" and {more} more" if more else "")
    return (
        f"{name}: {len(errors)} file(s) could not be mirrored, so their edits are not on "
        f"the target: {listed}"
    )


def _failure(name: str, outcome: FlushOutcome, timeout: float) -> str:
    """One sentence: why this project's flush did not finish, and only its own remedy."""
    reason = outcome.reason or ""
    why = f": {reason}" if reason else ""
    if outcome.file_errors:
        return _files_failure(name, outcome.file_errors)
    if outcome.state == ProjectState.PAUSED.value:
        if outcome.paused_by in (PauseKind.DELETES.value, PauseKind.FOLDER.value):
            return f"{name} is paused{why}"  # the hold's reason says what resumes it
        return f"{name} is paused{why}; resume it with `syncd resume {name}`, then flush again"
    if outcome.state == ProjectState.ERROR.value:
        return f"{name} is in error{why}"  # at once: nothing moves until it is fixed
    if outcome.state == ProjectState.OFFLINE.value:
        return f"{name} is offline{why}; edits wait until the target is reachable again"
    if outcome.state == ProjectState.AUTH_REQUIRED.value:
        remedy = "" if "syncd auth drive" in reason else "; run `syncd auth drive`"
        return f"{name} needs Drive credentials{why}{remedy}"
    return (
        f"{name}: not every edit reached the target within {timeout:g} s "
        f"(state {outcome.state}{why}); try again with a longer --timeout"
    )


def _flush_all(host: ControlHost, projects: list[ProjectConfig], timeout: float) -> list[Any]:
    """Each project's outcome (or the error that stopped it), all waiting at the same time,
    so ``timeout`` bounds the whole command however many projects there are."""
    outcomes: list[Any] = [None] * len(projects)

    def one(i: int, pc: ProjectConfig) -> None:
        try:
            outcomes[i] = host.mirror(pc.name).flush(timeout)
        except SyncdError as exc:
            outcomes[i] = exc

    if len(projects) == 1:
        one(0, projects[0])
        return outcomes
    threads = [
        threading.Thread(target=one, args=(i, pc), name=f"flush-{pc.name}", daemon=True)
        for i, pc in enumerate(projects)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def flush(host: ControlHost, projects: list[ProjectConfig], timeout: float) -> dict[str, Any]:
    """Every named project flushed, or a ``SyncdError`` naming why each other one was not."""
    if not host.running:
        raise DaemonNotRunning(
            f"syncd is not running for {host.config.path}",
            "start it with `syncd run`, or mirror once with `syncd sync --once`",
        )
    done, problems = [], []
    for pc, outcome in zip(projects, _flush_all(host, projects, timeout), strict=True):
        if isinstance(outcome, SyncdError):
            problems.append(str(outcome))  # names the project already
            continue
        if not outcome.done:
            problems.append(_failure(pc.name, outcome, timeout))
            continue
        rec = manifest_record(host.db, pc.name)
        done.append(
            {
                "name": pc.name,
                "target": pc.mirror.to.raw if pc.mirror else None,
                "seq": outcome.seq,
                "at": iso(outcome.at),
                "manifest": rec.to_status() if rec else None,
            }
        )
    if problems:
        raise SyncdError("; ".join(problems))
    return {"projects": done}


# --- syncd colab ---------------------------------------------------------------------


def helper_source() -> bytes:
    """The helper's text, as shipped inside syncd (never imported by syncd itself)."""
    return resources.files("syncd.remotes.gdrive").joinpath("colab_helper.py").read_bytes()


def _put_helper(root: Path) -> None:
    """Write ``.syncd/colab.py`` unless it already holds this version (atomically)."""
    path = root / HELPER_PATH
    data = helper_source()
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".syncd-tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def mounted_folder(pc: ProjectConfig) -> str | None:
    """The project's target folder as Colab's mounted Drive shows it (None: unknown)."""
    assert pc.mirror is not None
    path = pc.mirror.to.path
    if path is None:  # gdrive:id=…: the folder's place in My Drive is not known here
        return None
    return MOUNT_ROOT + ("" if path == "/" else "/" + path.strip("/"))


def colab(host: ControlHost, pc: ProjectConfig, timeout: float) -> dict[str, Any]:
    """Put the helper in the project, get it and the manifest onto Drive; the cell's facts."""
    if pc.mirror is None or pc.mirror.to.kind != "gdrive":
        target = pc.mirror.to.raw if pc.mirror else "nothing"
        raise UsageError(
            f"`syncd colab` needs a gdrive: target, and {pc.name} mirrors to {target} "
            f"(switch it with `syncd init {pc.path} --to gdrive:/syncd/{pc.name}`)"
        )
    if not pc.path.is_dir():
        raise UsageError(f"project folder {pc.path} does not exist (fix `path` in the config)")
    _put_helper(pc.path)
    if host.running:
        flush(host, [pc], timeout)
    else:
        result = host.reconcile([pc.name], False)
        problem = next((p["problem"] for p in result["projects"] if not p["ok"]), None)
        if problem:
            raise SyncdError(f"{pc.name}: {problem}")
    rec = manifest_record(host.db, pc.name)
    helper = host.db.file(pc.name, HELPER_PATH)
    if helper is None:
        raise SyncdError(
            f"{pc.name}: {HELPER_PATH} was not mirrored (is `.syncd/` ignored?); "
            "un-ignore it with `!.syncd/` in .syncignore"
        )
    if rec is None:
        raise SyncdError(f"{pc.name}: no manifest on the target yet; see `syncd status`")
    return {
        "project": pc.name,
        "target": pc.mirror.to.raw,
        "manifest_id": rec.id,
        "helper_id": helper.remote_id,
        "mounted": mounted_folder(pc),
        "seq": rec.seq,
    }
