#!/usr/bin/env python3
"""Benchmark how fast the ``provision`` command starts, side by side with ``import typer``.

One run times, as separate processes of the same interpreter (``--python``, default this one)
and the ``provision`` script installed beside it:

- ``python -c "pass"``: the floor, the interpreter's own start-up (with its ``site``);
- ``python -c "import typer"``: the reference, the least any typer CLI can cost;
- ``python -c "import typer.rich_utils"``: what typer imports to draw a help page with rich
  (rich, markdown-it, pygments), before it draws anything: not a target, it shows why
  ``provision``'s help is click's plain text;
- ``provision --help``, ``provision --version`` and ``provision list`` (the latter reads the
  built-in manifests and an empty cache).

Method: one untimed ``provision --version`` whose stdout is kept, ``--warmup`` untimed rounds
(default 2), then ``--runs`` rounds (default 15). Each round runs every command once, in an
order rotated by one each round so that no command always follows the same one, one process
at a time, stdout and stderr to ``/dev/null``.
Wall time is ``time.perf_counter()`` around ``subprocess.run``; CPU time is the child's user +
system time (``resource.getrusage(RUSAGE_CHILDREN)`` before and after). The environment is
this one's, except that ``PROVISION_CACHE`` points at an empty temporary folder and
``PYTHONDONTWRITEBYTECODE`` is removed, so that the warm-up writes the bytecode caches
(``__pycache__``) that every start of an installed command after its first one reads; with
that variable set and no caches, each start compiles provision's modules again (tens of ms).

It prints a Markdown table (exit statuses seen, median and min wall seconds, median CPU seconds,
the median minus the floor, and the ratio of each median to ``import typer``'s), a machine line
and a table of targets. The exit status is 1 when the median of ``provision --help`` or of
``provision --version`` is more than ``--max-ratio`` (default 2.0) times the median of
``import typer``, when a command exited non-zero, or when ``--version`` did not print
``provision <version>``, so that the script can be a check. Example::

    .venv/bin/python benchmarks/startup.py              # 15 rounds, ~15 s on 2 cores
    .venv/bin/python benchmarks/startup.py --runs 40    # steadier medians on a noisy machine
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

#: The commands whose ratio to ``import typer`` is the check.
CHECKED = ("provision --help", "provision --version")
REFERENCE = 'python -c "import typer"'


@dataclass
class Contender:
    """One command line and its timings (seconds), one entry per timed round."""

    label: str
    argv: list[str]
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    codes: set[int] = field(default_factory=set)


def contenders(python: Path, provision: Path) -> list[Contender]:
    return [
        Contender('python -c "pass"', [str(python), "-c", "pass"]),
        Contender(REFERENCE, [str(python), "-c", "import typer"]),
        Contender('python -c "import typer.rich_utils"', [str(python), "-c", "import typer.rich_utils"]),
        Contender("provision --help", [str(provision), "--help"]),
        Contender("provision --version", [str(provision), "--version"]),
        Contender("provision list", [str(provision), "list"]),
    ]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(c: Contender, env: dict[str, str], *, capture: bool = False) -> tuple[float, float, str]:
    """Run ``c`` once: (wall seconds, CPU seconds, stdout if ``capture``); its exit status goes to ``c.codes``."""
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    proc = subprocess.run(
        c.argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.PIPE if capture else subprocess.DEVNULL,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    cpu = _children_cpu() - cpu0
    c.codes.add(proc.returncode)
    return wall, cpu, proc.stdout or ""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover - not Linux
        pass
    return platform.processor() or "?"


def machine(python: Path, env: dict[str, str], load_before: str) -> str:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 1
    versions = subprocess.run(
        [
            str(python),
            "-c",
            "import platform, importlib.metadata as m; print(platform.python_version(), "
            "*(f'{d} {m.version(d)}' for d in ('typer', 'click', 'rich', 'provision')), sep=', ')",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{cpu_model()}, {os.cpu_count()} cores ({usable} usable), {mem:.1f} GiB RAM, Linux {platform.release()}, "
        f"Python {versions or '?'}; interpreter {python}; {now}; "
        f"load average (1/5/15 min) before {load_before}, after {load}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="timed rounds (default 15)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument(
        "--python", type=Path, default=Path(sys.executable), help="interpreter; 'provision' is taken beside it"
    )
    parser.add_argument("--max-ratio", type=float, default=2.0, help="fail above this ratio to import typer")
    args = parser.parse_args()
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be at least 1 and --warmup at least 0")

    python = args.python  # not resolved: a venv's bin/python is a link whose location selects the venv
    provision = python.parent / "provision"
    if not provision.is_file():
        parser.error(f"{provision}: no provision script beside {python} (pip install -e . in that environment)")

    with tempfile.TemporaryDirectory(prefix="provision-bench-startup-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PROVISION_CACHE"] = cache
        rows = contenders(python, provision)
        version = next(c for c in rows if c.label == "provision --version")
        _, _, printed = run_once(version, env, capture=True)
        for _ in range(args.warmup):
            for c in rows:
                run_once(c, env)
        load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
        for r in range(args.runs):
            k = r % len(rows)
            for c in rows[k:] + rows[:k]:
                wall, cpu, _ = run_once(c, env)
                c.wall.append(wall)
                c.cpu.append(cpu)
        info = machine(python, env, load_before)

    floor = statistics.median(rows[0].wall)
    ref = statistics.median(next(c for c in rows if c.label == REFERENCE).wall)
    print(f"**Start-up of `provision` ({args.runs} rounds, order rotated each round, after {args.warmup} warm-up)**\n")
    print("| command | exit | median s | min s | median CPU s | median - floor s | x `import typer` |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    ratios: dict[str, float] = {}
    for c in rows:
        med = statistics.median(c.wall)
        ratios[c.label] = med / ref
        codes = ", ".join(map(str, sorted(c.codes)))
        print(
            f"| `{c.label}` | {codes} | {med:.3f} | {min(c.wall):.3f} | {statistics.median(c.cpu):.3f} "
            f"| {med - floor:.3f} | {med / ref:.2f} |"
        )
    shown = printed.strip().replace("\n", " ") or "nothing"
    print(f"\nMachine: {info}. `provision --version` printed {shown!r} on stdout.\n")
    print("| target | measured | required | result |")
    print("|---|---:|---:|---|")
    ok = True
    for c in rows:
        if c.codes != {0}:
            ok = False
            print(f"| `{c.label}` exits 0 | {', '.join(map(str, sorted(c.codes)))} | 0 | FAIL |")
    if not printed.startswith("provision "):
        ok = False
        print(f"| `provision --version` prints `provision <version>` | {shown!r} | `provision <version>` | FAIL |")
    for label in CHECKED:
        passed = ratios[label] <= args.max_ratio
        ok = ok and passed
        print(
            f"| `{label}` / `import typer` (medians) | {ratios[label]:.2f}x | <= {args.max_ratio:.2f}x "
            f"| {'PASS' if passed else 'FAIL'} |"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
