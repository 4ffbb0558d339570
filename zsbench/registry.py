"""The plugin registry: pluggy over the ``zsbench`` entry-point group.

A plugin's ``register_*`` hook passes a declared component (an attrs options class marked with
``zsbench.component``, see ``zsbench.schema``), or a name and a plain callable whose signature
gives the options (see ``PluginEntry``). Declared components are imported only when built, so
listing and validating never load torch.

One broken plugin costs a warning naming it, not the CLI: an exception (``SystemExit``
included, ``KeyboardInterrupt`` excepted) in its import or hooks, or a name another plugin
already registered (the built-in plugins load first and keep their names). ``strict``
(``--strict`` or ``ZSBENCH_STRICT_PLUGINS=1``) turns each such warning into an error.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import inspect
import os
import threading
import typing
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import pluggy

from zsbench import hookspecs
from zsbench.errors import PluginError
from zsbench.schema import (
    Component,
    Option,
    declared,
    did_you_mean,
    named_components,
    options_schema,
    validate,
)

PLURALS = {"encoder": "encoders", "loss": "losses", "calibrator": "calibrators", "dataset": "datasets", "method": "methods"}
KINDS = tuple(PLURALS)
_HOOKS = {kind: f"register_{plural}" for kind, plural in PLURALS.items()}
ENTRY_POINT_GROUP = "zsbench"
BUILTIN_DISTRIBUTION = "zsbench"
DEFAULT_PLUGIN_SECONDS = 60.0  # a plugin's import, and its register hook, each get this long


class PluginTimeout(Exception):
    """A plugin's import or register hook did not return within the time limit."""


def plugin_seconds() -> float:
    """``$ZSBENCH_PLUGIN_TIMEOUT`` seconds, else ``DEFAULT_PLUGIN_SECONDS``."""
    text = os.environ.get("ZSBENCH_PLUGIN_TIMEOUT", "").strip()
    try:
        seconds = float(text) if text else DEFAULT_PLUGIN_SECONDS
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds == float("inf"):
        raise PluginError(f"$ZSBENCH_PLUGIN_TIMEOUT: expected a number of seconds > 0, got {text!r}")
    return seconds


def _within_limit(call: Callable[[], Any]) -> Any:
    """``call()`` in a daemon thread: its result or exception, or ``PluginTimeout`` when it has
    not returned within ``plugin_seconds()`` (the thread is left behind; it cannot be stopped)."""
    outcome: list[tuple[bool, Any]] = []

    def target() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome.append((False, exc))

    seconds = plugin_seconds()
    worker = threading.Thread(target=target, name="zsbench-plugin", daemon=True)
    worker.start()
    worker.join(seconds)
    if not outcome:
        raise PluginTimeout(f"did not return within {seconds:g} s (set ZSBENCH_PLUGIN_TIMEOUT to wait longer)")
    ok, value = outcome[0]
    if not ok:
        raise value
    return value
IN_PROCESS_PLUGIN = "in-process"  # components registered from Python (``zsbench.register``)


class PluginWarning(UserWarning):
    """A plugin failed to load or register and was skipped."""


# Arguments zsbench passes to a component's ``build`` itself (an encoder's or loss's context, a
# data set's root folder), never spec options.
INJECTED = frozenset({"context", "root", "self"})
# Kinds whose product needs an argument zsbench passes: the implementation's ``build(...)`` makes it.
# A method or calibrator is the implementation object itself.
BUILT_KINDS = frozenset({"encoder", "loss", "dataset"})


def _signature_options(factory: Callable[..., Any]) -> type | None:
    """A plain factory's signature as an attrs options class (None when it takes ``**options``),
    so its spec options go through the same ``validate`` as a declared component's."""
    parameters = inspect.signature(factory).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    fields, hints = {}, {}
    try:
        resolved = typing.get_type_hints(factory.__init__ if inspect.isclass(factory) else factory)
    except Exception:  # noqa: BLE001 - unresolvable annotations: names and defaults are still checked
        resolved = {}
    for p in parameters:
        if p.name in INJECTED or p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        fields[p.name] = attrs.field(default=attrs.NOTHING if p.default is p.empty else p.default, kw_only=True,
                                     type=None if p.annotation is p.empty else p.annotation)
        if p.name in resolved:
            hints[p.name] = resolved[p.name]
    cls = attrs.make_class(f"{getattr(factory, '__name__', 'factory')}_options", fields, frozen=True)
    cls.__annotations__ = hints  # what validate's type check reads
    cls.__doc__ = inspect.getdoc(factory)
    return cls


