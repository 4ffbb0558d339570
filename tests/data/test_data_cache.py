"""The Arrow table cache: hits are memory-mapped, sources invalidate, writers never leave a
half-written entry."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zsbench.data import cache


def _columns(calls, n=5, d=3):
    def build():
        calls.append(1)
        values = np.arange(n * d, dtype=np.float32).reshape(n, d)
        return {"features": cache.matrix_column(values), "label": pa.array(np.arange(n)),
                "texts": pa.array([[f"t{i}", "u"] for i in range(n)])}
    return build


def test_hit_is_memory_mapped_and_zero_copy(tmp_path):
    calls = []
    (tmp_path / "src.mat").write_bytes(b"x")
    key = cache.source_key([tmp_path / "src.mat"], texts=True)
    first = cache.cached_table(key, _columns(calls))
    allocated = pa.total_allocated_bytes()
    second = cache.cached_table(key, _columns(calls))
    assert calls == [1]
    matrix = cache.read_matrix(second, "features")
    assert pa.total_allocated_bytes() == allocated  # opened and read without a copy out of the mapped file
    np.testing.assert_array_equal(matrix, np.arange(15, dtype=np.float32).reshape(5, 3))
    assert not matrix.flags.writeable  # a view of the mapped file, not a copy
    stored = cache.tables_dir() / key / cache.TABLE_FILE
    data = stored.read_bytes()
    at = data.index(np.arange(15, dtype=np.float32).tobytes())
    with open(stored, "r+b") as f:  # edit the file in place: a mapped view sees it
        f.seek(at)
        f.write(np.float32(42).tobytes())
    assert matrix[0, 0] == 42
    np.testing.assert_array_equal(cache.read_column(first, "label"), np.arange(5))
    assert cache.read_column(second, "texts")[2] == ["t2", "u"]
    assert (cache.tables_dir() / key).is_dir()


def test_key_follows_sources_and_options(tmp_path):
    src = tmp_path / "src.mat"
    src.write_bytes(b"x")
    folder = tmp_path / "text_c10" / "class_00001"
    folder.mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    key = cache.source_key([src, tmp_path / "text_c10"])
    assert key == cache.source_key([tmp_path / "text_c10", src])
    assert key != cache.source_key([src, tmp_path / "text_c10"], texts=False)
    (folder / "b.txt").write_text("b")  # a new text file
    key2 = cache.source_key([src, tmp_path / "text_c10"])
    assert key2 != key
    os.utime(src, ns=(0, 12345))  # same size, other mtime
    assert cache.source_key([src, tmp_path / "text_c10"]) != key2


def test_damaged_entry_is_rebuilt(tmp_path):
    calls = []
    cache.cached_table("k-damaged", _columns(calls))
    (cache.tables_dir() / "k-damaged" / cache.TABLE_FILE).write_bytes(b"garbage")
    table = cache.cached_table("k-damaged", _columns(calls))
    assert calls == [1, 1] and len(cache.read_column(table, "label")) == 5


def test_stale_temporary_folder_of_a_killed_writer_is_removed(tmp_path):
    stale = cache.tables_dir() / ".tmp-kold-dead"
    stale.mkdir(parents=True)
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    fresh = cache.tables_dir() / ".tmp-knew-alive"
    fresh.mkdir()
    cache.cached_table("k-new", _columns([]))
    assert not stale.exists() and fresh.exists()  # a live writer's folder is left alone
    assert not (cache.tables_dir() / "kold").exists()


def test_concurrent_writers_of_one_key():
    barrier = threading.Barrier(4)

    def build():
        barrier.wait(timeout=30)  # every writer has missed the cache: all of them write
        return {"label": pa.array(np.arange(1000)),
                "features": cache.matrix_column(np.ones((1000, 64), np.float32))}

    with ThreadPoolExecutor(4) as pool:
        tables = list(pool.map(lambda _: cache.cached_table("k-race", build), range(4)))
    assert all(len(cache.read_column(t, "label")) == 1000 for t in tables)
    assert sorted(p.name for p in cache.tables_dir().iterdir() if "race" in p.name) == ["k-race"]


@pytest.mark.parametrize("chunks", [1, 3])
def test_read_matrix_over_chunks(chunks):
    values = np.random.default_rng(0).normal(size=(9, 4)).astype(np.float32)
    parts = np.array_split(values, chunks)
    table = pa.Table.from_batches([pa.record_batch({"features": cache.matrix_column(p)}) for p in parts])
    np.testing.assert_array_equal(cache.read_matrix(table, "features"), values)


@settings(max_examples=60, deadline=None)
@given(dtype=st.sampled_from(["int8", "int32", "int64", "uint16", "float16", "float32", "float64"]),
       n=st.integers(0, 40), start=st.integers(0, 10), width=st.integers(1, 4))
def test_columns_read_from_buffers_match_pyarrow(dtype, n, start, width):
    """Cached columns are read from their data buffers: any numeric type, slices with an offset."""
    values = np.arange(n * width).astype(dtype).reshape(n, width)
    table = pa.table({"features": cache.matrix_column(values), "label": pa.array(values[:, 0])})
    sliced = table.slice(min(start, n))
    np.testing.assert_array_equal(cache.read_matrix(sliced, "features"), values[min(start, n):])
    got = cache.read_column(sliced, "label")
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, values[min(start, n):, 0])


def test_a_column_with_missing_values_is_refused():
    with pytest.raises(ValueError, match="missing values"):
        cache.read_column(pa.table({"label": pa.array([1, None, 3])}), "label")


def test_reading_a_cached_table_does_not_import_pandas(tmp_path):
    """pyarrow's to_numpy imports pandas, a few tenths of a second of every run's start-up."""
    (tmp_path / "src.mat").write_bytes(b"x")
    key = cache.source_key([tmp_path / "src.mat"])
    cache.cached_table(key, _columns([]))
    code = (f"import sys; from zsbench.data import cache; t = cache.cached_table({key!r}, None); "
            "cache.read_matrix(t, 'features'); cache.read_column(t, 'label'); cache.read_column(t, 'texts'); "
            "print('pandas' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "ZSBENCH_CACHE": str(cache.cache_home())})
    assert done.stdout.strip() == "False"
