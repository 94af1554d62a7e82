#!/usr/bin/env python3
"""Benchmark ``provision audit`` on an ImageNet-sized cached benchmark (no file content read).

One run:

1. **generates** ``--files`` small files (default 50,000, random bytes of 1-4 KiB from
   ``--seed``, flat ``val/ILSVRC2012_val_%08d.JPEG`` names) straight into an uncompressed tar,
   and a labels file;
2. **writes a manifest** (``schema = 1``): a dataset (the tar, ``extract = "tar"`` to ``val``,
   plus the labels; plain-path URLs with size and md5) and a benchmark whose recipe is
   ``audit-bench``, registered by this script: one tiny ``.npy`` (the first 64 bytes of the
   item as float32) per file, plus an index; **fetches** it with ``provision.api.fetch`` and
   **preprocesses** it with ``provision.api.preprocess`` (every core) into a scratch cache, so
   the cache holds 50,000 extracted files and 50,001 preprocessed ones;
3. **times** ``provision.api.audit`` ``--runs`` times (default 3, median reported; the first
   call of the process, which imports torch/onnxruntime for the environment section, is
   reported apart), checks that every audit re-hashed 0 files (``stats.files_rehashed``: the
   stat fast path read no file content), then ``write_audit`` (size, and gzip size for
   information), ``load_audit``, and ``diff_audits`` of two audits of the same cache (which
   must be equivalent);
4. **breaks down** one audit: the environment and library sections alone, and the plan
   (input digests) that ``make_plan`` resolves;
5. **prints** a Markdown table and a machine line.

Everything lives in ``--work`` (default ``benchmarks/_work/audit``) and is deleted at the end
unless ``--keep``.

Examples::

    python benchmarks/audit.py                      # 50,000 files, 3 runs
    python benchmarks/audit.py --files 2000 --runs 1   # smoke run
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import hashlib
import io
import os
import platform
import random
import shutil
import statistics
import sys
import tarfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# benchmarks/preprocess.py would shadow the recipe package ``preprocess`` that provision imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import numpy as np  # noqa: E402

import preprocess  # noqa: E402
from provision import api  # noqa: E402
from provision.auditing.build import environment_info, library_builds  # noqa: E402
from provision.auditing.diff import diff_audits  # noqa: E402
from provision.auditing.document import load_audit, write_audit  # noqa: E402
from provision.config import Settings  # noqa: E402
from provision.preprocessing.plan import make_plan  # noqa: E402

DEFAULT_WORK = HERE / "_work" / "audit"
MARKER = ".benchmark-audit"
DATASET = "auditbench-data"
BENCH = "auditbench"
RECIPE = "audit-bench"
TAR = "val.tar"
LABELS = "labels.txt"


# -- the recipe (registered before any fork, so the workers have it) -----------------------------
def _items(inputs: Mapping[str, Path], params: Mapping[str, Any]) -> list[str]:
    return sorted(os.listdir(inputs["data"] / "val"))


def _process(item: str, inputs: Mapping[str, Path], out_dir: Path, params: Mapping[str, Any]) -> None:
    head = (inputs["data"] / "val" / item).read_bytes()[:64]
    np.save(out_dir / f"{item}.npy", np.frombuffer(head, dtype=np.uint8).astype(np.float32))


def _finalize(items: list[str], inputs: Mapping[str, Path], out_dir: Path, params: Mapping[str, Any]) -> None:
    (out_dir / "index.txt").write_text("".join(f"{i}\n" for i in items), encoding="utf-8")


preprocess.register(
    preprocess.Recipe(
        name=RECIPE,
        version="1",
        items=_items,
        process=_process,
        finalize=_finalize,
        libraries=lambda: {"numpy": np.__version__},
        uses=("data",),
    )
)


# -- inputs ----------------------------------------------------------------------------------------
def build_inputs(src: Path, n: int, seed: int) -> tuple[int, float]:
    """The tar of ``n`` random small files and the labels file; (tar bytes, seconds)."""
    start = time.perf_counter()
    src.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    names = [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(n)]
    with tarfile.open(src / TAR, "w", format=tarfile.GNU_FORMAT) as tf:
        for name in names:
            data = rng.randbytes(rng.randint(1024, 4096))
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1_700_000_000, 0o644
            tf.addfile(info, io.BytesIO(data))
    (src / LABELS).write_text("".join(f"{name} {rng.randrange(1000)}\n" for name in names), encoding="utf-8")
    return (src / TAR).stat().st_size, time.perf_counter() - start


def md5_of(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(manifests: Path, src: Path) -> None:
    manifests.mkdir(parents=True, exist_ok=True)
    tar, labels = src / TAR, src / LABELS
    text = f"""schema = 1
