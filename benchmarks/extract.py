#!/usr/bin/env python3
"""Benchmark :func:`provision.extract.extract_archive` against GNU ``tar -xf``.

One run:

1. builds an ImageNet-val-like uncompressed tar (default 50,000 flat files named
   ``ILSVRC2012_val_%08d.JPEG`` of random bytes, sizes drawn deterministically from
   ``--seed`` around a mean of ``--mean-kb`` = 134 KB, so about 6.7 GB like
   ``ILSVRC2012_img_val.tar``); when ``df`` shows less than 3x its size free, the file
   count is scaled down (and the run says so);
2. times, alternating and repeated (``--runs``, median reported), ``tar -xf ARCHIVE -C DIR``
   and ``extract_archive(ARCHIVE, ExtractSpec(format="tar", ...), DEST)``, each into a fresh
   folder on the same filesystem, plus ``cat ARCHIVE > /dev/null`` as the read reference.
   Before every timed run dirty pages are synced and, when running as root (and unless
   ``--warm``), the page cache is dropped (cold runs); otherwise the archive is read
   once first so every run starts warm. Outputs are deleted between runs, untimed;
3. prints a Markdown table (seconds, MB/s, files/s, ratio of provision to tar) and a
   description of the machine. The target is provision >= 0.8x tar's throughput.

``--profile`` also runs one extraction under cProfile and prints the hotspots.
The archive and outputs live in ``--work`` and are deleted at the end unless ``--keep``.
Examples::

    python benchmarks/extract.py                  # 50,000 files, ~6.7 GB
    python benchmarks/extract.py --quick          # 2,000 files, ~270 MB
    python benchmarks/extract.py --quick --profile --warm
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import io
import json
import math
import os
import platform
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from provision.extract.archive import extract_archive
from provision.manifest.model import ExtractSpec
from provision.store.trees import hash_tree

HERE = Path(__file__).resolve().parent
DEFAULT_WORK = HERE / "_work" / "extract"
POOL_BYTES = 64 << 20  # random bytes that file contents are sliced from
SIGMA = 0.45  # log-normal spread of file sizes (ImageNet val JPEGs: ~134 KB mean, long tail)
MIN_SIZE = 2_000
SPACE_FACTOR = 3  # need this many archive sizes free (archive + one output + slack)


# ---------------------------------------------------------------------------------------
# Archive


def file_sizes(n: int, mean_kb: float, seed: int) -> list[int]:
    """``n`` deterministic log-normal sizes with mean ``mean_kb`` KB (1 KB = 1000 bytes)."""
    rng = random.Random(seed)
    mean = mean_kb * 1000
    mu = math.log(mean) - SIGMA**2 / 2
    cap = int(mean * 12)
    return [min(cap, max(MIN_SIZE, int(rng.lognormvariate(mu, SIGMA)))) for _ in range(n)]


def tar_size(sizes: list[int]) -> int:
    """Bytes of a GNU tar of these regular files (512-byte headers, padded data, 10 KiB records)."""
    raw = sum(512 + -(-s // 512) * 512 for s in sizes) + 1024
    return -(-raw // 10240) * 10240


def build_archive(path: Path, sizes: list[int], seed: int) -> None:
    """Write the tar (atomically: ``.part`` then rename)."""
    rng = random.Random(seed + 1)
    pool = memoryview(rng.randbytes(POOL_BYTES))
    part = path.with_name(path.name + ".part")
    t0 = time.perf_counter()
    with tarfile.open(part, "w", format=tarfile.GNU_FORMAT) as tf:
        for i, size in enumerate(sizes, 1):
            info = tarfile.TarInfo(f"ILSVRC2012_val_{i:08d}.JPEG")
            info.size = size
            info.mode = 0o644
            info.mtime = 1_336_000_000 + i
            info.uname = info.gname = "root"
            off = rng.randrange(0, POOL_BYTES - size)
            tf.addfile(info, io.BytesIO(pool[off : off + size]))
    os.replace(part, path)
    dt = time.perf_counter() - t0
    print(f"built {path} ({path.stat().st_size / 1e9:.2f} GB, {len(sizes)} files) in {dt:.1f} s", file=sys.stderr)


# ---------------------------------------------------------------------------------------
# Timing


def sh(cmd: str) -> str:
    """Run a shell command and return its stdout (stripped); '' on failure."""
    try:
        return subprocess.run(cmd, shell=True, check=False, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def can_drop_caches() -> bool:
    """True when we can write /proc/sys/vm/drop_caches (root, not read-only)."""
    try:
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
        return True
    except OSError:
        return False


def prepare(cold: bool, archive: Path) -> None:
    """Bring the page cache to the agreed state before a timed run."""
    os.sync()
    if cold:
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
    else:  # warm: make sure the archive is cached (a no-op after the first time)
        subprocess.run(f"cat '{archive}' > /dev/null", shell=True, check=True)


def remove(path: Path) -> None:
    """Delete an output folder (and any leftover temp folders beside it)."""
    if path.exists():
        shutil.rmtree(path)
    for p in path.parent.glob(path.name + ".part-*"):
        shutil.rmtree(p, ignore_errors=True)


@dataclass
class Series:
    """Timings of one contender."""

    name: str
    seconds: list[float] = field(default_factory=list)
    sync_seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def timed(fn: Callable[[], None]) -> tuple[float, float]:
    """Seconds of ``fn()``, and of the ``sync`` that flushes what it wrote (not part of the first)."""
    t0 = time.perf_counter()
    fn()
    t1 = time.perf_counter()
    os.sync()
    return t1 - t0, time.perf_counter() - t1


def count_files(root: Path) -> tuple[int, int]:
    """Regular files and their bytes under ``root``."""
    n = total = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            st = os.lstat(os.path.join(dirpath, name))
            n += 1
            total += st.st_size
    return n, total


# ---------------------------------------------------------------------------------------
# Machine


def machine(work: Path) -> str:
    """One line: CPU, cores, RAM, filesystem of ``work``, Python, tar, date, load."""
    cpu = sh("lscpu | sed -n 's/^Model name: *//p' | head -1") or platform.processor() or "?"
    mem = sh("free -g | awk '/^Mem:/{print $2}'")
    fs = sh(f"df -T '{work}' | awk 'NR==2{{print $1\" \"$2}}'")
    tar = sh("tar --version | head -1")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem} GiB RAM, {fs} ({work}), "
        f"Python {platform.python_version()}, {tar}, Linux {platform.release()}, {now}, load avg {load}"
    )


# ---------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--files", type=int, default=50_000, help="files in the archive (default 50,000)")
    p.add_argument("--mean-kb", type=float, default=134.0, help="mean file size in KB (default 134)")
    p.add_argument("--quick", action="store_true", help="2,000 files (a smoke run)")
    p.add_argument("--runs", type=int, default=3, help="timed runs of each contender (>= 2; default 3)")
    p.add_argument("--seed", type=int, default=2012)
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, help=f"scratch folder (default {DEFAULT_WORK})")
    p.add_argument("--warm", action="store_true", help="do not drop the page cache (warm runs)")
    p.add_argument("--keep", action="store_true", help="keep the archive (reused by the next run with the same sizes)")
    p.add_argument("--no-check", action="store_true", help="skip comparing tar's output with provision's tree")
    p.add_argument("--profile", action="store_true", help="also cProfile one (warm) provision extraction")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    if args.quick:
        args.files = 2_000
    if args.runs < 2:
        p.error("--runs must be at least 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)

    # 1. the archive, scaled to the free space
    n = args.files
    sizes = file_sizes(n, args.mean_kb, args.seed)
    archive = work / "ILSVRC2012_img_val.tar"
    stamp = work / "archive.json"
    key = {"files": n, "mean_kb": args.mean_kb, "seed": args.seed, "bytes": tar_size(sizes)}
    reuse = archive.exists() and stamp.exists() and json.loads(stamp.read_text()) == key
    free = shutil.disk_usage(work).free + (archive.stat().st_size if archive.exists() else 0)
    print(sh(f"df -h '{work}'"), file=sys.stderr)
    note = ""
    if free < SPACE_FACTOR * key["bytes"]:
        n = max(100, int(n * free / (SPACE_FACTOR * key["bytes"])))
        note = (
            f"scaled down from {args.files} to {n} files: {free / 1e9:.1f} GB free < "
            f"{SPACE_FACTOR} x {key['bytes'] / 1e9:.2f} GB"
        )
        print(note, file=sys.stderr)
        sizes = file_sizes(n, args.mean_kb, args.seed)
        key = {"files": n, "mean_kb": args.mean_kb, "seed": args.seed, "bytes": tar_size(sizes)}
        reuse = False
    if not reuse:
        archive.unlink(missing_ok=True)
        stamp.unlink(missing_ok=True)
        build_archive(archive, sizes, args.seed)
        stamp.write_text(json.dumps(key))
    else:
        print(f"reusing {archive}", file=sys.stderr)
    archive_bytes = archive.stat().st_size
    payload = sum(sizes)

    # 2. timings
    cold = not args.warm and can_drop_caches()
    cache = "cold (page cache dropped before every run)" if cold else "warm (archive cached before every run)"
    if not args.warm and not cold:
        print("cannot drop the page cache (not root?): running warm", file=sys.stderr)
    out = work / "out"
    out.mkdir(exist_ok=True)
    tar_dir, prov_dir = out / "tar", out / "provision"
    remove(tar_dir)
    remove(prov_dir)

    def run_tar() -> None:
        subprocess.run(["tar", "-xf", str(archive), "-C", str(tar_dir)], check=True)

    def run_provision() -> None:
        record = extract_archive(archive, ExtractSpec(format="tar", to="val"), prov_dir, label=archive.name)
        results["digest"] = record.digest

    def run_cat() -> None:
        subprocess.run(f"cat '{archive}' > /dev/null", shell=True, check=True)

    results: dict[str, str] = {}
    series = {name: Series(name) for name in ("tar", "provision", "cat")}
    checked = args.no_check
    for i in range(args.runs):
        order = ["tar", "provision"] if i % 2 == 0 else ["provision", "tar"]
        for name in [*order, "cat"]:
            if name == "tar":
                tar_dir.mkdir()
            prepare(cold, archive)
            fn = {"tar": run_tar, "provision": run_provision, "cat": run_cat}[name]
            secs, sync_secs = timed(fn)
            series[name].seconds.append(secs)
            series[name].sync_seconds.append(sync_secs)
            print(f"run {i + 1}/{args.runs} {name:9s} {secs:7.2f} s (+ sync {sync_secs:.2f} s)", file=sys.stderr)
            if name in ("tar", "provision"):
                folder = tar_dir if name == "tar" else prov_dir
                got = count_files(folder)
                if got != (n, payload):
                    raise SystemExit(f"{name} extracted {got[0]} files / {got[1]} bytes, expected {n} / {payload}")
        if not checked:  # both outputs exist now: same tree?
            digest = hash_tree(tar_dir).digest
            if digest != results["digest"]:
                raise SystemExit(f"tree digest of tar's output {digest} != provision's {results['digest']}")
            print(f"tar's output and provision's tree agree: {digest}", file=sys.stderr)
            checked = True
        remove(tar_dir)
        remove(prov_dir)

    prof_lines = ""
    if args.profile:
        prepare(False, archive)
        prof = cProfile.Profile()
        prof.runcall(run_provision)
        remove(prov_dir)
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(18)
        prof_lines = buf.getvalue()

    # 3. report
    t_tar, t_prov = series["tar"].median, series["provision"].median
    ratio = t_tar / t_prov
    pairs = [t / q for t, q in zip(series["tar"].seconds, series["provision"].seconds, strict=True)]
    verdict = "PASS" if ratio >= 0.8 else "FAIL"
    rows = []
    for name, label in (
        ("cat", "`cat ARCHIVE > /dev/null` (read only)"),
        ("tar", "`tar -xf ARCHIVE -C DIR`"),
        ("provision", '`extract_archive(..., ExtractSpec(format="tar"))`'),
    ):
        s = series[name]
        secs = s.median
        ratio_cell = {"tar": "1.00x", "provision": f"**{ratio:.2f}x {verdict}** (target >= 0.8x)"}.get(name, "")
        runs = ", ".join(f"{x:.2f}" for x in s.seconds)
        files_s = f"{n / secs:,.0f}" if name != "cat" else ""
        sync = f"{statistics.median(s.sync_seconds):.2f}" if name != "cat" else ""
        rows.append(
            f"| {label} | {secs:.2f} | {runs} | {sync} | {archive_bytes / 1e6 / secs:,.0f} | {files_s} | {ratio_cell} |"
        )
    lines = [
        f"Archive: {n:,} files, {payload / 1e9:.2f} GB of data, {archive_bytes / 1e9:.2f} GB tar "
        f"(mean {payload / n / 1000:.1f} KB/file, seed {args.seed}); {args.runs} runs each, alternating, "
        f"median; page cache {cache}." + (f" Note: {note}." if note else ""),
        "",
        "| contender | median s | runs (s) | + sync s | MB/s (archive) | files/s | provision / tar throughput |",
        "|---|---:|---|---:|---:|---:|---|",
        *rows,
        "",
        f"Per-run ratios (tar s / provision s, same round): {', '.join(f'{x:.2f}' for x in pairs)}; "
        f"median {statistics.median(pairs):.2f}x.",
        "",
        f"Machine: {machine(work)}",
    ]
    print("\n".join(lines))
    if prof_lines:
        print("\ncProfile of one warm provision extraction (top by tottime):\n")
        print("```\n" + prof_lines.strip() + "\n```")
    if args.json:
        doc = {
            "files": n,
            "payload_bytes": payload,
            "archive_bytes": archive_bytes,
            "cache": "cold" if cold else "warm",
            "runs": {k: {"seconds": v.seconds, "sync_seconds": v.sync_seconds} for k, v in series.items()},
            "ratio": ratio,
            "paired_ratios": pairs,
            "verdict": verdict,
            "machine": machine(work),
        }
        args.json.write_text(json.dumps(doc, indent=2))

    shutil.rmtree(out, ignore_errors=True)
    if not args.keep:
        archive.unlink(missing_ok=True)
        stamp.unlink(missing_ok=True)
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
