"""syncd.remotes.kaggle.kernels against the fake: the real client pushes, the fake really runs
the script, and syncd follows that version, lists and fetches its outputs and log."""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.errors import TransientError
from syncd.remotes.kaggle.downloads import UnsafeOutputName
from syncd.remotes.kaggle.kernels import KaggleKernels, KernelPushError, KernelSpec
from tests.fakes.kaggle_server import HOSTILE_NAMES, FakeKaggle

from .conftest import wait_for
from .kaggle_support import DATASET, KERNEL, kaggle_config

# A kernel that finds the mounted dataset, reads it, and writes a 5 MB "checkpoint".
TRAIN = """
import hashlib, json, os, sys
root = os.environ.get("SYNCD_KAGGLE_ROOT", "/kaggle")
for dirpath, _, names in os.walk(os.path.join(root, "input")):
    if "labels.csv" in names:
        rows = open(os.path.join(dirpath, "labels.csv")).read().splitlines()
print("epoch 1 loss 0.9")
print("warming up", file=sys.stderr)
os.makedirs("runs/r1", exist_ok=True)
json.dump({"rows": len(rows)}, open("runs/r1/metrics.json", "w"))
block = hashlib.sha256(b"seed").digest() * 32
with open("runs/r1/model.ckpt", "wb") as f:
    for _ in range(5 * 1024 * 1024 // len(block)):
        f.write(block)
print("done")
"""


def spec(code: str = TRAIN, **changes: object) -> KernelSpec:
    fields: dict[str, object] = {
        "ref": KERNEL,
        "title": "cifar-train",
        "code": textwrap.dedent(code),
        "machine_shape": "NvidiaTeslaT4",
        "enable_internet": False,
        "dataset_sources": (DATASET,),
        **changes,
    }
    return KernelSpec(**fields)  # type: ignore[arg-type]


@pytest.fixture
def kernels(kernel_fake: FakeKaggle, kaggle_env: Path) -> Iterator[KaggleKernels]:
    yield KaggleKernels(kaggle_config(kernel_fake))


def test_push_then_follow_that_version_and_fetch_everything(
    kernels: KaggleKernels, kernel_fake: FakeKaggle, tmp_path: Path
) -> None:
    pushed = kernels.push(spec(docker_image="gcr.io/kaggle-gpu-images/python:v150"))

    assert (pushed.ref, pushed.version) == (KERNEL, 1)
    sent = kernel_fake.kernel(KERNEL).versions[0].request
    assert (sent["machineShape"], sent["enableGpu"], sent["enableInternet"]) == (
        "NvidiaTeslaT4",
        True,
        False,
    )
    assert sent["datasetDataSources"] == [DATASET]
    assert sent["dockerImage"] == "gcr.io/kaggle-gpu-images/python:v150"
    kernel_fake.wait_kernel(KERNEL, ("complete", "error"))
    status = kernels.status(KERNEL, 1)
    assert (status.state, status.failure, status.done) == ("complete", None, True)
    assert [e.data for e in kernels.log(KERNEL, 1) if e.stream == "stdout"] == [
        "epoch 1 loss 0.9\n",
        "done\n",
    ]

    listed = kernels.outputs(KERNEL, 1)
    assert sorted(f.name for f in listed.files) == ["runs/r1/metrics.json", "runs/r1/model.ckpt"]
    assert {e.data for e in listed.log} == {"epoch 1 loss 0.9\n", "warming up\n", "done\n"}
    assert {e.stream for e in listed.log} == {"stdout", "stderr"}
    dest = tmp_path / "runs" / "r1-local"
    dest.mkdir(parents=True)
    for output in listed.files:
        kernels.download(output, dest)
    sandbox = kernel_fake.kernel(KERNEL).versions[0].sandbox / "kaggle" / "working"
    for name in ("runs/r1/metrics.json", "runs/r1/model.ckpt"):
        assert (dest / name).read_bytes() == (sandbox / name).read_bytes()
    assert json.loads((dest / "runs/r1/metrics.json").read_text()) == {"rows": 3}
    assert not [p for p in dest.rglob(".syncd-tmp-*")]


def test_status_is_about_the_version_asked(kernels: KaggleKernels, kernel_fake: FakeKaggle) -> None:
    kernels.push(spec("import sys\nsys.exit(2)\n"))
    kernel_fake.wait_kernel(KERNEL, ("error",))
    kernel_fake.hold_queue = True
    second = kernels.push(spec("print('again')\n"))

    assert second.version == 2
    assert kernels.status(KERNEL, 2).state == "queued"
    first = kernels.status(KERNEL, 1)  # not the newer run's state
    assert (first.state, first.failure) == ("error", "Kernel exited with code 2")
    assert [s.rpc for s in kernel_fake.requests if s.rpc == "GetKernelSessionStatus"]
    labels = [
        r.body.get("versionLabel")
        for r in kernel_fake.requests
        if r.rpc == "GetKernelSessionStatus"
    ]
    assert labels == ["v2", "v1"]


