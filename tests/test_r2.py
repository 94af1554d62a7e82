"""MLCommons R2 (``mlc-r2://<host>/metadata/<name>.uri``) against a local bucket-like server.

The server plays an R2 bucket: ``/<bucket>/metadata/<name>.uri`` names the data folder,
``<name>.md5`` lists it as ``rclone md5sum`` does, and the files sit in sub-folders.
Cloudflare Access is played by redirects, 403s and the headers it sends.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import ManifestWriter
from httpserver import TestServer

from provision import api
from provision.config import Settings
from provision.errors import DiskSpaceError
from provision.fsutil import human_bytes
from provision.manifest.checksum import Checksum
from provision.manifest.model import FileSpec
from provision.progress import NullProgress
from provision.sources.base import AttemptFailed, OfflineFailure, SourceContext
from provision.sources.http import fetch_http
from provision.sources.partial import Sink
from provision.sources.r2 import list_r2, parse_base, parse_md5_list, r2_metadata_urls
from provision.sources.schemes import list_url
from provision.store.cache import Store

FAST = {"backoff": 0.01, "read_timeout": 2.0, "connect_timeout": 2.0, "retries": 2}
SECRET = "s3cr3t-value-never-shown"
CLIENT_ID = "0123456789abcdef0123456789abcdef.access"
TOKEN = "eyJhbGciOi.jwt-token-never-shown"

FILES: dict[str, bytes] = {
    "config.json": b'{"a": 1}\n',
    "checkpoint_pipe/unet/model index.json": b"unet" * 1000,
    "checkpoint_pipe/vae/weights.bin": os.urandom(200_000),
    "data/part-0.npz": os.urandom(50_000),
}
HASHLESS = "checkpoint_pipe/vae/weights.bin"


def _settings(extra: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    return Settings.from_env({**os.environ, **(extra or {})}, **{**FAST, **overrides})


def _ctx(settings: Settings) -> SourceContext:
    return SourceContext(settings)


def _md5_line(rel: str, body: bytes, *, hashless: bool = False, dot: bool = False) -> str:
    path = f"./{rel}" if dot else rel
    return f"{' ' * 32}  {path}" if hashless else f"{hashlib.md5(body).hexdigest()}  {path}"


def _bucket(
    server: TestServer,
    files: Mapping[str, bytes] = FILES,
    *,
    md5_text: str | None = None,
    uri_text: str | None = None,
    **route: Any,
) -> tuple[str, str]:
    """Serve a bucket under a fresh prefix; returns (mlc-r2 URL, data folder path)."""
    bucket = f"/b{uuid.uuid4().hex[:10]}"
    folder = f"{bucket}/inference/dataset_one"
    for rel, body in files.items():
        server.add(f"{folder}/{quote(rel)}", body, **route)
    if md5_text is None:
        lines = [
            _md5_line(rel, body, hashless=rel == HASHLESS, dot=rel == "config.json") for rel, body in files.items()
        ]
        md5_text = "".join(line + "\n" for line in sorted(lines))
    if uri_text is None:
        uri_text = server.url(folder) + "\n"
    server.add(f"{bucket}/metadata/dataset-one.uri", uri_text.encode(), content_type="text/plain", **route)
    server.add(f"{bucket}/metadata/dataset-one.md5", md5_text.encode(), content_type="text/plain", **route)
    return f"mlc-r2://127.0.0.1:{server.port}{bucket}/metadata/dataset-one.uri", folder


def _requests_to(server: TestServer, prefix: str) -> list[tuple[str, str, dict[str, str]]]:
    return [r for r in list(server.requests) if r[1].startswith(prefix)]


# -- listing ----------------------------------------------------------------------------------


def test_list_r2_expands_uri_and_md5(server: TestServer) -> None:
    url, folder = _bucket(server)
    listed = list_r2(url, _ctx(_settings()))
    by_path = {i.path: i for i in listed}
    assert set(by_path) == set(FILES)  # './config.json' lost its './'
    for rel, body in FILES.items():
        item = by_path[rel]
        assert item.url == server.url(f"{folder}/{quote(rel)}")
        assert item.size is None
        if rel == HASHLESS:
            assert item.checksum == Checksum.unpublished()
        else:
            assert item.checksum == Checksum("md5", hashlib.md5(body).hexdigest())
    assert by_path["checkpoint_pipe/unet/model index.json"].url.endswith("/model%20index.json")
    assert list_url(url, _ctx(_settings())) == listed  # dispatched by scheme


def test_listed_urls_download_and_match_their_md5(server: TestServer, tmp_path: Path) -> None:
    url, _ = _bucket(server)
    ctx = _ctx(_settings())
    for item in list_r2(url, ctx):
        spec = FileSpec(name=item.path, urls=(item.url,), checksum=item.checksum, size=item.size)
        sink = Sink(spec, tmp_path / f"{uuid.uuid4().hex}.part", item.path, NullProgress())
        fetch_http(item.url, sink, ctx)
        sink.close()
        got = sink.hexdigests()
        if item.checksum.known:
            assert got["md5"] == item.checksum.hex
        else:
            assert got["sha256"] == hashlib.sha256(FILES[item.path]).hexdigest()


def test_metadata_requests_are_retried(server: TestServer) -> None:
    url, _ = _bucket(server, fail_first=1, fail_status=503)
    assert len(list_r2(url, _ctx(_settings()))) == len(FILES)


def test_trailing_slash_and_crlf_are_tolerated(server: TestServer) -> None:
    bucket = f"/b{uuid.uuid4().hex[:10]}"
    server.add(f"{bucket}/d/x.bin", b"x")
    md5 = f"{hashlib.md5(b'x').hexdigest()}  x.bin\r\n"
    server.add(f"{bucket}/metadata/one.uri", (server.url(f"{bucket}/d") + "/\r\n").encode())
    server.add(f"{bucket}/metadata/one.md5", md5.encode())
    listed = list_r2(f"mlc-r2://127.0.0.1:{server.port}{bucket}/metadata/one.uri", _ctx(_settings()))
    assert [i.url for i in listed] == [server.url(f"{bucket}/d/x.bin")]


# -- through provision.api.fetch: a manifest folder entry ------------------------------------------


def test_fetch_folder_entry_pins_hashless_files(server: TestServer, write_manifest: ManifestWriter) -> None:
    url, folder = _bucket(server)
    write_manifest(
        "\n".join(
            [
                "schema = 1",
                "[[dataset]]",
                'name = "r2set"',
                'description = "an R2 folder"',
                "[[dataset.files]]",
                'name = "ds/"',
                f'urls = ["{url}"]',
                'checksum = "listed"',
            ]
        )
        + "\n",
        "r2set",
    )
    settings = _settings()
    report = api.fetch(["r2set"], settings)
    assert report.ok, [f.error for f in report.failures]
    root = Store(settings.cache_dir).artifact_dir("r2set")
    for rel, body in FILES.items():
        assert (root / "ds" / rel).read_bytes() == body
    lock = json.loads(settings.lock_path.read_text())
    text = json.dumps(lock)
    assert hashlib.sha256(FILES[HASHLESS]).hexdigest() in text  # pinned on first use
    # A second fetch needs neither the listing nor the files.
    bucket = folder.split("/inference/")[0]
    before = len(_requests_to(server, bucket))
    again = api.fetch(["r2set"], settings)
    assert again.ok and all(f.state == "cached" for f in again.files)
    assert len(_requests_to(server, bucket)) == before


# -- credentials and Cloudflare Access ----------------------------------------------------------------


def test_service_token_headers_reach_metadata_and_files(server: TestServer, tmp_path: Path) -> None:
    url, folder = _bucket(server)
    bucket = folder.split("/inference/")[0]
    env = {"PROVISION_R2_HOSTS": "127.0.0.1", "CF_ACCESS_CLIENT_ID": CLIENT_ID, "CF_ACCESS_CLIENT_SECRET": SECRET}
    ctx = _ctx(_settings(env))
    listed = list_r2(url, ctx)
    item = next(i for i in listed if i.path == "config.json")
    sink = Sink(FileSpec(item.path, (item.url,), item.checksum), tmp_path / "c.part", "c", NullProgress())
    fetch_http(item.url, sink, ctx)
    seen = {path.rsplit("/", 1)[-1]: headers for _m, path, headers in _requests_to(server, bucket)}
    for name in ("dataset-one.uri", "dataset-one.md5", "config.json"):
        assert seen[name].get("CF-Access-Client-Id") == CLIENT_ID
        assert seen[name].get("CF-Access-Client-Secret") == SECRET


def test_r2_token_is_sent_as_cf_access_token(server: TestServer) -> None:
    url, folder = _bucket(server)
    bucket = folder.split("/inference/")[0]
    list_r2(url, _ctx(_settings({"PROVISION_R2_HOSTS": "127.0.0.1", "PROVISION_R2_TOKEN": TOKEN})))
    reqs = _requests_to(server, bucket)
    assert len(reqs) == 2
    assert all(h.get("cf-access-token") == TOKEN for _m, _p, h in reqs)


def test_credentials_not_sent_to_other_hosts(server: TestServer) -> None:
    url, folder = _bucket(server)
    bucket = folder.split("/inference/")[0]
    list_r2(url, _ctx(_settings({"CF_ACCESS_CLIENT_ID": CLIENT_ID, "CF_ACCESS_CLIENT_SECRET": SECRET})))
    assert all("CF-Access-Client-Secret" not in h for _m, _p, h in _requests_to(server, bucket))


def _assert_access_message(message: str, *, refused: bool) -> None:
    assert "Cloudflare Access" in message and "MLCommons" in message
    assert "CF_ACCESS_CLIENT_ID" in message and "CF_ACCESS_CLIENT_SECRET" in message
    assert "PROVISION_R2_TOKEN" in message and "cloudflared access login" in message
    assert ("refused" in message) == refused
    assert "\n" not in message
    for secret in (SECRET, TOKEN, CLIENT_ID):
        assert secret not in message


@pytest.mark.parametrize(
    "route",
    [
        {"redirect_to": "/cdn-cgi/access/login/example?redirect_url=%2F"},
        {"redirect_to": "https://mlcommons.cloudflareaccess.com/cdn-cgi/access/login"},
        {"status": 403, "headers": {"cf-access-required": "true"}},
        {"status": 401, "headers": {"WWW-Authenticate": 'Bearer realm="CF_Authorization"'}},
        {"status": 403},  # a bare 403 on the metadata means the same for an R2 bucket
    ],
    ids=["login-redirect", "access-domain", "cf-access-required", "www-authenticate", "bare-403"],
)
def test_access_required_gives_one_clear_message(server: TestServer, route: dict[str, Any]) -> None:
    url, folder = _bucket(server, **route)
    bucket = folder.split("/inference/")[0]
    with pytest.raises(AttemptFailed) as info:
        list_r2(url, _ctx(_settings()))
    _assert_access_message(info.value.answer, refused=False)
    assert "PROVISION_R2_HOSTS" in info.value.answer  # 127.0.0.1 is not an mlcommons-storage.org host
    reqs = _requests_to(server, bucket)
    assert [p.rsplit("/", 1)[-1] for _m, p, _h in reqs] == ["dataset-one.uri"]  # nothing followed, no retry


@pytest.mark.parametrize(
    "env",
    [
        {"CF_ACCESS_CLIENT_ID": CLIENT_ID, "CF_ACCESS_CLIENT_SECRET": SECRET},
        {"PROVISION_R2_TOKEN": TOKEN},
    ],
    ids=["service-token", "r2-token"],
)
def test_refused_credentials_are_said_refused_without_their_values(
    server: TestServer, env: dict[str, str], tmp_path: Path
) -> None:
    settings = _settings({"PROVISION_R2_HOSTS": "127.0.0.1", **env})
    url, _ = _bucket(server, status=403)
    with pytest.raises(AttemptFailed) as info:
        list_r2(url, _ctx(settings))
    _assert_access_message(info.value.answer, refused=True)
    assert ("CF_ACCESS_CLIENT_SECRET) was sent" in info.value.answer) == ("CF_ACCESS_CLIENT_ID" in env)
    # A data file refused the same way (through the HTTP engine).
    path = f"/b{uuid.uuid4().hex[:10]}/data/x.bin"
    file_url = server.add(path, b"x", status=403)
    sink = Sink(FileSpec("x.bin", (file_url,), Checksum.unpublished()), tmp_path / "x.part", "x", NullProgress())
    with pytest.raises(AttemptFailed) as info:
        fetch_http(file_url, sink, _ctx(settings))
    _assert_access_message(info.value.answer, refused=True)


def test_file_download_redirected_to_access_login(server: TestServer, tmp_path: Path) -> None:
    path = f"/b{uuid.uuid4().hex[:10]}/data/x.bin"
    file_url = server.add(path, redirect_to="https://mlcommons.cloudflareaccess.com/cdn-cgi/access/login?x=1")
    sink = Sink(FileSpec("x.bin", (file_url,), Checksum.unpublished()), tmp_path / "x.part", "x", NullProgress())
    with pytest.raises(AttemptFailed) as info:
        fetch_http(file_url, sink, _ctx(_settings()))
    _assert_access_message(info.value.answer, refused=False)
    assert f"cloudflared access login {file_url}" in info.value.answer


def test_plain_403_without_credentials_stays_a_plain_http_error(server: TestServer, tmp_path: Path) -> None:
    file_url = server.add(f"/b{uuid.uuid4().hex[:10]}/x.bin", b"x", status=403)
    sink = Sink(FileSpec("x.bin", (file_url,), Checksum.unpublished()), tmp_path / "x.part", "x", NullProgress())
    with pytest.raises(AttemptFailed, match=r"^HTTP 403"):
        fetch_http(file_url, sink, _ctx(_settings()))


# -- malformed metadata ---------------------------------------------------------------------------------

H = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("md5_text", "expected"),
    [
        (f"{H}  a.bin\nnot a line\n", r"line 2: expected '<32 hex md5>  <path>'"),
        (f"{H[:-1]}  a.bin\n", r"line 1: expected"),
        (f"{H}  ../etc/passwd\n", r"line 1: unsafe path '\.\./etc/passwd'"),
        (f"{H}  sub/../../x\n", r"line 1: unsafe path"),
        (f"{H}  /etc/passwd\n", r"line 1: unsafe path '/etc/passwd'"),
        (f"{H}  a//b\n", r"line 1: unsafe path"),
        (f"{H}  a.bin\n{H}  ./a.bin\n", r"line 2: 'a\.bin' is listed twice \(also line 1\)"),
        (f"{H}  a\n{H}  a/b\n", r"line 2: 'a/b' lies inside 'a', which line 1 lists as a file"),
        ("", r"names no files"),
        ("\n\n", r"names no files"),
    ],
    ids=[
        "garbage",
        "short-hash",
        "dotdot",
        "inner-dotdot",
        "absolute",
        "empty-part",
        "duplicate",
        "file-dir",
        "empty",
        "blank",
    ],
)
def test_bad_md5_lists_are_refused(server: TestServer, md5_text: str, expected: str) -> None:
    url, _ = _bucket(server, {"a.bin": b"a"}, md5_text=md5_text)
    with pytest.raises(AttemptFailed, match=expected) as info:
        list_r2(url, _ctx(_settings()))
    assert "dataset-one.md5" in info.value.answer and "\n" not in info.value.answer


@pytest.mark.parametrize(
    ("uri_text", "expected"),
    [
        ("garbage\n", r"does not hold an absolute https folder URL \(got 'garbage'\)"),
        ("", r"expected one line holding the folder URL, got nothing"),
        ("https://a.example/x\nhttps://b.example/y\n", r"got 2 lines"),
        ("<!doctype html><html>login</html>", r"an HTML page"),
        ("ftp://a.example/x\n", r"absolute https folder URL"),
        ("https://a.example/x?sig=1\n", r"absolute https folder URL"),
        ("http://a.example/x\n", r"plain-http folder"),
    ],
    ids=["garbage", "empty", "two-lines", "html", "ftp", "query", "plain-http"],
)
def test_bad_uri_files_are_refused(server: TestServer, uri_text: str, expected: str) -> None:
    url, _ = _bucket(server, {"a.bin": b"a"}, uri_text=uri_text)
    with pytest.raises(AttemptFailed, match=expected) as info:
        list_r2(url, _ctx(_settings()))
    assert "dataset-one.uri" in info.value.answer


def test_missing_metadata_names_the_file(server: TestServer) -> None:
    url = f"mlc-r2://127.0.0.1:{server.port}/nowhere-{uuid.uuid4().hex[:8]}/metadata/x.uri"
    with pytest.raises(AttemptFailed, match=r"x\.uri: HTTP 404 .*no such R2 metadata file"):
        list_r2(url, _ctx(_settings()))


@pytest.mark.parametrize(
    "url",
    [
        "mlc-r2://inference.mlcommons-storage.org/metadata/x.md5",
        "mlc-r2://inference.mlcommons-storage.org/metadata/",
        "mlc-r2:///metadata/x.uri",
        "mlc-r2://user:pw@inference.mlcommons-storage.org/metadata/x.uri",
        "mlc-r2://inference.mlcommons-storage.org/metadata/x.uri?a=1",
        "https://inference.mlcommons-storage.org/metadata/x.uri",
    ],
)
def test_url_form_is_checked(url: str) -> None:
    with pytest.raises(AttemptFailed, match=r"mlc-r2://<host>/metadata/<name>\.uri"):
        list_r2(url, _ctx(_settings()))


def test_metadata_urls_use_https_except_on_loopback() -> None:
    assert r2_metadata_urls("mlc-r2://inference.mlcommons-storage.org/metadata/llama.uri") == (
        "https://inference.mlcommons-storage.org/metadata/llama.uri",
        "https://inference.mlcommons-storage.org/metadata/llama.md5",
    )
    assert r2_metadata_urls("mlc-r2://example.org:8443/a/b.uri")[0] == "https://example.org:8443/a/b.uri"
    assert r2_metadata_urls("mlc-r2://localhost:9/m/x.uri")[1] == "http://localhost:9/m/x.md5"
    assert r2_metadata_urls("mlc-r2://[::1]:9/m/x.uri")[0] == "http://[::1]:9/m/x.uri"


def test_parsers_directly() -> None:
    assert parse_base("https://inference.mlcommons-storage.org/stable_diffusion_fp16/\n", "u") == (
        "https://inference.mlcommons-storage.org/stable_diffusion_fp16"
    )
    text = f"{H}  ./a/b.json\n{' ' * 34}a/c.safetensors\n{H.upper()} *bin.dat\n"
    assert parse_md5_list(text, "u") == [
        ("a/b.json", Checksum("md5", H)),
        ("a/c.safetensors", Checksum.unpublished()),
        ("bin.dat", Checksum("md5", H)),
    ]


def test_offline_makes_no_request(server: TestServer) -> None:
    url, folder = _bucket(server)
    bucket = folder.split("/inference/")[0]
    with pytest.raises(AttemptFailed) as info:
        list_r2(url, _ctx(_settings(offline=True)))
    assert isinstance(info.value, OfflineFailure) and "PROVISION_OFFLINE=1" in info.value.answer
    assert _requests_to(server, bucket) == []


# -- what the manifest knows of a folder before listing it: rounded sizes, pins, the line count ------


def _folder_manifest(write_manifest: ManifestWriter, url: str, *extra: str) -> None:
    lines = ["schema = 1", "[[dataset]]", 'name = "r2set"', 'description = "an R2 folder"', "[[dataset.files]]"]
    lines += ['name = "ds/"', f'urls = ["{url}"]', 'checksum = "listed"', *extra]
    write_manifest("\n".join(lines) + "\n", "r2set")


def test_planned_space_refuses_before_any_request(server: TestServer, write_manifest: ManifestWriter) -> None:
    url, folder = _bucket(server)
    _folder_manifest(write_manifest, url, 'approx_size = "1000 TB"')
    bucket = folder.split("/inference/")[0]
    settings = _settings()
    with pytest.raises(DiskSpaceError) as info:
        api.fetch(["r2set"], settings)
    message = str(info.value)
    assert f"r2set need download ~{human_bytes(10**15)} (estimated from the sources' rounded sizes)" in message
    assert "nothing was downloaded" in message and "\n" not in message
    assert _requests_to(server, bucket) == []  # not even the listing
    assert not settings.lock_path.exists() or "r2set" not in settings.lock_path.read_text()
    show = api.describe("r2set", settings)
    planned = show["planned"]
    assert (planned["exact"], planned["estimated"], planned["unknown"]) == (0, 10**15, 0)
    assert planned["summary"] == f"download ~{human_bytes(10**15)} (estimated from the sources' rounded sizes)"


def test_an_estimate_that_fits_fetches_and_is_then_spent(server: TestServer, write_manifest: ManifestWriter) -> None:
    url, _ = _bucket(server)
    _folder_manifest(write_manifest, url, 'approx_size = "300 kB"')
    settings = _settings()
    assert api.describe("r2set", settings)["planned"]["estimated"] == 300_000
    report = api.fetch(["r2set"], settings)
    assert report.ok, [f.error for f in report.failures]
    # Everything is cached: nothing left to plan for (the estimate is not counted again).
    planned = api.describe("r2set", settings)["planned"]
    assert (planned["exact"], planned["estimated"], planned["unknown"], planned["summary"]) == (0, 0, 0, "download 0 B")


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ('pins = { "config.json" = "md5:00000000000000000000000000000000" }', "the listing gives 'config.json'"),
        ('pins = { "absent.bin" = "md5:00000000000000000000000000000000" }', "the listing has no 'absent.bin'"),
        ("listed_count = 5", "the listing names 4 files, the manifest expects 5"),
    ],
    ids=["wrong-pin", "missing-pin", "count"],
)
def test_a_listing_that_contradicts_the_manifest_is_refused(
    server: TestServer, write_manifest: ManifestWriter, extra: str, why: str
) -> None:
    url, folder = _bucket(server)
    _folder_manifest(write_manifest, url, extra)
    settings = _settings()
    report = api.fetch(["r2set"], settings)
    assert not report.ok
    (failure,) = report.failures
    assert why in (failure.error or "")
    assert all(r[1].endswith((".uri", ".md5")) for r in _requests_to(server, folder.split("/inference/")[0]))
    assert not _requests_to(server, folder)  # no data file was asked for
    assert not settings.lock_path.exists() or "r2set" not in settings.lock_path.read_text()  # nothing pinned


def test_a_listing_that_agrees_with_pins_and_count_is_fetched(
    server: TestServer, write_manifest: ManifestWriter
) -> None:
    url, _ = _bucket(server)
    pin = hashlib.md5(FILES["data/part-0.npz"]).hexdigest()
    _folder_manifest(write_manifest, url, "listed_count = 4", f'pins = {{ "data/part-0.npz" = "md5:{pin}" }}')
    report = api.fetch(["r2set"], _settings())
    assert report.ok, [f.error for f in report.failures]


def test_doctor_states_the_estimate_and_fails_when_it_cannot_fit(
    server: TestServer, write_manifest: ManifestWriter
) -> None:
    url, _ = _bucket(server)
    _folder_manifest(write_manifest, url, 'approx_size = "1000 TB"')
    report = api.doctor("r2set", _settings(), network=False)
    (disk,) = [c for c in report.checks if c.name == "disk"]
    assert disk.status == "fail" and not report.ok
    assert f"r2set needs ~{human_bytes(10**15)} more (download ~{human_bytes(10**15)} (estimated" in disk.detail
