"""The Kaggle fake's import point (its parts live in `tests/fakes/kaggle_fake/`)."""

from tests.fakes.kaggle_fake import (
    HOSTILE_NAMES,
    LICENSES,
    MISSING_DATASET_ERROR,
    REFUSED_VERSION_MESSAGE,
    Dataset,
    DatasetVersion,
    FakeKaggle,
    Kernel,
    KernelRun,
    RequestRecord,
)

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
