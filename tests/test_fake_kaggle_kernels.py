"""The Kaggle fake's kernel runtime, driven by the real client (kaggle 2.2.5): pushed
scripts really run in a sandbox with the dataset mounted, and every rule of the kernel
RPCs (sources, shapes, the GPU session cap, status, outputs, logs, delete, quota)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fakes.kaggle_server import FakeKaggle

from .kaggle_support import DATASET, KERNEL, kernel_folder
from .kaggle_support import push as push_script

# A hand-written kernel: finds the mounted dataset by walking $SYNCD_KAGGLE_ROOT/input,
# reads a file from it, and writes outputs into working/.
WALKER = """
import json, os, sys
root = os.environ.get("SYNCD_KAGGLE_ROOT", "/kaggle")
found = []
for dirpath, dirnames, filenames in os.walk(os.path.join(root, "input")):
    for name in filenames:
        found.append(os.path.relpath(os.path.join(dirpath, name), root))
labels = next(p for p in found if p.endswith("labels.csv"))
with open(os.path.join(root, labels)) as f:
    rows = f.read().splitlines()
print("mounted:", " ".join(sorted(found)))
print("rows:", len(rows), file=sys.stderr)
os.makedirs("runs/r1", exist_ok=True)
with open("runs/r1/metrics.json", "w") as f:
    json.dump({"rows": len(rows), "cwd": os.getcwd()}, f)
with open("model.bin", "wb") as f:
    f.write(bytes(range(256)) * 4)
try:
    import requests
    print("site-packages are visible")
except ImportError:
    print("standard library only")
