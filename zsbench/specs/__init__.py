"""The benchmark specs shipped with zsbench, found by name (``zsbench run demo``)."""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path

from zsbench.errors import SpecError


def names() -> list[str]:
    """The shipped specs' names (file names without ``.yaml``)."""
    return sorted(p.name[: -len(".yaml")] for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml"))


def packaged(name: str) -> Path:
    """The shipped spec ``name`` (``demo`` or ``demo.yaml``); anything else is a ``SpecError``
    that lists the shipped specs."""
    stem = name[: -len(".yaml")] if name.endswith(".yaml") else name
    if stem in names():
        return Path(str(resources.files(__name__) / f"{stem}.yaml"))
    close = difflib.get_close_matches(Path(stem).name, names(), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise SpecError(name, "", f"no such spec file, and no spec of that name ships with zsbench{hint} "
                              f"(shipped specs: {', '.join(names())}; `zsbench specs` lists them)")
