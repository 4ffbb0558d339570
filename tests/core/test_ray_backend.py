"""The Ray backend against the local one, on one local Ray instance (2 CPUs) for the module.

This module is also a plugin: its ``flaky`` method fails a set number of times, writing one line
per failed attempt to a file, so retries are counted across worker processes. Workers import it
(and ``toy_plugin``) by name, through the PYTHONPATH of the instance's runtime_env.
"""

from __future__ import annotations

import contextlib
import importlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from support.paths import TESTS

import zsbench
from zsbench import api
from zsbench.errors import DataError, UserError
from zsbench.registry import Registry
from zsbench.runner.backends.ray import RayBackend, plugin_refs
from zsbench.runner.grid import LocalBackend, plan, run_spec
from zsbench.spec import parse_spec
from zsbench.store.sqlite import ResultStore

# This module is a plugin ("ray-test") that Ray workers and drivers import by name, next to
# toy_plugin and support in the test folder.
SEARCH = [str(Path(__file__).resolve().parent), str(TESTS)]
COMPARED = ("dataset", "method", "calibrator", "seed", "u", "s", "H", "zsl", "calibration_param", "hyperparameters")
SAME = {
    "name": "ray-same",
    "seeds": 2,
    "datasets": [{"name": "toy"}],
    "methods": [{"name": "ls", "method": "least-squares", "calibrators": ["none", "metric-rescaling"]}],
}


class Flaky:
    """Fails its first ``failures`` fits (every fit when negative), then fits like least-squares."""

    def __init__(self, counter: str, failures: int, user_error: bool):
        self.counter, self.failures, self.user_error = Path(counter), failures, user_error

    def fit(self, data: zsbench.FitData, context: zsbench.RunContext):
        failed = len(self.counter.read_text().splitlines()) if self.counter.exists() else 0
        if self.failures < 0 or failed < self.failures:
            with self.counter.open("a") as f:
                f.write("failed\n")
            raise (UserError if self.user_error else RuntimeError)(f"flaky failure {failed + 1}")
        return importlib.import_module("toy_plugin").LeastSquares().fit(data, context)


def flaky(counter: str, failures: int = -1, user_error: bool = False) -> Flaky:
    """Least-squares that fails a set number of times first (tests)."""
    return Flaky(counter, failures, user_error)


class DiesOnce:
    """Kills its worker process in the middle of its first fit (``counter`` marks it), then fits."""

    def __init__(self, counter: str):
        self.counter = Path(counter)

    def fit(self, data: zsbench.FitData, context: zsbench.RunContext):
        if not self.counter.exists():
            self.counter.write_text("died\n")
            os._exit(1)
        return importlib.import_module("toy_plugin").LeastSquares().fit(data, context)


class Announces:
    """Writes ``marker`` when its fit starts, then takes ``seconds`` to fit like least-squares."""

    def __init__(self, marker: str, seconds: float = 0.0):
        self.marker, self.seconds = Path(marker), seconds

    def fit(self, data: zsbench.FitData, context: zsbench.RunContext):
        self.marker.touch()
        time.sleep(self.seconds)
        return importlib.import_module("toy_plugin").LeastSquares().fit(data, context)


def waits(root: Path, waits_for: str | None = None, missing: bool = False) -> zsbench.DatasetBundle:
    """The toy data set, loaded once ``waits_for`` exists (a minute at most); with ``missing``,
    then a data error naming a file of ``root``."""
    deadline = time.monotonic() + 60
    while waits_for and not Path(waits_for).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{waits_for} was never written")
        time.sleep(0.1)
    if missing:
        raise DataError(Path(root) / "features.mat", "feature file not found (the `features` option)")
    return importlib.import_module("toy_plugin").toy_bundle()


@zsbench.hookimpl
def register_methods(register):
    register("flaky", flaky)
    register("dies-once", DiesOnce)
    register("announces", Announces)


@zsbench.hookimpl
def register_datasets(register):
    register("waits", waits)


@pytest.fixture
def registry():
    extra = [("toy", importlib.import_module("toy_plugin"), None, None), ("ray-test", sys.modules[__name__], None, None)]
    return Registry.from_entry_points(extra=extra)


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory):
    ray = pytest.importorskip("ray")
    cache = tmp_path_factory.mktemp("ray-cache")  # workers never touch a user's cache either
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(SEARCH), "ZSBENCH_CACHE": str(cache)}},
    )
    yield ray
    ray.shutdown()


