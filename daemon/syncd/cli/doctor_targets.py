"""``syncd doctor``'s checks of where files go: every target reachable and writable, the
credentials as the service will see them, and free disk where staging and targets live.

"As the service will see them": a systemd or launchd service does not inherit what a
shell exports, so credentials that only live in ``KAGGLE_*`` variables of this shell
count for ``syncd run`` typed here, not for ``syncd service install`` (see
``service_install.service_environment``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..config import Config, ProjectConfig

Check = tuple[str, str]

MiB = 2**20


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _writable(folder: Path) -> str | None:
    """Why a file cannot be created in ``folder`` (tried for real), or None."""
    try:
        fd, name = tempfile.mkstemp(prefix=".syncd-doctor-", dir=folder)
    except OSError as exc:
        if exc.errno == errno.EROFS:
            return "it is on a read-only disk"
        return exc.strerror or str(exc)
    os.close(fd)
    os.unlink(name)
    return None


def _mirrored_before(config: Config, name: str) -> bool:
    """Whether the index holds files of this project (then a missing target is an unmounted
    disk, not a folder to create)."""
    from ..db.statedb import StateDB, state_db_path

    path = state_db_path(config.path)
    if not path.exists():
        return False
    try:
        db = StateDB(path)
    except Exception:  # noqa: BLE001 - the state folder has its own check; this one only asks
        return False
    try:
        return db.count(name)[0] > 0
    finally:
        db.close()


def _local_target(config: Config, pc: ProjectConfig) -> Iterator[Check]:
    assert pc.mirror is not None
    to = pc.mirror.to
    folder = Path(to.path or "")
    fix_perm = f"fix its permissions (`chmod u+rwx {folder}`) or choose another folder"
    if folder.exists():
        if not folder.is_dir():
            yield "fail", f"{pc.name}: target {to.raw} is not a folder (choose a folder)"
            return
        problem = _writable(folder)
        if problem:
            yield "fail", f"{pc.name}: cannot write to target {to.raw}: {problem} ({fix_perm})"
        else:
            yield "ok", f"{pc.name}: target {to.raw} is writable"
        return
    if _mirrored_before(config, pc.name):
        yield (
            "fail",
            f"{pc.name}: target {to.raw} is missing although files were mirrored there "
            "(an unmounted disk? mount it; syncd waits for it rather than fill the mount point)",
        )
        return
    parent = _existing(folder)
    problem = "it is not a folder" if not parent.is_dir() else _writable(parent)
    if problem:
        yield (
            "fail",
            f"{pc.name}: cannot create target {to.raw} in {parent}: {problem} ({fix_perm})",
        )
    else:
        yield "ok", f"{pc.name}: target {to.raw} will be created at the first sync"


def _drive_target(config: Config, pc: ProjectConfig) -> Iterator[Check]:
    cfg = config.drive
    if cfg.service_account_key:
        checks = list(
            _private_file(pc, cfg.service_account_key, "service account key", "download it again")
        )
    else:
        checks = list(
            _private_file(
                pc,
                cfg.credentials,
                "Drive credentials",
                "run `syncd auth drive`, or `syncd init DIR --to local:/some/dir` to mirror to "
                "a folder meanwhile",
            )
        )
    yield from checks
    if all(level != "fail" for level, _ in checks):
        yield from _drive_reachable(config, pc)


def _drive_reachable(config: Config, pc: ProjectConfig) -> Iterator[Check]:
    """Find the project's Drive folder as the daemon's first sync would — and make it if the
    project never synced (a token that answers proves little under drive.file) — with a
    throwaway index, so a running daemon's is never touched."""
    from ..errors import AuthRequired, SyncdError, TransientError
    from ..remotes.gdrive.probe import probe

    assert pc.mirror is not None
    to = pc.mirror.to
    first = not _mirrored_before(config, pc.name)
    try:
        reached = probe(config.drive, to, pc.name, create=first)
    except AuthRequired as exc:
        yield "fail", f"{pc.name}: Google Drive refuses the credentials: {exc}"
        return
    except TransientError as exc:
        yield "warn", f"{pc.name}: cannot reach Google Drive to check {to.raw} ({exc})"
        return
    except SyncdError as exc:
        gone = "is gone from Google Drive" if not first else "is not reachable"
        yield "fail", f"{pc.name}: {to.raw} {gone}: {exc}"
        return
    verb = "made" if reached.created else "reaches"
    yield "ok", f"{pc.name}: syncd {verb} {to.raw} on Google Drive (folder id {reached.folder_id})"


