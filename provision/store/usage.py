"""What the catalog defines, seen beside what the cache holds: the documents of ``list``, ``show`` and ``status``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from provision.errors import NotFetchedError
from provision.manifest.folders import as_fetched
from provision.manifest.lockfile import LockFile
from provision.manifest.model import AccuracySpec, Artifact, Benchmark, Catalog, FileSpec
from provision.store.cache import Store
from provision.store.plan import DiskNeed, remaining

__all__ = [
    "artifact_detail",
    "artifact_folders",
    "benchmark_facts",
    "cache_status",
    "describe_entry",
    "entry_summary",
    "planned_doc",
]


def planned_doc(need: DiskNeed) -> dict[str, Any]:
    """The JSON form of a :class:`DiskNeed` (bytes; ``estimated`` from the sources' rounded sizes)."""
    return {
        "exact": need.exact,
        "estimated": need.estimated,
        "unknown": need.unknown,
        "extracted": need.extracted,
        "extracted_unknown": need.extracted_unknown,
        "summary": need.describe(),
    }


def benchmark_facts(b: Benchmark) -> dict[str, Any]:
    """Suite, rounds, status and the checker's names of benchmark ``b`` (``list`` and ``show``)."""
    return {
        "suite": b.suite,
        "rounds": list(b.rounds),
        "status": b.status,
        "status_text": b.status_text,
        "retired_after": b.retired_after,
        "checker_names": list(b.checker_names),
        "round_names": {r: list(b.names_in(r)) for r in b.rounds},
    }


def entry_summary(entry: Artifact | Benchmark, catalog: Catalog, store: Store, lock: LockFile) -> dict[str, Any]:
    """One row of ``provision list``: name, kind, size, state in the cache."""
    if isinstance(entry, Benchmark):
        arts = [catalog.artifacts[a] for a in entry.artifact_names]
        states = {store.usage(as_fetched(a, lock))["state"] for a in arts}
        state = states.pop() if len(states) == 1 else ("absent" if states == {"absent"} else "partial")
        return {
            "name": entry.name,
            "kind": "benchmark",
            **benchmark_facts(entry),
            "description": entry.description,
            "aliases": list(entry.aliases),
            "artifacts": list(entry.artifact_names),
            "size": sum(a.size or 0 for a in arts),
            "unknown_sizes": sum(1 for a in arts for f in a.files if f.size is None),
            "dataset": entry.dataset,
            "extra_datasets": list(entry.extra_datasets),
            "models": list(entry.models),
            "dataset_size": entry.dataset_size,
            "performance_sample_count": entry.performance_sample_count,
            "accuracy_sample_count": entry.accuracy_sample_count or entry.dataset_size,
            "metrics": [_metric(m) for m in entry.metrics],
            "quality": [asdict(q) for q in entry.quality],
            "access": sorted({a.access for a in arts}),
            "estimated_size": sum(a.planned_size[1] for a in arts),
            "unsized": sum(a.planned_size[2] for a in arts),  # neither a size nor a rounded figure
            "planned": planned_doc(remaining(store, arts, lock)),
            "state": state,
        }
    usage = store.usage(as_fetched(entry, lock))
    return {
        "name": entry.name,
        "kind": entry.kind,
        "description": entry.description,
        "aliases": list(entry.aliases),
        "format": entry.format,
        "files": len(entry.files),
        "size": entry.size if entry.size is not None else sum(f.size or 0 for f in entry.files),
        "unknown_sizes": sum(1 for f in entry.files if f.size is None),
        "estimated_size": entry.planned_size[1],
        "unsized": entry.planned_size[2],
        "planned": planned_doc(remaining(store, [entry], lock)),
        "state": usage["state"],
    }


def _file_doc(f: FileSpec) -> dict[str, Any]:
    checksum = "listed" if f.is_folder else str(f.checksum)
    doc: dict[str, Any] = {"name": f.name, "urls": list(f.urls), "size": f.size, "checksum": checksum}
    if f.approx_size is not None:
        doc["approx_size"] = f.approx_size
    if f.listed_count is not None:
        doc["listed_count"] = f.listed_count
    if f.pins:
        doc["pins"] = {path: str(c) for path, c in f.pins.items()}
    if f.trust:
        doc["trust"] = f.trust
    if f.extract is not None:
        doc["extract_to"] = f.extract.to
    return doc


def artifact_detail(art: Artifact, store: Store, lock: LockFile) -> dict[str, Any]:
    """Everything the manifest says about artifact ``art``, plus its state in the cache."""
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
        "estimated_size": art.planned_size[1],
        "planned": planned_doc(remaining(store, [art], lock)),
        "cache": store.usage(as_fetched(art, lock)),
    }


