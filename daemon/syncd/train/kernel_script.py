"""The source of a run's kernel: ``on_kaggle`` with the run's parameters baked in.

Kaggle runs one code file per kernel (kaggle-cli #256), so the script is that module's
text followed by one call of its ``main`` with the parameters as a JSON literal. The
module is plain Python in this package (linted, typed and tested like the rest), read
as text here, never imported by syncd.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .model import KernelParams

TEMPLATE = Path(__file__).with_name("on_kaggle.py")


def kernel_source(params: KernelParams) -> str:
    """The whole script Kaggle runs for one run."""
    text = TEMPLATE.read_text(encoding="utf-8")
    literal = json.dumps(dataclasses.asdict(params), indent=1, sort_keys=True)
    return (
        f"{text.rstrip()}\n\n\n"
        f"# --- this run (written by syncd) ---\n"
        f"RUN = json.loads({literal!r})\n"
        f"sys.exit(main(RUN))\n"
    )
