"""``syncd doctor``: checks that say what to fix before the daemon trips over it.

Each check yields ``(level, message)`` with level ``ok``, ``warn`` or ``fail``; a
message that is not ``ok`` ends with the fix.  What is checked is what the
README says: the config (including the Kaggle rules of each ``snapshot:``
section), the state folder, every project folder, inotify limits against the
folders to watch, the clock, then (``doctor_targets``) every target and its
credentials as the service will see them, and free disk where staging and
targets live.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Generator, Iterator
from pathlib import Path

from ..config import Config, ProjectConfig, load_config
from ..errors import ConfigError
from ..localfs.ignore import IgnoreRules
from .doctor_targets import credentials, disk_space, targets

Check = tuple[str, str]
CONFIG_BROKEN = "config"  # a fail that makes doctor exit 2, like any command on that config

INOTIFY_WATCHES = Path("/proc/sys/fs/inotify/max_user_watches")
# Per user namespace (Linux >= 4.9): a container or `unshare` may allow fewer than the sysctl.
INOTIFY_WATCHES_NS = Path("/proc/sys/user/max_inotify_watches")


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def run_checks(config_path: Path) -> Iterator[Check]:
    """Every check, in order; raises nothing (a broken config is one ``fail``)."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        yield CONFIG_BROKEN, str(exc)
        return
    yield "ok", f"config {config.path} is valid ({plural(len(config.projects), 'project')})"
    yield from _snapshot_settings(config)
    yield from _state_folder(config)
    sizes = yield from _folders_and_watches(config)
    yield from _clock()
    yield from targets(config)
    yield from credentials(config)
    yield from disk_space(config, sizes)


def _snapshot_settings(config: Config) -> Iterator[Check]:
    """Kaggle's rules (slug 6–50 lowercase letters, digits and hyphens; title; license),
    and those of the `train:` section."""
    from ..remotes.kaggle.rules import dataset_metadata

    for pc in config.projects:
        if pc.snapshot is None:
            continue
        try:
            meta = dataset_metadata(pc.name, pc.snapshot)
        except ConfigError as exc:
            yield "fail", f"{exc} (fix it in {config.path})"
            continue
        yield "ok", f"{pc.name}: Kaggle dataset {meta.ref} ('{meta.title}') meets Kaggle's rules"
        if pc.snapshot.data and pc.path.is_dir():
            yield from _data_entries(pc)
        if pc.train is not None:
            yield from _train_settings(config, pc)


def _data_entries(pc: ProjectConfig) -> Iterator[Check]:
    """Each ``snapshot.data`` entry holds files a snapshot would ship (else snapshots fail)."""
    from ..snapshot.data_select import in_data
    from ..snapshot.notes import human_bytes
    from ..snapshot.select import project_selection

    assert pc.snapshot is not None
    parts = project_selection(pc).parts()
    empty = {e.entry: e for e in parts.empty}
    for entry in pc.snapshot.data:
        if entry in empty:
            yield "fail", str(empty[entry].error(pc.name))
            continue
        sizes = [lf.size for rel, lf in parts.data.items() if in_data(rel, (entry,))]
        shown = entry + "/" if (pc.path / entry).is_dir() else entry
        what = f"{plural(len(sizes), 'file')}, {human_bytes(sum(sizes))}"
        yield "ok", f"{pc.name}: snapshot.data {shown} has {what} for {pc.snapshot.data_dataset}"


def _train_settings(config: Config, pc: ProjectConfig) -> Iterator[Check]:
    """What `syncd train` refuses before any upload (accelerator id, image, timeout, ...)."""
    from ..train.preflight import check_settings

    assert pc.train is not None
    try:
        check_settings(pc.name, pc.train, pc.train.machine_shape, pc.train.command)
    except ConfigError as exc:
        yield "fail", f"{exc} (fix it in {config.path})"
        return
    yield "ok", f"{pc.name}: train settings ({pc.train.machine_shape}) meet Kaggle's rules"


def _state_folder(config: Config) -> Iterator[Check]:
    from ..db.statedb import state_db_path

    folder = state_db_path(config.path).parent
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    problem = None
    if not probe.is_dir():
        problem = f"{probe} is not a folder"
    else:
        try:
            fd, name = tempfile.mkstemp(prefix=".syncd-doctor-", dir=probe)
            os.close(fd)
            os.unlink(name)
        except OSError as exc:
            problem = "it is on a read-only disk" if exc.errno == errno.EROFS else exc.strerror
    if problem:
        yield (
            "fail",
            f"the state folder {folder} cannot be used: {problem} (make it a writable folder, "
            "or point XDG_STATE_HOME at one)",
        )
    else:
        yield "ok", f"the state folder {folder} is writable"


