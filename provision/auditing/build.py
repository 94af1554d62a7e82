"""Reproducibility audits: one JSON document holding everything a benchmark result depends on.

``build_audit`` describes one benchmark (with one model and subset) on this machine: the
manifest entries, every fetched file, the extracted trees, the preprocessing run, the stored
validation results, the libraries and the environment. Two audits from two machines are
compared by :mod:`provision.auditing.diff` ("why does B get 76.12% when A gets 76.46%?").

Nothing is read that the cache already vouches for: a file whose (size, mtime_ns, inode)
equals its record is taken from the record; only a file whose stat changed is re-hashed
(xxh3_128), and ``stats.files_rehashed`` says how many were.

Schema ``provision-audit/1``, top-level keys:

- ``schema``, ``tool`` (``name``, ``version``), ``created`` (UTC), ``host``, ``cache``;
- ``benchmark``, ``model``, ``subset``;
- ``manifests``: ``entries`` (``benchmark`` and ``artifacts``: the manifest entries used, as
  plain data), ``files`` (``{manifest path: "sha256:<hex>"}``) and ``digest`` (sha256 over the
  canonical JSON of ``entries``: sorted keys, no spaces, paths left out);
- ``artifacts``: ``{artifact: {"kind", "path", "files": {file: {"size", "checksum",
  "published", "xxh3_128", "state"}}}}``; ``state`` is ``ok``, ``changed`` (not the bytes
  verified), ``missing``, ``dropped`` (archive removed after extraction) or ``stale`` (the
  record is for another checksum than the manifest's);
- ``extracted``: ``{artifact: {archive file: tree}}``;
- ``preprocessed``: the run (``path``, ``key``, ``run``: its ``run.json`` without the
  per-file tree) and its tree, or ``null``;
- a *tree* is ``{"digest", "recorded_digest", "state", "problems", "count", "bytes",
  "files", "links"}`` where ``files`` maps each relative path (``/``-separated) to
  ``"<xxh3_128 hex>:<size in bytes>"`` and ``links`` maps symlinks to their targets;
  ``digest`` is the tree digest of ``provision hash --tree`` over what is on disk now;
- ``validation``: the stored validation results of this preprocessing run for this model,
  each as stored (``<key16>.validation/*.json``);
- ``libraries``: ``opencv_build`` (see :func:`opencv_build_info`) and ``numpy_build``;
- ``environment``: ``os``, ``cpu`` (model, flags), ``gpu`` (nvidia-smi, torch, onnxruntime
  providers), ``python``, ``packages`` (version or ``null``) and ``variables`` (see
  :func:`provision.config.environment_snapshot`; secrets redacted);
- ``notes``: ``{section: why it is empty}``; ``stats``: files checked and re-hashed, seconds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from provision.auditing.document import SCHEMA
from provision.config import Settings, environment_snapshot, redact_url
from provision.errors import IntegrityError, NotFetchedError, UsageError
from provision.manifest.checksum import Checksum
from provision.manifest.folders import as_fetched
from provision.manifest.lockfile import LockFile
from provision.manifest.model import Artifact, Benchmark, Catalog
from provision.preprocessing.plan import RUN_FILE, artifact_digest, load_json, make_plan, tree_of
from provision.progress import NullProgress
from provision.store.cache import Store
from provision.store.hashing import FAST_ALG, hash_file
from provision.store.records import DROPPED
from provision.store.trees import TreeFile, TreeRecord, extraction_key, load_trees, tree_digest
from provision.validation.generation import dataset_key
from provision.validation.models import default_model
from provision.validation.runners.device import usable_cores
from provision.version import __version__

__all__ = ["build_audit", "environment_info", "library_builds", "manifest_data", "opencv_build_info"]

#: Packages whose versions are recorded (absent ones as null); ``nvidia-*`` wheels are added as found.
PACKAGES = (
    "provision", "numpy", "opencv-python", "opencv-python-headless", "opencv-contrib-python",
    "opencv-contrib-python-headless", "pillow", "pillow-simd", "tokenizers", "transformers", "torch", "torchvision",
    "onnxruntime", "onnxruntime-gpu", "onnx", "pycocotools", "scikit-learn", "rouge-score", "nltk", "scipy",
    "huggingface-hub", "xxhash", "nvidia-ml-py", "requests",
)  # fmt: skip
_FIRST_PROBLEMS = 10


class _Stats:
    """How much an audit had to look at."""

    def __init__(self) -> None:
        self.files_checked = 0
        self.files_rehashed = 0
        self.bytes_rehashed = 0

    def rehash(self, path: Path, size: int) -> str:
        self.files_rehashed += 1
        self.bytes_rehashed += size
        return hash_file(path, [FAST_ALG])[FAST_ALG]


# -- plain data -----------------------------------------------------------------------------
def manifest_data(value: Any) -> Any:
    """Manifest dataclasses as JSON-ready data (``source`` paths left out: they are per machine;
    credentials in URLs redacted)."""
    if isinstance(value, Checksum):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        doc = {f.name: manifest_data(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "source"}
        if isinstance(doc.get("urls"), list):
            doc["urls"] = [redact_url(str(u)) for u in doc["urls"]]
        return doc
    if isinstance(value, Mapping):
        return {str(k): manifest_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [manifest_data(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def canonical(doc: Any) -> str:
    """Sorted keys, no spaces, UTF-8: the text digests are taken over."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _manifests(bench: Benchmark, arts: list[Artifact]) -> dict[str, Any]:
    entries = {"benchmark": manifest_data(bench), "artifacts": {a.name: manifest_data(a) for a in arts}}
    files: dict[str, str] = {}
    used: list[Benchmark | Artifact] = [bench, *arts]
    for entry in used:
        if entry.source is not None and str(entry.source) not in files:
            try:
                files[str(entry.source)] = "sha256:" + hashlib.sha256(Path(entry.source).read_bytes()).hexdigest()
            except OSError as exc:
                files[str(entry.source)] = f"unreadable ({exc.__class__.__name__})"
    digest = "sha256:" + hashlib.sha256(canonical(entries).encode()).hexdigest()
    return {"entries": entries, "files": files, "digest": digest}


