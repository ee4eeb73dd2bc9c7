"""The script syncd pushes as a run's Kaggle kernel (one code file, as Kaggle requires).

It runs on Kaggle with the standard library only; ``kernel_script`` appends the call of
``main`` with this run's parameters. In order, before any GPU time is spent on training:

1. find the snapshot: walk ``$SYNCD_KAGGLE_ROOT/input`` (``/kaggle/input`` on Kaggle) for
   ``syncd-snapshot.json`` files whose project and manifest hash are this run's. No mount
   path is assumed: Kaggle moved datasets from ``input/<slug>/`` to
   ``input/datasets/<owner>/<slug>/`` in 2026, and may move them again;
2. verify every file of the manifest (size and md5) while copying it to a scratch folder
   outside ``/kaggle/working`` (whose files become the outputs): a missing, tampered or
   different snapshot stops the run here, with a log line saying what differs;
3. when the project splits its data off (``snapshot.data``), find the data dataset's
   ``syncd-data.json`` whose hash the code's manifest names, check every data file (size
   and md5, read in place: the data is not copied), and link each data folder into the copy
   (``data/`` → ``/kaggle/input/.../<slug>-data/data``), so ``open("data/x.csv")`` works
   as at home; the links point into Kaggle's read-only input;
4. run the command in that copy with ``SYNCD_RUN_ID`` and ``SYNCD_OUTPUT_DIR`` (the
   working folder) set; inside the copy, the project's outputs folder (``runs/``) leads
   there too, so a script writing ``runs/x`` on the laptop writes an output on Kaggle;
   its output goes straight to the log;
5. leave ``syncd-run.json`` in the working folder: run id, snapshot version, git commit,
   command, exit code, duration, the GPU ``nvidia-smi`` saw, or why it did not run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

SEARCH_DEPTH = 6  # input/datasets/<owner>/<slug> is 3 deep: room for a future layout
CHUNK = 1 << 20
RUN_FILE = "syncd-run.json"
EXIT_NO_SNAPSHOT = 3
EXIT_SNAPSHOT_DIFFERS = 4


def say(text: str) -> None:
    print(f"syncd: {text}", flush=True)


def complain(text: str) -> None:
    print(f"syncd: ERROR: {text}", file=sys.stderr, flush=True)


def manifest_hash(files: dict[str, Any]) -> str:
    """sha256 over sorted (path, size, md5), exactly as syncd computes it at home."""
    rows = [[path, files[path]["size"], files[path]["md5"]] for path in sorted(files)]
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


def find_manifests(input_dir: str, name: str) -> list[str]:
    """Every ``name`` under ``input_dir``, at most SEARCH_DEPTH folders down (links followed:
    the depth bounds a loop), not looking inside a snapshot for another one."""
    found: list[str] = []
    top = os.path.normpath(input_dir).count(os.sep)
    for dirpath, dirnames, filenames in os.walk(input_dir, followlinks=True):
        dirnames.sort()
        if name in filenames:
            found.append(os.path.join(dirpath, name))
            dirnames[:] = []
        elif os.path.normpath(dirpath).count(os.sep) - top >= SEARCH_DEPTH:
            dirnames[:] = []
    return found


def choose(run: dict[str, Any], candidates: list[str], root: str) -> tuple[str, dict[str, Any]]:
    """The manifest of this run's snapshot, or ValueError saying what was found instead."""
    seen = []
    for path in candidates:
        where = os.path.relpath(os.path.dirname(path), root)
        try:
            with open(path, encoding="utf-8") as f:
                manifest = json.load(f)
            files = manifest["files"]
            digest = manifest_hash(files)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            seen.append(f"an unreadable manifest in {where} ({exc})")
            continue
        if manifest.get("project") != run["project"]:
            seen.append(f"a snapshot of project {manifest.get('project')!r} in {where}")
        elif digest != run["manifest_hash"] or manifest.get("manifest_hash") != digest:
            seen.append(
                f"another snapshot of {run['project']} in {where} (manifest {digest[:12]}, "
                f"created {manifest.get('created_at')})"
            )
        else:
            return os.path.dirname(path), manifest
    found = "; found " + "; ".join(seen) if seen else "; found no syncd snapshot at all"
    raise ValueError(
        f"the snapshot this run was pushed for ({run['dataset']} v{run['snapshot_version']}, "
        f"manifest {run['manifest_hash'][:12]}) is not mounted under {root}/input{found}. "
        "Attach that dataset, and do not take a new snapshot while a run waits to start "
        "(Kaggle mounts the newest version)"
    )


