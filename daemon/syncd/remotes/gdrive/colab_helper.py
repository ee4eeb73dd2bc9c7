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
copy's.  It writes, renames and deletes only below ``/content/<project>`` and never
through a symlink (an entry below one is refused with a line, the rest synced).
Files it placed earlier that left the manifest are deleted; the
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

import contextlib
import hashlib
import importlib
import json
import os
import stat
import sys
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
    refused: list[str] = field(default_factory=list)  # manifest entries left alone
    notes: list[str] = field(default_factory=list)  # one line per refused entry
    message: str = ""

    @property
    def fresh(self) -> bool:
        return not self.stale and not self.refused

    def refuse(self, rel: str, line: str) -> None:
        if rel not in self.refused:
            self.refused.append(rel)
            self.notes.append(line)


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


def _download(
    service: Any, make_http: Callable[[], Any], file_id: str, copy: WorkingCopy, rel: str
) -> str:
    """Write the file as ``rel``'s ``.syncd-new``; return its md5 (``rel`` itself untouched)."""
    from googleapiclient.http import MediaIoBaseDownload

    def fill(f: Any) -> None:
        request = service.get_media(fileId=file_id)
        request.http = _http(make_http)
        down = MediaIoBaseDownload(f, request, chunksize=CHUNK)
        done = False
        while not done:
            _, done = down.next_chunk(num_retries=RETRIES)

    return copy.write_new(rel, fill)


# --- the working copy ----------------------------------------------------------------

# A folder is entered only by these flags: O_NOFOLLOW makes a symlink fail (ELOOP) and
# O_DIRECTORY a file (ENOTDIR) at the moment of opening, so a link the user makes while
# a sync runs cannot redirect a write either (a check by path, then a write by path,
# could be raced).
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_NEW_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
NEW_SUFFIX = ".syncd-new"  # a verified download waiting to be put in place


class Refused(ValueError):
    """A manifest entry the helper leaves alone; the message is the line it prints."""


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _md5_fd(fd: int) -> str:
    h = hashlib.md5()
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, 1 << 20):
        h.update(chunk)
    return h.hexdigest()


def _parts(rel: str) -> list[str]:
    """A manifest path's components; ``..``, ``.``, absolute and empty parts are refused."""
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") or "\0" in p for p in parts):
        raise Refused(f"the manifest path {rel!r} is not a path inside the project: left alone")
    return parts


def _inside(work: Path, rel: str) -> Path:
    """The path below ``work`` for a manifest path (only for reading the mounted Drive)."""
    return work.joinpath(*_parts(rel))


def _entry(rel: str, want: Any) -> None:
    """Refuse a manifest entry the helper cannot act on (a bad path, missing fields)."""
    _parts(rel)
    ok = isinstance(want, dict) and isinstance(want.get("md5"), str)
    if not (ok and isinstance(want.get("size"), int) and isinstance(want.get("id"), str)):
        raise Refused(f"the manifest entry {rel!r} lacks its size, md5 or id")


