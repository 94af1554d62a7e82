"""The library's front door: one function per CLI command, returning plain data.

Every function takes a :class:`~provision.config.Settings` (``Settings.from_env()`` when
omitted) and returns dataclasses or JSON-ready dicts; none prints or exits.

Each function imports the stage it drives when it is called, so that ``import provision`` (and
``provision --help``) loads no stage, and ``provision list`` never loads requests, numpy or a
runtime: a command pays only for what it uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.config import Settings
from provision.errors import ManifestError, UsageError
from provision.progress import Progress

if TYPE_CHECKING:
    import requests

    from provision.auditing.diff import AuditDiff
    from provision.fetching.report import FetchReport
    from provision.fleet.bundle import BundleIndex, ImportReport
    from provision.fleet.mirror import MirrorReport
    from provision.manifest.model import Catalog
    from provision.pipeline import RunReport
    from provision.preprocessing.harness import HarnessReport
    from provision.preprocessing.runner import PreprocessReport
    from provision.readiness.run import DoctorReport
    from provision.store.gc import GcReport
    from provision.store.verify import VerifyReport
    from provision.validation.results import ValidationReport
    from provision.validation.validate import ValidateOptions
    from provision.walkthrough.run import DemoReport

__all__ = [
    "audit",
    "audit_diff",
    "bundle_create",
    "bundle_import",
    "bundle_ls",
    "demo",
    "describe",
    "doctor",
    "fetch",
    "gc",
    "harness",
    "hash_paths",
    "hash_trees",
    "lint",
    "list_entries",
    "load",
    "mirror_export",
    "mirror_push",
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
    from provision.manifest.parse import load_catalog

    return load_catalog(_settings(settings).all_manifest_dirs)


def list_entries(
    settings: Settings | None = None,
    *,
    kind: str | None = None,
    suite: str | None = None,
    round_: str | None = None,
) -> list[dict[str, Any]]:
    """One summary dict per dataset, model and benchmark (only those of ``kind`` when given).

    ``suite`` (``inference`` or ``training``) keeps the benchmarks of that suite; ``round_``
    (``"v6.1"``) keeps exactly the benchmarks that round's submission checker accepts, each row
    with the checker's names for it in that round (``round_names``); a round without ``suite`` is
    Inference's (Training numbers its rounds alike). Either implies benchmarks.
    """
    from provision.manifest.lockfile import LockFile
    from provision.manifest.model import SUITES, Benchmark
    from provision.store.cache import Store
    from provision.store.usage import entry_summary

    kinds = ("dataset", "model", "benchmark")
    if kind is not None and kind not in kinds:
        raise UsageError(f"--kind {kind!r}: expected one of {', '.join(kinds)}")
    if suite is not None and suite not in SUITES:
        raise UsageError(f"--suite {suite!r}: expected one of {', '.join(SUITES)}")
    settings = _settings(settings)
    catalog, store, lock = load(settings), Store(settings.cache_dir), LockFile(settings.lock_path)
    if round_ is not None and suite is None:
        suite = "inference"  # a round is a suite's; the submission checker's unless training is asked for
    if round_ is not None:
        known = catalog.rounds(suite)
        if round_ not in known:
            raise UsageError(
                f"--round {round_!r}: no {suite or 'MLPerf'} benchmark in the catalogue names that round; "
                f"known rounds: {', '.join(known)}"
            )
    entries = list(catalog.entries())
    if suite is not None or round_ is not None:
        entries = [
            e
            for e in entries
            if isinstance(e, Benchmark)
            and (suite is None or e.suite == suite)
            and (round_ is None or round_ in e.rounds)
        ]
    rows = [entry_summary(e, catalog, store, lock) for e in entries]
    return [r for r in rows if kind is None or r["kind"] == kind]


def describe(name: str, settings: Settings | None = None, *, suite: str | None = None) -> dict[str, Any]:
    """Everything the manifests say about ``name``, plus its state in the cache.

    ``suite`` refuses a benchmark of the other suite (``llama3.1-8b`` with ``suite="training"``)
    with the close names of that suite.
    """
    from provision.manifest.lockfile import LockFile
    from provision.store.cache import Store
    from provision.store.usage import describe_entry

    settings = _settings(settings)
    catalog = load(settings)
    entry = catalog.get(name, suite)
    return describe_entry(entry, catalog, Store(settings.cache_dir), LockFile(settings.lock_path))


def fetch(
    names: Sequence[str],
    settings: Settings | None = None,
    *,
    from_paths: Iterable[Path] = (),
    session: requests.Session | None = None,
    progress: Progress | None = None,
    subset: str | None = None,
    suite: str | None = None,
    distributed: bool = False,
) -> FetchReport:
    """Fetch and verify every artifact ``names`` stands for; see :func:`provision.fetching.run.fetch`.

    ``suite`` (``inference`` / ``training``) refuses a benchmark name of the other suite before
    anything is fetched. ``distributed`` (every rank of a torchrun job calls it): only local rank 0
    downloads, the node's other ranks wait for it and read the verified cache; see
    :mod:`provision.fleet.distributed`.
    """
    from provision.fetching.run import fetch as fetch_artifacts

    settings = _settings(settings)
    if not names:
        raise UsageError("name at least one dataset, model or benchmark to fetch")
    for p in from_paths:
        if not Path(p).exists():
            raise UsageError(f"--from {p}: no such file or folder")
    catalog = load(settings)
    if suite is not None:
        catalog.resolve(names, subset, suite)  # a name of the other suite: a usage error, nothing fetched

    def once(chosen: Settings) -> FetchReport:
        return fetch_artifacts(
            catalog, names, chosen, session=session, from_paths=from_paths, progress=progress, subset=subset
        )

    if distributed:
        from provision.fleet.distributed import node_fetch

        return node_fetch(once, settings)
    return once(settings)


def verify(
    names: Sequence[str] = (),
    settings: Settings | None = None,
    *,
    full: bool = False,
    progress: Progress | None = None,
) -> VerifyReport:
    """Check cached artifacts (all when ``names`` is empty); fast path unless ``full``."""
    from provision.store.verify import verify as verify_artifacts

    settings = _settings(settings)
    return verify_artifacts(load(settings), names, settings, full=full, progress=progress)


def path(name: str, settings: Settings | None = None) -> list[tuple[str, Path]]:
    """``[(artifact, folder)]`` for ``name`` (a benchmark gives each of its artifacts).

    :class:`~provision.errors.NotFetchedError` when an artifact is not completely fetched.
    """
    from provision.manifest.lockfile import LockFile
    from provision.store.cache import Store
    from provision.store.usage import artifact_folders

    settings = _settings(settings)
    return artifact_folders(load(settings), name, Store(settings.cache_dir), LockFile(settings.lock_path))


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
    from provision.preprocessing.plan import make_plan
    from provision.preprocessing.runner import run as run_recipe

    settings = _settings(settings)
    plan = make_plan(load(settings), name, settings, subset=subset, overrides=params, progress=progress, model=model)
    return run_recipe(plan, settings, jobs=jobs, shard=shard, merge=merge, progress=progress)


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
    shard: tuple[int, int] | None = None,
) -> RunReport:
    """Make benchmark ``name`` ready and prove it: fetch, verify, preprocess, validate.

    Each stage is skipped when its cached result is still valid: fetched files are not
    downloaded again, verification takes the stat fast path, a preprocessing run with the same
    key is reused, and a stored validation result with the same key (model digest, runtime,
    device, options) is reused unless ``revalidate``. Validation is skipped, with the reason in
    its stage, when the benchmark has no target or no model provision can run. ``shard=(I, N)``
    preprocesses one slice (the completing shard merges and validates; see
    :func:`provision.preprocessing.shards.shard_from_env` for ``--shard auto``). See
    :mod:`provision.pipeline`.
    """
    from provision.pipeline import run as run_pipeline

    settings = _settings(settings)
    return run_pipeline(
        load(settings), name, settings, model=model, subset=subset, jobs=jobs, from_paths=from_paths,
        session=session, progress=progress, options=options, revalidate=revalidate, shard=shard,
    )  # fmt: skip


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
    from provision.validation.validate import validate as validate_benchmark

    settings = _settings(settings)
    return validate_benchmark(
        load(settings), name, settings, model=model, subset=subset, options=options, progress=progress
    )


def preprocessed_path(
    name: str,
    settings: Settings | None = None,
    *,
    subset: str | None = None,
    params: Mapping[str, Any] | None = None,
    model: str | None = None,
) -> Path:
    """The output folder of ``name``'s preprocessing for the current inputs, recipe and libraries.

    :class:`~provision.errors.NotFetchedError` when the inputs are not fetched or that run was not made.
    """
    from provision.preprocessing.plan import make_plan
    from provision.preprocessing.runner import preprocessed_path as made_path

    settings = _settings(settings)
    return made_path(make_plan(load(settings), name, settings, subset=subset, overrides=params, model=model))


def harness(
    name: str,
    settings: Settings | None = None,
    *,
    model: str | None = None,
    subset: str | None = None,
    inference: Path | None = None,
    progress: Progress | None = None,
) -> HarnessReport:
    """How to run MLPerf's reference implementation on benchmark ``name``'s preprocessed outputs here.

    Returns the exact commands (working folder, environment, arguments) and writes beside the
    outputs what the reference loads that the recipe does not produce (BERT's
    ``eval_features.pickle``, RetinaNet's cut annotation file), recorded in ``harness.json``.
    ``inference`` is the user's checkout of mlcommons/inference (default: ``$INFERENCE`` in the
    commands). :class:`~provision.errors.UsageError` for a benchmark or model without a harness
    story; :class:`~provision.errors.NotFetchedError` when the outputs or the model are not there.
    See :mod:`provision.preprocessing.harness`.
    """
    from provision.preprocessing.harness import harness as reference_harness

    settings = _settings(settings)
    return reference_harness(
        load(settings), name, settings, model=model, subset=subset, inference=inference, progress=progress
    )


def lint(paths: Sequence[Path] = (), settings: Settings | None = None) -> list[str]:
    """Every manifest problem under ``paths`` (default: all manifest folders in use)."""
    from provision.manifest.parse import lint as lint_manifests

    settings = _settings(settings)
    return lint_manifests(list(paths) if paths else list(settings.all_manifest_dirs))


def hash_paths(paths: Sequence[Path], algs: Sequence[str] = ("sha256",)) -> list[dict[str, str]]:
    """``[{"path": ..., alg: hex, ...}]`` for each file, each read once."""
    from provision.manifest.checksum import ALGORITHMS
    from provision.store.hashing import hash_file

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
    from provision.store.trees import hash_tree

    out = []
    for p in paths:
        if not Path(p).is_dir():
            raise UsageError(f"{p}: not a folder (--tree hashes folders)")
        record = hash_tree(Path(p))
        out.append({"path": str(p), "digest": record.digest, "files": len(record.files), "bytes": record.total_bytes})
    return out


def status(settings: Settings | None = None) -> dict[str, Any]:
    """Disk use per artifact, plus partial downloads, under the cache root."""
    from provision.manifest.lockfile import LockFile
    from provision.store.cache import Store
    from provision.store.usage import cache_status

    settings = _settings(settings)
    return cache_status(load(settings), Store(settings.cache_dir), LockFile(settings.lock_path))


def gc(settings: Settings | None = None, *, dry_run: bool = False) -> GcReport:
    """Remove blobs no manifest references and stale partial files (see :mod:`provision.store.gc`)."""
    from provision.manifest.lockfile import LockFile
    from provision.store.cache import Store
    from provision.store.gc import gc as collect_garbage

    settings = _settings(settings)
    pinned = LockFile(settings.lock_path).checksums()
    return collect_garbage(Store(settings.cache_dir), load(settings), dry_run=dry_run, pinned=pinned)


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
    environment; the folder is removed at the end unless ``keep``. See :mod:`provision.walkthrough`.
    """
    from provision.walkthrough.run import run_demo

    return run_demo(workdir, say=say, keep=keep, images=images)


