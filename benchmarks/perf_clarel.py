"""CLAREL training speed and memory: image-text pairs per second at the paper's batch of 32.

Modes, all through the public API (``get_registry().build("method", "clarel", ...)`` and
``method.fit``): per-instance text on the real CUB captions of ../shared/data/cub-subset
(trainval, 10 per image; ../shared/data/cub50 with ``--text-data cub50``; synthetic sentences
with ``--text-data synthetic`` or when absent) with the cnn-lstm sentence encoder at the paper's sizes averaging all of an image's sentences (the
paper's) or 1 sampled per step, at a quarter of the width, and with a frozen, cached MiniLM
(hf-text); and class-level (1280-d image features, 1024-d class embeddings: FLO's shapes, the
real FLO trainval set from ../shared/data/flo when present). Step times come from
the progress bar the trainer advances after every step, so a fit's setup and final prototype
pass are not counted; a profiled fit then splits the step time into operator (aten) time and
the rest (Python, autograd bookkeeping, dispatch).

    python benchmarks/perf_clarel.py [--device cpu|cuda] [--threads 1] [--fits 2]
        [--text-steps 8] [--class-steps 200] [--profile-steps 20] [--modes all]
        [--text-data real|cub50|synthetic]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import attrs
import numpy as np
import torch
from perfkit import SHARED_DATA, Baseline, write_fragment
from torch.profiler import ProfilerActivity, profile, record_function

from zsbench import ClassSide, EncoderContext, FitData, RunContext, get_registry
from zsbench.evaluation.protocol import fit_data, test_stage

BATCH = 32  # the paper's
STEP = "perf_clarel.step"  # profiler range around each training step
PHASES = ("forward", "backward", "optimizer")


class StepClock:
    """Stands in for the progress bar: the trainer calls ``update(start)`` before its first step
    and ``update(1)`` after each one, so the gaps between calls are step times; each step is
    also a profiler range, to attribute operator time to steps."""

    def __init__(self, total: int, device: torch.device):
        self.total, self.device = total, device
        self.marks: list[float] = []
        self.cpu_marks: list[float] = []  # this process's CPU time: robust on a shared machine
        self._range: record_function | None = None

    def __enter__(self) -> StepClock:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    def set_postfix(self, *args: object, **kwargs: object) -> None:
        pass

    def update(self, n: int = 1) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self._close()
        self.marks.append(time.perf_counter())
        self.cpu_marks.append(time.process_time())
        if len(self.marks) <= self.total:  # another step follows
            self._range = record_function(STEP)
            self._range.__enter__()

    def _close(self) -> None:
        if self._range is not None:
            self._range.__exit__(None, None, None)
            self._range = None

    def step_times(self) -> list[float]:
        """Seconds per step, without the first (warm-up) step."""
        return np.diff(self.marks)[1:].tolist()

    def cpu_step_times(self) -> list[float]:
        return np.diff(self.cpu_marks)[1:].tolist()


@attrs.define
class ClockedContext(RunContext):
    clock: StepClock | None = None

    def bar(self, total: int, desc: str, **kwargs: object) -> StepClock:
        self.clock = StepClock(total, self.device)
        return self.clock


@attrs.frozen
class Mode:
    name: str
    data: FitData
    options: dict
    source: str


def fit(mode: Mode, steps: int, device: torch.device, cache: Path) -> StepClock:
    method = get_registry().build(
        "method", "clarel", steps=steps, batch_size=BATCH, eval_every=None, checkpoint_every=None,
        **mode.options,
    )
    context = ClockedContext(seed=0, device=device, cache_dir=cache, stage="test", show_progress=False)
    method.fit(mode.data, context)
    return context.clock


def sentences(rng: np.random.Generator, count: int, vocabulary: int = 5000) -> list[str]:
    """Sentences of 10-30 tokens, words drawn with Zipf-like frequencies from ``vocabulary``."""
    p = 1.0 / np.arange(1, vocabulary + 1)
    words = rng.choice(vocabulary, size=(count, 30), p=p / p.sum())
    lengths = rng.integers(10, 31, size=count)
    return [" ".join(f"w{w}" for w in row[:k]) for row, k in zip(words, lengths, strict=True)]


def synthetic_text_data() -> tuple[FitData, str]:
    """CUB-like: 40 seen + 10 unseen classes, 20 images each, 2048-d (ResNet-101-sized)
    features, 10 sentences per image; 10 sentences per class for the prototypes."""
    rng = np.random.default_rng(0)
    classes, seen, per_class, per_image = 50, 40, 20, 10
    n = seen * per_class
    flat = sentences(rng, n * per_image)
    data = FitData(
        labels=np.repeat(np.arange(seen), per_class),
        classes=ClassSide(
            ids=np.arange(classes), names=tuple(f"c{k}" for k in range(classes)),
            seen=np.arange(classes) < seen,
            texts=tuple(tuple(sentences(rng, 10)) for _ in range(classes)),
        ),
        features=rng.random((n, 2048), dtype=np.float32),
        texts=[tuple(flat[i * per_image : (i + 1) * per_image]) for i in range(n)],
    )
    source = (f"synthetic: {n} images of {seen} seen classes, 2048-d features, {per_image} "
              "sentences of 10-30 tokens per image (5,000-word vocabulary)")
    return data, source


TEXT_DATA = {"real": "cub-subset", "cub50": "cub50"}  # --text-data: the folder of ../shared/data


def text_data(kind: str) -> tuple[FitData, str]:
    cub = SHARED_DATA / TEXT_DATA.get(kind, "cub-subset")
    if kind == "synthetic" or not (cub / "efficientnet_lite0.mat").exists():
        return synthetic_text_data()
    bundle = get_registry().build("dataset", "cub", root=cub, features="efficientnet_lite0.mat",
                                  splits="att_splits.mat", images=False)
    data = fit_data(bundle, test_stage(bundle))
    words = [len(s.split()) for group in data.texts for s in group]
    source = (f"real CUB captions ({cub.name} trainval): {len(data.labels)} images of "
              f"{data.classes.num_seen} seen classes, 1280-d EfficientNet-Lite0 features, "
              f"{len(words):,} captions of {np.mean(words):.1f} words on average")
    return data, source


PAPER, QUARTER = {"name": "cnn-lstm"}, {"name": "cnn-lstm", "filters": 64, "lstm_hidden": 128}
HALF = {"name": "cnn-lstm", "filters": 128, "lstm_hidden": 256}  # benchmarks/cub50.yaml's
FROZEN = {"name": "cnn-lstm", "word_vectors": "<random 300-d vectors>"}  # the file is written per run
MINILM = {"name": "hf-text", "model_path": "all-MiniLM-L6-v2"}
TEXT_MODES = {  # name: (label, text encoder, texts_per_image)
    "cnn-all": ("cnn-lstm, all sentences (the paper's)", PAPER, None),
    "cnn-k1": ("cnn-lstm, 1 sampled sentence", PAPER, 1),
    "cnn-frozen-k1": ("cnn-lstm, frozen word vectors (the paper's), 1 sampled sentence", FROZEN, 1),
    "cnn-half-k1": ("cnn-lstm at 1/2 width (cub50.yaml's), 1 sampled sentence", HALF, 1),
    "cnn-quarter-k1": ("cnn-lstm at 1/4 width, 1 sampled sentence", QUARTER, 1),
    "minilm-all": ("hf-text MiniLM (frozen, cached), all sentences", MINILM, None),
}


def random_word_vectors(data: FitData, folder: Path) -> Path:
    """A GloVe-format file of random 300-d vectors for the training words: the paper freezes
    word2vec vectors, which are not on this machine; a step's cost does not depend on their values."""
    from zsbench_clarel.vocabulary import tokenize

    words = sorted({w for group in data.texts for s in group for w in tokenize(s)})
    vectors = np.random.default_rng(0).normal(size=(len(words), 300)).astype(np.float32)
    path = folder / "random-vectors.txt"
    path.write_text("".join(f"{w} {' '.join(map(str, v))}\n" for w, v in zip(words, vectors, strict=True)))
    return path


