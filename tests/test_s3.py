"""The ``s3://`` source against real local servers on 127.0.0.1.

moto's S3 server stands in for S3 (buckets, keys, listings, S3 error documents);
the hostile HTTP test server stands in for a flaky S3-compatible endpoint (dropped
connections, 5xx, 403) and records the requests, so signing, ``Range`` and ``If-Match``
can be checked. ``AWS_ENDPOINT_URL`` points boto3 at either; nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("boto3", reason="the s3 extra is not installed: pip install 'provision[s3]'")
pytest.importorskip("moto.server", reason="moto[server] is not installed (dev extra)")

import boto3
from conftest import ManifestWriter, dataset_toml
from httpserver import TestServer, md5
from moto.server import ThreadedMotoServer

from provision import api
from provision.config import Settings
from provision.errors import EXIT_INTEGRITY, EXIT_SOURCE
from provision.manifest.checksum import Checksum
from provision.manifest.model import FileSpec
from provision.progress import NullProgress
from provision.sources.base import AttemptFailed, OfflineFailure, SourceContext
from provision.sources.partial import Sink
from provision.sources.s3 import NEEDS_BOTO3
from provision.sources.schemes import fetch_url, list_url
from provision.store.cache import Store

FAST = {"backoff": 0.01, "read_timeout": 5.0, "connect_timeout": 2.0}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto S3 server on 127.0.0.1 for the whole session."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    yield f"http://{host}:{port}"
    srv.stop()


def _aws_env(monkeypatch: pytest.MonkeyPatch, endpoint: str, *, credentials: bool = True) -> None:
    """boto3's configuration for a local endpoint (the isolation fixture cleared AWS_* first)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata probe off 127.0.0.1
    if credentials:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDPROVISIONTEST")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    else:
        monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)


@pytest.fixture
def bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    """``(client, name)``: a fresh bucket on the moto server, with the environment pointing at it."""
    _aws_env(monkeypatch, moto_endpoint)
    client = boto3.client("s3")
    name = f"b-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return client, name


def _view(settings: Settings, name: str, fname: str) -> Path:
    return Store(settings.cache_dir).artifact_dir(name) / fname


def _ctx(settings: Settings) -> SourceContext:
    return SourceContext(settings=settings.with_(**FAST))


def _fetch_direct(url: str, tmp_path: Path, settings: Settings, body: bytes | None = None) -> bytes:
    """Fetch ``url`` straight through the source into a Sink; returns the bytes written."""
    spec = FileSpec(name="f.bin", urls=(url,), checksum=Checksum.parse(md5(body or b"")), size=None)
    dest = tmp_path / "direct.part"
    sink = Sink(spec, dest, "t/f.bin", NullProgress())
    fetch_url(url, sink, _ctx(settings))
    sink.close()
    return dest.read_bytes()


def _failure(url: str, tmp_path: Path, settings: Settings) -> AttemptFailed:
    """The one-line AttemptFailed a failing URL gives (never a botocore exception)."""
    with pytest.raises(AttemptFailed) as info:
        _fetch_direct(url, tmp_path, settings)
    assert "\n" not in info.value.answer
    return info.value


# -- moto: objects, errors, listings ------------------------------------------------------------


def test_object_end_to_end(bucket: tuple[Any, str], write_manifest: ManifestWriter, settings: Settings) -> None:
    client, name = bucket
    body = os.urandom(700_000)  # several read chunks
    client.put_object(Bucket=name, Key="data/train.bin", Body=body)
    url = f"s3://{name}/data/train.bin"
    write_manifest(dataset_toml("s3one", [("train.bin", [url], body, None)]), "s3one")
    report = api.fetch(["s3one"], settings.with_(**FAST))
    assert report.ok, report.failures
    assert _view(settings, "s3one", "train.bin").read_bytes() == body
    assert report.files[0].source == url


def test_wrong_checksum_is_an_integrity_error(
    bucket: tuple[Any, str], write_manifest: ManifestWriter, settings: Settings
) -> None:
    client, name = bucket
    body = os.urandom(50_000)
    client.put_object(Bucket=name, Key="bad.bin", Body=body)
    url = f"s3://{name}/bad.bin"
    write_manifest(dataset_toml("s3bad", [("bad.bin", [url], body, md5(b"something else"))]), "s3bad")
    report = api.fetch(["s3bad"], settings.with_(**FAST))
    assert report.exit_code == EXIT_INTEGRITY
    assert "checksum mismatch" in report.failures[0].error
    assert not _view(settings, "s3bad", "bad.bin").exists()