@attrs.frozen
class PluginEntry:
    """One registered component: what kind, under which name, from which plugin.

    ``target`` is a declared ``Component`` (an attrs options class; its implementation subclasses
    it and is imported on first build), or a plain callable. Plain callables stay accepted so that
    a notebook cell or a small test plugin can register a function or class without a package:
    their signature is read as an options class and validated the same way, and they are called
    with the validated values as keywords."""

    kind: str
    name: str
    target: Component | Callable[..., Any]
    plugin: str  # the plugin (entry point or module) that registered it
    distribution: str | None = None
    version: str | None = None
    _loaded: dict[str, Any] = attrs.field(factory=dict, eq=False, repr=False, alias="_loaded")

    @property
    def component(self) -> Component | None:
        return self.target if isinstance(self.target, Component) else None

    @property
    def factory(self) -> Callable[..., Any]:
        """The implementation (importing a declared one's module), or the plain callable."""
        if self.component is None:
            return self.target
        if "factory" not in self._loaded:
            self._loaded["factory"] = self.component.load()
        return self._loaded["factory"]

    @property
    def options_class(self) -> type | None:
        """The attrs class a spec entry is validated into; None for a plain callable taking
        ``**options`` (which checks its own)."""
        if self.component:
            return self.component.options
        if "options" not in self._loaded:
            self._loaded["options"] = _signature_options(self.target)
        return self._loaded["options"]

    @property
    def module(self) -> str:
        """Where the implementation lives (named in clash warnings; not imported)."""
        return self.component.module if self.component else getattr(self.target, "__module__", "?")

    @property
    def in_process(self) -> bool:
        """Registered from Python for this session: its identity is its source, not a package's."""
        return self.plugin == IN_PROCESS_PLUGIN

    @property
    def description(self) -> str:
        doc = inspect.getdoc(self.component.options if self.component else self.target) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    @property
    def default_grid(self) -> dict[str, list[Any]]:
        """The validation grid used when a spec gives none."""
        source = self.component.options if self.component else self.target
        return dict(getattr(source, "default_grid", {}))

    def declared(self, attribute: str) -> Any:
        """A class-level fact the options class (or factory) states, e.g. ``score_kind``; None
        when it states none. Read without importing the implementation."""
        return getattr(self.component.options if self.component else self.target, attribute, None)

    def schema(self) -> list[Option]:
        """The spec options, with type, default, constraint and doc."""
        return options_schema(self.options_class) if self.options_class else []

    def options(self) -> dict[str, Option]:
        """The spec keys the component accepts, minus injected arguments."""
        return {o.name: o for o in self.schema()}

    def validate(self, options: Mapping[str, Any]) -> Any:
        """The options object of this component's spec ``options`` (see ``zsbench.schema.validate``);
        None for a plain callable taking ``**options``."""
        cls = self.options_class
        return None if cls is None else validate(cls, options, f"{self.kind} {self.name!r}")

    def nested(self, options: Mapping[str, Any], registry: Registry) -> list[tuple[str, str]]:
        """(kind, name) of the components nested in spec ``options``, as the options classes declare
        them (nested ones' own nested components included)."""
        if self.options_class is None:
            return []

        def lookup(kind: str, name: str) -> type | None:
            try:
                return registry.get(kind, name).options_class
            except PluginError:
                return None

        return named_components(self.options_class, options, lookup)

    def build(self, *args: Any, **options: Any) -> Any:
        """The component built from spec ``options``, validated once into the options object.

        A declared component's implementation is made from that object (not checked again); a
        method or calibrator is that object, an encoder, loss or data set is what its ``build``
        returns given what zsbench passes (``args``, and ``root`` for a data set)."""
        injected = {k: options.pop(k) for k in INJECTED & options.keys()}
        checked = self.validate(options)
        if self.component is None:
            given = options if checked is None else {k: getattr(checked, k) for k in options}
            return self.factory(*args, **injected, **given)
        implementation = self.component.implement(self.factory, checked)
        return implementation.build(*args, **injected) if self.kind in BUILT_KINDS else implementation


def strict_from_env() -> bool:
    return os.environ.get("ZSBENCH_STRICT_PLUGINS", "").lower() in ("1", "true", "yes")


