"""Downloads against a loopback HTTP server serving small archives made here: install, resume
of a truncated transfer, checksum failure, offline message, verify, and the CLI."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from data_fixtures.matfiles import tiny_xlsa17, write_texts
from zsbench_datasets import Cub

from zsbench.cli.data import data as data_cli
from zsbench.data import download as dl
from zsbench.errors import DataError, UserError


class Server(BaseHTTPRequestHandler):
    """Serves ``files``; honours Range; can cut the first transfer of a file short."""

    files: dict[str, bytes] = {}
    truncate_once: set[str] = set()
    no_length: set[str] = set()  # sent without Content-Length (chunk-less, ends at close)
    stall_once: set[str] = set()  # half the body, then silence until the client gives up
    ignore_range = False
    range_from_zero = False  # answers a Range request with 206 but sends the file from byte 0
    content_type = "application/octet-stream"
    requests: list[tuple[str, str | None]] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        name = self.path.lstrip("/")
        self.requests.append((name, self.headers.get("Range")))
        if name not in self.files:
            self.send_error(404)
            return
        data = self.files[name]
        start = 0
        if self.headers.get("Range") and not self.ignore_range:
            start = 0 if self.range_from_zero else int(self.headers["Range"].split("=")[1].rstrip("-"))
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", self.content_type)
        if name not in self.no_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if name in self.stall_once:
            self.stall_once.discard(name)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            time.sleep(2)
            self.close_connection = True
            return
        if name in self.truncate_once or name in self.no_length:
            self.close_connection = True
        if name in self.truncate_once:
            self.truncate_once.discard(name)
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    handler = type("Handler", (Server,), {"files": {}, "truncate_once": set(), "requests": [],
                                          "no_length": set(), "stall_once": set()})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _tgz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def archives(tmp_path, server, monkeypatch):
    """A cub-like registry: an xlsa17-style zip, a Reed-style text tarball, a plain file."""
    handler, url = server
    src = tmp_path / "src"
    written = tiny_xlsa17(src)
    write_texts(src, written["files"], written["labels"])
    mats = {f"xlsa17/data/CUB/{n}": (src / n).read_bytes() for n in ("res101.mat", "att_splits.mat")}
    mats["xlsa17/data/AWA2/res101.mat"] = b"another data set: not taken"
    texts = {f"cvpr2016_cub/{p.relative_to(src)}": p.read_bytes() for p in src.glob("text_c10/*/*.txt")}
    texts["cvpr2016_cub/../../evil.txt"] = b"outside"
    handler.files.update({"xlsa17.zip": _zip(mats), "cvpr2016_cub.tar.gz": _tgz(texts),
                          "notes.mat": b"plain file"})
    sources = (
        dl.Source("xlsa17.zip", "http://unreachable.invalid/xlsa17.zip", "the xlsa17 page", members="data/CUB"),
        dl.Source("cvpr2016_cub.tar.gz", "http://unreachable.invalid/t.tgz", "Reed's page",
                  members="text_c10", dest="text_c10"),
        dl.Source("notes.mat", "http://unreachable.invalid/notes.mat", "a page",
                  sha256=hashlib.sha256(b"plain file").hexdigest()),
    )
    monkeypatch.setitem(dl.REGISTRY, "cub", sources)
    return handler, url, written


def test_download_installs_a_loadable_checked_folder(tmp_path, archives):
    handler, url, written = archives
    root = dl.download("cub", tmp_path / "cub", mirror=url, progress=False)
    assert sorted(p.name for p in root.iterdir()) == [
        "SHA256SUMS", "SOURCES.json", "att_splits.mat", "notes.mat", "res101.mat", "text_c10"]
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "cub" / "AWA2").exists()
    sums = dict(line.split("  ")[::-1] for line in (root / "SHA256SUMS").read_text().splitlines())
    assert sums["res101.mat"] == hashlib.sha256((root / "res101.mat").read_bytes()).hexdigest()
    assert len(sums) == 2 + 1 + 24
    record = json.loads((root / "SOURCES.json").read_text())
    assert record["xlsa17.zip"]["sha256"] == hashlib.sha256(handler.files["xlsa17.zip"]).hexdigest()
    assert record["notes.mat"]["checksum_published"] and not record["xlsa17.zip"]["checksum_published"]
    assert not (root / dl.DOWNLOADS).exists()
    assert dl.verify("cub", root) == []
    bundle = Cub().build(root)
    np.testing.assert_allclose(bundle.features, written["features"])
    assert len(bundle.texts) == 24
    # a second run has nothing to fetch
    handler.requests.clear()
    dl.download("cub", root, mirror=url, progress=False)
    assert handler.requests == []


def test_truncated_download_resumes_with_range(tmp_path, archives):
    handler, url, _ = archives
    handler.truncate_once.add("xlsa17.zip")
    with pytest.raises(UserError, match="run the download again to resume") as info:
        dl.download("cub", tmp_path / "cub", mirror=url, progress=False)
    assert "download these files and place them" in str(info.value)
    part = tmp_path / "cub" / dl.DOWNLOADS / "xlsa17.zip.part"
    size = part.stat().st_size
    assert 0 < size < len(handler.files["xlsa17.zip"])
    assert not (tmp_path / "cub" / "res101.mat").exists()  # nothing half-installed
    root = dl.download("cub", tmp_path / "cub", mirror=url, progress=False)
    assert ("xlsa17.zip", f"bytes={size}-") in handler.requests
    assert dl.verify("cub", root) == []


def test_server_ignoring_range_restarts_cleanly(tmp_path, archives):
    handler, url, _ = archives
    handler.ignore_range = True
    part = tmp_path / "cub" / dl.DOWNLOADS / "xlsa17.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"stale bytes from another run")
    root = dl.download("cub", tmp_path / "cub", mirror=url, progress=False)
    assert dl.verify("cub", root) == []


def test_a_206_whose_content_range_does_not_continue_the_part_starts_over(tmp_path, archives):
    handler, url, _ = archives
    handler.range_from_zero = True  # "206, Content-Range: bytes 0-...": appending would corrupt the file
    part = tmp_path / "cub" / dl.DOWNLOADS / "xlsa17.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(handler.files["xlsa17.zip"][:100])
    root = dl.download("cub", tmp_path / "cub", mirror=url, progress=False)
    assert ("xlsa17.zip", "bytes=100-") in handler.requests
    assert dl.verify("cub", root) == []
    record = json.loads((root / dl.SOURCES).read_text())["xlsa17.zip"]
    assert record["sha256"] == hashlib.sha256(handler.files["xlsa17.zip"]).hexdigest()


def test_complete_part_file_is_finished_not_refetched(tmp_path, archives):
    handler, url, _ = archives
    part = tmp_path / "cub" / dl.DOWNLOADS / "xlsa17.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(handler.files["xlsa17.zip"])  # interrupted just before the rename
    root = dl.download("cub", tmp_path / "cub", mirror=url, progress=False)
    size = len(handler.files["xlsa17.zip"])
    assert ("xlsa17.zip", f"bytes={size}-") in handler.requests  # answered 416: nothing left
    assert dl.verify("cub", root) == []


def test_checksum_failure_leaves_no_dataset(tmp_path, archives, monkeypatch):
    handler, url, _ = archives
    sources = list(dl.REGISTRY["cub"])
    sources[1] = dl.Source("cvpr2016_cub.tar.gz", "x", "Reed's page", sha256="0" * 64,
                           members="text_c10", dest="text_c10")
    monkeypatch.setitem(dl.REGISTRY, "cub", tuple(sources))
    with pytest.raises(DataError, match=r"cvpr2016_cub.tar.gz: checksum mismatch \(sha256 expected 0000"):
        dl.download("cub", tmp_path / "cub", mirror=url, progress=False)
    root = tmp_path / "cub"
    assert not (root / "res101.mat").exists() and not (root / "text_c10").exists()
    assert not list((root / dl.DOWNLOADS).glob("cvpr2016_cub*"))  # the bad file is gone
    assert "res101.mat: missing" in " ".join(dl.verify("cub", root))


def test_damaged_archive_installs_nothing(tmp_path, archives):
    handler, url, _ = archives
    handler.files["cvpr2016_cub.tar.gz"] = b"<not an archive>" * 10
    with pytest.raises(DataError, match="cvpr2016_cub.tar.gz: is neither a zip nor a tar archive"):
        dl.download("cub", tmp_path / "cub", mirror=url, progress=False)
    assert sorted(p.name for p in (tmp_path / "cub").iterdir()) == [dl.DOWNLOADS]


def test_web_page_instead_of_archive(tmp_path, archives):
    handler, url, _ = archives
    handler.content_type = "text/html; charset=utf-8"
    with pytest.raises(UserError, match="returned a web page instead of the file"):
        dl.download("cub", tmp_path / "cub", mirror=url, progress=False)


def test_offline_message_says_what_to_place_where(tmp_path, archives):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(UserError) as info:
        dl.download("cub", tmp_path / "cub", mirror=closed, progress=False)
    message = str(info.value)
    assert "cannot connect" in message
    assert f"-> {tmp_path / 'cub' / dl.DOWNLOADS / 'xlsa17.zip'}" in message
    assert f"-> {tmp_path / 'cub' / dl.DOWNLOADS / 'cvpr2016_cub.tar.gz'}" in message
    assert "the xlsa17 page" in message and "res101.mat, att_splits.mat, text_c10/" in message


def test_archives_placed_by_hand_are_used(tmp_path, archives):
    handler, _, _ = archives
    downloads = tmp_path / "cub" / dl.DOWNLOADS
    downloads.mkdir(parents=True)
    for name, data in handler.files.items():
        (downloads / name).write_bytes(data)
    root = dl.download("cub", tmp_path / "cub", mirror="http://127.0.0.1:9", progress=False)
    assert handler.requests == [] and dl.verify("cub", root) == []


def test_verify_finds_changed_and_missing_files(tmp_path, archives):
    _, url, _ = archives
    root = dl.download("cub", tmp_path / "cub", mirror=url, progress=False)
    next((root / "text_c10").glob("*/*.txt")).unlink()
    with open(root / "notes.mat", "ab") as f:
        f.write(b"!")
    problems = dl.verify("cub", root)
    assert any("notes.mat: SHA-256 differs" in p for p in problems)
    assert any("missing (listed in SHA256SUMS)" in p for p in problems)
    assert any("missing text file for image" in p for p in problems)
    assert dl.verify("cub", tmp_path / "nowhere") == [f"{tmp_path / 'nowhere'}: folder not found; "
                                                      "run `zsbench data download cub`"]
    with pytest.raises(UserError, match="no download is known for data set 'awa9'"):
        dl.verify("awa9", root)


def test_cli_download_and_verify(tmp_path, archives):
    _, url, _ = archives
    runner = CliRunner()
    result = runner.invoke(data_cli, ["download", "cub", "--root", str(tmp_path / "c"), "--mirror", url])
    assert result.exit_code == 0, result.output
    assert f"cub: installed in {tmp_path / 'c'}" in result.output
    result = runner.invoke(data_cli, ["verify", "cub", "--root", str(tmp_path / "c")])
    assert result.exit_code == 0 and "cub: OK" in result.output
    (tmp_path / "c" / "res101.mat").unlink()
    result = runner.invoke(data_cli, ["verify", "cub", "--root", str(tmp_path / "c")])
    assert isinstance(result.exception, UserError) and "res101.mat: missing" in str(result.exception)


def test_registry_is_documented_honestly():
    for name, sources in dl.REGISTRY.items():
        for s in sources:
            assert s.url.startswith(("http://", "https://")) and s.page
            assert s.sha256 is None or len(s.sha256) == 64
        assert {"res101.mat", "att_splits.mat"} == set(dl.REQUIRED[name])
    assert [s.file for s in dl.sources("flo")] == [
        "cvpr18xian.zip", "cvpr2016_flowers.tar.gz", "imagelabels.mat", "setid.mat"]
    assert "102flowers.tgz" in [s.file for s in dl.sources("flo", images=True)]
    assert dl.url_of(dl.sources("cub")[0], "http://mirror/x/") == "http://mirror/x/xlsa17.zip"


def test_known_oxford_checksums_match_the_shared_copies(shared_data):
    for source in dl.sources("flo"):
        path = Path(shared_data) / "flo" / source.file
        if source.sha256 and path.is_file():
            assert dl.file_digest(path) == source.sha256
            assert dl.file_digest(path, "md5") == source.md5


def test_cut_short_without_content_length_stays_a_part_until_the_archive_is_whole(tmp_path, archives):
    handler, url, _ = archives
    handler.no_length.add("xlsa17.zip")
    handler.truncate_once.add("xlsa17.zip")
    part = tmp_path / "cub" / dl.DOWNLOADS / "xlsa17.zip.part"
    with pytest.raises(UserError) as info:
        dl.download("cub", tmp_path / "cub", mirror=url, progress=False)
    message = str(info.value)
    assert "the server sent no Content-Length and the transfer ended after" in message
    assert "the archive is incomplete" in message and f"the bytes are kept in {part}" in message
    assert 0 < part.stat().st_size < len(handler.files["xlsa17.zip"])
    assert not (tmp_path / "cub" / dl.DOWNLOADS / "xlsa17.zip").exists()  # never under its final name
    root = dl.download("cub", tmp_path / "cub", mirror=url, progress=False)  # resumes, then checks
    assert dl.verify("cub", root) == []


def test_a_stalled_transfer_keeps_the_bytes_received_and_says_so(tmp_path, archives):
    handler, url, _ = archives
    handler.stall_once.add("xlsa17.zip")
    target = tmp_path / "xlsa17.zip"
    half = len(handler.files["xlsa17.zip"]) // 2
    with pytest.raises(dl.FetchError) as info:
        dl.fetch(f"{url}/xlsa17.zip", target, progress=False, timeout=0.5)
    part = tmp_path / "xlsa17.zip.part"
    assert str(info.value) == (f"{url}/xlsa17.zip: stalled (no data for 0.5s) after {half} bytes; they are "
                               f"kept in {part}: run the download again to resume")
    assert part.read_bytes() == handler.files["xlsa17.zip"][:half]
    dl.fetch(f"{url}/xlsa17.zip", target, progress=False)
    assert target.read_bytes() == handler.files["xlsa17.zip"]
