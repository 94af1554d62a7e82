"""Reference-accuracy validation: run a benchmark's reference model on this machine.

``validate`` takes a benchmark whose data is fetched and preprocessed, opens one of its
models with a runner (:mod:`provision.validation.runners`: onnxruntime or torch, cpu or cuda), feeds it
the preprocessed samples through a prefetching loader (:mod:`provision.validation.loader`), scores the
predictions with MLPerf's metric (:mod:`provision.validation.tasks`, :mod:`provision.validation.metrics`) and
compares the score with the manifest's targets:

- on the whole dataset, ``value >= reference x ratio`` for each ratio (``99`` / ``99.9``
  variants; the first is the one that decides ``passed``), and ``value <= upper`` when the
  manifest sets an upper bound;
- on part of it (``count``, a ``subset``, or fewer samples than the benchmark's dataset size)
  the full-set target does not apply: the result carries a 99% confidence interval (Wilson for
  top-1, a percentile bootstrap of per-sample values otherwise) and passes when the interval
  reaches the target, i.e. the subset is consistent with a model that meets it;
- when the model's ``[model.runtime]`` pins ``golden`` predictions, the first ``len(golden)``
  predictions must equal them exactly; the first disagreements are reported.

Each result is written to ``<cache>/preprocessed/<benchmark>/<key16>.validation/``, beside the
preprocessing run it used, under a key over everything that can change the score (the
preprocessing key, the model file's digest, the runtime and its version, device, batch size,
TF32, sample count, task settings). ``provision run`` reuses a stored result with the same key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from provision.config import Settings
from provision.errors import IntegrityError, NotFetchedError, UsageError
from provision.fsutil import atomic_write_text
from provision.manifest.folders import as_fetched
from provision.manifest.lockfile import LockFile
from provision.manifest.model import (
    GENERATION_DTYPES,
    AccuracySpec,
    Artifact,
    Benchmark,
    Catalog,
    GenerationSpec,
    RuntimeSpec,
)
from provision.preprocessing.plan import Plan, artifact_digest, load_json, make_plan
from provision.preprocessing.runner import preprocessed_path
from provision.progress import NullProgress, Progress
from provision.store.cache import Store
from provision.store.hashing import FAST_ALG
from provision.store.verify import check_file
from provision.validation.generation import TokenCounts
from provision.validation.models import RUNTIMES, choose_model, runtime_version
from provision.validation.results import CONFIDENCE, ValidationReport
from provision.validation.runners.device import cpu_name, resolve_device, usable_cores
from provision.validation.tasks.base import SCORING_VERSION, DrivingTask, GenerativeTask, Score, Task
from provision.validation.tasks.registry import (
    GenerativeSource,
    make_generative_task,
    make_task,
    unsupported_benchmark,
)
from provision.version import __version__

__all__ = ["ValidateOptions", "cached_result", "prepare", "validate"]

RESULT_SCHEMA = 1
#: Resamples for metrics recomputed per resample (COCO mAP re-runs COCOeval each time): at most
#: this many, fewer when they would take longer than the budget, never fewer than the minimum.
BOOTSTRAP_STATISTIC_RESAMPLES = 200
BOOTSTRAP_MIN_RESAMPLES = 30
BOOTSTRAP_BUDGET_S = 120.0


@dataclass(frozen=True)
class ValidateOptions:
    """How to run the model: device (``auto``/``cpu``/``cuda``), batch, threads, TF32, sample count."""

    device: str = "auto"
    batch_size: int = 32
    threads: int | None = None
    allow_tf32: bool = False
    seed: int = 0
    count: int | None = None
    workers: int | None = None  # loader threads; default: min(4, cores)
    engine: str = "auto"  # generation: auto | vllm | transformers
    dtype: str | None = None  # generation: the weights' dtype (default: the manifest's)


@dataclass
class Prepared:
    """Everything a validation run needs, resolved before any model is loaded."""

    bench: Benchmark
    spec: AccuracySpec
    model: Artifact
    runtime_spec: RuntimeSpec
    runtime: str
    model_path: Path
    model_digest: str
    plan: Plan | None  # None for a generative benchmark: it reads the published dataset file
    folder: Path
    device: str
    options: ValidateOptions
    key: str
    root: Path  # <cache>/preprocessed/<benchmark>
    data_key: str  # the preprocessing key, or the dataset digest of a generative benchmark
    generation: GenerationSpec | None = None

    @property
    def record_path(self) -> Path:
        """Where this result is stored."""
        # a preprocessing key's first 16 hex; a dataset key's "dataset-" and 16 hex
        stem = self.data_key[:24] if self.data_key.startswith("dataset-") else self.data_key[:16]
        return self.root / f"{stem}.validation" / f"{self.model.name}--{self.key[:16]}.json"


def _metric_info(metric: str) -> tuple[str, bool]:
    from provision.validation.metrics.registry import METRICS

    info = METRICS.get(metric)
    return (info.unit, info.higher_is_better) if info is not None else ("", True)


def _model_file(model: Artifact, runtime: RuntimeSpec) -> str:
    if runtime.file:
        return runtime.file
    if len(model.files) == 1 and not model.files[0].is_folder:
        return model.files[0].name
    raise UsageError(
        f"model {model.name} has {len(model.files)} files; its manifest needs [model.runtime] file = '<which one>'"
    )


def _verified_digest(store: Store, model: Artifact, name: str) -> tuple[Path, str]:
    """The model file's path and ``<published checksum> xxh3_128:<hex>``, checked against its fetch
    record with verify's stat fast path (re-hashed only when its stat changed)."""
    path = store.artifact_dir(model.name) / name
    record = store.load_record(model.name).get(name)
    if record is None or not store.record_complete(model.name):
        raise NotFetchedError(f"model {model.name} is not fetched ({path}); run 'provision fetch {model.name}'")
    check, entry, _ = check_file(store, model, model.file(name), record)
    if check.state == "missing":
        raise NotFetchedError(check.message(), path=check.path)
    if not check.ok or entry is None:
        raise IntegrityError(check.message(), path=check.path)
    return path, f"{entry.checksum} {FAST_ALG}:{entry.xxh3_128}"


