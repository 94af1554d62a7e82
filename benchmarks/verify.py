#!/usr/bin/env python3
"""Benchmark ``provision fetch`` and ``provision verify`` on a synthetic ImageNet-scale tree.

One run:

1. generates N small files (random sizes, ImageNet-JPEG scale) and one big file of
   random bytes, writes a manifest for them (a ``[[dataset]]`` for the tree, a
   ``[[model]]`` for the big file, plain absolute paths as URLs, md5 checksums) and
   fetches both into a fresh cache through :func:`provision.api.fetch`;
2. times, for the tree and the big file separately, the ``verify`` stat fast path,
   ``verify --full``, a cold-cache ``verify --full``, and the baselines (``os.stat`` of
   every file, :func:`provision.store.hashing.hash_file` with md5 and md5+xxh3_128, the
   system ``md5sum``);
3. prints a Markdown table of the results and a description of the machine.

Everything is deterministic from ``--seed``. The work folder's data is deleted at the
end unless ``--keep`` is given. Example::

    python benchmarks/verify.py                 # 50,000 files + 2 GiB: ~2.7 GB of sources, as much in the cache
    python benchmarks/verify.py --quick         # 2,000 files + 64 MiB smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import functools
import hashlib
import json
import os
import platform
import shutil
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

import provision
from provision import api
from provision.config import Settings
from provision.store.hashing import FAST_ALG, hash_file

TREE = "bench-tree"
BIG = "bench-big"
MARKER = ".provision-bench"
MB = 1_000_000
#: Chunk the big file is generated and written in.
GEN_CHUNK = 64 << 20
#: Files sampled to check that a cold-cache eviction worked on the tree.
FINCORE_SAMPLE = 200


@dataclass
class Row:
    """One measurement: the median of ``runs`` over ``nfiles`` files / ``nbytes`` bytes."""

    artifact: str
    what: str
    runs: list[float]
    nfiles: int
    nbytes: int
    files_hashed: int | None = None
    bytes_hashed: int | None = None
    note: str = ""
    compare: bool = True  # show the ratio to the warm fast path

    @property
    def seconds(self) -> float:
        """Median wall-clock seconds."""
        return statistics.median(self.runs)


@dataclass
class Results:
    """Everything the run measured, ready for Markdown or JSON."""

    args: dict[str, Any]
    machine: dict[str, str]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------
# Helpers


def log(msg: str) -> None:
    """Progress to stderr, so stdout holds only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def random_bytes(rng: np.random.Generator, n: int) -> bytes:
    """``n`` pseudo-random bytes from ``rng`` (uint64 draws: ~3x faster than ``rng.bytes``)."""
    words = rng.integers(0, 2**64 - 1, size=(n + 7) // 8, dtype=np.uint64, endpoint=True)
    return words.tobytes()[:n]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """``(seconds, result)`` of one call."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


class Profiler:
    """Optionally wraps phases in cProfile and dumps ``<dir>/<phase>.prof``."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Profile the body when profiling is on."""
        if self.folder is None:
            yield
            return
        prof = cProfile.Profile()
        prof.enable()
        try:
            yield
        finally:
            prof.disable()
            prof.dump_stats(str(self.folder / f"{name}.prof"))


def prepare_work(work: Path) -> None:
    """Create ``work`` (or wipe a previous run's data); refuse a foreign non-empty folder."""
    if work.exists() and any(work.iterdir()) and not (work / MARKER).exists():
        raise SystemExit(f"{work} is not empty and was not made by this script; pick another --work")
    work.mkdir(parents=True, exist_ok=True)
    (work / MARKER).write_text("data made by benchmarks/verify.py; safe to delete\n", encoding="utf-8")
    clean_work(work)


def clean_work(work: Path) -> None:
    """Delete the generated data (source files, manifests, cache)."""
    for sub in ("src", "manifests", "cache"):
        shutil.rmtree(work / sub, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# Data and manifest


@dataclass(frozen=True)
class GenFile:
    """A generated file: its name in the artifact, source path, size and md5."""

    name: str
    path: Path
    size: int
    md5: str


def make_tree(src: Path, n: int, seed: int, min_size: int, max_size: int) -> list[GenFile]:
    """``n`` files of uniform random size in [min_size, max_size], flat like ImageNet val."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(min_size, max_size, size=n, endpoint=True)
    folder = src / "val"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, size in enumerate(sizes.tolist(), 1):
        name = f"val/ILSVRC2012_val_{i:08d}.JPEG"
        data = random_bytes(rng, size)
        path = src / name
        path.write_bytes(data)
        out.append(GenFile(name, path, size, hashlib.md5(data, usedforsecurity=False).hexdigest()))
    return out


def make_big(src: Path, size: int, seed: int) -> GenFile:
    """One file of ``size`` random bytes, written in chunks, md5 computed on the way."""
    rng = np.random.default_rng(seed + 1)
    path = src / "model.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    md5 = hashlib.md5(usedforsecurity=False)
    left = size
    with open(path, "wb") as fh:
        while left:
            chunk = random_bytes(rng, min(GEN_CHUNK, left))
            md5.update(chunk)
            fh.write(chunk)
            left -= len(chunk)
    return GenFile(path.name, path, size, md5.hexdigest())


def toml_str(text: str) -> str:
    """A TOML basic string (JSON escaping is valid TOML for these names and paths)."""
    return json.dumps(text)


def write_manifest(folder: Path, tree: Sequence[GenFile], big: GenFile | None) -> Path:
    """``folder/bench.toml``: schema 1, one dataset (the tree) and one model (the big file)."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Generated by benchmarks/verify.py; deleted with its work folder.",
        "schema = 1",
        "",
        "[[dataset]]",
        f"name = {toml_str(TREE)}",
        f"description = {toml_str(f'{len(tree)} synthetic ImageNet-sized files')}",
    ]
    for f in tree:
        lines += [
            "[[dataset.files]]",
            f"name = {toml_str(f.name)}",
            f"urls = [{toml_str(str(f.path))}]",
            f"size = {f.size}",
            f'checksum = "md5:{f.md5}"',
        ]
    if big is not None:
        lines += [
            "",
            "[[model]]",
            f"name = {toml_str(BIG)}",
            'format = "other"',
            f"description = {toml_str(f'{big.size} random bytes')}",
            "[[model.files]]",
            f"name = {toml_str(big.name)}",
            f"urls = [{toml_str(str(big.path))}]",
            f"size = {big.size}",
            f'checksum = "md5:{big.md5}"',
        ]
    path = folder / "bench.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------
# Page cache


def evict(paths: Sequence[Path]) -> str:
    """Drop ``paths`` from the page cache: ``drop_caches`` when allowed, else fadvise."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n", encoding="ascii")
        return "echo 3 > /proc/sys/vm/drop_caches"
    except OSError:
        pass
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return "posix_fadvise(DONTNEED) per file (drop_caches not permitted)"


def resident_fraction(paths: Sequence[Path]) -> float | None:
    """Share of ``paths``' pages in the page cache per ``fincore`` (None when unavailable).

    Samples at most ``FINCORE_SAMPLE`` files; counts whole pages, as the kernel does.
    """
    if not paths or shutil.which("fincore") is None:
        return None
    step = max(1, len(paths) // FINCORE_SAMPLE)
    sample = [str(p) for p in paths[::step]]
    proc = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--raw", "--output", "PAGES,SIZE", *sample],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return None
    page = os.sysconf("SC_PAGE_SIZE")
    resident = expected = 0
    for line in proc.stdout.splitlines():
        pages, size = line.split()
        resident += int(pages)
        expected += -(-int(size) // page)
    return resident / expected if expected else None


# ---------------------------------------------------------------------------------------
# Measurements


def verify_runs(
    name: str,
    settings: Settings,
    *,
    full: bool,
    runs: int,
    before: Callable[[], object] | None = None,
) -> tuple[list[float], int, int]:
    """Time ``api.verify([name])`` ``runs`` times; returns (seconds, files_hashed, bytes_hashed)."""
    times = []
    hashed = (0, 0)
    for _ in range(runs):
        if before is not None:
            before()
        seconds, report = timed(lambda: api.verify([name], settings, full=full))
        if not report.ok:
            raise SystemExit(f"verify {name} failed: {report.failures[0].message()}")
        times.append(seconds)
        hashed = (report.files_hashed, report.bytes_hashed)
    return times, *hashed


def hash_all(paths: Sequence[Path], algs: Sequence[str]) -> None:
    """``hash_file`` on every path (what ``provision hash`` does per file)."""
    for p in paths:
        hash_file(p, algs)


def read_all(paths: Sequence[Path]) -> None:
    """Read every byte of ``paths`` (puts them in the page cache)."""
    buf = bytearray(1 << 20)
    for p in paths:
        with open(p, "rb", buffering=0) as fh:
            while fh.readinto(buf):
                pass


def stat_all(paths: Sequence[Path]) -> None:
    """``os.stat`` every path: the floor of any stat-based check."""
    for p in paths:
        os.stat(p)


def md5sum(paths: Sequence[Path]) -> None:
    """The system ``md5sum`` over ``paths`` (fed to ``xargs -0``, so no argv limit)."""
    subprocess.run(
        ["xargs", "-0", "md5sum"],
        input=b"\0".join(str(p).encode() for p in paths),
        stdout=subprocess.DEVNULL,
        check=True,
    )


def copy_fsync(pairs: Sequence[tuple[Path, Path]]) -> None:
    """Copy each file to a new file and fsync it: the floor under a fetch from local paths."""
    for src, dst in pairs:
        dst.parent.mkdir(parents=True, exist_ok=True)
        with open(src, "rb") as s, open(dst, "wb") as d:
            shutil.copyfileobj(s, d, 1 << 20)
            d.flush()
            os.fsync(d.fileno())


def repeat(fn: Callable[[], object], runs: int) -> list[float]:
    """Seconds of ``runs`` calls of ``fn``."""
    return [timed(fn)[0] for _ in range(runs)]


def measure_artifact(
    label: str,
    name: str,
    settings: Settings,
    args: argparse.Namespace,
    results: Results,
    prof: Profiler,
) -> None:
    """Every verify measurement and baseline for one cached artifact."""
    ((_, folder),) = api.path(name, settings)
    spec_names = [f["name"] for f in api.describe(name, settings)["files"]]
    paths = [folder / n for n in spec_names]
    nfiles = len(paths)
    nbytes = sum(p.stat().st_size for p in paths)
    rows = results.rows

    def row(what: str, runs: list[float], **kw: Any) -> None:
        r = Row(label, what, runs, nfiles, nbytes, **kw)
        rows.append(r)
        log(f"{label}: {what}: {r.seconds:.3f} s (runs {', '.join(f'{t:.3f}' for t in runs)})")

    os.sync()
    read_all(paths)  # an earlier cold-cache measurement may have evicted them
    frac = resident_fraction(paths)
    warm_note = f"resident in the page cache before the runs (fincore): {frac:.1%}" if frac is not None else ""
    with prof.phase(f"{label}-verify-fast"):
        runs, fh, bh = verify_runs(name, settings, full=False, runs=args.fast_runs)
    if fh or bh:
        results.notes.append(f"{label}: the fast path re-hashed {fh} files / {bh} bytes (expected 0)")
    row("`verify` fast path (stat only), warm", runs, files_hashed=fh, bytes_hashed=bh)
    row("baseline: `os.stat` of every file", repeat(lambda: stat_all(paths), args.fast_runs))

    with prof.phase(f"{label}-verify-full"):
        runs, fh, bh = verify_runs(name, settings, full=True, runs=args.full_runs)
    row("`verify --full` (md5 + xxh3_128), warm", runs, files_hashed=fh, bytes_hashed=bh, note=warm_note)
    row(
        "baseline: `hash_file` md5 + xxh3_128, warm", repeat(lambda: hash_all(paths, ["md5", FAST_ALG]), args.full_runs)
    )
    row(
        "baseline: `hash_file` md5 (= `provision hash`), warm", repeat(lambda: hash_all(paths, ["md5"]), args.full_runs)
    )
    row("baseline: system `md5sum`, warm", repeat(lambda: md5sum(paths), args.full_runs))

    if args.no_cold:
        return
    methods: list[str] = []
    residents: list[float] = []

    def drop() -> None:
        methods.append(evict(paths))
        frac = resident_fraction(paths)
        if frac is not None:
            residents.append(frac)

    runs, fh, bh = verify_runs(name, settings, full=True, runs=args.cold_runs, before=drop)
    left = f"; still resident after eviction (fincore): {max(residents):.1%}" if residents else ""
    row(
        "`verify --full`, cold page cache",
        runs,
        files_hashed=fh,
        bytes_hashed=bh,
        note=f"evicted with {methods[0]}{left}",
    )
    cold_md5 = []
    for _ in range(args.cold_runs):
        drop()
        cold_md5.append(timed(lambda: md5sum(paths))[0])
    row("baseline: system `md5sum`, cold page cache", cold_md5, note=f"evicted with {methods[0]}")


# ---------------------------------------------------------------------------------------
# Machine and report


def machine_info(work: Path) -> dict[str, str]:
    """CPU, cores, RAM, the work folder's filesystem, Python, libraries, date."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
                break
    fs = "unknown"
    with contextlib.suppress(OSError, subprocess.CalledProcessError, IndexError):
        out = subprocess.run(["df", "-T", "-h", str(work)], capture_output=True, text=True, check=True).stdout
        dev, fstype, size, _used, avail, *_ = out.splitlines()[1].split()
        fs = f"{fstype} on {dev} ({size} total, {avail} free before the run)"
    code = "unknown"
    repo = Path(__file__).resolve().parent.parent
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--", "provision"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        code = f"git {head}" + (f" + {len(dirty)} uncommitted change(s) under provision/" if dirty else "")
    digest = hashlib.sha256()
    for src in sorted((repo / "provision").rglob("*.py")):
        digest.update(src.relative_to(repo).as_posix().encode() + b"\0" + src.read_bytes())
    code += f"; sha256 of provision/**/*.py {digest.hexdigest()[:12]}"
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": f"{os.cpu_count()} logical ({affinity} usable by this process)",
        "ram": ram,
        "filesystem": fs,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "libraries": (
            f"provision {provision.__version__}, {ssl.OPENSSL_VERSION} (hashlib md5), "
            f"xxhash {xxhash.VERSION}, numpy {np.__version__}"
        ),
        "provision code": code,
        "load average": " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1/5/15 min, at the start)",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def fmt_rate(value: float) -> str:
    """Thousands separators, no decimals past 100."""
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def markdown(results: Results) -> str:
    """The report: machine, table, notes."""
    out = ["## Machine", ""]
    out += [f"- **{k}**: {v}" for k, v in results.machine.items()]
    a = results.args
    out += [
        "",
        f"## Results ({a['files']:,} files of {a['min_kb']}-{a['max_kb']} KB; one {a['big_gib']} GiB file; "
        f"seed {a['seed']}; fetch jobs={a['jobs']})",
        "",
        "Seconds are the median of the runs shown. MB/s and files/s are the artifact's size and "
        "file count divided by that time (1 MB = 10^6 bytes), whether or not the bytes were read. "
        "'x fast' is the time over the warm `verify` fast path of the same artifact. "
        "'warm' means the files were in the page cache (just written or read).",
        "",
        "| artifact | measurement | runs (s) | median s | MB/s | files/s | x fast | files hashed | bytes hashed |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    fast: dict[str, float] = {}
    for r in results.rows:
        if r.what.startswith("`verify` fast path"):
            fast[r.artifact] = r.seconds
    for r in results.rows:
        s = r.seconds
        ratio = f"{s / fast[r.artifact]:,.1f}" if r.compare and fast.get(r.artifact) else ""
        fh = f"{r.files_hashed:,}" if r.files_hashed is not None else ""
        bh = f"{r.bytes_hashed:,}" if r.bytes_hashed is not None else ""
        runs = ", ".join(f"{t:.3f}" for t in r.runs)
        out.append(
            f"| {r.artifact} | {r.what} | {runs} | {s:.3f} | {fmt_rate(r.nbytes / MB / s)} | "
            f"{fmt_rate(r.nfiles / s)} | {ratio} | {fh} | {bh} |"
        )
    notes = [r for r in results.rows if r.note]
    if notes or results.notes:
        out += ["", "Notes:", ""]
        out += [f"- {r.artifact}, {r.what}: {r.note}" for r in notes]
        out += [f"- {n}" for n in results.notes]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options; ``--quick`` shrinks the defaults for a smoke run."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=None, help="small files in the tree (default 50000; quick 2000)")
    p.add_argument(
        "--big-gib", type=float, default=None, help="size of the big file in GiB, 0 for none (default 2; quick 1/16)"
    )
    p.add_argument("--work", type=Path, default=Path("benchmarks/_work"), help="scratch folder (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="small smoke run: 2000 files and a 64 MiB file")
    p.add_argument("--seed", type=int, default=0, help="random seed for sizes and contents (default %(default)s)")
    p.add_argument("--min-kb", type=int, default=1, help="smallest tree file in KiB (default %(default)s)")
    p.add_argument("--max-kb", type=int, default=20, help="largest tree file in KiB (default %(default)s)")
    p.add_argument("--jobs", type=int, default=4, help="fetch parallelism (default %(default)s)")
    p.add_argument("--fast-runs", type=int, default=3, help="runs of the fast path (default %(default)s)")
    p.add_argument("--full-runs", type=int, default=3, help="runs of --full and the baselines (default %(default)s)")
    p.add_argument("--cold-runs", type=int, default=1, help="runs of the cold-cache checks (default %(default)s)")
    p.add_argument("--no-cold", action="store_true", help="skip the cold-cache measurements")
    p.add_argument("--profile", type=Path, default=None, help="write cProfile stats per phase into this folder")
    p.add_argument("--json", type=Path, default=None, help="also write the raw results as JSON here")
    p.add_argument("--keep", action="store_true", help="keep the generated files and cache afterwards")
    args = p.parse_args(argv)
    if args.files is None:
        args.files = 2000 if args.quick else 50_000
    if args.big_gib is None:
        args.big_gib = 1 / 16 if args.quick else 2.0
    if args.files < 1 or args.big_gib < 0 or not 0 < args.min_kb <= args.max_kb:
        p.error("need --files >= 1, --big-gib >= 0 and 0 < --min-kb <= --max-kb")
    for opt in ("jobs", "fast_runs", "full_runs", "cold_runs"):
        if getattr(args, opt) < 1:
            p.error(f"--{opt.replace('_', '-')} must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Generate, fetch, measure, report, clean up."""
    args = parse_args(argv)
    work = args.work.resolve()
    prepare_work(work)
    results = Results(
        args={
            "files": args.files,
            "big_gib": args.big_gib,
            "min_kb": args.min_kb,
            "max_kb": args.max_kb,
            "seed": args.seed,
            "jobs": args.jobs,
        },
        machine=machine_info(work),
    )
    prof = Profiler(args.profile.resolve() if args.profile else None)
    try:
        big_size = int(args.big_gib * (1 << 30))
        log(f"generating {args.files:,} files and a {big_size:,}-byte file under {work / 'src'}")
        t, tree = timed(lambda: make_tree(work / "src", args.files, args.seed, args.min_kb * 1024, args.max_kb * 1024))
        big = make_big(work / "src", big_size, args.seed) if big_size else None
        manifest = write_manifest(work / "manifests", tree, big)
        os.sync()
        log(f"generated in {t:.1f} s; manifest {manifest} ({manifest.stat().st_size:,} bytes)")

        settings = Settings(cache_dir=work / "cache", manifest_dirs=(work / "manifests",), jobs=args.jobs)
        tree_bytes = sum(f.size for f in tree)
        runs = repeat(lambda: api.load(settings), args.fast_runs)
        results.rows.append(
            Row("catalog", "load the catalog (parse the manifests)", runs, len(tree), tree_bytes, compare=False)
        )
        log(f"catalog load: {statistics.median(runs):.3f} s")

        targets: list[tuple[str, str, int, int]] = [("tree", TREE, len(tree), tree_bytes)]
        if big is not None:
            targets.append(("big", BIG, 1, big.size))
        copies = work / "cache" / "baseline-copy"
        for label, name, nfiles, nbytes in targets:
            log(f"fetching {name} (jobs={args.jobs})")
            with prof.phase(f"{label}-fetch"):
                t0 = time.perf_counter()
                report = api.fetch([name], settings)
                seconds = time.perf_counter() - t0
            report.raise_for_errors()
            states = sorted({f.state for f in report.files})
            results.rows.append(
                Row(
                    label,
                    f"`fetch` from local paths, jobs={args.jobs}",
                    [seconds],
                    nfiles,
                    nbytes,
                    note=f"file states: {', '.join(states)}; includes loading the catalog",
                    compare=False,
                )
            )
            log(f"fetched {name} in {seconds:.1f} s (states: {', '.join(states)})")
            gen = tree if label == "tree" else [big] if big is not None else []
            pairs = [(f.path, copies / f"{i}") for i, f in enumerate(gen)]
            seconds = timed(functools.partial(copy_fsync, pairs))[0]
            shutil.rmtree(copies)
            results.rows.append(
                Row(label, "baseline: copy each file to a new file + fsync", [seconds], nfiles, nbytes, compare=False)
            )
            log(f"copy+fsync baseline for {name}: {seconds:.1f} s")
        os.sync()

        for label, name, _nfiles, _nbytes in targets:
            measure_artifact(label, name, settings, args, results, prof)
    finally:
        if not args.keep:
            log(f"deleting the generated data under {work}")
            clean_work(work)

    text = markdown(results)
    print(text)
    if args.json:
        doc = {"args": results.args, "machine": results.machine, "rows": [asdict(r) for r in results.rows]}
        doc["notes"] = results.notes
        args.json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