# -- files and trees --------------------------------------------------------------------------
def _artifact(store: Store, art: Artifact, stats: _Stats) -> dict[str, Any]:
    """Each file of ``art``: its record, checked with the stat fast path (re-hashed only when changed)."""
    records = store.load_record(art.name)
    files: dict[str, Any] = {}
    for spec in art.files:
        entry = records.get(spec.name)
        published = "listed" if spec.is_folder else str(spec.checksum)
        doc: dict[str, Any] = {"size": None, "checksum": None, "published": published, "xxh3_128": None}
        stats.files_checked += 1
        if entry is None:
            files[spec.name] = {**doc, "state": "missing"}
            continue
        doc.update(size=entry.size, checksum=entry.checksum, xxh3_128=f"{FAST_ALG}:{entry.xxh3_128}")
        if spec.checksum.known and entry.checksum != published:
            doc["state"] = "stale"
        elif entry.link == DROPPED:
            doc["state"] = "dropped"
        else:
            view = store.artifact_dir(art.name) / spec.name
            try:
                st = view.stat()
            except OSError:
                doc["state"] = "missing"
            else:
                doc["state"] = "ok"
                if not entry.stat_matches(st):
                    got = stats.rehash(view, st.st_size)
                    doc.update(size=st.st_size, xxh3_128=f"{FAST_ALG}:{got}")
                    if (got, st.st_size) != (entry.xxh3_128, entry.size):
                        doc["state"] = "changed"
        files[spec.name] = doc
    return {"kind": art.kind, "path": str(store.artifact_dir(art.name)), "files": files}


