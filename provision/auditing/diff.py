"""Comparing two audits (:mod:`provision.auditing`): what differs, most likely cause first.

Host names, creation times, cache roots and other absolute paths, and the audits' own
statistics are never compared (the audits hold no mtimes or inodes). Every difference is a
:class:`Finding` in one category, and the findings are ordered by likely cause:

0. ``setup``: another model or subset was audited;
1. ``environment``: library versions that can change bytes or arithmetic (OpenCV, numpy,
   Pillow, tokenizers, torch, torchvision, onnxruntime, the metric libraries, provision), the
   OpenCV build (JPEG/PNG library, IPP, CPU dispatch), numpy's build, the validation runtime
   (CPU vs GPU device, device model, runtime version, threads, batch size, TF32 and the other
   determinism settings), the GPU (model, driver, CUDA, cuDNN), the CPU (architecture,
   vector instruction sets such as AVX-512 vs AVX2, which change float reduction order) and
   the environment variables numeric libraries read;
2. ``manifests``: manifest entries that differ (URLs, descriptions and notes only inform);
3. ``artifacts``: fetched files whose checksum, xxh3_128 or size differ;
4. ``extracted``: extracted trees whose digests differ, with the files that differ;
5. ``preprocessed``: the recipe, version, parameters, recorded libraries and input digests,
   then the output files that differ, with the max absolute difference of ``.npy`` arrays when
   both files can be read from this machine (the recorded folders, or ``data_a``/``data_b``);
6. ``validation``: accuracy deltas (value, target, pass/fail, samples; samples/s informs).

Findings that can change results come first, in this order; information-only ones
(``changes_results`` false: OS, Python, other packages, throughput) follow in the same order.
Two audits are *equivalent* when no finding can change results.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from provision.auditing.document import SCHEMA
from provision.errors import UsageError

__all__ = ["CATEGORIES", "AuditDiff", "Finding", "diff_audits"]

CATEGORIES = ("setup", "environment", "manifests", "artifacts", "extracted", "preprocessed", "validation")

_OPENCV = "image decoding and resizing (preprocessed bytes)"
_MODEL = "the model's arithmetic (validation)"
#: Packages that can change results, most likely first, with what they change.
RESULT_PACKAGES: dict[str, str] = {
    "opencv-python": _OPENCV,
    "opencv-python-headless": _OPENCV,
    "opencv-contrib-python": _OPENCV,
    "opencv-contrib-python-headless": _OPENCV,
    "numpy": "array arithmetic in the recipes (preprocessed bytes)",
    "pillow": "image decoding and resizing in the PyTorch profile (preprocessed bytes)",
    "pillow-simd": "image decoding and resizing in the PyTorch profile (preprocessed bytes)",
    "tokenizers": "tokenisation (BERT features)",
    "transformers": "tokenisation and model code",
    "onnxruntime": _MODEL,
    "onnxruntime-gpu": _MODEL,
    "torch": _MODEL,
    "torchvision": "the model architecture for state-dict checkpoints (validation)",
    "onnx": "model loading",
    "pycocotools": "the COCO mAP metric",
    "scikit-learn": "the AUC metric",
    "rouge-score": "the ROUGE metrics",
    "nltk": "sentence splitting for ROUGE-Lsum",
    "scipy": "metrics",
    "provision": "recipes, tasks and scoring code",
}
#: CPU flags that change which vector code numeric libraries run (and so float reduction order).
_VECTOR_FLAGS = ("sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "asimd", "sve", "sve2", "neon")
_VARIABLE_PREFIXES = (
    "OMP_", "GOMP_", "KMP_", "MKL_", "OPENBLAS_", "GOTO_", "BLIS_", "VECLIB_", "CUDA_", "CUBLAS_", "CUBLASLT_",
    "CUDNN_", "NVIDIA_", "TORCH_", "PYTORCH_", "TORCHINDUCTOR_", "ORT_", "ONNXRUNTIME_", "OPENCV_", "TF_", "XLA_",
    "DNNL_", "ONEDNN_", "NPY_", "NUMPY_", "ROCM_", "HIP_", "HSA_",
)  # fmt: skip
_VARIABLES = {"PYTHONHASHSEED", "LD_PRELOAD", "LD_LIBRARY_PATH", "PYTHONPATH", "PYTHONOPTIMIZE"}
#: Manifest fields that say where or why, never what: their differences only inform.
_INFO_FIELDS = {"urls", "description", "notes", "homepage", "license", "aliases", "trust", "access", "status"}


@dataclass
class Finding:
    """One difference: its category, a one-line title, detail lines, and whether it can change results."""

    category: str
    title: str
    details: list[str] = field(default_factory=list)
    changes_results: bool = True


@dataclass
class AuditDiff:
    """The findings between audits A and B, most likely cause first; ``equivalent`` when none can change results."""

    a: dict[str, Any]
    b: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)

    @property
    def equivalent(self) -> bool:
        """True when nothing that can change results differs."""
        return not any(f.changes_results for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready."""
        findings = [asdict(f) for f in self.findings]
        return {"equivalent": self.equivalent, "a": self.a, "b": self.b, "findings": findings}

    def lines(self) -> list[str]:
        """The readable report; the first line says EQUIVALENT or DIFFERENT and counts the findings."""
        n = len(self.findings)
        causes = sum(1 for f in self.findings if f.changes_results)
        verdict = "EQUIVALENT" if self.equivalent else "DIFFERENT"
        what = f"{n} finding{'s' if n != 1 else ''}, {causes or 'none'} can change results"
        out = [f"{verdict}: {what} ({self.a['benchmark']}, model {self.a['model'] or 'none'})"]
        for label, side in (("A", self.a), ("B", self.b)):
            out.append(f"  {label}: {side['host']}, {side['created']}, provision {side['version']}")
        for i, f in enumerate(self.findings, 1):
            tag = "can change results" if f.changes_results else "information only"
            out.append(f"{i:>2}. [{f.category}] {f.title} ({tag})")
            out.extend(f"      {line}" for line in f.details)
        return out