[[dataset]]
name = "{DATASET}"
description = "generated files for benchmarks/audit.py"
[[dataset.files]]
name = "{LABELS}"
urls = ["{labels}"]
size = {labels.stat().st_size}
checksum = "md5:{md5_of(labels)}"
[[dataset.files]]
name = "{TAR}"
urls = ["{tar}"]
size = {tar.stat().st_size}
checksum = "md5:{md5_of(tar)}"
extract = "tar"
keep_archive = false

[[benchmark]]
name = "{BENCH}"
dataset = "{DATASET}"
labels = "{DATASET}/{LABELS}"
[benchmark.preprocess]
recipe = "{RECIPE}"
"""
    (manifests / "auditbench.toml").write_text(text, encoding="utf-8")


# -- measuring ---------------------------------------------------------------------------------------
def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 1
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{cpu_model()}, {os.cpu_count()} cores ({usable} usable), {mem:.1f} GiB RAM, Linux {platform.release()}, "
        f"Python {platform.python_version()}, numpy {np.__version__}, {now}, load average {load}"
    )


def run(args: argparse.Namespace, work: Path) -> int:
    src, manifests, cache = work / "src", work / "manifests", work / "cache"
    tar_bytes, seconds = build_inputs(src, args.files, args.seed)
    print(f"generated {args.files} files (tar {tar_bytes / 1e6:.1f} MB) in {seconds:.1f} s", file=sys.stderr)
    write_manifest(manifests, src)
    settings = Settings(cache_dir=cache, manifest_dirs=(manifests,))
    fetch_s, fetched = timed(lambda: api.fetch([BENCH], settings))
    if not fetched.ok:
        print(f"fetch failed: {fetched.failures}", file=sys.stderr)
        return 1
    shutil.rmtree(src)
    pre_s, report = timed(lambda: api.preprocess(BENCH, settings))
    print(f"fetched in {fetch_s:.1f} s, preprocessed {report.items} items in {pre_s:.1f} s", file=sys.stderr)

    first_s, doc = timed(lambda: api.audit(BENCH, settings))
    runs = []
    for _ in range(args.runs):
        t, doc = timed(lambda: api.audit(BENCH, settings))
        runs.append(t)
        if doc["stats"]["files_rehashed"] != 0:
            print(f"FAIL: an audit of the unchanged cache re-hashed {doc['stats']}", file=sys.stderr)
            return 1
    counted = doc["stats"]["files_checked"]
    path = work / "audit.json"
    write_s, size = timed(lambda: write_audit(doc, path))
    gz = len(gzip.compress(path.read_bytes(), 6))
    load_s, loaded = timed(lambda: load_audit(path))
    again = api.audit(BENCH, settings)
    diff_s, diff = timed(lambda: diff_audits(loaded, again))
    env_s, _ = timed(environment_info)
    lib_s, _ = timed(library_builds)
    plan_s, _ = timed(lambda: make_plan(api.load(settings), BENCH, settings))
    audit_s = statistics.median(runs)
    if not diff.equivalent:
        print("FAIL: two audits of one cache are not equivalent:\n" + "\n".join(diff.lines()), file=sys.stderr)
        return 1

    print(f"\n## `provision audit` on {args.files:,} extracted + {report.items + 1:,} preprocessed files\n")
    print(f"Machine: {machine()}.\n")
    print("| what | seconds | notes |")
    print("|---|---:|---|")
    print(f"| `api.audit`, first call in the process | {first_s:.2f} | imports torch/onnxruntime for the GPU section |")
    print(f"| `api.audit`, median of {args.runs} | {audit_s:.2f} | {counted:,} files counted, 0 re-hashed |")
    print(f"| of which: environment section | {env_s:.2f} | nvidia-smi, torch, packages, variables |")
    print(f"| of which: library builds | {lib_s:.2f} | `cv2.getBuildInformation()`, numpy config |")
    print(f"| of which: `make_plan` (input digests) | {plan_s:.2f} | stat fast path over the dataset |")
    print(f"| `write_audit` | {write_s:.2f} | {size / 1e6:.2f} MB ({gz / 1e6:.2f} MB gzipped) |")
    print(f"| `load_audit` | {load_s:.2f} | |")
    print(f"| `diff_audits` of two audits | {diff_s:.2f} | equivalent |")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--files", type=int, default=50_000, help="files to generate (default 50,000)")
    p.add_argument("--runs", type=int, default=3, help="timed audits after the first (default 3)")
    p.add_argument("--seed", type=int, default=2012)
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, help=f"scratch folder (default {DEFAULT_WORK})")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    args = p.parse_args(argv)
    if args.files < 1 or args.runs < 1:
        p.error("--files and --runs must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work: Path = args.work.resolve()
    if work.exists() and any(work.iterdir()) and not (work / MARKER).exists():
        print(f"{work} holds files this script did not make; choose another --work", file=sys.stderr)
        return 2
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / MARKER).touch()
    try:
        return run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
