"""``syncd flush`` and ``syncd colab``: the target's manifest, from the command line.

Both go through the config's controller (``service.colab``).  ``flush`` needs
the daemon (it answers once its engine has walked and written the manifest);
``colab`` works without one (a one-shot walk puts the helper on Drive) and
prints the cell to paste into Colab.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .context import EXIT_OK, controller, say

# The cell `syncd colab` prints.  It loads the helper from the working copy (kept in
# step by the helper itself, so a re-run costs the manifest request alone); on the first
# run in a runtime it fetches the helper through the Drive API by its id, or from the
# mounted Drive when the API is out of reach.
CELL = """\
# syncd: /content/{project} <- the newest files syncd mirrored (re-run after each edit)
SYNCD = {{"project": {project!r}, "manifest_id": {manifest_id!r}, "mounted": {mounted!r}}}
HELPER_ID = {helper_id!r}
import importlib.util, os, sys
from google.colab import auth
auth.authenticate_user()
_home = os.path.join(os.environ.get("SYNCD_COLAB_CONTENT") or "/content", SYNCD["project"])
_helper = os.path.join(_home, ".syncd", "colab.py")
if not os.path.exists(_helper):  # first run in this runtime: fetch the helper
    try:
        import google.auth, google.auth.transport.requests
        _api = os.environ.get("SYNCD_DRIVE_ENDPOINT") or "https://www.googleapis.com/"
        _s = google.auth.transport.requests.AuthorizedSession(google.auth.default()[0])
        _r = _s.get(f"{{_api}}drive/v2/files/{{HELPER_ID}}?alt=media", timeout=60)
        _r.raise_for_status()
        _code = _r.content
    except Exception as _e:  # no API from here: the mounted Drive's copy, if there is one
        if not SYNCD["mounted"]:  # a gdrive:id= target: no known path on the mount
            raise SystemExit(
                f"syncd: the Drive API is out of reach ({{_e}}), and this project's target is "
                "a Drive folder id (gdrive:id=…), which has no mounted-Drive path to fall back "
                "on; run auth.authenticate_user() and this cell again once the API is reachable"
            ) from None
        print(f"syncd: the Drive API is out of reach ({{_e}}); using the mounted Drive")
        from google.colab import drive
        drive.mount("/content/drive")
        _code = open(os.path.join(SYNCD["mounted"], ".syncd", "colab.py"), "rb").read()
    os.makedirs(os.path.dirname(_helper), exist_ok=True)
    with open(_helper, "wb") as _f:
        _f.write(_code)
_spec = importlib.util.spec_from_file_location("syncd_colab", _helper)
syncd_colab = sys.modules["syncd_colab"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(syncd_colab)
syncd_colab.sync(**SYNCD)  # later, after training: syncd_colab.save("outputs/")
"""


def cell(info: dict[str, Any]) -> str:
    return CELL.format(**info)


def _wait(args: argparse.Namespace) -> tuple[float | None, float | None]:
    """(the daemon's wait, the client's socket timeout): a little longer than the wait."""
    from ..service.protocol import quick_timeout

    if args.timeout is None:
        return None, None
    return args.timeout, args.timeout + quick_timeout()


def cmd_flush(args: argparse.Namespace) -> int:
    from ..service.ipc import DaemonNotRunning

    wait, socket_timeout = _wait(args)
    with controller(args, fallback=False) as ctl:
        try:
            result = ctl.remote("flush", timeout=socket_timeout, project=args.project, wait=wait)
        except DaemonNotRunning:
            raise DaemonNotRunning(
                f"syncd is not running for {ctl.config_path}, so nothing is being mirrored",
                "start it with `syncd run`, or mirror once with `syncd sync --once`",
            ) from None
    if args.json:
        print(json.dumps(result, indent=2))
        return EXIT_OK
    for p in result["projects"]:
        print(f"{p['name']}: every edit is on {p['target']}; manifest {p['seq']} ({p['at']})")
    return EXIT_OK


def cmd_colab(args: argparse.Namespace) -> int:
    from ..service.ipc import DaemonNotRunning

    wait, socket_timeout = _wait(args)
    fields: dict[str, Any] = {"project": args.project, "wait": wait}
    with controller(args) as ctl:
        try:
            info = ctl.remote("colab", timeout=socket_timeout, **fields)
        except DaemonNotRunning:  # a one-shot walk here puts the helper on Drive
            info = ctl.local("colab", **fields)
    say(
        f"paste this into a Colab cell: it brings /content/{info['project']} to manifest "
        f"{info['seq']} (and to the newest one on every re-run), then enters it"
    )
    print(cell(info), end="")
    return EXIT_OK