def _count(root: Path, rules: IgnoreRules) -> tuple[int, int]:
    """(folders, bytes) that the watcher and a snapshot would cover."""
    folders, size = 0, 0
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel + "/"
        dirnames[:] = [d for d in dirnames if not rules.is_ignored(rel + d, True)]
        folders += 1
        for name in filenames:
            try:
                size += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return folders, size


def _watch_limit() -> int | None:
    limits = []
    for path in (INOTIFY_WATCHES, INOTIFY_WATCHES_NS):
        try:
            limits.append(int(path.read_text()))
        except (OSError, ValueError):
            continue
    return min(limits) if limits else None


def _folders_and_watches(config: Config) -> Generator[Check, None, dict[str, int]]:
    """Each project folder; returns {project: bytes} for the disk checks."""
    total, sizes = 0, dict[str, int]()
    for pc in config.projects:
        if not pc.path.is_dir():
            yield "fail", f"{pc.name}: folder {pc.path} does not exist (fix `path` in the config)"
            continue
        folders, size = _count(pc.path, IgnoreRules(pc.path, pc.ignore))
        total += folders
        sizes[pc.name] = size
        yield "ok", f"{pc.name}: {pc.path} has {plural(folders, 'folder')} to watch"
    if not any(pc.mirror for pc in config.projects):
        return sizes
    yield from _inotify(total)
    return sizes


def _inotify(total: int) -> Iterator[Check]:
    if os.environ.get("SYNCD_TEST_INOTIFY_FAIL"):
        yield "warn", "inotify is switched off (SYNCD_TEST_INOTIFY_FAIL): syncd polls instead"
        return
    if not INOTIFY_WATCHES.exists():
        return  # not Linux: FSEvents on macOS has no per-folder limit
    problem = _inotify_instance_problem()
    if problem:
        yield (
            "fail",
            f"cannot start an inotify watcher ({problem}): syncd would poll instead; raise it "
            "with `echo fs.inotify.max_user_instances=512 | sudo tee "
            "/etc/sysctl.d/90-syncd-instances.conf && sudo sysctl --system`",
        )
    limit = _watch_limit()
    if limit is None:
        return
    want = max(524288, total * 4)
    fix = (
        f"`echo fs.inotify.max_user_watches={want} | sudo tee /etc/sysctl.d/90-syncd.conf "
        "&& sudo sysctl --system`"
    )
    if total >= limit:
        yield (
            "fail",
            f"inotify allows {limit} watches and the projects need {total}: folders past the "
            f"limit would only be polled; raise it with {fix}",
        )
    elif total > limit // 2:
        yield (
            "warn",
            f"inotify allows {limit} watches and the projects need {total} (other programs "
            f"use them too); raise it with {fix}",
        )
    else:
        yield "ok", f"inotify watch limit {limit} covers the {plural(total, 'folder')}"


def _inotify_instance_problem() -> str | None:
    """Try to start an inotify instance, as the watcher will (EMFILE: the instance limit)."""
    libc = _libc()
    if libc is None or not hasattr(libc, "inotify_init1"):
        return None
    fd = libc.inotify_init1(0)
    if fd < 0:
        code = ctypes.get_errno()
        return "instance limit reached" if code == errno.EMFILE else os.strerror(code)
    os.close(fd)
    return None


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name, use_errno=True) if name else None
    except OSError:
        return None


def _clock() -> Iterator[Check]:
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if time.gmtime().tm_year < 2025:
        yield (
            "fail",
            f"the system clock says {now}, which is in the past: OAuth tokens and schedules "
            "will fail (set the time, and enable NTP: `sudo timedatectl set-ntp true`)",
        )
        return
    synced = _ntp_synchronised()
    if synced is True:
        yield "ok", f"the clock ({now}) is synchronised (NTP)"
    elif synced is False:
        yield (
            "warn",
            f"the clock ({now}) is not NTP-synchronised: OAuth tokens and schedules drift "
            "(enable it: `sudo timedatectl set-ntp true`, or start chrony/ntpd)",
        )
    else:
        yield "ok", f"the clock says {now} (whether NTP keeps it right is unknown here)"


def _ntp_synchronised() -> bool | None:
    """timedatectl's answer, else the kernel's own NTP status (ntp_adjtime), else None."""
    if shutil.which("timedatectl"):
        try:
            out = subprocess.run(
                ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        if out in ("yes", "no"):
            return out == "yes"
    libc = _libc()
    if libc is None or not hasattr(libc, "ntp_adjtime"):
        return None
    timex = ctypes.create_string_buffer(512)  # struct timex, modes = 0: only read the state
    state = libc.ntp_adjtime(timex)
    if state < 0:
        return None
    return state != 5  # TIME_ERROR: the kernel clock is not synchronised