def text_mode(key: str, kind: str) -> Mode:
    label, encoder, k = TEXT_MODES[key]
    data, source = text_data(kind)
    if encoder is FROZEN:
        encoder = {**FROZEN, "word_vectors": str(random_word_vectors(data, Path(os.environ["ZSBENCH_CACHE"])))}
    options = {"text_encoder": encoder} | ({"texts_per_image": k} if k else {})
    return Mode(label, data, options, source)


def class_mode() -> Mode:
    flo = SHARED_DATA / "flo"
    options = {"text_encoder": "class-projection"}
    if (flo / "efficientnet_lite0.mat").exists() and (flo / "att_splits.mat").exists():
        bundle = get_registry().build("dataset", "flo", root=flo, features="efficientnet_lite0.mat", images=False)
        data = fit_data(bundle, test_stage(bundle))
        source = (f"real FLO trainval: {len(data.labels)} EfficientNet-Lite0 features (1280-d), "
                  f"{data.classes.num_seen} seen classes, `att` (1024-d)")
        return Mode("class-level (class-projection)", data, options, source)
    rng = np.random.default_rng(0)
    n, seen, classes = 5631, 82, 102
    data = FitData(
        labels=rng.integers(seen, size=n),
        classes=ClassSide(ids=np.arange(classes), names=tuple(f"c{k}" for k in range(classes)),
                          seen=np.arange(classes) < seen,
                          embeddings=rng.normal(size=(classes, 1024)).astype(np.float32)),
        features=rng.random((n, 1280), dtype=np.float32),
    )
    source = f"random data of FLO's shapes ({n} x 1280 features, {seen} seen classes, 1024-d), ../shared/data absent"
    return Mode("class-level (class-projection)", data, options, source)


