"""attrs validators for method options: a bad value is the user's mistake (UserError), and the
message names the method, the option and what was expected."""

from __future__ import annotations

from typing import Any

import attrs

from zsbench.errors import UserError


def _fail(instance: Any, attribute: attrs.Attribute, value: Any, expected: str) -> None:
    method = getattr(instance, "name", type(instance).__name__)
    raise UserError(f"method {method!r}: option {attribute.name!r} must be {expected}, got {value!r}")


def positive(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        _fail(instance, attribute, value, "a number > 0")


def non_negative(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        _fail(instance, attribute, value, "a number >= 0")


def positive_int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        _fail(instance, attribute, value, "an integer >= 1")


def non_negative_int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        _fail(instance, attribute, value, "an integer >= 0")


def one_of(*choices: str):
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value not in choices:
            _fail(instance, attribute, value, "one of " + ", ".join(repr(c) for c in choices))

    return check
