"""Where zsbench looks for data and keeps caches, overridable by environment variables."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """``$ZSBENCH_CACHE``, else ``$XDG_CACHE_HOME/zsbench``, else ``~/.cache/zsbench``."""
    if os.environ.get("ZSBENCH_CACHE"):
        return Path(os.environ["ZSBENCH_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "zsbench"


def data_home() -> Path:
    """``$ZSBENCH_DATA``, else ``<cache home>/data``."""
    if os.environ.get("ZSBENCH_DATA"):
        return Path(os.environ["ZSBENCH_DATA"]).expanduser()
    return cache_home() / "data"


def dataset_root(dataset: str, root: str | os.PathLike | None = None) -> Path:
    """A dataset's folder: its ``root`` option when given, else ``<data home>/<dataset>``.

    In ``root``, ``$ZSBENCH_DATA`` (or ``${ZSBENCH_DATA}``) is the data home even when the
    variable is unset, so a spec can name ``${ZSBENCH_DATA}/cub-subset``; other variables and
    ``~`` expand as in a shell."""
    if not root:
        return data_home() / dataset
    text = os.fspath(root).replace("${ZSBENCH_DATA}", str(data_home())).replace("$ZSBENCH_DATA", str(data_home()))
    return Path(os.path.expandvars(text)).expanduser()
