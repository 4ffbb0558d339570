"""Fetch the official archives of a data set into a folder the Dataset plugins read.

Every file is downloaded to ``<root>/.downloads/<file>.part`` (resumed with an HTTP Range
request after an interruption), checked, renamed, then extracted into a staging folder; only
when every archive has been fetched and extracted are the files moved into ``<root>``, so a
failed run never leaves a half-written data set that loads.

Checksums: a SHA-256 is listed below only where it is known from a verified copy of the
official file (the Oxford ``imagelabels.mat`` / ``setid.mat``, whose MD5s match torchvision's
published table). For the other archives none is published, so the first download records the
observed SHA-256 of every archive in ``SOURCES.json`` and of every extracted file in
``SHA256SUMS``; ``zsbench data verify`` re-checks the folder against them later.

``$ZSBENCH_MIRROR`` (or ``mirror=``) replaces every URL by ``<mirror>/<file name>``.

Longer than most: fetching, checksum recording and safe extraction guard one folder against one
hostile server, and each step relies on the checks of the one before.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

import attrs

from zsbench.errors import DataError, UserError
from zsbench.paths import dataset_root

CHUNK = 1 << 20
DOWNLOADS = ".downloads"
SUMS = "SHA256SUMS"
SOURCES = "SOURCES.json"


@attrs.frozen
class Source:
    """One official file and what to take from it."""

    file: str  # local name (and the name under a mirror)
    url: str
    page: str  # where a person finds it, for manual downloads
    sha256: str | None = None  # only when known from a verified official copy
    md5: str | None = None  # a published MD5 (torchvision's table), checked when given
    members: str | None = None  # archive folder to take, matched by its trailing path; None: plain file
    dest: str = "."  # where the folder's contents (or the plain file) go under the root
    images: bool = False  # raw images: fetched only on request (large)


_XIAN_PAGE = ("https://www.mpi-inf.mpg.de/departments/computer-vision-and-machine-learning/"
              "research/zero-shot-learning/")
_REED_PAGE = "https://github.com/reedscot/cvpr2016 (Google Drive links in its README)"
_OXFORD = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
_DRIVE = "https://drive.usercontent.google.com/download?export=download&confirm=t&id="

REGISTRY: dict[str, tuple[Source, ...]] = {
    "cub": (
        Source("xlsa17.zip", "http://datasets.d2.mpi-inf.mpg.de/xian/xlsa17.zip", _XIAN_PAGE,
               members="data/CUB"),
        Source("cvpr2016_cub.tar.gz", _DRIVE + "0B0ywwgffWnLLZW9uVHNjb2JmNlE", _REED_PAGE,
               members="text_c10", dest="text_c10"),
        Source("CUB_200_2011.tgz",
               "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1",
               "https://www.vision.caltech.edu/datasets/cub_200_2011/",
               members="CUB_200_2011", dest="CUB_200_2011", images=True),
    ),
    "flo": (
        Source("cvpr18xian.zip", "http://datasets.d2.mpi-inf.mpg.de/xian/cvpr18xian.zip", _XIAN_PAGE,
               members="data/FLO"),
        Source("cvpr2016_flowers.tar.gz", _DRIVE + "0B0ywwgffWnLLcms2WWJQRFNSWXM", _REED_PAGE,
               members="text_c10", dest="text_c10"),
        Source("imagelabels.mat", _OXFORD + "imagelabels.mat", _OXFORD,
               sha256="4903e94206bac23bf772aadf06451916df56b58fc483a62db32a97b82656651d",
               md5="e0620be6f572b9609742df49c70aed4d"),
        Source("setid.mat", _OXFORD + "setid.mat", _OXFORD,
               sha256="46b8678f91fd95d3c8f4feab80d271a6c834a1dd896fe29fd3e6ad9ce5c8dccd",
               md5="a5357ecc9cb78c4bef273ce3793fc85c"),
        Source("102flowers.tgz", _OXFORD + "102flowers.tgz", _OXFORD,
               md5="52808999861908f626f3c1f4e79d11fa", members="jpg", dest="jpg", images=True),
    ),
}

# What a loadable folder needs (relative to its root), per data set.
REQUIRED: dict[str, tuple[str, ...]] = {
    "cub": ("res101.mat", "att_splits.mat"),
    "flo": ("res101.mat", "att_splits.mat"),
}


class FetchError(UserError):
    """A file could not be fetched (offline, refused, interrupted)."""


def sources(name: str, images: bool = False) -> tuple[Source, ...]:
    if name not in REGISTRY:
        raise UserError(f"no download is known for data set {name!r}; known: {', '.join(REGISTRY)}")
    return tuple(s for s in REGISTRY[name] if images or not s.images)


def url_of(source: Source, mirror: str | None = None) -> str:
    mirror = mirror if mirror is not None else os.environ.get("ZSBENCH_MIRROR")
    return f"{mirror.rstrip('/')}/{source.file}" if mirror else source.url


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, target: Path, sha256: str | None = None, md5: str | None = None,
          progress: bool = True, timeout: float = 60.0) -> str:
    """Download ``url`` to ``target`` (resuming ``target.part``), check it, return its SHA-256.

    A file already at ``target`` (e.g. placed by hand) is only checked.
    """
    if not target.is_file():
        part = target.with_name(target.name + ".part")
        target.parent.mkdir(parents=True, exist_ok=True)
        length_known = _download(url, part, progress, timeout)
        if not length_known and not (sha256 or md5):
            _check_archive_complete(url, part)  # no length, no checksum: the archive itself says
        _check(part, target, sha256, md5)
        os.replace(part, target)
    return _check(target, target, sha256, md5)


def _check_archive_complete(url: str, part: Path) -> None:
    """A transfer without Content-Length ends the same way whether or not it is complete, so
    an archive is only taken once its own integrity check (every member's CRC) passes; until
    then it stays a ``.part`` for the next run to resume."""
    problem = None
    try:
        if zipfile.is_zipfile(part):
            with zipfile.ZipFile(part) as zf:
                bad = zf.testzip()
            problem = f"member {bad} is damaged" if bad else None
        elif tarfile.is_tarfile(part):
            with tarfile.open(part) as tf:
                for member in tf:
                    if member.isfile():
                        with tf.extractfile(member) as f:
                            while f.read(CHUNK):
                                pass
        else:
            problem = "it is not a complete zip or tar archive"
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    if problem:
        raise FetchError(f"{url}: the server sent no Content-Length and the transfer ended after "
                         f"{part.stat().st_size} bytes, but the archive is incomplete ({problem}); "
                         f"the bytes are kept in {part}: run the download again to resume")


def _check(path: Path, name: Path, sha256: str | None, md5: str | None) -> str:
    observed = file_digest(path)
    wrong = []
    if sha256 and observed != sha256:
        wrong.append(f"sha256 expected {sha256}, got {observed}")
    if md5 and (got := file_digest(path, "md5")) != md5:
        wrong.append(f"md5 expected {md5}, got {got}")
    if wrong:
        path.unlink()
        raise DataError(name, f"checksum mismatch ({'; '.join(wrong)}); the file was deleted, run "
                              "the download again")
    return observed


def _download(url: str, part: Path, progress: bool, timeout: float) -> bool:
    """Append the rest of ``url`` to ``part``; returns whether the server said how long it is."""
    from tqdm.auto import tqdm

    start = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": "zsbench"} | ({"Range": f"bytes={start}-"} if start else {})
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # nothing left to send: the part is complete
            return True
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise FetchError(f"{url}: cannot connect ({getattr(exc, 'reason', exc)})") from exc
    with response:
        if start and response.status != 206:  # the server ignored the range: start over
            start = 0
        elif start and _range_start(response.headers.get("Content-Range")) != start:
            response.close()  # a range that does not continue the part: appending it would corrupt the file
            part.unlink()
            return _download(url, part, progress, timeout)
        if "text/html" in response.headers.get("Content-Type", ""):
            raise FetchError(f"{url} returned a web page instead of the file (a quota, login or "
                             "virus-scan page)")
        length = response.headers.get("Content-Length")
        total = int(length) + start if length is not None else None
        with open(part, "ab" if start else "wb") as out, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, desc=part.name[:-5],
            disable=not progress, leave=False,
        ) as bar:
            try:  # read1: whatever has arrived, so a stall loses nothing already received
                while chunk := response.read1(CHUNK):
                    out.write(chunk)
                    out.flush()
                    bar.update(len(chunk))
            except (TimeoutError, http.client.IncompleteRead, OSError) as exc:
                kind = f"stalled (no data for {timeout:g}s)" if isinstance(exc, TimeoutError) else f"interrupted ({exc})"
                raise FetchError(f"{url}: {kind} after {out.tell()} bytes; they are kept in {part}: "
                                 "run the download again to resume") from exc
    if total is not None and part.stat().st_size < total:
        raise FetchError(f"{url}: got {part.stat().st_size} of {total} bytes; run the download "
                         "again to resume")
    return total is not None


def _range_start(content_range: str | None) -> int | None:
    """The first byte of a ``Content-Range: bytes a-b/n`` header (None when absent or malformed)."""
    unit, _, rest = (content_range or "").partition(" ")
    first = rest.partition("-")[0]
    return int(first) if unit == "bytes" and first.isdigit() else None


def download(name: str, root: str | os.PathLike | None = None, *, images: bool = False,
             mirror: str | None = None, progress: bool = True, keep_archives: bool = False) -> Path:
    """Fetch, check and install data set ``name`` into ``root`` (default: its data home)."""
    from zsbench.outputs import writable_folder

    chosen = sources(name, images)
    root = writable_folder(dataset_root(name, root), "--root" if root else "$ZSBENCH_DATA")
    downloads = root / DOWNLOADS
    record = _read_sources(root)
    pending = [s for s in chosen if s.file not in record]
    for i, source in enumerate(pending):
        try:
            sha = fetch(url_of(source, mirror), downloads / source.file, source.sha256, source.md5,
                        progress)
        except FetchError as exc:
            raise UserError(f"{exc}\n\n{manual_instructions(name, root, pending[i:], mirror)}") from exc
        record[source.file] = {"url": url_of(source, mirror), "sha256": sha,
                               "size": (downloads / source.file).stat().st_size,
                               "checksum_published": bool(source.sha256 or source.md5),
                               "fetched": time.strftime("%Y-%m-%d %H:%M:%S")}
    staging = Path(f"{root}/.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        sums = {}
        for source in pending:
            sums.update(_extract(downloads / source.file, source, staging))
        _move_into(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _write_sums(root, sums)
    (root / SOURCES).write_text(json.dumps(record, indent=1, sort_keys=True))
    if not keep_archives:
        for source in pending:
            (downloads / source.file).unlink(missing_ok=True)
        if downloads.is_dir() and not any(downloads.iterdir()):
            downloads.rmdir()
    return root


def manual_instructions(name: str, root: Path, todo, mirror: str | None = None) -> str:
    lines = [f"To install {name!r} by hand, download these files and place them at the paths "
             "shown, then run the same command again (it checks and extracts them):"]
    for s in todo:
        lines.append(f"  {url_of(s, mirror)}\n    (from {s.page})\n    -> {root / DOWNLOADS / s.file}")
        if s.members:
            lines.append(f"    (its {s.members}/ folder becomes {root / s.dest})")
    lines.append(f"Or place the extracted files directly: {', '.join(REQUIRED[name])}, text_c10/ "
                 f"(Reed et al.){' and the images' if any(s.images for s in todo) else ''} under "
                 f"{root}.")
    return "\n".join(lines)


def _archive_members(archive: Path) -> Iterator[tuple[str, IO[bytes]]]:
    """(path, readable) for every regular file of a zip or tar archive, in archive order."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    with zf.open(info) as f:
                        yield info.filename, f
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            for member in tf:
                if member.isfile():
                    yield member.name, tf.extractfile(member)
    else:
        raise DataError(archive, "is neither a zip nor a tar archive (damaged download?); delete "
                                 "it and run the download again")


def _extract(archive: Path, source: Source, staging: Path) -> dict[str, str]:
    """Copy what ``source`` takes from ``archive`` under ``staging``; SHA-256 per relative path."""
    sums = {}
    if source.members is None:
        rel = PurePosixPath(source.dest) / source.file
        sums[str(rel)] = _copy(archive.open("rb"), staging / rel)
        return sums
    marker = PurePosixPath(source.members).parts
    try:
        for name, readable in _archive_members(archive):
            parts = PurePosixPath(name).parts
            at = next((i for i in range(len(parts) - len(marker))
                       if parts[i:i + len(marker)] == marker), None)
            tail = parts[at + len(marker):] if at is not None else ()
            if not tail or ".." in tail or name.startswith("/"):
                continue
            rel = PurePosixPath(source.dest, *tail)
            sums[str(rel)] = _copy(readable, staging / rel)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(archive, f"cannot be extracted ({exc}); delete it and download again") from exc
    if not sums:
        raise DataError(archive, f"has no folder '{source.members}/' with files in it")
    return sums


def _copy(readable: IO[bytes], target: Path) -> str:
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with readable, open(target, "wb") as out:
        while chunk := readable.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _move_into(staging: Path, root: Path) -> None:
    """Rename each staged entry into ``root``: whole folders when new, file by file otherwise."""
    if not staging.is_dir():
        return
    for entry in staging.iterdir():
        target = root / entry.name
        if entry.is_dir() and target.is_dir():
            _move_into(entry, target)
        else:
            os.replace(entry, target)


def _read_sources(root: Path) -> dict:
    path = root / SOURCES
    return json.loads(path.read_text()) if path.is_file() else {}


def _read_sums(root: Path) -> dict[str, str]:
    path = root / SUMS
    if not path.is_file():
        return {}
    pairs = (line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())
    return {rel.strip(): sha for sha, rel in pairs}


def _write_sums(root: Path, sums: dict[str, str]) -> None:
    merged = _read_sums(root) | sums
    tmp = root / f".{SUMS}.tmp"
    tmp.write_text("".join(f"{sha}  {rel}\n" for rel, sha in sorted(merged.items())))
    os.replace(tmp, root / SUMS)


def verify(name: str, root: str | os.PathLike | None = None, features: str | None = None) -> list[str]:
    """Problems of a data folder (empty when it is complete and consistent).

    ``features`` names another feature file in the ``res101.mat`` layout to check instead.
    """
    from zsbench.data.reed_text import read_texts
    from zsbench.data.xlsa17 import load_features, load_splits

    sources(name)  # an unknown name is a UserError
    root = dataset_root(name, root)
    if not root.is_dir():
        return [f"{root}: folder not found; run `zsbench data download {name}`"]
    problems = []
    for rel, sha in _read_sums(root).items():
        path = root / rel
        if not path.is_file():
            problems.append(f"{path}: missing (listed in {SUMS})")
        elif file_digest(path) != sha:
            problems.append(f"{path}: SHA-256 differs from {SUMS} (changed or damaged)")
    required = (features or REQUIRED[name][0],) + REQUIRED[name][1:]
    missing = [rel for rel in required if not (root / rel).exists()]
    problems += [f"{root / rel}: missing" for rel in missing]
    if missing:
        return problems
    try:
        table = load_features(root / required[0])
        for split_file in sorted(root.glob("*_splits.mat")):
            load_splits(split_file, len(table.labels), table.labels)
        if (root / "text_c10").is_dir() and table.image_files is not None:
            read_texts(root / "text_c10", table.image_files, table.labels)
    except DataError as exc:
        problems.append(str(exc))
    return problems
