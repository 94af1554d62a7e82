"""``provision run``: make a benchmark ready on this machine and prove it, stage by stage.

fetch → verify → preprocess → validate; each stage is skipped when its cached result is still
valid, and a stage that cannot run says why (a benchmark with no local validation)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

from provision.config import Settings
from provision.errors import UsageError
from provision.fetching.report import FetchReport
from provision.fetching.run import fetch as _fetch
from provision.manifest.model import Benchmark, Catalog
from provision.preprocessing.plan import Plan, make_plan
from provision.preprocessing.runner import PreprocessReport
from provision.preprocessing.runner import run as _run_preprocess
from provision.progress import Progress
from provision.store.verify import VerifyReport
from provision.store.verify import verify as _verify
from provision.validation.models import RUNTIMES, default_model
from provision.validation.results import ValidationReport
from provision.validation.tasks.registry import unsupported_benchmark
from provision.validation.validate import ValidateOptions
from provision.validation.validate import cached_result as _cached_validation
from provision.validation.validate import prepare as _prepare_validation
from provision.validation.validate import validate as _validate

__all__ = ["RunReport", "Stage", "run"]


@dataclass
class Stage:
    """One stage of ``run``: its state (done, cached, failed, skipped), seconds and a detail."""

    name: str
    state: str
    seconds: float = 0.0
    detail: str = ""


@dataclass
class RunReport:
    """What ``run`` did, stage by stage; ``ok`` when nothing failed and validation (if any) passed."""

    benchmark: str
    model: str | None
    fetch: FetchReport
    verify: VerifyReport | None = None
    preprocess: PreprocessReport | None = None
    validation: ValidationReport | None = None
    stages: list[Stage] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every stage succeeded or was skipped for a stated reason, and validation passed."""
        return all(s.state != "failed" for s in self.stages) and (self.validation is None or self.validation.passed)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "ok": self.ok,
            "benchmark": self.benchmark,
            "model": self.model,
            "stages": [asdict(s) for s in self.stages],
            "fetch": {"ok": self.fetch.ok, "files": [f.to_json() for f in self.fetch.files]},
            "verify": {"ok": self.verify.ok, "files": len(self.verify.files)} if self.verify else None,
            "preprocess": self.preprocess.to_json() if self.preprocess else None,
            "validation": self.validation.to_json() if self.validation else None,
        }


def run(
    catalog: Catalog,
    name: str,
    settings: Settings,
    *,
    model: str | None = None,
    subset: str | None = None,
    jobs: int | None = None,
    from_paths: Iterable[Path] = (),
    session: requests.Session | None = None,
    progress: Progress | None = None,
    options: ValidateOptions | None = None,
    revalidate: bool = False,
    shard: tuple[int, int] | None = None,
) -> RunReport:
    """Make benchmark ``name`` ready and prove it: fetch, verify, preprocess, validate.

    Each stage is skipped when its cached result is still valid: fetched files are not
    downloaded again, verification takes the stat fast path, a preprocessing run with the same
    key is reused, and a stored validation result with the same key (model digest, runtime,
    device, options) is reused unless ``revalidate``. Validation is skipped, with the reason in
    its stage, when the benchmark has no target or no model provision can run. With ``shard=(I, N)``
    this process preprocesses the I-th of N slices; the shard that completes the set merges and
    validates, the others stop after their slice (stage ``preprocess`` state ``shard``).
    """
    bench = catalog.get(name)
    if not isinstance(bench, Benchmark):
        raise UsageError(f"{name!r} is a {bench.kind}; 'provision run' takes a benchmark (see 'provision list')")
    if model is not None and model not in bench.models:
        raise UsageError(f"{bench.name} has no model {model!r}; its models: {', '.join(bench.models) or 'none'}")
    chosen = model or default_model(catalog, bench)
    target = bench.with_subset(subset) if subset is not None and subset in bench.subsets else bench
    # The dataset (or its subset), the labels and the one model this run uses.
    names = [target.dataset] + ([target.labels.artifact] if target.labels else []) + ([chosen] if chosen else [])
    steps = _Steps(catalog, bench, chosen, settings, subset, progress)
    report = steps.fetch(names, jobs, from_paths, session)
    if report.fetch.ok and steps.verify(report, names) and steps.preprocess(report, jobs, shard):
        steps.validate(report, options, revalidate)
    return report


