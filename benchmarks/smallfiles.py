#!/usr/bin/env python3
"""Benchmark small-file extraction, fetch and verify against GNU ``tar`` and the shell.

One run:

1. builds (deterministically, from ``--seed``) an uncompressed GNU tar of ``--files``
   (default 50,000) files of ``--min-kb``..``--max-kb`` (default 1-8 KiB, uniform) random
   bytes, laid out like ImageNet's train folder: ``train/n%08d/n%08d_%d.JPEG`` in
   ``--folders`` (default 100) class folders, each with a directory member before its
   files (``--folders 0``: flat ``val/ILSVRC2012_val_%08d.JPEG``). It lives in
   ``--work`` (default ``benchmarks/_work/smallfiles/``) and is reused by the next run with
   the same parameters when ``--keep`` was given;
2. times, in alternating rounds (``--runs``, default 5, medians reported):

   - **extract**: ``tar -xf ARCHIVE -C DIR`` vs
     ``provision.extract.archive.extract_archive(ARCHIVE, ExtractSpec(format="tar"), DEST)``
     in-process (like ``benchmarks/extract.py``), each into a fresh folder. Ratio
     provision / tar time, target <= 1.0;
   - **fetch**: the real CLI ``provision fetch NAME -q --json`` on a fresh cache, with a
     generated manifest (``schema = 1``, one ``[[dataset]]`` whose one file has
     ``urls = ["/abs/path/ARCHIVE"]``, ``size``, an ``md5:`` checksum and
     ``extract = "tar"``), vs the shell baseline
     ``cp ARCHIVE DEST && md5sum DEST && tar -xf DEST -C DIR``. Ratio, target <= 1.5;
   - **verify**: the real CLI ``provision verify NAME -q --json`` on a cache fetched once
     (untimed; the tree unchanged and warm) vs the CLI's start-up alone
     (``provision --version`` and ``python -c "import provision.cli"``), and an in-process
     ``os.stat`` loop over every extracted file as the floor. Reported: verify minus
     ``provision --version``, target <= 0.3 s.

   Every timed run starts after an untimed ``os.sync()``; each run's output is deleted
   (untimed) right after it, so every run starts after the same deletion (on this VM's ext4,
   mounted with ``discard``, the run after a big deletion is the slow one). The archive is
   read once first, so every run finds it in the page cache;
3. checks that tar's output and provision's tree have the same tree digest (first round),
   and that fetch extracted every file;
4. prints a Markdown report: the machine (CPU, cores, RAM, filesystem, kernel, Python, tar,
   date, load average at start and end) and a table (runs, median, ratio, target,
   PASS/FAIL). Exit status 1 when a target is missed.

``--profile`` also runs one extraction under cProfile and prints the hotspots. The CLI is
``.venv/bin/provision`` (beside this Python), with ``PROVISION_CACHE`` and
``PROVISION_MANIFESTS`` pointing into ``--work``. Examples::

    python benchmarks/smallfiles.py                          # 50,000 files, all three scenarios
    python benchmarks/smallfiles.py --quick                  # 2,000 files (a smoke run)
    python benchmarks/smallfiles.py --only extract --runs 3 --keep --profile
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import hashlib
import io
import json
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
DEFAULT_WORK = HERE / "_work" / "smallfiles"
NAME = "smallfiles-bench"
ARCHIVE_NAME = "smallfiles.tar"
TO = "tree"  # extract_to: the tree's folder inside the artifact folder
POOL_BYTES = 16 << 20  # random bytes that file contents are sliced from
SCENARIOS = ("extract", "fetch", "verify")
TARGET_EXTRACT = 1.0  # provision / tar time, at most
TARGET_FETCH = 1.5  # provision fetch / (cp + md5sum + tar), at most
TARGET_VERIFY = 0.3  # seconds of verify above the CLI start-up, at most
MARKER = ".smallfiles-bench"  # a --work folder this script made


def log(msg: str) -> None:
    """Progress on stderr (stdout carries the Markdown report)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Archive