def text_encoder_size(data: FitData) -> str:
    flat = [s for group in data.texts for s in group]
    encoder = get_registry().build("encoder", "cnn-lstm", EncoderContext("text", 1024, training_texts=flat))
    total = sum(p.numel() for p in encoder.parameters())
    words = encoder.words.weight.numel()
    return (f"{total / 1e6:.1f} M parameters, of which {words / 1e6:.1f} M are learned word vectors "
            f"({len(encoder.vocabulary):,} words x {encoder.words.embedding_dim}; no pretrained "
            "vectors here)")


def _proc_status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def peak_memory(run: Callable[[], object], device: torch.device) -> tuple[int, int, str]:
    """(peak bytes, bytes just before, how measured) over ``run()``."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        run()
        return torch.cuda.max_memory_allocated(device), before, "`torch.cuda.max_memory_allocated`"
    try:  # Linux: writing 5 resets the process's peak RSS (VmHWM)
        Path("/proc/self/clear_refs").write_text("5")
        before = _proc_status("VmRSS")
        run()
        return _proc_status("VmHWM"), before, "process peak RSS (VmHWM, reset before the fit)"
    except OSError:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        run()
        return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, before,
                "process lifetime peak RSS (getrusage)")


def _phase(event) -> str:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("autograd::engine"):
            return "backward"
        if parent.name.startswith("Optimizer."):
            return "optimizer"
        parent = parent.cpu_parent
    return "forward"


@attrs.frozen
class Profile:
    steps: int
    wall_us: float
    op_us: dict[str, float]  # self CPU time of aten ops per phase
    device_us: float  # self device (kernel) time of aten ops, 0 on CPU

    @property
    def outside_share(self) -> float:
        return 1.0 - sum(self.op_us.values()) / self.wall_us


def profile_steps(mode: Mode, steps: int, device: torch.device, cache: Path) -> Profile:
    """Operator time inside the steps of a profiled fit (the first step is left out)."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        fit(mode, steps + 1, device, cache)
    events = prof.events()
    windows = sorted((e.time_range.start, e.time_range.end) for e in events if e.name == STEP)[1:]
    starts, ends = np.array(windows).T
    op_us = dict.fromkeys(PHASES, 0.0)
    device_us = 0.0
    for event in events:
        if not event.name.startswith("aten::"):
            continue
        k = np.searchsorted(starts, event.time_range.start, side="right") - 1
        if k >= 0 and event.time_range.start < ends[k]:
            op_us[_phase(event)] += event.self_cpu_time_total
            device_us += event.self_device_time_total
    return Profile(len(windows), float((ends - starts).sum()), op_us, device_us)


@attrs.frozen
class Result:
    name: str
    source: str
    steps: int
    step_s: float
    fit_medians: list[float]
    peak: int
    before: int
    memory_how: str
    profile: Profile
    cpu_step_s: float
    note: str = ""