def doctor(
    name: str | None = None, settings: Settings | None = None, *, network: bool = True, timeout: float = 3.0
) -> DoctorReport:
    """Check this machine (Python, packages, cache write access and locks, free disk, GPUs) and,
    with ``name`` (a benchmark, dataset or model), what that needs: its packages, disk space,
    source hosts (HEAD, ``timeout`` seconds each; skipped when offline or ``network=False``) and
    credentials (never shown). ``report.ok`` is false when any check failed. See :mod:`provision.readiness`.
    """
    from provision.config import builtin_manifest_dir
    from provision.manifest.parse import load_catalog
    from provision.readiness.machine import Check
    from provision.readiness.run import run_doctor

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


def audit(
    name: str, settings: Settings | None = None, *, model: str | None = None, subset: str | None = None
) -> dict[str, Any]:
    """The reproducibility audit of benchmark ``name`` on this machine (schema ``provision-audit/1``).

    One JSON-ready document: manifest entries, every fetched file, extracted trees, the
    preprocessing run and its per-file digests, stored validation results, library builds and
    the environment (secrets redacted). Cached files are taken from their records (stat fast
    path), so an unchanged cache is not read again. :class:`~provision.errors.NotFetchedError`
    when the benchmark is not fetched. Write it with :func:`provision.auditing.document.write_audit`;
    see :mod:`provision.auditing`.
    """
    from provision.auditing.build import build_audit

    settings = _settings(settings)
    return build_audit(load(settings), name, settings, model=model, subset=subset)