def test_size_the_manifest_does_not_expect_is_refused(
    bucket: tuple[Any, str], write_manifest: ManifestWriter, settings: Settings
) -> None:
    client, name = bucket
    client.put_object(Bucket=name, Key="grown.bin", Body=b"x" * 2_000)
    url = f"s3://{name}/grown.bin"
    write_manifest(dataset_toml("s3size", [("grown.bin", [url], b"x" * 1_000, None)]), "s3size")
    report = api.fetch(["s3size"], settings.with_(**FAST))
    assert report.exit_code == EXIT_INTEGRITY
    assert "size mismatch" in report.failures[0].error
    assert not _view(settings, "s3size", "grown.bin").exists()


def test_missing_key_and_bucket_name_the_url(
    bucket: tuple[Any, str], write_manifest: ManifestWriter, settings: Settings, tmp_path: Path
) -> None:
    _client, name = bucket
    no_key = f"s3://{name}/no/such.bin"
    no_bucket = f"s3://nb-{uuid.uuid4().hex[:12]}/f.bin"
    write_manifest(dataset_toml("s3missing", [("f.bin", [no_key, no_bucket], b"x", None)]), "s3missing")
    report = api.fetch(["s3missing"], settings.with_(**FAST))
    assert report.exit_code == EXIT_SOURCE
    err = report.failures[0].error
    assert f"{no_key} -> S3 NoSuchKey" in err
    assert f"{no_bucket} -> S3 NoSuchBucket" in err
    assert "no/such.bin" in _failure(no_key, tmp_path, settings).answer
    assert no_bucket in _failure(no_bucket, tmp_path, settings).answer


def test_folder_url_is_not_an_object(bucket: tuple[Any, str], settings: Settings, tmp_path: Path) -> None:
    _client, name = bucket
    assert "names a folder" in _failure(f"s3://{name}/dir/", tmp_path, settings).answer
    assert "not an s3://" in _failure("s3://", tmp_path, settings).answer


def test_list_prefix(bucket: tuple[Any, str], settings: Settings) -> None:
    client, name = bucket
    for key, data in [("pre/a.txt", b"a"), ("pre/sub/b.txt", b"bb"), ("pre/sub/", b""), ("other/c.txt", b"c")]:
        client.put_object(Bucket=name, Key=key, Body=data)
    listed = sorted(list_url(f"s3://{name}/pre/", _ctx(settings)), key=lambda i: i.path)
    assert [(i.path, i.url, i.size) for i in listed] == [
        ("a.txt", f"s3://{name}/pre/a.txt", 1),
        ("sub/b.txt", f"s3://{name}/pre/sub/b.txt", 2),
    ]
    assert all(not i.checksum.known for i in listed)  # ETags are not content hashes: pinned on first use
    whole = list_url(f"s3://{name}/", _ctx(settings))
    assert sorted(i.path for i in whole) == ["other/c.txt", "pre/a.txt", "pre/sub/b.txt"]


def test_list_paginates(bucket: tuple[Any, str], settings: Settings) -> None:
    client, name = bucket
    keys = [f"many/{i:05d}.txt" for i in range(1003)]  # S3 answers at most 1000 keys a page
    try:  # seed through moto's backend (one HTTP PUT per key would take seconds)
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for key in keys:
            backend.put_object(name, key, b"k")
    except (ImportError, KeyError, AttributeError, TypeError):
        for key in keys:
            client.put_object(Bucket=name, Key=key, Body=b"k")
    listed = list_url(f"s3://{name}/many/", _ctx(settings))
    assert sorted(i.path for i in listed) == [k.removeprefix("many/") for k in keys]


def test_empty_or_malformed_listing_fails(bucket: tuple[Any, str], settings: Settings) -> None:
    client, name = bucket
    client.put_object(Bucket=name, Key="only-marker/", Body=b"")
    for url, what in [
        (f"s3://{name}/nothing/", "no objects under"),
        (f"s3://{name}/only-marker/", "no objects under"),
        (f"s3://{name}/no-slash", "ends in '/'"),
        (f"s3://nb-{uuid.uuid4().hex[:12]}/x/", "NoSuchBucket"),
    ]:
        with pytest.raises(AttemptFailed) as info:
            list_url(url, _ctx(settings))
        assert what in info.value.answer and "\n" not in info.value.answer


def test_unsafe_listed_key_is_refused(bucket: tuple[Any, str], settings: Settings) -> None:
    client, name = bucket
    client.put_object(Bucket=name, Key="pre/../escape.txt", Body=b"x")
    with pytest.raises(AttemptFailed, match="not a plain relative path"):
        list_url(f"s3://{name}/pre/", _ctx(settings))


