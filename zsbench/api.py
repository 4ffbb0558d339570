"""zsbench from Python: the CLI's verbs as functions, and components registered in-process.

Every function gives the CLI's guarantees (choices on validation only, seeds, CIs, resume, run
identity, the results store) and raises the project's exceptions (``UserError`` and its kinds)
with the CLI's messages; none exits the interpreter. The ``zsbench`` command is a layer over
this module.

Components registered here (a method class written in a notebook cell, an encoder, a loss) join
the installed plugins for this session, go through the same option schema (their signature or
their ``zsbench.component`` options class) and get a code identity from their source, so editing
the cell makes the next run recompute.
"""

from __future__ import annotations

import contextlib
import inspect
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pluggy

from zsbench.errors import PluginError, SpecError, UserError
from zsbench.registry import (
    IN_PROCESS_PLUGIN,
    KINDS,
    PluginEntry,
    Registry,
    get_registry,
)
from zsbench.schema import declared
from zsbench.spec import BenchmarkSpec, parse_spec, parse_yaml
from zsbench.store.results import Results

DEFAULT_RESULTS = "results.sqlite"

_hookimpl = pluggy.HookimplMarker("zsbench")
_session: dict[tuple[str, str], Any] = {}  # (kind, name) -> class, factory or object


class _SessionPlugin:
    """The session's components as one plugin the registry loads like any installed one."""

    def __init__(self, components: Mapping[tuple[str, str], Any]):
        self.components = dict(components)

    def _register(self, kind: str, register: Callable[..., None]) -> None:
        for (k, name), target in self.components.items():
            if k == kind:
                register(name, target if declared(target) else _factory(target))

    @_hookimpl
    def register_encoders(self, register):
        self._register("encoder", register)

    @_hookimpl
    def register_losses(self, register):
        self._register("loss", register)

    @_hookimpl
    def register_calibrators(self, register):
        self._register("calibrator", register)

    @_hookimpl
    def register_datasets(self, register):
        self._register("dataset", register)

    @_hookimpl
    def register_methods(self, register):
        self._register("method", register)


def _factory(target: Any) -> Any:
    """What builds the component: a class or function itself; for an object, the object (a
    method instance is then used as it is, with no options)."""
    if inspect.isclass(target) or inspect.isroutine(target):
        return target

    def use_as_is() -> Any:
        return target

    use_as_is.__module__ = type(target).__module__
    use_as_is.__doc__ = inspect.getdoc(type(target))
    use_as_is.in_process_object = target  # its identity is the object's (identity.source_identity)
    return use_as_is


def _kind_of(target: Any) -> str:
    if (found := declared(target)) is not None:
        return found.kind
    if hasattr(target, "fit"):
        return "method"
    raise PluginError(f"cannot tell what kind of component {target!r} is; pass kind= (one of {', '.join(KINDS)})")


def register(target: Any = None, *, name: str | None = None, kind: str | None = None) -> Any:
    """Register ``target`` (a method class or object, a factory, or a ``zsbench.component``
    options class) for this session, under ``name`` (default: its declared name, else its class
    or function name). Registering the same name again replaces it (a re-run notebook cell);
    a name an installed plugin holds is refused. Usable as a decorator, with or without
    arguments. Returns ``target``."""
    if target is None:
        return lambda t: register(t, name=name, kind=kind)
    kind = kind or _kind_of(target)
    if kind not in KINDS:
        raise PluginError(f"kind {kind!r}: expected one of {', '.join(KINDS)}")
    found = declared(target)
    name = name or (found.name if found else getattr(target, "__name__", type(target).__name__))
    if name in get_registry().names(kind):
        entry = get_registry().get(kind, name)
        raise PluginError(f"{kind} name {name!r} is taken by plugin {entry.plugin!r}; register yours under another name")
    _session[(kind, name)] = target
    return target


def unregister(name: str, kind: str = "method") -> None:
    """Forget an in-process component."""
    if _session.pop((kind, name), None) is None:
        raise PluginError(f"no in-process {kind} {name!r} is registered")


@contextlib.contextmanager
def registered(*targets: Any, **named: Any) -> Iterator[None]:
    """Register ``targets`` (by their own names) and ``named`` (name=target) for the block only."""
    before = dict(_session)
    try:
        for target in targets:
            register(target)
        for name, target in named.items():
            register(target, name=name)
        yield
    finally:
        _session.clear()
        _session.update(before)


