"""A stateful fake of the Kaggle API, served over real HTTP to the real `kaggle` client.

Written against kaggle 2.2.5 / kagglesdk 0.1.38 (pinned in pyproject.toml). It owns the
RPCs syncd uses: token introspection, dataset status/create/version/get/list/download,
blob uploads, and kernels save/status/outputs/logs/pull/delete plus the accelerator
quota, with a kernel runtime that really executes pushed scripts in a sandbox.

One module per concern, each opening with the rules it models and their sources:
`plumbing` (HTTP, routing, fault injection, client wiring), `auth` (keys and tokens),
`datasets`, `blobs` (uploads and downloads), `kernels` (the RPCs), `sessions` (runs over
time, quota, faults) and `runtime` (the sandbox a session runs in). `service` puts them
together as `FakeKaggle` and lists every knob.

Pointing the real client at the fake: in-process, `with fake.patch_endpoint():` (or
syncd's `kaggle.endpoint` setting); for a subprocess, `fake.client_env(home=...)`.
Isolate HOME, KAGGLE_CONFIG_DIR and TMPDIR / `tempfile.tempdir` in tests: a stale
`~/.kaggle/access_token` is sent instead of a key, and resumable-upload state lives for
6 days in `$TMPDIR/.kaggle-uploads-<uid>/`.
"""

from .datasets import MISSING_DATASET_ERROR, REFUSED_VERSION_MESSAGE
from .kernels import Kernel
from .model import LICENSES, Dataset, DatasetVersion, RequestRecord
from .runtime import KernelRun
from .service import FakeKaggle
from .sessions import HOSTILE_NAMES

__all__ = [
    "HOSTILE_NAMES",
    "LICENSES",
    "MISSING_DATASET_ERROR",
    "REFUSED_VERSION_MESSAGE",
    "Dataset",
    "DatasetVersion",
    "FakeKaggle",
    "Kernel",
    "KernelRun",
    "RequestRecord",
]
