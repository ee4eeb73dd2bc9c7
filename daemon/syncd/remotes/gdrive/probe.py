"""Prove that a project's Drive folder is reachable with the saved credentials.

A token that answers ``about.get`` proves little: under the default drive.file
scope the folder syncd mirrors into must be one syncd created, My Drive's root
cannot even be read, and a service account has no storage.  ``probe`` does what
the daemon's first sync does — find ``gdrive:/syncd/<project>`` (or the
``gdrive:id=`` folder), and create it if the project never synced — with a
throwaway state database, so it never races a running daemon's index.  Used by
``syncd auth drive`` and ``syncd doctor``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ...db.statedb import StateDB, state_db_path
from ...errors import TargetUnavailable
from .backend import GDriveRemote

if TYPE_CHECKING:
    from ...config import DriveConfig, RemoteAddress


@dataclass(frozen=True)
class Reached:
    """What the probe found: the folder's id, and whether it made it just now."""

    folder_id: str
    created: bool


def synced_before(config_path: Path, project: str, target: str) -> bool:
    """The project has mirrored into ``target`` already (then a missing folder is news)."""
    path = state_db_path(config_path)
    if not path.exists():
        return False
    db = StateDB(path)
    try:
        return db.project(project).target == target and db.count(project)[0] > 0
    finally:
        db.close()


def probe(cfg: DriveConfig, address: RemoteAddress, project: str, create: bool) -> Reached:
    """Find the project's Drive folder, or make it if ``create``; raise like the daemon would.

    Raises ``AuthRequired``, ``TransientError`` or ``TargetUnavailable`` (whose message
    says what to do).
    """
    with tempfile.TemporaryDirectory(prefix="syncd-probe-") as tmp:
        db = StateDB(Path(tmp) / "probe.db")
        remote = GDriveRemote(address, cfg, db, project)
        try:
            try:
                remote.check(create=False)
                return Reached(remote.ns.root().id, created=False)
            except TargetUnavailable:
                if not create or address.folder_id is not None:
                    raise
            remote.check(create=True)
            return Reached(remote.ns.root().id, created=True)
        finally:
            remote.close()
            db.close()
