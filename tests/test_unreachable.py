"""Without a network, fail fast and lead with what the user must do; licensed files first.

Real ``provision`` processes with the default retry settings, against closed ports of 127.0.0.1
and a ``.invalid`` host (which never resolves), and the real local server.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ManifestWriter, dataset_toml
from httpserver import TestServer, md5

from provision import api
from provision.config import Settings
from provision.errors import EXIT_INTEGRITY, EXIT_SOURCE, IntegrityError, SourceError
from provision.manifest.checksum import Checksum
from provision.manifest.model import FileSpec
from provision.progress import NullProgress
from provision.sources.base import SourceContext, UnreachableFailure
from provision.sources.http import fetch_http
from provision.sources.partial import Sink

PROVISION = Path(sys.executable).parent / "provision"
DEAD_HOST = "files.mlperf-mirror.invalid"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _provision(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "PROVISION_BACKOFF"}  # the default retry settings
    return subprocess.run(
        [str(PROVISION), *args], capture_output=True, text=True, env={**full, **(env or {})}, timeout=180
    )


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("provision: error:")]


def test_a_dataset_on_dead_hosts_fails_fast_with_one_line_naming_the_ways_out(write_manifest: ManifestWriter) -> None:
    refused_a, refused_b = _closed_port(), _closed_port()
    files = [
        (f"part{i}.bin", [f"http://127.0.0.1:{refused_a}/p{i}", f"https://{DEAD_HOST}/p{i}"], os.urandom(100 + i), None)
        for i in range(2)
    ]
    files.append(("part2.bin", [f"http://127.0.0.1:{refused_b}/p2"], os.urandom(102), None))
    write_manifest(dataset_toml("deadnet", files), "deadnet")
    began = time.monotonic()
    proc = _provision("fetch", "deadnet")
    seconds = time.monotonic() - began
    assert proc.returncode == EXIT_SOURCE, proc.stderr
    (line,) = _errors(proc.stderr)  # one line for the three files
    assert line.startswith("provision: error: deadnet (3 files): no source could be reached ("), line
    assert f"refused at 127.0.0.1:{refused_a}" in line and f"refused at 127.0.0.1:{refused_b}" in line
    assert f"name resolution failed for {DEAD_HOST}" in line
    assert line.endswith(
        "; bring the files with --from, set PROVISION_MIRRORS, or PROVISION_OFFLINE=1 to use the cache only"
    )
    assert seconds < 15, f"took {seconds:.1f} s"
    print(f"3 files on dead hosts, default retries: failed in {seconds:.2f} s")


def test_a_host_found_unreachable_is_not_tried_again_in_the_run(tmp_path: Path, settings: Settings) -> None:
    ctx = SourceContext(settings.with_(backoff=1.0))
    url = f"http://127.0.0.1:{_closed_port()}/x"
    spec = FileSpec("x.bin", (url,), Checksum.parse(md5(b"x")), 1)
    first = Sink(spec, tmp_path / "a.part", "t/a", NullProgress())
    began = time.monotonic()
    with pytest.raises(UnreachableFailure) as info:
        fetch_http(url, first, ctx)
    assert info.value.how == "refused" and not info.value.remembered and "2 tries" in info.value.answer
    assert time.monotonic() - began < 5  # one quick retry, not the backoff schedule
    again = Sink(spec, tmp_path / "b.part", "t/b", NullProgress())
    with pytest.raises(UnreachableFailure) as info:
        fetch_http(url.replace("/x", "/y"), again, ctx)  # same origin, another file
    assert info.value.remembered and "not tried again" in info.value.answer


def test_other_failures_keep_their_own_lines(
    server: TestServer, write_manifest: ManifestWriter, settings: Settings
) -> None:
    """Only a run where every failure is an unreachable host is folded into one line."""
    body = os.urandom(100)
    missing = server.url("/unreach/missing.bin")
    files = [
        ("a.bin", [f"http://127.0.0.1:{_closed_port()}/a"], body, None),
        ("b.bin", [f"https://{DEAD_HOST}/b"], body, None),
        ("c.bin", [missing], body, None),
    ]
    write_manifest(dataset_toml("mixed", files), "mixed")
    report = api.fetch(["mixed"], settings)
    lines = report.error_lines()
    assert len(lines) == 3, lines
    assert "no source could be reached (refused at 127.0.0.1:" in lines[0]
    assert f"no source could be reached (name resolution failed for {DEAD_HOST})" in lines[1]
    assert "HTTP 404" in lines[2]


# -- files a person brings by hand ----------------------------------------------------------------


def test_a_manual_file_is_announced_before_any_download_and_leads_the_errors(
    server: TestServer, write_manifest: ManifestWriter
) -> None:
    body = os.urandom(2000)
    missing = server.url("/unreach/labels-missing.txt")
    page = "https://image-net.org/download-images.php"
    files = [
        ("labels.txt", [missing], body, None),
        ("ILSVRC2012_img_val.tar", [f"manual:{page}"], body, None),
    ]
    write_manifest(dataset_toml("licensed", files), "licensed")
    proc = _provision("fetch", "licensed", "--verbose", env={"PROVISION_RETRIES": "0"})
    assert proc.returncode == EXIT_SOURCE, proc.stderr
    notes = proc.stderr.splitlines()
    first_manual = next(i for i, n in enumerate(notes) if "must be downloaded by hand" in n)
    first_failed = next(i for i, n in enumerate(notes) if "failed:" in n)
    assert first_manual < first_failed, notes  # said before the first transfer's outcome
    assert notes[first_manual] == (
        f"provision: to bring by hand: licensed/ILSVRC2012_img_val.tar must be downloaded by hand from {page} "
        f"(licence/registration); expected file 'ILSVRC2012_img_val.tar', 2000 bytes, {md5(body)}; "
        "then run: provision fetch licensed --from <file or folder>"
    )
    errors = _errors(proc.stderr)
    assert len(errors) == 2 and "must be downloaded by hand" in errors[0] and "HTTP 404" in errors[1], errors


def test_a_manual_file_found_under_from_is_not_announced(
    write_manifest: ManifestWriter, tmp_path: Path, settings: Settings
) -> None:
    body = os.urandom(2000)
    write_manifest(dataset_toml("licensed-here", [("val.tar", ["manual:https://example.org/reg"], body, None)]))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "val.tar").write_bytes(body)

    class Notes(NullProgress):
        def __init__(self) -> None:
            self.lines: list[str] = []

        def note(self, text: str) -> None:
            self.lines.append(text)

        def retry(self, key: str, url: str, text: str) -> None:
            self.lines.append(text)

    notes = Notes()
    report = api.fetch(["licensed-here"], settings, from_paths=[tmp_path / "data"], progress=notes)
    assert report.ok and notes.lines == []


def test_a_wrong_file_under_from_is_blamed_not_the_upstream(
    write_manifest: ManifestWriter, tmp_path: Path, settings: Settings
) -> None:
    body = os.urandom(2000)
    write_manifest(dataset_toml("licensed-wrong", [("val.tar", ["manual:https://example.org/reg"], body, None)]))
    wrong = tmp_path / "data" / "val.tar"
    wrong.parent.mkdir()
    wrong.write_bytes(os.urandom(2000))  # the right name and size, other bytes
    report = api.fetch(["licensed-wrong"], settings, from_paths=[tmp_path / "data"])
    assert report.exit_code == EXIT_INTEGRITY
    failure = report.failures[0].failure
    assert isinstance(failure, IntegrityError) and failure.path == str(wrong)
    text = str(failure)
    assert f"the local file given with --from is not the expected one ({wrong}: checksum mismatch: expected " in text
    assert md5(body) in text and "got md5:" in text
    assert "replaced upstream" not in text and "manifest checksum is outdated" not in text
    with pytest.raises(IntegrityError):
        report.raise_for_errors()


def test_raise_for_errors_raises_the_one_line_of_a_dead_network(
    write_manifest: ManifestWriter, settings: Settings
) -> None:
    port = _closed_port()
    files = [(f"f{i}.bin", [f"http://127.0.0.1:{port}/f{i}"], os.urandom(10 + i), None) for i in range(2)]
    write_manifest(dataset_toml("deadnet-api", files), "deadnet-api")
    report = api.fetch(["deadnet-api"], settings)
    with pytest.raises(SourceError) as info:
        report.raise_for_errors()
    assert str(info.value).startswith(
        f"deadnet-api (2 files): no source could be reached (refused at 127.0.0.1:{port})"
    )
    assert len(info.value.attempts) == 2
