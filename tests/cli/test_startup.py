"""The CLI starts light and survives bad plugins.

Import discipline (not timings: benchmarks/perf_startup.py measures those): the CLI, the spec
validator and plugin registration load none of the heavy stacks. Plugin isolation: a plugin that
exits, raises, or claims a built-in's name costs a warning naming it, and an error under
``--strict``; everything else keeps working.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.paths import ROOT

HEAVY = ("torch", "scipy", "matplotlib", "datasets", "transformers", "timm", "ray", "torchvision", "pandas",
         "pyarrow")

PROBE = """
import json, sys
args = json.loads(sys.argv[1])
if args is None:
    import zsbench.cli
else:
    from zsbench.cli import main
    try:
        main(args)
        print("exit=0", file=sys.stderr)
    except SystemExit as exc:
        print(f"exit={exc.code}", file=sys.stderr)
heavy = [m for m in json.loads(sys.argv[2]) if m in sys.modules]
print("LOADED=" + json.dumps(heavy), file=sys.stderr)
"""


def probe(args: list[str] | None, extra_path: Path | None = None) -> tuple[list[str], subprocess.CompletedProcess]:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    line = next(line for line in done.stderr.splitlines() if line.startswith("LOADED="))
    return json.loads(line.removeprefix("LOADED=")), done


@pytest.mark.parametrize("args", [None, ["--help"], ["validate", "zsbench/specs/demo.yaml"], ["validate", "demo"],
                                  ["specs"], ["plugins"], ["plugins", "--json"], ["data", "--help"]])
def test_light_commands_load_no_heavy_stack(args):
    loaded, done = probe(args)
    assert "exit=0" in done.stderr or args is None, done.stderr
    assert loaded == [], f"zsbench {args}: imported {loaded}"


def test_interface_names_still_import_from_the_package():
    import zsbench
    from zsbench.interfaces import Scores

    assert zsbench.Scores is Scores
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        zsbench.Nope  # noqa: B018


def test_lazy_verbs_help_matches_their_own():
    from zsbench.cli import _attach_optional_commands, cli

    _attach_optional_commands()
    for name, (_, short) in cli.lazy.items():
        command = cli.get_command(None, name)
        assert (command.help or "").split("\n")[0].strip() == short, f"{name}: the lazy help drifted"


TOYS = {
    "toy_exits_at_import.py": "import sys\nsys.exit(3)\n",
    "toy_exits_in_hook.py": textwrap.dedent("""
        import zsbench

        @zsbench.hookimpl
        def register_methods(register):
            raise SystemExit("bye")
    """),
    "toy_clash.py": textwrap.dedent("""
        import zsbench

        def impostor(gamma: float = 1.0):
            \"\"\"Not ESZSL.\"\"\"

        def fine(ridge: float = 1.0):
            \"\"\"A third-party method that keeps working.\"\"\"

        @zsbench.hookimpl
        def register_methods(register):
            register("eszsl", impostor)
            register("toy-fine", fine)
    """),
}


@pytest.fixture
def toy_plugins(tmp_path) -> Path:
    """Three misbehaving plugins in a distribution that importlib.metadata finds on PYTHONPATH."""
    for name, text in TOYS.items():
        (tmp_path / name).write_text(text)
    dist = tmp_path / "zsbench_toys-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: zsbench-toys\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[zsbench]\n" + "".join(f"{n.removesuffix('.py')} = {n.removesuffix('.py')}\n" for n in TOYS)
    )
    return tmp_path


def test_a_misbehaving_plugin_warns_with_its_name_and_the_rest_works(toy_plugins):
    _, done = probe(["plugins", "--json"], toy_plugins)
    assert "exit=0" in done.stderr, done.stderr
    assert "plugin 'toy_exits_at_import' (toy_exits_at_import) failed to import: it called sys.exit(3)" in done.stderr
    assert "plugin 'toy_exits_in_hook' failed in register_methods: it called sys.exit('bye')" in done.stderr
    clash = ("method name 'eszsl' is registered twice: by plugin 'baselines' (zsbench_baselines.eszsl, zsbench "
             "0.1.0) and by plugin 'toy_clash' (toy_clash, zsbench-toys 0.1); plugin 'toy_clash''s method "
             "'eszsl' is disabled")
    assert clash in done.stderr
    listed = {c["name"]: c for c in json.loads(done.stdout)["components"] if c["kind"] == "method"}
    assert listed["eszsl"]["plugin"] == "baselines"  # the built-in wins
    assert listed["toy-fine"]["plugin"] == "toy_clash"  # only the clashing entry is disabled
    _, done = probe(["validate", "zsbench/specs/demo.yaml"], toy_plugins)
    assert "exit=0" in done.stderr and "ok" in done.stdout


@pytest.mark.parametrize("args", [["--strict", "plugins"], ["--strict", "validate", "zsbench/specs/demo.yaml"]])
def test_strict_makes_a_misbehaving_plugin_an_error_exit_2(toy_plugins, args):
    _, done = probe(args, toy_plugins)
    assert "exit=2" in done.stderr, done.stderr
    assert "error" in done.stderr and "Traceback" not in done.stderr
    assert "toy_" in done.stderr  # names the plugin
