"""Component declarations: a component's options are declared once, as an attrs class.

The class lives in a light module (no torch); its fields carry the defaults, validators and docs
that ``zsbench validate``, ``zsbench plugins --json`` and the generated option tables all read.
``@component`` names the kind and the heavy implementation (``"module:attr"``), which is imported
only when the component is built::

    @zsbench.component("method", "ridge", build="zsbench_ridge.model:Ridge")
    @attrs.frozen
    class RidgeOptions:
        \"\"\"Ridge regression onto class embeddings.\"\"\"
        alpha: float = zsbench.option(1.0, zsbench.gt(0), doc="ridge penalty")

    @zsbench.hookimpl
    def register_methods(register):
        register(RidgeOptions)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import attrs

from zsbench.errors import UserError

COMPONENT_ATTR = "__zsbench_component__"


class OptionError(UserError, ValueError):
    """An option value outside what its component declares (exit 2, names option and value)."""


@attrs.frozen
class Check:
    """An attrs validator that says what it expects, in words the docs and errors can use."""

    inner: Callable[[Any, attrs.Attribute, Any], None]
    text: str

    def __call__(self, instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        try:
            self.inner(instance, attribute, value)
        except OptionError:
            raise
        except (ValueError, TypeError):
            raise OptionError(f"option {attribute.name!r} must be {self.text}, got {value!r}") from None


def _number(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(value)


def _bound(op: Callable, bound: float, text: str) -> Check:
    number = attrs.validators.and_(lambda i, a, v: _number(v), op(bound))
    return Check(number, f"a number {text} {bound}")


def ge(bound: float) -> Check:
    return _bound(attrs.validators.ge, bound, ">=")


def gt(bound: float) -> Check:
    return _bound(attrs.validators.gt, bound, ">")


def le(bound: float) -> Check:
    return _bound(attrs.validators.le, bound, "<=")


def lt(bound: float) -> Check:
    return _bound(attrs.validators.lt, bound, "<")


def number() -> Check:
    """Any int or float (not a bool)."""
    return Check(lambda i, a, v: _number(v), "a number")


def integer(minimum: int) -> Check:
    """An integer (not a bool) >= ``minimum``."""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(value)

    return Check(check, f"an integer >= {minimum}")


def between(low: float, high: float, *, high_open: bool = False) -> Check:
    """A number in [low, high] (or [low, high) with ``high_open``)."""
    upper = attrs.validators.lt if high_open else attrs.validators.le
    number = attrs.validators.and_(lambda i, a, v: _number(v), attrs.validators.ge(low), upper(high))
    return Check(number, f"in [{low}, {high}{')' if high_open else ']'}")


def one_of(*choices: Any) -> Check:
    return Check(attrs.validators.in_(choices), "one of " + ", ".join(repr(c) for c in choices))


def optional(check: Callable) -> Check:
    """``check`` (any attrs validator), or null."""
    return Check(attrs.validators.optional(check), f"null or {describe(check)}")


def each(check: Check) -> Check:
    """A list whose every item passes ``check``."""

    def items(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if not isinstance(value, (list, tuple)):
            raise TypeError(value)
        for item in value:
            check.inner(instance, attribute, item)

    return Check(items, f"a list, each item {check.text}")


def option(default: Any = attrs.NOTHING, *validators: Callable, doc: str = "") -> Any:
    """An attrs field with a default, validators and a one-line doc (all shown by the docs)."""
    return attrs.field(
        default=default,
        validator=list(validators) or None,
        metadata={"doc": doc},
        kw_only=False,
    )


def describe(validator: Any) -> str:
    """What a validator accepts, in words (the constraint column of the option tables)."""
    if validator is None:
        return ""
    if isinstance(validator, Check):
        return validator.text
    if isinstance(validator, (list, tuple)):
        return " and ".join(filter(None, map(describe, validator)))
    inner = getattr(validator, "_validators", None)  # attrs.validators.and_
    if inner is not None:
        return describe(list(inner))
    if hasattr(validator, "compare_op"):  # attrs.validators.ge / gt / le / lt
        return f"{validator.compare_op} {validator.bound}"
    if hasattr(validator, "options"):  # attrs.validators.in_
        return "one of " + ", ".join(repr(o) for o in validator.options)
    if type(validator).__name__ == "_OptionalValidator":
        return f"null or {describe(validator.validator)}"
    if hasattr(validator, "type"):  # attrs.validators.instance_of
        t = validator.type
        return "instance of " + (t.__name__ if isinstance(t, type) else ", ".join(x.__name__ for x in t))
    doc = (getattr(validator, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else getattr(validator, "__name__", "")


@attrs.frozen
class Option:
    """One option of a component, as the docs and ``plugins --json`` show it."""

    name: str
    type: str
    default: Any  # attrs.NOTHING when required
    constraint: str = ""
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is attrs.NOTHING

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "default": None if self.required else self.default,
            "required": self.required,
            "constraint": self.constraint,
            "doc": self.doc,
        }


def _type_name(annotation: Any) -> str:
    if annotation is None:
        return ""
    if isinstance(annotation, str):
        return annotation
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def options_schema(cls: type) -> list[Option]:
    """The options an attrs class declares (init fields, in declaration order)."""
    out = []
    for f in attrs.fields(cls):
        if not f.init:
            continue
        default = f.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory() if not default.takes_self else attrs.NOTHING
        out.append(Option(f.alias or f.name, _type_name(f.type), default, describe(f.validator),
                          f.metadata.get("doc", "")))
    return out


def value_problem(cls: type, name: str, value: Any) -> str | None:
    """What option ``name`` of ``cls`` expects, when ``value`` fails its validators; else None."""
    field = next((f for f in attrs.fields(cls) if (f.alias or f.name) == name), None)
    if field is None or field.validator is None:
        return None
    try:
        field.validator(None, field, value)
    except (ValueError, TypeError) as exc:
        return describe(field.validator) or str(exc)
    return None


def check_options(cls: type, options: dict[str, Any], what: str) -> Any:
    """``cls(**options)``, with each bad value reported as an ``OptionError`` naming ``what``,
    the option, the value and the constraint (third-party plain attrs validators included)."""
    for name, value in options.items():
        if (expected := value_problem(cls, name, value)) is not None:
            raise OptionError(f"{what}: option {name!r} must be {expected}, got {value!r}")
    try:
        return cls(**options)
    except OptionError as exc:
        raise OptionError(f"{what}: {exc}") from None
    except UserError:
        raise
    except (ValueError, TypeError) as exc:
        raise OptionError(f"{what}: {exc}") from None


@attrs.frozen
class Component:
    """A declared component: its kind, name, options class and where its implementation is."""

    kind: str
    name: str
    options: type
    build: str | Callable[..., Any]  # "module:attr", or the callable itself

    def load(self) -> Callable[..., Any]:
        """The implementation (imports its module: this is where torch & co. get loaded)."""
        if callable(self.build):
            return self.build
        module, _, attr = self.build.partition(":")
        target: Any = importlib.import_module(module)
        for part in attr.split("."):
            target = getattr(target, part)
        return target

    @property
    def module(self) -> str:
        return self.build.partition(":")[0] if isinstance(self.build, str) else self.build.__module__


def component(kind: str, name: str, build: str | Callable[..., Any] | None = None):
    """Class decorator: declare an attrs options class as the ``kind`` named ``name``.

    ``build`` is the implementation, ``"module:attr"`` (imported on first build) or a callable;
    it is called with the spec's options as keywords (plus the context or root zsbench passes).
    Without ``build`` the options class itself is the implementation.
    """

    def declare(cls: type) -> type:
        if not attrs.has(cls):
            raise TypeError(f"@component needs an attrs class, got {cls!r}")
        setattr(cls, COMPONENT_ATTR, Component(kind, name, cls, build if build is not None else cls))
        return cls

    return declare


def declared(obj: Any) -> Component | None:
    """The declaration ``obj`` carries itself (not one inherited by a heavy subclass)."""
    found = getattr(obj, COMPONENT_ATTR, None)
    return found if isinstance(found, Component) and found.options is obj else None