def _run(spec, registry, backend, path, on_done=None):
    with ResultStore(path) as store:
        done, skipped, failures = run_spec(parse_spec(spec, "ray.yaml", registry), store, backend, on_done=on_done)
        return done, skipped, failures, store.rows()


def _compared(rows):
    return sorted(tuple(r[k] for k in COMPARED) for r in rows)


class Interrupt(Exception):
    pass


@pytest.mark.slow
def test_same_rows_as_local_and_an_interrupted_run_resumes(ray_instance, registry, tmp_path):
    local = _run(SAME, registry, LocalBackend(registry, torch.device("cpu"), show_progress=False), tmp_path / "local.sqlite")[3]

    def interrupt(task, outcome):
        raise Interrupt  # the driver stops right after storing its first finished task

    backend = RayBackend(registry, device="cpu")
    with pytest.raises(Interrupt):
        _run(SAME, registry, backend, tmp_path / "ray.sqlite", on_done=interrupt)
    done, skipped, failures, rows = _run(SAME, registry, backend, tmp_path / "ray.sqlite")
    assert len(done) == 1 and len(skipped) == 1 and not failures
    assert len(local) == len(rows) == 4  # 2 seeds x 2 calibrators
    assert _compared(rows) == _compared(local)
    counts = {(r["seed"], r["calibrator"]): r["provenance"]["counts"] for r in local}  # the header's sizes
    assert {(r["seed"], r["calibrator"]): r["provenance"]["counts"] for r in rows} == counts


@pytest.mark.slow
def test_failures_are_retried_then_reported_and_the_rest_is_stored(ray_instance, registry, tmp_path):
    counters = {name: tmp_path / f"{name}.count" for name in ("broken", "recovers", "refused")}
    spec = {
        "name": "ray-failures",
        "seeds": [0],
        "datasets": [{"name": "toy"}],
        "methods": [
            {"name": "ls", "method": "least-squares", "grid": {"ridge": [1.0]}},
            {"name": "broken", "method": "flaky", "counter": str(counters["broken"])},
            {"name": "recovers", "method": "flaky", "counter": str(counters["recovers"]), "failures": 1},
            {"name": "refused", "method": "flaky", "counter": str(counters["refused"]), "user_error": True},
        ],
    }
    backend = RayBackend(registry, device="cpu", max_retries=2)
    done, skipped, failures, rows = _run(spec, registry, backend, tmp_path / "r.sqlite")
    attempts = {name: len(path.read_text().splitlines()) for name, path in counters.items()}
    assert attempts == {"broken": 3, "recovers": 1, "refused": 1}  # retried twice; a UserError is not retried
    assert sorted(t.method.label for t in done) == ["ls", "recovers"] and not skipped
    by_method = {f.task.method.label: f for f in failures}
    assert sorted(by_method) == ["broken", "refused"]
    assert "flaky failure 3" in by_method["broken"].message and "3 attempts" in by_method["broken"].message
    assert not by_method["broken"].user_error
    assert by_method["refused"].user_error and by_method["refused"].message == "flaky failure 1"
    assert sorted(r["method"] for r in rows) == ["ls", "recovers"]

    done, skipped, failures, again = _run(spec, registry, backend, tmp_path / "r.sqlite")
    assert not done and sorted(t.method.label for t in skipped) == ["ls", "recovers"]
    assert sorted(f.task.method.label for f in failures) == ["broken", "refused"]
    assert again == rows
    assert len(counters["recovers"].read_text().splitlines()) == 1  # finished rows were not rerun


@pytest.mark.slow
def test_in_process_components_run_on_ray_with_the_local_rows(ray_instance, tmp_path, monkeypatch):
    """A method class and a data set defined in this function (no worker can import them) reach
    the workers by value and give the local backend's rows."""
    from toy_plugin import LeastSquares, toy_bundle

    class CellRidge(LeastSquares):
        """Least squares, as a notebook cell would subclass it."""

    monkeypatch.setattr(api, "_session", {})
    api.register(lambda root=None: toy_bundle(), name="cell-toy", kind="dataset")
    spec = {**SAME, "name": "ray-in-process", "datasets": [{"name": "cell-toy"}],
            "methods": [{**SAME["methods"][0], "method": "CellRidge"}]}
    api.register(CellRidge)
    local = api.run(spec, tmp_path / "local.sqlite", device="cpu", quiet=True)
    on_ray = api.run(spec, tmp_path / "ray.sqlite", device="cpu", backend="ray", quiet=True)
    assert not local.failures and not on_ray.failures
    assert len(on_ray.rows) == 4 and all("ray_node" in r["provenance"] for r in on_ray.rows)
    assert _compared(on_ray.rows) == _compared(local.rows)


