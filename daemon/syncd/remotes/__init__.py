"""Mirror and snapshot targets: the ``Remote`` protocol, and the remote for an address.

``base`` holds the protocol and its value types; ``local`` is a plain folder,
``gdrive/`` Google Drive (the only package importing pydrive2 and
googleapiclient) and ``kaggle/`` the Kaggle datasets adapter (the only module
importing the kaggle client is ``kaggle/client.py``).  Callers above this layer
import ``Remote``, ``Features``, ``RemoteEntry``, ``UploadResult`` and
``open_remote`` from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .base import Features, Remote, RemoteEntry, RemoteState, UploadResult

if TYPE_CHECKING:
    from ..config import DriveConfig, RemoteAddress

__all__ = ["Features", "Remote", "RemoteEntry", "RemoteState", "UploadResult", "open_remote"]


def open_remote(
    address: RemoteAddress, *, drive: DriveConfig, state: RemoteState, project: str
) -> Remote:
    """The remote for a parsed ``mirror.to`` address.

    ``state``/``project`` give a remote its private corner of the state db (``kv_*``)
    for what it must remember across restarts (folder ids, pending create intents);
    a remote sees nothing else of the index.
    Each kind is imported only when used: ``local:`` never pays for googleapiclient.
    """
    if address.kind == "local":
        from .local import LocalRemote

        return LocalRemote(address.raw, Path(address.path or ""))
    if address.kind == "gdrive":
        from .gdrive.backend import GDriveRemote

        return GDriveRemote(address, drive, state, project)
    raise ValueError(f"no remote for {address.raw!r}")
