"""The Kaggle fake, driven by the real `kaggle` client (2.2.5) over HTTP.

These tests pin down both the fake and the client behaviours syncd builds on: what is
retried, what raises, what arrives in a 200 body, and how to bound a hung call.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fakes.kaggle_server import STILL_PROCESSING_MESSAGE, FakeKaggle

USER, KEY = "alice", "key123"
DATASET = "alice/cifar-code"
KERNEL = "alice/cifar-train"


@pytest.fixture
def fake() -> Iterator[FakeKaggle]:
    with FakeKaggle() as server:
        server.add_user(USER, KEY)
        yield server


@pytest.fixture
def kaggle_home(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shared isolated HOME, plus what the kaggle client reads: no KAGGLE_* or proxy
    variables from outside, and a private temp dir (it keeps resumable-upload state there,
    which would leak between tests)."""
    (home / ".kaggle").mkdir(exist_ok=True)
    (tmp_path / "tmp").mkdir()
    for var in list(os.environ):
        if var.startswith("KAGGLE_") or var.lower().endswith("_proxy"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(home / ".kaggle"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return home


def make_api(home: Path, monkeypatch: pytest.MonkeyPatch, key: str = KEY) -> Any:
    monkeypatch.setenv("KAGGLE_USERNAME", USER)
    monkeypatch.setenv("KAGGLE_KEY", key)
    # Imported only now: `import kaggle` authenticates at import time, printing a help
    # text when no credentials are set, and creates its config dir under HOME.
    from kaggle.api.kaggle_api_extended import KaggleApi

    api = KaggleApi()
    # The config path is a class attribute fixed at first import; pin it to this HOME.
    api.config_dir = str(home / ".kaggle")
    api.config = str(home / ".kaggle" / "kaggle.json")
    api.authenticate()
    return api


@pytest.fixture
def api(fake: FakeKaggle, kaggle_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with fake.patch_endpoint():
        yield make_api(kaggle_home, monkeypatch)


def dataset_folder(root: Path, ref: str = DATASET) -> Path:
    folder = root / "snapshot"
    (folder / "sub" / "deep").mkdir(parents=True)
    (folder / "train.py").write_text("print('train')\n")
    (folder / "sub" / "a.py").write_text("A = 1\n")
    (folder / "sub" / "deep" / "b.bin").write_bytes(bytes(range(256)) * 40)
    meta = {"id": ref, "title": "CIFAR code", "licenses": [{"name": "CC0-1.0"}]}
    (folder / "dataset-metadata.json").write_text(json.dumps(meta))
    return folder


def kernel_folder(root: Path, sources: list[str]) -> Path:
    folder = root / "kernel"
    folder.mkdir()
    (folder / "run.py").write_text("print('training')\n")
    meta = {
        "id": KERNEL,
        "title": "cifar-train",
        "code_file": "run.py",
        "language": "python",
        "kernel_type": "script",
        "enable_gpu": True,
        "dataset_sources": sources,
    }
    (folder / "kernel-metadata.json").write_text(json.dumps(meta))
    return folder


def poll_until_ready(api: Any, ref: str = DATASET, limit: int = 10) -> list[str]:
    seen = [api.dataset_status(ref)]
    while seen[-1] != "ready" and len(seen) < limit:
        seen.append(api.dataset_status(ref))
    return seen


def test_create_new_unpacks_zipped_subfolders(api: Any, fake: FakeKaggle, tmp_path: Path) -> None:
    folder = dataset_folder(tmp_path)

    result = api.dataset_create_new(str(folder), quiet=True, dir_mode="zip")

    assert result.status == "Ok" and not result.error
    version = fake.dataset(DATASET).versions[0]
    assert set(version.files) == {"train.py", "sub/a.py", "sub/deep/b.bin"}
    assert version.files["sub/deep/b.bin"] == (folder / "sub" / "deep" / "b.bin").read_bytes()
    # The client checks existence first (a 404 here means "free slug"), then one blob
    # per top-level entry, then CreateDataset.
    assert [r.rpc for r in fake.requests if r.rpc != "upload"] == [
        "GetDatasetStatus",
        "StartBlobUpload",
        "StartBlobUpload",
        "CreateDataset",
    ]
    assert fake.requests[0].status == 404
    starts = [r.body for r in fake.requests if r.rpc == "StartBlobUpload"]
    assert sorted(b["name"] for b in starts) == ["sub.zip", "train.py"]
    assert all(b["type"] == "DATASET" and b["contentLength"] > 0 for b in starts)


def test_version_goes_processing_then_ready(api: Any, fake: FakeKaggle, tmp_path: Path) -> None:
    folder = dataset_folder(tmp_path)
    api.dataset_create_new(str(folder), quiet=True, dir_mode="zip")
    assert poll_until_ready(api) == ["blobs_received", "blobs_decompressed", "ready"]
    (folder / "sub" / "a.py").write_text("A = 2\n")

    result = api.dataset_create_version(str(folder), "epoch 2 fix", quiet=True, dir_mode="zip")

    assert result.status == "Ok"
    # No version number in the response, and the current version stays at 1 until
    # version 2 is ready: read it only after the status says so.
    assert json.loads(api.dataset_status(DATASET, format="json")) == {
        "status": "blobs_received",
        "current_version_number": 1,
    }
    assert poll_until_ready(api)[-1] == "ready"
    assert json.loads(api.dataset_status(DATASET, format="json(current_version_number)")) == {
        "current_version_number": 2
    }
    version = fake.dataset(DATASET).versions[1]
    assert (version.number, version.notes, version.status) == (2, "epoch 2 fix", "ready")
    assert version.files["sub/a.py"] == b"A = 2\n"
    listed = api.dataset_list_files(DATASET).dataset_files
    assert sorted(f.name for f in listed) == ["sub/a.py", "sub/deep/b.bin", "train.py"]


def test_version_while_processing_is_403(api: Any, fake: FakeKaggle, tmp_path: Path) -> None:
    folder = dataset_folder(tmp_path)
    api.dataset_create_new(str(folder), quiet=True, dir_mode="zip")

    with pytest.raises(requests.HTTPError) as caught:
        api.dataset_create_version(str(folder), "too early", quiet=True, dir_mode="zip")

    assert caught.value.response.status_code == 403
    assert str(caught.value) == STILL_PROCESSING_MESSAGE
    assert len(fake.dataset(DATASET).versions) == 1
    # The failed call left its finished uploads in the client's resume state: the retry
    # reuses the token for train.py (same path, size, mtime) and re-sends only the archive,
    # which is rebuilt in a fresh temp dir.
    poll_until_ready(api)
    fake.reset_log()
    assert (
        api.dataset_create_version(str(folder), "retry", quiet=True, dir_mode="zip").status == "Ok"
    )
    assert [r.body["name"] for r in fake.requests if r.rpc == "StartBlobUpload"] == ["sub.zip"]
    assert set(fake.dataset(DATASET).versions[1].files) == {
        "train.py",
        "sub/a.py",
        "sub/deep/b.bin",
    }


def test_version_of_missing_dataset_fails_in_a_200(
    api: Any, fake: FakeKaggle, tmp_path: Path
) -> None:
    folder = dataset_folder(tmp_path, ref="alice/never-created")

    result = api.dataset_create_version(str(folder), "notes", quiet=True)

    assert result.status == "Error" and "Failed to resolve" in result.error
    assert fake.upload_bytes() > 0  # it uploaded everything before finding out


def test_429_with_retry_after_on_start_blob_upload_is_retried(
    api: Any, fake: FakeKaggle, tmp_path: Path
) -> None:
    fake.inject(status=429, count=2, rpc="StartBlobUpload", retry_after=0)

    result = api.dataset_create_new(str(dataset_folder(tmp_path)), quiet=True)

    assert result.status == "Ok"
    statuses = [r.status for r in fake.requests if r.rpc == "StartBlobUpload"]
    assert statuses == [429, 429, 200]  # skip mode: train.py only


def test_503_on_dataset_status_is_not_retried(api: Any, fake: FakeKaggle) -> None:
    fake.seed_dataset(DATASET, {"a.py": b"1"})
    fake.inject(status=503, rpc="GetDatasetStatus")

    with pytest.raises(requests.HTTPError) as caught:
        api.dataset_status(DATASET)

    assert caught.value.response.status_code == 503
    assert fake.count("GetDatasetStatus") == 1
    assert api.dataset_status(DATASET) == "ready"


def test_create_new_takes_any_status_error_for_a_free_slug(
    api: Any, fake: FakeKaggle, tmp_path: Path
) -> None:
    fake.seed_dataset(DATASET, {"old.py": b"0"})
    fake.inject(status=503, rpc="GetDatasetStatus")

    result = api.dataset_create_new(str(dataset_folder(tmp_path)), quiet=True)

    # Not an exception: everything was uploaded, then CreateDataset refused in a 200.
    assert (result.status, result.error) == (
        "Error",
        'The requested slug "cifar-code" is already in use.',
    )
    assert fake.upload_bytes() > 0 and len(fake.dataset(DATASET).versions) == 1


def test_lost_create_response_is_retried_into_a_403(
    api: Any, fake: FakeKaggle, tmp_path: Path
) -> None:
    folder = dataset_folder(tmp_path)
    fake.seed_dataset(DATASET, {"old.py": b"0"})
    # The server commits version 2, then the connection drops: the client retries the
    # create (connection errors are retried, after ~0.85 s) and meets its own version.
    fake.inject(drop="after", rpc="CreateDatasetVersion")

    with pytest.raises(requests.HTTPError) as caught:
        api.dataset_create_version(str(folder), "lost reply", quiet=True)

    assert caught.value.response.status_code == 403
    assert [v.notes for v in fake.dataset(DATASET).versions] == ["", "lost reply"]
    assert [r.status for r in fake.requests if r.rpc == "CreateDatasetVersion"] == [None, 403]


def test_stale_access_token_file_wins_over_the_key(
    fake: FakeKaggle, kaggle_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.seed_dataset(DATASET, {"a.py": b"1"})
    (kaggle_home / ".kaggle" / "access_token").write_text("expired-token")
    with fake.patch_endpoint():
        api = make_api(kaggle_home, monkeypatch)  # right key; the token fails introspection
        with pytest.raises(requests.HTTPError) as caught:
            api.dataset_status(DATASET)
    assert caught.value.response.status_code == 401
    assert (fake.requests[-1].auth_scheme, fake.requests[-1].user) == ("Bearer", None)


def test_interrupted_upload_resumes_from_the_stored_offset(
    api: Any, fake: FakeKaggle, tmp_path: Path
) -> None:
    folder = dataset_folder(tmp_path)
    size = 100_000
    (folder / "train.py").write_bytes(os.urandom(size))
    fake.inject(status=503, rpc="upload", partial=40_000)

    assert api.dataset_create_new(str(folder), quiet=True).status == "Ok"

    puts = [r for r in fake.requests if r.rpc == "upload"]
    # Full PUT (503 after 40,000 bytes stored), "bytes */N" query (308), the rest.
    assert [(r.status, r.bytes_in) for r in puts] == [(503, size), (308, 0), (200, size - 40_000)]
    assert fake.dataset(DATASET).versions[0].files["train.py"] == (folder / "train.py").read_bytes()


def test_hung_call_needs_a_caller_deadline(api: Any, fake: FakeKaggle) -> None:
    fake.seed_dataset(DATASET, {"a.py": b"1"})
    fake.inject(hang=True, rpc="GetDatasetStatus")
    with_http_deadline(api, seconds=0.3)

    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.dataset_status(DATASET)

    assert time.monotonic() - started < 2
    fake.release()
    assert api.dataset_status(DATASET) == "ready"


def test_stop_is_not_blocked_by_a_hung_request(api: Any, fake: FakeKaggle) -> None:
    fake.seed_dataset(DATASET, {"a.py": b"1"})
    fake.inject(hang=True, rpc="GetDatasetStatus")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        call = pool.submit(api.dataset_status, DATASET)
        assert fake.wait_for("GetDatasetStatus")
        # A thread deadline only stops the wait: the call itself has no timeout.
        with pytest.raises(concurrent.futures.TimeoutError):
            call.result(timeout=0.2)
        started = time.monotonic()
        fake.stop()
        assert time.monotonic() - started < 2
        with pytest.raises(requests.ConnectionError):
            call.result(timeout=5)


def test_kernel_push_runs_and_outputs_download(api: Any, fake: FakeKaggle, tmp_path: Path) -> None:
    fake.seed_dataset(DATASET, {"train.py": b"x"})
    fake.set_kernel_outputs(
        KERNEL, {"model.pt": b"\x80weights", "logs/curve.csv": b"1,0.5\n"}, "ok"
    )
    folder = kernel_folder(tmp_path, [DATASET, "alice/no-such-data"])

    pushed = api.kernels_push(str(folder))

    assert (pushed.version_number, pushed.error) == (1, "")
    assert pushed.invalid_dataset_sources == ["alice/no-such-data"]
    states = [api.kernels_status(KERNEL).status.name for _ in range(4)]
    assert states == ["QUEUED", "RUNNING", "COMPLETE", "COMPLETE"]
    out = tmp_path / "out"
    files, _ = api.kernels_output(KERNEL, str(out))
    assert (out / "model.pt").read_bytes() == b"\x80weights"
    assert (out / "logs" / "curve.csv").read_bytes() == b"1,0.5\n"
    assert (out / "cifar-train.log").read_text() == "ok"
    assert len(files) == 3
    assert fake.kernel(KERNEL).versions[0].request["enableInternet"] is True  # client default
    assert Path(api.kernels_pull(KERNEL, str(tmp_path / "pulled"))).read_text() == (
        "print('training')\n"
    )
    assert api.quota_view().gpu_quota.time_used == timedelta(seconds=fake.gpu_seconds_per_run)


def test_kernel_failure_is_reported(api: Any, fake: FakeKaggle, tmp_path: Path) -> None:
    fake.kernel_polls = 0
    fake.set_kernel_failure(KERNEL, "CUDA out of memory")
    api.kernels_push(str(kernel_folder(tmp_path, [])))

    status = api.kernels_status(KERNEL)

    assert (status.status.name, status.failure_message) == ("ERROR", "CUDA out of memory")


def test_download_dataset_follows_the_redirect(api: Any, fake: FakeKaggle, tmp_path: Path) -> None:
    fake.seed_dataset(DATASET, {"train.py": b"x", "sub/a.py": b"A"})

    api.dataset_download_files(DATASET, path=str(tmp_path / "dl"), quiet=True, unzip=True)

    assert (tmp_path / "dl" / "sub" / "a.py").read_bytes() == b"A"


def test_bad_credentials_are_401(
    fake: FakeKaggle, kaggle_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.seed_dataset(DATASET, {"a.py": b"1"})
    with fake.patch_endpoint():
        api = make_api(kaggle_home, monkeypatch, key="wrong")
        with pytest.raises(requests.HTTPError) as caught:
            api.dataset_status(DATASET)
        assert caught.value.response.status_code == 401
        # kernels_status and kernels_output turn 401/403 into a ValueError about slugs.
        with pytest.raises(ValueError, match="Permission 'kernels.get' was denied"):
            api.kernels_status(KERNEL)


def test_concurrent_clients(api: Any, fake: FakeKaggle) -> None:
    fake.seed_dataset(DATASET, {"a.py": b"1"})
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: api.dataset_status(DATASET), range(40)))
    assert results == ["ready"] * 40
    assert fake.count("GetDatasetStatus") == 40


@pytest.mark.parametrize("via_proxy", [True, False])
def test_subprocess_client(fake: FakeKaggle, tmp_path: Path, via_proxy: bool) -> None:
    fake.seed_dataset(DATASET, {"a.py": b"1"})
    # Without the proxy the program must set the endpoint itself, as syncd's
    # `kaggle.endpoint` setting does.
    script = (
        "import sys\n"
        "from kagglesdk.kaggle_env import KaggleEnv, _env_to_endpoint\n"
        "if len(sys.argv) > 1: _env_to_endpoint[KaggleEnv.PROD] = sys.argv[1]\n"
        "from kaggle.api.kaggle_api_extended import KaggleApi\n"
        "api = KaggleApi()\n"
        "api.authenticate()\n"
        f"print(api.dataset_status({DATASET!r}))\n"
    )
    argv = [sys.executable, "-c", script] + ([] if via_proxy else [fake.url])

    done = subprocess.run(
        argv, env=fake.client_env(home=tmp_path / "h", via_proxy=via_proxy), capture_output=True
    )

    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().strip() == "ready"
    prefix = "/api/v1/" if via_proxy else "/v1/"
    assert fake.requests[-1].path == prefix + "datasets.DatasetApiService/GetDatasetStatus"
    assert fake.requests[-1].user == USER


def with_http_deadline(api: Any, seconds: float) -> None:
    """How a caller bounds the client's (timeout-less) API calls: mount an adapter with a
    default timeout on the session of every client KaggleApi builds. Uploads use their own
    sessions and stay unbounded; bound those with a watchdog thread instead."""

    class DeadlineAdapter(requests.adapters.HTTPAdapter):
        def send(self, request: Any, **kwargs: Any) -> Any:
            kwargs["timeout"] = kwargs.get("timeout") or seconds
            return super().send(request, **kwargs)

    build = api.build_kaggle_client

    def build_with_deadline() -> Any:
        client = build()
        http = client.http_client()
        http._init_session()
        http._session.mount("http://", DeadlineAdapter())
        http._session.mount("https://", DeadlineAdapter())
        return client

    api.build_kaggle_client = build_with_deadline