def choose_data(run: dict[str, Any], data: dict[str, Any], candidates: list[str], root: str) -> str:
    """The folder of the data version the code's manifest names, or ValueError."""
    seen = []
    for path in candidates:
        where = os.path.relpath(os.path.dirname(path), root)
        try:
            with open(path, encoding="utf-8") as f:
                manifest = json.load(f)
            digest = manifest_hash(manifest["files"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            seen.append(f"an unreadable data manifest in {where} ({exc})")
            continue
        if manifest.get("project") != run["project"]:
            seen.append(f"data of project {manifest.get('project')!r} in {where}")
        elif digest != data["manifest_hash"] or manifest.get("manifest_hash") != digest:
            seen.append(f"other data of {run['project']} in {where} (manifest {digest[:12]})")
        else:
            return os.path.dirname(path)
    found = "; found " + "; ".join(seen) if seen else "; found no syncd data at all"
    raise ValueError(
        f"the data this snapshot goes with ({data['dataset']} v{data['version']}, manifest "
        f"{data['manifest_hash'][:12]}) is not mounted under {root}/input{found}. Attach that "
        "dataset, and do not snapshot changed data while a run waits to start (Kaggle mounts "
        "the newest version)"
    )


def check_in_place(base: str, files: dict[str, Any]) -> list[str]:
    """Read every listed file where it is mounted (no copy), checking size and md5."""
    problems = []
    for rel in sorted(files):
        want = files[rel]
        digest, size = hashlib.md5(), 0
        try:
            with open(inside(base, rel), "rb") as fin:
                while chunk := fin.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
        except (OSError, ValueError) as exc:
            problems.append(f"{rel}: {getattr(exc, 'strerror', None) or exc}")
            continue
        if size != want["size"] or digest.hexdigest() != want["md5"]:
            problems.append(
                f"{rel}: {size} bytes, md5 {digest.hexdigest()} (expected {want['md5']})"
            )
    return problems


def link_data(run: dict[str, Any], data: dict[str, Any], root: str, code: str) -> str:
    """Find and check the data part, link its folders into the code copy; its folder."""
    found = find_manifests(os.path.join(root, "input"), data["manifest_name"])
    try:
        base = choose_data(run, data, found, root)
        with open(os.path.join(base, data["manifest_name"]), encoding="utf-8") as f:
            files = json.load(f)["files"]
    except (OSError, ValueError) as exc:
        raise Refused(EXIT_NO_SNAPSHOT, str(exc)) from None
    say(f"found the data in {os.path.relpath(base, root)}; checking its {len(files)} files")
    problems = check_in_place(base, files)
    if problems:
        more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise Refused(
            EXIT_SNAPSHOT_DIFFERS,
            f"the mounted data differs from its manifest in {len(problems)} file(s): "
            f"{'; '.join(problems[:10])}{more}",
        )
    for rel in data["paths"]:
        try:
            source, target = inside(base, rel), inside(code, rel)
        except ValueError as exc:
            raise Refused(EXIT_SNAPSHOT_DIFFERS, str(exc)) from None
        if not os.path.lexists(source):
            continue  # nothing under it was snapshotted
        if os.path.lexists(target):
            raise Refused(EXIT_SNAPSHOT_DIFFERS, f"{rel} is in both the code and the data")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.symlink(source, target)
        say(f"linked {rel} → {source}")
    return base


def inside(base: str, rel: str) -> str:
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{rel!r} is not a path inside the snapshot")
    return os.path.join(base, *parts)


def copy_verified(base: str, files: dict[str, Any], dest: str) -> list[str]:
    """Copy every manifest file from ``base`` to ``dest``, checking its size and md5 on the
    way (each file is read once); what differs, as sentences."""
    problems = []
    for rel in sorted(files):
        want = files[rel]
        try:
            source, target = inside(base, rel), inside(dest, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            digest, size = hashlib.md5(), 0
            with open(source, "rb") as fin, open(target, "wb") as fout:
                while chunk := fin.read(CHUNK):
                    digest.update(chunk)
                    fout.write(chunk)
                    size += len(chunk)
        except (OSError, ValueError) as exc:
            problems.append(f"{rel}: {getattr(exc, 'strerror', None) or exc}")
            continue
        if size != want["size"] or digest.hexdigest() != want["md5"]:
            problems.append(
                f"{rel}: {size} bytes, md5 {digest.hexdigest()} (the manifest says "
                f"{want['size']} bytes, md5 {want['md5']})"
            )
    return problems


def unlisted(base: str, files: dict[str, Any], manifest_name: str) -> list[str]:
    extra = []
    for dirpath, _, names in os.walk(base):
        for name in names:
            rel = os.path.relpath(os.path.join(dirpath, name), base).replace(os.sep, "/")
            if rel not in files and rel != manifest_name:
                extra.append(rel)
    return sorted(extra)


def gpus() -> list[str] | None:
    """What ``nvidia-smi`` reports (name, memory), or None without it."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [f"nvidia-smi failed: {exc}"]
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def scratch_folder(root: str, working: str) -> str:
    """A private folder for the code copy, outside the working folder (outputs)."""
    base = tempfile.gettempdir()
    real_working = os.path.realpath(working)
    if os.path.realpath(base).startswith(real_working + os.sep) or not os.access(base, os.W_OK):
        base = os.path.join(root, "temp")
        os.makedirs(base, exist_ok=True)
    return tempfile.mkdtemp(prefix="syncd-code-", dir=base)


def write_record(working: str, record: dict[str, Any]) -> None:
    partial = os.path.join(working, f".{RUN_FILE}.partial")
    with open(partial, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    os.replace(partial, os.path.join(working, RUN_FILE))


def run_command(
    run: dict[str, Any], code: str, working: str, snapshot: str, data: str | None = None
) -> int:
    link = os.path.join(code, run["outputs"])
    if run["outputs"] and not os.path.lexists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(working, link)
    env = dict(os.environ)
    env.update(
        SYNCD_RUN_ID=run["run_id"],
        SYNCD_OUTPUT_DIR=working,
        SYNCD_SNAPSHOT_DIR=snapshot,
        SYNCD_SNAPSHOT_VERSION=str(run["snapshot_version"]),
        SYNCD_DATA_DIR=data or "",
        PYTHONUNBUFFERED="1",  # lines reach the log as they are printed
    )
    say(f"running `{run['command']}` in {code}")
    process = subprocess.Popen(run["command"], shell=True, cwd=code, env=env)
    status = process.wait()
    return 128 - status if status < 0 else status  # killed by a signal: the shell's convention


class Refused(Exception):
    """The run cannot start; ``code`` is the script's exit code."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code


def prepare(
    run: dict[str, Any], root: str, working: str, record: dict[str, Any]
) -> tuple[str, str, str | None]:
    """Find and verify the snapshot, copy it to a scratch folder, link the data part in:
    (snapshot, code copy, data folder or None)."""
    found = find_manifests(os.path.join(root, "input"), run["manifest_name"])
    try:
        base, manifest = choose(run, found, root)
    except ValueError as exc:
        raise Refused(EXIT_NO_SNAPSHOT, str(exc)) from None
    git = manifest.get("git") or {}
    record.update(git_commit=git.get("commit") or run["git_commit"])
    record.update(git_describe=git.get("describe"), snapshot=os.path.relpath(base, root))
    say(f"found the snapshot in {os.path.relpath(base, root)}; checking its files")
    try:
        code = scratch_folder(root, working)
    except OSError as exc:
        raise Refused(EXIT_NO_SNAPSHOT, f"no scratch folder for the code: {exc}") from None
    problems = copy_verified(base, manifest["files"], code)
    if problems:
        more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise Refused(
            EXIT_SNAPSHOT_DIFFERS,
            f"the mounted snapshot differs from its manifest in {len(problems)} file(s), so it "
            f"is not the code this run was pushed for: {'; '.join(problems[:10])}{more}",
        )
    for rel in unlisted(base, manifest["files"], run["manifest_name"])[:20]:
        say(f"left out {rel}: it is not part of the snapshot")
    say(f"all {len(manifest['files'])} files match the manifest (md5)")
    data = manifest.get("data")
    if not data:
        return base, code, None
    if run.get("data") and run["data"].get("manifest_hash") != data.get("manifest_hash"):
        raise Refused(EXIT_SNAPSHOT_DIFFERS, "the snapshot names other data than this run's")
    folder = link_data(run, data, root, code)
    record.update(data={"dataset": data["dataset"], "version": data["version"]})
    record.update(data_snapshot=os.path.relpath(folder, root))
    return base, code, folder


def main(run: dict[str, Any]) -> int:
    started = time.time()
    root = os.environ.get("SYNCD_KAGGLE_ROOT", "/kaggle")
    working = os.path.join(root, "working")
    os.makedirs(working, exist_ok=True)
    record: dict[str, Any] = {
        "format": 1,
        "run_id": run["run_id"],
        "project": run["project"],
        "dataset": run["dataset"],
        "snapshot_version": run["snapshot_version"],
        "manifest_hash": run["manifest_hash"],
        "git_commit": run["git_commit"],
        "git_describe": None,
        "snapshot": None,
        "data": None,  # {"dataset", "version"} of the data part, when the project splits one
        "command": run["command"],
        "exit_code": None,
        "error": None,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": None,
        "gpu": gpus(),
        "python": sys.version.split()[0],
    }
    say(f"run {run['run_id']} of {run['project']}: snapshot v{run['snapshot_version']}")
    try:
        base, code, data = prepare(run, root, working, record)
    except Refused as exc:
        complain(str(exc))
        record.update(error=str(exc), exit_code=exc.code)
        record.update(duration_s=round(time.time() - started, 3))
        write_record(working, record)
        return exc.code
    status = run_command(run, code, working, base, data)
    record.update(exit_code=status, duration_s=round(time.time() - started, 3))
    if status != 0:
        record["error"] = f"`{run['command']}` exited with code {status}"
        complain(record["error"])
    write_record(working, record)
    say(f"finished with exit code {status}")
    return status
