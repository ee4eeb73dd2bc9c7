"""Kernels: SaveKernel (push), session status, outputs, pull, delete.

Rules and their sources (kagglesdk 0.1.38 kernels_api_service.py types, kaggle 2.2.5
kaggle_api_extended.py, kaggle-cli docs and issues):

* SaveKernel answers `{ref, url, versionNumber, error, invalidTags,
  invalidDatasetSources, invalidCompetitionSources, invalidKernelSources,
  invalidModelSources, kernelId}`. Refusals come as `error` in a 200 (the CLI prints
  "Kernel push error: ..." and exits 0). A dataset source that does not exist or that
  the user cannot see is listed in `invalidDatasetSources` and dropped, while the push
  still succeeds (kaggle-cli #433); the fake knows no competitions, models or tags, so
  those are always invalid; a kernel source must be a kernel the user can see.
* A new kernel's slug is its title slugified ("A kernel slug is always the title
  lowercased with dashes", docs/kernels_metadata.md): pushing `id: alice/x` with a title
  that slugifies otherwise creates the kernel under the title's slug.
* `machineShape` must be an accelerator id from docs/kernels.md ("Accelerators
  available as of Feb 2026"); ids "only available to participants of specific
  competitions ... or to Kaggle admins" (`RESTRICTED_SHAPES`) and unknown ids are refused
  (the wording is the fake's). Retired shapes are accepted and run on their replacement
  (kaggle_api_extended.py `_RETIRED_ACCELERATORS`: P100 -> T4, TPU v3-8 -> v5e-8).
  `enableGpu` without a shape asks for a P100 (kaggle-cli #821), hence a T4 too.
* Status, outputs and logs take `versionLabel` as `v<N>`; a bare number is a 404
  (kaggle_api_extended.py `_kernel_version_label`). Without a label they describe the
  newest version. Outputs exist once the session has ended; the listing is paged (20 by
  default, at most 200, docs/kernels.md) with opaque tokens and carries the log on its
  first page; file URLs need no auth.
* A QUICK_SAVE push saves a version that never runs: its status is NEW_SCRIPT (the
  fake's reading of KernelWorkerStatus).
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from slugify import slugify

from .model import ApiError, Dataset, page
from .runtime import KernelRun

GPU_SHAPES = ("NvidiaTeslaT4", "NvidiaL4", "NvidiaL4X1")
TPU_SHAPES = ("TpuV5E8", "TpuV6E8")
RESTRICTED_SHAPES = ("NvidiaTeslaT4Highmem", "NvidiaTeslaA100", "NvidiaH100", "NvidiaRtxPro6000")
RETIRED_SHAPES = {
    "NvidiaTeslaP100": "NvidiaTeslaT4",
    "TpuV38": "TpuV5E8",
    "Tpu1VmV38": "TpuV5E8",
}
LANGUAGES, KERNEL_TYPES = ("python", "r", "rmarkdown"), ("script", "notebook")


@dataclass
class Kernel:
    owner: str
    slug: str
    id: int
    title: str
    versions: list[KernelRun] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.slug}"


class Kernels:
    _lock: threading.RLock
    _cond: threading.Condition
    _datasets: dict[str, Dataset]
    _kernels: dict[str, Kernel]
    _runs: list[KernelRun]
    _output_links: dict[str, tuple[KernelRun, str]]
    max_gpu_sessions: int
    session_timeout_seconds: float
    url: str

    if TYPE_CHECKING:  # provided by FakeKaggle and Sessions

        def _new_id(self) -> int: ...
        def _start_session(self, run: KernelRun) -> None: ...
        def _gpu_sessions(self, user: str) -> int: ...
        def _end_sessions(self, runs: list[KernelRun]) -> None: ...

    # ---- inspection --------------------------------------------------------------------

    def kernel(self, ref: str) -> Kernel:
        with self._lock:
            return copy.deepcopy(self._kernels[ref])

    def wait_kernel(
        self, ref: str, states: tuple[str, ...], version: int | None = None, timeout: float = 30
    ) -> str:
        """Block until the version (default: newest) reaches one of `states`; its status."""
        with self._cond:
            kernel = self._kernels[ref]
            run = kernel.versions[(version or len(kernel.versions)) - 1]
            if not self._cond.wait_for(lambda: run.status in states or run.deleted, timeout):
                raise TimeoutError(f"{ref} v{run.number} stayed {run.status}")
            return run.status

    # ---- handlers (run with the lock held) ---------------------------------------------

    def _visible_kernel(self, user: str, ref: str) -> Kernel:
        kernel = self._kernels.get(ref)
        if kernel is None or (
            kernel.versions[-1].request.get("isPrivate", True) and kernel.owner != user
        ):
            raise ApiError(404, f"Notebook {ref} not found")
        return kernel

    def _find_run(self, user: str, owner: str, slug: str, label: str | None) -> KernelRun:
        ref = f"{owner}/{slug}"
        kernel = self._visible_kernel(user, ref)
        if not label:
            return kernel.versions[-1]
        number = label[1:] if label.startswith("v") else ""
        if not number.isdigit() or not 1 <= int(number) <= len(kernel.versions):
            raise ApiError(404, f"Version {label} of {ref} not found")
        return kernel.versions[int(number) - 1]

    def _run_for(self, user: str, req: dict[str, Any]) -> KernelRun:
        return self._find_run(
            user, req.get("userName", ""), req.get("kernelSlug", ""), req.get("versionLabel")
        )

    @staticmethod
    def _machine(req: dict[str, Any]) -> tuple[str | None, str | None]:
        """(the shape the session runs on, or None for CPU; a refusal, or None)."""
        shape = req.get("machineShape")
        if shape:
            if shape in RESTRICTED_SHAPES:
                return None, f"The accelerator {shape} is not available to this account."
            shape = RETIRED_SHAPES.get(shape, shape)
            if shape not in GPU_SHAPES + TPU_SHAPES:
                return None, f"Unknown machine shape: {req.get('machineShape')}"
            return shape, None
        if req.get("enableGpu"):
            return RETIRED_SHAPES["NvidiaTeslaP100"], None
        if req.get("enableTpu"):
            return RETIRED_SHAPES["TpuV38"], None
        return None, None

    def _invalid_sources(self, user: str, req: dict[str, Any]) -> dict[str, list[str]]:
        def dataset_ok(ref: str) -> bool:
            ds = self._datasets.get(ref)
            return ds is not None and (not ds.is_private or ds.owner == user) and bool(ds.current)

        def kernel_ok(ref: str) -> bool:
            try:
                self._visible_kernel(user, ref)
            except ApiError:
                return False
            return True

        return {
            "invalidDatasetSources": [
                s for s in req.get("datasetDataSources", []) if not dataset_ok(s)
            ],
            "invalidKernelSources": [
                s for s in req.get("kernelDataSources", []) if not kernel_ok(s)
            ],
            "invalidCompetitionSources": list(req.get("competitionDataSources", [])),
            "invalidModelSources": list(req.get("modelDataSources", [])),
            "invalidTags": list(req.get("categoryIds", [])),
        }

    def _rpc_SaveKernel(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        if "id" in req:
            kernel = next((k for k in self._kernels.values() if k.id == req["id"]), None)
            if kernel is None:
                raise ApiError(404, f"Notebook id {req['id']} not found")
            owner, slug = kernel.owner, kernel.slug
        else:
            owner, _, slug = (req.get("slug") or "").rpartition("/")
            owner = owner or user
            kernel = self._kernels.get(f"{owner}/{slug}")
        if owner != user:
            raise ApiError(403, f"Permission 'kernels.update' was denied for {owner}/{slug}")
        if not req.get("text"):
            return {"error": "The notebook source is empty."}
        if req.get("language") not in LANGUAGES or req.get("kernelType") not in KERNEL_TYPES:
            return {"error": "A valid language and kernel type are required."}
        shape, refusal = self._machine(req)
        if refusal:
            return {"error": refusal}
        if kernel is None:
            title = req.get("newTitle") or ""
            if len(title) < 5:
                return {"error": "A title of at least five characters is required."}
            slug = slugify(title)
            kernel = self._kernels.get(f"{owner}/{slug}")
        quick = req.get("kernelExecutionType") == "QUICK_SAVE"
        gpu = bool(shape and shape.startswith("Nvidia"))
        if gpu and not quick and self._gpu_sessions(user) >= self.max_gpu_sessions:
            return {"error": f"Maximum batch GPU session count of {self.max_gpu_sessions} reached."}
        if kernel is None:
            kernel = Kernel(owner, slug, self._new_id(), req["newTitle"])
            self._kernels[kernel.ref] = kernel
        invalid = self._invalid_sources(user, req)
        mounts = [
            s
            for s in req.get("datasetDataSources", [])
            if s not in invalid["invalidDatasetSources"]
        ]
        timeout = float(req.get("sessionTimeoutSeconds") or self.session_timeout_seconds)
        run = KernelRun(
            kernel.ref,
            len(kernel.versions) + 1,
            req["text"],
            dict(req),
            shape,
            gpu,
            mounts,
            timeout,
        )
        kernel.versions.append(run)
        self._runs.append(run)
        if quick:
            run.status = "new_script"
        else:
            self._start_session(run)
        return {
            "ref": kernel.ref,
            "url": f"{self.url}/code/{kernel.ref}",
            "versionNumber": run.number,
            "kernelId": kernel.id,
            **invalid,
        }

    def _rpc_GetKernelSessionStatus(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        run = self._run_for(user, req)
        out = {"status": run.status.upper()}
        if run.failure_message:
            out["failureMessage"] = run.failure_message
        return out

    def _rpc_ListKernelSessionOutput(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        run = self._run_for(user, req)
        if run.status not in ("complete", "error"):
            return {"files": []}
        links = {name: token for token, (r, name) in self._output_links.items() if r is run}
        names, more = page(sorted(run.outputs), req)
        out: dict[str, Any] = {
            "files": [{"fileName": n, "url": f"{self.url}/kernel-output/{links[n]}"} for n in names]
        }
        if run.log and not req.get("pageToken"):
            out["log"] = run.log_text()
        return {**out, **more}

    def _rpc_GetKernel(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        run = self._run_for(user, req)
        kernel = self._kernels[run.kernel]
        meta = {k: v for k, v in run.request.items() if k not in ("text", "slug", "newTitle")}
        meta.update(id=kernel.id, ref=kernel.ref, title=kernel.title, author=kernel.owner)
        meta.update(slug=kernel.slug, currentVersionNumber=len(kernel.versions))
        blob = {"source": run.source, "slug": kernel.slug}
        blob.update({k: meta[k] for k in ("language", "kernelType") if k in meta})
        return {"metadata": meta, "blob": blob}

    def _rpc_DeleteKernel(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        ref = f"{req.get('userName', '')}/{req.get('kernelSlug', '')}"
        kernel = self._visible_kernel(user, ref)
        if kernel.owner != user:
            raise ApiError(403, f"Permission 'kernels.delete' was denied for {ref}")
        del self._kernels[ref]
        self._end_sessions(kernel.versions)
        return {}
