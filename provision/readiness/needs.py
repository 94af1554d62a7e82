"""What NAME needs from this machine: the packages its recipes, runtimes and metric use, and the
disk its files, extractions and preprocessed outputs take beyond what is cached."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from typing import Any

from provision.config import Settings
from provision.errors import MissingDependencyError, ProvisionError
from provision.fsutil import human_bytes
from provision.manifest.folders import as_fetched
from provision.manifest.lockfile import LockFile
from provision.manifest.model import Artifact, Benchmark, Catalog, FileSpec
from provision.readiness.machine import (
    BASE_PACKAGES,
    EXTRA_PACKAGES,
    Check,
    Status,
    existing,
    installed,
    package_check,
)
from provision.sources.schemes import scheme_of
from provision.store.cache import Store
from provision.store.plan import remaining
from provision.validation.models import default_model

__all__ = ["check_disk", "check_packages"]


_METRIC_PACKAGES = {"map": "pycocotools", "auc": "scikit-learn"}


_FORMAT_PACKAGES = {"onnx": "onnxruntime", "torchscript": "torch", "pytorch": "torch"}


_METRIC_ONLY = "metric-only"  # a metric provision implements but 'run' does not validate with


def _recipe_check(recipe_name: str, users: Sequence[str], *, required: bool) -> Check:
    import preprocess

    name = f"recipe {recipe_name}"
    try:
        recipe = preprocess.get(recipe_name)
        libraries = recipe.libraries()
    except KeyError:  # a limit of provision, not of this machine: fetch works, preprocess cannot
        why = "not implemented in this version of provision: 'fetch' works, 'preprocess' and 'run' cannot"
        return Check(name, "warn", f"{why}; used by {', '.join(users)}")
    except MissingDependencyError as exc:  # an optional library of the recipe (nibabel for 3D U-Net)
        status: Status = "fail" if required else "warn"
        return Check(name, status, f"cannot load: {exc}", f"pip install 'provision[{exc.extra}]'")
    except ImportError as exc:
        return Check(
            name,
            "fail" if required else "warn",
            f"cannot load: {exc}",
            "pip install --force-reinstall provision (a base dependency is missing or broken)",
        )
    versions = ", ".join(f"{k} {v}" for k, v in sorted(libraries.items()))
    return Check(name, "ok", f"{versions}; used by {', '.join(users)}")


def _needs(
    catalog: Catalog, entry: Artifact | Benchmark
) -> tuple[dict[str, tuple[list[str], bool]], dict[str, tuple[list[str], bool]]]:
    """``(packages, recipes)`` that ``entry`` needs: ``{dist or recipe: (purposes, required)}``.

    Required means that ``provision run``/``fetch`` of ``entry`` uses it; the other models of a
    benchmark (``--model``), and the runtimes and metrics of a benchmark that provision does not
    validate locally, are optional.
    """
    from provision.validation.tasks.registry import TASKS

    packages: dict[str, tuple[list[str], bool]] = {}
    recipes: dict[str, tuple[list[str], bool]] = {}

    def need(table: dict[str, tuple[list[str], bool]], key: str, why: str, required: bool) -> None:
        whys, req = table.get(key, ([], False))
        table[key] = ([*whys, why], req or required)

    models: list[tuple[Artifact, bool]] = []
    if isinstance(entry, Benchmark):
        default = default_model(catalog, entry)
        models = [(catalog.artifacts[m], m == default) for m in entry.models]
        own = catalog.artifacts[default].preprocess if default else None
        if entry.preprocess is not None:
            need(recipes, entry.preprocess.recipe, entry.name, own is None)
        for art, is_default in models:
            if art.preprocess is not None:
                need(recipes, art.preprocess.recipe, art.name, is_default)
        validated = entry.accuracy is not None and entry.accuracy.metric in TASKS
        models = [(art, required and validated) for art, required in models]
        for metric in entry.metrics:
            name = metric.metric.lower()
            dist = "rouge-score" if name.startswith("rouge") else _METRIC_PACKAGES.get(name)
            if dist:
                local = validated and metric is entry.accuracy
                need(packages, dist, f"{'metric' if local else _METRIC_ONLY} {metric.metric}", local)
        arts = [catalog.artifacts[a] for a in entry.artifact_names]
    else:
        models = [(entry, True)] if entry.kind == "model" else []
        arts = [entry]
    for art, required in models:
        dist = _FORMAT_PACKAGES.get(art.format or "")
        if dist:
            need(packages, dist, f"runs {art.name}", required)
        if art.runtime is not None and art.runtime.architecture:
            need(packages, "torchvision", f"builds {art.runtime.architecture} for {art.name}", required)
    if any(scheme_of(u) == "s3" for a in arts for f in a.files for u in f.urls):
        need(packages, "boto3", "s3:// sources", True)
    return packages, recipes


def _purposes(whys: Sequence[str]) -> str:
    """``["runs a", "runs b", "metric m"]`` -> ``"runs a, b; metric m"``."""
    groups: dict[str, list[str]] = {}
    for why in whys:
        verb, _, obj = why.partition(" ")
        groups.setdefault(verb, []).append(obj)
    return "; ".join(
        f"metric {', '.join(objs)} (not validated by 'run')" if verb == _METRIC_ONLY else f"{verb} {', '.join(objs)}"
        for verb, objs in groups.items()
    )


def check_packages(catalog: Catalog, entry: Artifact | Benchmark | None = None) -> list[Check]:
    """Base packages; with ``entry`` what its recipes and validation need, else every optional extra."""
    missing = [p for p in BASE_PACKAGES if not installed(p)[0]]
    if missing:
        base = Check(
            "packages",
            "fail",
            "missing: " + ", ".join(p.dist for p in missing),
            "pip install --force-reinstall provision",
        )
    else:
        base = Check("packages", "ok", f"{len(BASE_PACKAGES)} base dependencies installed")
    checks = [base]
    if entry is None:
        checks += [package_check(p, f"optional: {p.purpose}", required=False) for p in EXTRA_PACKAGES.values()]
        return checks
    packages, recipes = _needs(catalog, entry)
    checks += [_recipe_check(name, users, required=req) for name, (users, req) in recipes.items()]
    checks += [package_check(EXTRA_PACKAGES[d], _purposes(why), required=req) for d, (why, req) in packages.items()]
    return checks


def needed_artifacts(catalog: Catalog, entry: Artifact | Benchmark, settings: Settings) -> list[Artifact]:
    lock = LockFile(settings.lock_path)
    return [as_fetched(a, lock) for a in catalog.resolve([entry.name])]


def _item_bytes(recipe: str, params: Any) -> int | None:
    """Estimated output bytes per item of ``recipe`` (float32 images, int32 BERT features); None if unknown."""
    try:
        if recipe in ("imagenet-resnet50", "imagenet-torchvision"):
            crop = int(params.get("crop", 224))
            return crop * crop * 3 * 4
        if recipe == "openimages-retinanet":
            height, width = (int(v) for v in params.get("resize", [800, 800]))
            return height * width * 3 * 4
        if recipe == "squad-bert":
            return int(params.get("max_seq_length", 384)) * 3 * 4
    except (TypeError, ValueError):
        return None
    return None


def _preprocessed_need(catalog: Catalog, settings: Settings, bench: Benchmark) -> tuple[int, str]:
    """Bytes ``provision run`` will write as preprocessed outputs (0 when already made), and how it was found."""
    from provision.preprocessing.plan import make_plan
    from provision.preprocessing.runner import preprocessed_path

    default = default_model(catalog, bench)
    spec = (catalog.artifacts[default].preprocess if default else None) or bench.preprocess
    if spec is None:
        return 0, ""
    try:  # a short lock timeout: a fetch in progress elsewhere must not stall the doctor
        plan = make_plan(catalog, bench.name, settings.with_(lock_timeout=1.0), model=default)
        preprocessed_path(plan)
        return 0, "preprocessed: in the cache"
    except (ProvisionError, OSError, ImportError):  # not fetched / not made / a recipe library missing
        pass
    per = _item_bytes(spec.recipe, spec.params)
    if per is None or bench.dataset_size is None:
        return 0, f"preprocessed ({spec.recipe}): no estimate"
    total = per * bench.dataset_size
    return total, f"preprocessed ~{human_bytes(total)} (estimate: {bench.dataset_size:,} x {human_bytes(per)})"


def check_disk(catalog: Catalog, settings: Settings, entry: Artifact | Benchmark | None = None) -> Check:
    """Free space on the cache's filesystem vs what ``entry`` still needs there (downloads, extraction, outputs)."""

    folder = existing(settings.cache_dir)
    try:
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        return Check("disk", "fail", f"cannot read free space of {folder}: {exc.strerror or exc}")
    if entry is None:
        status: Status = "ok" if free > settings.disk_reserve else "warn"
        return Check(
            "disk",
            status,
            f"{human_bytes(free)} free in {folder}",
            "" if status == "ok" else "free space ('provision gc') or use a bigger disk",
        )
    store = Store(settings.cache_dir)
    lock = LockFile(settings.lock_path)
    manifest_arts = catalog.resolve([entry.name])
    cached = sum(store.usage(as_fetched(a, lock))["bytes"] for a in manifest_arts)
    need = remaining(store, manifest_arts, lock)
    parts = [need.describe()]
    preprocessed = 0
    if isinstance(entry, Benchmark):
        preprocessed, note = _preprocessed_need(catalog, settings, entry)
        if note:
            parts.append(note)
    needed = need.total + preprocessed
    detail = (
        f"{entry.name} needs {'~' if need.estimated else ''}{human_bytes(needed)} more ({', '.join(parts)}; "
        f"{human_bytes(cached)} already downloaded), {human_bytes(free)} free in {folder}"
    )
    if needed + settings.disk_reserve > free:
        return Check(
            "disk",
            "fail",
            f"not enough space: {detail} (plus the {human_bytes(settings.disk_reserve)} reserve)",
            "free space ('provision gc') or point --cache-dir / PROVISION_CACHE at a bigger disk",
        )
    return Check("disk", "ok", detail)


def file_in_cache(store: Store, art: Artifact, spec: FileSpec) -> bool:
    """Whether ``spec``'s bytes are in the cache already (its blob or its artifact file)."""
    if spec.is_folder:
        return False
    blob = spec.checksum.known and store.blob_path(spec.checksum).exists()
    return blob or (store.artifact_dir(art.name) / spec.name).exists()
