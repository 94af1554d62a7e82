"""``provision demo``: the whole pipeline, offline, on a generated ImageNet-style benchmark.

For a newcomer with no network and no ImageNet licence, in well under a minute: the demo
generates a small stand-in for the ResNet-50 benchmark in a work folder
(:mod:`provision.walkthrough.data`), serves it from a throttled HTTP server on 127.0.0.1 that cuts
the first download of the tar part-way (:mod:`provision.walkthrough.server`), writes a manifest for
it, and drives the library through it: fetch (which resumes), verify (and the repair of a
flipped bit), preprocess, validate, run (every stage cached) and audit. Each step is
announced through ``say`` with what provision does and why it matters.

Nothing here reads the user's environment, cache or manifests: the demo's
:class:`~provision.config.Settings` is built from defaults and points into the work folder.
Validation needs onnxruntime (``pip install 'provision[onnx]'``); the ONNX model itself is
written without the ``onnx`` package.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import os
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from provision.auditing.build import build_audit
from provision.auditing.document import write_audit
from provision.config import Settings
from provision.errors import ManifestError, MissingDependencyError, UsageError
from provision.fetching.report import FetchReport
from provision.fetching.run import fetch
from provision.fsutil import human_bytes
from provision.manifest.model import Catalog
from provision.manifest.parse import lint, load_catalog
from provision.pipeline import run as run_pipeline
from provision.preprocessing.plan import make_plan
from provision.preprocessing.runner import run as run_recipe
from provision.sources.http import new_session
from provision.store.verify import verify
from provision.validation.results import summary_rows
from provision.validation.validate import validate
from provision.walkthrough.data import (
    BENCHMARK,
    DATASET,
    LABELS,
    MODEL,
    MODEL_FILE,
    TAR,
    VAL_MAP,
    Generated,
    generate,
    manifest_text,
)
from provision.walkthrough.server import RATE, DemoServer

__all__ = ["DemoReport", "DemoStep", "demo_settings", "run_demo"]

#: The first GET of the tar is cut after this fraction of its body.
DROP_AT = 0.4
_STEPS = 9


@dataclass
class DemoStep:
    """One step of the demo: ``state`` done, skipped or failed; a one-line ``detail``."""

    name: str
    state: str = "done"
    seconds: float = 0.0
    detail: str = ""


@dataclass
class DemoReport:
    """What the demo did. ``passed``: validation reached its target; ``ok``: that and no step failed."""

    workdir: Path
    kept: bool
    steps: list[DemoStep] = field(default_factory=list)
    seconds: float = 0.0
    value: float | None = None
    passed: bool = False
    resumed_at: int | None = None  # the byte the tar's download resumed from
    server_log: list[str] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Validation passed and no step failed."""
        return self.passed and all(s.state != "failed" for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "ok": self.ok,
            "passed": self.passed,
            "value": self.value,
            "seconds": self.seconds,
            "resumed_at": self.resumed_at,
            "workdir": str(self.workdir),
            "kept": self.kept,
            "steps": [vars(s) for s in self.steps],
            "server_log": list(self.server_log),
            "paths": {k: str(v) for k, v in self.paths.items()},
        }