def registry(strict: bool | None = None) -> Registry:
    """The installed plugins, plus this session's in-process components."""
    if not _session:
        return get_registry(strict=strict)
    return Registry.from_entry_points(strict=strict, extra=[(IN_PROCESS_PLUGIN, _SessionPlugin(_session), None, None)])


def list_plugins(kind: str | None = None, pattern: str = "*") -> list[PluginEntry]:
    """Registered components of ``kind`` (or all) whose name matches the wildcard ``pattern``
    (``"cal*"``), in-process ones included."""
    if kind is not None and kind not in KINDS:
        raise PluginError(f"kind {kind!r}: expected one of {', '.join(KINDS)}")
    return registry().list(kind, pattern)


def load_spec(spec: Any, registry: Registry | None = None) -> BenchmarkSpec:
    """A validated spec from a path, a shipped spec's name (``"demo"``), YAML text or a dict."""
    from zsbench import spec as specs

    registry = registry or globals()["registry"]()
    if isinstance(spec, BenchmarkSpec):
        return spec
    if isinstance(spec, Mapping):
        return parse_spec(dict(spec), "<spec dict>", registry)
    if isinstance(spec, str) and "\n" in spec:
        return parse_yaml(spec, "<spec text>", registry)
    if isinstance(spec, (str, Path)):
        return specs.load_spec(spec, registry)
    raise SpecError(repr(spec), "", "expected a spec file path, a shipped spec's name, YAML text or a dict")


FILE_OPTIONS = ("features", "splits")  # data set options that name a file in the data set's folder


def check_data_files(spec: BenchmarkSpec) -> None:
    """A ``SpecError`` for a file option (``features: efficientnet_lite0.mat``) naming a file that
    is not in the data set's folder, when that folder is here (so a spec validated on a machine
    without the data still passes)."""
    import difflib

    from zsbench.paths import dataset_root

    for i, entry in enumerate(spec.raw.get("datasets") or []):
        if not isinstance(entry, Mapping):
            continue
        plugin, root = entry.get("plugin", entry.get("name")), entry.get("root")
        folder = dataset_root(str(plugin), root if isinstance(root, str) else None)
        for option in FILE_OPTIONS:
            name = entry.get(option)
            if not isinstance(name, str) or not folder.is_dir() or (folder / name).is_file():
                continue
            files = sorted(p.name for p in folder.iterdir() if p.is_file())
            present = [f for f in files if Path(f).suffix == Path(name).suffix]
            close = difflib.get_close_matches(name, files, n=1)
            raise SpecError(spec.file, f"datasets[{i}].{option}",
                            f"no file {name!r} in {folder}" + (f" (did you mean {close[0]!r}?)" if close else "")
                            + (f"; {Path(name).suffix or 'such'} files there: {', '.join(present)}" if present else ""))


@contextlib.contextmanager
def _device_context(spec_file: str, key: str | None):
    """Device errors name where the device came from: the spec's key, or the caller's device."""
    try:
        yield
    except UserError as exc:
        if key is None:
            raise UserError(f"--device: {exc}") from None
        raise SpecError(spec_file, key, str(exc)) from None


def describe_outcome(task: Any, outcome: Any) -> list[str]:
    """Lines for one finished task: its H per calibrator (in the spec's order), and a warning per
    grid value chosen at an edge of its grid (recorded in each row's ``provenance["grid_edges"]``)."""
    from zsbench.runner.grid import Failure

    if isinstance(outcome, Failure):
        return [f"FAILED {task.describe()}: {outcome.message}"]
    best = max(outcome, key=lambda r: r.val_H)
    order = [c.name for c in task.method.calibrators]
    ordered = sorted(outcome, key=lambda r: order.index(r.calibrator) if r.calibrator in order else len(order))
    lines = [f"{task.describe()}: " + ", ".join(f"{r.calibrator}: H={100 * r.H:.1f}" for r in ordered)
             + f" ({best.wall_time:.1f}s)"]
    edges = {(path, r.hyperparameters[path]) for r in outcome for path in r.provenance.get("grid_edges", ())}
    for path, value in sorted(edges, key=repr):
        lines.append(f"warning: {task.describe()}: {path}={value!r} was chosen at the edge of its grid "
                     f"{task.method.grid[path]}; the best value may lie outside it: widen the grid")
    return lines