class _Steps:
    """The four stages of one ``run``, each adding its :class:`Stage` to the report."""

    def __init__(
        self,
        catalog: Catalog,
        bench: Benchmark,
        model: str | None,
        settings: Settings,
        subset: str | None,
        progress: Progress | None,
    ) -> None:
        self.catalog, self.bench, self.model, self.settings = catalog, bench, model, settings
        self.subset, self.progress = subset, progress
        self.plan: Plan | None = None

    def fetch(
        self, names: list[str], jobs: int | None, from_paths: Iterable[Path], session: requests.Session | None
    ) -> RunReport:
        """Fetch (and verify on arrival) the dataset, labels and model; the report starts here."""
        clock = time.perf_counter()
        settings = self.settings.with_(jobs=jobs) if jobs else self.settings
        fetched = _fetch(self.catalog, names, settings, session=session, from_paths=from_paths, progress=self.progress)
        report = RunReport(self.bench.name, self.model, fetched)
        now = sum(1 for f in fetched.files if f.ok and f.state != "cached")
        state = ("done" if now else "cached") if fetched.ok else "failed"
        detail = f"{len(fetched.files)} files, {now} fetched now" if fetched.ok else f"{len(fetched.failures)} failed"
        report.stages.append(Stage("fetch", state, time.perf_counter() - clock, detail))
        return report

    def verify(self, report: RunReport, names: list[str]) -> bool:
        """Check what the run uses (stat fast path); False when something is missing or changed."""
        clock = time.perf_counter()
        checked = report.verify = _verify(self.catalog, names, self.settings, progress=self.progress)
        detail = f"{len(checked.files)} files, {checked.files_hashed} hashed"
        report.stages.append(Stage("verify", "done" if checked.ok else "failed", time.perf_counter() - clock, detail))
        return checked.ok

    def preprocess(self, report: RunReport, jobs: int | None, shard: tuple[int, int] | None = None) -> bool:
        """Run (or reuse) the model's preprocessing recipe (none for a generative benchmark); False when
        this was one shard of several and others are still missing (nothing to validate yet)."""
        clock = time.perf_counter()
        model_spec = self.catalog.artifacts[self.model].preprocess if self.model else None
        why = ""
        if self.bench.generation is not None:
            why = "validation reads the published dataset file as it is (no preprocessing run)"
        elif self.bench.preprocess is None and model_spec is None:
            why = "the manifest names no preprocessing recipe"
        if why:
            report.stages.append(Stage("preprocess", "skipped", 0.0, why))
            return True
        self.plan = make_plan(
            self.catalog, self.bench.name, self.settings, subset=self.subset, progress=self.progress, model=self.model
        )
        made = report.preprocess = _run_preprocess(
            self.plan, self.settings, jobs=jobs, shard=shard, progress=self.progress
        )
        if made.state == "shard" and made.shard is not None:
            i, n = made.shard
            detail = f"shard {i}/{n}: {made.items} items; waiting for {', '.join(made.missing_shards)}"
            report.stages.append(Stage("preprocess", "shard", time.perf_counter() - clock, detail))
            report.stages.append(Stage("validate", "skipped", 0.0, "the shard that completes the set validates"))
            return False
        state = "cached" if made.state == "cached" else "done"
        detail = f"{made.items} items, key {made.key[:16]}"
        report.stages.append(Stage("preprocess", state, time.perf_counter() - clock, detail))
        return True

    def validate(self, report: RunReport, options: ValidateOptions | None, revalidate: bool) -> None:
        """Validate here, reusing a stored result of the same key unless ``revalidate``; or say why not."""
        why = _no_validation(self.catalog, self.bench, self.model)
        if why:
            report.stages.append(Stage("validate", "skipped", 0.0, why))
            return
        clock = time.perf_counter()
        prepared = _prepare_validation(
            self.catalog, self.bench.name, self.settings, model=self.model, subset=self.subset, options=options,
            progress=self.progress, plan=self.plan,
        )  # fmt: skip
        cached = None if revalidate else _cached_validation(prepared)
        v = report.validation = cached or _validate(
            self.catalog, self.bench.name, self.settings, subset=self.subset, progress=self.progress, prepared=prepared
        )
        state = "cached" if cached else ("done" if v.passed else "failed")
        detail = f"{v.metric} {v.value:.4f}{v.unit} ({'PASS' if v.passed else 'FAIL'}), {v.samples} samples"
        report.stages.append(Stage("validate", state, time.perf_counter() - clock, detail))


def _no_validation(catalog: Catalog, bench: Benchmark, model: str | None) -> str:
    """Why ``run`` cannot validate ``bench`` with ``model`` ("" when it can)."""
    if bench.accuracy is None:
        return "the manifest sets no accuracy target"
    if bench.generation is not None:
        if model is None or catalog.artifacts[model].format != "huggingface":
            return "the benchmark names no huggingface checkpoint to generate with"
        return ""
    why = unsupported_benchmark(bench, [catalog.artifacts[m].format or "" for m in bench.models])
    if why is not None:
        return why
    if model is None:
        return "the benchmark has no model"
    fmt = catalog.artifacts[model].format
    if fmt not in RUNTIMES:
        return f"model {model} is in format {fmt!r}; provision runs onnx, torchscript and pytorch models"
    return ""
