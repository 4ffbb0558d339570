"""The plugin registry: pluggy over the ``zsbench`` entry-point group.

A plugin's ``register_*`` hook passes either a declared component (an attrs options class
marked with ``zsbench.component``, see ``zsbench.schema``) or, as before, a name and a plain
factory whose signature gives the options. Declared components are imported only when built, so
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
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import pluggy

from zsbench import hookspecs
from zsbench.errors import PluginError
from zsbench.schema import Component, Option, check_options, declared, options_schema, value_problem

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


# Factory arguments that zsbench passes itself (a method's context, a data set's root), not spec options.
INJECTED = frozenset({"context", "root", "self"})


def _signature_schema(factory: Callable[..., Any]) -> list[Option]:
    """A plain factory's options, read from its signature (third-party plugins of the old style)."""
    out = []
    for name, p in inspect.signature(factory).parameters.items():
        if name in INJECTED or p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        annotation = "" if p.annotation is p.empty else p.annotation
        default = attrs.NOTHING if p.default is p.empty else p.default
        out.append(Option(name, annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation)), default))
    return out


@attrs.frozen
class PluginEntry:
    """One registered component: what kind, under which name, from which plugin.

    ``target`` is a declared ``Component`` (options from its attrs class, implementation imported
    on first use) or a plain factory (options from its signature)."""

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
        """The callable that builds the component (importing a declared one's module)."""
        if self.component is None:
            return self.target
        if "factory" not in self._loaded:
            self._loaded["factory"] = self.component.load()
        return self._loaded["factory"]

    @property
    def module(self) -> str:
        """Where the implementation lives (named in clash warnings; not imported)."""
        return self.component.module if self.component else getattr(self.target, "__module__", "?")

    @property
    def in_process(self) -> bool:
        """Registered from Python for this session: its identity is its source, not a package's."""
        return self.plugin == IN_PROCESS_PLUGIN

    @property
    def builtin(self) -> bool:
        return self.distribution == BUILTIN_DISTRIBUTION

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
        if self.component:
            return options_schema(self.component.options)
        return _signature_schema(self.target)

    def options(self) -> dict[str, Option]:
        """The spec keys the component accepts, minus injected arguments."""
        return {o.name: o for o in self.schema()}

    def type_hints(self) -> dict[str, Any]:
        """Resolved annotations of the options (empty when they cannot be resolved)."""
        source = self.component.options if self.component else self.target
        if inspect.isclass(source) and not attrs.has(source):  # a plain class: its constructor's
            source = source.__init__
        try:
            return typing.get_type_hints(source)
        except Exception:  # noqa: BLE001 - unresolvable annotations: names are still checked
            return {}

    def accepts_any_option(self) -> bool:
        if self.component:
            return False
        sig = inspect.signature(self.target)
        return any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())

    def unknown_options(self, names: Iterable[str]) -> list[str]:
        """Those of ``names`` the factory does not take (none when it takes ``**options``)."""
        if self.accepts_any_option():
            return []
        known = self.options()
        return sorted(name for name in names if name not in known)

    def value_problem(self, name: str, value: Any) -> str | None:
        """What option ``name`` expects, when ``value`` is out of its declared range; else None."""
        return value_problem(self.component.options, name, value) if self.component else None

    def check(self, **options: Any) -> Any:
        """Range-check ``options`` against the declared schema (an ``OptionError`` names the
        component, option, value and constraint); returns the options object, or None for a
        plain factory (which checks its own)."""
        self._check_names(options)
        if self.component:
            given = {k: v for k, v in options.items() if k not in INJECTED}
            return check_options(self.component.options, given, f"{self.kind} {self.name!r}")
        return None

    def _check_names(self, options: dict[str, Any]) -> None:
        if unknown := [n for n in self.unknown_options(options) if n not in INJECTED]:
            raise PluginError(
                f"{self.kind} {self.name!r} has no option(s) {', '.join(unknown)}"
                f"{did_you_mean(unknown[0], self.options())}; "
                f"its options are: {', '.join(self.options()) or 'none'}"
            )

    def build(self, *args: Any, **options: Any) -> Any:
        """The factory's product; an option it does not take is a user error naming the others."""
        self.check(**options)
        return self.factory(*args, **options)


def did_you_mean(name: Any, known: Iterable[str]) -> str:
    """" (did you mean 'x'?)" for the closest of ``known`` to a misspelled ``name``, else ""."""
    import difflib

    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


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