@pytest.mark.slow
def test_workers_run_a_data_set_while_the_next_loads_and_its_load_error_keeps_them(ray_instance, registry, tmp_path):
    """The second data set loads only once a task of the first has started on a worker (a minute
    at most), then fails: the first one's runs, still on the workers, are finished and stored
    before the data error is raised."""
    marker = tmp_path / "a-started"
    spec = {"name": "ray-order", "seeds": 2,
            "methods": [{"name": "slow", "method": "announces", "marker": str(marker), "seconds": 2.0}],
            "datasets": [{"name": "a", "plugin": "waits", "root": str(tmp_path / "a")},
                         {"name": "b", "plugin": "waits", "root": str(tmp_path / "b"), "waits_for": str(marker),
                          "missing": True}]}
    with ResultStore(tmp_path / "r.sqlite") as store:
        with pytest.raises(DataError, match=r"b/features\.mat: feature file not found"):
            run_spec(parse_spec(spec, "ray.yaml", registry), store, RayBackend(registry, device="cpu"))
        assert sorted((r["dataset"], r["seed"]) for r in store.rows()) == [("a", 0), ("a", 1)]


def test_plugins_travel_by_module_name(registry):
    refs = {name: module for name, module, _, _ in plugin_refs(registry)}
    assert refs["toy"] == "toy_plugin" and refs["ray-test"] == __name__
    assert refs["calibrators"] == "zsbench_calibrators"


def test_without_ray_installed_the_error_says_how_to_get_it(registry, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    task = plan(parse_spec(SAME, "ray.yaml", registry))[0]
    with pytest.raises(UserError, match=r"pip install 'zsbench\[ray\]'"):
        list(RayBackend(registry).run([task]))


@pytest.mark.parametrize(
    "options, cluster, gpus",
    [
        ({}, {"CPU": 2}, 0),
        ({}, {"CPU": 2, "GPU": 2}, 1),  # auto takes a GPU when the cluster has one
        ({"device": "cpu"}, {"CPU": 2, "GPU": 2}, 0),
        ({"device": "cuda:1"}, {"CPU": 2}, 1),
        ({"num_gpus_per_task": 0.25}, {"CPU": 2, "GPU": 1}, 0.25),
    ],
)
def test_gpus_per_task_follow_the_device(registry, options, cluster, gpus):
    assert RayBackend(registry, **options)._task_gpus(cluster) == gpus


@pytest.mark.parametrize(
    "options, message",
    [
        ({"num_cpus_per_task": 0}, "num_cpus_per_task must be a positive number"),
        ({"num_cpus_per_task": float("inf")}, "num_cpus_per_task must be a positive number"),
        ({"num_gpus_per_task": float("nan")}, "fraction of one GPU or a whole number"),
        ({"num_gpus_per_task": 1.5}, "fraction of one GPU or a whole number"),
        ({"max_retries": -1}, "non-negative integer"),
        ({"device": "mps"}, "'auto', 'cpu', 'cuda' or 'cuda:N'"),
    ],
)
def test_bad_settings_are_user_errors(registry, options, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        RayBackend(registry, **options)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("args, message", [
    (["--cpus-per-task", "0"], "--cpus-per-task must be a positive number, got 0.0"),
    (["--cpus-per-task", "nan"], "--cpus-per-task must be a positive number, got nan"),
    (["--gpus-per-task", "1.5"], "--gpus-per-task must be 0, a fraction of one GPU or a whole number of GPUs"),
    (["--device", "mps"], "--device: device 'mps': the ray backend takes"),
    (["--address", "127.0.0.1:{port}"], "cannot reach a Ray cluster at '127.0.0.1:{port}'"),
])
def test_cli_ray_flag_errors_name_the_flag_and_exit_2(registry, monkeypatch, tmp_path, capsys, args, message):
    """Not the spec's device key; and an unreachable address is refused at once, before any data
    set is loaded (Ray's own connection attempts last minutes)."""
    from zsbench.cli import main

    monkeypatch.setattr("zsbench.cli.get_registry", lambda strict=None: registry)
    port = _closed_port()
    spec = tmp_path / "spec.yaml"
    spec.write_text(json.dumps({**SAME, "device": "cpu"}))
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(spec), "--backend", "ray", "--results", str(tmp_path / "r.sqlite"),
              *(a.format(port=port) for a in args)])
    err = " ".join(capsys.readouterr().err.split())
    assert exit_.value.code == 2 and message.format(port=port) in err
    assert "spec.yaml: device" not in err and "Traceback" not in err
    assert not (tmp_path / "r.sqlite").exists()


