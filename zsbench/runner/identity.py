"""What a result depends on: the code that ran and the data it read, as hashes a run key includes.

Code identity hashes *source*, not a git commit: rows are committed by a later commit than the one
that produced them, so a commit can never be the thing compared. It covers

- every zsbench module, whole, that the evaluation (``zsbench.evaluation.stages``) or a component's
  package reaches through its import statements, those inside functions included and those
  under ``if TYPE_CHECKING:`` not (they never run) (``core_modules``: the protocol, calibration sweeps, metrics, records, the spec's grid
  expansion, the shared encoders, the data loaders), found by reading the source, so the list
  cannot fall behind the code. The runner (planning, backends, resume) and this module are not
  on that path: the evaluation imports neither, and nothing here imports the evaluation, so
  there is no circle;
- for every component a run uses (its method, the encoders and losses named in its options and
  grid, its calibrators, its data set), every ``.py`` file of the top-level package that defines
  the component's factory, with that distribution's version.

Whole top-level packages rather than the modules a factory imports: plugins import helpers
lazily, from inside functions and through the registry (CLAREL builds its encoders by name), so
an import graph misses code that runs, while a package is the unit a distribution ships. The
price is conservative: editing one baseline makes every baseline of that package recompute.

Data identity is the path, size and SHA-256 of every file a data set read
(``DatasetBundle.files``; the first-party loaders in ``zsbench.data`` fill it) plus a digest of the
arrays the bundle holds, which also covers in-memory data sets that read no file. File hashes are
cached by (path, size, mtime), so reruns cost a ``stat`` per file.

Provenance also records zsbench's version, git commit and dirty flag (``git_state``): for people,
not for comparison.

Longer than most: code identity, data identity and the staleness check answer one question (was
this row computed from this code and these files?), in three marked sections.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from zsbench.interfaces import DatasetBundle
from zsbench.paths import cache_home
from zsbench.registry import Registry
from zsbench.schema import named_components  # options classes declare which options are components
from zsbench.spec import set_path

EVALUATION = "zsbench.evaluation.stages"  # where the code path that makes the numbers starts
PACKAGE = Path(__file__).resolve().parents[1]  # zsbench/: module names resolve under it
HASH_CACHE_FILE = "sha256.json"
_CHUNK = 1 << 20


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- code


def _module_file(name: str) -> Path | None:
    """The source file of zsbench module ``name`` (None when there is none), found without
    importing anything."""
    path = PACKAGE.joinpath(*name.split(".")[1:])
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _type_checking_only(node: ast.AST) -> bool:
    """Whether ``node`` is an ``if TYPE_CHECKING:`` block, whose imports never run."""
    if not isinstance(node, ast.If):
        return False
    return getattr(node.test, "id", None) == "TYPE_CHECKING" or getattr(node.test, "attr", None) == "TYPE_CHECKING"


def _run_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` except those inside ``if TYPE_CHECKING:`` blocks (their ``else``
    branch included: it runs)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if _type_checking_only(node):
            todo += node.orelse
        else:
            todo += ast.iter_child_nodes(node)


def _imported_modules(tree: ast.AST, importer: str, is_package: bool) -> set[str]:
    """The zsbench modules (and the packages above them, which importing runs) that the import
    statements anywhere in ``tree`` name, those inside functions included."""
    base = importer if is_package else importer.rpartition(".")[0]
    found = set()
    for node in _run_nodes(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parent = base.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(filter(None, (parent, node.module)))
            # ``from package import name``: name may be a submodule.
            names = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] == "zsbench" and _module_file(name) is not None:
                parts = name.split(".")
                found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return found


def core_modules(roots: Iterable[str] = ()) -> list[str]:
    """Every zsbench module the evaluation (``zsbench.evaluation.stages``) and ``roots`` reach through
    imports."""
    seen, todo = set(), [EVALUATION, *roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name)
        todo += _imported_modules(ast.parse(path.read_text()), name, path.name == "__init__.py")
    return sorted(seen)


@cache
def core_source_hash(roots: frozenset[str] = frozenset()) -> str:
    """Hash of the core code every result passes through, ``core_modules(roots)``, each module
    whole (computed once per process and set of roots)."""
    parts = []
    for name in core_modules(roots):
        parts += [name.encode(), _module_file(name).read_bytes()]
    return _digest(parts)


def package_files(module_name: str) -> tuple[str, list[Path]]:
    """The top-level package of ``module_name`` and its ``.py`` files (the module's own file when
    it is a plain top-level module)."""
    top = module_name.split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        return top, []
    if spec.submodule_search_locations:
        files = [p for loc in spec.submodule_search_locations for p in Path(loc).rglob("*.py")]
        return top, sorted(files)
    return top, [Path(spec.origin)]


def _zsbench_imports(module_name: str) -> set[str]:
    """The zsbench modules a component's package imports (its helpers, e.g. ``zsbench.encoders``)."""
    top, files = package_files(module_name)
    if top == "zsbench":
        return {module_name}
    return {m for path in files for m in _imported_modules(ast.parse(path.read_text()), top, False)}