class WorkingCopy:
    """``/content/<project>`` and the record of what this helper placed there.

    Every write, rename and delete goes through folder descriptors opened without
    following links from the root down: a symlink (or a file where a folder is
    needed) anywhere below the root makes that entry refused, never followed —
    the user's ``data -> /content/drive/...`` link and what it points at are left alone.
    """

    def __init__(self, content: Path, project: str) -> None:
        self.root = content / project
        self.state_file = content / f".syncd-{project}.json"  # outside the working copy
        try:
            self.placed: dict[str, dict[str, Any]] = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            self.placed = {}
        if not isinstance(self.placed, dict):
            self.placed = {}
        self._folders: dict[str, str] = {}  # folder below the root -> ok, link, file, missing

    def prepare(self) -> None:
        """Make the root folder; refuse a root that is a symlink or not a folder."""
        try:
            st = os.lstat(self.root)
        except FileNotFoundError:
            self.root.mkdir(parents=True, exist_ok=True)
            st = os.lstat(self.root)
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a folder"
            raise RuntimeError(
                f"syncd: {self.root} is {what}; syncd keeps the working copy in a real "
                "folder there and writes nothing through a link: move it away, then run "
                "the cell again"
            )

    # -- walking without following links

    def _refuse(self, rel: str, where: str, what: str) -> Refused:
        return Refused(f"{where} is {what} in {self.root}: {rel} left alone")

    def _folder(self, rel: str, *, create: bool) -> tuple[int, str] | None:
        """(descriptor of ``rel``'s folder, its file name), walking from the root without
        following links; folders are made when ``create``, else None when one is missing.
        The caller closes the descriptor."""
        parts = _parts(rel)
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for i, name in enumerate(parts[:-1]):
                where = "/".join(parts[: i + 1]) + "/"
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    if not create:
                        os.close(fd)
                        return None
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(name, dir_fd=fd)
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    raise self._refuse(rel, where, "a symlink")
                if not stat.S_ISDIR(st.st_mode):
                    raise self._refuse(rel, where[:-1], "not a folder")
                try:
                    sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError:  # replaced by a link or a file since the look
                    raise self._refuse(rel, where, "not a plain folder") from None
                os.close(fd)
                fd = sub
        except BaseException:
            os.close(fd)
            raise
        return fd, parts[-1]

    def _leaf(self, fd: int, name: str, rel: str) -> os.stat_result | None:
        """The file's lstat (None when absent); a link, folder or device there is refused."""
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(st.st_mode):
            raise self._refuse(rel, rel, "a symlink")
        if not stat.S_ISREG(st.st_mode):
            raise self._refuse(rel, rel, "not a plain file")
        return st

    # -- what is there

    def rescan(self) -> None:
        """Forget the folder checks of ``matches`` (before a pass over the manifest)."""
        self._folders.clear()

    def _readable(self, rel: str) -> Path | None:
        """``rel``'s path, to read only, once no folder on the way is a link or a file
        (lstat, cached per pass: an idle re-run over 2,000 files would otherwise walk
        descriptors for each); None when a folder is missing.  Writes walk descriptors."""
        parts = _parts(rel)
        for i in range(1, len(parts)):
            where = "/".join(parts[:i])
            kind = self._folders.get(where)
            if kind is None:
                try:
                    mode = os.lstat(self.root / where).st_mode
                except FileNotFoundError:
                    kind = "missing"
                else:
                    kind = "link" if stat.S_ISLNK(mode) else "ok" if stat.S_ISDIR(mode) else "file"
                self._folders[where] = kind
            if kind == "missing":
                return None
            if kind == "link":
                raise self._refuse(rel, where + "/", "a symlink")
            if kind == "file":
                raise self._refuse(rel, where, "not a folder")
        return self.root.joinpath(*parts)

    def matches(self, rel: str, want: dict[str, Any]) -> bool:
        """The file is there with the manifest's md5 (re-hashed only if it changed since)."""
        path = self._readable(rel)
        if path is None:
            return False
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if stat.S_ISLNK(st.st_mode):
            raise self._refuse(rel, rel, "a symlink")
        if not stat.S_ISREG(st.st_mode):
            raise self._refuse(rel, rel, "not a plain file")
        if st.st_size != want["size"]:
            return False
        known = self.placed.get(rel)
        if known and (known["size"], known["mtime_ns"]) == (st.st_size, st.st_mtime_ns):
            return bool(known["md5"] == want["md5"])
        try:
            f = os.open(path, _READ_FLAGS)
        except OSError:  # a link made since the look: not ours to read
            return False
        try:
            md5 = _md5_fd(f)
        finally:
            os.close(f)
        if md5 != want["md5"]:
            return False
        self.record(rel, want["md5"])
        return True

    def record(self, rel: str, md5: str) -> None:
        found = self._folder(rel, create=False)
        if found is None:
            raise FileNotFoundError(f"{self.root / rel} is not there")
        fd, name = found
        try:
            st = self._leaf(fd, name, rel)
            if st is None:
                raise FileNotFoundError(f"{self.root / rel} is not there")
            self.placed[rel] = {"md5": md5, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
            if name.endswith(".py"):
                # A .pyc is trusted when the source's size and whole-second mtime match: a
                # same-size edit placed within the second of the last compile would run the
                # old code.  Dropping the cached bytecode makes the next import compile anew.
                _drop_bytecode(fd, name[:-3])
        finally:
            os.close(fd)

    # -- writing

    def write_new(self, rel: str, fill: Callable[[Any], None]) -> str:
        """Write ``rel``'s ``.syncd-new`` (folders made as needed) with what ``fill`` writes
        to the open file; return its md5.  ``rel`` itself is untouched."""
        found = self._folder(rel, create=True)
        assert found is not None
        fd, name = found
        tmp = f".syncd-dl-{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}"
        try:
            self._leaf(fd, name, rel)  # refuse a link or folder now, before downloading
            f = os.open(tmp, _NEW_FLAGS, 0o644, dir_fd=fd)
            try:
                with os.fdopen(f, "w+b") as out:
                    fill(out)
                    out.flush()
                    md5 = _md5_fd(out.fileno())
                os.replace(tmp, name + NEW_SUFFIX, src_dir_fd=fd, dst_dir_fd=fd)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp, dir_fd=fd)
        finally:
            os.close(fd)
        return md5

    def install(self, rel: str) -> None:
        """Put a verified download (``NAME.syncd-new``) in place."""
        found = self._folder(rel, create=False)
        if found is None:
            raise FileNotFoundError(f"{self.root / rel}'s folder is gone")
        fd, name = found
        try:
            try:
                self._leaf(fd, name, rel)  # a link made there meanwhile: not replaced
            except Refused:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name + NEW_SUFFIX, dir_fd=fd)
                raise
            os.replace(name + NEW_SUFFIX, name, src_dir_fd=fd, dst_dir_fd=fd)
        finally:
            os.close(fd)

    def discard(self, rel: str) -> None:
        with contextlib.suppress(Refused, OSError):
            found = self._folder(rel, create=False)
            if found is not None:
                fd, name = found
                try:
                    os.unlink(name + NEW_SUFFIX, dir_fd=fd)
                finally:
                    os.close(fd)

    def remove_gone(self, listed: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
        """Delete the files this helper placed that the manifest no longer lists:
        (removed, refused path -> line).  Nothing through a link, no link itself."""
        removed: list[str] = []
        refused: dict[str, str] = {}
        for rel in sorted(set(self.placed) - set(listed)):
            self.placed.pop(rel)
            try:
                found = self._folder(rel, create=False)
                if found is None:
                    continue
                fd, name = found
                try:
                    if self._leaf(fd, name, rel) is None:
                        continue
                    os.unlink(name, dir_fd=fd)
                finally:
                    os.close(fd)
            except Refused as exc:
                refused[rel] = str(exc)
                continue
            removed.append(rel)
            self._prune(_parts(rel)[:-1])
        return removed, refused

    def _prune(self, folders: list[str]) -> None:
        """Remove the emptied folders on the way to the root (opened without following)."""
        fds = [os.open(self.root, _DIR_FLAGS)]
        try:
            for name in folders:
                try:
                    fds.append(os.open(name, _DIR_FLAGS, dir_fd=fds[-1]))
                except OSError:
                    return
            for depth in range(len(folders), 0, -1):
                try:
                    os.rmdir(folders[depth - 1], dir_fd=fds[depth - 1])
                except OSError:  # not empty (or not ours to judge): stop here
                    return
        finally:
            for fd in fds:
                os.close(fd)

    def save(self) -> None:
        """The record of placed files, next to the working copy (a link there: replaced,
        never written through)."""
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(self.placed))
        os.replace(tmp, self.state_file)