def _private_file(pc: ProjectConfig, path: Path, what: str, fix: str) -> Iterator[Check]:
    assert pc.mirror is not None
    if not path.exists():
        yield (
            "fail",
            f"{pc.name}: {what} {path} are missing, so {pc.mirror.to.raw} cannot be reached "
            f"({fix})",
        )
        return
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        yield "warn", f"{what} {path} can be read by other users (run `chmod 600 {path}`)"
    else:
        yield "ok", f"{pc.name}: {what} {path} are present and private"


def targets(config: Config) -> Iterator[Check]:
    for pc in config.projects:
        if pc.mirror is None:
            continue
        if pc.mirror.to.kind == "local":
            yield from _local_target(config, pc)
        else:
            yield from _drive_target(config, pc)


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    """os.environ replaced by ``env`` for a moment (the kaggle client's own lookup reads it)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def credentials(config: Config) -> Iterator[Check]:
    """Kaggle credentials, found the way the client finds them, in the environment the
    service will have (only for projects that snapshot)."""
    if not any(pc.snapshot for pc in config.projects):
        return
    from ..remotes.kaggle.credentials import HOW_TO_STORE, locate_credentials
    from .service_env import service_environment, shell_only_variables

    with _environment(service_environment()):
        report = locate_credentials()
    for source in report.sources:
        if source.problem:
            yield "warn", f"Kaggle credentials in {source.where}: {source.problem}"
    chosen = report.chosen
    if chosen is None:
        shell = shell_only_variables()
        if shell:
            yield (
                "fail",
                f"no usable Kaggle credentials where the service looks: {', '.join(shell)} in "
                "this shell do not reach a service (store them where it looks: "
                "`syncd auth kaggle --from-env`)",
            )
        else:
            yield "fail", f"no usable Kaggle credentials where the service looks ({HOW_TO_STORE})"
        return
    what = {"token": "API token", "legacy": "legacy key", "oauth": "OAuth login"}[chosen.kind]
    who = f" for {chosen.username}" if chosen.username else ""
    yield "ok", f"Kaggle {what}{who} in {chosen.where}, where the service looks first"


def disk_space(config: Config, sizes: dict[str, int]) -> Iterator[Check]:
    """Room for the first mirror on each local target, and for snapshot staging."""
    staging = Path(tempfile.gettempdir())
    for pc in config.projects:
        size = sizes.get(pc.name)
        if size is None:
            continue
        places: list[tuple[str, Path]] = []
        if pc.mirror is not None and pc.mirror.to.kind == "local":
            places.append(("the target", _existing(Path(pc.mirror.to.path or ""))))
        if pc.snapshot is not None:
            places.append(("snapshot staging", staging))
        for what, where in places:
            try:
                free = shutil.disk_usage(where).free
            except OSError:
                continue
            room = f"{free // MiB} MB free in {where}"
            if size > free:
                fix = (
                    "set TMPDIR to a roomier disk"
                    if what == "snapshot staging"
                    else "free some space, or choose another disk"
                )
                yield "fail", f"{pc.name}: {what} needs {size // MiB} MB, {room} ({fix})"
            else:
                yield "ok", f"{pc.name}: {room} for {what} ({size // MiB} MB needed)"
