"""A cache of per-instance tables (features, labels, texts) as memory-mapped Arrow tables.

Entries live under ``<cache home>/tables/<key>/`` and are keyed by the (path, size, mtime) of
the files they were read from, so editing or replacing a source file rebuilds the entry. An
entry is written to a temporary folder and renamed into place: a killed writer leaves no
half-written entry, and concurrent writers of one key keep whichever finished first.

An entry carries the SHA-256 of its table, written with it and checked on every read: a damaged
entry (bit rot, a partial copy), or anything at an entry's place that is not a folder holding
regular files (a symlink, a plain file), is rebuilt, never used. A cache folder that cannot be
written (a full disk, a read-only home) costs a warning and the table is used uncached.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from stat import S_ISREG

import numpy as np
import pyarrow as pa

from zsbench.errors import is_resource_error, resource_error
from zsbench.paths import cache_home

FORMAT_VERSION = "1"  # bump when the layout of cached tables changes
# An Arrow IPC stream, memory-mapped by pyarrow itself (as Hugging Face ``datasets`` does, without
# the second of start-up that importing ``datasets`` costs every run).
TABLE_FILE = "table.arrow"
CHECKSUM_FILE = "table.sha256"  # hex SHA-256 of TABLE_FILE
_STALE_SECONDS = 3600  # a temporary folder this old belongs to a writer that died


def tables_dir() -> Path:
    return cache_home() / "tables"


def source_key(sources: Iterable[os.PathLike | str], **options: object) -> str:
    """A key for the table read from ``sources`` (files, or folders taken with every file in
    them) with ``options``: it changes when any of those files does."""
    digest = hashlib.sha256(f"zsbench-table-v{FORMAT_VERSION}".encode())
    for source in sorted(os.path.abspath(s) for s in sources):
        for path, stat in sorted(_walk(source)):
            digest.update(f"\0{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    for name in sorted(options):
        digest.update(f"\0{name}={options[name]!r}".encode())
    return digest.hexdigest()[:32]


def _walk(path: str) -> Iterator[tuple[str, os.stat_result]]:
    if not os.path.isdir(path):
        yield path, os.stat(path)
        return
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir():
                yield from _walk(entry.path)
            else:
                yield entry.path, entry.stat()


def cached_table(key: str, build: Callable[[], Mapping[str, pa.Array]]) -> pa.Table:
    """The memory-mapped table stored under ``key``; ``build()`` makes its columns on a miss."""
    final = tables_dir() / key
    damaged = final.is_symlink() or (final.exists() and not final.is_dir())
    if final.is_dir() and not final.is_symlink():
        try:
            return _open(final)
        except Exception as exc:  # noqa: BLE001 - a damaged entry is rebuilt, never trusted
            if is_resource_error(exc):  # the machine, not the entry, failed: keep it
                raise resource_error(final, exc) from exc
            damaged = True
    table = pa.table(dict(build()))
    try:
        if damaged:  # only what was found damaged: a concurrent writer's fresh entry stays
            _remove(final)
        _write(final, table)
    except OSError as exc:
        warnings.warn(f"{final.parent}: the cache cannot be written ({exc.strerror or exc}); the table is used "
                      "uncached. Free space there or set ZSBENCH_CACHE to a folder you can write", stacklevel=2)
        return table
    return _open(final)


def _remove(entry: Path) -> None:
    """Whatever is at an entry's place: a damaged entry, a symlink, a plain file."""
    if entry.is_symlink() or (entry.exists() and not entry.is_dir()):
        entry.unlink()
    elif entry.exists():
        shutil.rmtree(entry)


def _regular(path: Path) -> Path:
    if not S_ISREG(os.lstat(path).st_mode):
        raise ValueError(f"{path} is not a regular file")
    return path


def _digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _open(folder: Path) -> pa.Table:
    """The entry's table once its checksum matches (else ValueError: damaged)."""
    table_file = _regular(folder / TABLE_FILE)
    if _regular(folder / CHECKSUM_FILE).read_text().strip() != _digest(table_file):
        raise ValueError(f"{table_file}: does not match its checksum (damaged)")
    with pa.ipc.open_stream(pa.memory_map(str(table_file))) as reader:
        table = reader.read_all()  # zero-copy views of the mapped file
    table.validate(full=False)
    return table


def _write(final: Path, table: pa.Table) -> None:
    """One record batch, so that every column is one contiguous, zero-copy mappable buffer."""
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(final.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    try:
        (tmp / "table").mkdir()
        with pa.OSFile(str(tmp / "table" / TABLE_FILE), "wb") as sink:
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table.combine_chunks(), max_chunksize=max(table.num_rows, 1))
        (tmp / "table" / CHECKSUM_FILE).write_text(_digest(tmp / "table" / TABLE_FILE) + "\n")
        try:
            os.rename(tmp / "table", final)
        except OSError:
            if not final.is_dir():  # not a lost race with another writer: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale(folder: Path) -> None:
    now = time.time()
    for tmp in folder.glob(".tmp-*"):
        try:
            if now - tmp.stat().st_mtime > _STALE_SECONDS:
                shutil.rmtree(tmp, ignore_errors=True)
        except FileNotFoundError:
            pass


def matrix_column(values: np.ndarray) -> pa.Array:
    """An (N, D) array as a fixed-size-list column (stored without per-row overhead)."""
    values = np.ascontiguousarray(values)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def read_matrix(table: pa.Table, column: str) -> np.ndarray:
    """A fixed-size-list column as an (N, D) read-only view of the memory-mapped file."""
    array = _single_chunk(table.column(column))
    return _numeric_view(array.flatten()).reshape(-1, array.type.list_size)


def read_column(table: pa.Table, column: str) -> np.ndarray | list:
    """A scalar column as a numpy vector, a string or list column as a Python list."""
    chunked = table.column(column)
    if pa.types.is_integer(chunked.type) or pa.types.is_floating(chunked.type):
        return _numeric_view(_single_chunk(chunked))
    return chunked.to_pylist()


def _single_chunk(chunked: pa.ChunkedArray) -> pa.Array:
    return chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()


def _numeric_view(array: pa.Array) -> np.ndarray:
    """A null-free numeric array as a read-only numpy view of its data buffer.

    Read from the buffer rather than with pyarrow's ``to_numpy``, which imports pandas (0.2-0.5 s
    of every run's start-up) to check for pandas types.
    """
    if array.null_count:
        raise ValueError(f"cached column of type {array.type} has {array.null_count} missing values")
    kind = "f" if pa.types.is_floating(array.type) else "i" if pa.types.is_signed_integer(array.type) else "u"
    dtype = np.dtype(f"={kind}{array.type.bit_width // 8}")
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)
