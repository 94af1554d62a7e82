#!/usr/bin/env python3
"""Benchmark ``provision fetch`` against ``curl`` (and ``aria2c``) over loopback HTTP.

One run measures, side by side:

1. **fast**: one large file (default 2 GiB of random bytes) from an unthrottled local
   server: ``provision fetch`` (the real CLI, a fresh cache each run, a manifest with size
   and md5, or sha256 with ``--alg sha256``, default jobs) vs ``curl -o`` (one stream),
   ``curl`` followed by ``md5sum`` / ``sha256sum`` (provision hashes the manifest's
   algorithm and xxh3_128 and verifies; curl does not), the same plus an fsync of the file
   (provision fsyncs before committing), and ``aria2c -x8 -s8`` (plain and with
   ``--checksum=md5=...`` / ``--checksum=sha-256=...``) when ``aria2c`` is on PATH, and
   ``md5sum`` / ``sha256sum`` alone of the source file, hot in the page cache (the hashing
   alone). Targets: provision <= 1.25 x max(curl, that sum): the slower of the two bounds a
   fetch that hashes while it receives (issue 17); provision / curl <= 1.10 is printed too.
2. **throttled**: a smaller file (default 512 MiB) from a location limited per connection
   (default 20 MiB/s): provision with ``PROVISION_JOBS=8`` vs curl (one stream) vs
   ``aria2c -x8 -s8``. Target: curl / provision >= 3.
3. **resume**: provision on the throttled location is killed with SIGKILL once half the
   file is written (``--kill-on written``: the partial file's pages in the page cache, via
   ``fincore``; or ``--kill-on state``: the ``done`` ranges of its resume state
   ``<blob>.part-*.json``), then run again; the server's access log gives the body bytes
   sent in each run. Target: bytes sent after the kill <= 55% of the file (every trial).

The server is nginx (a private instance, foreground child process, config written into
the work folder, ``sendfile on``, ``limit_rate`` per connection on ``/slow/``); if nginx is
not installed, ``tests/httpserver.py``'s ``TestServer`` stands in and the report says so.
The script starts and stops everything it runs. Generated data is deleted at the end
unless ``--keep`` is given. Example::

    python benchmarks/transfer.py                      # defaults: 2 GiB fast, 512 MiB at 20 MiB/s/conn
    python benchmarks/transfer.py --size-mib 256 --slow-size-mib 64 --repeats 1   # smoke run
    python benchmarks/transfer.py --only fast --alg sha256   # the manifest pins sha256, not md5
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import glob
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20
GEN_CHUNK = 16 * MIB
FAST_NAME = "xfer-fast"
SLOW_NAME = "xfer-slow"
MARKER = ".transfer-bench"
TARGET_FAST = 1.10  # provision_time / curl_time at most
#: provision_time / max(curl_time, <alg>sum of the page-cache-hot file) at most (issue 17): what a
#: fetch that hashes while it receives can reach when one of the two is the limit.
TARGET_LIMIT = 1.25
TARGET_SLOW = 3.0  # curl_time / provision_time at least
TARGET_RESUME = 0.55  # bytes sent after the kill / file size at most
ALGS = ("md5", "sha256")  # --alg: the checksum the generated manifest declares
ARIA2_ALG = {"md5": "md5", "sha256": "sha-256"}  # aria2c's --checksum=TYPE names


def log(msg: str) -> None:
    """Progress on stderr (stdout carries the Markdown report)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class DataFile:
    """A generated file: path on disk, size in bytes, md5 and sha256 hex."""

    path: Path
    size: int
    md5: str
    sha256: str

    def digest(self, alg: str) -> str:
        """The hex digest for ``alg`` (one of :data:`ALGS`)."""
        return str(getattr(self, alg))


