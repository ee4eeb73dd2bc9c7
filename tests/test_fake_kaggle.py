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
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fakes.kaggle_server import LICENSES, REFUSED_VERSION_MESSAGE, FakeKaggle

from .kaggle_support import make_api

USER, KEY = "alice", "key123"
DATASET = "alice/cifar-code"
KERNEL = "alice/cifar-train"


@pytest.fixture
def fake() -> Iterator[FakeKaggle]:
    with FakeKaggle() as server:
        server.add_user(USER, KEY)
        yield server


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
    fake.fresh_404_polls = 0
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


def test_a_new_dataset_or_version_is_404_for_a_few_polls(
    api: Any, fake: FakeKaggle, tmp_path: Path
) -> None:
    # kaggle-cli #890: "Newly created versions may return 404 for several seconds".
    folder = dataset_folder(tmp_path)
    api.dataset_create_new(str(folder), quiet=True, dir_mode="zip")

    def answers(call: Any) -> list[Any]:
        seen: list[Any] = []
        for _ in range(3):
            try:
                seen.append(call())
            except requests.HTTPError as e:
                seen.append(e.response.status_code)
        return seen

    assert answers(lambda: api.dataset_status(DATASET)) == [404, 404, "blobs_received"]
    fake.finish_processing(DATASET)
    api.dataset_create_version(str(folder), "v2", quiet=True, dir_mode="zip")
    assert answers(lambda: api.dataset_status(DATASET))[:2] == [404, 404]
    with fake.patch_endpoint():
        assert answers(lambda: get_dataset(api).current_version_number) == [404, 404, 1]


def get_dataset(api: Any) -> Any:
    from kagglesdk.datasets.types.dataset_api_service import ApiGetDatasetRequest

    request = ApiGetDatasetRequest()
    request.owner_slug, request.dataset_slug = DATASET.split("/")
    with api.build_kaggle_client() as client:
        return client.datasets.dataset_api_client.get_dataset(request)


def test_a_version_is_refused_only_while_the_first_one_processes(
    api: Any, fake: FakeKaggle, tmp_path: Path
) -> None:
    # kagglehub PR #182: 403 while the FIRST version is processing; afterwards versions
    # may be created while earlier ones still process.
    fake.fresh_404_polls = 0
    folder = dataset_folder(tmp_path)
    api.dataset_create_new(str(folder), quiet=True, dir_mode="zip")

    with pytest.raises(requests.HTTPError) as caught:
        api.dataset_create_version(str(folder), "too early", quiet=True, dir_mode="zip")

    assert caught.value.response.status_code == 403
    assert str(caught.value) == REFUSED_VERSION_MESSAGE
    assert len(fake.dataset(DATASET).versions) == 1
    # The failed call left its finished uploads in the client's resume state: the retry
    # reuses the token for train.py (same path, size, mtime) and re-sends only the archive,
    # which is rebuilt in a fresh temp dir.
    poll_until_ready(api)
    fake.reset_log()
    assert api.dataset_create_version(str(folder), "v2", quiet=True, dir_mode="zip").status == "Ok"
    assert [r.body["name"] for r in fake.requests if r.rpc == "StartBlobUpload"] == ["sub.zip"]
    assert set(fake.dataset(DATASET).versions[1].files) == {
        "train.py",
        "sub/a.py",
        "sub/deep/b.bin",
    }
    # v2 still processes, and v3 is accepted all the same.
    assert api.dataset_create_version(str(folder), "v3", quiet=True, dir_mode="zip").status == "Ok"
    assert [v.status for v in fake.dataset(DATASET).versions] == [
        "ready",
        "blobs_received",
        "blobs_received",
    ]


def test_the_license_must_be_one_kaggle_knows(api: Any, fake: FakeKaggle, tmp_path: Path) -> None:
    folder = dataset_folder(tmp_path)
    meta = json.loads((folder / "dataset-metadata.json").read_text())
    meta["licenses"] = [{"name": "WTFPL"}]  # exactly one, as the client checks, but unknown
    (folder / "dataset-metadata.json").write_text(json.dumps(meta))

    result = api.dataset_create_new(str(folder), quiet=True)

    assert (result.status, result.error) == ("Error", "The license 'WTFPL' is not valid.")
    assert fake.count("CreateDataset") == 1 and DATASET not in fake._datasets
    assert "CC0-1.0" in LICENSES and "other" in LICENSES and "MIT" not in LICENSES


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_can_come_as_an_html_page(api: Any, fake: FakeKaggle, status: int) -> None:
    fake.seed_dataset(DATASET, {"a.py": b"1"})
    fake.inject(status=status, rpc="GetDatasetStatus", html=True, retry_after=7)

    with pytest.raises(requests.HTTPError) as caught:
        api.dataset_status(DATASET)

    response = caught.value.response
    assert response.status_code == status and response.headers["Retry-After"] == "7"
    assert response.text.startswith("<!DOCTYPE html>")
    assert response.headers["Content-Type"].startswith("text/html")

    # Labelled as JSON, the page makes kagglesdk fail while parsing: no status code left.
    fake.inject(status=status, rpc="GetDatasetStatus", html=True, content_type="application/json")
    with pytest.raises(requests.exceptions.JSONDecodeError) as parsing:
        api.dataset_status(DATASET)
    assert "Expecting value: line 1 column 1 (char 0)" in str(parsing.value)
    assert api.dataset_status(DATASET) == "ready"


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


def test_a_lost_create_response_is_retried_into_a_second_version(
    api: Any, fake: FakeKaggle, tmp_path: Path
) -> None:
    folder = dataset_folder(tmp_path)
    fake.seed_dataset(DATASET, {"old.py": b"0"})
    # The server commits version 2, then the connection drops: the client retries the
    # create (connection errors are retried, after ~0.85 s), and as the first version is
    # long ready, nothing stops the retry from making version 3 with the same files.
    fake.inject(drop="after", rpc="CreateDatasetVersion")

    result = api.dataset_create_version(str(folder), "lost reply", quiet=True)

    assert result.status == "Ok"
    assert [v.notes for v in fake.dataset(DATASET).versions] == ["", "lost reply", "lost reply"]
    assert [r.status for r in fake.requests if r.rpc == "CreateDatasetVersion"] == [None, 200]


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


def test_download_dataset_follows_the_redirect(api: Any, fake: FakeKaggle, tmp_path: Path) -> None:
    fake.seed_dataset(DATASET, {"train.py": b"x", "sub/a.py": b"A"})

    api.dataset_download_files(DATASET, path=str(tmp_path / "dl"), quiet=True, unzip=True)

    assert (tmp_path / "dl" / "sub" / "a.py").read_bytes() == b"A"


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
