"""Tasks as Ray tasks on a local or remote cluster; the driver alone writes results.

Each data set is loaded once in the driver and put once in the object store: every task gets
the same ObjectRef, so its arrays reach the workers of a node through shared memory instead of
being copied per task (raw images stay on the shared data root and are read by path). Workers
register the same plugin modules as the driver's registry, run ``grid.run_task`` and return
rows; the driver yields them as they finish, so ``run_spec`` writes, skips and resumes exactly
as with the local backend. Ray is imported only when a run starts.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import math
import os
import socket
import subprocess
import sys
import traceback
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from zsbench.errors import UserError
from zsbench.evaluation.stages import Task
from zsbench.registry import Registry
from zsbench.runner.grid import Failure, load_dataset, resolve_device, run_task
from zsbench.store.sqlite import ResultRow

# plugin name, module name (or the plugin object cloudpickled: the in-process components), distribution, version
PluginRef = tuple[str, str | bytes, str | None, str | None]


def _import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("the ray backend needs Ray: pip install 'zsbench[ray]'") from None
    return ray


@contextlib.contextmanager
def _loopback_only(ray, enabled: bool):
    """A local instance that binds 127.0.0.1 only (its GCS, raylet, workers and agents).

    Ray turns a node address of 127.0.0.1 into the machine's external one and binds there,
    unless it runs as a single-machine instance, which it does by default on macOS and Windows
    only; this asks for that mode on Linux too: ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` for the
    processes it starts, and the same setting in this already-imported driver. Guarded by
    ``tests/core/test_ray_backend.py``, which checks every listening socket of a run.
    """
    if not enabled:
        yield
        return
    from ray._private import ray_constants

    saved_env = os.environ.get(_SINGLE_MACHINE)
    saved_flag = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[_SINGLE_MACHINE] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(_SINGLE_MACHINE, None)
        else:
            os.environ[_SINGLE_MACHINE] = saved_env


_SINGLE_MACHINE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _start_reaper() -> subprocess.Popen | None:
    """A watchdog that ends the local instance's processes if this driver is killed (Linux)."""
    if not Path("/proc/self/stat").exists():
        return None
    return subprocess.Popen([sys.executable, "-m", "zsbench.runner.backends.reaper", str(os.getpid())],
                            stdin=subprocess.DEVNULL, start_new_session=True)


def _stop(reaper: subprocess.Popen | None) -> None:
    if reaper is not None:
        reaper.terminate()
        reaper.wait()


@attrs.frozen
class _Refused:
    """A task's UserError, returned instead of raised: a retry would fail the same way."""

    message: str


def _by_value(plugin: Any) -> bytes:
    """``plugin`` cloudpickled, with every imported module by name: cloudpickle's own rule misses
    modules of a ModuleType subclass (``torch.classes``, reached by any ``x.classes`` next to
    ``torch``; ``zsbench`` itself) and would try to pickle their contents."""
    import io

    import cloudpickle

    class Pickler(cloudpickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            if isinstance(obj, types.ModuleType) and sys.modules.get(obj.__name__) is obj:
                return importlib.import_module, (obj.__name__,)
            return super().reducer_override(obj)

    buffer = io.BytesIO()
    Pickler(buffer).dump(plugin)
    return buffer.getvalue()


def plugin_refs(registry: Registry) -> tuple[PluginRef, ...]:
    """The driver registry's plugins as workers load them: a module by its importable name, the
    in-process components (a plugin object, not a module) by value, so that a class defined in a
    notebook cell or a function reaches other processes too."""
    versions = {e.plugin: (e.distribution, e.version) for e in registry.list()}
    refs: list[PluginRef] = []
    for name, plugin in registry.plugin_manager.list_name_plugin():
        if not inspect.ismodule(plugin):
            try:
                refs.append((name, _by_value(plugin), *versions.get(name, (None, None))))
            except Exception as exc:  # noqa: BLE001 - whatever a component holds that cannot be pickled
                raise UserError(f"the {name} components cannot be sent to another process: "
                                f"{type(exc).__name__}: {exc}; keep unpicklable state (open files, locks, "
                                "connections) out of them, or create it inside fit") from None
            continue
        if plugin.__name__ == "__main__":
            raise UserError(
                f"plugin {name!r} is defined in the script being run; Ray workers can only load "
                "plugins from importable modules, so move it into a module (or register its "
                "components with zsbench.register)"
            )
        refs.append((name, plugin.__name__, *versions.get(name, (None, None))))
    return tuple(sorted(refs, key=lambda ref: ref[0]))


def _load_plugin(name: str, module: str | bytes) -> Any:
    if isinstance(module, bytes):
        import cloudpickle

        try:
            return cloudpickle.loads(module)
        except Exception as exc:  # noqa: BLE001 - e.g. a module a component uses is missing here
            raise UserError(f"the {name} components cannot be loaded in this worker process: "
                            f"{type(exc).__name__}: {exc}") from None
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise UserError(
            f"plugin {name!r} (module {module}) cannot be imported on a Ray worker: {exc}; "
            "install it on every node or ship it in the job's runtime_env"
        ) from None


@functools.cache
def worker_registry(plugins: tuple[PluginRef, ...], strict: bool) -> Registry:
    """Built once per worker process (a Ray worker, an audit child) and reused by every task it runs."""
    return Registry([(name, _load_plugin(name, module), dist, version) for name, module, dist, version in plugins],
                    strict=strict)


def _node() -> str:
    import ray

    return f"{ray.util.get_node_ip_address()} (node {ray.get_runtime_context().get_node_id()[:12]})"


def _missing_images(bundle) -> str | None:
    """Why this node cannot run a data set read from raw images (None when it can): the
    object store carries arrays, the images stay files that every node must see at one path."""
    if bundle.features is not None or not bundle.image_files:
        return None
    missing = [f for f in bundle.image_files if not Path(f).is_file()]
    if not missing:
        return None
    root = os.path.commonpath([str(f) for f in bundle.image_files])
    return (f"Ray node {_node()}: {len(missing)} of {len(bundle.image_files)} image file(s) of data set "
            f"{bundle.name!r} are missing here (first: {missing[0]}); raw images are read by path on each "
            f"node: mount the data folder {root} at the same path on every node (or run on features)")


def _run_task(task: Task, bundle, plugins: tuple[PluginRef, ...], strict: bool, device: str,
              device_origin: str = "device") -> list[ResultRow] | _Refused:
    """The body of every Ray task (``bundle`` arrives as the object store's shared copy);
    ``device_origin`` (the spec's file and key, or the flag) prefixes a device the worker lacks.
    Each row's provenance names the node that computed it."""
    try:
        resolved = resolve_device(device)
    except UserError as exc:
        return _Refused(f"{device_origin}: {exc}")
    if (missing := _missing_images(bundle)) is not None:
        return _Refused(missing)
    try:
        registry = worker_registry(plugins, strict)
        rows = run_task(task, registry, bundle, resolved, show_progress=False)
    except UserError as exc:
        return _Refused(str(exc))
    node = _node()
    return [attrs.evolve(r, provenance={**r.provenance, "ray_node": node}) for r in rows]


class SettingError(UserError):
    """A bad backend setting: ``setting`` (the attribute) and what is wrong with it (``detail``),
    for callers that name their own flag."""

    def __init__(self, setting: str, detail: str):
        self.setting, self.detail = setting, detail
        super().__init__(f"{setting} {detail}")


def _positive(instance, attribute, value) -> None:
    if value is not None and not (value > 0 and math.isfinite(value)):
        raise SettingError(attribute.name, f"must be a positive number, got {value!r}")


def _gpu_count(instance, attribute, value) -> None:
    if value is not None and not (math.isfinite(value) and value >= 0 and (value <= 1 or value == int(value))):
        raise SettingError(attribute.name, f"must be 0, a fraction of one GPU or a whole number of GPUs, got {value!r}")


def _retries(instance, attribute, value) -> None:
    if not isinstance(value, int) or value < 0:
        raise SettingError(attribute.name, f"must be a non-negative integer, got {value!r}")


def _device_name(instance, attribute, value) -> None:
    if value not in ("auto", "cpu") and not (value == "cuda" or value.startswith("cuda:")):
        raise SettingError(attribute.name, f"{value!r}: the ray backend takes 'auto', 'cpu', 'cuda' or 'cuda:N'")


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail at once when nothing answers at a cluster address (Ray itself retries for minutes);
    'auto' and addresses without a port are left to Ray."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise UserError(f"cannot reach a Ray cluster at {address!r}: {exc.strerror or exc}; start one with "
                        "`ray start --head` there, or check the address (the head's GCS port, 6379 by default, "
                        "or ray://host:10001)") from None


@attrs.define
class RayBackend:
    """Runs each task as a Ray task declaring ``num_cpus_per_task`` CPUs and ``num_gpus_per_task``
    GPUs (a fraction shares a GPU; ``None`` takes one GPU per task when ``device`` asks for CUDA,
    or is 'auto' on a cluster with GPUs). ``address`` is a Ray cluster (``auto``, ``ray://...``);
    without one a local instance is started. A task whose method raises, or whose worker dies, is
    retried ``max_retries`` times; a ``UserError`` is reported at once."""

    registry: Registry
    address: str | None = None
    num_cpus_per_task: float = attrs.field(default=1, validator=_positive)
    num_gpus_per_task: float | None = attrs.field(default=None, validator=_gpu_count)
    max_retries: int = attrs.field(default=2, validator=_retries)
    device: str = attrs.field(default="auto", validator=_device_name)
    dashboard: bool = False  # a local instance's dashboard (an exposed one runs arbitrary code)
    device_origin: str = "device"  # where ``device`` was given, for the workers' error messages
    _bundles: dict[str, Any] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if self.address:  # before any data set is loaded or task claimed
            check_reachable(self.address)

    def bundle(self, spec):
        """A data set loaded once in the driver (``run_spec`` needs it for run keys first)."""
        if spec.label not in self._bundles:
            self._bundles[spec.label] = load_dataset(spec, self.registry)
        return self._bundles[spec.label]

    def _task_gpus(self, cluster: dict[str, float]) -> float:
        if self.num_gpus_per_task is not None:
            gpus = self.num_gpus_per_task
        elif self.device == "cpu":
            gpus = 0
        else:
            gpus = 1 if self.device != "auto" or cluster.get("GPU", 0) >= 1 else 0
        if gpus == 0 and self.device != "auto" and self.device != "cpu":
            raise UserError(f"device {self.device!r} needs a GPU per task, but num_gpus_per_task is 0")
        return gpus

    def _check_fits(self, cluster: dict[str, float], gpus: float) -> None:
        """A local instance never grows: a task larger than it would wait forever."""
        for resource, need in (("CPU", self.num_cpus_per_task), ("GPU", gpus)):
            if need > cluster.get(resource, 0):
                raise UserError(
                    f"each task asks for {need:g} {resource}(s), but the local Ray instance has "
                    f"{cluster.get(resource, 0):g}; lower the request or pass --address of a larger cluster"
                )

    def run(self, tasks) -> Iterator[tuple[Task, list[ResultRow] | Failure]]:
        """Submits each task as ``tasks`` yields it (``run_spec`` loads a data set and claims its
        tasks as they are pulled), putting its data set in the object store with its first task,
        and yields finished tasks between pulls: workers run the first data set while the driver
        loads the next. A task that cannot be pulled (a data set that fails to load) stops the
        submitting; the tasks already submitted are finished and yielded, then the error raised."""
        tasks = iter(tasks)
        first = next(tasks, None)
        if first is None:
            return
        ray = _import_ray()
        started = not ray.is_initialized()
        reaper = None
        if started:
            local = {} if self.address else {"include_dashboard": self.dashboard, "dashboard_host": "127.0.0.1"}
            if not self.address:  # before ray.init: a driver killed while the instance starts leaves nothing behind
                reaper = _start_reaper()
            try:
                with _loopback_only(ray, enabled=self.address is None):
                    ray.init(address=self.address, **local)
            except ConnectionError as exc:
                _stop(reaper)
                raise UserError(f"cannot reach a Ray cluster at {self.address!r}: {exc}") from None
            except BaseException:
                _stop(reaper)
                raise
        pending: dict[Any, Task] = {}
        try:
            cluster = ray.cluster_resources()
            gpus = self._task_gpus(cluster)
            if started and self.address is None:
                self._check_fits(cluster, gpus)
            device = "cpu" if gpus == 0 or self.device == "cpu" else ("auto" if self.device == "auto" else "cuda")
            plugins = plugin_refs(self.registry)
            bundles: dict[str, Any] = {}  # data set label -> its ObjectRef, shared by its tasks
            remote = ray.remote(_run_task).options(
                num_cpus=self.num_cpus_per_task,
                num_gpus=gpus,
                max_retries=self.max_retries,
                retry_exceptions=True,
            )
            task: Task | None = first
            while task is not None:
                label = task.dataset.label
                if label not in bundles:
                    bundles[label] = ray.put(self.bundle(task.dataset))
                ref = remote.remote(task, bundles[label], plugins, self.registry.strict, device, self.device_origin)
                pending[ref] = task
                yield from self._finished(ray, pending, wait=False)
                try:
                    task = next(tasks, None)
                except Exception:  # a data set that failed to load: what was submitted is kept
                    yield from self._finished(ray, pending, wait=True)
                    raise
            yield from self._finished(ray, pending, wait=True)
        finally:
            for ref in pending:  # interrupted: finished rows are stored, the rest rerun on resume
                ray.cancel(ref)
            if started:
                ray.shutdown()
                _stop(reaper)

    def _finished(self, ray, pending: dict[Any, Task], wait: bool) -> Iterator[tuple[Task, Any]]:
        """The pending tasks finished by now, or (``wait``) every pending task as it finishes;
        each is taken out of ``pending`` as it is yielded."""
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1 if wait else len(pending), timeout=None if wait else 0)
            for ref in ready:
                task = pending.pop(ref)
                yield task, self._outcome(ray, task, ref)
            if not wait:
                return

    def _outcome(self, ray, task: Task, ref) -> list[ResultRow] | Failure:
        attempts = f"failed on all {self.max_retries + 1} attempts"
        try:
            result = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:  # the method raised every time
            print(str(exc), file=sys.stderr)
            cause = exc.cause or exc
            detail = "".join(traceback.format_exception_only(type(cause), cause)).strip()
            return Failure(task, f"{detail} ({attempts})", False)
        except ray.exceptions.RayError as exc:  # a worker or node died every time
            return Failure(task, f"{type(exc).__name__}: {exc} ({attempts})", False)
        if isinstance(result, _Refused):
            return Failure(task, result.message, True)
        return result
