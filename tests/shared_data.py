"""Where the real-data tests find the contents of ../shared/data (skipped when it is absent).

``ZSBENCH_TEST_DATA`` points elsewhere, e.g. at a copy carried to a GPU machine."""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA = Path(
    os.environ.get("ZSBENCH_TEST_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data"
).resolve()  # absolute: tests link to files in it from temporary folders