"""


@pytest.fixture
def fake(kernel_fake: FakeKaggle) -> FakeKaggle:
    return kernel_fake


@pytest.fixture
def api(kernel_api: Any) -> Any:
    return kernel_api


def push(api: Any, root: Path, script: str = WALKER, **meta: Any) -> Any:
    return push_script(api, root, script, **meta)


def test_a_pushed_script_runs_with_the_dataset_mounted(
    api: Any, fake: FakeKaggle, tmp_path: Path
) -> None:
    pushed = push(api, tmp_path)
    assert (pushed.version_number, pushed.error, pushed.ref) == (1, "", KERNEL)
    assert pushed.invalid_dataset_sources == []

    assert fake.wait_kernel(KERNEL, ("complete", "error")) == "complete"
    assert api.kernels_status(KERNEL).status.name == "COMPLETE"
    out = tmp_path / "out"
    files, _ = api.kernels_output(KERNEL, str(out))

    metrics = json.loads((out / "runs" / "r1" / "metrics.json").read_text())
    run = fake.kernel(KERNEL).versions[0]
    assert metrics == {"rows": 3, "cwd": str(run.sandbox / "kaggle" / "working")}
    assert (out / "model.bin").read_bytes() == bytes(range(256)) * 4
    log = json.loads((out / "cifar-train.log").read_text())  # the CLI saves the log blob
    # Two pipes: stdout and stderr lines may interleave either way, as on Kaggle.
    by_stream = {
        name: [e["data"] for e in log if e["stream_name"] == name] for name in ("stdout", "stderr")
    }
    assert by_stream == {
        "stdout": [
            "mounted: input/datasets/alice/cifar-code/data/labels.csv "
            "input/datasets/alice/cifar-code/train.py\n",
            "standard library only\n",
        ],
        "stderr": ["rows: 3\n"],
    }
    assert all(isinstance(e["time"], float) for e in log)
    assert len(files) == 3
    assert json.loads(api.kernels_logs(KERNEL)) == log
    request = fake.kernel(KERNEL).versions[0].request
    assert (request["machineShape"], request["enableInternet"]) == ("NvidiaTeslaT4", False)


def test_status_moves_from_queued_to_running_to_complete(
    api: Any, fake: FakeKaggle, tmp_path: Path
) -> None:
    fake.hold_queue = True
    script = """
    import os, time
    for _ in range(500):
        if os.path.exists("go"):
            break
        time.sleep(0.01)
    print("done")
    """
    push(api, tmp_path, script)
    assert api.kernels_status(KERNEL).status.name == "QUEUED"
    fake.release_queue()
    assert fake.wait_kernel(KERNEL, ("running",)) == "running"
    assert api.kernels_status(KERNEL).status.name == "RUNNING"
    assert api.kernels_output(KERNEL, str(tmp_path / "early"))[0] == []  # no outputs yet
    (fake.kernel(KERNEL).versions[0].sandbox / "kaggle" / "working" / "go").write_text("")
    assert fake.wait_kernel(KERNEL, ("complete",)) == "complete"
    status = api.kernels_status(KERNEL)
    assert (status.status.name, status.failure_message) == ("COMPLETE", "")


def test_failures_end_in_error_with_a_message(api: Any, fake: FakeKaggle, tmp_path: Path) -> None:
    push(api, tmp_path, "import sys\nprint('boom', file=sys.stderr)\nsys.exit(3)\n")
    fake.wait_kernel(KERNEL, ("complete", "error"))
    status = api.kernels_status(KERNEL)
    assert (status.status.name, status.failure_message) == ("ERROR", "Kernel exited with code 3")
    assert "boom" in api.kernels_logs(KERNEL)  # the log of a failed run is there

    fake.force_kernel_error(
        KERNEL, "Your notebook tried to allocate more memory than is available."
    )
    push(api, tmp_path, "print('fine')\n")
    fake.wait_kernel(KERNEL, ("complete", "error"), version=2)
    assert api.kernels_status(KERNEL).failure_message.startswith("Your notebook tried")
    assert api.kernels_status(f"{KERNEL}/1").failure_message == "Kernel exited with code 3"


def test_the_old_mount_layout_and_a_tampered_copy(
    api: Any, fake: FakeKaggle, tmp_path: Path
) -> None:
    fake.mount_layout = "legacy"
    fake.tamper_mount(DATASET, {"train.py": b"print('evil')\n", "data/labels.csv": b"id\n"})
    push(api, tmp_path)
    fake.wait_kernel(KERNEL, ("complete",))

    lines = [e["data"] for e in json.loads(api.kernels_logs(KERNEL))]
    assert "mounted: input/cifar-code/data/labels.csv input/cifar-code/train.py\n" in lines
    mounted = fake.kernel(KERNEL).versions[0].sandbox / "kaggle" / "input" / "cifar-code"
    assert (mounted / "train.py").read_bytes() == b"print('evil')\n"
    assert fake.dataset(DATASET).versions[0].files["train.py"] == b"print(1)\n"  # untouched


def test_invalid_dataset_sources_are_listed_and_dropped(
    api: Any, fake: FakeKaggle, tmp_path: Path
) -> None:
    fake.add_user("bob", "bobkey")
    fake.seed_dataset("bob/private-data", {"x": b"1"})  # private: alice cannot see it
    sources = [DATASET, "alice/no-such-data", "bob/private-data"]

    pushed = push(api, tmp_path, "print('ran')\n", dataset_sources=sources)

    assert (pushed.error, pushed.version_number) == ("", 1)  # the push still "succeeds"
    assert pushed.invalid_dataset_sources == ["alice/no-such-data", "bob/private-data"]
    assert fake.kernel(KERNEL).versions[0].mounts == [DATASET]


@pytest.mark.parametrize(
    ("meta", "error", "runs_on"),
    [
        ({"machine_shape": "NvidiaTeslaK80"}, "Unknown machine shape: NvidiaTeslaK80", None),
        (
            {"machine_shape": "NvidiaH100"},
            "The accelerator NvidiaH100 is not available to this account.",
            None,
        ),
        ({"machine_shape": "NvidiaTeslaP100"}, None, "NvidiaTeslaT4"),  # retired: replaced
        ({"machine_shape": "", "enable_gpu": True}, None, "NvidiaTeslaT4"),
        ({"machine_shape": "NvidiaL4"}, None, "NvidiaL4"),
        ({"machine_shape": ""}, None, None),  # CPU
    ],
)
def test_machine_shapes(
    api: Any, fake: FakeKaggle, tmp_path: Path, meta: dict, error: str | None, runs_on: str | None
) -> None:
    pushed = push(api, tmp_path, "print(1)\n", **meta)
    assert pushed.error == (error or "")
    if error:
        assert not pushed.version_number and KERNEL not in fake._kernels
    else:
        assert fake.kernel(KERNEL).versions[0].machine_shape == runs_on


def test_two_batch_gpu_sessions_at_most(api: Any, fake: FakeKaggle, tmp_path: Path) -> None:
    fake.hold_queue = True
    for title in ("gpu-one", "gpu-two"):
        assert push(api, tmp_path, "print(1)\n", id=f"alice/{title}", title=title).error == ""

    third = push(api, tmp_path, "print(1)\n", id="alice/gpu-three", title="gpu-three")

    assert third.error == "Maximum batch GPU session count of 2 reached."
    assert not third.version_number and "alice/gpu-three" not in fake._kernels
    cpu = push(api, tmp_path, "print(1)\n", id="alice/cpu-one", title="cpu-one", machine_shape="")
    assert cpu.error == ""  # CPU sessions do not count
    quick = api.kernels_push(
        str(kernel_folder(tmp_path, "print(1)\n", id="alice/gpu-four", title="gpu-four")),
        no_run=True,
    )
    assert quick.error == ""  # a quick save never runs
    assert api.kernels_status("alice/gpu-four").status.name == "NEW_SCRIPT"
    api.kernels_delete("alice/gpu-one", no_confirm=True)
    again = push(api, tmp_path, "print(1)\n", id="alice/gpu-three", title="gpu-three")
    assert again.error == ""


def test_deleting_the_kernel_stops_the_run_and_its_billing(
    api: Any, fake: FakeKaggle, tmp_path: Path
) -> None:
    script = """
    import time
    while True:
        with open("heartbeat", "a") as f:
            f.write(".")
        time.sleep(0.02)
    """
    push(api, tmp_path, script)
    fake.wait_kernel(KERNEL, ("running",))
    heartbeat = fake.kernel(KERNEL).versions[0].sandbox / "kaggle" / "working" / "heartbeat"
    time.sleep(0.3)
    reserved = api.quota_view().gpu_quota.time_reserved
    assert timedelta(hours=11) < reserved <= timedelta(hours=12)  # the rest of 12 h

    with pytest.raises(requests.HTTPError) as refused:  # no cancel call for users
        cancel_session(api)
    assert refused.value.response.status_code == 403
    api.kernels_delete(KERNEL, no_confirm=True)

    time.sleep(0.3)
    size = heartbeat.stat().st_size
    time.sleep(0.3)
    assert heartbeat.stat().st_size == size  # the process is gone
    with pytest.raises(requests.HTTPError) as gone:
        api.kernels_logs(KERNEL)
    assert gone.value.response.status_code == 404
    quota = api.quota_view().gpu_quota
    assert quota.time_reserved == timedelta(0)
    used = quota.time_used
    time.sleep(0.3)
    assert api.quota_view().gpu_quota.time_used == used  # billing stopped
    assert timedelta(seconds=0.3) < used < timedelta(seconds=10)


def cancel_session(api: Any) -> Any:
    from kagglesdk.kernels.types.kernels_api_service import ApiCancelKernelSessionRequest

    request = ApiCancelKernelSessionRequest()
    request.kernel_session_id = 1
    with api.build_kaggle_client() as client:
        return client.kernels.kernels_api_client.cancel_kernel_session(request)


def test_quota_counts_finished_gpu_runs(api: Any, fake: FakeKaggle, tmp_path: Path) -> None:
    fake.gpu_seconds_per_run = 600
    fake.gpu_used_seconds = 3600
    fake.quota_refresh_at = 1_900_000_000
    push(api, tmp_path, "print(1)\n")
    fake.wait_kernel(KERNEL, ("complete",))

    quota = api.quota_view()

    assert quota.gpu_quota.time_used == timedelta(seconds=4200)
    assert quota.gpu_quota.total_time_allowed == timedelta(hours=30)
    assert quota.gpu_quota.time_reserved == timedelta(0)
    assert quota.quota_refresh_time.timestamp() == pytest.approx(1_900_000_000, abs=1)