def test_a_task_too_large_for_the_local_instance_is_refused(registry):
    backend = RayBackend(registry, device="cuda")
    with pytest.raises(UserError, match="asks for 1 GPU"):
        backend._check_fits({"CPU": 2}, backend._task_gpus({"CPU": 2}))
    with pytest.raises(UserError, match="needs a GPU per task"):
        RayBackend(registry, device="cuda", num_gpus_per_task=0)._task_gpus({"CPU": 2})


# ---------------------------------------------------------------- a local instance stays local

DRIVER = """
import json, os, sys, time
sys.path[:0] = {tests!r}
import importlib
from zsbench.runner.backends.ray import RayBackend
from zsbench.registry import Registry
from zsbench.runner.grid import run_spec
from zsbench.spec import parse_spec
from zsbench.store.sqlite import ResultStore
from support.processes import descendants, listening_sockets

registry = Registry.from_entry_points(extra=[("toy", importlib.import_module("toy_plugin"), None, None)])
spec = parse_spec({{"name": "loopback", "seeds": 2, "datasets": [{{"name": "toy"}}],
                   "methods": [{{"name": "least-squares"}}]}}, "loopback.yaml", registry)

def during(task, outcome):  # while the instance runs: every socket its processes listen on
    pids = descendants(os.getpid())
    with open({out!r}, "w") as f:
        json.dump({{"pids": sorted(pids), "listening": listening_sockets(pids | {{os.getpid()}})}}, f)
    if {kill!r}:
        time.sleep(600)  # the test kills this driver with SIGKILL now

if {in_init!r}:  # the instance is up, ray.init has not returned: the test kills the driver here
    import ray
    real_init = ray.init
    def slow_init(*args, **kwargs):
        real_init(*args, **kwargs)
        during(None, None)
    ray.init = slow_init

with ResultStore({db!r}) as store:
    run_spec(spec, store, RayBackend(registry, device="cpu", {dashboard}), on_done=during)
"""


def _loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.rsplit(":", 1)[0])
    return ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)


def _names(pids) -> list[str]:
    names = []
    for p in pids:
        with contextlib.suppress(OSError):
            names.append(Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120])
    return names