def _drop_bytecode(fd: int, stem: str) -> None:
    """Delete ``__pycache__/<stem>.*.pyc`` next to a placed module (a linked cache: left)."""
    try:
        cache = os.open("__pycache__", _DIR_FLAGS, dir_fd=fd)
    except OSError:
        return
    try:
        for entry in os.listdir(cache):
            if entry.startswith(stem + ".") and entry.endswith(".pyc"):
                with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                    os.unlink(entry, dir_fd=cache)
    finally:
        os.close(cache)


def _module_names(files: dict[str, Any]) -> tuple[dict[str, str], set[str]]:
    """The project's module names -> their manifest path, and its package folders' names."""
    modules: dict[str, str] = {}
    packages: set[str] = set()
    for rel in files:
        if not rel.endswith(".py"):
            continue
        parts = rel[:-3].split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts and all(p.isidentifier() for p in parts):
            modules[".".join(parts)] = rel
            packages.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return modules, packages


def _installed(path: str) -> bool:
    """The path is Python's own library or an installed package's (never a project copy)."""
    parts = path.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return True
    homes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    return path.startswith(tuple(h.rstrip(os.sep) + os.sep for h in homes if h))


def _stale_module(
    module: Any, name: str, prefixes: tuple[str, ...], project: tuple[dict[str, str], set[str]]
) -> bool:
    """The module is the project's: loaded from the working copy or the mounted folder,
    or named as a project module and loaded from that path in another project copy."""
    modules, packages = project
    where = getattr(module, "__file__", None)
    if isinstance(where, str):
        # a plain prefix test: resolving every module's path costs ~1 ms each
        if where.startswith(prefixes):
            return True
        rel = modules.get(name)
        copied = bool(rel) and where.replace(os.sep, "/").endswith(f"/{rel}")
        return copied and not _installed(where)
    # a namespace package (no __init__.py) of the project's, found outside installed code
    found = list(getattr(module, "__path__", None) or [])
    return name in packages and bool(found) and not any(_installed(p) for p in found)


