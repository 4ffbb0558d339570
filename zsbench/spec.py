"""Benchmark specs: YAML -> typed, validated ``BenchmarkSpec``.

Every error names the file, the key path (``methods[1].loss.kappa``) and what was expected, so
``zsbench validate`` can stop a bad spec before any compute is spent.

One module, longer than most: the records at the top, then one checking pass (``_Checker``) that
carries the file and key path to every error; split, each part would need that context passed in.
"""

from __future__ import annotations

import collections
import copy
import hashlib
import itertools
import json
import math
import os
import re
import typing
from pathlib import Path
from typing import Any

import attrs
import yaml

from zsbench.errors import PluginError, SpecError, UserError
from zsbench.registry import PluginEntry, Registry
from zsbench.schema import (
    MissingOptionError,
    OptionError,
    UnknownOptionError,
    did_you_mean,
    nested_kind,
)
from zsbench.side_information import SIDE_INFORMATION

METHOD_KEYS = {"name", "method", "grid", "calibrators", "sweep", "side_information"}
DATASET_KEYS = {"name", "plugin", "root", "drop_nonfinite", "backbone"}
TOP_KEYS = {"name", "description", "seeds", "device", "datasets", "methods"}
NO_CALIBRATION = "none"
DEVICE_NAME = re.compile(r"auto|cpu|cuda(:\d+)?")  # the devices zsbench runs on
MAX_SEED = 2**32 - 1  # numpy's seed range
# Bounds on the work a spec may ask for, so that a typo cannot exhaust memory or time; a real
# benchmark above them raises them with $ZSBENCH_MAX_RUNS and $ZSBENCH_MAX_GRID_POINTS.
DEFAULT_MAX_RUNS = 100_000
DEFAULT_MAX_GRID_POINTS = 10_000
MAX_SPEC_VALUES = 1_000_000  # values in the document once YAML aliases are expanded