def measure(build: Callable[[], Mode], steps: int, args: argparse.Namespace) -> Result:
    """One mode, in a fresh process (see ``main``), so its peak memory is its own."""
    device = torch.device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="perf-clarel-") as tmp:
        os.environ["ZSBENCH_CACHE"] = tmp  # data tables and the like stay out of the user's cache
        mode, cache = build(), Path(tmp)
        clocks: list[StepClock] = []
        peak, before, how = peak_memory(lambda: clocks.append(fit(mode, steps + 1, device, cache)), device)
        clocks += [fit(mode, steps + 1, device, cache) for _ in range(args.fits - 1)]
        prof = profile_steps(mode, min(args.profile_steps, steps), device, cache)
    times = [t for clock in clocks for t in clock.step_times()]
    note = text_encoder_size(mode.data) if mode.options["text_encoder"] == PAPER else ""
    cpu = statistics.median(t for clock in clocks for t in clock.cpu_step_times())
    return Result(mode.name, mode.source, steps, statistics.median(times),
                  [statistics.median(c.step_times()) for c in clocks], peak, before, how, prof, cpu, note)


def baseline_results(args: argparse.Namespace) -> list[Result]:
    """``--baseline-modes`` measured in the older checkout ``--baseline``: this script run as a
    whole process with that tree first on PYTHONPATH, its results handed back as JSON."""
    baseline = Baseline(args.baseline)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "results.json"
        command = [sys.executable, __file__, "--device", args.device, "--threads", str(args.threads),
                   "--fits", str(args.fits), "--profile-steps", str(args.profile_steps),
                   "--modes", args.baseline_modes, "--text-data", args.text_data, "--json", str(out)]
        if args.text_steps:
            command += ["--text-steps", str(args.text_steps)]
        env = {**os.environ, "PYTHONPATH": baseline.pythonpath()}
        subprocess.run(command, check=True, env=env)
        raw = json.loads(out.read_text())
    return [attrs.evolve(Result(**{**r, "profile": Profile(**r["profile"])}), name=f"{baseline.label}: {r['name']}")
            for r in raw]


def target_line(results: list[Result]) -> str:
    """The speed target: sampled-sentence pairs per CPU second against the older checkout's
    all-sentence setting, both at the paper's sizes."""
    before = next((r for r in results if r.name.startswith("before") and r.name.endswith(TEXT_MODES["cnn-all"][0])),
                  None)
    if before is None:
        return ""
    lines = []
    for key in ("cnn-k1", "cnn-frozen-k1"):
        now = next((r for r in results if r.name == TEXT_MODES[key][0]), None)
        if now is not None:
            ratio = before.cpu_step_s / now.cpu_step_s
            lines.append(f"| {now.name} | {BATCH / now.cpu_step_s:,.0f} | {BATCH / before.cpu_step_s:,.0f} | "
                         f"{ratio:.1f}x | {'yes' if ratio >= 10 else 'no'} |")
    return ("\n\nThe speed target, both at the paper's sizes: pairs per CPU second with one sampled "
            f"sentence against {before.name} (every sentence of an image, as before sampling existed).\n\n"
            "| this version | pairs per CPU s | before, all sentences | ratio | 10x met |\n"
            "|---|---:|---:|---:|---|\n" + "\n".join(lines))