def test_every_page_of_outputs(kernels: KaggleKernels, kernel_fake: FakeKaggle) -> None:
    kernels.push(spec("for i in range(45):\n    open(f'f{i:02d}', 'w').write(str(i))\n"))
    kernel_fake.wait_kernel(KERNEL, ("complete",))

    listed = kernels.outputs(KERNEL, 1, page_size=20)

    assert [f.name for f in listed.files] == [f"f{i:02d}" for i in range(45)]
    assert kernel_fake.count("ListKernelSessionOutput") == 3
    kernel_fake.reset_log()
    assert [e.data for e in kernels.log(KERNEL, 1)] == []  # the script printed nothing
    assert kernel_fake.count("ListKernelSessionOutput") == 1


def test_refusals_and_dropped_sources_are_push_errors(
    kernels: KaggleKernels, kernel_fake: FakeKaggle
) -> None:
    # Every session stays queued: on a loaded machine the first run could otherwise end
    # before the third push and leave the cap unreached.
    kernel_fake.hold_queue = True
    with pytest.raises(KernelPushError) as dropped:
        kernels.push(spec(dataset_sources=(DATASET, "alice/not-there")))
    assert str(dropped.value) == (
        "Kaggle dropped dataset sources alice/not-there from alice/cifar-train v1 (not found, "
        "or not visible to alice), so the run would not see them (check the names and that "
        "the datasets are ready)"
    )
    assert dropped.value.pushed is not None and dropped.value.pushed.version == 1
    assert dropped.value.invalid == {"invalid_dataset_sources": ["alice/not-there"]}

    kernels.push(spec(ref="alice/second-gpu-run", title="second gpu run"))
    with pytest.raises(KernelPushError) as capped:
        kernels.push(spec(ref="alice/third-gpu-run", title="third gpu run"))
    assert capped.value.gpu_cap == 2
    assert str(capped.value) == (
        "Kaggle already runs 2 GPU sessions for alice, the most it allows at once (wait for one "
        "to end, or stop one (deleting its kernel stops it))"
    )


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"machine_shape": "NvidiaK80"}, "'NvidiaK80' is not a Kaggle accelerator id"),
        ({"title": "CIFAR training"}, "the slug 'cifar-train' is not the title's"),
        ({"title": "cifr"}, "shorter than 5 characters"),
    ],
)
def test_bad_specs_are_refused_before_any_request(
    kernels: KaggleKernels, kernel_fake: FakeKaggle, changes: dict, words: str
) -> None:
    kernel_fake.reset_log()
    with pytest.raises(KernelPushError) as caught:
        kernels.push(spec(**changes))
    assert words in str(caught.value)
    assert kernel_fake.requests == []


def test_a_lost_push_reply_starts_no_second_session(
    kernels: KaggleKernels, kernel_fake: FakeKaggle
) -> None:
    kernel_fake.inject(drop="after", rpc="SaveKernel")

    pushed = kernels.push(spec("print(1)\n"))

    assert pushed.version == 1
    assert len(kernel_fake.kernel(KERNEL).versions) == 1 and kernel_fake.count("SaveKernel") == 1


@pytest.mark.parametrize("content_type", [None, "application/json"])
def test_html_throttling_on_status_outputs_and_downloads_is_retried(
    kernels: KaggleKernels, kernel_fake: FakeKaggle, tmp_path: Path, content_type: str | None
) -> None:
    kernels.push(spec("open('a.bin', 'wb').write(b'x' * 1000)\n"))
    kernel_fake.wait_kernel(KERNEL, ("complete",))
    page = {"html": True, "content_type": content_type, "retry_after": 0}
    for rpc in ("GetKernelSessionStatus", "ListKernelSessionOutput", "download"):
        kernel_fake.inject(status=429, rpc=rpc, **page)
        kernel_fake.inject(status=503, rpc=rpc, **page)

    assert kernels.status(KERNEL, 1).state == "complete"
    (output,) = kernels.outputs(KERNEL, 1).files
    got = kernels.download(output, tmp_path)

    assert got.path.read_bytes() == b"x" * 1000
    for rpc in ("GetKernelSessionStatus", "ListKernelSessionOutput", "download"):
        assert [r.status for r in kernel_fake.requests if r.rpc == rpc][:3] == [429, 503, 200]


def test_lasting_throttling_is_one_sentence(
    kernels: KaggleKernels, kernel_fake: FakeKaggle
) -> None:
    kernels.push(spec("print(1)\n"))
    kernel_fake.inject(status=429, count=10, rpc="GetKernelSessionStatus", html=True, retry_after=0)
    with pytest.raises(TransientError) as caught:
        kernels.status(KERNEL, 1)
    assert str(caught.value) == (
        "Kaggle is throttling requests (HTTP 429) while checking alice/cifar-train v1 "
        "(4 attempts) (syncd tries again at the next poll)"
    )