# -- helpers -------------------------------------------------------------------------------------
def _get(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, Mapping):
            return None
        doc = doc.get(key)
    return doc


def _show(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mapping_lines(a: Any, b: Any, *, skip: Iterable[str] = ()) -> list[str]:
    """``key: A vs B`` for each key whose value differs between two mappings."""
    a = a if isinstance(a, Mapping) else {}
    b = b if isinstance(b, Mapping) else {}
    ignored = set(skip)
    return [
        f"{k}: {_show(a.get(k, 'absent'))} on A, {_show(b.get(k, 'absent'))} on B"
        for k in sorted(set(a) | set(b))
        if k not in ignored and a.get(k) != b.get(k)
    ]


def _entry(text: str | None) -> str:
    """``"<xxh3>:<size>"`` shown short."""
    if not text:
        return "absent"
    digest, _, size = text.rpartition(":")
    return f"xxh3 {digest[:12]}… {size} bytes"


def _tree_lines(fa: Mapping[str, str], fb: Mapping[str, str], first: int) -> tuple[list[str], list[str]]:
    """(the differing paths, most informative first; detail lines with the first ``first`` of each kind)."""
    changed = sorted(k for k in fa.keys() & fb.keys() if fa[k] != fb[k])
    only_a = sorted(fa.keys() - fb.keys())
    only_b = sorted(fb.keys() - fa.keys())
    counts = f"{len(changed)} differ, {len(only_a)} only on A, {len(only_b)} only on B"
    lines = [f"{counts} ({len(fa)} files on A, {len(fb)} on B)"]
    lines += [f"differs: {p}: {_entry(fa[p])} on A, {_entry(fb[p])} on B" for p in changed[:first]]
    lines += [f"only on A: {p}" for p in only_a[:first]]
    lines += [f"only on B: {p}" for p in only_b[:first]]
    return changed, lines


def _npy_delta(rel: str, root_a: Path, root_b: Path, want_a: str, want_b: str) -> str:
    """Max absolute difference of two ``.npy`` files, when both are here and hold the recorded bytes."""
    import numpy as np
    import xxhash

    arrays = []
    for root, want in ((root_a, want_a), (root_b, want_b)):
        path = root / rel
        try:
            data = path.read_bytes()
        except OSError:
            return f"not computed: {path} not reachable here"
        if f"{xxhash.xxh3_128(data).hexdigest()}:{len(data)}" != want:
            return f"not computed: {path} no longer holds the bytes its audit recorded"
        try:
            arrays.append(np.load(io.BytesIO(data), allow_pickle=False))
        except ValueError as exc:
            return f"not computed: {path} is not a plain .npy array ({exc})"
    x, y = arrays
    if x.shape != y.shape or x.dtype != y.dtype:
        return f"shape/dtype {x.shape} {x.dtype} on A, {y.shape} {y.dtype} on B"
    if x.dtype.kind not in "biuf":
        return f"not computed: dtype {x.dtype} is not numeric"
    delta = np.abs(x.astype(np.float64) - y.astype(np.float64))
    count = int(np.count_nonzero(delta))
    return f"max abs difference {float(delta.max()) if delta.size else 0.0:.6g} ({count} of {delta.size} values differ)"


# -- the comparisons -------------------------------------------------------------------------------
def _setup(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[Finding]:
    return [
        Finding("setup", f"{key} {a.get(key)} on A, {b.get(key)} on B", ["the audits describe different runs"])
        for key in ("model", "subset")
        if a.get(key) != b.get(key)
    ]


def _packages(a: Mapping[str, Any], b: Mapping[str, Any], gpu_used: bool) -> list[Finding]:
    pa, pb = _get(a, "environment", "packages") or {}, _get(b, "environment", "packages") or {}
    names = [n for n in RESULT_PACKAGES if n in pa or n in pb]
    names += sorted(n for n in set(pa) | set(pb) if n not in RESULT_PACKAGES)
    out = []
    for name in names:
        va, vb = pa.get(name), pb.get(name)
        if va == vb:
            continue
        why = RESULT_PACKAGES.get(name)
        cuda = name.startswith("nvidia-") and name != "nvidia-ml-py"
        if cuda:
            why = "CUDA libraries (GPU arithmetic)" + ("" if gpu_used else "; no validation here ran on a GPU")
        title = f"{name} {va or 'absent'} on A, {vb or 'absent'} on B"
        out.append(
            Finding("environment", title, [f"{name}: {why}"] if why else [], bool(why) and (not cuda or gpu_used))
        )
    return out


def _builds(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[Finding]:
    out = []
    lines = _mapping_lines(_get(a, "libraries", "opencv_build"), _get(b, "libraries", "opencv_build"))
    if lines:
        keys = ", ".join(line.split(":", 1)[0] for line in lines)
        out.append(Finding("environment", f"OpenCV build differs ({keys})", lines))
    lines = _mapping_lines(_get(a, "libraries", "numpy_build"), _get(b, "libraries", "numpy_build"))
    if lines:
        out.append(Finding("environment", "numpy build differs (BLAS or SIMD extensions in use)", lines))
    return out


def _gpu(a: Mapping[str, Any], b: Mapping[str, Any], gpu_used: bool) -> list[Finding]:
    ga, gb = _get(a, "environment", "gpu") or {}, _get(b, "environment", "gpu") or {}
    lines = []
    for key, label in (("nvidia_smi", "GPUs (nvidia-smi)"), ("torch", "torch CUDA")):
        if ga.get(key) != gb.get(key):
            lines.append(f"{label}: {_show(ga.get(key), 200)} on A, {_show(gb.get(key), 200)} on B")
    out = []
    if lines:
        note = [] if gpu_used else ["no validation here ran on a GPU"]
        out.append(Finding("environment", "GPU, driver or CUDA build differs", lines + note, gpu_used))
    if ga.get("onnxruntime_providers") != gb.get("onnxruntime_providers"):
        line = f"{_show(ga.get('onnxruntime_providers'))} on A, {_show(gb.get('onnxruntime_providers'))} on B"
        out.append(Finding("environment", "onnxruntime execution providers differ", [line], False))
    return out


def _cpu(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[Finding]:
    ca, cb = _get(a, "environment", "cpu") or {}, _get(b, "environment", "cpu") or {}
    out = []
    if ca.get("machine") != cb.get("machine"):
        out.append(Finding("environment", f"CPU architecture {ca.get('machine')} on A, {cb.get('machine')} on B"))
    fa, fb = set(ca.get("flags") or []), set(cb.get("flags") or [])

    def vector(flag: str) -> bool:
        return flag in _VECTOR_FLAGS or flag.startswith(("avx512", "amx"))

    only_a, only_b = sorted(f for f in fa - fb if vector(f)), sorted(f for f in fb - fa if vector(f))
    model = f"{ca.get('model')} on A, {cb.get('model')} on B"
    if only_a or only_b:
        lines = [f"only on A: {' '.join(only_a) or '-'}", f"only on B: {' '.join(only_b) or '-'}", f"CPU: {model}"]
        lines.append("vector instruction sets change which kernels numeric libraries run, and float reduction order")
        out.append(Finding("environment", "CPU vector instruction sets differ", lines))
    elif ca.get("model") != cb.get("model"):
        out.append(Finding("environment", f"CPU model differs: {model}", ["same vector instruction sets"], False))
    if ca.get("usable_cores") != cb.get("usable_cores"):
        line = f"{ca.get('usable_cores')} usable cores on A, {cb.get('usable_cores')} on B"
        out.append(Finding("environment", "core count differs", [line, "validation threads are compared"], False))
    return out


def _variables(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[Finding]:
    va, vb = _get(a, "environment", "variables") or {}, _get(b, "environment", "variables") or {}
    relevant, other = [], []
    for name in sorted(set(va) | set(vb)):
        if va.get(name) == vb.get(name):
            continue
        line = f"{name}: {_show(va.get(name, 'unset'))} on A, {_show(vb.get(name, 'unset'))} on B"
        # Per-machine locations (caches, homes, library search paths) say where, not what.
        where = name.endswith(("_CACHE", "_HOME", "_DIR", "_MANIFESTS", "_FILE", "_PATH", "_CONFIG_FILE"))
        if where:
            continue
        if name.startswith(_VARIABLE_PREFIXES) or name in _VARIABLES:
            relevant.append(line)
        else:
            other.append(line)
    out = []
    if relevant:
        out.append(
            Finding(
                "environment", f"{len(relevant)} environment variable(s) read by numeric libraries differ", relevant
            )
        )
    if other:
        out.append(Finding("environment", f"{len(other)} other environment variable(s) differ", other, False))
    return out


def _platform(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[Finding]:
    out = []
    for key, skip in (("python", ("executable",)), ("os", ())):
        lines = _mapping_lines(_get(a, "environment", key), _get(b, "environment", key), skip=skip)
        if lines:
            out.append(
                Finding("environment", f"{'Python' if key == 'python' else 'operating system'} differs", lines, False)
            )
    return out


def _manifest_lines(a: Any, b: Any, where: str) -> tuple[list[str], list[str]]:
    """(lines that can change results, informational lines) for two manifest entries."""
    results: list[str] = []
    info: list[str] = []
    if not isinstance(a, Mapping) or not isinstance(b, Mapping):
        return [f"{where}: {_show(a)} on A, {_show(b)} on B"], []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if va == vb:
            continue
        if key == "files" and isinstance(va, list) and isinstance(vb, list):
            fa = {f.get("name"): f for f in va if isinstance(f, Mapping)}
            fb = {f.get("name"): f for f in vb if isinstance(f, Mapping)}
            for name in sorted(set(fa) | set(fb), key=str):
                r, i = _manifest_lines(fa.get(name), fb.get(name), f"{where}.files[{name}]")
                results += r
                info += i
            continue
        line = f"{where}.{key}: {_show(va)} on A, {_show(vb)} on B"
        if key in _INFO_FIELDS:
            info.append(line + " (information only)")
        else:
            results.append(line)
    return results, info


def _manifests(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[Finding]:
    if _get(a, "manifests", "digest") == _get(b, "manifests", "digest"):
        return []
    ea, eb = _get(a, "manifests", "entries") or {}, _get(b, "manifests", "entries") or {}
    pairs = [("benchmark", ea.get("benchmark"), eb.get("benchmark"))]
    arts_a, arts_b = ea.get("artifacts") or {}, eb.get("artifacts") or {}
    pairs += [(name, arts_a.get(name), arts_b.get(name)) for name in sorted(set(arts_a) | set(arts_b))]
    out = []
    for name, x, y in pairs:
        results, info = _manifest_lines(x, y, name)
        if results:
            out.append(Finding("manifests", f"manifest entry {name} differs", results + info))
        elif info:
            out.append(Finding("manifests", f"manifest entry {name}: sources or descriptions differ", info, False))
    return out


def _artifacts(a: Mapping[str, Any], b: Mapping[str, Any], first: int) -> list[Finding]:
    aa, ab = a.get("artifacts") or {}, b.get("artifacts") or {}
    out = []
    for name in sorted(set(aa) | set(ab)):
        if name not in aa or name not in ab:
            out.append(Finding("artifacts", f"artifact {name} only on {'A' if name in aa else 'B'}"))
            continue
        fa, fb = aa[name].get("files") or {}, ab[name].get("files") or {}
        lines = []
        for fname in sorted(set(fa) | set(fb)):
            x, y = fa.get(fname) or {}, fb.get(fname) or {}
            keys = ("checksum", "xxh3_128", "size", "state")
            if all(x.get(k) == y.get(k) for k in keys):
                continue
            parts = [f"{k} {x.get(k)} on A, {y.get(k)} on B" for k in keys if x.get(k) != y.get(k)]
            same = x.get("checksum") == y.get("checksum") and x.get("xxh3_128") != y.get("xxh3_128")
            hint = " (same published checksum, other bytes: a file changed after it was verified)" if same else ""
            lines.append(f"{fname}: {'; '.join(parts)}{hint}")
        if lines:
            title = f"artifact {name}: {len(lines)} of {len(set(fa) | set(fb))} files differ"
            more = [f"... {len(lines) - first} more"] if len(lines) > first else []
            out.append(Finding("artifacts", title, lines[:first] + more))
    return out


def _extracted(a: Mapping[str, Any], b: Mapping[str, Any], first: int) -> list[Finding]:
    ea, eb = a.get("extracted") or {}, b.get("extracted") or {}
    out = []
    for art in sorted(set(ea) | set(eb)):
        ta, tb = ea.get(art) or {}, eb.get(art) or {}
        for archive in sorted(set(ta) | set(tb)):
            x, y = ta.get(archive) or {}, tb.get(archive) or {}
            if x.get("digest") == y.get("digest") and x.get("state") == y.get("state"):
                continue
            _, lines = _tree_lines(x.get("files") or {}, y.get("files") or {}, first)
            lines.insert(
                0, f"tree digest {x.get('digest')} ({x.get('state')}) on A, {y.get('digest')} ({y.get('state')}) on B"
            )
            out.append(
                Finding("extracted", f"extracted tree {art}/{x.get('to') or y.get('to') or archive} differs", lines)
            )
    return out


def _preprocessed(
    a: Mapping[str, Any], b: Mapping[str, Any], first: int, data_a: Path | None, data_b: Path | None
) -> list[Finding]:
    pa, pb = a.get("preprocessed"), b.get("preprocessed")
    if pa is None or pb is None:
        if pa is None and pb is None:
            return []
        side = "A" if pa is None else "B"
        note = _get(a if pa is None else b, "notes", "preprocessed") or "no run recorded"
        return [Finding("preprocessed", f"no preprocessing run on {side}", [note], True)]
    ra, rb = pa.get("run") or {}, pb.get("run") or {}
    out = []
    lines = [
        f"{k}: {ra.get(k)} on A, {rb.get(k)} on B"
        for k in ("recipe", "version", "subset", "items")
        if ra.get(k) != rb.get(k)
    ]
    if lines:
        out.append(Finding("preprocessed", "preprocessing recipe, version, subset or item count differ", lines))
    lines = _mapping_lines(ra.get("params"), rb.get("params"))
    if lines:
        out.append(Finding("preprocessed", f"recipe parameters differ ({len(lines)})", lines))
    lines = _mapping_lines(ra.get("libraries"), rb.get("libraries"))
    if lines:
        out.append(Finding("preprocessed", "libraries recorded by the preprocessing run differ", lines))
    ia, ib = ra.get("inputs") or {}, rb.get("inputs") or {}
    lines = [
        f"{role}: {_get(ia, role, 'digest')} on A, {_get(ib, role, 'digest')} on B"
        for role in sorted(set(ia) | set(ib))
        if _get(ia, role, "digest") != _get(ib, role, "digest")
    ]
    if lines:
        out.append(Finding("preprocessed", "preprocessing inputs differ (see the artifacts)", lines))
    if pa.get("digest") != pb.get("digest"):
        fa, fb = pa.get("files") or {}, pb.get("files") or {}
        changed, lines = _tree_lines(fa, fb, first)
        lines.insert(0, f"output digest {pa.get('digest')} on A, {pb.get('digest')} on B")
        for side, doc in (("A", pa), ("B", pb)):
            if doc.get("state") != "ok":
                lines.append(
                    f"on {side} the outputs changed after run.json was written: {', '.join(doc.get('problems') or [])}"
                )
        root_a = Path(data_a) if data_a is not None else Path(str(pa.get("path")))
        root_b = Path(data_b) if data_b is not None else Path(str(pb.get("path")))
        for rel in [p for p in changed if p.endswith(".npy")][:first]:
            lines.append(f"{rel}: {_npy_delta(rel, root_a, root_b, fa[rel], fb[rel])}")
        title = f"preprocessed outputs differ: {len(changed)} of {max(len(fa), len(fb))} files"
        if changed:
            title += f", first {changed[0]}"
        out.append(Finding("preprocessed", title, lines))
    return out


def _pairs(va: list[Any], vb: list[Any]) -> tuple[list[tuple[Any, Any]], list[Any], list[Any]]:
    """Validation results matched by model and sample count (same device and batch preferred)."""
    remaining = list(vb)
    pairs, only_a = [], []
    for x in va:
        same = [y for y in remaining if (y.get("model"), y.get("samples")) == (x.get("model"), x.get("samples"))]
        if not same:
            only_a.append(x)
            continue
        same.sort(
            key=lambda y: (
                y.get("device") != x.get("device"),
                _get(y, "runtime", "batch_size") != _get(x, "runtime", "batch_size"),
            )
        )
        pairs.append((x, same[0]))
        remaining.remove(same[0])
    return pairs, only_a, remaining


def _runtime(x: Mapping[str, Any], y: Mapping[str, Any]) -> list[Finding]:
    """How the two validations ran: device, runtime, threads, batch, determinism (environment findings)."""
    out = []
    where = f"validation of {x.get('model')} ({x.get('samples')} samples)"
    if x.get("device") != y.get("device"):
        out.append(Finding("environment", f"{where} ran on {x.get('device')} on A, {y.get('device')} on B"))
    rx, ry = x.get("runtime") or {}, y.get("runtime") or {}
    on_cpu = x.get("device") == y.get("device") == "cpu"  # device_name is then the CPU model, compared apart
    skip = ("determinism", "cpu", "device", "inputs", "outputs", *(("device_name",) if on_cpu else ()))
    lines = _mapping_lines(rx, ry, skip=skip)
    if lines:
        out.append(Finding("environment", f"{where}: runtime settings differ", lines))
    lines = _mapping_lines(rx.get("determinism"), ry.get("determinism"))
    if lines:
        out.append(Finding("environment", f"{where}: determinism settings differ (TF32, cuDNN, seed, ...)", lines))
    lines = _mapping_lines(x, y, skip=(set(x) | set(y)) - {"model_digest", "task"})
    lines += [f"generation.{line}" for line in _mapping_lines(x.get("generation"), y.get("generation"))]
    if lines:
        out.append(Finding("validation", f"{where}: model file or task settings differ", lines))
    return out


def _score(x: Mapping[str, Any], y: Mapping[str, Any]) -> list[Finding]:
    out = []
    unit = x.get("unit") or ""
    where = f"{x.get('model')} ({x.get('samples')} samples)"
    keys = ("value", "passed", "target", "samples", "full_set", "interval")
    if any(x.get(k) != y.get(k) for k in keys):
        va, vb = x.get("value"), y.get("value")
        if isinstance(va, (int, float)) and isinstance(vb, (int, float)):
            title = (
                f"{x.get('metric')} {va:.4f}{unit} on A, {vb:.4f}{unit} on B (B - A = {vb - va:+.4f}{unit}), {where}"
            )
        else:
            title = f"{x.get('metric')} {va} on A, {vb} on B, {where}"
        lines = [f"{k}: {_show(x.get(k))} on A, {_show(y.get(k))} on B" for k in keys[1:] if x.get(k) != y.get(k)]
        out.append(Finding("validation", title, [*lines, f"device: {x.get('device')} on A, {y.get('device')} on B"]))
    others_a = {m.get("metric"): m for m in (x.get("metrics") or [])[1:]}
    others_b = {m.get("metric"): m for m in (y.get("metrics") or [])[1:]}
    for metric in sorted(set(others_a) & set(others_b), key=str):
        ma, mb = others_a[metric], others_b[metric]
        if (ma.get("value"), ma.get("passed")) != (mb.get("value"), mb.get("passed")):
            line = (
                f"{metric}: {_show(ma.get('value'))} ({'pass' if ma.get('passed') else 'FAIL'}) on A, "
                f"{_show(mb.get('value'))} ({'pass' if mb.get('passed') else 'FAIL'}) on B"
            )
            out.append(Finding("validation", f"{metric} differs, {where}", [line]))
    sa, sb = x.get("samples_per_second"), y.get("samples_per_second")
    if sa != sb and isinstance(sa, (int, float)) and isinstance(sb, (int, float)):
        line = f"{sa:.1f} samples/s on A ({x.get('device')}), {sb:.1f} on B ({y.get('device')})"
        out.append(Finding("validation", f"throughput of {where} differs", [line], False))
    return out


def _validation(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[list[Finding], list[Finding]]:
    """(environment findings from how validation ran, validation findings)."""
    pairs, only_a, only_b = _pairs(list(a.get("validation") or []), list(b.get("validation") or []))
    env: list[Finding] = []
    scores: list[Finding] = []
    for x, y in pairs:
        env += _runtime(x, y)
        scores += _score(x, y)
    for side, rest, doc in (("A", only_a, b), ("B", only_b, a)):
        for x in rest:
            note = _get(doc, "notes", "validation")
            score = f"{x.get('metric')} {x.get('value')}"
            title = f"validation of {x.get('model')} ({x.get('samples')} samples) only on {side}: {score}"
            # Nothing to compare it with: the two machines are not shown to agree.
            scores.append(
                Finding(
                    "validation",
                    title,
                    [note] if note else ["no result with that sample count on the other side"],
                    True,
                )
            )
    return env, scores


def diff_audits(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    *,
    first: int = 10,
    data_a: Path | None = None,
    data_b: Path | None = None,
) -> AuditDiff:
    """Compare audits ``a`` and ``b`` (see the module docstring for what is compared and the order).

    ``first`` bounds the file names listed per finding; ``data_a``/``data_b`` replace the
    preprocessed folders the audits recorded (where the ``.npy`` arrays are read for their max
    absolute difference). :class:`UsageError` for another schema or two different benchmarks.
    """
    for label, doc in (("A", a), ("B", b)):
        if doc.get("schema") != SCHEMA:
            raise UsageError(f"audit {label} has schema {doc.get('schema')!r}; this provision compares {SCHEMA!r} only")
    if a.get("benchmark") != b.get("benchmark"):
        raise UsageError(
            f"audit A is of {a.get('benchmark')!r} and audit B of {b.get('benchmark')!r}; "
            "compare two audits of the same benchmark"
        )
    if first < 1:
        raise UsageError(f"--first must be at least 1, got {first}")
    gpu_used = any(
        str(v.get("device", "")).startswith("cuda")
        for doc in (a, b)
        for v in doc.get("validation") or []
        if isinstance(v, Mapping)
    )
    runtime, scores = _validation(a, b)
    findings = (
        _setup(a, b)
        + _packages(a, b, gpu_used)
        + _builds(a, b)
        + runtime
        + _gpu(a, b, gpu_used)
        + _cpu(a, b)
        + _variables(a, b)
        + _platform(a, b)
        + _manifests(a, b)
        + _artifacts(a, b, first)
        + _extracted(a, b, first)
        + _preprocessed(a, b, first, data_a, data_b)
        + scores
    )
    rank = {c: i for i, c in enumerate(CATEGORIES)}
    findings.sort(key=lambda f: (not f.changes_results, rank[f.category]))  # stable: generation order within

    def side(doc: Mapping[str, Any]) -> dict[str, Any]:
        keys = ("benchmark", "model", "subset", "host", "created")
        return {**{k: doc.get(k) for k in keys}, "version": _get(doc, "tool", "version")}

    return AuditDiff(side(a), side(b), findings)