def _enter(
    work: Path, keep: str, *, mounted: str | None = None, files: dict[str, Any] | None = None
) -> None:
    """Drop the project's modules (the next import reads the new code) and work from the copy.

    Dropped: modules loaded from the working copy or the mounted Drive folder, and any
    module named as a project file whose file is that project path in another folder —
    a notebook that ``%cd``'d into the mounted project (or ``sys.path.append``'d it,
    through a shortcut or another spelling of the path) imported its stale copy there.
    A standard or installed module a project file happens to share a name with stays.
    """
    root = str(work.resolve())
    prefixes = {root + os.sep, str(work.absolute()) + os.sep}
    if mounted and mounted.strip(os.sep):
        prefixes |= {mounted.rstrip(os.sep) + os.sep, os.path.realpath(mounted) + os.sep}
    project = _module_names(files or {})
    for name, module in list(sys.modules.items()):
        if name != keep and _stale_module(module, name, tuple(prefixes), project):
            del sys.modules[name]
    importlib.invalidate_caches()
    os.chdir(work)
    # first on sys.path, ahead of '' and of a mounted folder a notebook added
    sys.path[:] = [root] + [p for p in sys.path if p not in (root, str(work.absolute()))]


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _summary(manifest: dict[str, Any], result: Result) -> str:
    try:
        at_s = float(manifest.get("at_epoch") or 0)
    except (TypeError, ValueError):
        at_s = 0.0
    at = time.strftime("%H:%M:%S", time.localtime(at_s))
    parts = []
    if manifest.get("commit"):
        parts.append(f"commit {str(manifest['commit'])[:7]}")
    newest, written = manifest.get("newest_mtime"), manifest.get("at_epoch")
    if isinstance(newest, int | float) and isinstance(written, int | float):
        parts.append(f"lag {max(0.0, float(written) - float(newest)):.1f} s")
    parts.append(_plural(len(result.updated), "file updated", "files updated"))
    if result.removed:
        parts.append(f"{len(result.removed)} removed")
    line = f"fresh as of {at} ({', '.join(parts)})"
    if result.mode == "mounted":
        line += " from the mounted Drive"
    problems = []
    if result.stale:
        shown = ", ".join(result.stale[:5]) + (" …" if len(result.stale) > 5 else "")
        problems.append(f"{len(result.stale)} still stale ({shown})")
    if result.refused:
        shown = ", ".join(repr(r) for r in result.refused[:5])
        more = " …" if len(result.refused) > 5 else ""
        n = _plural(len(result.refused), "entry", "entries")
        problems.append(f"{n} refused ({shown}{more})")
    if problems:
        line = f"NOT fresh: {'; '.join(problems)}; the rest is " + line
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
    A manifest entry that would write or delete outside the working copy or through a
    link in it is refused with a line; the rest is synced and the last line says
    ``NOT fresh: N entries refused``.
    """
    base = Path(content or os.environ.get("SYNCD_COLAB_CONTENT") or "/content")
    copy = WorkingCopy(base, project)
    copy.prepare()
    try:
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
    finally:
        copy.save()  # what was placed, also when some entries were refused or it failed
    _CACHE.last = {"project": project, "manifest_id": manifest_id, "content": str(base)}
    _enter(copy.root, keep=__name__, mounted=mounted, files=manifest["files"])
    result.message = _summary(manifest, result)
    if not quiet:
        for line in result.notes:
            print(f"syncd: {line}")
        print(result.message)
    return result


def _usable(files: dict[str, Any], result: Result) -> dict[str, Any]:
    """The manifest's entries this helper will act on; the others are refused."""
    usable = {}
    for rel, want in sorted(files.items()):
        try:
            _entry(rel, want)
        except Refused as exc:
            result.refuse(rel, str(exc))
        else:
            usable[rel] = want
    return usable


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
        files = _usable(manifest["files"], result)
        wanted = _wanted(copy, files, result)

        def get(rel: str, files: dict[str, Any] = files) -> tuple[str, bool | str]:
            try:
                md5 = _download(service, make_http, files[rel]["id"], copy, rel)
            except Refused as exc:
                return rel, str(exc)
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
            if isinstance(ok, str):
                result.refuse(rel, ok)
            elif ok and _placed(copy, rel, files[rel]["md5"], result):
                result.updated.append(rel)
            elif not ok:
                copy.discard(rel)
                mismatched.append(rel)
        if not mismatched or attempt:
            result.stale = mismatched
            break
        # The file changed on Drive after this manifest: a newer one covers it.
        manifest = _fetch_manifest(service, manifest_id)
        result.seq = manifest.get("seq")
    _remove_gone(copy, manifest["files"], result)
    return result