def run(spec: Any, results: str | Path | None = DEFAULT_RESULTS, *, force: bool = False,
        device: str | None = None, backend: str = "local", threads: int = 1, quiet: bool = False,
        on_done: Callable[[Any, Any], None] | None = None, strict: bool | None = None,
        plugins: Registry | None = None, on_recovery: Callable[[str], None] | None = None,
        **ray_options: Any) -> Results:
    """Run every (data set x method x seed) of ``spec`` (see ``load_spec``) into the results
    database ``results`` (None: a temporary one), skipping stored runs unless ``force``.
    ``backend="ray"`` takes ``address``, ``cpus_per_task``, ``gpus_per_task`` and ``dashboard``.
    Progress bars (``tqdm.auto``: notebook bars in Jupyter) and one line per finished run are
    shown unless ``quiet``; ``on_done(task, rows or Failure)`` replaces the lines. Returns the
    rows of this spec's runs, with the failures' messages. ``strict``: a broken plugin is an error;
    ``plugins``: the registry to run with (default: the installed plugins and this session's).
    Runs the database refused are saved to a recovery file; however the call ends, where they are
    and the command that imports them is passed to ``on_recovery`` (default: a warning)."""
    from tqdm.auto import tqdm

    from zsbench.outputs import writable_cache
    from zsbench.runner.grid import LocalBackend, plan, resolve_device, run_spec
    from zsbench.store.sqlite import ResultStore

    reg = plugins or registry(strict)
    parsed = load_spec(spec, reg)
    check_data_files(parsed)
    writable_cache()
    device_name, device_key = (device, None) if device else (parsed.device, "device")
    if backend == "ray":  # the device is resolved on the workers, which may have GPUs the driver lacks
        from zsbench.runner.backends.ray import RayBackend, SettingError

        cpus = ray_options.pop("cpus_per_task", None)
        flags = {"num_cpus_per_task": "--cpus-per-task", "num_gpus_per_task": "--gpus-per-task"}
        try:
            chosen = RayBackend(reg, address=ray_options.pop("address", None), device=device_name,
                                num_cpus_per_task=1 if cpus is None else cpus,
                                num_gpus_per_task=ray_options.pop("gpus_per_task", None),
                                dashboard=ray_options.pop("dashboard", False),
                                device_origin=f"{parsed.file}: device" if device_key else "--device")
        except SettingError as exc:  # a flag's value, not the spec's device key
            if exc.setting in flags:
                raise UserError(f"{flags[exc.setting]} {exc.detail}") from None
            with _device_context(parsed.file, device_key):
                raise
    elif backend != "local":
        raise UserError(f"backend {backend!r}: expected 'local' or 'ray'")
    elif any(v not in (None, False) for v in ray_options.values()):
        raise UserError("--address, --cpus-per-task, --gpus-per-task and --dashboard are for the Ray "
                        "backend; add --backend ray")
    else:
        with _device_context(parsed.file, device_key):
            resolved = resolve_device(device_name)
        chosen = LocalBackend(reg, resolved, show_progress=not quiet, threads=threads or None)
    kept = results is not None
    with contextlib.ExitStack() as stack:
        if results is None:
            results = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="zsbench-"))) / "results.sqlite"
        store = stack.enter_context(ResultStore(results))
        stack.callback(_report_recovery, store, on_recovery)
        # Closed on errors too: a data set that fails to load may come after runs were reported.
        bar = stack.enter_context(tqdm(total=len(plan(parsed)), desc=parsed.name, unit="run", disable=quiet,
                                       dynamic_ncols=True))

        def report(task, outcome):
            bar.update(1)
            if on_done is not None:
                on_done(task, outcome)
            elif not quiet:
                for line in describe_outcome(task, outcome):
                    bar.write(line)

        outcome = run_spec(parsed, store, chosen, force=force, on_done=report)
        bar.update(len(outcome.skipped) + len(outcome.busy))
        bar.close()
        keys = {t.key for t in (*outcome.done, *outcome.skipped)}
        rows = tuple(r for r in store.rows(spec_name=parsed.name) if r["run_key"] in keys)
    return Results(rows, tuple(f"{f.task.describe()}: {f.message}" for f in outcome.failures),
                   str(results) if kept else None, parsed.name, outcome)