def prepare(
    catalog: Catalog,
    name: str,
    settings: Settings,
    *,
    model: str | None = None,
    subset: str | None = None,
    options: ValidateOptions | None = None,
    progress: Progress | None = None,
    plan: Plan | None = None,
) -> Prepared:
    """Resolve benchmark, model, preprocessed folder, device and result key (no model loaded).

    ``plan``: the preprocessing plan of this benchmark, subset and model, when the caller has just
    made it (``run``): its input digests are then not resolved a second time.
    :class:`NotFetchedError` when the model or the preprocessed data is missing.
    """
    options = options or ValidateOptions()
    if options.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {options.batch_size}")
    if options.count is not None and options.count < 1:
        raise UsageError(f"--count must be at least 1, got {options.count}")
    entry = catalog.get(name)
    if not isinstance(entry, Benchmark):
        raise UsageError(f"{name!r} is a {entry.kind}; 'provision validate' takes a benchmark (see 'provision list')")
    bench = entry
    spec = bench.accuracy
    if spec is None:
        raise UsageError(f"{bench.name} has no [benchmark.accuracy] in its manifest; nothing to validate against")
    if bench.generation is not None:
        return _prepare_generative(catalog, bench, bench.generation, spec, settings, model, options)
    # said before asking for a model that cannot be run anyway
    why = unsupported_benchmark(bench, [catalog.artifacts[m].format or "" for m in bench.models])
    if why is not None:
        raise UsageError(f"no local validation for metric {spec.metric!r}: {why}")
    art = choose_model(catalog, bench, model)
    runtime = RUNTIMES.get(art.format or "")
    if runtime is None:
        raise UsageError(
            f"model {art.name} is in format {art.format!r}; provision validate runs onnx, torchscript and pytorch "
            f"models (choose one of {', '.join(bench.models)} with --model)"
        )
    runtime_spec = art.runtime or RuntimeSpec()
    lock = LockFile(settings.lock_path)
    resolved = as_fetched(art, lock)
    store = Store(settings.cache_dir)
    model_path, digest = _verified_digest(store, resolved, _model_file(resolved, runtime_spec))
    version = runtime_version(runtime)
    device = resolve_device(runtime, options.device)
    if plan is None:
        plan = make_plan(catalog, bench.name, settings, subset=subset, progress=progress, model=art.name)
    folder = preprocessed_path(plan, progress)
    ingredients = {
        "schema": RESULT_SCHEMA,
        "preprocess": plan.key,
        "model": art.name,
        "digest": digest,
        "runtime": [runtime, version],
        "device": device,
        "batch_size": options.batch_size,
        "allow_tf32": options.allow_tf32,
        "seed": options.seed,
        "count": options.count,
        "metric": spec.metric,
        # A stored result decides pass/fail against the targets it was made with, and proves
        # readiness only for the machine that made it (a fleet may share one cache).
        "targets": _targets_ingredient(bench),
        "machine": [platform.node(), cpu_name()],
        "provision": __version__,
        "scoring": SCORING_VERSION,
        "runtime_spec": {
            "file": runtime_spec.file,
            "inputs": list(runtime_spec.inputs),
            "outputs": list(runtime_spec.outputs),
            "offset": runtime_spec.offset,
            "architecture": runtime_spec.architecture,
            "num_classes": runtime_spec.num_classes,
            "golden": list(runtime_spec.golden),
        },
    }
    key = hashlib.sha256(json.dumps(ingredients, sort_keys=True).encode()).hexdigest()
    return Prepared(
        bench,
        spec,
        art,
        runtime_spec,
        runtime,
        model_path,
        digest,
        plan,
        folder,
        device,
        options,
        key,
        plan.root,
        plan.key,
    )