def audit_diff(
    a: Path, b: Path, *, first: int = 10, data_a: Path | None = None, data_b: Path | None = None
) -> AuditDiff:
    """Compare two audit files: what differs, most likely cause first (see :mod:`provision.auditing.diff`).

    ``first`` bounds the file names listed per finding; ``data_a``/``data_b`` replace the
    preprocessed folders the audits recorded, for the max absolute difference of ``.npy``
    outputs. :class:`~provision.errors.UsageError` for unreadable files, another schema or two benchmarks.
    """
    from provision.auditing.diff import diff_audits
    from provision.auditing.document import load_audit

    return diff_audits(load_audit(Path(a)), load_audit(Path(b)), first=first, data_a=data_a, data_b=data_b)


def mirror_export(
    names: Sequence[str],
    dest: Path,
    settings: Settings | None = None,
    *,
    every: bool = False,
    copy: bool = False,
    progress: Progress | None = None,
) -> MirrorReport:
    """Lay the verified files of ``names`` (``every``: all that is fetched) out under ``dest`` as
    ``<alg>/<hex>``, the layout ``PROVISION_MIRRORS`` reads (``copy``: reflinks or copies, no hard
    links); see :mod:`provision.fleet.mirror`."""
    from provision.fleet.contents import collect
    from provision.fleet.mirror import export

    settings = _settings(settings)
    return export(collect(load(settings), names, settings, every=every), Path(dest), progress, copy=copy)


