"""The library's front door: one function per CLI command, returning plain data.

Every function takes a :class:`~provision.config.Settings` (``Settings.from_env()`` when
omitted) and returns dataclasses or JSON-ready dicts; none prints or exits.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from .config import Settings, builtin_manifest_dir
from .doctor import Check, DoctorReport, run_doctor
from .errors import ManifestError, NotFetchedError, UsageError
from .extract import hash_tree
from .fetch import FetchReport
from .fetch import fetch as _fetch
from .folders import expand
from .hashing import ALGORITHMS, hash_file
from .lockfile import LockFile
from .manifest import Artifact, Benchmark, Catalog, FileSpec, load_catalog
from .manifest import lint as _lint
from .preprocessing import PreprocessReport, make_plan
from .preprocessing import preprocessed_path as _preprocessed_path
from .preprocessing import run as _run_preprocess
from .progress import Progress
from .store import GcReport, Store
from .tasks import unsupported
from .validation import RUNTIMES, ValidateOptions, ValidationReport, default_model
from .validation import cached_result as _cached_validation
from .validation import prepare as _prepare_validation
from .validation import validate as _validate
from .verify import VerifyReport
from .verify import verify as _verify

if TYPE_CHECKING:
    from collections.abc import Callable

    from .audit_diff import AuditDiff
    from .demo import DemoReport

__all__ = [
    "audit",
    "audit_diff",
    "demo",
    "describe",
    "doctor",
    "fetch",
    "gc",
    "hash_paths",
    "hash_trees",
    "lint",
    "list_entries",
    "load",
    "path",
    "preprocess",
    "preprocessed_path",
    "run",
    "status",
    "validate",
    "verify",
]


def _settings(settings: Settings | None) -> Settings:
    return settings if settings is not None else Settings.from_env()


def load(settings: Settings | None = None) -> Catalog:
    """The catalog of built-in manifests plus ``PROVISION_MANIFESTS`` folders."""
    return load_catalog(_settings(settings).all_manifest_dirs)


def _resolved(art: Artifact, settings: Settings) -> Artifact:
    """``art`` as fetched: folder listings and first-use pins from the lock file (no network)."""
    lock = LockFile(settings.lock_path)
    return lock.apply(expand(art, lock))


def _entry_summary(entry: Artifact | Benchmark, store: Store, settings: Settings, catalog: Catalog) -> dict[str, Any]:
    if isinstance(entry, Benchmark):
        arts = [catalog.artifacts[a] for a in entry.artifact_names]
        states = {store.usage(_resolved(a, settings))["state"] for a in arts}
        state = states.pop() if len(states) == 1 else ("absent" if states == {"absent"} else "partial")
        return {
            "name": entry.name,
            "kind": "benchmark",
            "status": entry.status,
            "description": entry.description,
            "aliases": list(entry.aliases),
            "artifacts": list(entry.artifact_names),
            "size": sum(a.size or 0 for a in arts),
            "unknown_sizes": sum(1 for a in arts for f in a.files if f.size is None),
            "state": state,
        }
    usage = store.usage(_resolved(entry, settings))
    return {
        "name": entry.name,
        "kind": entry.kind,
        "description": entry.description,
        "aliases": list(entry.aliases),
        "format": entry.format,
        "files": len(entry.files),
        "size": entry.size if entry.size is not None else sum(f.size or 0 for f in entry.files),
        "unknown_sizes": sum(1 for f in entry.files if f.size is None),
        "state": usage["state"],
    }


def list_entries(settings: Settings | None = None) -> list[dict[str, Any]]:
    """One summary dict per dataset, model and benchmark."""
    settings = _settings(settings)
    store = Store(settings.cache_dir)
    catalog = load(settings)
    return [_entry_summary(e, store, settings, catalog) for e in catalog.entries()]


def _file_doc(f: FileSpec) -> dict[str, Any]:
    checksum = "listed" if f.is_folder else str(f.checksum)
    doc: dict[str, Any] = {"name": f.name, "urls": list(f.urls), "size": f.size, "checksum": checksum}
    if f.trust:
        doc["trust"] = f.trust
    if f.extract is not None:
        doc["extract_to"] = f.extract.to
    return doc


def _artifact_detail(art: Artifact, store: Store, settings: Settings) -> dict[str, Any]:
    return {
        "name": art.name,
        "kind": art.kind,
        "description": art.description,
        "license": art.license,
        "homepage": art.homepage,
        "notes": art.notes,
        "aliases": list(art.aliases),
        "access": art.access,
        "format": art.format,
        "size": art.size,
        "manifest": str(art.source) if art.source else None,
        "files": [_file_doc(f) for f in art.files],
        "cache": store.usage(_resolved(art, settings)),
    }


def _metric(m: Any) -> dict[str, Any]:
    return {**asdict(m), "target_ratio": list(m.target_ratio), "targets": list(m.targets())}


def describe(name: str, settings: Settings | None = None) -> dict[str, Any]:
    """Everything the manifests say about ``name``, plus its state in the cache."""
    settings = _settings(settings)
    catalog = load(settings)
    store = Store(settings.cache_dir)
    entry = catalog.get(name)
    if isinstance(entry, Artifact):
        return _artifact_detail(entry, store, settings)
    return {
        "name": entry.name,
        "kind": "benchmark",
        "description": entry.description,
        "notes": entry.notes,
        "aliases": list(entry.aliases),
        "manifest": str(entry.source) if entry.source else None,
        "dataset": entry.dataset,
        "labels": str(entry.labels) if entry.labels else None,
        "models": list(entry.models),
        "preprocess": (
            {"recipe": entry.preprocess.recipe, **dict(entry.preprocess.params)} if entry.preprocess else None
        ),
        "accuracy": _metric(entry.accuracy) if entry.accuracy else None,
        "metrics": [_metric(m) for m in entry.metrics],
        "status": entry.status,
        "dataset_size": entry.dataset_size,
        "performance_sample_count": entry.performance_sample_count,
        "subsets": dict(entry.subsets),
        "total_size": sum(catalog.artifacts[a].size or 0 for a in entry.artifact_names),
        "unknown_sizes": sum(1 for a in entry.artifact_names for f in catalog.artifacts[a].files if f.size is None),
        "licence_gates": [
            {"artifact": a, "access": catalog.artifacts[a].access, "license": catalog.artifacts[a].license}
            for a in entry.artifact_names
            if catalog.artifacts[a].access != "public"
        ],
        "artifacts": [_artifact_detail(catalog.artifacts[a], store, settings) for a in entry.artifact_names],
    }


def fetch(
    names: Sequence[str],
    settings: Settings | None = None,
    *,
    from_paths: Iterable[Path] = (),
    session: requests.Session | None = None,
    progress: Progress | None = None,
    subset: str | None = None,
) -> FetchReport:
    """Fetch and verify every artifact ``names`` stands for; see :func:`provision.fetch.fetch`."""
    settings = _settings(settings)
    if not names:
        raise UsageError("name at least one dataset, model or benchmark to fetch")
    for p in from_paths:
        if not Path(p).exists():
            raise UsageError(f"--from {p}: no such file or folder")
    return _fetch(
        load(settings), names, settings, session=session, from_paths=from_paths, progress=progress, subset=subset
    )


def verify(
    names: Sequence[str] = (),
    settings: Settings | None = None,
    *,
    full: bool = False,
    progress: Progress | None = None,
) -> VerifyReport:
    """Check cached artifacts (all when ``names`` is empty); fast path unless ``full``."""
    settings = _settings(settings)
    return _verify(load(settings), names, settings, full=full, progress=progress)


def path(name: str, settings: Settings | None = None) -> list[tuple[str, Path]]:
    """``[(artifact, folder)]`` for ``name`` (a benchmark gives each of its artifacts).

    :class:`NotFetchedError` when an artifact is not completely fetched.
    """
    settings = _settings(settings)
    catalog = load(settings)
    store = Store(settings.cache_dir)
    out = []
    for art in catalog.resolve([name]):
        usage = store.usage(_resolved(art, settings))
        if usage["state"] not in ("present",):
            raise NotFetchedError(
                f"{art.name} is not fetched ({usage['files']}/{usage['files_total']} files in "
                f"{usage['path']}); run 'provision fetch {name}'",
                path=usage["path"],
            )
        out.append((art.name, store.artifact_dir(art.name)))
    return out


def preprocess(
    name: str,
    settings: Settings | None = None,
    *,
    jobs: int | None = None,
    shard: tuple[int, int] | None = None,
    merge: bool = False,
    subset: str | None = None,
    params: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    model: str | None = None,
) -> PreprocessReport:
    """Run benchmark ``name``'s recipe over its fetched inputs (skipped when its key is cached).

    ``jobs`` processes (default: every core); ``shard=(I, N)`` does the I-th of N contiguous
    slices and merges when all N are done; ``merge`` assembles finished shards; ``subset``
    uses the benchmark's subset dataset of that size, else the first that many items;
    ``params`` overrides recipe parameters (such runs are never checked against
    ``expected_tree``). See :mod:`provision.preprocessing`.
    """
    settings = _settings(settings)
    plan = make_plan(load(settings), name, settings, subset=subset, overrides=params, progress=progress, model=model)
    return _run_preprocess(plan, settings, jobs=jobs, shard=shard, merge=merge, progress=progress)


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
        return all(s.state != "failed" for s in self.stages) and (
            self.validation is None or self.validation.passed
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "ok": self.ok,
            "benchmark": self.benchmark,
            "model": self.model,
            "stages": [asdict(s) for s in self.stages],
            "fetch": {"ok": self.fetch.ok},
            "verify": {"ok": self.verify.ok, "files": len(self.verify.files)} if self.verify else None,
            "preprocess": self.preprocess.to_json() if self.preprocess else None,
            "validation": self.validation.to_json() if self.validation else None,
        }


def run(
    name: str,
    settings: Settings | None = None,
    *,
    model: str | None = None,
    subset: str | None = None,
    jobs: int | None = None,
    from_paths: Iterable[Path] = (),
    session: requests.Session | None = None,
    progress: Progress | None = None,
    options: ValidateOptions | None = None,
    revalidate: bool = False,
) -> RunReport:
    """Make benchmark ``name`` ready and prove it: fetch, verify, preprocess, validate.

    Each stage is skipped when its cached result is still valid: fetched files are not
    downloaded again, verification takes the stat fast path, a preprocessing run with the same
    key is reused, and a stored validation result with the same key (model digest, runtime,
    device, options) is reused unless ``revalidate``. Validation is skipped, with the reason in
    its stage, when the benchmark has no target or no model provision can run.
    """
    settings = _settings(settings)
    catalog = load(settings)
    bench = catalog.get(name)
    if not isinstance(bench, Benchmark):
        raise UsageError(f"{name!r} is a {bench.kind}; 'provision run' takes a benchmark (see 'provision list')")
    if model is not None and model not in bench.models:
        raise UsageError(f"{bench.name} has no model {model!r}; its models: {', '.join(bench.models) or 'none'}")
    chosen = model or default_model(catalog, bench)
    target = bench.with_subset(subset) if subset is not None and subset in bench.subsets else bench
    # The dataset (or its subset), the labels and the one model this run uses.
    names = [target.dataset] + ([target.labels.artifact] if target.labels else []) + ([chosen] if chosen else [])
    clock = time.perf_counter()
    fetched = _fetch(
        catalog,
        names,
        settings.with_(jobs=jobs) if jobs else settings,
        session=session,
        from_paths=from_paths,
        progress=progress,
    )
    report = RunReport(bench.name, chosen, fetched)
    fetched_now = sum(1 for f in fetched.files if f.ok and f.state != "cached")
    report.stages.append(
        Stage(
            "fetch",
            ("done" if fetched_now else "cached") if fetched.ok else "failed",
            time.perf_counter() - clock,
            f"{len(fetched.files)} files, {fetched_now} fetched now"
            if fetched.ok
            else f"{len(fetched.failures)} failed",
        )
    )
    if not fetched.ok:
        return report
    clock = time.perf_counter()
    report.verify = _verify(catalog, names, settings, progress=progress)
    report.stages.append(
        Stage(
            "verify",
            "done" if report.verify.ok else "failed",
            time.perf_counter() - clock,
            f"{len(report.verify.files)} files, {report.verify.files_hashed} hashed",
        )
    )
    if not report.verify.ok:
        return report
    clock = time.perf_counter()
    plan = make_plan(catalog, bench.name, settings, subset=subset, progress=progress, model=chosen)
    report.preprocess = _run_preprocess(plan, settings, jobs=jobs, progress=progress)
    report.stages.append(
        Stage(
            "preprocess",
            "cached" if report.preprocess.state == "cached" else "done",
            time.perf_counter() - clock,
            f"{report.preprocess.items} items, key {report.preprocess.key[:16]}",
        )
    )
    why = _no_validation(catalog, bench, chosen)
    if why:
        report.stages.append(Stage("validate", "skipped", 0.0, why))
        return report
    clock = time.perf_counter()
    prepared = _prepare_validation(
        catalog, bench.name, settings, model=chosen, subset=subset, options=options, progress=progress, plan=plan
    )
    cached = None if revalidate else _cached_validation(prepared)
    report.validation = cached or _validate(
        catalog, bench.name, settings, subset=subset, progress=progress, prepared=prepared
    )
    v = report.validation
    report.stages.append(
        Stage(
            "validate",
            "cached" if cached else ("done" if v.passed else "failed"),
            time.perf_counter() - clock,
            f"{v.metric} {v.value:.4f}{v.unit} ({'PASS' if v.passed else 'FAIL'}), {v.samples} samples",
        )
    )
    return report


def _no_validation(catalog: Catalog, bench: Benchmark, model: str | None) -> str:
    """Why ``run`` cannot validate ``bench`` with ``model`` ("" when it can)."""
    if bench.accuracy is None:
        return "the manifest sets no accuracy target"
    why = unsupported(bench.accuracy.metric)
    if why is not None:
        return why
    if model is None:
        return "the benchmark has no model"
    fmt = catalog.artifacts[model].format
    if fmt not in RUNTIMES:
        return f"model {model} is in format {fmt!r}; provision runs onnx, torchscript and pytorch models"
    return ""


def validate(
    name: str,
    settings: Settings | None = None,
    *,
    model: str | None = None,
    subset: str | None = None,
    options: ValidateOptions | None = None,
    progress: Progress | None = None,
) -> ValidationReport:
    """Run ``name``'s reference model on its preprocessed data here and score it (see
    :mod:`provision.validation`); ``report.passed`` is false below target."""
    settings = _settings(settings)
    return _validate(load(settings), name, settings, model=model, subset=subset, options=options, progress=progress)


def preprocessed_path(
    name: str,
    settings: Settings | None = None,
    *,
    subset: str | None = None,
    params: Mapping[str, Any] | None = None,
    model: str | None = None,
) -> Path:
    """The output folder of ``name``'s preprocessing for the current inputs, recipe and libraries.

    :class:`NotFetchedError` when the inputs are not fetched or that run was not made.
    """
    settings = _settings(settings)
    return _preprocessed_path(make_plan(load(settings), name, settings, subset=subset, overrides=params, model=model))


def lint(paths: Sequence[Path] = (), settings: Settings | None = None) -> list[str]:
    """Every manifest problem under ``paths`` (default: all manifest folders in use)."""
    settings = _settings(settings)
    return _lint(list(paths) if paths else list(settings.all_manifest_dirs))


def hash_paths(paths: Sequence[Path], algs: Sequence[str] = ("sha256",)) -> list[dict[str, str]]:
    """``[{"path": ..., alg: hex, ...}]`` for each file, each read once."""
    for alg in algs:
        if alg not in ALGORITHMS:
            raise UsageError(f"unknown algorithm {alg!r}; expected one of {', '.join(ALGORITHMS)}")
    out = []
    for p in paths:
        if not Path(p).is_file():
            raise UsageError(f"{p}: not a file")
        out.append({"path": str(p), **hash_file(p, algs)})
    return out


def hash_trees(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """``[{"path", "digest", "files", "bytes"}]``: the tree digest of each folder."""
    out = []
    for p in paths:
        if not Path(p).is_dir():
            raise UsageError(f"{p}: not a folder (--tree hashes folders)")
        record = hash_tree(Path(p))
        out.append({"path": str(p), "digest": record.digest, "files": len(record.files), "bytes": record.total_bytes})
    return out


def status(settings: Settings | None = None) -> dict[str, Any]:
    """Disk use per artifact, plus partial downloads, under the cache root."""
    settings = _settings(settings)
    catalog = load(settings)
    store = Store(settings.cache_dir)
    rows = [store.usage(_resolved(a, settings)) for a in sorted(catalog.artifacts.values(), key=lambda a: a.name)]
    return {
        "cache": str(store.root),
        "artifacts": [r for r in rows if r["state"] != "absent"],
        "total_bytes": sum(r["bytes"] for r in rows),
        "partial_bytes": store.partial_bytes(),
    }


def gc(settings: Settings | None = None, *, dry_run: bool = False) -> GcReport:
    """Remove blobs no manifest references and stale partial files."""
    settings = _settings(settings)
    pinned = LockFile(settings.lock_path).checksums()
    return Store(settings.cache_dir).gc(load(settings), dry_run=dry_run, pinned=pinned)


# -- demo: imported on use (it brings a local HTTP server and the data generator) ------------------


def demo(
    workdir: Path | None = None,
    *,
    say: Callable[[str], None],
    keep: bool = False,
    images: int = 48,
) -> DemoReport:
    """The whole pipeline on a generated ImageNet-style benchmark served from 127.0.0.1.

    Generates the data and a tiny ONNX model in ``workdir`` (default: a temp folder), serves
    them from a throttled local server that drops the first download part-way, then runs
    fetch (with a resume), verify (and a repair), preprocess, validate, run and audit against
    them, announcing each step through ``say``. Never touches the user's cache, manifests or
    environment; the folder is removed at the end unless ``keep``. See :mod:`provision.demo`.
    """
    from .demo import run_demo

    return run_demo(workdir, say=say, keep=keep, images=images)


# -- doctor: is this machine ready? --------------------------------------------------------------


def doctor(
    name: str | None = None, settings: Settings | None = None, *, network: bool = True, timeout: float = 3.0
) -> DoctorReport:
    """Check this machine (Python, packages, cache write access and locks, free disk, GPUs) and,
    with ``name`` (a benchmark, dataset or model), what that needs: its packages, disk space,
    source hosts (HEAD, ``timeout`` seconds each; skipped when offline or ``network=False``) and
    credentials (never shown). ``report.ok`` is false when any check failed. See :mod:`provision.doctor`.
    """
    settings = _settings(settings)
    try:
        catalog, problems = load(settings), []
    except ManifestError as exc:
        if name is not None:
            raise
        # The machine checks need no manifest: run them on the built-in ones and report the rest.
        catalog, problems = load_catalog([builtin_manifest_dir()]), exc.problems
    report = run_doctor(catalog, settings, name, network=network, timeout=timeout)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        report.checks.insert(0, Check("manifests", "fail", problems[0] + more, "run 'provision lint' and fix them"))
    return report



# -- audit: what decided a result, and what differs between two machines --------------------------


def audit(
    name: str, settings: Settings | None = None, *, model: str | None = None, subset: str | None = None
) -> dict[str, Any]:
    """The reproducibility audit of benchmark ``name`` on this machine (schema ``provision-audit/1``).

    One JSON-ready document: manifest entries, every fetched file, extracted trees, the
    preprocessing run and its per-file digests, stored validation results, library builds and
    the environment (secrets redacted). Cached files are taken from their records (stat fast
    path), so an unchanged cache is not read again. :class:`NotFetchedError` when the benchmark
    is not fetched. Write it with :func:`provision.audit.write_audit`; see :mod:`provision.audit`.
    """
    from .audit import build_audit

    settings = _settings(settings)
    return build_audit(load(settings), name, settings, model=model, subset=subset)


def audit_diff(
    a: Path, b: Path, *, first: int = 10, data_a: Path | None = None, data_b: Path | None = None
) -> AuditDiff:
    """Compare two audit files: what differs, most likely cause first (see :mod:`provision.audit_diff`).

    ``first`` bounds the file names listed per finding; ``data_a``/``data_b`` replace the
    preprocessed folders the audits recorded, for the max absolute difference of ``.npy``
    outputs. :class:`UsageError` for unreadable files, another schema or two benchmarks.
    """
    from .audit import load_audit
    from .audit_diff import diff_audits

    return diff_audits(load_audit(Path(a)), load_audit(Path(b)), first=first, data_a=data_a, data_b=data_b)

