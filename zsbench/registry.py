"""The plugin registry: pluggy over the ``zsbench`` entry-point group.

One broken plugin costs a warning, not the CLI; ``strict`` (``--strict`` or
``ZSBENCH_STRICT_PLUGINS=1``) turns that warning into an error. Two plugins claiming one name
is always an error naming both.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import inspect
import os
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import pluggy

from zsbench import hookspecs
from zsbench.errors import PluginError

PLURALS = {"encoder": "encoders", "loss": "losses", "calibrator": "calibrators", "dataset": "datasets", "method": "methods"}
KINDS = tuple(PLURALS)
_HOOKS = {kind: f"register_{plural}" for kind, plural in PLURALS.items()}
ENTRY_POINT_GROUP = "zsbench"


class PluginWarning(UserWarning):
    """A plugin failed to load or register and was skipped."""


# Factory arguments that zsbench passes itself (a method's context, a data set's root), not spec options.
INJECTED = frozenset({"context", "root", "self"})


@attrs.frozen
class PluginEntry:
    """One registered component: what kind, under which name, from which plugin."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str  # the plugin (entry point or module) that registered it
    distribution: str | None = None
    version: str | None = None

    @property
    def description(self) -> str:
        doc = inspect.getdoc(self.factory) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    def options(self) -> dict[str, inspect.Parameter]:
        """The keyword options the factory accepts (spec keys), minus injected arguments."""
        sig = inspect.signature(self.factory)
        return {
            name: p
            for name, p in sig.parameters.items()
            if name not in INJECTED and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        }

    def accepts_any_option(self) -> bool:
        sig = inspect.signature(self.factory)
        return any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())

    def unknown_options(self, names: Iterable[str]) -> list[str]:
        """Those of ``names`` the factory does not take (none when it takes ``**options``)."""
        if self.accepts_any_option():
            return []
        known = self.options()
        return sorted(name for name in names if name not in known)

    def build(self, *args: Any, **options: Any) -> Any:
        """The factory's product; an option it does not take is a user error naming the others."""
        if unknown := [n for n in self.unknown_options(options) if n not in INJECTED]:
            raise PluginError(
                f"{self.kind} {self.name!r} has no option(s) {', '.join(unknown)}; "
                f"its options are: {', '.join(self.options()) or 'none'}"
            )
        return self.factory(*args, **options)


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
        """Every plugin of the ``zsbench`` entry-point group, plus ``extra`` (name, module, dist,
        version) tuples registered the same way (tests, notebooks)."""
        strict = strict_from_env() if strict is None else strict
        loaded, problems = [], []
        for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            try:
                module = ep.load()
            except Exception as exc:  # noqa: BLE001 - any plugin failure must not kill the CLI
                problems.append(f"plugin {ep.name!r} ({ep.value}) failed to import: {type(exc).__name__}: {exc}")
                continue
            loaded.append((ep.name, module, dist.name if dist else None, dist.version if dist else None))
        registry = cls([], strict=strict)
        for problem in problems:
            registry._problem(problem)
        for item in [*loaded, *extra]:
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
        except Exception as exc:  # noqa: BLE001
            self._problem(f"plugin {name!r} could not be registered: {type(exc).__name__}: {exc}")
            return
        for kind, hook in _HOOKS.items():
            impls = [i for i in getattr(self.plugin_manager.hook, hook).get_hookimpls() if i.plugin is module]
            if not impls:
                continue
            staged: list[PluginEntry] = []

            def register(entry_name: str, factory: Callable[..., Any], _kind=kind, _staged=staged):
                if not isinstance(entry_name, str) or not entry_name:
                    raise PluginError(f"plugin {name!r} registered a {_kind} without a name")
                if not callable(factory):
                    raise PluginError(f"plugin {name!r}: {_kind} {entry_name!r} is not callable")
                _staged.append(PluginEntry(_kind, entry_name, factory, name, dist, version))

            try:
                impls[0].function(register=register)
            except Exception as exc:  # noqa: BLE001
                self.plugin_manager.unregister(module)
                self._problem(f"plugin {name!r} failed in {hook}: {type(exc).__name__}: {exc}")
                return
            for entry in staged:
                existing = self._entries[kind].get(entry.name)
                if existing is not None:
                    raise PluginError(
                        f"{kind} name {entry.name!r} is registered twice: by plugin "
                        f"{existing.plugin!r} ({existing.factory.__module__}) and by plugin "
                        f"{entry.plugin!r} ({entry.factory.__module__}); rename one of them"
                    )
                self._entries[kind][entry.name] = entry

    def get(self, kind: str, name: str) -> PluginEntry:
        """The entry for ``name``; an unknown name lists the known ones."""
        try:
            return self._entries[kind][name]
        except KeyError:
            known = ", ".join(sorted(self._entries[kind])) or "none"
            raise PluginError(f"unknown {kind} {name!r}; known {PLURALS[kind]}: {known}") from None

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