def _targets_ingredient(bench: Benchmark) -> list[Any]:
    """Every target the verdict is made against, and the set size that decides "full set"."""
    metrics = [[m.metric, m.scenario, m.reference, list(m.target_ratio), m.upper] for m in bench.metrics]
    return [metrics, bench.dataset_size, bench.accuracy_sample_count]


def _prepare_generative(
    catalog: Catalog,
    bench: Benchmark,
    generation: GenerationSpec,
    spec: AccuracySpec,
    settings: Settings,
    model: str | None,
    options: ValidateOptions,
) -> Prepared:
    """A generative benchmark: its Hugging Face checkpoint, the engine, the published dataset file."""
    from provision.validation.generation import checkpoint_folder, choose_generative_model, dataset_key
    from provision.validation.runners.device import engine_version
    from provision.validation.runners.generate import choose_engine

    art = choose_generative_model(catalog, bench, model)
    lock = LockFile(settings.lock_path)
    store = Store(settings.cache_dir)
    progress = NullProgress()
    model_digest = artifact_digest(store, as_fetched(art, lock), bench.name, settings, progress)
    data_digest = artifact_digest(
        store, as_fetched(catalog.artifacts[bench.dataset], lock), bench.name, settings, progress
    )
    folder = store.artifact_dir(bench.dataset)
    model_path = checkpoint_folder(store.artifact_dir(art.name), art)
    engine = choose_engine(options.engine, options.device)
    version = engine_version(engine)
    device = resolve_device("torch", options.device) if engine == "transformers" else "cuda"
    dtype = options.dtype or generation.dtype
    if dtype not in GENERATION_DTYPES:
        raise UsageError(f"dtype {dtype!r} is not one of {', '.join(GENERATION_DTYPES)}; pick one of those")
    ingredients = {
        "schema": RESULT_SCHEMA,
        "dataset": data_digest,
        "model": art.name,
        "digest": model_digest,
        "engine": [engine, version],
        "device": device,
        "dtype": dtype,
        "batch_size": options.batch_size,
        "seed": options.seed,
        "count": options.count,
        "generation": generation.to_json(),
        "targets": _targets_ingredient(bench),
        "machine": [platform.node(), cpu_name()],
        "provision": __version__,
        "scoring": SCORING_VERSION,
    }
    key = hashlib.sha256(json.dumps(ingredients, sort_keys=True).encode()).hexdigest()
    root = store.root / "preprocessed" / bench.name
    runtime_spec = art.runtime or RuntimeSpec()
    return Prepared(
        bench, spec, art, runtime_spec, engine, model_path, model_digest, None, folder, device, options, key, root,
        dataset_key(data_digest), replace(generation, dtype=dtype),
    )  # fmt: skip