class Registry:
    """Every component of every loaded plugin, by kind and name."""

    def __init__(self, plugins: Iterable[tuple[str, Any, str | None, str | None]], strict: bool = False):
        self.strict = strict
        self.problems: list[str] = []
        self._entries: dict[str, dict[str, PluginEntry]] = {kind: {} for kind in KINDS}
        self.plugin_manager = pluggy.PluginManager("zsbench")
        self.plugin_manager.add_hookspecs(hookspecs)
        for name, module, dist, version in plugins:
            self._add_plugin(name, module, dist, version)

    @classmethod
    def from_entry_points(cls, strict: bool | None = None, extra: Iterable[tuple[str, Any, str | None, str | None]] = ()) -> Registry:
        """Every plugin of the ``zsbench`` entry-point group (the built-in ones first, so they keep
        their names), plus ``extra`` (name, module, dist, version) tuples registered the same way
        (tests, notebooks)."""
        strict = strict_from_env() if strict is None else strict
        registry = cls([], strict=strict)
        points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        for ep in sorted(points, key=lambda e: (_distribution(e)[0] != BUILTIN_DISTRIBUTION, e.name)):
            dist, version = _distribution(ep)
            try:
                module = _within_limit(ep.load)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - SystemExit too: a plugin must not kill the CLI
                registry._problem(f"plugin {ep.name!r} ({ep.value}) failed to import: {_describe(exc)}")
                continue
            registry._add_plugin(ep.name, module, dist, version)
        for item in extra:
            registry._add_plugin(*item)
        return registry

    def _problem(self, message: str) -> None:
        if self.strict:
            raise PluginError(message)
        self.problems.append(message)
        warnings.warn(message, PluginWarning, stacklevel=3)

    def _add_plugin(self, name: str, module: Any, dist: str | None, version: str | None) -> None:
        try:
            self.plugin_manager.register(module, name=name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001
            self._problem(f"plugin {name!r} could not be registered: {_describe(exc)}")
            return
        for kind, hook in _HOOKS.items():
            impls = [i for i in getattr(self.plugin_manager.hook, hook).get_hookimpls() if i.plugin is module]
            if not impls:
                continue
            staged: list[PluginEntry] = []

            def register(entry_name: Any, factory: Any = None, _kind=kind, _staged=staged):
                if factory is None and declared(entry_name) is not None:  # register(OptionsClass)
                    target = declared(entry_name)
                    if target.kind != _kind:
                        raise PluginError(f"plugin {name!r}: {target.kind} {target.name!r} registered as a {_kind}")
                    entry_name = target.name
                elif declared(factory) is not None:  # register("alias", OptionsClass)
                    target = declared(factory)
                else:
                    target = factory
                if not isinstance(entry_name, str) or not entry_name:
                    raise PluginError(f"plugin {name!r} registered a {_kind} without a name")
                if not callable(target) and not isinstance(target, Component):
                    raise PluginError(f"plugin {name!r}: {_kind} {entry_name!r} is not callable")
                _staged.append(PluginEntry(_kind, entry_name, target, name, dist, version))

            try:
                _within_limit(lambda f=impls[0].function, r=register: f(register=r))
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - SystemExit too
                self.plugin_manager.unregister(module)
                self._problem(f"plugin {name!r} failed in {hook}: {_describe(exc)}")
                return
            for entry in staged:
                existing = self._entries[kind].get(entry.name)
                if existing is not None:  # the first (built-in plugins load first) keeps the name
                    self._problem(
                        f"{kind} name {entry.name!r} is registered twice: by plugin "
                        f"{existing.plugin!r} ({_source(existing)}) and by plugin "
                        f"{entry.plugin!r} ({_source(entry)}); plugin {entry.plugin!r}'s {kind} "
                        f"{entry.name!r} is disabled (rename it)"
                    )
                    continue
                self._entries[kind][entry.name] = entry

    def get(self, kind: str, name: str) -> PluginEntry:
        """The entry for ``name``; an unknown name lists the known ones."""
        try:
            return self._entries[kind][name]
        except KeyError:
            known = ", ".join(sorted(self._entries[kind])) or "none"
            raise PluginError(f"unknown {kind} {name!r}{did_you_mean(name, self._entries[kind])}; "
                              f"known {PLURALS[kind]}: {known}") from None

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[kind])

    def list(self, kind: str | None = None, pattern: str = "*") -> list[PluginEntry]:
        """Entries of one kind (or all), filtered by a shell-style wildcard on the name."""
        kinds = [kind] if kind else list(KINDS)
        return [
            entry
            for k in kinds
            for name, entry in sorted(self._entries[k].items())
            if fnmatch.fnmatch(name, pattern)
        ]

    def build(self, kind: str, name: str, *args: Any, **options: Any) -> Any:
        return self.get(kind, name).build(*args, **options)


def _distribution(ep: importlib.metadata.EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(ep, "dist", None)
    return (dist.name, dist.version) if dist else (None, None)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    if isinstance(exc, PluginTimeout):
        return f"it hung: {exc}; the plugin is skipped"
    return f"{type(exc).__name__}: {exc}"


def _source(entry: PluginEntry) -> str:
    dist = f", {entry.distribution} {entry.version or ''}".rstrip() if entry.distribution else ""
    return f"{entry.module}{dist}"


_default: Registry | None = None


def get_registry(strict: bool | None = None) -> Registry:
    """The process-wide registry over installed plugins, loaded once."""
    global _default
    if _default is None or (strict and not _default.strict):
        _default = Registry.from_entry_points(strict=strict)
    return _default


def reset_registry() -> None:
    """Forget the loaded registry (tests, or after installing a plugin in-process)."""
    global _default
    _default = None
