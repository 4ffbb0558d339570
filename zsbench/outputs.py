"""Output paths are checked before any work: a file or folder that cannot be written is a user
error naming the option (or variable), never a traceback after minutes of computing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from zsbench.errors import UserError


def _refusal(folder: Path) -> str | None:
    """Why no file can be created in ``folder`` (made if needed), or None when one can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".zsbench-probe-"):
            pass
    except OSError as exc:
        return str(exc.strerror or exc)
    return None


def writable_folder(folder: str | os.PathLike, option: str) -> Path:
    """``folder``, created if needed, once a file was created (and removed) in it."""
    folder = Path(folder)
    if (why := _refusal(folder)) is not None:
        raise UserError(f"{option} {folder}: cannot write there ({why}); pass {option} a folder you can write")
    return folder


def writable_file(file: str | os.PathLike, option: str) -> Path:
    """``file``, once its folder proved writable and it is not a folder itself."""
    file = Path(file)
    if file.is_dir():
        raise UserError(f"{option} {file}: is a folder; pass {option} a file name")
    writable_folder(file.parent, option)
    if file.exists() and not os.access(file, os.W_OK):
        raise UserError(f"{option} {file}: the file cannot be replaced (no write permission); pass {option} another file")
    return file


def writable_cache() -> Path:
    """The cache folder, once proved writable (a read-only home, a full disk: named up front)."""
    from zsbench.paths import cache_home

    folder = cache_home()
    if (why := _refusal(folder)) is not None:
        raise UserError(f"the cache folder {folder} cannot be written ({why}); set ZSBENCH_CACHE to a folder "
                        "you can write")
    return folder