def test_folder_entry_end_to_end(bucket: tuple[Any, str], write_manifest: ManifestWriter, settings: Settings) -> None:
    client, name = bucket
    files = {"a.bin": os.urandom(1_000), "sub/b.bin": os.urandom(2_000)}
    for rel, data in files.items():
        client.put_object(Bucket=name, Key=f"images/{rel}", Body=data)
    write_manifest(dataset_toml("s3dir", [("img/", [f"s3://{name}/images/"], None, "listed")]), "s3dir")
    report = api.fetch(["s3dir"], settings.with_(**FAST))
    assert report.ok, report.failures
    for rel, data in files.items():
        assert _view(settings, "s3dir", f"img/{rel}").read_bytes() == data


def test_boto3_missing_names_the_extra(
    bucket: tuple[Any, str], write_manifest: ManifestWriter, settings: Settings, tmp_path: Path
) -> None:
    client, name = bucket
    client.put_object(Bucket=name, Key="f.bin", Body=b"data")
    monkeypatch = pytest.MonkeyPatch()
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "boto3", None)  # import boto3 -> ImportError, as when it is not installed
        assert _failure(f"s3://{name}/f.bin", tmp_path, settings).answer == NEEDS_BOTO3
        write_manifest(dataset_toml("s3noboto", [("f.bin", [f"s3://{name}/f.bin"], b"data", None)]), "s3noboto")
        report = api.fetch(["s3noboto"], settings.with_(**FAST))
    assert report.exit_code == EXIT_SOURCE
    assert "pip install 'provision[s3]'" in report.failures[0].error


# -- the HTTP test server as a flaky S3-compatible endpoint ---------------------------------------


def _endpoint(server: TestServer, monkeypatch: pytest.MonkeyPatch, *, credentials: bool = True) -> None:
    _aws_env(monkeypatch, server.url(""), credentials=credentials)


def _gets(server: TestServer, path: str) -> list[dict[str, str]]:
    return [h for m, p, h in list(server.requests) if m == "GET" and p.split("?")[0] == path]


def test_offline_makes_no_request(
    server: TestServer, monkeypatch: pytest.MonkeyPatch, settings: Settings, tmp_path: Path
) -> None:
    _endpoint(server, monkeypatch)
    server.add("/off/f.bin", b"data")
    offline = settings.with_(offline=True)
    with pytest.raises(AttemptFailed) as info:
        _fetch_direct("s3://off/f.bin", tmp_path, offline, b"data")
    assert isinstance(info.value, OfflineFailure) and "PROVISION_OFFLINE" in info.value.answer
    with pytest.raises(AttemptFailed) as info:
        list_url("s3://off/", SourceContext(settings=offline))
    assert isinstance(info.value, OfflineFailure)
    assert not any(p.startswith("/off/") for _m, p, _h in server.requests)  # not /offline/ of test_fetch


def test_anonymous_without_credentials_signed_with_them(
    server: TestServer, monkeypatch: pytest.MonkeyPatch, settings: Settings, tmp_path: Path
) -> None:
    body = os.urandom(10_000)
    server.add("/pub/anon.bin", body, etag='"e1"')
    _endpoint(server, monkeypatch, credentials=False)
    assert _fetch_direct("s3://pub/anon.bin", tmp_path, settings, body) == body
    assert "Authorization" not in _gets(server, "/pub/anon.bin")[-1]
    _endpoint(server, monkeypatch, credentials=True)
    assert _fetch_direct("s3://pub/anon.bin", tmp_path, settings, body) == body
    auth = _gets(server, "/pub/anon.bin")[-1].get("Authorization", "")
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDPROVISIONTEST/")


def test_dropped_connection_continues_with_range_and_if_match(
    server: TestServer, monkeypatch: pytest.MonkeyPatch, write_manifest: ManifestWriter, settings: Settings
) -> None:
    _endpoint(server, monkeypatch)
    body = os.urandom(2_000_000)
    server.add("/flaky/drop.bin", body, etag='"v1"', drop_after=1_000_000, drop_times=1)
    write_manifest(dataset_toml("s3drop", [("f.bin", ["s3://flaky/drop.bin"], body, None)]), "s3drop")
    report = api.fetch(["s3drop"], settings.with_(**FAST))
    assert report.ok, report.failures
    assert _view(settings, "s3drop", "f.bin").read_bytes() == body
    first, second = _gets(server, "/flaky/drop.bin")
    assert "Range" not in first
    assert int(second["Range"].removeprefix("bytes=").rstrip("-")) > 0
    assert second["If-Match"] == '"v1"'