class _Notes:
    """A :class:`~provision.progress.Progress` that keeps the library's one-line notes."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def start(self, key: str, label: str, total: int | None, done: int = 0) -> None:
        """Ignored."""

    def advance(self, key: str, nbytes: int) -> None:
        """Ignored."""

    def finish(self, key: str, ok: bool) -> None:
        """Ignored."""

    def note(self, text: str) -> None:
        """Kept, in order."""
        with self._lock:
            self.lines.append(text)

    def retry(self, key: str, url: str, text: str) -> None:
        """Kept like a note: the demo narrates its retries."""
        self.note(text)

    def take(self) -> list[str]:
        """The notes since the last call."""
        with self._lock:
            out, self.lines = self.lines, []
        return out


def demo_settings(workdir: Path) -> Settings:
    """Defaults (no environment), the cache and manifests inside ``workdir``, quick retries."""
    cache = workdir / "cache"
    return Settings().with_(
        cache_dir=cache,
        manifest_dirs=(workdir / "manifests",),
        lock_file=cache / "provision.lock",
        jobs=2,
        retries=3,
        backoff=0.1,
        backoff_max=0.5,
        connect_timeout=5.0,
        read_timeout=20.0,
    )


def _flip_bit(path: Path) -> int:
    """Flip one bit in the middle of the cached file ``path`` (read-only blob); returns its offset."""
    target = path.resolve()
    before = target.stat()
    os.chmod(target, before.st_mode | stat.S_IWUSR)
    try:
        with open(target, "r+b") as fh:
            offset = before.st_size // 2
            fh.seek(offset)
            byte = fh.read(1)[0]
            fh.seek(offset)
            fh.write(bytes([byte ^ 1]))
    finally:
        os.chmod(target, stat.S_IMODE(before.st_mode))
    if target.stat().st_mtime_ns == before.st_mtime_ns:  # a filesystem with coarse timestamps
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    return offset


_NEXT = (
    ("provision list", "every benchmark, model and dataset the manifests define"),
    ("provision show resnet50", "what ResNet-50 needs: files, sources, sizes, licence gates, targets"),
    ("provision run resnet50 --from /data/imagenet", "this pipeline on the real files (bring the licensed tar)"),
)


class _Demo:
    """The steps of :func:`run_demo`, each announced through ``say`` and timed."""

    def __init__(self, root: Path, say: Callable[[str], None], images: int, report: DemoReport) -> None:
        self.root = root
        self.say = say
        self.images = images
        self.report = report
        self.settings = demo_settings(root)
        self.notes = _Notes()
        self.number = 0


    def catalog(self) -> Catalog:
        """The demo's manifests, read again at each step as each ``provision`` command would."""
        return load_catalog(self.settings.all_manifest_dirs)
    def out(self, text: str) -> None:
        self.say(f"  {text}")

    def rel(self, path: Path | str) -> str:
        p = Path(path)
        return str(p.relative_to(self.root)) if p.is_relative_to(self.root) else str(p)

    @contextlib.contextmanager
    def step(self, name: str, title: str, *why: str) -> Iterator[DemoStep]:
        """Announce, time and record one step (failed when it raises)."""
        self.number += 1
        self.say("")
        self.say(f"[{self.number}/{_STEPS}] {name}: {title}")
        for line in why:
            self.say(f"    {line}")
        step = DemoStep(name)
        self.report.steps.append(step)
        clock = time.perf_counter()
        try:
            yield step
        except BaseException:
            step.state = "failed"
            raise
        finally:
            step.seconds = time.perf_counter() - clock
        self.out(f"({step.seconds:.2f} s)")

    def library_notes(self) -> None:
        for line in self.notes.take():
            self.out(f"provision noted: {line}")

    def run(self, started: float) -> None:
        gen = self.generate()
        with self.serve(gen) as server:
            self.manifest(gen, server)
            with new_session() as session:
                try:
                    self.fetch(server, session)
                    self.verify(server, session)
                finally:
                    self.report.server_log = [r.describe() for r in server.log]
        self.preprocess()
        self.validate()
        self.rerun()
        self.audit()
        self.summary(time.perf_counter() - started)

    def generate(self) -> Generated:
        with self.step(
            "generate",
            "a stand-in for ImageNet and ResNet-50",
            "ImageNet needs a registration and the real model is 100 MB, so the demo makes its own: JPEGs named",
            "like ImageNet's in an uncompressed tar, their val_map.txt, and a tiny ONNX classifier shaped like",
            "ResNet-50 (input_tensor:0, a background class at index 0, ArgMax:0).",
        ) as step:
            gen = generate(self.images)
            upstream = self.root / "upstream"
            upstream.mkdir()
            for name, body in gen.files.items():
                (upstream / name).write_bytes(body)
                self.out(f"{name:<24} {human_bytes(len(body)):>10}  md5:{hashlib.md5(body).hexdigest()}")
            right = 100 * (self.images - len(gen.wrong)) / self.images
            self.out(f"{self.images} images of 160-300 px; {len(gen.wrong)} of their labels are wrong on purpose,")
            self.out(f"so top-1 will be {right:.3f}% (near ResNet-50's 76.46%) rather than a suspicious 100%")
            step.detail = f"{self.images} images, tar {human_bytes(len(gen.files[TAR]))}, {len(gen.wrong)} bad labels"
            self.report.paths["upstream"] = upstream
        return gen

    def serve(self, gen: Generated) -> DemoServer:
        with self.step(
            "serve",
            "a slow, flaky download site on 127.0.0.1",
            "An HTTP server in this process plays the upstream host: Range requests, ETag/Last-Modified, HEAD,",
            f"{human_bytes(RATE)}/s per connection, and it cuts the first download of the tar at {DROP_AT:.0%}:",
            "the dropped connection that every long download meets sooner or later.",
        ) as step:
            server = DemoServer(gen.files, rate=RATE, faults={TAR: DROP_AT})
            self.out(f"serving {', '.join(gen.files)} at http://127.0.0.1:{server.port}/")
            step.detail = f"port {server.port}, {human_bytes(RATE)}/s, tar cut at {DROP_AT:.0%}"
        return server

    def manifest(self, gen: Generated, server: DemoServer) -> None:
        with self.step(
            "manifest",
            "what provision knows about the benchmark",
            "provision learns about data only from manifests: TOML with URLs, sizes and published checksums. This",
            "one mirrors manifests/resnet50.toml: a tar to extract, a val_map.txt, an ONNX model with its output",
            "layout ([model.runtime]), the imagenet-resnet50 recipe and the top-1 target 76.46 x 0.99.",
        ) as step:
            folder = self.root / "manifests"
            folder.mkdir()
            path = folder / "demo.toml"
            path.write_text(manifest_text(gen, server.url), encoding="utf-8")
            problems = lint([path])
            if problems:
                raise ManifestError(problems)
            self.out(f"{self.rel(path)}: benchmark {BENCHMARK} = {DATASET} + {LABELS}/{VAL_MAP} + {MODEL}")
            self.out("lint: no problems")
            self.out(f"cache: {self.rel(self.settings.cache_dir)}/ (your own cache and manifests are not touched)")
            self.report.paths.update(manifest=path, cache=self.settings.cache_dir)
            step.detail = f"{self.rel(path)}, lint clean"

    def _fetched(self, report: FetchReport, only_changed: bool = False) -> None:
        for f in report.files:
            if only_changed and f.state == "cached":
                continue
            where = f"from {f.source}" if f.state != "cached" else "already verified"
            extracted = ""
            if f.extracted:
                count = sum(1 for _ in Path(f.extracted).iterdir())
                extracted = f"; extracted {count} files to {Path(f.extracted).name}/"
            self.out(f"{f.state:<8} {f.artifact}/{f.name}  {human_bytes(f.bytes)}  {where}{extracted}")

    def fetch(self, server: DemoServer, session: requests.Session) -> None:
        with self.step(
            "fetch",
            "download, check, resume",
            "Each file streams into a temp name in the content-addressed cache, hashed as it arrives, and becomes",
            "visible only once its size and md5 match the manifest. A dropped connection resumes where it stopped",
            "(Range + If-Range), so a cut at 40% costs the missing 60%, not a restart.",
        ) as step:
            report = fetch(self.catalog(), [BENCHMARK], self.settings, session=session, progress=self.notes)
            self._fetched(report)
            self.library_notes()
            report.raise_for_errors()
            self.out("every file's md5 and size matched the manifest before it entered the cache")
            tar = server.requests_for(TAR)
            self.out("server saw:")
            for r in tar:
                self.out(f"  {r.describe()}")
            resumed = [r for r in tar if r.method == "GET" and r.status == 206 and r.start > 0]
            size = len(server.files[f"/{TAR}"])
            if resumed:
                self.report.resumed_at = resumed[0].start
                sent = sum(r.sent for r in tar)
                twice = "none twice" if sent == size else f"{sent - size:,} of them twice"
                self.out(
                    f"resumed at byte {resumed[0].start:,} with a Range request: {sent:,} bytes sent for the "
                    f"{size:,}-byte tar, {twice}"
                )
                step.detail = f"{len(report.files)} files, tar resumed at byte {resumed[0].start:,}"
            else:
                self.out("the tar's download was not resumed: the server's fault did not take effect")
                step.state, step.detail = "failed", "no resume seen"

    def verify(self, server: DemoServer, session: requests.Session) -> None:
        with self.step(
            "verify",
            "check the cache, catch a flipped bit, repair it",
            "verify's fast path compares each file's (size, mtime, inode) with its fetch record and reads nothing;",
            "--full re-hashes every byte with the published md5. The demo then flips one bit of the cached model:",
            "verify must name the file, and fetch must replace it with a verified copy.",
        ) as step:
            fast = verify(self.catalog(), [BENCHMARK], self.settings)
            fast.raise_for_errors()
            self.out(f"fast path: {len(fast.files)} entries ok, {human_bytes(fast.bytes_hashed)} read")
            model = self.settings.cache_dir / "artifacts" / MODEL / MODEL_FILE
            offset = _flip_bit(model)
            self.out(f"flipped one bit at byte {offset} of {self.rel(model)}")
            caught = verify(self.catalog(), [BENCHMARK], self.settings, full=True)
            for check in caught.failures:
                self.out(f"verify --full: {check.state}: {check.message()}")
            repaired = fetch(self.catalog(), [BENCHMARK], self.settings, session=session, progress=self.notes)
            self._fetched(repaired, only_changed=True)
            self.library_notes()
            repaired.raise_for_errors()
            for r in server.requests_for(MODEL_FILE)[1:]:
                self.out(f"server saw: {r.describe()}")
            after = verify(self.catalog(), [BENCHMARK], self.settings)
            after.raise_for_errors()
            self.out(f"verify: {len(after.files)} entries ok again")
            fixed = [f for f in repaired.files if f.state == "repaired"]
            if caught.ok or not fixed:
                step.state = "failed"
            step.detail = f"{len(caught.failures)} corrupt file caught, {len(fixed)} repaired"

    def preprocess(self) -> None:
        with self.step(
            "preprocess",
            "MLPerf's ResNet-50 preprocessing, cached by key",
            "pre_process_vgg as a deterministic recipe (short side to 256 with INTER_AREA, centre crop 224, minus",
            "the RGB means), one .npy per image on every core. Its folder is keyed by a hash of the inputs'",
            "digests, the parameters and the library versions: an unchanged rerun is skipped, a change gets a new one.",
        ) as step:
            plan = make_plan(self.catalog(), BENCHMARK, self.settings, progress=self.notes)
            pre = run_recipe(plan, self.settings, progress=self.notes)
            self.library_notes()
            self.out(f"{pre.items} images on {pre.jobs} processes -> {self.rel(pre.path)}/")
            self.out(f"key {pre.key[:16]} (recipe {pre.recipe} v{pre.version}); output tree digest {pre.digest}")
            self.out(f"libraries: {pre.signature}")
            self.report.paths["preprocessed"] = pre.path
            step.detail = f"{pre.items} items, key {pre.key[:16]}"

    def validate(self) -> None:
        with self.step(
            "validate",
            "run the model here, score it the MLPerf way",
            "onnxruntime runs the model on the preprocessed images; predictions (offset -1 for the background",
            "class) are scored against val_map.txt as accuracy-imagenet.py does, against reference x 0.99 and",
            "x 0.999; the first 8 predictions must also equal the manifest's golden list.",
        ) as step:
            v = validate(self.catalog(), BENCHMARK, self.settings, progress=self.notes)
            self.library_notes()
            for label, value in summary_rows(v):
                self.out(f"  {label:<14} {value}")
            self.report.value, self.report.passed = v.value, v.passed
            self.report.paths["validation"] = Path(v.record)
            step.detail = f"{v.metric} {v.value:.3f}{v.unit} ({'PASS' if v.passed else 'FAIL'}), {v.samples} samples"
            if not v.passed:
                step.state = "failed"

    def rerun(self) -> None:
        with self.step(
            "run",
            "the one command, again",
            "'provision run' chains fetch, verify, preprocess and validate, skipping every stage whose cached",
            "result is still valid. Nothing changed since, so each stage is a cache hit.",
        ) as step:
            run = run_pipeline(self.catalog(), BENCHMARK, self.settings, progress=self.notes)
            self.library_notes()
            for s in run.stages:
                self.out(f"  {s.name:<11} {s.state:<8} {s.seconds:6.2f}  {s.detail}")
            states = ", ".join(f"{s.name} {s.state}" for s in run.stages)
            step.detail = states
            if not run.ok:
                step.state = "failed"

    def audit(self) -> None:
        with self.step(
            "audit",
            "one record to compare machines",
            "provision audit writes what decided this result (inputs and their digests, preprocessing, libraries,",
            "the validation) as one JSON document, to compare with another machine's.",
        ) as step:
            path = self.root / "audit.json"
            write_audit(build_audit(self.catalog(), BENCHMARK, self.settings), path)
            self.report.paths["audit"] = path
            self.out(f"wrote {self.rel(path)} ({human_bytes(path.stat().st_size)})")
            step.detail = f"audit.json, {human_bytes(path.stat().st_size)}"

    def summary(self, seconds: float) -> None:
        self.report.seconds = seconds
        self.say("")
        verdict = "PASS" if self.report.ok else "FAIL"
        self.say(f"summary: {verdict}, {len(self.report.steps)} steps in {seconds:.1f} s")
        for s in self.report.steps:
            self.out(f"{s.name:<11} {s.state:<8} {s.seconds:6.2f} s  {s.detail}")
        self.say("")
        self.say("next, with the real benchmarks:")
        for command, what in _NEXT:
            self.out(f"{command:<46} {what}")


