"""Which Drive scopes a grant carries, and whether they fit ``drive.scope``.

Google's token answer says what the user *granted* (``scope``); with granular
consent that can be less than syncd asked for, and credentials made for one
scope may meet a config that names another.  ``syncd auth drive`` and the
daemon's credential loading (``credentials``) both check it here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...errors import AuthRequired

if TYPE_CHECKING:
    from ...config import DriveConfig

SCOPES = {
    "file": "https://www.googleapis.com/auth/drive.file",
    "full": "https://www.googleapis.com/auth/drive",
}
SA_NEEDS_FULL = (
    "a service account needs `scope: full` under `drive:` (with drive.file it sees only "
    "what it created itself, not the Shared Drive folder shared with it)"
)


def granted_scopes(credentials: Any) -> set[str] | None:
    """The scopes Google granted (its token answer's ``scope``), None if it never said.

    oauth2client's ``scopes`` is what was *asked*; with granular consent a user may
    grant less, so the answer's own ``scope`` is the truth.
    """
    response = getattr(credentials, "token_response", None)
    if not isinstance(response, dict) or "scope" not in response:
        return None
    return set(str(response["scope"] or "").split())


def scope_problem(cfg: DriveConfig, granted: set[str] | None) -> AuthRequired | None:
    """Why a grant does not fit ``drive.scope`` (None if it does or cannot be known).

    Narrower than configured: syncd cannot see what it must.  Wider (full access
    while drive.scope is file): syncd would list the whole Drive as if it were its
    own folder tree.  Either way the user re-authorises for the configured scope.
    """
    if granted is None:
        return None
    wanted = SCOPES[cfg.scope]
    if wanted in granted and (cfg.scope == "full" or SCOPES["full"] not in granted):
        return None
    return AuthRequired(
        f"the saved Drive credentials allow {scope_names(granted)}, but drive.scope is {cfg.scope}",
        "run `syncd auth drive` to sign in again for that scope",
    )


def scope_names(scopes: set[str]) -> str:
    """``{".../auth/drive.file"}`` → ``"drive.file"``: how Google's consent page names them."""
    return ", ".join(sorted(s.rsplit("/", 1)[-1] for s in scopes)) or "nothing"