def _scan(root: Path) -> tuple[dict[str, os.stat_result], dict[str, str]]:
    """Every regular file (with its stat) and symlink under ``root``, by ``/``-separated relative path."""
    files: dict[str, os.stat_result] = {}
    links: dict[str, str] = {}
    stack = [("", root)]
    while stack:
        prefix, folder = stack.pop()
        with os.scandir(folder) as entries:
            for e in entries:
                rel = prefix + e.name
                if e.is_symlink():
                    links[rel] = os.readlink(e.path)
                elif e.is_dir(follow_symlinks=False):
                    stack.append((rel + "/", Path(e.path)))
                elif e.is_file(follow_symlinks=False):
                    files[rel] = e.stat(follow_symlinks=False)
    return files, links


def _tree(root: Path, record: TreeRecord, stats: _Stats, *, skip: str = "") -> dict[str, Any]:
    """What is on disk at ``root`` compared with ``record``: per-file ``"<xxh3>:<size>"``, digest, problems."""
    if record.kind == "file":
        name = next(iter(record.files), root.name)
        on_disk = {name: root.stat()} if root.is_file() else {}
        links: dict[str, str] = {}
    elif root.is_dir():
        on_disk, links = _scan(root)
        on_disk.pop(skip, None)
    else:
        on_disk, links = {}, {}
    actual: dict[str, TreeFile] = {}
    changed: list[str] = []
    for rel, st in on_disk.items():
        stats.files_checked += 1
        want = record.files.get(rel)
        if want is not None and (st.st_size, st.st_mtime_ns, st.st_ino) == (want.size, want.mtime_ns, want.ino):
            actual[rel] = want
            continue
        path = root if record.kind == "file" else root / rel
        actual[rel] = TreeFile(st.st_size, stats.rehash(path, st.st_size))
        if want is not None and (want.size, want.xxh3_128) != (st.st_size, actual[rel].xxh3_128):
            changed.append(rel)
    missing = sorted(set(record.files) - set(on_disk))
    extra = sorted(set(on_disk) - set(record.files))
    links_changed = sorted(k for k in set(record.links) | set(links) if record.links.get(k) != links.get(k))
    problems = (
        [f"changed {p}" for p in sorted(changed)]
        + [f"missing {p}" for p in missing]
        + [f"extra {p}" for p in extra]
        + [f"link {p}" for p in links_changed]
    )
    return {
        "digest": tree_digest(actual, links),
        "recorded_digest": record.digest,
        "state": "ok" if not problems else "changed",
        "problems": problems[:_FIRST_PROBLEMS],
        "problem_count": len(problems),
        "count": len(actual),
        "bytes": sum(f.size for f in actual.values()),
        "files": {rel: f"{f.xxh3_128}:{f.size}" for rel, f in sorted(actual.items())},
        "links": dict(sorted(links.items())),
    }


def _extracted(store: Store, art: Artifact, stats: _Stats) -> dict[str, Any]:
    trees = load_trees(store, art.name)
    out: dict[str, Any] = {}
    for spec in art.archives:
        assert spec.extract is not None
        root = store.artifact_dir(art.name) / spec.extract.to
        base = {
            "to": spec.extract.to,
            "path": str(root),
            "pinned": str(spec.extract.tree) if spec.extract.tree else None,
        }
        entry = trees.get(spec.name)
        try:
            record = TreeRecord.from_json(entry) if entry else None
        except (KeyError, TypeError, ValueError, IndexError):
            record = None
        if entry is None or record is None:
            out[spec.name] = {
                **base,
                "state": "missing",
                "note": "no completion record (never extracted, or interrupted)",
            }
            continue
        tree = _tree(root, record, stats)
        if entry.get("key") != extraction_key(spec):
            tree["state"] = "stale"
            tree["note"] = "extracted with other archive settings or another archive than the manifest's"
        out[spec.name] = {**base, "kind": record.kind, **tree}
    return out


# -- preprocessing and validation ---------------------------------------------------------------
def _other_runs(root: Path, key16: str) -> str:
    """Other complete runs of the benchmark in ``root`` (name and library signature), for the note."""
    if not root.is_dir():
        return ""
    others = sorted(p for p in root.iterdir() if "." not in p.name and p.name != key16 and p.is_dir())
    described = []
    for p in others[:3]:
        doc = load_json(p / RUN_FILE) or {}
        described.append(f"{p.name} ({doc.get('recipe', '?')} {doc.get('version', '?')}, {doc.get('signature', '?')})")
    more = f" and {len(others) - 3} more" if len(others) > 3 else ""
    return f"; other runs there: {', '.join(described)}{more}" if described else ""