def _report_recovery(store: Any, on_recovery: Callable[[str], None] | None) -> None:
    if message := store.recovery_message():
        if on_recovery is None:
            warnings.warn(message, stacklevel=3)
        else:
            on_recovery(message)


def _entries(values: Any, what: str) -> list[Any]:
    if isinstance(values, (str, Mapping)):
        return [values]
    if isinstance(values, Sequence) and values:
        return list(values)
    raise SpecError("<evaluate>", what, f"expected a name, a mapping or a non-empty list of them, got {values!r}")


def _method_entry(method: Any, name: str | None, options: Mapping[str, Any] | None, grid: Mapping | None,
                  calibrators: Any) -> dict[str, Any]:
    """A spec's method entry for ``method``: a registered name, or an in-process component
    (registered for the session under ``name`` or its own name)."""
    if isinstance(method, str):
        plugin = method
    else:
        plugin = name or (declared(method).name if declared(method) else
                          getattr(method, "__name__", type(method).__name__))
        register(method, name=plugin, kind="method")
    entry = {"name": name or plugin, "method": plugin, **dict(options or {}),
             "calibrators": _entries(calibrators, "calibrators")}
    if grid is not None:
        entry["grid"] = dict(grid)
    return entry


def evaluate(method: Any, datasets: Any = ("synthetic",), seeds: int | Sequence[int] = 3,
             calibrators: Any = ("none",), results: str | Path | None = None, *,
             options: Mapping[str, Any] | None = None, grid: Mapping[str, Sequence[Any]] | None = None,
             name: str | None = None, spec_name: str | None = None, device: str = "auto",
             force: bool = False, quiet: bool = False) -> Results:
    """Evaluate one method on ``datasets`` (names or spec entries such as
    ``{"name": "flo", "features": "efficientnet_lite0.mat"}``) over ``seeds`` (a count or a list)
    with each of ``calibrators``, like a one-method spec run by ``run``.

    ``method`` is a registered method's name, or an in-process class (built with ``options``,
    its hyper-parameters chosen on validation from ``grid``) or object implementing
    ``zsbench.Method``, registered for the session as ``name`` (default: the class name).
    ``results``: the database to keep the rows in and resume from (None: not kept)."""
    entry = _method_entry(method, name, options, grid, calibrators)
    spec = {"name": spec_name or f"evaluate-{entry['name']}", "seeds": seeds, "device": device,
            "datasets": [{"name": d} if isinstance(d, str) else dict(d) for d in _entries(datasets, "datasets")],
            "methods": [entry]}
    return run(spec, results, force=force, quiet=quiet)


def load_results(path: str | Path = DEFAULT_RESULTS, spec_name: str | None = None) -> Results:
    """The rows stored in the results database ``path`` (of one spec, when named)."""
    from zsbench.store.sqlite import ResultStore

    if not Path(path).exists():
        raise UserError(f"{path}: no results database here; run a spec first or pass --results PATH")
    with ResultStore(path, readonly=True) as store:
        return Results(tuple(store.rows(spec_name=spec_name)), path=str(path))


def audit(spec: Any = None, *, method: Any = None, datasets: Any = ("synthetic",), options: Mapping | None = None,
          grid: Mapping | None = None, calibrators: Any = ("none",), methods: Sequence[str] = (),
          seed: int | None = None, poisons: Sequence[str] = ("random",), device: str = "cpu",
          tolerance: float = 1e-6) -> list[Any]:
    """Check that no method peeks at the test split or scores transductively (see
    ``zsbench.runner.audit``): every method entry of ``spec`` (or those named in ``methods``), or one
    ``method`` (a name or an in-process component) on ``datasets``. Returns one ``AuditResult``
    per audited run, at ``seed`` (default: the spec's first)."""
    from zsbench.runner.audit import audit_spec

    if (spec is None) == (method is None):
        raise UserError("audit: give a spec or a method (one of them)")
    if method is not None:
        entry = _method_entry(method, None, options, grid, calibrators)
        spec = {"name": f"audit-{entry['name']}", "seeds": [0 if seed is None else seed],
                "datasets": [{"name": d} if isinstance(d, str) else dict(d) for d in _entries(datasets, "datasets")],
                "methods": [entry]}
    reg = registry()
    return [result for _, result in audit_spec(load_spec(spec, reg), reg, methods, seed, poisons, device, tolerance)]