@dataclass(frozen=True)
class Layout:
    """What the archive holds: member names and sizes, derived from the options alone."""

    files: int
    min_kb: int
    max_kb: int
    folders: int
    seed: int

    def key(self) -> dict[str, int]:
        return {
            "files": self.files,
            "min_kb": self.min_kb,
            "max_kb": self.max_kb,
            "folders": self.folders,
            "seed": self.seed,
        }

    def dirs(self) -> list[str]:
        if self.folders <= 0:
            return ["val"]
        return [f"train/n{10_000_000 + i * 7919:08d}" for i in range(self.folders)]

    def entries(self) -> list[tuple[str, int]]:
        """``(member name, size)`` of every file, folder by folder."""
        rng = random.Random(self.seed)
        lo, hi = self.min_kb * 1024, self.max_kb * 1024
        dirs = self.dirs()
        out = []
        for i in range(self.files):
            size = rng.randint(lo, hi)
            if self.folders <= 0:
                out.append((f"val/ILSVRC2012_val_{i + 1:08d}.JPEG", size))
            else:
                d = dirs[i * len(dirs) // self.files]
                cls = d.rsplit("/", 1)[1]
                out.append((f"{d}/{cls}_{i + 1}.JPEG", size))
        return out


def build_archive(path: Path, layout: Layout) -> str:
    """Write the tar atomically (``.part`` then rename); return its md5 hex."""
    rng = random.Random(layout.seed + 1)
    pool = memoryview(rng.randbytes(POOL_BYTES))
    part = path.with_name(path.name + ".part")
    t0 = time.perf_counter()
    entries = layout.entries()
    dir_of: dict[str, list[tuple[str, int]]] = {d: [] for d in layout.dirs()}
    for name, size in entries:
        dir_of[name.rsplit("/", 1)[0]].append((name, size))
    with tarfile.open(part, "w", format=tarfile.GNU_FORMAT) as tf:
        for i, (d, members) in enumerate(dir_of.items()):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.mtime = 1_336_000_000 + i
            info.uname = info.gname = "root"
            tf.addfile(info)
            for j, (name, size) in enumerate(members):
                info = tarfile.TarInfo(name)
                info.size = size
                info.mode = 0o644
                info.mtime = 1_336_000_000 + j
                info.uname = info.gname = "root"
                off = rng.randrange(0, POOL_BYTES - size)
                tf.addfile(info, io.BytesIO(pool[off : off + size]))
    os.replace(part, path)
    log(f"built {path} ({path.stat().st_size / 1e6:.1f} MB, {layout.files} files) in {time.perf_counter() - t0:.1f} s")
    return md5_of(path)


def md5_of(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(folder: Path, archive: Path, md5: str) -> None:
    """One dataset, one file: the archive by absolute path, its size and md5, ``extract = "tar"``."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (
        "schema = 1\n\n[[dataset]]\n"
        f'name = "{NAME}"\ndescription = "benchmarks/smallfiles.py data"\n'
        f'[[dataset.files]]\nname = "{archive.name}"\nurls = ["{archive}"]\n'
        f'size = {archive.stat().st_size}\nchecksum = "md5:{md5}"\n'
        f'extract = "tar"\nextract_to = "{TO}"\n'
    )
    (folder / "smallfiles.toml").write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------------------
# Timing


@dataclass
class Series:
    """Timings of one contender."""

    label: str
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def runs(self) -> str:
        return ", ".join(f"{x:.3f}" for x in self.seconds)


def timed(fn: Callable[[], object]) -> float:
    """Seconds of ``fn()``, after an untimed ``os.sync()``."""
    os.sync()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def remove(path: Path) -> None:
    """Delete an output folder (and any temp folders left beside it)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    for p in path.parent.glob(path.name + ".part-*"):
        shutil.rmtree(p, ignore_errors=True)


def count_files(root: Path) -> tuple[int, int]:
    """Regular files and their bytes under ``root``."""
    n = total = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            st = os.lstat(os.path.join(dirpath, name))
            n += 1
            total += st.st_size
    return n, total


def run(cmd: list[str] | str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command (a list, or a shell string) and fail loudly on a non-zero exit."""
    proc = subprocess.run(cmd, shell=isinstance(cmd, str), env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd!r} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[:500]}")
    return proc


class Bench:
    """The generated data, the contenders, and their timings."""

    def __init__(self, args: argparse.Namespace, work: Path, archive: Path, layout: Layout) -> None:
        self.args = args
        self.work = work
        self.archive = archive
        self.layout = layout
        self.n = layout.files
        self.payload = sum(s for _n, s in layout.entries())
        self.out = work / "out"
        self.provision = str(Path(sys.executable).with_name("provision"))
        if not Path(self.provision).exists():
            self.provision = shutil.which("provision") or "provision"
        self.series: dict[str, Series] = {}
        self.notes: list[str] = []

    def env(self, cache: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISION_")}
        env["PROVISION_CACHE"] = str(cache)
        env["PROVISION_MANIFESTS"] = str(self.work / "manifests")
        return env

    def add(self, key: str, label: str, secs: float) -> None:
        self.series.setdefault(key, Series(label)).seconds.append(secs)

    def expect(self, what: str, root: Path) -> None:
        got = count_files(root)
        if got != (self.n, self.payload):
            raise SystemExit(f"{what} extracted {got[0]} files / {got[1]} bytes, expected {self.n} / {self.payload}")

    def rounds(
        self,
        contenders: list[tuple[str, str, Callable[[], object], Callable[[], None]]],
        end_of_round: Callable[[int], None] = lambda r: None,
    ) -> None:
        """Each round runs every contender once (order reversed every other round).

        ``after`` (each contender's check) and ``end_of_round`` (compare, delete outputs) are untimed.
        """
        for r in range(self.args.runs):
            order = contenders if r % 2 == 0 else contenders[::-1]
            for key, label, fn, after in order:
                secs = timed(fn)
                self.add(key, label, secs)
                log(f"round {r + 1}/{self.args.runs} {key:17s} {secs:7.3f} s")
                after()
            end_of_round(r)

    # -- extract ----------------------------------------------------------------------
    def extract(self) -> None:
        tar_dir, prov_dir = self.out / "tar", self.out / "provision"
        remove(tar_dir)
        remove(prov_dir)
        digests = {"tar": "", "provision": ""}

        def run_tar() -> None:
            tar_dir.mkdir(parents=True)
            run(["tar", "-xf", str(self.archive), "-C", str(tar_dir)])

        def run_provision() -> None:
            self.out.mkdir(parents=True, exist_ok=True)
            record = extract_archive(self.archive, ExtractSpec(format="tar", to=TO), prov_dir, label=self.archive.name)
            digests["provision"] = record.digest

        def after_tar() -> None:
            self.expect("tar", tar_dir)
            if not digests["tar"]:
                digests["tar"] = hash_tree(tar_dir).digest
            remove(tar_dir)

        def after_provision() -> None:
            self.expect("provision", prov_dir)
            remove(prov_dir)

        def end_of_round(r: int) -> None:
            if r == 0:
                if digests["tar"] != digests["provision"]:
                    raise SystemExit(
                        f"tree digest of tar's output {digests['tar']} != provision's {digests['provision']}"
                    )
                log(f"tar's output and provision's tree agree: {digests['tar']}")

        self.rounds(
            [
                ("extract.tar", "`tar -xf ARCHIVE -C DIR`", run_tar, after_tar),
                ("extract.provision", "`extract_archive(...)` (in-process)", run_provision, after_provision),
            ],
            end_of_round,
        )

    def profile(self) -> str:
        dest = self.out / "profile"
        remove(dest)
        self.out.mkdir(parents=True, exist_ok=True)
        prof = cProfile.Profile()
        prof.runcall(extract_archive, self.archive, ExtractSpec(format="tar", to=TO), dest, label=self.archive.name)
        remove(dest)
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(20)
        return buf.getvalue()

    # -- fetch ------------------------------------------------------------------------
    def fetch_cli(self, cache: Path) -> None:
        proc = run([self.provision, "fetch", NAME, "-q", "--json"], env=self.env(cache))
        self.check_fetch(proc.stdout)

    def check_fetch(self, stdout: str) -> None:
        try:
            doc = json.loads(stdout)
        except ValueError as exc:
            raise SystemExit(f"provision fetch: not JSON on stdout ({exc}): {stdout[:300]}") from exc
        if not doc.get("ok"):
            raise SystemExit(f"provision fetch: not ok: {stdout[:300]}")

    def fetch(self) -> None:
        cache = self.out / "cache"
        shell_dir = self.out / "shell"
        tree = cache / "artifacts" / NAME / TO
        copy = shell_dir / self.archive.name
        shell = (
            f"cp '{self.archive}' '{copy}' && md5sum '{copy}' > /dev/null && tar -xf '{copy}' -C '{shell_dir / 'tree'}'"
        )

        def run_shell() -> None:
            (shell_dir / "tree").mkdir(parents=True)
            run(shell)

        def after_shell() -> None:
            self.expect("cp + md5sum + tar", shell_dir / "tree")
            remove(shell_dir)

        def after_fetch() -> None:
            self.expect("provision fetch", tree)
            remove(cache)

        remove(cache)
        remove(shell_dir)
        self.rounds(
            [
                ("fetch.shell", "`cp ARCHIVE DEST && md5sum DEST && tar -xf DEST -C DIR`", run_shell, after_shell),
                ("fetch.provision", "`provision fetch NAME` (fresh cache)", lambda: self.fetch_cli(cache), after_fetch),
            ]
        )

    # -- verify -----------------------------------------------------------------------
    def verify(self) -> None:
        cache = self.out / "verify-cache"
        remove(cache)
        log("verify: fetching once into a cache of its own (untimed)")
        self.fetch_cli(cache)
        tree = cache / "artifacts" / NAME / TO
        self.expect("provision fetch", tree)
        paths = [os.path.join(d, f) for d, _s, names in os.walk(tree) for f in names]
        env = self.env(cache)

        def run_verify() -> None:
            proc = run([self.provision, "verify", NAME, "-q", "--json"], env=env)
            doc = json.loads(proc.stdout)
            if not doc.get("ok") or doc.get("files_hashed") != 0:
                raise SystemExit(f"provision verify: not ok, or re-hashed files: {proc.stdout[:300]}")

        def stat_loop() -> None:
            for p in paths:
                os.stat(p)

        def nothing() -> None:
            pass

        run_verify()  # warm: the tree's inodes, the record and the manifests in the page cache
        self.rounds(
            [
                (
                    "verify.version",
                    "`provision --version` (start-up)",
                    lambda: run([self.provision, "--version"]),
                    nothing,
                ),
                (
                    "verify.import",
                    '`python -c "import provision.cli"`',
                    lambda: run([sys.executable, "-c", "import provision.cli"]),
                    nothing,
                ),
                ("verify.provision", "`provision verify NAME` (warm, unchanged)", run_verify, nothing),
                ("verify.stat", f"`os.stat` of every file ({len(paths):,}, in-process)", stat_loop, nothing),
            ]
        )
        remove(cache)


# ---------------------------------------------------------------------------------------
# Machine


def sh(cmd: list[str]) -> str:
    """A command's stdout, stripped ('' when it fails)."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def compile_bytecode() -> None:
    """Write provision's bytecode (``__pycache__``, git-ignored), as ``pip install`` does: the CLI
    runs below then start like an installed package, also where ``PYTHONDONTWRITEBYTECODE`` is set
    (it is on this VM, so each run would otherwise compile every module it imports again)."""
    import compileall

    compileall.compile_dir(str(HERE.parent / "provision"), quiet=1)


def machine(work: Path) -> str:
    """One line: CPU, cores, RAM, filesystem of ``work``, kernel, Python, tar, date."""
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
        ram = f"{kib / (1 << 20):.0f} GiB"
    df = sh(["df", "-T", str(work)]).splitlines()
    fs = f"{df[-1].split()[1]} ({df[-1].split()[0]})" if len(df) > 1 else "?"
    tar = sh(["tar", "--version"]).splitlines()[:1]
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{cpu}, {os.cpu_count()} cores, {ram} RAM, work dir on {fs}, Linux {platform.release()}, "
        f"Python {platform.python_version()}, {tar[0] if tar else 'tar ?'}, {date}"
    )


# ---------------------------------------------------------------------------------------
# Report


def report(bench: Bench, archive_bytes: int, load_start: str, machine_line: str) -> tuple[str, bool]:
    s = bench.series
    rows: list[str] = []
    ok = True

    def row(key: str, ratio: str = "", target: str = "", verdict: str = "") -> None:
        x = s[key]
        rate = "" if key in ("verify.version", "verify.import") else f"{bench.n / x.median:,.0f}"
        rows.append(f"| {x.label} | {x.runs()} | {x.median:.3f} | {rate} | {ratio} | {target} | {verdict} |")

    def judge(passed: bool) -> str:
        nonlocal ok
        ok = ok and passed
        return "**PASS**" if passed else "**FAIL**"

    if "extract.tar" in s:
        r = s["extract.provision"].median / s["extract.tar"].median
        row("extract.tar", "1.00")
        row("extract.provision", f"{r:.2f}", f"<= {TARGET_EXTRACT:.1f}", judge(r <= TARGET_EXTRACT))
    if "fetch.shell" in s:
        r = s["fetch.provision"].median / s["fetch.shell"].median
        row("fetch.shell", "1.00")
        row("fetch.provision", f"{r:.2f}", f"<= {TARGET_FETCH:.1f}", judge(r <= TARGET_FETCH))
    if "verify.provision" in s:
        extra = s["verify.provision"].median - s["verify.version"].median
        row("verify.version")
        row("verify.import")
        row("verify.stat")
        row(
            "verify.provision",
            f"{extra:+.3f} s over `--version`",
            f"<= +{TARGET_VERIFY:.1f} s",
            judge(extra <= TARGET_VERIFY),
        )
    paired = []
    for name, base, ours in (
        ("extract", "extract.tar", "extract.provision"),
        ("fetch", "fetch.shell", "fetch.provision"),
    ):
        if base in s:
            rs = [p / b for p, b in zip(s[ours].seconds, s[base].seconds, strict=True)]
            paired.append(f"{name}: {', '.join(f'{x:.2f}' for x in rs)} (median {statistics.median(rs):.2f})")
    a = bench.args
    layout = f"{a.folders} folders `train/nXXXXXXXX/` (+ a directory member each)" if a.folders > 0 else "flat `val/`"
    lines = [
        f"Archive: {bench.n:,} files of {a.min_kb}-{a.max_kb} KiB (uniform, random bytes, seed {a.seed}), "
        f"{layout}; {bench.payload / 1e6:.1f} MB of data, {archive_bytes / 1e6:.1f} MB tar. "
        f"{a.runs} runs each, alternating rounds, median; archive in the page cache; `os.sync()` before every run.",
        "",
        "| contender | runs (s) | median s | files/s | ratio (time) | target | verdict |",
        "|---|---|---:|---:|---|---|---|",
        *rows,
        "",
        *([f"Per-round ratios (provision / baseline time, same round): {'; '.join(paired)}.", ""] if paired else []),
        f"Machine: {machine_line}; load avg at start {load_start}, at end {load_avg()}.",
    ]
    lines += [f"Note: {n}" for n in bench.notes]
    return "\n".join(lines), ok


# ---------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--files", type=int, default=50_000, help="files in the archive (default 50,000)")
    p.add_argument("--min-kb", type=int, default=1, help="smallest file, KiB (default 1)")
    p.add_argument("--max-kb", type=int, default=8, help="largest file, KiB (default 8)")
    p.add_argument("--folders", type=int, default=100, help="class folders under train/ (default 100; 0: flat val/)")
    p.add_argument("--quick", action="store_true", help="2,000 files (a smoke run)")
    p.add_argument("--runs", type=int, default=5, help="timed runs of each contender (>= 1; default 5)")
    p.add_argument("--only", action="append", choices=SCENARIOS, help="run only this scenario (repeatable)")
    p.add_argument("--seed", type=int, default=2012)
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, help=f"scratch folder (default {DEFAULT_WORK})")
    p.add_argument(
        "--keep", action="store_true", help="keep the archive (reused by the next run with the same options)"
    )
    p.add_argument("--profile", action="store_true", help="also cProfile one provision extraction")
    p.add_argument("--json", type=Path, help="also write the raw timings here")
    args = p.parse_args(argv)
    if args.quick:
        args.files = 2_000
    if args.runs < 1 or args.files < 1 or not 0 < args.min_kb <= args.max_kb:
        p.error("need --runs >= 1, --files >= 1 and 0 < --min-kb <= --max-kb")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = load_avg()
    work: Path = args.work.resolve()
    if work.exists() and any(work.iterdir()) and not (work / MARKER).exists():
        raise SystemExit(f"{work}: not empty and not made by this script; pick another --work")
    work.mkdir(parents=True, exist_ok=True)
    (work / MARKER).touch()
    machine_line = machine(work)
    compile_bytecode()

    layout = Layout(args.files, args.min_kb, args.max_kb, args.folders, args.seed)
    archive = work / ARCHIVE_NAME
    stamp = work / "archive.json"
    key = layout.key()
    stored = json.loads(stamp.read_text()) if stamp.exists() else {}
    if archive.exists() and stored.get("layout") == key:
        md5 = stored["md5"]
        log(f"reusing {archive}")
    else:
        archive.unlink(missing_ok=True)
        stamp.unlink(missing_ok=True)
        md5 = build_archive(archive, layout)
        stamp.write_text(json.dumps({"layout": key, "md5": md5}))
    md5_of(archive)  # read once: every run finds it in the page cache
    write_manifest(work / "manifests", archive, md5)

    bench = Bench(args, work, archive, layout)
    only = args.only or list(SCENARIOS)
    shutil.rmtree(bench.out, ignore_errors=True)
    try:
        for name in SCENARIOS:
            if name in only:
                log(f"{name}: {args.runs} rounds")
                getattr(bench, name)()
        prof = bench.profile() if args.profile else ""
    finally:
        shutil.rmtree(bench.out, ignore_errors=True)
    text, ok = report(bench, archive.stat().st_size, load_start, machine_line)
    print(text)
    if prof:
        print("\ncProfile of one provision extraction (top by tottime):\n")
        print("```\n" + prof.strip() + "\n```")
    if args.json:
        doc = {k: {"label": v.label, "seconds": v.seconds} for k, v in bench.series.items()}
        args.json.write_text(json.dumps({"files": bench.n, "series": doc, "machine": machine_line}, indent=2))
    if not args.keep:
        shutil.rmtree(work / "manifests", ignore_errors=True)
        archive.unlink(missing_ok=True)
        stamp.unlink(missing_ok=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
