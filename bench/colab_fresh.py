"""Prints edit → "fresh in /content" through the Colab helper, against FakeDrive on loopback.

    .venv/bin/python -m bench.colab_fresh                 # 3 runs × 20 edits, 200 files
    .venv/bin/python -m bench.colab_fresh --runs 5 --edits 50 --files 1000

The real ``syncd run`` (a subprocess) mirrors a generated tree into a FakeDrive
served from this process; the Colab side is syncd's helper
(``remotes/gdrive/colab_helper.py``, what ``syncd colab`` puts in
``.syncd/colab.py``) loaded from its file as the printed cell loads it, with the
real google-auth and googleapiclient pointed at the fake (``SYNCD_DRIVE_ENDPOINT``;
an "authorized_user" credentials file holding a token the fake issued to Colab's
app).  ``google.colab`` is never imported on this path.

Per edit (append a line to a random file): **mirror** = edit → the manifest on
the fake lists the file's new md5 (polled every ~2 ms, by inspection, not over
HTTP); **helper** = one ``sync()`` from then until ``/content/<project>`` holds
the new bytes; **total** = edit → fresh in /content (the two added up, as a user
who re-runs the cell as soon as the edit is on Drive sees it).  Then the cell
re-run with nothing changed: Drive requests and seconds per re-run.  Each run
uses a fresh daemon, fake and /content; figures are medians over runs of each
run's p50/p95.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.fakes.drive_access import COLAB
from tests.fakes.drive_server import FakeDrive
from tests.gdrive_support import write_credentials

from .benchlib import REPO, machine, make_tree, med, pct
from .drive_fake import Daemon

HELPER = REPO / "daemon/syncd/remotes/gdrive/colab_helper.py"
MANIFEST = ".syncd/manifest.json"


def colab_credentials(fake: FakeDrive, path: Path) -> None:
    """What Colab's authenticate_user() leaves behind: an authorized_user file, full scope."""
    fake.allow_refresh_token("1//bench-colab", "full", app=COLAB)
    expiry = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    info = {
        "type": "authorized_user",
        "client_id": COLAB,
        "client_secret": "bench",
        "refresh_token": "1//bench-colab",
        "token": fake.issue_token("full", app=COLAB),
        "expiry": expiry,
    }
    path.write_text(json.dumps(info))


