"""Datasets: status, create, version, get, list files, download, with processing.

Rules and their sources:

* Right after a create or a new version, `GetDatasetStatus` and `GetDataset` answer 404
  for the next `fresh_404_polls` calls each ("Newly created versions may return 404 for
  several seconds", kaggle-cli issue #890).
* A new version is refused with HTTP 403 while the dataset's *first* version is still
  processing; once it is ready, versions may overlap (kagglehub PR #182, "you get a 403 if
  you try uploading a new version while the FIRST version is still being processed").
  The message is the generic permission one Kaggle sends for refused versions
  (kaggle-cli #642); `version_lock = "off"` never refuses.
* A new version reports `blobs_received`, `blobs_decompressed`, ... for its first
  `processing_polls` status polls, then `ready` (`failed` if an archive cannot be
  unpacked, or after `set_dataset_outcome(ref, "failed")`). `currentVersionNumber` and
  unversioned listings/downloads use the newest *ready* version.
* CreateDatasetVersion of a missing dataset: HTTP 200 `{"status": "Error", "error":
  MISSING_DATASET_ERROR}` (the text in kaggle-cli issue #373). Writing to another
  user's dataset: HTTP 403.
* CreateDataset checks the licence against Kaggle's list (kaggle-cli
  docs/datasets_metadata.md) and the title/slug lengths the docs give (6-50); the
  refusal comes in a 200 `{"status": "Error", "error": ...}` like every create error
  (the wording is the fake's).
* Uploaded `.zip`/`.tar`/`.tar.gz`/`.tgz` blobs are unpacked: `sub.zip` holding `a.py`
  becomes `sub/a.py` (what `dir_mode="zip"` relies on).
"""

from __future__ import annotations

import copy
import io
import tarfile
import threading
import zipfile
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .model import LICENSES, PROCESSING_STATES, ApiError, Dataset, DatasetVersion, Reply, iso, page

REFUSED_VERSION_MESSAGE = "Permission 'datasets.update' was denied"
MISSING_DATASET_ERROR = "Failed to resolve the necessary information from the request."
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip", ".tar")
_WINDOWED = ("GetDatasetStatus", "GetDataset")


def unpack(name: str, data: bytes) -> dict[str, bytes]:
    """What Kaggle shows for one uploaded blob: an archive becomes a folder named after it."""
    suffix = next((s for s in _ARCHIVE_SUFFIXES if name.lower().endswith(s)), None)
    if suffix is None:
        return {name: data}
    members: dict[str, bytes] = {}
    if suffix == ".zip":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    members[info.filename] = archive.read(info)
    else:
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            for member in archive.getmembers():
                if member.isfile() and (content := archive.extractfile(member)):
                    members[member.name] = content.read()
    out = {}
    for member_name, content in members.items():
        parts = PurePosixPath(member_name.replace("\\", "/")).parts
        parts = tuple(p for p in parts if p not in ("/", "."))
        if parts and ".." not in parts:  # never a path outside the dataset
            out["/".join([name[: -len(suffix)], *parts])] = content
    return out