def _mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def report(results: list[Result], args: argparse.Namespace, device: torch.device) -> str:
    rows, phases = [], []
    for r in results:
        spread = f"{min(r.fit_medians) * 1e3:,.1f}-{max(r.fit_medians) * 1e3:,.1f}"
        rows.append(
            f"| {r.name} | {r.steps} | {r.step_s * 1e3:,.1f} ms ({spread}) | {BATCH / r.step_s:,.0f} | "
            f"{r.cpu_step_s * 1e3:,.1f} ms | {BATCH / r.cpu_step_s:,.0f} | "
            f"{_mib(r.peak)} (+{_mib(r.peak - r.before)}) | {r.profile.outside_share:.0%} |"
        )
        per_step = {k: v / r.profile.steps / 1e3 for k, v in r.profile.op_us.items()}
        outside = (r.profile.wall_us - sum(r.profile.op_us.values())) / r.profile.steps / 1e3
        gpu = f" | {r.profile.device_us / r.profile.wall_us:.0%}" if device.type == "cuda" else ""
        phases.append(
            f"| {r.name} | {r.profile.steps} | {r.profile.wall_us / r.profile.steps / 1e3:,.1f} ms | "
            + " | ".join(f"{per_step[k]:,.1f} ms" for k in PHASES) + f" | {outside:,.1f} ms{gpu} |"
        )
    gpu_head, gpu_rule = (" | GPU kernel share", "|---:") if device.type == "cuda" else ("", "")
    threads = f"torch.set_num_threads({args.threads})" if args.threads else "torch's default CPU threads"
    notes = "\n".join(sorted({f"- data: {r.source}." for r in results}))
    notes += "".join(sorted({f"\n- cnn-lstm text encoder (the paper's sizes): {r.note}." for r in results if r.note}))
    return f"""
Batch {BATCH} (the paper's), {threads} (the runner's default is one per task), default CLAREL options otherwise (`amp` on: bf16 autocast on
a GPU, nothing on CPU). Each mode runs in its own process. Step time: median over the steps of
{args.fits} fits (after one warm-up step each), read from the progress-bar updates the trainer
makes after every step, so setup and the final prototype pass are not counted; in brackets the
range of the per-fit medians. Peak memory: {results[0].memory_how} over the first fit (setup,
training, prototypes); in brackets the rise over the memory in use just before it (torch and
the data already loaded).

{notes}

CPU step: the process's CPU time per step (median), which a busy machine's waiting does not
inflate; pairs per CPU second = 32 / CPU step.

| mode | timed steps per fit | step time | pairs/s | CPU step | pairs per CPU s | peak memory | outside operators |
|---|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

Where a step's time goes, from `torch.profiler` over a separate fit (profiling slows the steps
down a little): self CPU time of the aten operators in each phase per step; "outside" is the
step's wall time minus all of them: Python, module and autograd bookkeeping, dispatch, the
sampler's glue. Batch sampling and indexing run as aten operators and count under "forward".

| mode | profiled steps | wall/step | forward | backward | optimizer | outside{gpu_head} |
|---|---:|---:|---:|---:|---:|---:{gpu_rule}|
{chr(10).join(phases)}{target_line(results)}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--fits", type=int, default=2, help="timed fits per mode")
    parser.add_argument("--text-steps", type=int, default=None,
                        help="timed steps per fit in text mode (default 8 on CPU, 100 on GPU)")
    parser.add_argument("--class-steps", type=int, default=200, help="timed steps per fit in class-level mode")
    parser.add_argument("--profile-steps", type=int, default=20, help="profiled steps (at most a fit's timed steps)")
    parser.add_argument("--modes", default="all", help=f"comma-separated: {', '.join(TEXT_MODES)}, class")
    parser.add_argument("--text-data", choices=(*TEXT_DATA, "synthetic"), default="real",
                        help="real CUB captions (cub-subset or cub50) or synthetic sentences")
    parser.add_argument("--fragment", default="clarel", help="docs/perf/<fragment>-<device>.md to write")
    parser.add_argument("--no-write", action="store_true", help="print the figures only")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="an older checkout (git worktree add DIR <commit>) to measure --baseline-modes in")
    parser.add_argument("--baseline-modes", default="cnn-all", help="modes to measure in --baseline")
    parser.add_argument("--json", type=Path, default=None, help=argparse.SUPPRESS)  # for --baseline's child
    args = parser.parse_args()
    device = torch.device(args.device)
    text_steps = args.text_steps or (100 if device.type == "cuda" else 8)
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # no "no GPU found" error lines from the profiler
    spawn = multiprocessing.get_context("spawn")
    modes = [*TEXT_MODES, "class"] if args.modes == "all" else args.modes.split(",")
    results = []
    for key in modes:
        build = class_mode if key == "class" else partial(text_mode, key, args.text_data)
        steps = args.class_steps if key == "class" or key.startswith("minilm") else text_steps
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            results.append(pool.submit(measure, build, steps, args).result())
    if args.json:
        args.json.write_text(json.dumps([attrs.asdict(r) for r in results]))
        return
    if args.baseline:
        results += baseline_results(args)
    if args.no_write:
        print(report(results, args, device))
        return
    command = f"python benchmarks/perf_clarel.py --device {device.type}"
    for flag, value, default in (("--threads", args.threads, 1), ("--fits", args.fits, 2),
                                 ("--profile-steps", args.profile_steps, 20), ("--modes", args.modes, "all"),
                                 ("--text-data", args.text_data, "real"), ("--fragment", args.fragment, "clarel"),
                                 ("--text-steps", args.text_steps, None)):
        if value != default:
            command += f" {flag} {value}"
    if args.baseline:
        command = Baseline(args.baseline).rerun(command, f" --baseline-modes {args.baseline_modes}")
    write_fragment(args.fragment, "CLAREL training", command, report(results, args, device), device)


if __name__ == "__main__":
    main()