def _preprocessed(
    catalog: Catalog, bench: Benchmark, model: str | None, subset: str | None, settings: Settings, stats: _Stats
) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, str]]:
    """(the preprocessing run, its validation results for ``model``, notes)."""
    notes: dict[str, str] = {}
    sub = f" --subset {subset}" if subset else ""
    if bench.generation is not None:
        return _generative_results(catalog, bench, model, settings, notes)
    try:
        plan = make_plan(catalog, bench.name, settings, subset=subset, model=model)
    except (IntegrityError, UsageError) as exc:
        notes["preprocessed"] = notes["validation"] = f"no preprocessing run can be resolved: {exc}"
        return None, [], notes
    doc = load_json(plan.path / RUN_FILE)
    record = tree_of(doc) if doc is not None and doc.get("key") == plan.key else None
    if doc is None or record is None:
        notes["preprocessed"] = (
            f"no preprocessing run for key {plan.key[:16]} (this machine's inputs, recipe and libraries: "
            f"{plan.signature}) in {plan.root}{_other_runs(plan.root, plan.key[:16])}; "
            f"run 'provision preprocess {bench.name}{sub}'"
        )
        notes["validation"] = "no preprocessing run, so no validation result"
        return None, [], notes
    run = {k: v for k, v in doc.items() if k != "tree"}
    section = {"path": str(plan.path), "key": plan.key, "run": run, **_tree(plan.path, record, stats, skip=RUN_FILE)}
    results = []
    folder = plan.root / f"{plan.key[:16]}.validation"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        stored = load_json(path)
        if stored is not None and (model is None or stored.get("model") == model):
            results.append(stored)
    if not results:
        notes["validation"] = (
            f"no stored validation result for model {model} in {folder}; run 'provision validate {bench.name}{sub}'"
        )
    return section, results, notes


def _generative_results(
    catalog: Catalog, bench: Benchmark, model: str | None, settings: Settings, notes: dict[str, str]
) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, str]]:
    """A generative benchmark has no preprocessing run: its results sit under its dataset's key, each
    holding the engine, versions, dtype, device and every generation setting it ran with."""
    notes["preprocessed"] = "a generative benchmark: validation reads the published dataset file (no preprocessing)"
    store = Store(settings.cache_dir)
    try:
        art = as_fetched(catalog.artifacts[bench.dataset], LockFile(settings.lock_path))
        digest = artifact_digest(store, art, bench.name, settings, NullProgress())
    except (IntegrityError, NotFetchedError, UsageError) as exc:
        notes["validation"] = f"the dataset cannot be resolved: {exc}"
        return None, [], notes
    folder = store.root / "preprocessed" / bench.name / f"{dataset_key(digest)[:24]}.validation"
    results = [
        stored
        for path in (sorted(folder.glob("*.json")) if folder.is_dir() else [])
        if (stored := load_json(path)) is not None and (model is None or stored.get("model") == model)
    ]
    if not results:
        notes["validation"] = (
            f"no stored validation result for model {model} in {folder}; run 'provision validate {bench.name}'"
        )
    return None, results, notes


# -- libraries and environment -------------------------------------------------------------------
_OPENCV_KEYS = {
    "Version control": "version_control", "Baseline": "cpu_baseline", "Dispatched code generation": "cpu_dispatch",
    "Algorithm Hint": "algorithm_hint", "Parallel framework": "parallel_framework", "ZLib": "zlib", "JPEG": "jpeg",
    "PNG": "png", "WEBP": "webp", "TIFF": "tiff", "JPEG 2000": "jpeg2000", "Intel IPP": "ipp", "Custom HAL": "hal",
    "Lapack": "lapack",
}  # fmt: skip