class Datasets:
    _lock: threading.RLock
    _datasets: dict[str, Dataset]
    _dataset_outcomes: dict[str, str]
    _reserved: set[str]
    _blobs: dict[str, Any]
    processing_polls: int
    fresh_404_polls: int
    version_lock: str
    url: str

    if TYPE_CHECKING:  # provided by FakeKaggle

        def _new_id(self) -> int: ...

    # ---- inspection and seeding ----------------------------------------------------------

    def dataset(self, ref: str) -> Dataset:
        with self._lock:
            return copy.deepcopy(self._datasets[ref])

    def seed_dataset(
        self, ref: str, files: Mapping[str, bytes], notes: str = "", private: bool = True
    ) -> None:
        """Create a dataset with one ready version, as if it had been uploaded earlier."""
        owner, slug = ref.split("/")
        with self._lock:
            ds = Dataset(owner, slug, self._new_id(), title=slug, is_private=private)
            ds.versions.append(DatasetVersion(1, notes, dict(files), status="ready"))
            self._datasets[ref] = ds

    def finish_processing(self, ref: str) -> None:
        with self._lock:
            ds = self._datasets[ref]
            for version in ds.versions:
                if version.status in PROCESSING_STATES:
                    self._settle(ds, version)

    def reserve_slug(self, ref: str) -> None:
        """Make `ref` a slug nobody can see but CreateDataset calls in use (a deleted
        dataset's slug, say)."""
        with self._lock:
            self._reserved.add(ref)

    def delete_dataset(self, ref: str) -> None:
        """As if its owner deleted `ref` on kaggle.com (DeleteDataset): kernels pushed from
        now on list it in `invalidDatasetSources`."""
        with self._lock:
            del self._datasets[ref]

    def release_memory(self) -> None:
        """Benchmarks with hundreds of MB per version: forget the bytes of finished blob
        uploads and of versions older than each dataset's newest two (their sizes, counts
        and statuses stay). Not something Kaggle does; nothing reads those bytes afterwards."""
        with self._lock:
            for blob in self._blobs.values():
                if len(blob.data) == blob.size:
                    blob.data = bytearray()
                    blob.size = 0
            for ds in self._datasets.values():
                for version in ds.versions[:-2]:
                    version.files = {}

    def set_dataset_outcome(self, ref: str, outcome: str) -> None:
        """Versions created from now on end processing as `outcome` ("ready"/"failed")."""
        with self._lock:
            self._dataset_outcomes[ref] = outcome

    # ---- handlers (run with the lock held) ---------------------------------------------

    def _find_dataset(self, user: str, req: Mapping[str, Any], write: bool = False) -> Dataset:
        ref = f"{req.get('ownerSlug', '')}/{req.get('datasetSlug', '')}"
        ds = self._datasets.get(ref)
        if ds is None or (ds.is_private and ds.owner != user and not write):
            raise ApiError(404, f"Dataset {ref} not found")
        if write and ds.owner != user:
            raise ApiError(403, f"Permission 'datasets.update' was denied for {ref}")
        return ds

    def _not_yet_visible(self, ds: Dataset, rpc: str) -> None:
        if ds.unseen.get(rpc, 0) > 0:
            ds.unseen[rpc] -= 1
            raise ApiError(404, f"Dataset {ds.ref} not found")

    def _pick_version(self, ds: Dataset, number: int | None) -> DatasetVersion:
        if number is None and ds.current is not None:
            return ds.current
        if number is None or not 1 <= number <= len(ds.versions):
            raise ApiError(404, f"Dataset {ds.ref} has no version {number or 'ready'}")
        return ds.versions[number - 1]

    def _rpc_GetDatasetStatus(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        ds = self._find_dataset(user, req)
        self._not_yet_visible(ds, "GetDatasetStatus")
        for version in ds.versions:  # each poll moves processing on
            if version.status in PROCESSING_STATES:
                version.polls += 1
                if version.polls > self.processing_polls:
                    self._settle(ds, version)
                else:
                    step = min(version.polls, len(PROCESSING_STATES)) - 1
                    version.status = PROCESSING_STATES[step]
        return {"status": ds.versions[-1].status.upper()}

    @staticmethod
    def _settle(ds: Dataset, version: DatasetVersion) -> None:
        version.status = version.outcome
        if version.status == "ready" and version.delete_old_versions:
            for older in ds.versions[: version.number - 1]:
                older.status = "deleted"

    def _rpc_GetDataset(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        ds = self._find_dataset(user, req)
        self._not_yet_visible(ds, "GetDataset")
        out: dict[str, Any] = {"id": ds.id, "ref": ds.ref, "title": ds.title, "ownerRef": ds.owner}
        out.update(url=f"{self.url}/datasets/{ds.ref}", isPrivate=ds.is_private)
        out.update(licenseName=ds.license_name, subtitle=ds.subtitle or "")
        if current := ds.current:
            out["currentVersionNumber"] = current.number
            out["totalBytes"] = sum(len(b) for b in current.files.values())
            out["lastUpdated"] = iso(current.created)
        return out

    def _rpc_ListDatasetFiles(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        ds = self._find_dataset(user, req)
        if ds.current is None and req.get("datasetVersionNumber") is None:
            return {"datasetFiles": []}
        version = self._pick_version(ds, req.get("datasetVersionNumber"))
        names, more = page(sorted(version.files), req)
        base = f"{self.url}/dataset-files/{ds.ref}/{version.number}"
        created = iso(version.created)
        files = [
            {"ref": p, "name": p, "totalBytes": len(version.files[p]), "creationDate": created}
            | {"url": f"{base}/{quote(p)}"}
            for p in names
        ]
        return {"datasetFiles": files, **more}

    def _rpc_DownloadDataset(self, user: str, req: dict[str, Any]) -> Reply:
        # As on Kaggle, a redirect to a URL that needs no auth (requests follows it).
        ds = self._find_dataset(user, req)
        version = self._pick_version(ds, req.get("datasetVersionNumber"))
        name = req.get("fileName") or ""
        if name and name not in version.files:
            raise ApiError(404, f"File {name} not found in {ds.ref}")
        location = f"{self.url}/dataset-files/{ds.ref}/{version.number}/{quote(name)}"
        return 302, b"", {"Location": location}

    def _add_version(self, ds: Dataset, notes: str, new_files: list[dict[str, Any]]) -> None:
        files: dict[str, bytes] = {}
        outcome = self._dataset_outcomes.get(ds.ref, "ready")
        for item in new_files:
            blob = self._blobs.get(item.get("token", ""))
            if blob is None or len(blob.data) != blob.size:
                raise ApiError(400, f"Invalid or incomplete upload token: {item.get('token')}")
            try:
                files.update(unpack(blob.name, bytes(blob.data)))
            except (zipfile.BadZipFile, tarfile.TarError):
                outcome = "failed"  # accepted now; processing fails later
        ds.versions.append(DatasetVersion(len(ds.versions) + 1, notes, files, outcome=outcome))
        ds.unseen = {rpc: self.fresh_404_polls for rpc in _WINDOWED}

    def _rpc_CreateDataset(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        owner, slug = req.get("ownerSlug") or user, req.get("slug") or ""
        ref = f"{owner}/{slug}"
        if owner != user:
            raise ApiError(403, f"Permission denied: cannot create datasets for {owner}")
        if ref in self._datasets or ref in self._reserved:
            return {"status": "Error", "error": f'The requested slug "{slug}" is already in use.'}
        license_name = req.get("licenseName") or ""
        if license_name not in LICENSES:
            return {"status": "Error", "error": f"The license {license_name!r} is not valid."}
        title = req.get("title") or ""
        if not 6 <= len(title) <= 50 or not 6 <= len(slug) <= 50:
            return {"status": "Error", "error": "Title and slug must be 6 to 50 characters."}
        ds = Dataset(owner, slug, self._new_id(), title, license_name)
        ds.is_private, ds.subtitle = bool(req.get("isPrivate")), req.get("subtitle")
        self._add_version(ds, "Initial release", req.get("files", []))
        self._datasets[ref] = ds
        return {"ref": ref, "url": f"{self.url}/datasets/{ref}", "status": "Ok"}

    def _rpc_CreateDatasetVersion(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        if "id" in req:  # CreateDatasetVersionById
            ds = next((d for d in self._datasets.values() if d.id == req["id"]), None)
        else:
            ds = self._datasets.get(f"{req.get('ownerSlug')}/{req.get('datasetSlug')}")
        if ds is None:
            return {"status": "Error", "error": MISSING_DATASET_ERROR}
        self._find_dataset(user, {"ownerSlug": ds.owner, "datasetSlug": ds.slug}, write=True)
        if self.version_lock == "first" and ds.versions[0].status in PROCESSING_STATES:
            raise ApiError(403, REFUSED_VERSION_MESSAGE)
        body = req.get("body") or {}
        self._add_version(ds, body.get("versionNotes", ""), body.get("files", []))
        ds.versions[-1].delete_old_versions = bool(body.get("deleteOldVersions"))
        return {"ref": ds.ref, "url": f"{self.url}/datasets/{ds.ref}", "status": "Ok"}

    _rpc_CreateDatasetVersionById = _rpc_CreateDatasetVersion

    def _rpc_DeleteDataset(self, user: str, req: dict[str, Any]) -> dict[str, Any]:
        ds = self._find_dataset(user, req, write=True)
        del self._datasets[ds.ref]
        return {}
