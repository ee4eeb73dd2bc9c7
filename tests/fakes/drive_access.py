"""Who is asking: the user, the OAuth client (app) and the scopes of an access token.

Drive decides what a request may see from the token's scopes:

- ``drive`` (full): every item the user owns or that is shared with them.
- ``drive.file``: only items *this app* created, or that the user opened with
  it (Picker, "Open with"); everything else answers 404 and is absent from
  lists and the changes feed (Google's "Choose Google Drive API scopes"
  guide; rclone ``backend/drive/drive.go`` scope help: "Access to files
  created by rclone only"; rclone commit 1e423d21e: ``GET files/root`` is a
  404 under drive.file).

Items made "by hand" (the web UI) belong to no app; a file Colab writes
belongs to Colab's app.  The fake's seeding helpers use these actors.
"""

from __future__ import annotations

from dataclasses import dataclass

SCOPE_FULL = "https://www.googleapis.com/auth/drive"
SCOPE_FILE = "https://www.googleapis.com/auth/drive.file"
SCOPE_NAMES = {"full": SCOPE_FULL, "file": SCOPE_FILE}

USER = "fake.user@example.com"  # the one human account of the fake
APP = "fake-client-id.apps.googleusercontent.com"  # syncd's OAuth client in tests
COLAB = "colab.research.google.com"  # another app writing into the same Drive
BY_HAND = ""  # the Drive web UI: no app


def scope_url(scope: str) -> str:
    """``"file"``/``"full"`` or a scope URL → the scope URL."""
    return SCOPE_NAMES.get(scope, scope)


@dataclass(frozen=True)
class Access:
    """What one access token may do."""

    user: str
    app: str
    scopes: frozenset[str]

    @property
    def full(self) -> bool:
        return SCOPE_FULL in self.scopes

    @property
    def any_drive(self) -> bool:
        return self.full or SCOPE_FILE in self.scopes

    @classmethod
    def of(cls, scope: str = "file", *, user: str = USER, app: str = APP) -> Access:
        return cls(user, app, frozenset(scope_url(s) for s in scope.split()))


# What the fake itself does (seeding, inspection): sees and may do everything.
GOD = Access("", "", frozenset({SCOPE_FULL}))
