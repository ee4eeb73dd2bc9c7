"""``syncd auth drive``: get Google Drive access once, and say plainly what it allows.

The CLI calls ``auth_drive``; everything it prints is here, the OAuth
mechanics are in ``remotes.gdrive.credentials`` (only ``remotes/gdrive/`` knows pydrive2).
The result is a credentials file (mode 0600) that a running daemon notices and
uses at its next retry, so nobody has to restart it.
"""

from __future__ import annotations

import getpass
import socket
import webbrowser
from collections.abc import Callable
from pathlib import Path

from ..config import DriveConfig, load_config
from ..errors import ConfigError, SyncdError


def _scope_text(cfg: DriveConfig) -> str:
    if cfg.scope == "file":
        return (
            "Access asked for: drive.file. syncd will see only the files and folders it creates\n"
            "itself, so mirror into a folder syncd creates (the default gdrive:/syncd/<project>).\n"
            "To mirror into a folder you made in Drive yourself, set `scope: full` under `drive:`\n"
            "in the config and run `syncd auth drive` again."
        )
    return (
        "Access asked for: all of your Drive (drive.scope: full). syncd only ever writes below\n"
        "each project's mirror.to folder."
    )


def _tunnel_text(port: int) -> str:
    where = f"{getpass.getuser()}@{socket.gethostname()}"
    return (
        "No browser on this machine? On your desktop, open an SSH tunnel first:\n\n"
        f"    ssh -L {port}:localhost:{port} {where}\n\n"
        f"then open the URL in the desktop's browser: Google sends it back to localhost:{port},\n"
        "and the tunnel brings that here."
    )


def auth_drive(
    cfg: DriveConfig,
    *,
    no_browser: bool = False,
    service_account: Path | None = None,
    config_path: Path | None = None,
    out: Callable[[str], None] = print,
    open_browser: Callable[[str], bool] | None = None,
    ports: tuple[int, ...] = (8080, 8090),
    timeout: float = 600.0,
) -> Path:
    """Run the loopback flow (or check a service account key); returns the file written.

    Raises ``SyncdError`` with one sentence and its remedy when it cannot finish.
    ``open_browser``/``ports``/``timeout`` exist for tests.
    """
    from ..remotes.gdrive.credentials import loopback_flow, service_account_flow

    if service_account is not None:
        install_to = cfg.service_account_key or cfg.credentials.with_name(
            "drive-service-account.json"
        )
        grant = service_account_flow(cfg, service_account.expanduser(), install_to)
        out(f"Service account {grant.email} works (checked against Google Drive).")
        out(f"Saved its key to {grant.saved_to} (mode 0600).")
        lines = []
        if cfg.service_account_key is None or cfg.service_account_key != grant.saved_to:
            lines.append(f"    service_account_key: {grant.saved_to}")
        if cfg.scope != "full":  # with drive.file it would not see the folder shared with it
            lines.append("    scope: full")
        if lines:
            where = f" in {config_path}" if config_path else ""
            out(f"Add this under `drive:`{where}:\n\n" + "\n".join(lines) + "\n")
        out(
            "Service accounts have no storage of their own: share a Shared Drive folder with\n"
            f"{grant.email} and mirror into it with `mirror.to: gdrive:id=<folderId>`."
        )
        if cfg.scope == "full" and cfg.service_account_key == grant.saved_to:
            prove_targets(config_path, cfg, out)
        return grant.saved_to

    opener = open_browser or (lambda url: webbrowser.open(url, new=1, autoraise=True))

    def show(url: str, port: int) -> None:
        out(_scope_text(cfg))
        out("")
        opened = False if no_browser else bool(opener(url))
        if opened:
            out("Your browser has been opened at the page below; allow access there:")
        else:
            out("Open this URL in a browser and allow access:")
        out(f"\n    {url}\n")
        if not opened:
            out(_tunnel_text(port))
            out("")
        out(f"Waiting for the answer on http://localhost:{port}/ (Ctrl-C to give up) ...")

    grant = loopback_flow(cfg, show_url=show, ports=ports, timeout=timeout)
    out(f"Signed in as {grant.email}.")
    out(f"Saved the Drive credentials to {grant.saved_to} (mode 0600).")
    out("A running syncd picks them up at its next retry; no restart needed.")
    prove_targets(config_path, cfg, out)
    return grant.saved_to


def prove_targets(config_path: Path | None, cfg: DriveConfig, out: Callable[[str], None]) -> None:
    """Find (or make, before a first sync) every project's Drive folder with the new grant.

    A working token is not a working mirror: under drive.file syncd must own the
    folder it writes into.  Raises ``SyncdError`` naming the first project that
    cannot reach its folder.
    """
    from ..remotes.gdrive.probe import probe, synced_before

    if config_path is None:
        return
    try:
        config = load_config(config_path)
    except ConfigError:
        return  # `syncd doctor` reports the config itself
    for pc in config.projects:
        if pc.mirror is None or pc.mirror.to.kind != "gdrive":
            continue
        to = pc.mirror.to
        first = not synced_before(config.path, pc.name, to.raw)
        try:
            reached = probe(cfg, to, pc.name, create=first)
        except SyncdError as exc:
            what = f"{pc.name}: {to} is not reachable: {exc.message}"
            raise SyncdError(what, exc.remedy) from exc
        verb = "created" if reached.created else "found"
        out(f"{pc.name}: {verb} {to} on Google Drive (folder id {reached.folder_id}).")