def mirror_push(
    names: Sequence[str],
    url: str,
    settings: Settings | None = None,
    *,
    every: bool = False,
    progress: Progress | None = None,
) -> MirrorReport:
    """Upload the same layout to ``s3://bucket/prefix`` with boto3, skipping objects already there
    with the same size; see :mod:`provision.fleet.mirror`."""
    from provision.fleet.contents import collect
    from provision.fleet.mirror import push

    settings = _settings(settings)
    return push(collect(load(settings), names, settings, every=every), url, progress)


def bundle_create(
    names: Sequence[str],
    out: Path,
    settings: Settings | None = None,
    *,
    every: bool = False,
    split: int | None = None,
) -> BundleIndex:
    """Write one streamed tar (``split``: parts of at most that many bytes) of everything ``names``
    need: blobs, lock-file pins, the manifests; see :mod:`provision.fleet.bundle`."""
    from provision.fleet.bundle import create
    from provision.fleet.contents import collect, manifest_files

    settings = _settings(settings)
    contents = collect(load(settings), names, settings, every=every)
    defined = [*(a.name for a in contents.artifacts), *names]
    return create(contents, list(names), manifest_files(settings, defined), Path(out), split)


def bundle_ls(path: Path) -> BundleIndex:
    """The index of a bundle (or of its first part)."""
    from provision.fleet.bundle import read

    return read(Path(path))


def bundle_import(path: Path, settings: Settings | None = None) -> ImportReport:
    """Verify every blob of a bundle, then make its artifacts ready in the cache (works offline);
    nothing becomes visible unless all of it verifies. See :mod:`provision.fleet.bundle`."""
    from provision.fleet.bundle import import_bundle

    return import_bundle(Path(path), _settings(settings))
