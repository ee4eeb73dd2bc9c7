"""Mirror and snapshot targets: the ``Remote`` protocol, and the remote for an address.

``base`` holds the protocol and its value types; ``local`` is a plain folder,
``gdrive/`` Google Drive (the only package importing pydrive2 and
googleapiclient) and ``kaggle/`` the Kaggle datasets adapter (the only module
importing the kaggle client is ``kaggle/client.py``).  Callers above this layer
import ``Remote``, ``RemoteEntry``, ``UploadResult`` and ``open_remote`` from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .base import Remote, RemoteEntry, UploadResult

if TYPE_CHECKING:
    from ..config import DriveConfig, RemoteAddress
    from ..db.statedb import StateDB

__all__ = ["Remote", "RemoteEntry", "UploadResult", "open_remote"]


def open_remote(address: RemoteAddress, *, drive: DriveConfig, db: StateDB, project: str) -> Remote:
    """The remote for a parsed ``mirror.to`` address.

    ``db``/``project`` give a remote a private corner of the state db (``kv_*``) for
    what it must remember across restarts (folder ids, pending create intents).
    Each kind is imported only when used: ``local:`` never pays for googleapiclient.
    """
    if address.kind == "local":
        from .local import LocalRemote

        return LocalRemote(address.raw, Path(address.path or ""))
    if address.kind == "gdrive":
        from .gdrive.backend import GDriveRemote

        return GDriveRemote(address, drive, db, project)
    raise ValueError(f"no remote for {address.raw!r}")