def cached_result(prepared: Prepared) -> ValidationReport | None:
    """The stored result for ``prepared``'s key, when one exists."""
    doc = load_json(prepared.record_path)
    if doc is None or doc.get("key") != prepared.key:
        return None
    try:
        report = ValidationReport.from_json(doc)
    except TypeError:
        return None
    report.state = "cached"
    return report


def _targets(spec: AccuracySpec, value: float, higher: bool) -> list[dict[str, Any]]:
    out = []
    for ratio, target in zip(spec.target_ratio, spec.targets(), strict=True):
        ok = value >= target if higher else value <= target
        out.append({"ratio": ratio, "target": target, "passed": ok})
    return out


def _interval(score: Score, unit: str) -> tuple[list[float] | None, str | None]:
    from provision.validation.metrics.stats import bootstrap_interval, bootstrap_statistic, wilson_interval

    if score.successes is not None and score.samples:
        lo, hi = wilson_interval(score.successes, score.samples, CONFIDENCE)
        scale = 100.0 if unit == "%" else 1.0
        return [lo * scale, hi * scale], "wilson"
    if score.per_sample is not None and len(score.per_sample):
        lo, hi = bootstrap_interval(score.per_sample, CONFIDENCE)
        return [float(lo), float(hi)], "bootstrap"
    if score.statistic is not None and score.samples:
        # Each resample recomputes the metric (COCOeval for mAP): time one, then fit the count
        # into the budget, at least BOOTSTRAP_MIN_RESAMPLES; the method names the count used.
        clock = time.perf_counter()
        score.statistic(np.arange(score.samples))
        each = max(time.perf_counter() - clock, 1e-6)
        resamples = int(max(BOOTSTRAP_MIN_RESAMPLES, min(BOOTSTRAP_STATISTIC_RESAMPLES, BOOTSTRAP_BUDGET_S / each)))
        lo, hi = bootstrap_statistic(score.samples, score.statistic, CONFIDENCE, resamples=resamples)
        return [float(lo), float(hi)], f"bootstrap ({resamples} resamples)"
    return None, None


def _golden(runtime: RuntimeSpec, score: Score, limit: int = 10) -> dict[str, Any] | None:
    if not runtime.golden:
        return None
    pinned = list(runtime.golden)
    got = score.predictions[: len(pinned)]
    mismatches = [
        {"index": i, "name": score.names[i] if i < len(score.names) else str(i), "expected": want, "got": have}
        for i, (want, have) in enumerate(zip(pinned, got, strict=False))
        if want != have
    ]
    checked = min(len(pinned), len(got))
    return {
        "pinned": len(pinned),
        "checked": checked,
        "mismatches": len(mismatches),
        "first": mismatches[:limit],
        # A run shorter than the pins (--count, a subset) checks what it has.
        "passed": not mismatches,
    }