def canonical_hash(obj: Any) -> str:
    """A short stable hash of JSON-able data (key order does not matter)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@attrs.frozen
class DatasetSpec:
    label: str  # the row label; unique within a spec
    plugin: str
    root: str | None
    options: dict[str, Any]
    drop_nonfinite: bool = False  # leave out instances whose features are NaN or infinite
    backbone: dict[str, Any] | None = None  # {name: <image encoder>, ...}: features from images

    def as_dict(self) -> dict[str, Any]:
        out = {"label": self.label, "plugin": self.plugin, "root": self.root, "options": self.options}
        if self.drop_nonfinite:  # only then: existing run keys stay as they were
            out["drop_nonfinite"] = True
        if self.backbone is not None:  # absent otherwise, so earlier run keys stay the same
            out["backbone"] = self.backbone
        return out


@attrs.frozen
class CalibratorSpec:
    name: str  # "none" or a calibrator plugin name
    options: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class MethodSpec:
    label: str
    plugin: str
    options: dict[str, Any]
    grid: dict[str, list[Any]]
    calibrators: tuple[CalibratorSpec, ...]
    sweep: dict[str, Any] = attrs.field(factory=dict)  # the swept setting(s) this entry stands for
    side_information: str = "auto"  # which side information the method is given (SIDE_INFORMATION)

    def as_dict(self) -> dict[str, Any]:
        out = {
            "label": self.label,
            "plugin": self.plugin,
            "options": self.options,
            "grid": self.grid,
            "calibrators": [attrs.asdict(c) for c in self.calibrators],
            "sweep": self.sweep,
        }
        if self.side_information != "auto":  # absent when unset, so older run keys still hold
            out["side_information"] = self.side_information
        return out

    def grid_size(self) -> int:
        """How many points ``grid_points`` has, without making them."""
        return math.prod(len(values) for values in self.grid.values())

    def grid_edges(self, point: dict[str, Any]) -> list[str]:
        """The grid paths whose value in ``point`` is the smallest or largest of three or more
        numbers: the best value may lie outside the grid."""
        out = []
        for path, values in sorted(self.grid.items()):
            numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if len(numbers) >= 3 and len(numbers) == len(values) and point.get(path) in (min(numbers), max(numbers)):
                out.append(path)
        return out

    def grid_points(self) -> list[dict[str, Any]]:
        """The cartesian product of the grid as option-path -> value dicts ([{}] when none)."""
        keys = sorted(self.grid)
        return [dict(zip(keys, values)) for values in itertools.product(*(self.grid[k] for k in keys))]


@attrs.frozen
class BenchmarkSpec:
    name: str
    file: str
    seeds: tuple[int, ...]
    device: str
    datasets: tuple[DatasetSpec, ...]
    methods: tuple[MethodSpec, ...]
    raw: dict[str, Any]

    @property
    def hash(self) -> str:
        return canonical_hash(self.raw)


class PathError(ValueError):
    """A dotted option path that goes through a value that is not a mapping."""


def set_path(options: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``options`` with a dotted path (``loss.kappa``) set to ``value``."""
    out = copy.deepcopy(options)
    node = out
    *parents, leaf = path.split(".")
    if not all(path.split(".")):
        raise PathError(f"{path!r} has an empty part; write option paths like 'loss.kappa'")
    for i, part in enumerate(parents):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            above = ".".join(parents[: i + 1])
            raise PathError(f"{path!r} goes through {above!r}, which is {node!r}, not a mapping of options")
    node[leaf] = value
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (YAML
    itself keeps the last silently, so a typo'd duplicate would change a benchmark unnoticed)."""

    def construct_mapping(self, node, deep=False):
        first: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may be overridden on purpose
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                earlier = first.get(key)
            except TypeError:  # an unhashable key: the base loader reports it
                break
            if earlier is not None:
                raise yaml.constructor.ConstructorError(
                    None, None,
                    f"key {key!r} appears twice, at line {earlier.start_mark.line + 1} and at line "
                    f"{key_node.start_mark.line + 1}; keep one",
                    key_node.start_mark,
                )
            first[key] = key_node
        return super().construct_mapping(node, deep=deep)


class _Checker:
    """Walks a raw spec, collecting the first error with its key path."""

    def __init__(self, file: str, registry: Registry):
        self.file, self.registry = file, registry

    def fail(self, key: str, message: str) -> typing.NoReturn:
        raise SpecError(self.file, key, message)

    def set_path(self, options: dict[str, Any], path: Any, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(path, str):
            self.fail(key, f"expected an option path (a string such as 'loss.kappa'), got {path!r}")
        try:
            return set_path(options, path, value)
        except PathError as exc:
            self.fail(key, str(exc))

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(key, f"expected a mapping, got {type(value).__name__} {value!r}")
        return value

    def nonempty_list(self, value: Any, key: str) -> list[Any]:
        if not isinstance(value, list) or not value:
            self.fail(key, f"expected a non-empty list, got {value!r}")
        return value

    def entry(self, kind: str, name: Any, key: str) -> PluginEntry:
        if not isinstance(name, str):
            self.fail(key, f"expected a {kind} plugin name (a string), got {name!r}")
        try:
            return self.registry.get(kind, name)
        except PluginError as exc:
            self.fail(key, str(exc))

    def options(self, entry: PluginEntry, options: dict[str, Any], key: str) -> None:
        """Validate ``options`` into the component's options object (``zsbench.schema.validate``,
        the check a build makes too), naming the key path of a bad one; a nested component is
        checked against its own options."""

        def at(name: str) -> str:
            return f"{key}.{name}" if key else name

        for name, value in options.items():
            if _nonfinite(value):
                self.fail(at(name), f"expected finite numbers, got {value!r} (NaN and infinities are not settings)")
        try:
            entry.validate(options)
        except UnknownOptionError as exc:
            name = next(n for n in options if n in exc.names)
            self.fail(at(name), f"unknown option for {entry.kind} {entry.name!r}{did_you_mean(name, exc.known)}; "
                                f"known options: {', '.join(sorted(exc.known)) or 'none'}")
        except MissingOptionError as exc:
            self.fail(key or entry.name, f"missing required option(s) for {entry.kind} {entry.name!r}: "
                                         f"{', '.join(exc.names)}")
        except OptionError as exc:
            if exc.option is not None:
                self.fail(at(exc.option), f"expected {exc.expected}, got {exc.value!r}{exc.note}")
            self.fail(key or entry.name, str(exc))
        except UserError as exc:
            self.fail(key or entry.name, str(exc))
        for name, value in options.items():
            kind = nested_kind(entry.options_class, name) if entry.options_class else None
            if kind and isinstance(value, dict) and "name" in value:
                self.component(kind, value, at(name))
            elif kind and isinstance(value, str):  # a component by name alone, e.g. `loss: clarel`
                self.entry(kind, value, at(name))

    def component(self, kind: str, value: dict[str, Any], key: str) -> None:
        entry = self.entry(kind, value.get("name"), f"{key}.name")
        self.options(entry, {k: v for k, v in value.items() if k != "name"}, key)


def _seeds(c: _Checker, value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        if value > max_runs():
            c.fail("seeds", f"{value} seeds is more than the {max_runs()} runs a spec may have (set ZSBENCH_MAX_RUNS to allow more)")
        return tuple(range(value))
    if isinstance(value, list) and value and all(isinstance(s, int) and not isinstance(s, bool) for s in value):
        if bad := [s for s in value if not 0 <= s <= MAX_SEED]:
            c.fail("seeds", f"a seed is an integer from 0 to {MAX_SEED}, got {bad[0]!r}")
        if len(set(value)) != len(value):
            c.fail("seeds", f"seeds must be distinct, got {value!r}")
        return tuple(value)
    c.fail("seeds", f"expected a positive integer (number of seeds) or a list of distinct integers, got {value!r}")


def max_runs() -> int:
    return _limit("ZSBENCH_MAX_RUNS", DEFAULT_MAX_RUNS)


def max_grid_points() -> int:
    return _limit("ZSBENCH_MAX_GRID_POINTS", DEFAULT_MAX_GRID_POINTS)


def _limit(variable: str, default: int) -> int:
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise UserError(f"${variable}: expected a positive whole number, got {text!r}")
    return int(text)


def _nonfinite(value: Any) -> bool:
    """Whether ``value`` is or holds (in lists and mappings) a NaN or an infinity."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return any(_nonfinite(v) for v in value)
    if isinstance(value, dict):
        return any(_nonfinite(v) for v in value.values())
    return False


def _bounded(raw: Any, file: str) -> None:
    """Refuse a document that expands beyond ``MAX_SPEC_VALUES`` values or refers to itself
    (YAML aliases share one object among many places: hashing or copying the spec expands
    them all, so an alias bomb is caught here, before anything walks it)."""
    budget = MAX_SPEC_VALUES
    stack: list[tuple[Any, tuple[int, ...]]] = [(raw, ())]
    while stack:
        value, ancestors = stack.pop()
        budget -= 1
        if budget < 0:
            raise SpecError(file, "", f"expands to more than {MAX_SPEC_VALUES} values (YAML aliases `*name` "
                                      "repeated inside each other?); write the values out, or fewer of them")
        if isinstance(value, (dict, list)):
            if id(value) in ancestors:
                raise SpecError(file, "", "a YAML alias refers to a mapping or list that contains it "
                                          "(a recursive alias); a spec must be a tree")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, (*ancestors, id(value))) for child in children)


def _dataset(c: _Checker, raw: Any, key: str) -> list[DatasetSpec]:
    raw = c.mapping(raw, key)
    plugin = raw.get("plugin", raw.get("name"))
    entry = c.entry("dataset", plugin, f"{key}.{'plugin' if 'plugin' in raw else 'name'}")
    options = {k: v for k, v in raw.items() if k not in DATASET_KEYS}
    c.options(entry, options, key)
    root = raw.get("root")
    if root is not None and not isinstance(root, str):
        c.fail(f"{key}.root", f"expected a folder path (string), got {root!r}")
    drop = raw.get("drop_nonfinite", False)
    if not isinstance(drop, bool):
        c.fail(f"{key}.drop_nonfinite", f"expected true or false, got {drop!r}")
    label = str(raw.get("name", plugin))
    if "backbone" not in raw:
        return [DatasetSpec(label, entry.name, root, options, drop)]
    # One backbone, or a list of them: a sweep, one dataset row per backbone.
    value = raw["backbone"]
    items = value if isinstance(value, list) else [value]
    if not items:
        c.fail(f"{key}.backbone", "expected an image encoder ({name: ..., options}) or a non-empty list of them")
    backbones = []
    for i, item in enumerate(items):
        path = f"{key}.backbone" + (f"[{i}]" if isinstance(value, list) else "")
        item = {"name": item} if isinstance(item, str) else c.mapping(item, path)
        c.component("encoder", item, path)
        backbones.append(item)
    if not isinstance(value, list):
        return [DatasetSpec(label, entry.name, root, options, drop, backbones[0])]
    names = [b["name"] for b in backbones]
    tags = names if len(set(names)) == len(names) else [f"{n}#{i}" for i, n in enumerate(names)]
    return [DatasetSpec(f"{label}[backbone={t}]", entry.name, root, options, drop, b)
            for t, b in zip(tags, backbones)]


def _calibrators(c: _Checker, raw: Any, key: str) -> tuple[CalibratorSpec, ...]:
    if raw is None:
        return (CalibratorSpec(NO_CALIBRATION),)
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for i, item in enumerate(items):
        path = f"{key}[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        item = c.mapping(item, path)
        name = item.get("name")
        if name != NO_CALIBRATION:
            c.component("calibrator", item, path)
        out.append(CalibratorSpec(name, {k: v for k, v in item.items() if k != "name"}))
    names = [cal.name for cal in out]
    if len(set(names)) != len(names):
        c.fail(key, f"each calibrator may appear once, got {names}")
    return tuple(out)


def _check_score_kind(c: _Checker, method: PluginEntry, calibrators: tuple[CalibratorSpec, ...], key: str) -> None:
    """Refuse a calibrator that rescales distances for a method that declares similarity scores
    (``score_kind`` and ``requires_distance`` on their options classes; undeclared: not checked)."""
    if method.declared("score_kind") != "similarity":
        return
    for i, cal in enumerate(calibrators):
        if cal.name != NO_CALIBRATION and c.registry.get("calibrator", cal.name).declared("requires_distance"):
            c.fail(f"{key}[{i}]", f"calibrator {cal.name!r} rescales distances, but method {method.name!r} "
                                  "returns similarity scores; use an additive calibrator such as 'calibrated-stacking'")


def _method(c: _Checker, raw: Any, key: str) -> list[MethodSpec]:
    raw = c.mapping(raw, key)
    label = raw.get("name")
    if not isinstance(label, str) or not label:
        c.fail(f"{key}.name", f"expected the method's row name (a string), got {label!r}")
    plugin_key = f"{key}.method" if "method" in raw else f"{key}.name"
    entry = c.entry("method", raw.get("method", label), plugin_key)
    options = {k: v for k, v in raw.items() if k not in METHOD_KEYS}
    c.options(entry, options, key)
    grid = c.mapping(raw.get("grid", entry.default_grid), f"{key}.grid")
    for path, values in grid.items():
        c.nonempty_list(values, f"{key}.grid.{path}")
    if (points := math.prod(len(values) for values in grid.values())) > max_grid_points():
        c.fail(f"{key}.grid", f"{points} grid points, more than the {max_grid_points()} a method may have "
                              f"(set ZSBENCH_MAX_GRID_POINTS to allow more)")
    for path, values in grid.items():
        for i, v in enumerate(values):
            try:
                c.options(entry, c.set_path(options, path, v, f"{key}.grid.{path}"), key)
            except SpecError as exc:  # named where the value is written: in the grid
                if exc.key in (f"{key}.{path}", key) and exc.key != f"{key}.grid.{path}":
                    raise SpecError(c.file, f"{key}.grid.{path}[{i}]", exc.reason) from None
                raise
    calibrators = _calibrators(c, raw.get("calibrators"), f"{key}.calibrators")
    _check_score_kind(c, entry, calibrators, f"{key}.calibrators")
    side = raw.get("side_information", "auto")
    if side not in SIDE_INFORMATION:
        c.fail(f"{key}.side_information", f"expected one of {', '.join(SIDE_INFORMATION)}, got {side!r}")
    sweep = c.mapping(raw.get("sweep", {}), f"{key}.sweep")
    if len(sweep) > 1:
        c.fail(f"{key}.sweep", f"sweep one setting at a time (got {sorted(sweep)}); add another entry for another")
    if not sweep:
        return [MethodSpec(label, entry.name, options, grid, calibrators, side_information=side)]
    (path, values), = sweep.items()
    c.nonempty_list(values, f"{key}.sweep.{path}")
    if path in grid:
        c.fail(f"{key}.sweep.{path}", "a setting cannot be both swept and chosen on validation (grid)")
    out = []
    for v in values:
        swept = c.set_path(options, path, v, f"{key}.sweep.{path}")
        c.options(entry, swept, key)
        out.append(MethodSpec(f"{label}[{path}={v}]", entry.name, swept, grid, calibrators, {path: v}, side))
    return out


def parse_spec(raw: Any, file: str, registry: Registry) -> BenchmarkSpec:
    """Validate a loaded YAML document; raises ``SpecError`` naming the key path."""
    c = _Checker(file, registry)
    raw = c.mapping(raw, "")
    for k in raw:
        if k not in TOP_KEYS:
            c.fail(k, f"unknown top-level key; expected some of: {', '.join(sorted(TOP_KEYS))}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        c.fail("name", f"expected the benchmark's name (a non-empty string), got {name!r}")
    seeds = _seeds(c, raw.get("seeds", 1))
    device = raw.get("device", "auto")
    if not isinstance(device, str) or not DEVICE_NAME.fullmatch(device):
        c.fail("device", f"expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    datasets = tuple(
        d for i, item in enumerate(c.nonempty_list(raw.get("datasets"), "datasets"))
        for d in _dataset(c, item, f"datasets[{i}]")
    )
    methods = tuple(
        m for i, item in enumerate(c.nonempty_list(raw.get("methods"), "methods")) for m in _method(c, item, f"methods[{i}]")
    )
    for kind, labels in (("datasets", [d.label for d in datasets]), ("methods", [m.label for m in methods])):
        dupes = sorted(x for x, n in collections.Counter(labels).items() if n > 1)
        if dupes:
            c.fail(kind, f"names must be unique, {', '.join(dupes)} appear(s) twice; give each entry its own 'name'")
    runs = len(datasets) * len(methods) * len(seeds)
    if runs > max_runs():
        c.fail("", f"{len(datasets)} dataset(s) x {len(methods)} method(s) x {len(seeds)} seed(s) = {runs} runs, "
                   f"more than the {max_runs()} a spec may have (set ZSBENCH_MAX_RUNS to allow more)")
    return BenchmarkSpec(name, file, seeds, device, datasets, methods, raw)


def load_spec(path: str | Path, registry: Registry) -> BenchmarkSpec:
    """Read and validate a YAML spec file, or a spec shipped with zsbench by name (``demo``)."""
    path = Path(path)
    if not path.is_file():
        from zsbench.specs import packaged

        path = packaged(str(path))
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise SpecError(str(path), "", f"not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at line {line} "
                                       "cannot be decoded; save the spec as UTF-8") from None
    except OSError as exc:
        raise SpecError(str(path), "", f"cannot read the spec file: {exc.strerror or exc}") from None
    return parse_yaml(text, str(path), registry)


def parse_yaml(text: str, file: str, registry: Registry) -> BenchmarkSpec:
    """Validate a spec given as YAML text; ``file`` names it in errors."""
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise SpecError(file, "", f"not valid YAML{line}: {getattr(exc, 'problem', exc)}") from None
    _bounded(raw, file)
    return parse_spec(raw, file, registry)
