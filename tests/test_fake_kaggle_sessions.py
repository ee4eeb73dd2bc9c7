"""The Kaggle fake's kernel sessions over time, with the real client: paging, version
labels, the live log stream, timeouts, and the faults (HTML 429/503, a stalled run,
hostile output names)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fakes.kaggle_server import HOSTILE_NAMES, FakeKaggle

from .conftest import wait_for
from .kaggle_support import KERNEL, kernel_folder, push

MANY_OUTPUTS = """
import os
for i in range(45):
    with open(f"out-{i:02d}.txt", "w") as f:
        f.write(str(i))
print("wrote 45")
"""


def status_call(api: Any, label: str | None) -> Any:
    from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelSessionStatusRequest

    request = ApiGetKernelSessionStatusRequest()
    request.user_name, request.kernel_slug = KERNEL.split("/")
    if label is not None:
        request.version_label = label
    with api.build_kaggle_client() as client:
        return client.kernels.kernels_api_client.get_kernel_session_status(request)


def list_page(api: Any, token: str | None, size: int = 20) -> Any:
    from kagglesdk.kernels.types.kernels_api_service import ApiListKernelSessionOutputRequest

    request = ApiListKernelSessionOutputRequest()
    request.user_name, request.kernel_slug = KERNEL.split("/")
    request.page_size = size
    if token:
        request.page_token = token
    with api.build_kaggle_client() as client:
        return client.kernels.kernels_api_client.list_kernel_session_output(request)


def test_outputs_are_paged_with_opaque_tokens(
    kernel_api: Any, kernel_fake: FakeKaggle, tmp_path: Path
) -> None:
    push(kernel_api, tmp_path, MANY_OUTPUTS)
    kernel_fake.wait_kernel(KERNEL, ("complete",))

    first = list_page(kernel_api, None)
    second = list_page(kernel_api, first.next_page_token)
    third = list_page(kernel_api, second.next_page_token)

    assert [len(p.files) for p in (first, second, third)] == [20, 20, 5]
    assert not first.next_page_token.isdigit() and not third.next_page_token
    assert first.log and not second.log  # the log comes with the first page
    names = [f.file_name for p in (first, second, third) for f in p.files]
    assert names == [f"out-{i:02d}.txt" for i in range(45)]
    assert len(list_page(kernel_api, None, size=1000).files) == 45  # at most 200 a page
    with pytest.raises(requests.HTTPError) as bad:
        list_page(kernel_api, "20")  # a token is not an offset
    assert bad.value.response.status_code == 400
    files, _ = kernel_api.kernels_output(KERNEL, str(tmp_path / "all"))  # the CLI pages
    assert len(files) == 46 and (tmp_path / "all" / "out-44.txt").read_text() == "44"


def test_version_labels_are_v_n(kernel_api: Any, kernel_fake: FakeKaggle, tmp_path: Path) -> None:
    push(kernel_api, tmp_path, "import sys; sys.exit(1)\n")
    kernel_fake.wait_kernel(KERNEL, ("error",))
    push(kernel_api, tmp_path, "print('second')\n")
    kernel_fake.wait_kernel(KERNEL, ("complete",), version=2)

    assert status_call(kernel_api, None).status.name == "COMPLETE"  # the newest
    assert status_call(kernel_api, "v1").status.name == "ERROR"
    assert kernel_api.kernels_status(f"{KERNEL}/1").status.name == "ERROR"  # CLI adds the v
    for label in ("1", "v3"):
        with pytest.raises(requests.HTTPError) as missing:
            status_call(kernel_api, label)
        assert missing.value.response.status_code == 404


def test_the_live_log_streams_while_the_session_runs(
    kernel_api: Any, kernel_fake: FakeKaggle, tmp_path: Path
) -> None:
    script = """
    import os, time
    print("epoch 1")
    while not os.path.exists("go"):
        time.sleep(0.01)
    print("epoch 2")
    """
    push(kernel_api, tmp_path, script)
    kernel_fake.wait_kernel(KERNEL, ("running",))
    events: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: events.extend(kernel_api.kernels_logs_stream(KERNEL)))
    reader.start()
    deadline = time.monotonic() + 10
    while not events and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [e["data"] for e in events] == ["epoch 1\n"]  # live, before the run ends
    (kernel_fake.kernel(KERNEL).versions[0].sandbox / "kaggle" / "working" / "go").touch()
    reader.join(10)

    assert not reader.is_alive()  # END_OF_LOG ended the stream
    assert [e["data"] for e in events] == ["epoch 1\n", "epoch 2\n"]
    finished = list(kernel_api.kernels_logs_stream(KERNEL))  # now the persisted blob
    assert [e["data"] for e in finished] == ["epoch 1\n", "epoch 2\n"]


def test_the_session_timeout_stops_the_run(
    kernel_api: Any, kernel_fake: FakeKaggle, tmp_path: Path
) -> None:
    folder = kernel_folder(tmp_path, "import time\nprint('start')\ntime.sleep(60)\n")
    pushed = kernel_api.kernels_push(str(folder), timeout="1")
    assert pushed.version_number == 1
    assert kernel_fake.wait_kernel(KERNEL, ("complete", "error"), timeout=20) == "error"
    assert kernel_api.kernels_status(KERNEL).failure_message == "Session timed out after 1 seconds"


def test_a_new_kernel_takes_its_slug_from_the_title(
    kernel_api: Any, kernel_fake: FakeKaggle, tmp_path: Path
) -> None:
    pushed = push(
        kernel_api, tmp_path, "print(1)\n", title="CIFAR Train Run"
    )  # id says cifar-train
    assert pushed.ref == "alice/cifar-train-run"
    assert "alice/cifar-train" not in kernel_fake._kernels


@pytest.mark.parametrize("rpc", ["GetKernelSessionStatus", "ListKernelSessionOutput", "download"])
@pytest.mark.parametrize("status", [429, 503])
def test_html_throttling_on_status_and_outputs(
    kernel_api: Any, kernel_fake: FakeKaggle, tmp_path: Path, rpc: str, status: int
) -> None:
    push(kernel_api, tmp_path, "open('a.txt', 'w').write('a')\n")
    kernel_fake.wait_kernel(KERNEL, ("complete",))
    kernel_fake.inject(status=status, rpc=rpc, html=True)

    with pytest.raises(requests.HTTPError) as caught:
        if rpc == "GetKernelSessionStatus":
            kernel_api.kernels_status(KERNEL)
        else:
            kernel_api.kernels_output(KERNEL, str(tmp_path / "out"))

    assert caught.value.response.status_code == status
    assert caught.value.response.text.startswith("<!DOCTYPE html>")
    kernel_api.kernels_output(KERNEL, str(tmp_path / "out"))  # the next call works
    assert (tmp_path / "out" / "a.txt").read_text() == "a"


def test_a_stalled_session_stays_running_without_log_progress(
    kernel_api: Any, kernel_fake: FakeKaggle, tmp_path: Path
) -> None:
    kernel_fake.stall_kernel(KERNEL)
    push(kernel_api, tmp_path, "print('last words')\n")
    kernel_fake.wait_kernel(KERNEL, ("running",))
    wait_for(lambda: kernel_fake.kernel(KERNEL).versions[0].log, 10, "the script's line")
    time.sleep(0.5)  # long after the script has exited

    assert kernel_api.kernels_status(KERNEL).status.name == "RUNNING"
    assert kernel_fake.kernel(KERNEL).versions[0].exit_code is None
    assert [e["data"] for e in kernel_fake.kernel(KERNEL).versions[0].log] == ["last words\n"]
    assert kernel_api.kernels_output(KERNEL, str(tmp_path / "o"))[0] == []
    kernel_api.kernels_delete(KERNEL, no_confirm=True)  # the only way out, as on Kaggle


def test_hostile_output_names_are_served(
    kernel_api: Any, kernel_fake: FakeKaggle, tmp_path: Path
) -> None:
    kernel_fake.hostile_outputs(KERNEL)
    script = """
    import os
    os.symlink("/etc/hostname", "leak")  # symlinks out of working/ never become outputs
    open("ok.txt", "w").write("ok")
    """
    push(kernel_api, tmp_path, script)
    kernel_fake.wait_kernel(KERNEL, ("complete",))

    names = [f.file_name for f in list_page(kernel_api, None).files]

    assert sorted(names) == sorted([*HOSTILE_NAMES, "ok.txt"])
    # The CLI refuses the escaping names (and would write link/evil through a symlink).
    with pytest.raises(ValueError, match="resolves outside destination"):
        kernel_api.kernels_output(KERNEL, str(tmp_path / "dest"))
    assert not (tmp_path / "evil").exists()


def test_extra_run_time_keeps_the_session_running(
    kernel_api: Any, kernel_fake: FakeKaggle, tmp_path: Path
) -> None:
    kernel_fake.extra_run_seconds = 0.6
    push(kernel_api, tmp_path, "print(1)\n")
    kernel_fake.wait_kernel(KERNEL, ("running",))
    started = time.monotonic()
    kernel_fake.wait_kernel(KERNEL, ("complete",))
    assert time.monotonic() - started >= 0.5
    log = json.loads(kernel_api.kernels_logs(KERNEL))
    assert [e["data"] for e in log] == ["1\n"]