def opencv_build_info(text: str) -> dict[str, str]:
    """The lines of ``cv2.getBuildInformation()`` that can change decoded or resized bytes.

    ``version``, the CPU baseline and dispatched instruction sets, the parallel framework, the
    image codecs (JPEG, PNG, ... with their versions; a system library's folder is dropped,
    its file name kept), Intel IPP, the HAL and LAPACK; ``jpeg_simd`` when reported.
    """
    out: dict[str, str] = {}
    head = re.search(r"General configuration for OpenCV (\S+)", text)
    if head:
        out["version"] = head[1]
    last = ""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key, value = key.strip(), " ".join(value.split())
        if not sep:
            continue
        if key == "SIMD Support" and last == "jpeg":
            out["jpeg_simd"] = value
            continue
        name = _OPENCV_KEYS.get(key)
        if name is not None and name not in out:
            words = value.split(" ")
            if words and words[0].startswith("/"):  # a system library path: keep its file name
                words[0] = words[0].rsplit("/", 1)[-1]
            out[name] = " ".join(words)
        if key and not key.startswith(("SIMD", "Metadata")):
            last = name or ""
    return out


def library_builds() -> dict[str, Any]:
    """How OpenCV and numpy were built here (JPEG/PNG libraries, parallel framework, SIMD, BLAS)."""
    out: dict[str, Any] = {"opencv_build": None, "numpy_build": None}
    with contextlib.suppress(Exception):
        import cv2

        out["opencv_build"] = opencv_build_info(str(cv2.getBuildInformation()))
    with contextlib.suppress(Exception):
        import numpy as np

        config: Any = np.show_config(mode="dicts")  # type: ignore[no-untyped-call,unused-ignore]
        blas = config.get("Build Dependencies", {}).get("blas", {})
        simd = config.get("SIMD Extensions", {})
        out["numpy_build"] = {
            "blas": f"{blas.get('name', '?')} {blas.get('version', '')}".strip(),
            "simd_baseline": list(simd.get("baseline", [])),
            "simd_found": list(simd.get("found", [])),
        }
    return out


def _cpu() -> dict[str, Any]:
    info: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() not in info and value.strip():
                info[key.strip()] = value.strip()
            if not line.strip() and info:
                break  # the first processor describes them all
    model = next((info[k] for k in ("model name", "Model", "Hardware", "cpu model") if k in info), "")
    flags = info.get("flags") or info.get("Features") or ""
    return {
        "model": model or platform.processor() or platform.machine() or "unknown",
        "machine": platform.machine(),
        "flags": sorted(set(flags.split())),
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
    }