def make_data(path: Path, size: int) -> DataFile:
    """Random bytes of ``size`` at ``path`` (reused when a previous run left the same size)."""
    sidecar = path.with_name(path.name + ".sums.json")
    if path.is_file() and path.stat().st_size == size and sidecar.is_file():
        with contextlib.suppress(OSError, ValueError, KeyError):
            sums = json.loads(sidecar.read_text(encoding="utf-8"))
            return DataFile(path, size, sums["md5"], sums["sha256"])
    log(f"generating {size / MIB:.0f} MiB of random bytes at {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    hashers = {alg: hashlib.new(alg, usedforsecurity=False) for alg in ALGS}
    with open(path, "wb") as fh:
        left = size
        while left:
            chunk = os.urandom(min(GEN_CHUNK, left))
            for h in hashers.values():
                h.update(chunk)
            fh.write(chunk)
            left -= len(chunk)
    sums = {alg: h.hexdigest() for alg, h in hashers.items()}
    sidecar.write_text(json.dumps(sums) + "\n", encoding="utf-8")
    return DataFile(path, size, sums["md5"], sums["sha256"])


def compile_bytecode() -> None:
    """Write provision's bytecode (``__pycache__``, git-ignored), as ``pip install`` does: the CLI
    runs below then start like an installed package, also where ``PYTHONDONTWRITEBYTECODE`` is set
    (it is on this VM, so each run would otherwise compile every module it imports again)."""
    import compileall

    compileall.compile_dir(str(ROOT / "provision"), quiet=1)


def read_through(path: Path) -> None:
    """Read a file once so the server serves it from the page cache in every run."""
    with open(path, "rb") as fh:
        while fh.read(GEN_CHUNK):
            pass


def write_manifest(folder: Path, fast: DataFile, fast_url: str, slow: DataFile, slow_url: str, alg: str) -> None:
    """One manifest with two datasets, each one file with URL, size and an ``alg`` checksum."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = ["schema = 1\n"]
    for name, data, url in ((FAST_NAME, fast, fast_url), (SLOW_NAME, slow, slow_url)):
        parts.append(
            f'\n[[dataset]]\nname = "{name}"\ndescription = "benchmarks/transfer.py data"\n'
            f'[[dataset.files]]\nname = "{data.path.name}"\nurls = ["{url}"]\n'
            f'size = {data.size}\nchecksum = "{alg}:{data.digest(alg)}"\n'
        )
    (folder / "transfer.toml").write_text("".join(parts), encoding="utf-8")


# ---------------------------------------------------------------------------------------
# Servers


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def established(port: int) -> int:
    """Established TCP connections whose local port is ``port`` (server side)."""
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True, check=False
    ).stdout
    return sum(1 for line in out.splitlines() if line.strip())


class Server:
    """What the benchmark needs from a server: URLs, body bytes sent per request, stop."""

    kind = ""
    port = 0

    def url(self, location: str, name: str) -> str:
        """``http://127.0.0.1:<port>/<location>/<name>``."""
        return f"http://127.0.0.1:{self.port}/{location}/{name}"

    def requests(self) -> list[tuple[str, int]]:
        """``(uri, body bytes sent)`` for every request finished so far, in order."""
        raise NotImplementedError

    def quiesce(self, timeout: float = 20.0) -> None:
        """Wait until no client is connected (so every request has been accounted for)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and established(self.port):
            time.sleep(0.05)
        time.sleep(0.3)

    def stop(self) -> None:
        """Stop serving; leaves no process behind."""
        raise NotImplementedError


class Nginx(Server):
    """A private nginx: foreground master started here, config and logs in ``work``."""

    kind = "nginx"

    def __init__(self, work: Path, data_dir: Path, rate: int) -> None:
        self.work = work
        self.port = free_port()
        self.log = work / "access.log"
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (work / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        self.log.write_text("", encoding="utf-8")
        tmp = work / "tmp"
        conf = f"""
daemon off;
master_process on;
worker_processes auto;
user root;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    default_type application/octet-stream;
    log_format bench '$request_uri $status $body_bytes_sent $bytes_sent "$http_range" $msec';
    access_log {self.log} bench;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{self.port};
        server_name localhost;
        location /fast/ {{ alias {data_dir}/; }}
        location /slow/ {{ alias {data_dir}/; limit_rate {rate}; }}
    }}
}}
"""
        self.conf = work / "nginx.conf"
        self.conf.write_text(conf, encoding="utf-8")
        cmd = ["nginx", "-p", str(work), "-e", str(work / "error.log"), "-c", str(self.conf)]
        test = subprocess.run([*cmd, "-t"], capture_output=True, text=True, check=False)
        if test.returncode != 0:
            raise RuntimeError(f"nginx -t failed: {test.stderr.strip()}")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True)
        end = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                break
            if self.proc.poll() is not None or time.monotonic() > end:
                self.stop()
                raise RuntimeError(f"nginx did not start: {(work / 'error.log').read_text(errors='replace')}")
            time.sleep(0.05)

    def requests(self) -> list[tuple[str, int]]:
        out = []
        for line in self.log.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                out.append((parts[0], int(parts[2])))
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: the master stops its workers
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class _Counting:
    """A ``wfile`` stand-in that adds every byte written to ``entry[1]``."""

    def __init__(self, raw: Any, entry: list[Any]) -> None:
        self.raw = raw
        self.entry = entry

    def write(self, data: bytes) -> Any:
        n = self.raw.write(data)
        self.entry[1] += len(data)
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class PyServer(Server):
    """Fallback: ``tests/httpserver.py``'s TestServer (bytes counted include headers)."""

    def __init__(self, files: list[DataFile], rate: int, why: str) -> None:
        self.kind = f"tests/httpserver.py TestServer ({why}; bytes counted include headers)"
        sys.path.insert(0, str(ROOT / "tests"))
        from httpserver import TestServer  # type: ignore[import-not-found]

        self.server = TestServer()
        self.port = self.server.port
        self.entries: list[list[Any]] = []
        lock = threading.Lock()

        def hook(handler: Any) -> None:
            entry: list[Any] = [handler.path, 0]
            with lock:
                self.entries.append(entry)
            if isinstance(handler.wfile, _Counting):  # a kept-alive connection's next request
                handler.wfile.entry = entry
            else:
                handler.wfile = _Counting(handler.wfile, entry)

        for f in files:
            body = f.path.read_bytes()
            self.server.add(f"/fast/{f.path.name}", body, hook=hook)
            self.server.add(f"/slow/{f.path.name}", body, hook=hook, rate=float(rate))

    def requests(self) -> list[tuple[str, int]]:
        return [(str(e[0]), int(e[1])) for e in self.entries]

    def stop(self) -> None:
        self.server.close()