def load_helper() -> Any:
    """A fresh copy of the helper module, as a re-run of the cell executes it."""
    spec = importlib.util.spec_from_file_location("syncd_colab", HELPER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["syncd_colab"] = module
    spec.loader.exec_module(module)
    return module


def drive_requests(fake: FakeDrive) -> int:
    return sum(1 for r in fake.requests if "/drive/" in r.path)


def one_run(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="syncd-colab-bench-", dir="/dev/shm"))
    home, src, content = base / "home", base / "src", base / "content"
    home.mkdir()
    make_tree(src, args.files, max(1, args.files // 20), seed=seed)
    fake = FakeDrive().start()
    fake.set_write_limit(None)
    daemon = None
    cwd = os.getcwd()
    try:
        creds = write_credentials(fake, home / "config/syncd/drive-credentials.json")
        config = home / "syncd.yaml"
        config.write_text(
            f"drive:\n  credentials: {creds}\n  endpoint: {fake.url}\n"
            f"  requests_per_second: {args.rps}\n"
            f"projects:\n  - name: p\n    path: {src}\n    mirror:\n"
            f"      to: gdrive:/syncd/p\n      delay: {args.delay}\n"
        )
        colab_credentials(fake, home / "adc.json")
        os.environ.update(
            SYNCD_DRIVE_ENDPOINT=fake.url,
            SYNCD_COLAB_CONTENT=str(content),
            GOOGLE_APPLICATION_CREDENTIALS=str(home / "adc.json"),
            NO_GCE_CHECK="True",
            NO_PROXY="127.0.0.1,localhost",
        )
        sys.modules.pop("_syncd_colab_cache", None)  # a fresh runtime
        daemon = Daemon(home, config)
        daemon.start()
        daemon.wait_idle(600)
        deadline = time.monotonic() + 60
        while (item := fake.find(f"syncd/p/{MANIFEST}")) is None:
            if time.monotonic() > deadline:
                raise TimeoutError("no manifest on the fake")
            time.sleep(0.05)
        manifest_id = item["id"]

        def listed() -> dict[str, Any]:
            return json.loads(fake.content(manifest_id))["files"]

        deadline = time.monotonic() + 120
        while len(listed()) < args.files:
            if time.monotonic() > deadline:
                raise TimeoutError("the manifest never listed the whole tree")
            time.sleep(0.05)
        t = time.perf_counter()
        load_helper().sync("p", manifest_id, quiet=True)
        cold = time.perf_counter() - t

        rng = random.Random(seed)
        paths = sorted(listed())
        mirror, helper, total, per_edit_requests, cpu = [], [], [], [], []
        for i in range(args.edits):
            rel = rng.choice(paths)
            line = f"# edit {i} {time.time():.6f}\n".encode()
            want = hashlib.md5((src / rel).read_bytes() + line).hexdigest()
            t0 = time.perf_counter()
            with open(src / rel, "ab") as f:
                f.write(line)
            while listed().get(rel, {}).get("md5") != want:
                if time.perf_counter() - t0 > 60:
                    raise TimeoutError(f"edit {i} never reached the manifest")
                time.sleep(0.002)
            t1 = time.perf_counter()
            fake.reset_log()
            c0 = time.process_time()
            load_helper().sync("p", manifest_id, quiet=True)
            t2 = time.perf_counter()
            cpu.append(time.process_time() - c0)
            if hashlib.md5((content / "p" / rel).read_bytes()).hexdigest() != want:
                raise AssertionError(f"{rel} is not fresh in /content after sync()")
            per_edit_requests.append(drive_requests(fake))
            mirror.append(t1 - t0)
            helper.append(t2 - t1)
            total.append(t2 - t0)
            time.sleep(rng.uniform(0.05, 0.15))
        idle_requests, idle_s = [], []
        for _ in range(args.reruns):
            fake.reset_log()
            t = time.perf_counter()
            load_helper().sync("p", manifest_id, quiet=True)
            idle_s.append(time.perf_counter() - t)
            idle_requests.append(len(fake.requests))
        return {
            "cold": cold,
            "mirror": mirror,
            "helper": helper,
            "total": total,
            "edit_requests": per_edit_requests,
            "helper_cpu": cpu,
            "idle_requests": idle_requests,
            "idle_s": idle_s,
        }
    finally:
        os.chdir(cwd)  # sync() enters the working copy
        if daemon is not None:
            daemon.stop()
        fake.stop()
        shutil.rmtree(base, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--edits", type=int, default=20)
    ap.add_argument("--reruns", type=int, default=10, help="re-runs with nothing changed")
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--delay", default="1s", help="mirror.delay (default 1s, as shipped)")
    ap.add_argument(
        "--rps",
        type=float,
        default=8.0,
        help="drive.requests_per_second (default 8, as shipped: a first mirror of 2,000 "
        "files then takes minutes; 100 gets big trees set up quickly)",
    )
    args = ap.parse_args()
    print(f"machine: {machine()}", flush=True)
    print(
        f"{args.runs} runs × {args.edits} edits, tree of {args.files} files, "
        f"mirror.delay {args.delay}, drive.requests_per_second {args.rps:g}",
        flush=True,
    )
    runs = []
    for r in range(args.runs):
        res = one_run(args, seed=r)
        runs.append(res)
        print(
            f"run {r + 1}: total p50 {pct(res['total'], 50):.3f} s, mirror p50 "
            f"{pct(res['mirror'], 50):.3f} s, helper p50 {pct(res['helper'], 50):.3f} s, "
            f"re-run requests {sorted(set(res['idle_requests']))}",
            flush=True,
        )

    def medp(key: str, q: float) -> float:
        return med([pct(res[key], q) for res in runs])

    print()
    for key, label in (
        ("total", "edit → fresh in /content"),
        ("mirror", "  edit → manifest on Drive (mirror)"),
        ("helper", "  helper sync() after the manifest"),
    ):
        print(f"{label:38s} p50 {medp(key, 50):.3f} s   p95 {medp(key, 95):.3f} s")
    reqs = [n for res in runs for n in res["edit_requests"]]
    print(f"Drive requests per sync() after one edit: median {med(reqs):g} (max {max(reqs)})")
    print(f"helper CPU per sync() after one edit: p50 {medp('helper_cpu', 50) * 1000:.1f} ms")
    idle = [n for res in runs for n in res["idle_requests"]]
    print(
        f"re-run with nothing changed: {med(idle):g} request(s) (max {max(idle)}), "
        f"p50 {medp('idle_s', 50) * 1000:.1f} ms"
    )
    print(
        f"first sync() into an empty /content ({args.files} files): "
        f"median {med([res['cold'] for res in runs]):.2f} s"
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"bench process peak RSS (fake Drive + helper): {rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
