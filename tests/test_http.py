"""The HTTP transfer engine against a hostile local server: resume, segments, retries.

Every case ends with a verified file or a non-zero exit that leaves no unverified bytes
at the artifact's path.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ManifestWriter, dataset_toml, sigint_at_default
from httpserver import TestServer

from provision import api
from provision.config import Settings
from provision.errors import EXIT_INTEGRITY, EXIT_SOURCE
from provision.sources.base import IntegrityFailure, StatusFailure
from provision.store.cache import Store

FAST = {"backoff": 0.01, "read_timeout": 2.0, "connect_timeout": 2.0}


def _range_starts(server: TestServer, path: str) -> list[int]:
    starts = []
    for _method, p, headers in list(server.requests):
        if p.split("?")[0] == path:
            rng = headers.get("Range", "bytes=0-")
            starts.append(int(rng.split("=")[1].split("-")[0] or 0))
    return starts


def _view(settings: Settings, name: str, fname: str) -> Path:
    return Store(settings.cache_dir).artifact_dir(name) / fname


def _no_unverified_bytes(settings: Settings, name: str, fname: str) -> None:
    assert not _view(settings, name, fname).exists()
    assert not (Store(settings.cache_dir).artifact_dir(name) / fname).is_symlink()


def _setup(
    server: TestServer, write_manifest: ManifestWriter, path: str, body: bytes, name: str, **route: object
) -> str:
    url = server.add(path, body, **route)  # type: ignore[arg-type]
    write_manifest(dataset_toml(name, [("f.bin", [url], body, None)]), name)
    return url


def test_dropped_connection_resumes_with_range(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(600_000)
    _setup(server, write_manifest, "/h/drop.bin", body, "drop", drop_after=200_000, drop_times=1)
    report = api.fetch(["drop"], settings.with_(**FAST))
    assert report.ok, report.failures
    assert _view(settings, "drop", "f.bin").read_bytes() == body
    starts = _range_starts(server, "/h/drop.bin")
    assert starts[0] == 0 and len(starts) == 2 and starts[1] > 0, starts


def test_truncated_body_with_full_content_length_is_resumed(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(500_000)
    _setup(server, write_manifest, "/h/trunc.bin", body, "trunc", truncate_to=150_000)
    report = api.fetch(["trunc"], settings.with_(**FAST))
    assert report.ok, report.failures
    assert _view(settings, "trunc", "f.bin").read_bytes() == body
    assert _range_starts(server, "/h/trunc.bin")[:4] == [0, 150_000, 300_000, 450_000]


def test_range_ignored_restarts_from_zero_never_appends(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(400_000)
    _setup(
        server, write_manifest, "/h/norange.bin", body, "norange", drop_after=100_000, drop_times=1, ignore_range=True
    )
    report = api.fetch(["norange"], settings.with_(**FAST))
    assert report.ok, report.failures
    assert _view(settings, "norange", "f.bin").read_bytes() == body  # an append would corrupt it
    starts = _range_starts(server, "/h/norange.bin")
    assert starts[0] == 0 and starts[1] > 0 and starts[2] == 0, starts  # asked to resume, got 200, restarted


def test_etag_change_between_attempts_discards_partial(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    old = os.urandom(300_000)
    new = os.urandom(300_000)

    def swap(handler: object) -> None:
        route = server.routes["/h/etag.bin"]
        if server.hits["/h/etag.bin"] == 2:
            route.body, route.etag, route.drop_after = new, '"v2"', None

    url = server.add("/h/etag.bin", old, etag='"v1"', drop_after=100_000, hook=swap)
    # The manifest already pins the new content: the result must be exactly `new`, not a mix.
    write_manifest(dataset_toml("etag", [("f.bin", [url], new, None)]), "etag")
    report = api.fetch(["etag"], settings.with_(**FAST))
    assert report.ok, report.failures
    assert _view(settings, "etag", "f.bin").read_bytes() == new
    ifr = [h.get("If-Range") for _m, p, h in server.requests if p == "/h/etag.bin"]
    assert ifr[1] == '"v1"'


def test_etag_change_to_unexpected_content_fails_integrity(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    old = os.urandom(200_000)

    def swap(handler: object) -> None:
        route = server.routes["/h/etag2.bin"]
        route.body, route.etag, route.drop_after = os.urandom(200_000), '"v2"', None

    url = server.add("/h/etag2.bin", old, etag='"v1"', drop_after=50_000, drop_times=1)
    server.routes["/h/etag2.bin"].hook = lambda h: swap(h) if server.hits["/h/etag2.bin"] >= 2 else None
    write_manifest(dataset_toml("etag2", [("f.bin", [url], old, None)]), "etag2")
    report = api.fetch(["etag2"], settings.with_(**FAST))
    assert report.exit_code == EXIT_INTEGRITY
    _no_unverified_bytes(settings, "etag2", "f.bin")


def test_429_retry_after_seconds_is_honoured(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(10_000)
    _setup(server, write_manifest, "/h/429.bin", body, "r429", fail_first=1, fail_status=429, retry_after="1")
    began = time.monotonic()
    report = api.fetch(["r429"], settings.with_(**FAST))
    assert report.ok, report.failures
    assert time.monotonic() - began >= 0.9  # waited as told, not the 0.01 s backoff


def test_503_retry_after_http_date_is_honoured(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(10_000)
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    _setup(server, write_manifest, "/h/503.bin", body, "r503", fail_first=1, fail_status=503, retry_after=when)
    began = time.monotonic()
    report = api.fetch(["r503"], settings.with_(**FAST))
    assert report.ok, report.failures
    assert time.monotonic() - began >= 0.9


def test_500_k_times_then_success(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    body = os.urandom(20_000)
    _setup(server, write_manifest, "/h/500.bin", body, "r500", fail_first=3)
    report = api.fetch(["r500"], settings.with_(**FAST))
    assert report.ok, report.failures
    assert server.hits["/h/500.bin"] == 4


def test_persistent_500_gives_up_and_moves_to_next_mirror(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(20_000)
    bad = server.add("/h/500forever.bin", body, fail_first=1000)
    good = server.add("/h/500good.bin", body)
    write_manifest(dataset_toml("r500b", [("f.bin", [bad, good], body, None)]), "r500b")
    report = api.fetch(["r500b"], settings.with_(retries=2, **FAST))
    assert report.ok, report.failures
    assert server.hits["/h/500forever.bin"] == 3  # 1 try + 2 retries
    url, failed = report.files[0].attempts[0]
    assert url == bad and isinstance(failed, StatusFailure) and failed.status == 500 and "500" in str(failed)


def test_404_is_final_for_that_url(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    body = os.urandom(1_000)
    missing = server.url("/h/nothing-here.bin")
    good = server.add("/h/404good.bin", body)
    write_manifest(dataset_toml("r404", [("f.bin", [missing, good], body, None)]), "r404")
    report = api.fetch(["r404"], settings.with_(**FAST))
    assert report.ok
    assert server.hits["/h/nothing-here.bin"] == 1


def test_stalled_connection_is_dropped_and_resumed(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(400_000)
    _setup(server, write_manifest, "/h/stall.bin", body, "stall", stall_after=100_000, stall_seconds=4.0)
    began = time.monotonic()
    report = api.fetch(["stall"], settings.with_(backoff=0.01, read_timeout=0.5))
    assert report.ok, report.failures
    assert time.monotonic() - began < 3.5
    starts = _range_starts(server, "/h/stall.bin")
    assert starts[0] == 0 and starts[1] > 0


def test_redirect_chain_is_followed(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    body = os.urandom(30_000)
    server.add("/h/target.bin", body)
    server.add("/h/r2", redirect_to="/h/target.bin")
    first = server.add("/h/r1", redirect_to=server.url("/h/r2"))
    write_manifest(dataset_toml("redir", [("f.bin", [first], body, None)]), "redir")
    report = api.fetch(["redir"], settings.with_(**FAST))
    assert report.ok, report.failures
    assert server.hits["/h/r1"] == server.hits["/h/r2"] == server.hits["/h/target.bin"] == 1


def test_all_mirrors_failing_lists_each(server: TestServer, write_manifest: ManifestWriter, settings: Settings) -> None:
    a = server.add("/h/m1", b"", status=403)
    b = server.url("/h/m2-missing")
    c = server.add("/h/m3", b"<html><body>Sign in</body></html>", content_type="text/html")
    write_manifest(dataset_toml("allbad", [("f.bin", [a, b, c], b"x" * 10, None)]), "allbad")
    report = api.fetch(["allbad"], settings.with_(**FAST))
    assert report.exit_code == EXIT_SOURCE
    err = report.failures[0].error
    for url, what in ((a, "403"), (b, "404"), (c, "HTML")):
        assert url in err and what in err
    _no_unverified_bytes(settings, "allbad", "f.bin")


def test_segmented_download_uses_parallel_ranges(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(3 * 1024 * 1024)
    _setup(server, write_manifest, "/h/seg.bin", body, "seg", rate=1_500_000, etag='"s1"')
    fast = settings.with_(segment_threshold=1024 * 1024, jobs=4, **FAST)
    began = time.monotonic()
    report = api.fetch(["seg"], fast)
    elapsed = time.monotonic() - began
    assert report.ok, report.failures
    assert _view(settings, "seg", "f.bin").read_bytes() == body
    ranges = [h.get("Range") for _m, p, h in server.requests if p == "/h/seg.bin"]
    assert len({r for r in ranges if r and not r.endswith("-")}) >= 2, ranges
    assert elapsed < 3 * 1024 * 1024 / 1_500_000  # faster than one throttled connection


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice is Linux's")
def test_segment_threads_yield_the_cpu_to_the_in_order_hasher(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    """The receiving threads run at nice +10, the hash thread (the critical path) and the caller at
    the process's own priority."""
    import threading

    body = os.urandom(2 * 1024 * 1024)
    _setup(server, write_manifest, "/h/nice.bin", body, "nice", rate=1_000_000, etag='"n1"')
    fast = settings.with_(segment_threshold=512 * 1024, jobs=4, **FAST)
    base = os.getpriority(os.PRIO_PROCESS, 0)
    seen: dict[str, int] = {}
    result: list[object] = []
    runner = threading.Thread(target=lambda: result.append(api.fetch(["nice"], fast)))
    runner.start()
    while runner.is_alive():
        for t in threading.enumerate():
            if t.name.startswith(("seg", "hash:")) and t.native_id is not None:
                with contextlib.suppress(OSError):  # it ended between the listing and the question
                    seen[t.name.split(":")[0]] = os.getpriority(os.PRIO_PROCESS, t.native_id)
        time.sleep(0.02)
    runner.join()
    report = result[0]
    assert getattr(report, "ok", False), report
    assert _view(settings, "nice", "f.bin").read_bytes() == body
    assert seen.get("hash") == base, seen
    segs = {k: v for k, v in seen.items() if k.startswith("seg")}
    assert segs and set(segs.values()) == {min(19, base + 10)}, seen
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base