def test_a_download_cut_midway_resumes(
    kernels: KaggleKernels, kernel_fake: FakeKaggle, tmp_path: Path
) -> None:
    kernels.push(spec())
    kernel_fake.wait_kernel(KERNEL, ("complete",))
    ckpt = next(f for f in kernels.outputs(KERNEL, 1).files if f.name.endswith("model.ckpt"))
    kernel_fake.inject(rpc="download", partial=3_000_000)

    got = kernels.download(ckpt, tmp_path)

    # What arrived before the cut, in whole chunks, was kept and not asked for again.
    assert got.size == 5 * 1024 * 1024 and 0 < got.resumed_from <= 3_000_000
    want = hashlib.sha256(b"seed").digest() * 32 * (5 * 1024 * 1024 // 1024)
    assert got.path.read_bytes() == want
    ranges = [r.headers.get("Range") for r in kernel_fake.requests if r.rpc == "download"]
    assert ranges == [None, f"bytes={got.resumed_from}-"]


def test_hostile_output_names_are_refused_and_nothing_escapes(
    kernels: KaggleKernels, kernel_fake: FakeKaggle, tmp_path: Path
) -> None:
    kernel_fake.hostile_outputs(KERNEL)
    kernels.push(spec("open('fine.txt', 'w').write('fine')\n"))
    kernel_fake.wait_kernel(KERNEL, ("complete",))
    run_dir = tmp_path / "home" / "runs" / "r1"
    run_dir.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (run_dir / "link").symlink_to(outside)  # a symlink in the run folder

    refused = []
    for output in kernels.outputs(KERNEL, 1).files:
        try:
            kernels.download(output, run_dir)
        except UnsafeOutputName as exc:
            refused.append((output.name, str(exc)))

    assert sorted(name for name, _ in refused) == sorted(HOSTILE_NAMES)
    assert (run_dir / "fine.txt").read_text() == "fine"
    assert list(outside.iterdir()) == [] and not (tmp_path / "evil").exists()
    assert not os.path.exists("/etc/x")
    assert all(message.startswith("refused the output") for _, message in refused)


def test_the_live_log_and_a_stalled_run(kernels: KaggleKernels, kernel_fake: FakeKaggle) -> None:
    kernel_fake.stall_kernel(KERNEL)
    kernels.push(spec("print('epoch 1')\n"))
    kernel_fake.wait_kernel(KERNEL, ("running",))
    wait_for(lambda: kernel_fake.kernel(KERNEL).versions[0].log, 10, "the script's line")

    started = time.monotonic()
    live = kernels.live_log(KERNEL, 1, seconds=0.5)

    assert time.monotonic() - started < 5
    assert ([e.data for e in live.entries], live.ended) == (["epoch 1\n"], False)
    assert kernels.status(KERNEL, 1).state == "running"  # and stays so: no log progress
    assert kernels.delete(KERNEL) is True
    assert kernels.delete(KERNEL) is False  # already gone


def test_the_live_log_of_a_finished_run_is_whole(
    kernels: KaggleKernels, kernel_fake: FakeKaggle
) -> None:
    kernels.push(spec("print('a')\nprint('b')\n"))
    kernel_fake.wait_kernel(KERNEL, ("complete",))
    live = kernels.live_log(KERNEL, 1, seconds=2)
    assert ([e.data for e in live.entries], live.ended) == (["a\n", "b\n"], True)


def test_quota(kernels: KaggleKernels, kernel_fake: FakeKaggle) -> None:
    kernel_fake.gpu_used_seconds = 20 * 3600
    kernel_fake.quota_refresh_at = 1_900_000_000
    kernel_fake.hold_queue = True
    kernels.push(spec("print(1)\n"))  # a queued GPU session holds the rest of its 12 h

    quota = kernels.quota()

    assert (quota.used_s, quota.total_s) == (20 * 3600, 30 * 3600)
    assert quota.reserved_s == pytest.approx(12 * 3600, abs=2)
    assert quota.remaining_s == 0.0  # 30 - 20 - 12 < 0
    assert quota.refresh_at is not None and quota.refresh_at.timestamp() == 1_900_000_000


def test_token_auth_for_kernels(
    kernel_fake: FakeKaggle, kaggle_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    monkeypatch.setenv("KAGGLE_API_TOKEN", kernel_fake.issue_token("alice"))
    kernels = KaggleKernels(kaggle_config(kernel_fake))

    assert kernels.push(spec("print(1)\n")).version == 1
    assert {r.auth_scheme for r in kernel_fake.requests} == {"Bearer"}