def _package_source_hash(module_name: str) -> tuple[str, str]:
    top, files = package_files(module_name)
    stats = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    return top, _files_hash(stats)


@cache
def _files_hash(stats: tuple[tuple[str, int, int], ...]) -> str:
    """Hash of the files' names (relative to their common folder) and contents; cached by
    (path, mtime, size), so an edited file is read again."""
    paths = [Path(p) for p, _, _ in stats]
    root = Path(os.path.commonpath(paths)) if len(paths) > 1 else paths[0].parent if paths else Path()
    parts = []
    for path in paths:
        parts += [path.relative_to(root).as_posix().encode(), path.read_bytes()]
    return _digest(parts)


def source_identity(obj: Any) -> str:
    """Hash of an in-process component's own source: the functions and plain attributes of its
    class and of the bases defined beside it (or of a function), plus an instance's attributes,
    so that editing a notebook cell gives a new identity. Helpers it calls are not followed."""
    import attrs as _attrs

    obj = getattr(obj, "in_process_object", obj)  # an object registered as it is, behind its factory
    target = obj if inspect.isclass(obj) or inspect.isroutine(obj) else type(obj)
    owners = [c for c in inspect.getmro(target) if c.__module__ == target.__module__] if inspect.isclass(target) else []
    parts = [f"{target.__module__}.{target.__qualname__}".encode()]
    members = [(c.__qualname__, n, v) for c in owners for n, v in sorted(vars(c).items())] or [("", "", target)]
    for owner, name, value in members:
        function = inspect.unwrap(getattr(value, "__func__", value))
        if inspect.isfunction(function):
            try:
                text = inspect.getsource(function)
            except (OSError, TypeError):  # generated code (attrs' __init__): its bytecode
                text = function.__code__.co_code.hex() + repr(function.__code__.co_consts)
            parts.append(f"{owner}.{name}:{text}".encode())
        elif not name.startswith("__") and isinstance(value, (str, int, float, bool, tuple, list, dict, type(None))):
            parts.append(f"{owner}.{name}={value!r}".encode())
    for cls in owners:
        if _attrs.has(cls):
            parts += [f"{a.name}:{a.type}={a.default!r}".encode() for a in _attrs.fields(cls)]
    if target is not obj and hasattr(obj, "__dict__"):
        parts.append(json.dumps(vars(obj), sort_keys=True, default=repr).encode())
    return _digest(parts)