def _wanted(copy: WorkingCopy, files: dict[str, Any], result: Result) -> list[str]:
    """The entries the working copy does not hold as the manifest says."""
    copy.rescan()
    wanted = []
    for rel, want in files.items():
        try:
            if not copy.matches(rel, want):
                wanted.append(rel)
        except Refused as exc:
            result.refuse(rel, str(exc))
    return wanted


def _placed(copy: WorkingCopy, rel: str, md5: str, result: Result) -> bool:
    """Put a verified download in place and record it (False: refused, with its line)."""
    try:
        copy.install(rel)
        copy.record(rel, md5)
    except Refused as exc:
        result.refuse(rel, str(exc))
        return False
    return True


def _remove_gone(copy: WorkingCopy, files: dict[str, Any], result: Result) -> None:
    removed, refused = copy.remove_gone(files)
    result.removed = removed
    for rel, line in refused.items():
        result.refuse(rel, line)
    for rel in result.refused:  # what is at a refused path is not this helper's any more
        copy.placed.pop(rel, None)


# --- the mounted Drive, when the API is out of reach ---------------------------------


def _stale_on_mount(folder: Path) -> tuple[dict[str, Any], list[str]]:
    """The mounted manifest, and the files the mounted folder does not hold as it says."""
    manifest = _parse_manifest((folder / MANIFEST_PATH).read_bytes())
    stale = []
    for rel, want in sorted(manifest["files"].items()):
        try:
            _entry(rel, want)
        except Refused:
            continue  # the copy refuses it, with its line
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
            f"syncd: {why}, and this project's target is a Drive folder id (gdrive:id=…), "
            "which has no mounted-Drive path to fall back on; run "
            "google.colab.auth.authenticate_user() and this cell again once the Drive API "
            "is reachable"
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


def _copier(src: Path) -> Callable[[Any], None]:
    def fill(out: Any) -> None:
        with open(src, "rb") as f:
            while chunk := f.read(1 << 20):
                out.write(chunk)

    return fill


def _copy_from_mount(
    copy: WorkingCopy, folder: Path, manifest: dict[str, Any], result: Result
) -> None:
    """Bring the working copy to the mounted files that match the manifest."""
    copy.rescan()
    for rel, want in _usable(manifest["files"], result).items():
        try:
            if rel in result.stale or copy.matches(rel, want):
                continue
            md5 = copy.write_new(rel, _copier(_inside(folder, rel)))
        except Refused as exc:
            result.refuse(rel, str(exc))
            continue
        if md5 != want["md5"]:  # changed under us on the mount
            copy.discard(rel)
            result.stale.append(rel)
        elif _placed(copy, rel, want["md5"], result):
            result.updated.append(rel)
    _remove_gone(copy, manifest["files"], result)


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


def _no_link_between(root: Path, top: Path) -> None:
    """``save`` never follows a link out of the working copy."""
    for part in (top, *top.parents):
        if part == root:
            return
        if part.is_symlink():
            raise RuntimeError(f"syncd: {part} is a symlink: save() does not follow links")


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
    _no_link_between(root, top)
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
    # rglob does not descend into linked folders; linked files are left out the same way
    files = (
        [top]
        if top.is_file()
        else sorted(p for p in top.rglob("*") if p.is_file() and not p.is_symlink())
    )
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
