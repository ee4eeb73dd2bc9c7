"""What ``syncd train`` checks before anything is uploaded, and the kernel a run gets.

* The settings (``check_settings``): a known accelerator id, no P100 on the default image,
  a timeout Kaggle accepts, a command. Each problem is a ConfigError naming its key.
* The kernel (``kernel_identity``): one kernel per run, ``<owner>/<project>-run-<n>``,
  titled so that Kaggle's slug of the title is exactly that slug (Kaggle files a new
  kernel under its title's slug, at least 5 characters); ``KernelSpec.problems`` checks it.
* The GPU quota (``check_quota``): what is left this week, after the time that running
  sessions hold, must cover the run's timeout, else the sentence names the hours left and
  when the quota refreshes.
"""

from __future__ import annotations

import math
import time

from slugify import slugify

from ..config import TrainConfig
from ..errors import ConfigError
from ..remotes.kaggle.kernel_types import MACHINE_SHAPES, GpuQuota
from .model import TrainError, iso

SESSION_LIMIT_S = 12 * 3600.0  # Kaggle ends GPU and CPU sessions after 12 h
TPU_SESSION_LIMIT_S = 9 * 3600.0
P100 = "NvidiaTeslaP100"
MAX_TITLE = 50  # Kaggle's limit on kernel titles


def session_limit(shape: str) -> float:
    return TPU_SESSION_LIMIT_S if shape.startswith("Tpu") else SESSION_LIMIT_S


def run_timeout(cfg: TrainConfig, shape: str) -> float:
    """The seconds a run may take: ``train.timeout``, else Kaggle's session limit."""
    return cfg.timeout if cfg.timeout is not None else session_limit(shape)


def check_settings(project: str, cfg: TrainConfig, shape: str, command: str) -> None:
    """Refuse settings Kaggle would refuse or silently change, before any upload."""
    where = f"{project}: train"
    if shape not in MACHINE_SHAPES:
        raise ConfigError(
            f"{where}.machine_shape: {shape!r} is not a Kaggle accelerator id",
            f"use one of {', '.join(MACHINE_SHAPES)} (NvidiaTeslaT4 is the T4 x2 default)",
        )
    if shape == P100 and not cfg.docker_image:
        raise ConfigError(
            f"{where}.machine_shape: Kaggle's current default image cannot use a P100 (it is "
            "built for CUDA 12.8, so the run would fail at its first CUDA operation: "
            "kaggle-cli #821)",
            "use NvidiaTeslaT4, or pin an image that supports the P100 with train.docker_image",
        )
    limit = session_limit(shape)
    if cfg.timeout is not None and cfg.timeout > limit:
        raise ConfigError(
            f"{where}.timeout: {cfg.timeout / 3600:g} h is longer than Kaggle's "
            f"{limit / 3600:g} h session limit for {shape}",
            f"set it to {limit / 3600:g}h or less",
        )
    if not command.strip():
        raise ConfigError(f"{where}.command: empty", "e.g. python train.py")


def kernel_identity(owner: str, project: str, seq: int) -> tuple[str, str]:
    """(owner/slug, title) of run ``seq``'s kernel: the slug is Kaggle's slug of the title."""
    suffix = f" run {seq}"
    title = f"{project[: MAX_TITLE - len(suffix)]}{suffix}"
    return f"{owner}/{slugify(title)}", title


def hours(seconds: float) -> str:
    return f"{math.floor(seconds / 360) / 10:g} h"


def check_quota(quota: GpuQuota, needed_s: float, now: float | None = None) -> None:
    """Refuse a run the GPU quota cannot cover (``quota.remaining_s`` already leaves out
    what running sessions hold)."""
    if quota.remaining_s >= needed_s:
        return
    now = time.time() if now is None else now
    held = f", after {hours(quota.reserved_s)} held by running sessions" if quota.reserved_s else ""
    refresh = (
        f"; the quota refreshes at {iso(quota.refresh_at.timestamp())} "
        f"(in {hours(max(0.0, quota.refresh_at.timestamp() - now))})"
        if quota.refresh_at is not None
        else ""
    )
    raise TrainError(
        f"Kaggle has {hours(quota.remaining_s)} of GPU time left this week{held}, less than "
        f"the run's timeout of {hours(needed_s)}{refresh}",
        "set train.timeout to what the run needs, or wait for the refresh",
    )