def _named_components(registry: Registry, method: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(kind, name) of every component named in the method's (nested) options, grid values
    included, where the options classes declare a component option (``component_option``)."""

    def options_class(kind: str, name: str) -> type | None:
        try:
            return registry.get(kind, name).options_class
        except Exception:  # noqa: BLE001 - unknown now: it names no components
            return None

    if (cls := options_class("method", method["plugin"])) is None:
        return
    options = method.get("options", {})
    grid = method.get("grid", {})
    for point in [options, *(set_path(options, path, v) for path, values in grid.items() for v in values)]:
        yield from named_components(cls, point, options_class)


def components_used(method: Mapping[str, Any], dataset: Mapping[str, Any], registry: Registry) -> list[tuple[str, str]]:
    """(kind, name) of every component a run of this method and data set entry uses, from the
    dicts ``MethodSpec.as_dict`` / ``DatasetSpec.as_dict`` give (as stored in provenance)."""
    used = [("method", method["plugin"]), ("dataset", dataset["plugin"])]
    used += [("calibrator", c["name"]) for c in method.get("calibrators", []) if c["name"] != "none"]
    used += list(_named_components(registry, method))
    return sorted(set(used))


def code_identity(registry: Registry, method: Mapping[str, Any], dataset: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-able identity of the code a run uses (see the module docstring); a component the
    registry does not know (any more) is recorded as missing."""
    import zsbench

    components, packages, roots = {}, {}, set()
    for kind, name in components_used(method, dataset, registry):
        try:
            entry = registry.get(kind, name)
        except Exception:  # noqa: BLE001 - unknown now: recorded, and differs from any known one
            components[f"{kind}:{name}"] = None
            continue
        if entry.in_process:  # no package to hash: a notebook cell has no file
            top, source = f"<in-process {kind} {name}>", source_identity(entry.factory)
        else:
            top, source = _package_source_hash(entry.factory.__module__)
        components[f"{kind}:{name}"] = top
        packages[top] = {"distribution": entry.distribution, "version": entry.version, "source": source}
        roots |= _zsbench_imports(entry.factory.__module__)
    return {"zsbench": zsbench.__version__, "core": core_source_hash(frozenset(roots)), "components": components,
            "packages": packages}


def code_differences(recorded: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """Why code identity ``recorded`` is not ``current``, one phrase per difference (none: same)."""
    if not recorded:
        return ["no code identity recorded (a row from an older zsbench)"]
    out = []
    if recorded.get("core") != current["core"]:
        out.append("zsbench core code changed")
    if recorded.get("zsbench") != current["zsbench"]:
        out.append(f"zsbench {recorded.get('zsbench')} -> {current['zsbench']}")
    old_packages = recorded.get("packages", {})
    for component, package in current["components"].items():
        before = recorded.get("components", {}).get(component)
        if package is None:
            out.append(f"{component} is no longer registered")
        elif before != package:
            out.append(f"{component} now comes from {package} (was {before})")
        elif old_packages.get(package) != current["packages"][package]:
            old, new = old_packages.get(package) or {}, current["packages"][package]
            what = "source" if old.get("source") != new["source"] else "version"
            out.append(f"{component}: {package} {what} changed")
    return list(dict.fromkeys(out))


@cache
def git_state() -> dict[str, Any] | None:
    """Commit and dirty flag of the checkout zsbench runs from (None when not a git checkout)."""
    here = PACKAGE.parent
    if not (here / ".git").exists():
        return None
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True,
                                  check=True, timeout=30).stdout.strip()

        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return None


# --------------------------------------------------------------------------- data


class FileHashes:
    """SHA-256 of files, remembered by (path, size, mtime) in ``<cache home>/identity/``."""

    def __init__(self, folder: Path | None = None):
        self.path = (folder or cache_home() / "identity") / HASH_CACHE_FILE
        try:
            self.known: dict[str, list] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.known = {}
        self.changed = False

    def sha256(self, path: Path) -> tuple[int, str]:
        """(size, hex SHA-256) of ``path``."""
        path = Path(path).resolve()
        stat = path.stat()
        key = str(path)
        hit = self.known.get(key)
        if hit and hit[0] == stat.st_size and hit[1] == stat.st_mtime_ns:
            return stat.st_size, hit[2]
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        self.known[key] = [stat.st_size, stat.st_mtime_ns, h.hexdigest()]
        self.changed = True
        return stat.st_size, h.hexdigest()

    def save(self) -> None:
        """Atomically (a concurrent writer's entries may be lost: they are only recomputed)."""
        if not self.changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w") as f:
            json.dump(self.known, f)
        os.replace(tmp, self.path)
        self.changed = False


def file_identity(files: Iterable[os.PathLike | str], hashes: FileHashes | None = None) -> list[dict[str, Any]]:
    """[{path, name, size, sha256}] of ``files``, sorted by path; ``name`` is the path relative
    to the files' common folder, so the same data in another place has the same identity."""
    hashes = hashes or FileHashes()
    paths = sorted({str(Path(f).resolve()) for f in files})
    root = Path(os.path.commonpath(paths)) if len(paths) > 1 else Path(paths[0]).parent if paths else None
    out = []
    for path in paths:
        size, sha = hashes.sha256(Path(path))
        out.append({"path": path, "name": Path(path).relative_to(root).as_posix(), "size": size, "sha256": sha})
    hashes.save()
    return out


def content_digest(bundle: DatasetBundle) -> str:
    """A digest of the arrays and split indices a bundle holds (not of files it points to)."""
    parts = [bundle.name.encode(), np.ascontiguousarray(bundle.labels).tobytes(), "\0".join(bundle.class_names).encode()]
    parts += [np.ascontiguousarray(v).tobytes() for v in bundle.splits.as_dict().values()]
    for array in (bundle.features, bundle.class_embeddings):
        parts.append(b"" if array is None else np.ascontiguousarray(array).tobytes())
    parts.append(json.dumps([list(t) for t in bundle.texts] if bundle.texts is not None else None).encode())
    parts.append("\0".join(map(str, bundle.image_files or ())).encode())
    return _digest(parts)


def data_identity(bundle: DatasetBundle) -> dict[str, Any]:
    """JSON-able identity of the data a bundle was built from."""
    return {"source": bundle.source, "files": file_identity(bundle.files), "content": content_digest(bundle)}


def data_differences(recorded: Mapping[str, Any] | None, hashes: FileHashes | None = None) -> list[str]:
    """Why the files recorded in ``recorded`` differ from those on disk now (none: same)."""
    if not recorded:
        return ["no data identity recorded (a row from an older zsbench)"]
    hashes = hashes or FileHashes()
    out = []
    for f in recorded.get("files", []):
        path = Path(f["path"])
        if not path.is_file():
            out.append(f"{path} is gone")
        elif hashes.sha256(path) != (f["size"], f["sha256"]):
            out.append(f"{path} changed")
    hashes.save()
    return out


# --------------------------------------------------------------------------- runs


@attrs.frozen
class RunIdentity:
    """The code and data identity of one task; its digest is part of the run key."""

    code: dict[str, Any]
    data: dict[str, Any]

    @property
    def digest(self) -> str:
        """Where the data lies is not part of it: files count by relative name, size and hash."""
        data = {"content": self.data.get("content"),
                "files": [(f["name"], f["size"], f["sha256"]) for f in self.data.get("files", [])]}
        text = json.dumps({"code": self.code, "data": data}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@attrs.define
class StaleCheck:
    """Why stored rows did not come from the current code and data. Each distinct set of
    components and each distinct recorded data identity is checked once: the rows of a
    leaderboard, hundreds, share a handful of each."""

    registry: Registry
    hashes: FileHashes = attrs.field(factory=FileHashes)
    _code: dict[tuple[tuple[str, str], ...], dict[str, Any]] = attrs.field(factory=dict, init=False)
    _data: dict[str, list[str]] = attrs.field(factory=dict, init=False)

    def reasons(self, row: Mapping[str, Any]) -> list[str]:
        """Why ``row`` did not come from the current code and data (empty: current), from its
        provenance only: the config it ran (to find the components it used), the code identity
        and the data files it recorded."""
        prov = row.get("provenance") or {}
        config = prov.get("config")
        if not config or "method" not in config or "dataset" not in config:
            return ["no run configuration recorded"]
        used = tuple(components_used(config["method"], config["dataset"], self.registry))
        if used not in self._code:
            self._code[used] = code_identity(self.registry, config["method"], config["dataset"])
        data = json.dumps(prov.get("data"), sort_keys=True, default=str)
        if data not in self._data:
            self._data[data] = data_differences(prov.get("data"), self.hashes)
        return code_differences(prov.get("code"), self._code[used]) + list(self._data[data])


def stale_reasons(row: Mapping[str, Any], registry: Registry, hashes: FileHashes | None = None) -> list[str]:
    """Why a stored result row did not come from the current code and data (empty: current);
    see ``StaleCheck``."""
    return StaleCheck(registry, hashes or FileHashes()).reasons(row)


def mark_stale(rows: list[dict[str, Any]], refuse: bool = False, registry: Registry | None = None) -> list[dict[str, Any]]:
    """``rows``, one per task (``zsbench.store.rows.current``: rows merged from several sources
    count once, a rerun supersedes its stale row), with ``row["stale"]``: the reasons each did
    not come from the current code and data (empty when it did), for pages to flag; with
    ``refuse``, any stale row left is a user error."""
    from zsbench.errors import UserError
    from zsbench.registry import get_registry
    from zsbench.store.rows import current

    check = StaleCheck(registry or get_registry())
    out = [{**row, "stale": check.reasons(row)} for row in current(rows)]
    bad = [r for r in out if r["stale"]]
    if refuse and bad:
        first = bad[0]
        raise UserError(
            f"{len(bad)} of {len(out)} result row(s) did not come from the current code and data, e.g. "
            f"{first['dataset']} / {first['method']} / {first['calibrator']} / seed {first['seed']}: "
            f"{'; '.join(first['stale'])}; rerun their spec (`zsbench run`), or pass --stale flag to mark them"
        )
    return out
