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

One module, longer than most: the checks (``ge``, ``between``, ...), ``option``, the validation
and the component declaration are the one vocabulary a plugin imports from ``zsbench``; kept
together so an author reads it in one place.
"""

from __future__ import annotations

import collections.abc
import difflib
import importlib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from zsbench.errors import PluginError, UserError

COMPONENT_ATTR = "__zsbench_component__"
NESTED = "zsbench_component"  # field metadata: the kind of component an option names
UNIONS = (typing.Union, types.UnionType)  # Optional[X] and X | None


class OptionError(UserError, ValueError):
    """An option value outside what its component declares (exit 2, names option and value).

    ``option``, ``value`` and ``expected`` say which spec option failed and what it accepts (and
    ``note`` why, when a YAML reading explains it), so a spec error can name the key path;
    ``option`` is None for a check across options."""

    def __init__(self, message: str, option: str | None = None, value: Any = None, expected: str = "",
                 note: str = ""):
        super().__init__(message)
        self.option, self.value, self.expected, self.note = option, value, expected, note


class UnknownOptionError(OptionError, PluginError):
    """Option names a component does not take (``names``), with the ones it does (``known``)."""

    def __init__(self, message: str, names: list[str], known: list[str]):
        super().__init__(message, names[0], expected="")
        self.names, self.known = names, known


class MissingOptionError(OptionError):
    """Required options the spec does not give (``names``)."""

    def __init__(self, message: str, names: list[str]):
        super().__init__(message)
        self.names = names


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


def _component_value(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, (str, dict)):
        raise TypeError(value)


component_spec = Check(attrs.validators.optional(_component_value), "a name or a mapping with a `name`")


def component_option(kind: str, doc: str = "") -> Any:
    """An option whose value is a nested component of ``kind``: a registered name, ``{name: ...,
    <options>}``, or null (the implementation's default). The spec checker validates the nested
    component against its own options, and a run's code identity includes it."""
    return attrs.field(default=None, validator=component_spec, metadata={"doc": doc, NESTED: kind}, kw_only=False)


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


def type_hints(source: Any) -> dict[str, Any]:
    """Resolved annotations of an options class (empty when they cannot be resolved)."""
    try:
        return typing.get_type_hints(source)
    except Exception:  # noqa: BLE001 - unresolvable annotations: names and validators are still checked
        return {}


def matches(value: Any, hint: Any) -> bool:
    """Whether a spec value (YAML data) fits a type annotation; annotations richer than YAML's
    types are left to the validators."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in UNIONS:
        return any(matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (str, bool):
        return isinstance(value, hint)
    if origin in (list, tuple, collections.abc.Sequence) or hint in (list, tuple):
        return isinstance(value, list)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    return True


def describe_type(hint: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null"}
    if typing.get_origin(hint) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    args = typing.get_args(hint)
    if args and typing.get_origin(hint) in UNIONS:
        return " or ".join(describe_type(a) for a in args)
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def yaml_number_hint(value: Any, hint: Any) -> str:
    """Why a number-looking string is a string: YAML reads ``1e3`` (no dot) as text."""
    if not isinstance(value, str) or not matches(1.0, hint):
        return ""
    try:
        number = float(value)
    except ValueError:
        return ""
    return (f" (YAML reads {value} as text, not a number: write it with a dot and a signed exponent, "
            f"{number:.1e}, or as {number:g})")


def did_you_mean(name: Any, known: Iterable[str]) -> str:
    """" (did you mean 'x'?)" for the closest of ``known`` to a misspelled ``name``, else ""."""
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def validate(cls: type, options: Mapping[str, Any], what: str) -> Any:
    """The options object ``cls(**options)``: the one check of a component's spec options.

    In order: unknown names (``UnknownOptionError``), values of the wrong YAML type, missing
    required options (``MissingOptionError``), then the class's own validators and cross-option
    checks; each ``OptionError`` names ``what`` (e.g. ``method 'eszsl'``), the option, the value
    and what it accepts (third-party plain attrs validators included)."""
    known = [o.name for o in options_schema(cls)]
    if unknown := sorted(name for name in options if name not in known):
        raise UnknownOptionError(
            f"{what} has no option(s) {', '.join(unknown)}{did_you_mean(unknown[0], known)}; "
            f"its options are: {', '.join(known) or 'none'}", unknown, known)
    hints = type_hints(cls)
    for name, value in options.items():
        if name in hints and not matches(value, hints[name]):
            expected, note = describe_type(hints[name]), yaml_number_hint(value, hints[name])
            raise OptionError(f"{what}: option {name!r} must be {expected}, got {value!r}{note}",
                              name, value, expected, note)
    if missing := [o.name for o in options_schema(cls) if o.required and o.name not in options]:
        raise MissingOptionError(f"missing required option(s) for {what}: {', '.join(missing)}", missing)
    try:
        return cls(**options)
    except (ValueError, TypeError) as exc:
        for name, value in options.items():
            if (expected := value_problem(cls, name, value)) is not None:
                raise OptionError(f"{what}: option {name!r} must be {expected}, got {value!r}",
                                  name, value, expected) from None
        if isinstance(exc, UserError) and not isinstance(exc, OptionError):
            raise
        raise OptionError(f"{what}: {exc}") from None


def nested_kind(cls: type, name: str) -> str | None:
    """The kind of component option ``name`` of ``cls`` holds (declared with ``component_option``)."""
    field = next((f for f in attrs.fields(cls) if (f.alias or f.name) == name), None)
    return field.metadata.get(NESTED) if field is not None else None


def named_components(cls: type, options: Mapping[str, Any] | Any,
                     lookup: Callable[[str, str], type | None] | None = None) -> list[tuple[str, str]]:
    """(kind, name) of every nested component that ``options`` (spec options of ``cls``, or an
    options object) names, as ``cls`` declares them; with ``lookup(kind, name)`` giving a named
    component's options class, the components nested in those too."""
    out: list[tuple[str, str]] = []
    for field in attrs.fields(cls):
        kind, name = field.metadata.get(NESTED), field.alias or field.name
        value = options.get(name) if isinstance(options, Mapping) else getattr(options, field.name, None)
        spec = {"name": value} if isinstance(value, str) else value
        if kind is None or not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            continue
        out.append((kind, spec["name"]))
        inner = lookup(kind, spec["name"]) if lookup is not None else None
        if inner is not None:
            out += named_components(inner, {k: v for k, v in spec.items() if k != "name"}, lookup)
    return out


@attrs.frozen
class Component:
    """A declared component: its kind, name, options class and where its implementation is."""

    kind: str
    name: str
    options: type
    build: str | type  # "module:Class", or the class itself

    def load(self) -> type:
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

    def implement(self, implementation: type, checked: Any) -> Any:
        """The ``implementation`` object carrying the values of the options object ``checked``,
        which ``validate`` made: they are not checked again. The implementation subclasses the
        options class and adds behaviour only; its options, and the checks across them, belong
        to the options class."""
        if type(checked) is implementation:
            return checked
        if not (isinstance(implementation, type) and issubclass(implementation, self.options)):
            raise PluginError(f"{self.kind} {self.name!r}: its implementation {implementation!r} must subclass "
                              f"its options class {self.options.__name__}")
        names = [f.name for f in attrs.fields(self.options)]
        if attrs.has(implementation) and [f.name for f in attrs.fields(implementation)] != names:
            raise PluginError(f"{self.kind} {self.name!r}: its implementation {implementation.__name__} adds fields; "
                              f"declare every option on {self.options.__name__}")
        obj = object.__new__(implementation)
        for name in names:
            object.__setattr__(obj, name, getattr(checked, name))
        return obj


def component(kind: str, name: str, build: str | type | None = None):
    """Class decorator: declare an attrs options class as the ``kind`` named ``name``.

    ``build`` is the implementation, a subclass of the options class that adds behaviour:
    ``"module:Class"`` (imported on first build) or the class. A method or calibrator is the
    implementation object; an encoder, loss or data set is what its ``build(context)`` (data sets:
    ``build(root)``) returns. Without ``build`` the options class itself is the implementation.
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