# ---------------------------------------------------------------------------------------
# Runs


class RunFailed(Exception):
    """A tool did not deliver the file intact."""


@dataclass
class Row:
    """One tool in one scenario: every run's wall seconds."""

    scenario: str
    tool: str
    size: int
    times: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def mibps(self) -> float:
        return self.size / MIB / self.median


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RunFailed(f"{' '.join(cmd[:3])}... exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-500:]}")
    return elapsed, proc


def _check(path: Path, data: DataFile) -> None:
    size = path.stat().st_size
    if size != data.size:
        raise RunFailed(f"{path}: {size} bytes, expected {data.size}")


def sumtool(path: Path, alg: str) -> str:
    """``md5sum``'s or ``sha256sum``'s digest of ``path``."""
    out = subprocess.run([f"{alg}sum", str(path)], capture_output=True, text=True, check=True).stdout
    return out.split()[0]


def fsync_file(path: Path) -> None:
    """Flush ``path`` to disk (what provision does before it commits a blob)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Bench:
    """Shared state: work folder, server, data, environment for the provision CLI."""

    def __init__(self, args: argparse.Namespace, work: Path, server: Server) -> None:
        self.args = args
        self.work = work
        self.server = server
        self.out = work / "out"
        self.provision = str(Path(sys.executable).with_name("provision"))
        if not Path(self.provision).exists():
            self.provision = shutil.which("provision") or "provision"

    def fresh_out(self) -> Path:
        shutil.rmtree(self.out, ignore_errors=True)
        self.out.mkdir(parents=True)
        return self.out

    def settle(self) -> None:
        """Untimed: drop the last run's output and write back dirty pages before the next run."""
        shutil.rmtree(self.out, ignore_errors=True)
        os.sync()

    def provision_env(self, cache: Path, jobs: int | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISION_")}
        env["PROVISION_CACHE"] = str(cache)
        env["PROVISION_MANIFESTS"] = str(self.work / "manifests")
        if jobs is not None:
            env["PROVISION_JOBS"] = str(jobs)
        return env

    # -- tools ---------------------------------------------------------------------------
    def curl(self, url: str, data: DataFile, *, check: bool = False, sync: bool = False) -> float:
        """``curl -o``; with ``check``, then ``<alg>sum`` of the file (``--alg``)."""
        dest = self.fresh_out() / data.path.name
        alg = self.args.alg
        t0 = time.perf_counter()
        _timed(["curl", "-sS", "-f", "-o", str(dest), url])
        if check and sumtool(dest, alg) != data.digest(alg):
            raise RunFailed(f"curl: {alg} mismatch")
        if sync:
            fsync_file(dest)
        elapsed = time.perf_counter() - t0
        _check(dest, data)
        return elapsed

    def sum_hot(self, data: DataFile) -> float:
        """``<alg>sum`` of the source file, read through the page cache first (untimed): the hashing
        alone, the other half of what a verified fetch cannot beat."""
        read_through(data.path)
        t0 = time.perf_counter()
        got = sumtool(data.path, self.args.alg)
        elapsed = time.perf_counter() - t0
        if got != data.digest(self.args.alg):
            raise RunFailed(f"{self.args.alg}sum of the source disagrees with the generated digest")
        return elapsed

    def aria2c(self, url: str, data: DataFile, *, check: bool = False) -> float:
        out = self.fresh_out()
        cmd = [
            "aria2c",
            "-x8",
            "-s8",
            "-q",
            "--file-allocation=falloc",
            "--allow-overwrite=true",
            "--auto-file-renaming=false",
            "--disable-ipv6=true",
            "-d",
            str(out),
            "-o",
            data.path.name,
        ]
        if check:
            cmd.append(f"--checksum={ARIA2_ALG[self.args.alg]}={data.digest(self.args.alg)}")
        elapsed, _ = _timed([*cmd, url])
        _check(out / data.path.name, data)
        return elapsed

    def provision_fetch(self, name: str, data: DataFile, jobs: int | None) -> float:
        cache = self.fresh_out() / "cache"
        cmd = [self.provision, "fetch", name, "-q", "--json"]
        elapsed, proc = _timed(cmd, env=self.provision_env(cache, jobs))
        doc = json.loads(proc.stdout)
        states = {f.get("state") for f in _files(doc)}
        if states != {"fetched"}:
            raise RunFailed(f"provision: unexpected result {proc.stdout[:300]}")
        _check(cache / "artifacts" / name / data.path.name, data)
        return elapsed

    # -- scenarios -------------------------------------------------------------------------
    def rounds(self, rows: list[tuple[Row, Callable[[], float]]]) -> None:
        """Run every tool once per round (interleaved, so drift hits all alike)."""
        for r in range(self.args.repeats):
            for row, fn in rows:
                self.settle()
                t = fn()
                row.times.append(t)
                log(f"  round {r + 1}: {row.tool}: {t:.2f} s")
        self.settle()

    def fast(self, data: DataFile) -> list[Row]:
        url = self.server.url("fast", data.path.name)

        def mk(tool: str, note: str = "") -> Row:
            return Row("fast", tool, data.size, note=note)

        alg = self.args.alg
        rows: list[tuple[Row, Callable[[], float]]] = [
            (
                mk(f"provision fetch (default jobs, {alg} manifest)", f"{alg} + xxh3_128 + verify + fsync"),
                lambda: self.provision_fetch(FAST_NAME, data, None),
            ),
            (mk("curl -o"), lambda: self.curl(url, data)),
            (mk(f"curl -o + {alg}sum"), lambda: self.curl(url, data, check=True)),
            (mk(f"curl -o + {alg}sum + fsync"), lambda: self.curl(url, data, check=True, sync=True)),
            (mk(f"{alg}sum of the hot source file"), lambda: self.sum_hot(data)),
        ]
        if shutil.which("aria2c"):
            rows.append((mk("aria2c -x8 -s8"), lambda: self.aria2c(url, data)))
            rows.append((mk(f"aria2c -x8 -s8 --checksum={ARIA2_ALG[alg]}"), lambda: self.aria2c(url, data, check=True)))
        log(f"fast: {data.size / MIB:.0f} MiB unthrottled, {alg} manifest, {self.args.repeats} round(s)")
        self.rounds(rows)
        return [r for r, _ in rows]

    def slow(self, data: DataFile) -> list[Row]:
        url = self.server.url("slow", data.path.name)
        jobs = self.args.jobs
        rows: list[tuple[Row, Callable[[], float]]] = [
            (
                Row("throttled", f"provision fetch (PROVISION_JOBS={jobs})", data.size),
                lambda: self.provision_fetch(SLOW_NAME, data, jobs),
            ),
            (Row("throttled", "curl -o", data.size), lambda: self.curl(url, data)),
        ]
        if shutil.which("aria2c"):
            rows.append((Row("throttled", "aria2c -x8 -s8", data.size), lambda: self.aria2c(url, data)))
        log(f"throttled: {data.size / MIB:.0f} MiB at {self.args.rate_mib} MiB/s per connection")
        self.rounds(rows)
        return [r for r, _ in rows]

    def resume(self, data: DataFile) -> list[dict[str, Any]]:
        """``--repeats`` kill-and-rerun trials on the throttled location."""
        return [self.resume_once(data, i + 1) for i in range(self.args.repeats)]

    def resume_once(self, data: DataFile, trial: int) -> dict[str, Any]:
        """Kill provision at ``--kill-at`` of the file, rerun, count the body bytes sent.

        ``--kill-on written``: the share of the partial file resident in the page cache
        (``fincore``: what provision has written, whether or not its state says so yet);
        ``--kill-on state``: the ``done`` ranges of the resume state file.
        """
        jobs = self.args.jobs
        cache = self.fresh_out() / "cache"
        env = self.provision_env(cache, jobs)
        uri = f"/slow/{data.path.name}"
        alg = self.args.alg
        hexd = data.digest(alg)
        stem = glob.escape(str(cache / "blobs" / alg / hexd[:2] / hexd))
        goal = self.args.kill_at * data.size
        self.server.quiesce()
        before = len(self.server.requests())
        log(
            f"resume {trial}: {data.size / MIB:.0f} MiB throttled, PROVISION_JOBS={jobs}, "
            f"kill -9 at {self.args.kill_at:.0%} ({self.args.kill_on})"
        )
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [self.provision, "fetch", SLOW_NAME, "-q", "--json"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        state_seen = written_seen = 0
        try:
            while (written_seen if self.args.kill_on == "written" else state_seen) < goal:
                if proc.poll() is not None:
                    raise RunFailed(f"provision ended (exit {proc.returncode}) before {self.args.kill_at:.0%}")
                state_seen = max(state_seen, _state_done(stem))
                if self.args.kill_on == "written":
                    written_seen = max(written_seen, _resident(stem))
                time.sleep(0.005)
            if self.args.kill_delay:
                time.sleep(self.args.kill_delay)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        killed_after = time.perf_counter() - t0
        written_end = _resident(stem)
        state_disk = _state_done(stem)
        self.server.quiesce()
        mid = len(self.server.requests())
        log(
            f"  killed after {killed_after:.2f} s: written {written_end / data.size:.1%}, "
            f"state on disk {state_disk / data.size:.1%}"
        )
        t1 = time.perf_counter()
        _, out = _timed([self.provision, "fetch", SLOW_NAME, "-q", "--json"], env=env)
        rerun = time.perf_counter() - t1
        if {f.get("state") for f in _files(json.loads(out.stdout))} != {"fetched"}:
            raise RunFailed(f"provision rerun: unexpected result {out.stdout[:300]}")
        _check(cache / "artifacts" / SLOW_NAME / data.path.name, data)
        self.server.quiesce()
        reqs = self.server.requests()
        sent1 = sum(n for u, n in reqs[before:mid] if u == uri)
        sent2 = sum(n for u, n in reqs[mid:] if u == uri)
        log(f"  rerun {rerun:.1f} s; sent {sent1 / MIB:.1f} MiB before and {sent2 / MIB:.1f} MiB after the kill")
        self.settle()
        return {
            "size": data.size,
            "jobs": jobs,
            "killed_after_s": killed_after,
            "written_at_kill": written_end,
            "state_on_disk": state_disk,
            "sent_before": sent1,
            "sent_after": sent2,
            "requests_before": sum(1 for u, _ in reqs[before:mid] if u == uri),
            "requests_after": sum(1 for u, _ in reqs[mid:] if u == uri),
            "rerun_s": rerun,
        }


def _state_done(stem: str) -> int:
    """Bytes the resume state file(s) ``<stem>.part-*.json`` say are done (0 when none)."""
    best = 0
    for path in glob.glob(stem + ".part-*.json"):
        with contextlib.suppress(OSError, ValueError):
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
            best = max(best, sum(b - a for a, b in doc.get("done", [])))
    return best


def _resident(stem: str) -> int:
    """Bytes of the partial data file ``<stem>.part-*`` in the page cache (``fincore``)."""
    best = 0
    for path in glob.glob(stem + ".part-*"):
        if path.endswith(".json") or ".json.tmp" in path:
            continue
        out = subprocess.run(
            ["fincore", "--bytes", "--noheadings", "--output", "RES", path], capture_output=True, text=True, check=False
        ).stdout.strip()
        if out.isdigit():
            best = max(best, int(out))
    return best


def _files(doc: Any) -> list[dict[str, Any]]:
    """The per-file entries of ``provision fetch --json`` output."""
    if isinstance(doc, dict):
        for key in ("files", "results"):
            if isinstance(doc.get(key), list):
                return list(doc[key])
    return []


# ---------------------------------------------------------------------------------------
# Machine and report


def _first_line(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return "not installed"
    text = (proc.stdout or proc.stderr).strip()
    return text.splitlines()[0] if text else "?"


def machine(work: Path) -> str:
    """One line: CPU, cores, RAM, filesystem of ``work``, Python, tool versions, date, load."""
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
    df = subprocess.run(["df", "-T", str(work)], capture_output=True, text=True, check=False).stdout.splitlines()
    fs = f"{df[-1].split()[1]} ({df[-1].split()[0]})" if len(df) > 1 else "?"
    curl = " ".join(_first_line(["curl", "--version"]).split()[:2])
    aria = _first_line(["aria2c", "--version"]) if shutil.which("aria2c") else "aria2c not installed"
    nginx = _first_line(["nginx", "-v"]) if shutil.which("nginx") else "nginx not installed"
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{cpu}, {os.cpu_count()} cores, {ram} RAM, work dir on {fs}, Linux {platform.release()}, "
        f"Python {platform.python_version()}, {curl}, {aria.replace(' version', '')}, "
        f"{nginx.replace('nginx version: ', '')}, {date}, load avg at start {load}"
    )


def ratio_line(name: str, value: float, limit: str, ok: bool) -> str:
    return f"| {name} | {value:.2f} | {limit} | {'PASS' if ok else 'FAIL'} |"


def report(
    rows: list[Row],
    resume: list[dict[str, Any]] | None,
    alg: str,
    sum_mibps: float,
    hash_mibps: float,
    server: str,
    line: str,
) -> str:
    out = [
        "| scenario | tool | runs (s) | median s | MiB/s | provision ÷ tool (time) |",
        "|---|---|---|---:|---:|---:|",
    ]
    prov: dict[str, float] = {}
    for r in rows:
        if r.tool.startswith("provision"):
            prov[r.scenario] = r.median
    for r in rows:
        ratio = prov[r.scenario] / r.median if r.scenario in prov else float("nan")
        runs = ", ".join(f"{t:.2f}" for t in r.times)
        tool = f"{r.tool} ({r.note})" if r.note else r.tool
        out.append(f"| {r.scenario} | {tool} | {runs} | {r.median:.2f} | {r.mibps:.0f} | {ratio:.2f} |")
    out += ["", "| target | measured | limit | result |", "|---|---:|---:|---|"]
    by = {(r.scenario, r.tool): r for r in rows}
    fast_p = next((r for r in rows if r.scenario == "fast" and r.tool.startswith("provision")), None)
    if fast_p:
        v = fast_p.median / by[("fast", "curl -o")].median
        out.append(ratio_line("fast: provision / curl (time)", v, "<= 1.10", v <= TARGET_FAST))
        v = fast_p.median / by[("fast", f"curl -o + {alg}sum")].median
        out.append(ratio_line(f"fast: provision / (curl + {alg}sum) (time; info)", v, "<= 1.10", v <= TARGET_FAST))
        limit = max(by[("fast", "curl -o")].median, by[("fast", f"{alg}sum of the hot source file")].median)
        v = fast_p.median / limit
        out.append(
            ratio_line(f"fast: provision / max(curl, {alg}sum of the hot file) (time)", v, "<= 1.25", v <= TARGET_LIMIT)
        )
    slow_p = next((r for r in rows if r.scenario == "throttled" and r.tool.startswith("provision")), None)
    if slow_p:
        v = by[("throttled", "curl -o")].median / slow_p.median
        out.append(ratio_line("throttled: curl / provision (speed-up)", v, ">= 3.00", v >= TARGET_SLOW))
    if resume:
        worst = max(r["sent_after"] / r["size"] for r in resume)
        out.append(
            ratio_line(
                f"resume: bytes sent after the kill / file size (worst of {len(resume)})",
                worst,
                "<= 0.55",
                worst <= TARGET_RESUME,
            )
        )
        out += [
            "",
            "| resume trial | killed after s | written at kill | state on disk | sent before kill | sent after kill "
            "| after / size | total / size | rerun s |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for i, t in enumerate(resume, 1):
            size = t["size"]
            out.append(
                f"| {i} | {t['killed_after_s']:.2f} | {t['written_at_kill'] / size:.1%} "
                f"| {t['state_on_disk'] / size:.1%} "
                f"| {t['sent_before'] / MIB:.1f} MiB ({t['requests_before']} req) "
                f"| {t['sent_after'] / MIB:.1f} MiB ({t['requests_after']} req) | {t['sent_after'] / size:.1%} "
                f"| {(t['sent_before'] + t['sent_after']) / size:.1%} | {t['rerun_s']:.2f} |"
            )
    out += [
        "",
        f"Manifest checksum: {alg} (`--alg {alg}`).",
        f"Hashing ceilings on the fast file (page cache hot): `{alg}sum` {sum_mibps:.0f} MiB/s; "
        f"provision's own {alg} + xxh3_128 pass (`provision.store.hashing.hash_file`) {hash_mibps:.0f} MiB/s.",
        f"Server: {server}.",
        "",
        f"Machine: {line}",
    ]
    return "\n".join(out)


def measure_hashing(data: DataFile, alg: str) -> tuple[float, float]:
    """(``<alg>sum`` MiB/s, provision hash_file alg+xxh3_128 MiB/s) on a page-cache-hot file."""
    read_through(data.path)
    t0 = time.perf_counter()
    if sumtool(data.path, alg) != data.digest(alg):
        raise RunFailed(f"{alg}sum of the source disagrees with the generated {alg}")
    sum_rate = data.size / MIB / (time.perf_counter() - t0)
    sys.path.insert(0, str(ROOT))
    from provision.store.hashing import hash_file

    t0 = time.perf_counter()
    hash_file(data.path, [alg, "xxh3_128"])
    return sum_rate, data.size / MIB / (time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------
# Main


@contextlib.contextmanager
def serving(args: argparse.Namespace, work: Path, files: list[DataFile]) -> Iterator[Server]:
    """nginx when installed (unless --python-server), else the test server; always stopped."""
    rate = int(args.rate_mib * MIB)
    server: Server
    if shutil.which("nginx") and not args.python_server:
        server = Nginx(work / "nginx", files[0].path.parent, rate)
    else:
        why = "--python-server" if args.python_server else "nginx not found"
        log(f"{why}: falling back to tests/httpserver.py TestServer")
        server = PyServer(files, rate, why)
    log(f"server: {server.kind} on 127.0.0.1:{server.port}")
    try:
        yield server
    finally:
        server.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size-mib", type=int, default=2048, help="fast-scenario file size (default %(default)s)")
    p.add_argument("--slow-size-mib", type=int, default=512, help="throttled/resume file size (default %(default)s)")
    p.add_argument("--rate-mib", type=float, default=20.0, help="per-connection limit, MiB/s (default %(default)s)")
    p.add_argument("--jobs", type=int, default=8, help="PROVISION_JOBS for throttled and resume (default %(default)s)")
    p.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="rounds per scenario (median counts) and resume trials (default %(default)s)",
    )
    p.add_argument("--kill-at", type=float, default=0.5, help="resume: kill when this share is done (default 0.5)")
    p.add_argument(
        "--kill-on",
        choices=("written", "state"),
        default="written" if shutil.which("fincore") else "state",
        help="resume: progress measured by bytes written (fincore) or by the state file (default %(default)s)",
    )
    p.add_argument("--kill-delay", type=float, default=0.0, help="resume: extra seconds before the kill (default 0)")
    p.add_argument("--only", choices=("fast", "throttled", "resume"), action="append", help="run only these")
    p.add_argument(
        "--alg",
        choices=ALGS,
        default="md5",
        help="checksum the generated manifest declares; also the curl + <alg>sum and aria2c --checksum "
        "comparisons (default %(default)s)",
    )
    p.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "_work" / "transfer", help="scratch folder")
    p.add_argument("--python-server", action="store_true", help="use tests/httpserver.py even if nginx exists")
    p.add_argument("--keep", action="store_true", help="keep the generated data for the next run")
    p.add_argument("--out", type=Path, help="also write the Markdown report here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    only = set(args.only or ("fast", "throttled", "resume"))
    for tool in ("curl", f"{args.alg}sum", "ss"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is required")
    work: Path = args.work.resolve()
    if work.exists() and any(work.iterdir()) and not (work / MARKER).exists():
        raise SystemExit(f"{work} is not empty and was not made by this script; pick another --work")
    work.mkdir(parents=True, exist_ok=True)
    (work / MARKER).write_text("made by benchmarks/transfer.py; safe to delete\n", encoding="utf-8")
    line = machine(work)
    compile_bytecode()
    data_dir = work / "data"
    fast = make_data(data_dir / "fast.bin", args.size_mib * MIB)
    slow = make_data(data_dir / "slow.bin", args.slow_size_mib * MIB)
    rows: list[Row] = []
    resume = None
    try:
        sum_rate, hash_rate = measure_hashing(fast, args.alg)
        log(f"{args.alg}sum {sum_rate:.0f} MiB/s; provision {args.alg}+xxh3_128 {hash_rate:.0f} MiB/s")
        read_through(slow.path)
        with serving(args, work, [fast, slow]) as server:
            write_manifest(
                work / "manifests",
                fast,
                server.url("fast", fast.path.name),
                slow,
                server.url("slow", slow.path.name),
                args.alg,
            )
            bench = Bench(args, work, server)
            if "fast" in only:
                rows += bench.fast(fast)
            if "throttled" in only:
                rows += bench.slow(slow)
            if "resume" in only:
                resume = bench.resume(slow)
            kind = server.kind
    finally:
        shutil.rmtree(work / "out", ignore_errors=True)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    load_end = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
    text = report(rows, resume, args.alg, sum_rate, hash_rate, kind, f"{line}, load avg at end {load_end}")
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