def _gone(pids, seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {p for p in alive if Path(f"/proc/{p}").exists()
                 and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"}
        time.sleep(0.5)
    return alive


@pytest.mark.slow
@pytest.mark.parametrize("kill, in_init", [(False, False), (True, False), (True, True)],
                         ids=["driver exits", "driver killed", "driver killed in ray.init"])
def test_a_local_instance_listens_on_loopback_only_and_dies_with_its_driver(tmp_path, kill, in_init):
    pytest.importorskip("ray")
    out = tmp_path / "sockets.json"
    code = DRIVER.format(tests=SEARCH, out=str(out), kill=kill, db=str(tmp_path / "r.sqlite"), dashboard="",
                         in_init=in_init)
    env = dict(os.environ, ZSBENCH_CACHE=str(tmp_path / "cache"))
    driver = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not out.exists() and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(0.5)
    seen = json.loads(out.read_text()) if out.exists() else None
    if kill:
        driver.send_signal(signal.SIGKILL)
    log = driver.communicate(timeout=300)[0].decode(errors="replace")
    assert seen is not None, log
    assert seen["listening"], "no listening socket found: the check would pass vacuously"
    outside = [a for a in seen["listening"] if not _loopback(a)]
    assert outside == [], f"listening beyond loopback: {outside}"
    assert not any(a.endswith(":8265") for a in seen["listening"])  # no dashboard unless asked
    left = _gone(seen["pids"], 60)
    assert left == set(), f"Ray processes outlived their driver: {_names(left)}"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_device_a_worker_lacks_is_named_by_where_it_was_given(registry):
    from zsbench.runner.backends.ray import _Refused, _run_task

    task = plan(parse_spec(SAME, "ray.yaml", registry))[0]
    refused = _run_task(task, None, plugin_refs(registry), False, "cuda", "ray.yaml: device")
    assert refused == _Refused("ray.yaml: device: device 'cuda' was asked for, but torch sees no CUDA "
                               "device here; use 'auto' or 'cpu'")


# ---------------------------------------------------------------- a two-node cluster started with `ray start`

CLUSTER_DRIVER = """
import importlib, json, sys, time
sys.path[:0] = {tests!r}
import ray
import torch
from zsbench.runner.backends.ray import RayBackend
from zsbench.registry import Registry
from zsbench.runner.grid import LocalBackend, run_spec
from zsbench.spec import parse_spec
from zsbench.store.sqlite import ResultStore

registry = Registry.from_entry_points(extra=[("toy", importlib.import_module("toy_plugin"), None, None),
                                             ("ray-test", importlib.import_module("test_ray_backend"), None, None)])
spec = parse_spec(json.loads({spec!r}), "cluster.yaml", registry)
out = {{}}
for name, backend in (("ray", RayBackend(registry, address={address!r}, device="cpu", max_retries=2)),
                      ("local", LocalBackend(registry, torch.device("cpu"), show_progress=False))):
    with ResultStore({folder!r} + "/" + name + ".sqlite") as store:
        outcome = run_spec(spec, store, backend)
        out[name] = {{"failures": [f.message for f in outcome.failures], "rows": store.rows()}}
        if name == "ray":  # the cluster, as the driver saw it: node address -> custom resources
            ray.init(address={address!r})
            out["nodes"] = {{n["NodeManagerAddress"]: sorted(n["Resources"]) for n in ray.nodes() if n["Alive"]}}
            ray.shutdown()
with open({folder!r} + "/out.json", "w") as f:
    json.dump(out, f)
"""

WAIT_FOR_NODES = """
import sys, time, ray
ray.init(address=sys.argv[1])
deadline = time.monotonic() + 120
while sum(n["Alive"] for n in ray.nodes()) < 2 and time.monotonic() < deadline:
    time.sleep(1)
sys.exit(0 if sum(n["Alive"] for n in ray.nodes()) >= 2 else 1)
"""


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _end(processes: list[subprocess.Popen]) -> None:
    """SIGTERM the `ray start --block` processes (Ray stops its own), then SIGKILL whatever of
    their trees is left: every process a test started, and no other."""
    from zsbench.runner.backends.reaper import _still
    from zsbench.runner.backends.reaper import descendants as tree

    known: dict[int, str] = {}
    for p in processes:
        known.update(tree(p.pid))
    for p in processes:
        if p.poll() is None:
            p.terminate()
    for p in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=30)
    for pid in _still(known):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    for p in processes:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.fixture
def two_node_cluster(tmp_path):
    """A head (127.0.0.2) and a worker node (127.0.0.3) on this machine, one CPU each and a resource
    label each, started with `ray start` as on a real cluster; ended whatever the test does."""
    pytest.importorskip("ray")
    import tempfile

    temp = Path(tempfile.mkdtemp(prefix="zsr-", dir="/tmp"))  # short: Ray's socket paths live under it
    port, client = _free_port("127.0.0.2"), _free_port("127.0.0.2")
    address = f"127.0.0.2:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="disabled", PYTHONPATH=os.pathsep.join([*SEARCH, *(p for p in sys.path if p)]),
               ZSBENCH_CACHE=str(tmp_path / "node-cache"))
    ray_cli = [str(Path(sys.executable).with_name("ray")), "start", "--block", "--num-cpus=1", "--disable-usage-stats"]
    processes: list[subprocess.Popen] = []
    logs = []
    try:
        for args, label in ((["--head", f"--port={port}", "--node-ip-address=127.0.0.2", "--include-dashboard=false",
                              f"--ray-client-server-port={client}", f"--temp-dir={temp}"], "zsbench-head"),
                            ([f"--address={address}", "--node-ip-address=127.0.0.3"], "zsbench-worker")):
            logs.append((tmp_path / f"{label}.log").open("wb"))
            processes.append(subprocess.Popen([*ray_cli, *args, f"--resources={json.dumps({label: 1})}"], env=env,
                                              stdin=subprocess.DEVNULL, stdout=logs[-1], stderr=subprocess.STDOUT))
            if label == "zsbench-head":
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline and processes[0].poll() is None:
                    with contextlib.suppress(OSError):
                        socket.create_connection(("127.0.0.2", port), timeout=1).close()
                        break
                    time.sleep(1)
        waited = subprocess.run([sys.executable, "-c", WAIT_FOR_NODES, address], env=env, timeout=300,
                                capture_output=True, text=True)
        assert waited.returncode == 0, "the two nodes did not come up: " + waited.stderr[-2000:] + "".join(
            (tmp_path / f"{n}.log").read_text(errors="replace")[-2000:] for n in ("zsbench-head", "zsbench-worker"))
        yield address
    finally:
        _end(processes)
        for log in logs:
            log.close()
        import shutil

        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_a_two_node_cluster_runs_a_spec_on_both_nodes_with_the_local_rows(two_node_cluster, tmp_path):
    """Tasks land on both nodes (each row names its node), a worker killed mid-task is retried and
    stored once, the driver alone writes, and the rows equal the local backend's."""
    counter = tmp_path / "died"
    spec = {"name": "cluster", "seeds": 2, "datasets": [{"name": "toy"}],
            "methods": [{"name": "ls", "method": "least-squares", "calibrators": ["none", "metric-rescaling"]},
                        {"name": "dies", "method": "dies-once", "counter": str(counter)}]}
    code = CLUSTER_DRIVER.format(tests=SEARCH, spec=json.dumps(spec), address=two_node_cluster,
                                 folder=str(tmp_path))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | {"RAY_AUTH_MODE": "disabled"}
    driver = subprocess.run([sys.executable, "-c", code], env=dict(env, ZSBENCH_CACHE=str(tmp_path / "driver-cache")),
                            capture_output=True, text=True, timeout=900)
    assert driver.returncode == 0, driver.stderr[-4000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["nodes"] == {"127.0.0.2": sorted(out["nodes"]["127.0.0.2"]), "127.0.0.3": sorted(out["nodes"]["127.0.0.3"])}
    assert "zsbench-head" in out["nodes"]["127.0.0.2"] and "zsbench-worker" in out["nodes"]["127.0.0.3"]
    ray_rows, local_rows = out["ray"]["rows"], out["local"]["rows"]
    assert out["ray"]["failures"] == [] == out["local"]["failures"]
    assert counter.read_text() == "died\n"  # a worker did die mid-task ...
    assert len(ray_rows) == len(local_rows) == 2 * 3  # ... and its task was retried, stored once
    assert len({(r["run_key"], r["calibrator"]) for r in ray_rows}) == len(ray_rows)
    assert _compared(ray_rows) == _compared(local_rows)
    nodes = {r["provenance"]["ray_node"].split()[0] for r in ray_rows}
    assert nodes == {"127.0.0.2", "127.0.0.3"}, nodes
    assert not list(tmp_path.glob("node-cache/**/*.sqlite"))  # workers never held a results database


def test_a_node_without_the_raw_images_refuses_the_task_saying_what_to_mount(registry, tmp_path, monkeypatch):
    import attrs
    from toy_plugin import toy_bundle

    from zsbench.runner.backends.ray import _Refused, _run_task

    monkeypatch.setattr("zsbench.runner.backends.ray._node", lambda: "127.0.0.9 (node abc)")
    images = tmp_path / "flo" / "jpg"
    bundle = toy_bundle()
    bundle = attrs.evolve(bundle, features=None, feature_name=None,
                          image_files=tuple(images / f"image_{i:05d}.jpg" for i in range(len(bundle.labels))))
    task = plan(parse_spec(SAME, "ray.yaml", registry))[0]
    refused = _run_task(task, bundle, plugin_refs(registry), False, "cpu")
    assert isinstance(refused, _Refused)
    assert refused.message.startswith(f"Ray node 127.0.0.9 (node abc): {len(bundle.labels)} of {len(bundle.labels)} "
                                      f"image file(s) of data set 'toy' are missing here (first: {images}/image_00000.jpg)")
    assert f"mount the data folder {images} at the same path on every node" in refused.message