def _workdir(workdir: Path | None) -> tuple[Path, bool]:
    """The demo's folder and whether the demo created it (a given one must be new or empty)."""
    if workdir is None:
        return Path(tempfile.mkdtemp(prefix="provision-demo-")).resolve(), True
    root = Path(workdir).expanduser().resolve()
    if root.exists():
        if not root.is_dir() or any(root.iterdir()):
            raise UsageError(f"--dir {root}: not an empty folder; give a new or empty one (the demo fills it)")
        return root, False
    root.mkdir(parents=True)
    return root, True


def run_demo(
    workdir: Path | None = None, *, say: Callable[[str], None], keep: bool = False, images: int = 48
) -> DemoReport:
    """Run the whole pipeline on a generated benchmark served from 127.0.0.1 (see the module docstring).

    ``workdir``: a new or empty folder to work in (default: a temp folder). It is removed at
    the end unless ``keep``; kept, it holds ``manifests/demo.toml``, ``cache/``, the served
    files (``upstream/``) and ``audit.json`` when this build has the audit. ``images``: how
    many JPEGs to generate (8 to 10,000). Each step is announced through ``say``; failures
    raise :class:`~provision.errors.ProvisionError` after the workdir is cleaned up.
    """
    started = time.perf_counter()
    if not 8 <= images <= 10_000:
        raise UsageError(f"images: expected 8 to 10000, got {images}")
    if importlib.util.find_spec("onnxruntime") is None:
        raise MissingDependencyError("onnxruntime", "onnx", "provision demo")
    root, created = _workdir(workdir)
    report = DemoReport(workdir=root, kept=keep, paths={"workdir": root})
    say("provision demo: fetch, verify, preprocess, validate and audit a generated ImageNet-style benchmark,")
    say("served from 127.0.0.1 (nothing leaves this machine).")
    say(f"workdir: {root} ({'kept' if keep else 'removed'} at the end{'' if keep else '; --keep keeps it'})")
    try:
        _Demo(root, say, images, report).run(started)
    finally:
        if not keep:
            if created:
                shutil.rmtree(root, ignore_errors=True)
            else:
                for child in root.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink()
    if keep:
        say("")
        say(f"kept {root}; to look around with the CLI:")
        say(f"  PROVISION_CACHE={root / 'cache'} PROVISION_MANIFESTS={root / 'manifests'} provision show {BENCHMARK}")
    return report