def _metric(m: AccuracySpec) -> dict[str, Any]:
    return {**asdict(m), "target_ratio": list(m.target_ratio), "targets": list(m.targets())}


def describe_entry(entry: Artifact | Benchmark, catalog: Catalog, store: Store, lock: LockFile) -> dict[str, Any]:
    """Everything the manifests say about ``entry`` (a benchmark: its plan), plus its state in the cache."""
    if isinstance(entry, Artifact):
        return artifact_detail(entry, store, lock)
    return {
        "name": entry.name,
        "kind": "benchmark",
        "description": entry.description,
        "notes": entry.notes,
        "aliases": list(entry.aliases),
        "manifest": str(entry.source) if entry.source else None,
        "dataset": entry.dataset,
        "extra_datasets": list(entry.extra_datasets),
        "labels": str(entry.labels) if entry.labels else None,
        "models": list(entry.models),
        "preprocess": (
            {"recipe": entry.preprocess.recipe, **dict(entry.preprocess.params)} if entry.preprocess else None
        ),
        "generation": entry.generation.to_json() if entry.generation else None,
        "accuracy": _metric(entry.accuracy) if entry.accuracy else None,
        "metrics": [_metric(m) for m in entry.metrics],
        **benchmark_facts(entry),
        "dataset_size": entry.dataset_size,
        "performance_sample_count": entry.performance_sample_count,
        "accuracy_sample_count": entry.accuracy_sample_count or entry.dataset_size,
        "scenario_sample_counts": dict(entry.scenario_sample_counts),
        "quality": [asdict(q) for q in entry.quality],
        "subsets": dict(entry.subsets),
        "total_size": sum(catalog.artifacts[a].size or 0 for a in entry.artifact_names),
        "unknown_sizes": sum(1 for a in entry.artifact_names for f in catalog.artifacts[a].files if f.size is None),
        "estimated_size": sum(catalog.artifacts[a].planned_size[1] for a in entry.artifact_names),
        "unsized": sum(catalog.artifacts[a].planned_size[2] for a in entry.artifact_names),
        "planned": planned_doc(remaining(store, [catalog.artifacts[a] for a in entry.artifact_names], lock)),
        "licence_gates": [
            {"artifact": a, "access": catalog.artifacts[a].access, "license": catalog.artifacts[a].license}
            for a in entry.artifact_names
            if catalog.artifacts[a].access != "public"
        ],
        "artifacts": [artifact_detail(catalog.artifacts[a], store, lock) for a in entry.artifact_names],
    }


def cache_status(catalog: Catalog, store: Store, lock: LockFile) -> dict[str, Any]:
    """Disk use per artifact present in ``store``, plus partial downloads (``provision status``)."""
    rows = [store.usage(as_fetched(a, lock)) for a in sorted(catalog.artifacts.values(), key=lambda a: a.name)]
    return {
        "cache": str(store.root),
        "artifacts": [r for r in rows if r["state"] != "absent"],
        "total_bytes": sum(r["bytes"] for r in rows),
        "partial_bytes": store.partial_bytes(),
    }


def artifact_folders(catalog: Catalog, name: str, store: Store, lock: LockFile) -> list[tuple[str, Path]]:
    """``[(artifact, folder)]`` for ``name`` (``provision path``); :class:`NotFetchedError` when one is not
    completely fetched."""
    out = []
    for art in catalog.resolve([name]):
        usage = store.usage(as_fetched(art, lock))
        if usage["state"] not in ("present",):
            trees = f", {usage['trees']}/{usage['trees_total']} archives extracted" if usage["trees_total"] else ""
            raise NotFetchedError(
                f"{art.name} is not fetched ({usage['files']}/{usage['files_total']} files{trees} in "
                f"{usage['path']}, {usage['state']}); run 'provision fetch {name}'",
                path=usage["path"],
            )
        out.append((art.name, store.artifact_dir(art.name)))
    return out
