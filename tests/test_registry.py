from __future__ import annotations

import types
import warnings

import pytest

import zsbench
from zsbench.errors import PluginError
from zsbench.registry import PluginWarning, Registry


def plugin(**hooks) -> types.ModuleType:
    module = types.ModuleType("fake_plugin")
    for name, fn in hooks.items():
        setattr(module, name, zsbench.hookimpl(fn))
    return module


def make(name: str):
    def factory(alpha: float = 1.0, *, kind: str = "x"):
        """Builds a thing for tests."""
        return (name, alpha, kind)

    return factory


def test_register_and_build_and_filter():
    def register_losses(register):
        register("hinge", make("hinge"))
        register("hinge-squared", make("hinge2"))
        register("softmax", make("softmax"))

    reg = Registry([("mine", plugin(register_losses=register_losses), "dist", "1.0")])
    assert reg.build("loss", "hinge", alpha=2.0) == ("hinge", 2.0, "x")
    assert [e.name for e in reg.list("loss", "hinge*")] == ["hinge", "hinge-squared"]
    entry = reg.get("loss", "softmax")
    assert (entry.plugin, entry.distribution, entry.version) == ("mine", "dist", "1.0")
    assert entry.description == "Builds a thing for tests."
    assert sorted(entry.options()) == ["alpha", "kind"]


def test_an_unknown_option_names_the_known_ones_and_injected_arguments_pass():
    def register_datasets(register):
        register("folder", lambda root, *, size=1: (root, size))

    def register_losses(register):
        register("hinge", make("hinge"))
        register("open", lambda **options: options)

    reg = Registry([("p", plugin(register_losses=register_losses, register_datasets=register_datasets), None, None)])
    with pytest.raises(PluginError, match=r"loss 'hinge' has no option\(s\) alpah, beta; its options are: alpha, kind"):
        reg.build("loss", "hinge", alpah=2.0, beta=1)
    assert reg.build("dataset", "folder", root="/data", size=3) == ("/data", 3)
    assert reg.build("loss", "open", anything=1) == {"anything": 1}


def test_unknown_name_lists_known_ones():
    reg = Registry([("p", plugin(register_losses=lambda register: register("hinge", make("h"))), None, None)])
    with pytest.raises(PluginError, match=r"unknown loss 'hnge'; known losses: hinge"):
        reg.get("loss", "hnge")


def test_duplicate_names_name_both_plugins_and_disable_only_the_second_entry():
    a = plugin(register_methods=lambda register: register("same", make("a")))

    def register_b(register):
        register("same", make("b"))
        register("other", make("other"))

    b = plugin(register_methods=register_b)
    both = [("first", a, None, None), ("second", b, None, None)]
    clash = r"'same' is registered twice: by plugin 'first'.*by plugin 'second'.*'same' is disabled"
    with pytest.warns(PluginWarning, match=clash):
        reg = Registry(both)
    assert reg.build("method", "same") == ("a", 1.0, "x")  # the first keeps it
    assert reg.names("method") == ["other", "same"]  # the clashing plugin's other entries stay
    with pytest.raises(PluginError, match=clash):
        Registry(both, strict=True)


def broken_register(register):
    raise RuntimeError("boom")


def test_broken_plugin_warns_and_the_rest_still_works():
    good = plugin(register_methods=lambda register: register("ok", make("ok")))
    bad = plugin(register_methods=broken_register)
    with pytest.warns(PluginWarning, match=r"plugin 'bad' failed in register_methods: RuntimeError: boom"):
        reg = Registry([("bad", bad, None, None), ("good", good, None, None)])
    assert reg.names("method") == ["ok"]
    assert any("boom" in p for p in reg.problems)


def test_strict_turns_a_broken_plugin_into_an_error():
    with pytest.raises(PluginError, match="boom"):
        Registry([("bad", plugin(register_methods=broken_register), None, None)], strict=True)


def test_undecorated_functions_are_not_hooks():
    module = types.ModuleType("plain")
    module.register_methods = lambda register: register("sneaky", make("s"))
    reg = Registry([("plain", module, None, None)])
    assert reg.names("method") == []


def test_first_party_plugins_come_from_entry_points():
    with warnings.catch_warnings():
        warnings.simplefilter("error", PluginWarning)
        reg = Registry.from_entry_points(strict=True)
    cal = reg.get("calibrator", "metric-rescaling")
    assert cal.distribution == "zsbench" and cal.plugin == "calibrators"


def test_entry_point_that_fails_to_import_warns(monkeypatch):
    import importlib.metadata as md

    broken = md.EntryPoint(name="broken", value="zsbench_no_such_module", group="zsbench")
    real = md.entry_points

    def fake_entry_points(group=None, **kw):
        eps = list(real(group=group)) if group else []
        return md.EntryPoints([*eps, broken]) if group == "zsbench" else real(group=group, **kw)

    monkeypatch.setattr(md, "entry_points", fake_entry_points)
    with pytest.warns(PluginWarning, match=r"plugin 'broken' \(zsbench_no_such_module\) failed to import"):
        reg = Registry.from_entry_points(strict=False)
    assert "metric-rescaling" in reg.names("calibrator")
    with pytest.raises(PluginError, match="failed to import"):
        Registry.from_entry_points(strict=True)