def _infer(
    task: Task | DrivingTask, prepared: Prepared, progress: Progress
) -> tuple[dict[str, Any], float, dict[str, Any], int]:
    """Run every sample through the model; (runner description, seconds, energy, samples)."""
    from provision.validation.loader import batches
    from provision.validation.power import EnergyMeter
    from provision.validation.runners.base import RunnerOptions
    from provision.validation.runners.open import open_runner

    opts = prepared.options
    runner = open_runner(
        prepared.model_path,
        prepared.model.format or "",
        RunnerOptions(
            # "auto" stays "auto": the runner falls back to the CPU when a CUDA provider is
            # listed but cannot start; the device it used is what the report says.
            device=opts.device if opts.device == "auto" else prepared.device,
            batch_size=opts.batch_size,
            threads=opts.threads,
            allow_tf32=opts.allow_tf32,
            seed=opts.seed,
        ),
        inputs=prepared.runtime_spec.inputs,
        outputs=prepared.runtime_spec.outputs,
        architecture=prepared.runtime_spec.architecture,
        num_classes=prepared.runtime_spec.num_classes,
    )
    n = task.count()
    gpus: tuple[int, ...] = ()
    if runner.device.startswith("cuda"):
        gpus = (int(runner.device.partition(":")[2] or 0),)
    meter = EnergyMeter(gpus=gpus)
    # Loader threads: one per four cores (at most 4). Loading .npy files is memory-bound; on a
    # 2-core machine a second loader thread only contends with the runtime (benchmarks/README.md).
    workers = opts.workers or max(1, min(4, usable_cores() // 4))
    # Some reference models take one sample per call (RetinaNet's ONNX export has a fixed batch of 1).
    batch_size = min(opts.batch_size, getattr(task, "max_batch", None) or opts.batch_size)
    key = f"validate:{prepared.bench.name}"
    progress.start(key, f"validate {prepared.bench.name} ({prepared.model.name})", n)
    ok = False
    try:
        meter.start()
        try:
            start = time.perf_counter()
            if isinstance(task, DrivingTask):
                for index in range(n):  # the task makes the model calls of each sample itself
                    task.run_sample(runner, index)
                    progress.advance(key, 1)
            else:
                with contextlib.closing(batches(task.load, range(n), batch_size, workers=workers, depth=2)) as stream:
                    for batch in stream:
                        outputs = runner.run(list(batch.arrays))
                        task.collect(batch.indices, outputs)
                        progress.advance(key, len(batch.indices))
            seconds = time.perf_counter() - start
        finally:
            energy = meter.stop()  # also stops the meter's sampling thread when inference fails
        ok = True
    finally:
        progress.finish(key, ok)
        description = {**runner.describe(), "batch_size": batch_size, "device": runner.device}
        runner.close()
    energy_doc = energy.describe()
    energy_doc["joules_per_sample"] = energy.per_sample(n) if energy.available else None
    return description, seconds, energy_doc, n


def _generate(
    prepared: Prepared, progress: Progress
) -> tuple[GenerativeTask, dict[str, Any], float, dict[str, Any], int, TokenCounts]:
    """Every sample of a generative benchmark through its engine; (task, engine description, seconds,
    energy, samples, token counts)."""
    from provision.validation.generation import generate_all
    from provision.validation.power import EnergyMeter
    from provision.validation.runners.generate import EngineOptions, open_engine

    spec = prepared.generation
    if spec is None:
        raise UsageError(f"{prepared.bench.name} has no [benchmark.generation]; it is not a generative benchmark")
    opts = prepared.options
    task = make_generative_task(
        GenerativeSource(prepared.folder, prepared.bench, spec, opts.count, prepared.model_path)
    )
    n = task.count()
    if n == 0:
        raise UsageError(f"{prepared.folder / spec.file}: no samples to validate")
    engine = open_engine(
        task.kind,
        prepared.model_path,
        prepared.runtime,
        EngineOptions(device=prepared.device, threads=opts.threads, batch_size=opts.batch_size),
        spec.dtype,
    )
    gpus = (int(engine.device.partition(":")[2] or 0),) if engine.device.startswith("cuda") else ()
    meter = EnergyMeter(gpus=gpus)
    key = f"validate:{prepared.bench.name}"
    progress.start(key, f"validate {prepared.bench.name} ({prepared.model.name}, {engine.engine})", n)
    ok = False
    try:
        meter.start()
        try:
            counts = generate_all(task, engine, spec, opts.batch_size, progress, key)
        finally:
            energy = meter.stop()
        ok = True
    finally:
        progress.finish(key, ok)
        description = {
            **engine.describe(),
            "runtime": engine.engine,
            "batch_size": opts.batch_size,
            "device": engine.device,
        }
        engine.close()
    energy_doc = energy.describe()
    energy_doc["joules_per_sample"] = energy.per_sample(n) if energy.available else None
    return task, description, counts.seconds, energy_doc, n, counts


def validate(
    catalog: Catalog,
    name: str,
    settings: Settings,
    *,
    model: str | None = None,
    subset: str | None = None,
    options: ValidateOptions | None = None,
    progress: Progress | None = None,
    prepared: Prepared | None = None,
) -> ValidationReport:
    """Validate benchmark ``name`` with ``model`` (default: its first runnable model).

    Returns the report (``passed`` false below target; the CLI exits 5) and stores it beside
    the preprocessing run. See the module docstring for targets and subsets.
    """
    progress = progress or NullProgress()
    if prepared is None:
        prepared = prepare(catalog, name, settings, model=model, subset=subset, options=options, progress=progress)
    tokens: dict[str, Any] | None = None
    task: Task | DrivingTask | GenerativeTask
    if prepared.generation is not None:
        task, description, seconds, energy, n, counts = _generate(prepared, progress)
        tokens = counts.to_json()
    else:
        task = make_task(prepared.spec.metric, prepared.folder, prepared.runtime_spec, prepared.options.count)
        if task.count() == 0:
            raise UsageError(f"{prepared.folder}: no samples to validate")
        description, seconds, energy, n = _infer(task, prepared, progress)
    score = task.score()
    verdict = _judge(prepared, score, subset)
    report = ValidationReport(
        benchmark=prepared.bench.name,
        model=prepared.model.name,
        metric=prepared.spec.metric,
        unit=verdict.unit,
        value=score.value,
        target=verdict.targets[0]["target"] if verdict.targets else None,
        passed=verdict.passed,
        samples=score.samples,
        device=str(description.get("device", prepared.device)),
        runtime={**description, "cpu": cpu_name()},
        model_digest=prepared.model_digest,
        samples_per_second=n / seconds if seconds > 0 else math.inf,
        seconds=seconds,
        energy=energy,
        full_set=verdict.full,
        reference=prepared.spec.reference,
        targets=verdict.targets,
        upper=prepared.spec.upper,
        interval=verdict.interval,
        interval_method=verdict.method,
        golden=verdict.golden,
        task=task.describe(),
        preprocess_key=prepared.data_key,
        metrics=verdict.metrics,
        tokens=tokens,
        generation=prepared.generation.to_json() if prepared.generation is not None else None,
        key=prepared.key,
        record=str(prepared.record_path),
        extra={**score.extra, "provision": __version__},
        notes=verdict.notes,
    )
    _store(prepared.record_path, report)
    return report


@dataclass
class _Verdict:
    """How a score compares with the benchmark's targets (see the module docstring)."""

    unit: str
    full: bool
    targets: list[dict[str, Any]]
    passed: bool
    interval: list[float] | None = None
    method: str | None = None
    golden: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)  # every judged metric, the primary first


#: Metrics that are totals over the set (gen_len: characters of every prediction): on part of the
#: set their interval is projected to the full set's sample count before it meets the targets.
TOTAL_METRICS = frozenset({"gen_len"})


def _judge_metric(spec: AccuracySpec, score: Score, full: bool, size: int | None) -> dict[str, Any]:
    """One metric's verdict: on the full set the point value, on part of it the 99% interval, against
    each ``reference x ratio`` target and the upper bound."""
    unit, higher = _metric_info(spec.metric)
    interval, method = (None, None) if full else _interval(score, unit)
    notes: list[str] = []
    if interval is not None and spec.metric in TOTAL_METRICS and size:
        interval = [interval[0] * size, interval[1] * size]  # the mean's interval, as a full-set total
        notes.append(f"{spec.metric} is a total: its interval is projected to {size:,} samples")
    if full or interval is None:
        targets = _targets(spec, score.value, higher)
        upper_ok = spec.upper is None or not full or score.value <= spec.upper
        if not full:
            notes.append(f"{score.samples} samples: no interval for {spec.metric}; the point value was compared")
    else:
        lo, hi = interval
        targets = _targets(spec, hi if higher else lo, higher)
        upper_ok = spec.upper is None or lo <= spec.upper
    passed = bool(targets[0]["passed"]) if targets else True
    return {
        "metric": spec.metric,
        "unit": unit,
        "value": score.value,
        "reference": spec.reference,
        "targets": targets,
        "upper": spec.upper,
        "upper_passed": upper_ok if spec.upper is not None else None,
        "interval": interval,
        "interval_method": method,
        "passed": passed and upper_ok,
        "notes": notes,
    }


def _judge(prepared: Prepared, score: Score, subset: str | None) -> _Verdict:
    """The verdict on ``score``: every target of the benchmark the task computed (the first decides the
    headline fields), on the full set by the point value, on part of it by the 99% interval; golden
    predictions in both cases. Targets of one scenario only (qwen3-vl's Interactive) are noted, not judged."""
    bench = prepared.bench
    size = bench.accuracy_sample_count or bench.dataset_size
    # The full set: at least the benchmark's accuracy sample count (when stated), else all samples.
    full = score.samples >= size if size is not None else prepared.options.count is None and subset is None
    primary = _judge_metric(prepared.spec, score, full, size)
    verdict = _Verdict(primary["unit"], full, primary["targets"], True, primary["interval"], primary["interval_method"])
    verdict.notes.extend(primary.pop("notes"))
    if not full and primary["interval"] is not None:
        verdict.notes.append(
            f"{score.samples} of {size or 'all'} samples: the full-set target does not apply; a target passes when "
            f"the {int(CONFIDENCE * 100)}% interval reaches it"
        )
    verdict.metrics = [primary]
    verdict.notes.extend(score.notes)
    for other in bench.metrics:
        if other is prepared.spec:
            continue
        if other.scenario:
            verdict.notes.append(
                f"{other.metric} ({other.scenario}): a target of {other.scenario} runs, not judged here"
            )
            continue
        found = score.more.get(other.metric)
        if found is None:
            why = score.unjudged.get(other.metric, f"not computed by the {bench.name} task")
            verdict.notes.append(f"{other.metric}: {why}; not judged")
            continue
        judged = _judge_metric(other, found, full, size)
        verdict.notes.extend(judged.pop("notes"))
        verdict.metrics.append(judged)
    verdict.passed = all(m["passed"] for m in verdict.metrics)
    verdict.golden = _golden(prepared.runtime_spec, score)
    if verdict.golden is not None and not verdict.golden["passed"]:
        verdict.passed = False
    return verdict


def _store(path: Path, report: ValidationReport) -> None:
    """Write ``report`` beside its preprocessing run, replacing older results of the same kind."""
    atomic_write_text(path, json.dumps(report.to_json(), indent=1, sort_keys=True) + "\n")
    _drop_superseded(path, report)


def _drop_superseded(kept: Path, report: ValidationReport) -> None:
    """Remove older results of the same model, sample count and device: the folder holds the
    latest result of each such run (what an audit reports), not every run ever made."""
    for path in kept.parent.glob(f"{report.model}--*.json"):
        if path == kept:
            continue
        doc = load_json(path) or {}
        if (doc.get("model"), doc.get("samples"), doc.get("device")) == (report.model, report.samples, report.device):
            path.unlink(missing_ok=True)
