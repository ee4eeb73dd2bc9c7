"""syncd's Colab helper: keeps ``/content/<project>`` in step with the project's manifest.

``syncd colab PROJECT`` writes this file as ``.syncd/colab.py`` into the project (so
it is mirrored like any file) and prints a cell that runs ``sync(...)`` from it.
It stands alone: the standard library, googleapiclient and google-auth (both in
every Colab runtime) and ``google.colab``; syncd itself is not installed there.

Colab's mounted Drive serves stale files for seconds to tens of minutes
(googlecolab/colabtools #958, #3567, #677), so ``sync`` reads the manifest
syncd writes after each batch *through the Drive API by its file id* — one
request when nothing changed — and downloads (in parallel, md5-verified, via a
temp file and a rename) only the files whose md5 differs from the working
copy's.  Files it placed earlier that left the manifest are deleted; the
project's modules are dropped from ``sys.modules`` (Python's module cache is the
second layer of staleness, #957), and the working copy becomes the current
folder.  Credentials come from ``google.auth.default()`` (what Colab provides
after ``google.colab.auth.authenticate_user()``), the API root from
``SYNCD_DRIVE_ENDPOINT`` when set.  Without the API (no credentials, no
network) it falls back to the mounted Drive: it waits (bounded) for the mounted
files to match the mounted manifest, remounts once, then names what is still
stale.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

API_ROOT = "https://www.googleapis.com/"
MANIFEST_PATH = ".syncd/manifest.json"
PARALLEL = 8  # downloads at once
CHUNK = 64 << 20  # a file up to this size is one download request
RETRIES = 3  # googleapiclient's own retries of 5xx, 429 and broken connections
WAIT_S = 60.0  # fallback: how long to wait for the mounted Drive, before and after a remount
POLL_S = 1.0

# Survives re-running the cell (which re-executes this file): the Drive client, so a
# re-run costs the manifest request alone, not a token refresh and a discovery build.
_CACHE: Any = sys.modules.setdefault("_syncd_colab_cache", types.ModuleType("_syncd_colab_cache"))


class ApiUnavailable(Exception):
    """The Drive API cannot be used from here (no credentials, no network): use the mount."""


@dataclass
class Result:
    """What one ``sync`` did; ``message`` is the line it printed."""

    mode: str  # "api" or "mounted"
    seq: int | None
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # still not as the manifest says
    message: str = ""


# --- the Drive client ----------------------------------------------------------------


def _client() -> tuple[Any, Callable[[], Any]]:
    """(Drive's ``files`` resource, a factory of per-thread authorized http objects), cached
    across runs."""
    root = os.environ.get("SYNCD_DRIVE_ENDPOINT") or API_ROOT
    cached = getattr(_CACHE, "client", None)
    if cached is not None and cached[0] == root:
        return cached[1], cached[2]
    try:
        import google.auth
        import google.auth.exceptions
        import google_auth_httplib2  # type: ignore[import-untyped]
        from googleapiclient import discovery, discovery_cache
        from googleapiclient.http import build_http

        creds, _ = google.auth.default()
    except (ImportError, google.auth.exceptions.DefaultCredentialsError) as exc:
        raise ApiUnavailable(f"no Google credentials here ({exc})") from exc
    doc = json.loads(discovery_cache.get_static_doc("drive", "v2") or "{}")
    if not doc:
        raise ApiUnavailable("this googleapiclient has no bundled Drive discovery document")
    # The discovery document's root, not client_options: upload and download URLs keep
    # the document's scheme and host otherwise (see syncd's notes on pointing at a fake).
    doc["rootUrl"] = doc["mtlsRootUrl"] = root
    doc["baseUrl"] = root + doc["servicePath"]

    def make_http() -> Any:
        return google_auth_httplib2.AuthorizedHttp(creds, http=build_http())

    # files(): the resource, built once (building it from the document takes ~0.1 s)
    service = discovery.build_from_document(doc, http=make_http()).files()
    _CACHE.client = (root, service, make_http)
    return service, make_http


def _offline(exc: BaseException) -> str | None:
    """Why ``exc`` means "the API is out of reach" (fall back), or None (a real error)."""
    import google.auth.exceptions
    import httplib2
    from googleapiclient.errors import HttpError

    if isinstance(exc, google.auth.exceptions.GoogleAuthError):
        return f"credentials refused: {exc}"
    if isinstance(exc, HttpError) and exc.resp.status in (401, 403):
        return f"the Drive API answered {exc.resp.status}"
    if isinstance(exc, OSError | httplib2.HttpLib2Error):
        return f"cannot reach the Drive API: {exc}"
    return None


# per-thread http objects, kept across re-runs like the client (a fresh one is a new
# connection: ~0.1 s of a one-file update on loopback)
_local: threading.local = getattr(_CACHE, "local", None) or threading.local()
_CACHE.local = _local


def _http(make_http: Callable[[], Any]) -> Any:
    """httplib2 is not thread-safe: one authorized http object per download thread."""
    if getattr(_local, "http", None) is None:
        _local.http = make_http()
    return _local.http


class ManifestMissing(RuntimeError):
    """The cell's manifest id is not (or no longer) a file this account can read."""


def _fetch_manifest(service: Any, manifest_id: str) -> dict[str, Any]:
    from googleapiclient.errors import HttpError

    try:
        data = service.get_media(fileId=manifest_id).execute(num_retries=RETRIES)
    except HttpError as exc:
        if exc.resp.status != 404:
            raise
        raise ManifestMissing(
            f"syncd: the manifest {manifest_id} is not on Drive (deleted, or another "
            "account?); run `syncd colab PROJECT` on your machine for a new cell"
        ) from None
    return _parse_manifest(data)


def _parse_manifest(data: bytes) -> dict[str, Any]:
    manifest = json.loads(data)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ValueError("not a syncd manifest")
    return manifest


def _download(service: Any, make_http: Callable[[], Any], file_id: str, dest: Path) -> str:
    """Write the file's content next to ``dest`` and return its md5 (``dest`` untouched)."""
    from googleapiclient.http import MediaIoBaseDownload

    request = service.get_media(fileId=file_id)
    request.http = _http(make_http)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".syncd-dl-", dir=dest.parent)
    h = hashlib.md5()
    try:
        with os.fdopen(fd, "wb") as f:
            down = MediaIoBaseDownload(f, request, chunksize=CHUNK)
            done = False
            while not done:
                _, done = down.next_chunk(num_retries=RETRIES)
        with open(tmp, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        os.replace(tmp, dest.with_name(dest.name + ".syncd-new"))
    finally:
        Path(tmp).unlink(missing_ok=True)
    return h.hexdigest()


# --- the working copy ----------------------------------------------------------------


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _inside(work: Path, rel: str) -> Path:
    """The working copy's path for a manifest path; never outside the working copy."""
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"refusing the manifest path {rel!r}")
    return work.joinpath(*parts)


