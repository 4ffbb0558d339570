from __future__ import annotations

import types
import warnings

import attrs
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
    with pytest.raises(PluginError, match=r"loss 'hinge' has no option\(s\) alpah, beta \(did you mean 'alpha'\?\); its options are: alpha, kind"):
        reg.build("loss", "hinge", alpah=2.0, beta=1)
    assert reg.build("dataset", "folder", root="/data", size=3) == ("/data", 3)
    assert reg.build("loss", "open", anything=1) == {"anything": 1}


def test_unknown_name_lists_known_ones():
    reg = Registry([("p", plugin(register_losses=lambda register: register("hinge", make("h"))), None, None)])
    with pytest.raises(PluginError, match=r"unknown loss 'hnge' \(did you mean 'hinge'\?\); known losses: hinge"):
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


def _declared_plugin(tmp_path, monkeypatch):
    """A plugin whose implementation lives in a module that must not be imported until build."""
    (tmp_path / "heavy_impl_for_test.py").write_text(
        "import attrs\nfrom light_decl_for_test import WidgetOptions\n\n"
        "@attrs.frozen\nclass Widget(WidgetOptions):\n    pass\n"
    )
    (tmp_path / "light_decl_for_test.py").write_text(
        "import attrs\nimport zsbench\n\n"
        "@zsbench.component('method', 'widget', build='heavy_impl_for_test:Widget')\n"
        "@attrs.frozen\nclass WidgetOptions:\n"
        "    '''A widget for tests.'''\n"
        "    size: int = zsbench.option(3, zsbench.integer(1), doc='how big')\n"
        "    tilt: float = zsbench.option(0.0, attrs.validators.ge(0), doc='plain attrs validator')\n\n"
        "@zsbench.hookimpl\ndef register_methods(register):\n    register(WidgetOptions)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import light_decl_for_test

    return light_decl_for_test


def test_a_declared_component_is_imported_only_on_build(tmp_path, monkeypatch):
    import sys

    module = _declared_plugin(tmp_path, monkeypatch)
    reg = Registry([("decl", module, "d", "1")])
    entry = reg.get("method", "widget")
    assert entry.description == "A widget for tests."
    assert [(o.name, o.default, o.constraint, o.doc) for o in entry.schema()] == [
        ("size", 3, "an integer >= 1", "how big"), ("tilt", 0.0, ">= 0", "plain attrs validator")]
    assert "heavy_impl_for_test" not in sys.modules  # listing and checking import nothing heavy
    built = reg.build("method", "widget", size=5)
    assert "heavy_impl_for_test" in sys.modules and type(built).__name__ == "Widget" and built.size == 5


@pytest.mark.parametrize(("options", "message"), [
    ({"size": 0}, "method 'widget': option 'size' must be an integer >= 1, got 0"),
    ({"size": True}, "method 'widget': option 'size' must be an integer, got True"),  # the type, as validate says
    ({"tilt": -1.0}, "method 'widget': option 'tilt' must be >= 0, got -1.0"),
    ({"sise": 2}, r"method 'widget' has no option\(s\) sise \(did you mean 'size'\?\); its options are: size, tilt"),
])
def test_declared_options_are_range_checked_on_build(tmp_path, monkeypatch, options, message):
    reg = Registry([("decl", _declared_plugin(tmp_path, monkeypatch), None, None)])
    with pytest.raises(zsbench.UserError, match=message):
        reg.build("method", "widget", **options)


def test_a_declaration_registered_under_the_wrong_hook_is_a_plugin_problem(tmp_path, monkeypatch):
    module = _declared_plugin(tmp_path, monkeypatch)
    wrong = plugin(register_losses=lambda register: register(module.WidgetOptions))
    with pytest.warns(PluginWarning, match="method 'widget' registered as a loss"):
        Registry([("wrong", wrong, None, None)])


def _counted_plugin(calls: list):
    """A method whose one option's validator records each check, and a composed method whose
    nested components are declared (``critic``) or merely named like one (``aux_loss``)."""

    def counted(instance, attribute, value):
        calls.append(value)

    @attrs.frozen
    class CountedOptions:
        size: int = zsbench.option(1, counted)

    @attrs.frozen
    class Counted(CountedOptions):
        def fit(self, data, context):
            raise NotImplementedError

    zsbench.component("method", "counted", build=Counted)(CountedOptions)

    @zsbench.component("loss", "hinge")
    @attrs.frozen
    class HingeOptions:
        margin: float = zsbench.option(1.0, zsbench.gt(0))

    @zsbench.component("method", "composed")
    @attrs.frozen
    class ComposedOptions:
        critic: dict | str | None = zsbench.component_option("loss")
        aux_loss: dict | None = zsbench.option(None)

    def register_methods(register):
        register(CountedOptions)
        register(ComposedOptions)

    return plugin(register_methods=register_methods, register_losses=lambda register: register(HingeOptions))


def test_a_spec_entry_is_validated_once_into_the_object_the_component_is():
    calls: list = []
    reg = Registry([("p", _counted_plugin(calls), None, None)])
    built = reg.build("method", "counted", size=4)
    assert type(built).__name__ == "Counted" and built.size == 4
    assert calls == [4]  # checked once; the implementation is not checked again


def test_nested_components_are_the_options_declared_as_components_not_guessed_from_names():
    from zsbench.schema import named_components
    from zsbench.spec import parse_spec

    reg = Registry([("p", _counted_plugin([]), None, None),
                    ("d", plugin(register_datasets=lambda register: register("toy", lambda root=None: root)), None, None)])
    entry = reg.get("method", "composed")
    options = {"critic": {"name": "hinge", "margin": 2.0}, "aux_loss": {"name": "not-a-loss"}}
    assert named_components(entry.options_class, options) == [("loss", "hinge")]
    assert named_components(entry.options_class, {"critic": "hinge"}) == [("loss", "hinge")]
    raw = {"name": "t", "datasets": [{"name": "toy"}],
           "methods": [{"name": "m", "method": "composed", "critic": {"name": "hinge", "margin": -1.0}}]}
    with pytest.raises(zsbench.SpecError, match=r"methods\[0\]\.critic\.margin: expected a number > 0, got -1.0"):
        parse_spec(raw, "bench.yaml", reg)


def test_an_implementation_that_adds_options_is_refused():
    @zsbench.component("method", "grown")
    @attrs.frozen
    class GrownOptions:
        size: int = zsbench.option(1)

    @attrs.frozen
    class Grown(GrownOptions):
        extra: int = 0

    declared = zsbench.schema.declared(GrownOptions)
    with pytest.raises(PluginError, match="adds fields; declare every option on GrownOptions"):
        declared.implement(Grown, GrownOptions(size=2))