def test_partial_from_a_failed_run_is_resumed(
    server: TestServer, monkeypatch: pytest.MonkeyPatch, write_manifest: ManifestWriter, settings: Settings
) -> None:
    _endpoint(server, monkeypatch)
    body = os.urandom(2_000_000)
    server.add("/flaky/again.bin", body, etag='"v1"', drop_after=1_000_000, drop_times=1)
    write_manifest(dataset_toml("s3again", [("f.bin", ["s3://flaky/again.bin"], body, None)]), "s3again")
    first = api.fetch(["s3again"], settings.with_(**FAST, retries=0))
    assert first.exit_code == EXIT_SOURCE
    assert "gave up after 1 tries" in first.failures[0].error
    report = api.fetch(["s3again"], settings.with_(**FAST))
    assert report.ok, report.failures
    assert _view(settings, "s3again", "f.bin").read_bytes() == body
    _, resumed = _gets(server, "/flaky/again.bin")
    assert int(resumed["Range"].removeprefix("bytes=").rstrip("-")) > 0
    assert resumed["If-Match"] == '"v1"'


def test_object_changed_between_runs_restarts_from_zero(
    server: TestServer, monkeypatch: pytest.MonkeyPatch, write_manifest: ManifestWriter, settings: Settings
) -> None:
    _endpoint(server, monkeypatch)
    old, new = os.urandom(2_000_000), os.urandom(2_000_000)
    server.add("/flaky/changed.bin", old, etag='"v1"', drop_after=1_000_000, drop_times=1)
    # The manifest already pins the new content: the result must be exactly `new`, not a mix.
    write_manifest(dataset_toml("s3changed", [("f.bin", ["s3://flaky/changed.bin"], new, None)]), "s3changed")
    assert api.fetch(["s3changed"], settings.with_(**FAST, retries=0)).exit_code == EXIT_SOURCE
    route = server.routes["/flaky/changed.bin"]
    route.body, route.etag = new, '"v2"'
    report = api.fetch(["s3changed"], settings.with_(**FAST))
    assert report.ok, report.failures
    assert _view(settings, "s3changed", "f.bin").read_bytes() == new
    _, resumed, restarted = _gets(server, "/flaky/changed.bin")
    assert resumed["If-Match"] == '"v1"' and "Range" in resumed
    assert "Range" not in restarted


def test_5xx_is_retried_then_given_up(
    server: TestServer, monkeypatch: pytest.MonkeyPatch, settings: Settings, tmp_path: Path
) -> None:
    _endpoint(server, monkeypatch)
    body = os.urandom(5_000)
    server.add("/busy/twice.bin", body, fail_first=2, fail_status=503)
    assert _fetch_direct("s3://busy/twice.bin", tmp_path, settings, body) == body
    server.add("/busy/always.bin", body, fail_first=100, fail_status=500)
    answer = _failure("s3://busy/always.bin", tmp_path, settings.with_(retries=2)).answer
    assert "HTTP 500" in answer and "gave up after 3 tries" in answer
    assert server.hits["/busy/always.bin"] == 3


def test_403_says_how_to_give_credentials(
    server: TestServer, monkeypatch: pytest.MonkeyPatch, settings: Settings, tmp_path: Path
) -> None:
    server.add("/private/f.bin", b"", status=403)
    _endpoint(server, monkeypatch, credentials=False)
    answer = _failure("s3://private/f.bin", tmp_path, settings).answer
    assert answer.startswith("S3 HTTP 403: access denied to s3://private/f.bin (no AWS credentials were found")
    assert "AWS_ACCESS_KEY_ID" in answer
    _endpoint(server, monkeypatch, credentials=True)
    assert "credentials in use may not read it" in _failure("s3://private/f.bin", tmp_path, settings).answer


def test_unreachable_endpoint_is_one_line(monkeypatch: pytest.MonkeyPatch, settings: Settings, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _aws_env(monkeypatch, f"http://127.0.0.1:{port}")
    answer = _failure("s3://b-x/f.bin", tmp_path, settings.with_(retries=1)).answer
    assert "connection failed" in answer and "gave up after 2 tries" in answer
    with pytest.raises(AttemptFailed, match="connection failed"):
        list_url("s3://b-x/p/", SourceContext(settings=settings.with_(**FAST, retries=0)))


def test_broken_configuration_is_an_attempt_failure(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    assert "S3 client setup failed (ProfileNotFound" in _failure("s3://b-x/f.bin", tmp_path, settings).answer


def test_cancel_stops_the_transfer(
    server: TestServer, monkeypatch: pytest.MonkeyPatch, settings: Settings, tmp_path: Path
) -> None:
    _endpoint(server, monkeypatch)
    server.add("/stop/f.bin", os.urandom(100_000))
    ctx = _ctx(settings)
    ctx.cancel.set()
    spec = FileSpec(name="f.bin", urls=("s3://stop/f.bin",), checksum=Checksum.parse(md5(b"")), size=None)
    sink = Sink(spec, tmp_path / "c.part", "t/f.bin", NullProgress())
    with pytest.raises(KeyboardInterrupt):
        fetch_url("s3://stop/f.bin", sink, ctx)
    sink.reset()