def _gpu() -> dict[str, Any]:
    """nvidia-smi (short timeout), torch's CUDA build and devices, onnxruntime's providers; never fails."""
    out: dict[str, Any] = {"nvidia_smi": None, "torch": None, "onnxruntime_providers": None, "notes": []}
    smi = shutil.which("nvidia-smi")
    if smi is None:
        out["notes"].append("nvidia-smi not found")
    else:
        try:
            res = subprocess.run(
                [smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            rows = [[p.strip() for p in line.split(",")] for line in res.stdout.splitlines() if line.strip()]
            out["nvidia_smi"] = [{"name": r[0], "driver": r[1] if len(r) > 1 else None} for r in rows]
            if res.returncode != 0:
                out["notes"].append(f"nvidia-smi exited {res.returncode}: {res.stderr.strip()[:200]}")
        except (OSError, subprocess.SubprocessError) as exc:
            out["notes"].append(f"nvidia-smi failed: {exc.__class__.__name__}")
    if importlib.util.find_spec("torch") is not None:
        try:
            import torch

            available = bool(torch.cuda.is_available())
            devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if available else []
            out["torch"] = {
                "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version() if available else None,  # type: ignore[no-untyped-call]
                "cuda_available": available,
                "devices": devices,
            }
        except Exception as exc:  # a broken CUDA setup is a fact to record, not a failure
            out["notes"].append(f"torch: {exc.__class__.__name__}: {str(exc)[:200]}")
    if importlib.util.find_spec("onnxruntime") is not None:
        try:
            import onnxruntime

            out["onnxruntime_providers"] = list(onnxruntime.get_available_providers())
        except Exception as exc:
            out["notes"].append(f"onnxruntime: {exc.__class__.__name__}: {str(exc)[:200]}")
    return out


def _packages() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    for dist in importlib.metadata.distributions():
        name = str(dist.metadata["Name"] or "").lower()
        if name.startswith("nvidia-") and name not in out:
            out[name] = dist.version
    return dict(sorted(out.items()))


def _os_release() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text(errors="replace").splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.partition("=")[2].strip().strip('"')
    return ""


def environment_info() -> dict[str, Any]:
    """This machine: OS, CPU, GPUs, Python, the packages that can change a result, relevant variables."""
    return {
        "os": {
            "system": platform.system(),
            "release": platform.release(),
            "version": platform.version(),
            "distribution": _os_release(),
            "libc": " ".join(platform.libc_ver()).strip(),
        },
        "cpu": _cpu(),
        "gpu": _gpu(),
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "compiler": platform.python_compiler(),
            "executable": sys.executable,
        },
        "packages": _packages(),
        "variables": environment_snapshot(),
    }


# -- the document ----------------------------------------------------------------------------------
def build_audit(
    catalog: Catalog, name: str, settings: Settings, *, model: str | None = None, subset: str | None = None
) -> dict[str, Any]:
    """The audit document of benchmark ``name`` with ``model`` (default: as ``provision run``) and ``subset``.

    Reads no file content the cache records vouch for (see the module docstring for the
    schema). :class:`NotFetchedError` when an artifact the run uses is not fetched; a missing
    preprocessing run or validation result is not an error (its section is empty, with a note).
    """
    started = time.perf_counter()
    entry = catalog.get(name)
    if not isinstance(entry, Benchmark):
        raise UsageError(f"{name!r} is a {entry.kind}; 'provision audit' takes a benchmark (see 'provision list')")
    bench = entry
    if model is not None and model not in bench.models:
        raise UsageError(f"{bench.name} has no model {model!r}; its models: {', '.join(bench.models) or 'none'}")
    chosen = model or default_model(catalog, bench)
    target = bench.with_subset(subset) if subset is not None and subset in bench.subsets else bench
    names = [target.dataset] + ([target.labels.artifact] if target.labels else []) + ([chosen] if chosen else [])
    names = list(dict.fromkeys(names))
    store = Store(settings.cache_dir)
    lock = LockFile(settings.lock_path)
    resolved = [as_fetched(catalog.artifacts[n], lock) for n in names]
    sub = f" --subset {subset}" if subset else ""
    for art in resolved:
        usage = store.usage(art)
        if usage["state"] != "present":
            raise NotFetchedError(
                f"{art.name} ({bench.name}) is not fetched and verified here ({usage['files']}/{usage['files_total']} "
                f"files in {usage['path']}); run 'provision run {bench.name}{sub}' first",
                path=usage["path"],
            )
    stats = _Stats()
    artifacts = {art.name: _artifact(store, art, stats) for art in resolved}
    extracted = {art.name: _extracted(store, art, stats) for art in resolved if art.archives}
    preprocessed, validation, notes = _preprocessed(catalog, bench, chosen, subset, settings, stats)
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "tool": {"name": "provision", "version": __version__},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": socket.gethostname(),
        "cache": str(store.root),
        "benchmark": bench.name,
        "model": chosen,
        "subset": subset,
        "manifests": _manifests(target, [catalog.artifacts[n] for n in names]),
        "artifacts": artifacts,
        "extracted": extracted,
        "preprocessed": preprocessed,
        "validation": validation,
        # The environment first: importing cv2 (for its build information) sets LD_LIBRARY_PATH.
        "environment": environment_info(),
        "notes": notes,
    }
    doc["libraries"] = library_builds()
    doc["stats"] = {
        "files_checked": stats.files_checked,
        "files_rehashed": stats.files_rehashed,
        "bytes_rehashed": stats.bytes_rehashed,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return doc
