"""Running the ``zsbench`` CLI from tests, writing the specs they run, and reading its messages."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import textwrap
from pathlib import Path

ZSBENCH = [sys.executable, "-c", "from zsbench.cli import main; main()"]


def zsbench(*args, env=None) -> subprocess.CompletedProcess:
    """Run the CLI's ``main`` in-process (fast), capturing what a terminal would show."""
    from zsbench.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


SMALL = """
name: cli-small
seeds: 2
datasets:
  - name: synthetic
methods:
  - name: eszsl
    calibrators: [none, calibrated-stacking]
"""


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


ONE_RUN = """
name: faults
seeds: 1
datasets:
  - name: toy
methods:
  - name: least-squares
    grid: {ridge: [1.0]}
"""


def one_paragraph(result) -> str:
    assert "Traceback" not in result.stderr + result.stdout
    return " ".join(result.stderr.split())