class WorkingCopy:
    """``/content/<project>`` and the record of what this helper placed there."""

    def __init__(self, content: Path, project: str) -> None:
        self.root = content / project
        self.state_file = content / f".syncd-{project}.json"  # outside the working copy
        try:
            self.placed: dict[str, dict[str, Any]] = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            self.placed = {}

    def matches(self, rel: str, want: dict[str, Any]) -> bool:
        """The file is there with the manifest's md5 (re-hashed only if it changed since)."""
        path = _inside(self.root, rel)
        try:
            st = path.stat()
        except OSError:
            return False
        if st.st_size != want["size"]:
            return False
        known = self.placed.get(rel)
        if known and (known["size"], known["mtime_ns"]) == (st.st_size, st.st_mtime_ns):
            return bool(known["md5"] == want["md5"])
        if _md5(path) != want["md5"]:
            return False
        self.record(rel, want["md5"])
        return True

    def record(self, rel: str, md5: str) -> None:
        path = _inside(self.root, rel)
        st = path.stat()
        self.placed[rel] = {"md5": md5, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        if path.suffix == ".py":
            # A .pyc is trusted when the source's size and whole-second mtime match: a
            # same-size edit placed within the second of the last compile would run the
            # old code.  Dropping the cached bytecode makes the next import compile anew.
            for pyc in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
                pyc.unlink(missing_ok=True)

    def install(self, rel: str) -> None:
        """Put a verified download (``NAME.syncd-new``) in place."""
        path = _inside(self.root, rel)
        os.replace(path.with_name(path.name + ".syncd-new"), path)

    def discard(self, rel: str) -> None:
        path = _inside(self.root, rel)
        path.with_name(path.name + ".syncd-new").unlink(missing_ok=True)

    def remove_gone(self, listed: dict[str, Any]) -> list[str]:
        """Delete the files this helper placed that the manifest no longer lists."""
        removed = []
        for rel in sorted(set(self.placed) - set(listed)):
            path = _inside(self.root, rel)
            path.unlink(missing_ok=True)
            self.placed.pop(rel)
            removed.append(rel)
            parent = path.parent
            while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
        return removed

    def save(self) -> None:
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(json.dumps(self.placed))
        os.replace(tmp, self.state_file)


def _enter(work: Path, keep: str) -> None:
    """Drop the project's modules (a re-run imports the new code) and work from the copy."""
    root = str(work.resolve())
    prefixes = (root + os.sep, str(work.absolute()) + os.sep)
    for name, module in list(sys.modules.items()):
        where = getattr(module, "__file__", None)
        # a plain prefix test: resolving every module's path costs ~1 ms each
        if name != keep and isinstance(where, str) and where.startswith(prefixes):
            del sys.modules[name]
    importlib.invalidate_caches()
    os.chdir(work)
    if root not in sys.path:
        sys.path.insert(0, root)


def _summary(manifest: dict[str, Any], result: Result) -> str:
    at = time.strftime("%H:%M:%S", time.localtime(float(manifest.get("at_epoch") or 0)))
    parts = []
    if manifest.get("commit"):
        parts.append(f"commit {str(manifest['commit'])[:7]}")
    newest, written = manifest.get("newest_mtime"), manifest.get("at_epoch")
    if newest is not None and written is not None:
        parts.append(f"lag {max(0.0, float(written) - float(newest)):.1f} s")
    n = len(result.updated)
    parts.append(f"{n} file{'' if n == 1 else 's'} updated")
    if result.removed:
        parts.append(f"{len(result.removed)} removed")
    line = f"fresh as of {at} ({', '.join(parts)})"
    if result.mode == "mounted":
        line += " from the mounted Drive"
    if result.stale:
        shown = ", ".join(result.stale[:5]) + (" …" if len(result.stale) > 5 else "")
        line = f"NOT fresh: {len(result.stale)} still stale ({shown}); the rest is " + line[6:]
    return line


# --- sync through the API ------------------------------------------------------------


def sync(
    project: str,
    manifest_id: str,
    *,
    mounted: str | None = None,
    drive_mount: str = "/content/drive",
    content: str | None = None,
    wait_s: float | None = None,
    quiet: bool = False,
    **_ignored: Any,
) -> Result:
    """Bring ``<content>/<project>`` to the newest manifest, then enter it (see the module doc).

    ``mounted``: the project's folder on the mounted Drive (the fallback); ``content``:
    where working copies live (default ``$SYNCD_COLAB_CONTENT`` or ``/content``).
    """
    base = Path(content or os.environ.get("SYNCD_COLAB_CONTENT") or "/content")
    copy = WorkingCopy(base, project)
    copy.root.mkdir(parents=True, exist_ok=True)
    try:
        service, make_http = _client()
        manifest = _fetch_manifest(service, manifest_id)
    except ApiUnavailable as exc:
        result, manifest = _from_mount(copy, mounted, drive_mount, wait_s, str(exc), quiet)
    except Exception as exc:
        why = _offline(exc)
        if why is None:
            raise
        result, manifest = _from_mount(copy, mounted, drive_mount, wait_s, why, quiet)
    else:
        result = _from_api(copy, service, make_http, manifest_id, manifest)
    copy.save()
    _CACHE.last = {"project": project, "manifest_id": manifest_id, "content": str(base)}
    _enter(copy.root, keep=__name__)
    result.message = _summary(manifest, result)
    if not quiet:
        print(result.message)
    return result


def _from_api(
    copy: WorkingCopy,
    service: Any,
    make_http: Callable[[], Any],
    manifest_id: str,
    manifest: dict[str, Any],
) -> Result:
    from googleapiclient.errors import HttpError

    result = Result("api", manifest.get("seq"))
    for attempt in range(2):
        files = manifest["files"]
        wanted = [rel for rel, want in sorted(files.items()) if not copy.matches(rel, want)]

        def get(rel: str, files: dict[str, Any] = files) -> tuple[str, bool]:
            try:
                md5 = _download(service, make_http, files[rel]["id"], _inside(copy.root, rel))
            except HttpError as exc:
                if exc.resp.status != 404:
                    raise
                return rel, False  # gone since this manifest: a newer one says what's there
            return rel, md5 == files[rel]["md5"]

        if len(wanted) <= 1:  # the usual re-run after an edit: no threads to start
            outcomes = [get(rel) for rel in wanted]
        else:
            with ThreadPoolExecutor(min(PARALLEL, len(wanted))) as pool:
                outcomes = list(pool.map(get, wanted))
        mismatched = []
        for rel, ok in outcomes:
            if ok:
                copy.install(rel)
                copy.record(rel, files[rel]["md5"])
                result.updated.append(rel)
            else:
                copy.discard(rel)
                mismatched.append(rel)
        if not mismatched or attempt:
            result.stale = mismatched
            break
        # The file changed on Drive after this manifest: a newer one covers it.
        manifest = _fetch_manifest(service, manifest_id)
        result.seq = manifest.get("seq")
    result.removed = copy.remove_gone(manifest["files"])
    return result


# --- the mounted Drive, when the API is out of reach ---------------------------------


def _stale_on_mount(folder: Path) -> tuple[dict[str, Any], list[str]]:
    """The mounted manifest, and the files the mounted folder does not hold as it says."""
    manifest = _parse_manifest((folder / MANIFEST_PATH).read_bytes())
    stale = []
    for rel, want in sorted(manifest["files"].items()):
        path = _inside(folder, rel)
        try:
            fresh = path.stat().st_size == want["size"] and _md5(path) == want["md5"]
        except OSError:
            fresh = False
        if not fresh:
            stale.append(rel)
    return manifest, stale


def _remount(drive_mount: str) -> None:
    from google.colab import drive  # type: ignore[import-untyped, import-not-found, unused-ignore]

    drive.mount(drive_mount, force_remount=True)


def _from_mount(
    copy: WorkingCopy,
    mounted: str | None,
    drive_mount: str,
    wait_s: float | None,
    why: str,
    quiet: bool,
) -> tuple[Result, dict[str, Any]]:
    def say(line: str) -> None:
        if not quiet:
            print(f"syncd: {line}")

    if not mounted:
        raise RuntimeError(
            f"syncd: {why}, and this project has no mounted Drive path to fall back on"
        )
    folder = Path(mounted)
    say(f"{why}; using the mounted Drive at {folder} (it may lag behind Drive)")
    if wait_s is None:
        wait_s = float(os.environ.get("SYNCD_COLAB_WAIT_S") or WAIT_S)
    if not (folder / MANIFEST_PATH).is_file():
        _remount(drive_mount)
    manifest, stale = _stale_on_mount(folder)
    for remounted in (False, True):
        if remounted and stale:
            say("remounting Drive once to refresh its cache")
            _remount(drive_mount)
            manifest, stale = _stale_on_mount(folder)
        if stale:
            say(f"waiting up to {wait_s:g} s for {len(stale)} file(s) to appear on the mount")
        deadline = time.monotonic() + wait_s
        while stale and time.monotonic() < deadline:
            time.sleep(POLL_S)
            manifest, stale = _stale_on_mount(folder)
        if not stale:
            break
    result = Result("mounted", manifest.get("seq"), stale=stale)
    _copy_from_mount(copy, folder, manifest, result)
    return result, manifest


def _copy_from_mount(
    copy: WorkingCopy, folder: Path, manifest: dict[str, Any], result: Result
) -> None:
    """Bring the working copy to the mounted files that match the manifest."""
    stale = result.stale
    for rel, want in sorted(manifest["files"].items()):
        if rel in stale or copy.matches(rel, want):
            continue
        dest = _inside(copy.root, rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".syncd-dl-", dir=dest.parent)
        with os.fdopen(fd, "wb") as out, open(_inside(folder, rel), "rb") as src:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        if _md5(Path(tmp)) != want["md5"]:  # changed under us on the mount
            Path(tmp).unlink()
            result.stale.append(rel)
            continue
        os.replace(tmp, dest)
        copy.record(rel, want["md5"])
        result.updated.append(rel)
    result.removed = copy.remove_gone(manifest["files"])


# --- save: results up to Drive now ---------------------------------------------------

FOLDER_MIME = "application/vnd.google-apps.folder"
RESUMABLE_FROM = 8 << 20  # bigger files go up in resumable chunks


@dataclass
class Saved:
    """What one ``save`` did; ``message`` is the line it printed."""

    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    message: str = ""


def _quoted(title: str) -> str:
    return "'" + title.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _children(service: Any, folder_id: str) -> list[dict[str, Any]]:
    """Every live item in a Drive folder (one request per 1000)."""
    items: list[dict[str, Any]] = []
    token = None
    while True:
        page = service.list(
            q=f"{_quoted(folder_id)} in parents and trashed = false",
            fields="nextPageToken,items(id,title,mimeType,md5Checksum)",
            maxResults=1000,
            pageToken=token,
        ).execute(num_retries=RETRIES)
        items.extend(page.get("items", []))
        token = page.get("nextPageToken")
        if not token:
            return items


def _project_folder(service: Any, manifest_id: str) -> str:
    """The project's Drive folder: the manifest's folder's parent (cached)."""
    known: dict[str, str] = getattr(_CACHE, "roots", {})
    if manifest_id not in known:
        syncd = service.get(fileId=manifest_id, fields="parents(id)").execute(num_retries=RETRIES)
        root = service.get(fileId=syncd["parents"][0]["id"], fields="parents(id)").execute(
            num_retries=RETRIES
        )
        known[manifest_id] = root["parents"][0]["id"]
        _CACHE.roots = known
    return known[manifest_id]


def save(path: str = "outputs/", *, quiet: bool = False) -> Saved:
    """Upload ``/content/<project>/<path>`` to the same place in the project's Drive folder now.

    Colab loses writes the mounted Drive has not flushed when a runtime dies; this goes
    through the API at once.  Files whose md5 Drive already holds are skipped; a file
    there is updated in place (it keeps its id), a new one is created, folders as needed.
    Run the cell (``sync``) first: it says which project this is.
    """
    from googleapiclient.http import MediaFileUpload

    last = getattr(_CACHE, "last", None)
    if last is None:
        raise RuntimeError("syncd: run the syncd cell first (it says which project to save to)")
    root = Path(last["content"]) / last["project"]
    rel_top = path.strip("/")
    top = _inside(root, rel_top) if rel_top else root
    if not top.exists():
        raise FileNotFoundError(f"syncd: nothing to save: {top} does not exist")
    try:
        service, _ = _client()
        folder_ids = {"": _project_folder(service, last["manifest_id"])}
    except ApiUnavailable as exc:
        raise RuntimeError(
            f"syncd: {exc}; without the Drive API, call google.colab.drive.flush_and_unmount()"
        ) from exc
    listings: dict[str, dict[str, dict[str, Any]]] = {}

    def folder(rel: str) -> str:
        """The Drive folder at ``rel`` (made if missing), and its listing, cached."""
        if rel not in folder_ids:
            parent_rel, _, name = rel.rpartition("/")
            parent = folder(parent_rel)
            found = listings[parent_rel].get(name)
            if found is None or found["mimeType"] != FOLDER_MIME:
                body = {"title": name, "mimeType": FOLDER_MIME, "parents": [{"id": parent}]}
                found = service.insert(body=body, fields="id,title,mimeType").execute(
                    num_retries=RETRIES
                )
                listings[parent_rel][name] = found
                listings[rel] = {}
            folder_ids[rel] = found["id"]
        if rel not in listings:
            listings[rel] = {i["title"]: i for i in _children(service, folder_ids[rel])}
        return folder_ids[rel]

    done = Saved()
    files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
    for file in files:
        rel = file.relative_to(root).as_posix()
        parent_rel, _, name = rel.rpartition("/")
        parent = folder(parent_rel)
        there = listings[parent_rel].get(name)
        if there is not None and there.get("md5Checksum") == _md5(file):
            done.unchanged.append(rel)
            continue
        media = MediaFileUpload(
            str(file), resumable=file.stat().st_size >= RESUMABLE_FROM, chunksize=CHUNK
        )
        if there is not None and there["mimeType"] != FOLDER_MIME:
            request = service.update(fileId=there["id"], body={}, media_body=media)
        else:
            body = {"title": name, "parents": [{"id": parent}]}
            request = service.insert(body=body, media_body=media)
        item = request.execute(num_retries=RETRIES)
        listings[parent_rel][name] = item
        done.uploaded.append(rel)
    done.message = (
        f"saved {len(done.uploaded)} file(s) of {rel_top or '.'}/ to Drive"
        f" ({len(done.unchanged)} already there)"
    )
    if not quiet:
        print(done.message)
    return done