def test_segmented_with_stall_requeues_piece(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(2 * 1024 * 1024)
    _setup(
        server,
        write_manifest,
        "/h/segstall.bin",
        body,
        "segstall",
        stall_after=300_000,
        stall_seconds=4.0,
        stall_times=2,
    )
    fast = settings.with_(segment_threshold=512 * 1024, jobs=3, backoff=0.01, read_timeout=0.5)
    report = api.fetch(["segstall"], fast)
    assert report.ok, report.failures
    assert _view(settings, "segstall", "f.bin").read_bytes() == body


def test_content_addressed_mirror_is_tried_first(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(5_000)
    hexd = hashlib.md5(body).hexdigest()
    server.add(f"/mirror/md5/{hexd}", body)
    origin = server.add("/h/origin.bin", body)
    write_manifest(dataset_toml("mirrored", [("f.bin", [origin], body, None)]), "mirrored")
    report = api.fetch(["mirrored"], settings.with_(mirrors=(server.url("/mirror"),), **FAST))
    assert report.ok
    assert report.files[0].source == server.url(f"/mirror/md5/{hexd}")
    assert "/h/origin.bin" not in server.hits


def test_wrong_mirror_cannot_poison_the_cache(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    body = os.urandom(5_000)
    hexd = hashlib.md5(body).hexdigest()
    server.add(f"/evil/md5/{hexd}", os.urandom(5_000))
    origin = server.add("/h/origin2.bin", body)
    write_manifest(dataset_toml("poison", [("f.bin", [origin], body, None)]), "poison")
    report = api.fetch(["poison"], settings.with_(mirrors=(server.url("/evil"),), **FAST))
    assert report.ok
    assert _view(settings, "poison", "f.bin").read_bytes() == body
    assert isinstance(report.files[0].attempts[0][1], IntegrityFailure)


def test_token_sent_to_its_host_only_and_never_printed(
    server: TestServer, write_manifest: ManifestWriter, tmp_path: Path
) -> None:
    body = os.urandom(2_000)
    server.add("/h/secret.bin", body)
    # 127.0.0.1 holds the token; the redirect goes to "localhost", another host.
    server.add("/h/private", redirect_to=f"http://localhost:{server.port}/h/secret.bin")
    write_manifest(dataset_toml("private", [("f.bin", [server.url("/h/private")], body, None)]), "private")
    auth = tmp_path / "auth.toml"
    auth.write_text('[hosts."127.0.0.1"]\ntoken = "tok-SECRET-123"\n', encoding="utf-8")
    env = {**os.environ, "PROVISION_AUTH_FILE": str(auth), "PROVISION_BACKOFF": "0.01"}
    proc = subprocess.run(
        [sys.executable, "-m", "provision.cli", "fetch", "private", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "tok-SECRET-123" not in proc.stdout + proc.stderr
    sent = {p: h.get("Authorization") for _m, p, h in server.requests if p in ("/h/private", "/h/secret.bin")}
    assert sent["/h/private"] == "Bearer tok-SECRET-123"
    assert sent["/h/secret.bin"] is None
    assert "tok-SECRET-123" not in repr(Settings.from_env(env))


def _wait_for_partial(cache: Path, minimum: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for state in cache.glob("blobs/*/*/*.part-*.json"):
            try:
                done = json.loads(state.read_text())["done"]
            except (OSError, ValueError, KeyError):
                continue
            if sum(b - a for a, b in done) >= minimum:
                return
        time.sleep(0.05)
    raise AssertionError("no partial download appeared")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_fetch_resumes_on_rerun(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings, sig: int
) -> None:
    body = os.urandom(2_000_000)
    path = f"/h/kill{sig}.bin"
    name = f"kill{int(sig)}"
    _setup(server, write_manifest, path, body, name, rate=1_000_000, etag='"k1"')
    env = {**os.environ, "PROVISION_JOBS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "provision.cli", "fetch", name, "-q"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=sigint_at_default,
    )
    try:
        _wait_for_partial(settings.cache_dir, 400_000)
    finally:
        proc.send_signal(sig)
        proc.wait(timeout=30)
    assert proc.returncode != 0
    _no_unverified_bytes(settings, name, "f.bin")
    server.routes[path].rate = None
    server.reset_counts()
    report = api.fetch([name], settings.with_(**FAST))
    assert report.ok, report.failures
    assert _view(settings, name, "f.bin").read_bytes() == body
    starts = _range_starts(server, path)
    assert starts and starts[0] >= 400_000, starts  # resumed, not from byte 0
    assert not list(settings.cache_dir.glob("blobs/*/*/*.part-*"))


def test_connection_errors_are_reported_by_their_cause() -> None:
    """requests/urllib3 nest the cause three deep; the note shows it, not the wrappers' repr."""
    import socket

    import requests

    from provision.sources.http import short_error

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        requests.get(f"http://127.0.0.1:{port}/x", timeout=2)
    except requests.ConnectionError as exc:
        text = short_error(exc)
    assert "Connection refused" in text and "HTTPConnection" not in text and "Max retries" not in text


def test_segment_queue_gives_back_ranges_and_gives_up() -> None:
    """The work list of a segmented download: pieces in order, unfinished parts first, failures in a row."""
    from provision.sources.base import ConnectionFailure, Retry
    from provision.sources.http import SegmentQueue

    queue = SegmentQueue([(0, 10), (20, 25)], piece=4, retries=1)
    assert len(queue) == 5  # (0,4) (4,8) (8,10) (20,24) (24,25)
    assert queue.take() == (0, 4)
    assert queue.retry((2, 4), progressed=True, exc=Retry("dropped")) == 0  # it moved: not a failure in a row
    assert queue.take() == (2, 4)  # the unfinished part comes back first
    assert queue.retry((2, 4), progressed=False, exc=Retry("dropped")) == 1
    assert queue.take() == (2, 4)
    assert queue.retry((2, 4), progressed=False, exc=Retry("dropped")) is None  # past retries=1
    assert isinstance(queue.fatal, ConnectionFailure) and "gave up after 2 tries" in str(queue.fatal)
    assert queue.take() is None  # every worker stops
    other = SegmentQueue([(0, 8)], piece=4, retries=5)
    other.take()
    other.fail((0, 4), KeyboardInterrupt())
    other.fail((4, 8), ValueError("later"))
    assert isinstance(other.fatal, KeyboardInterrupt) and other.take() is None  # the first error wins
