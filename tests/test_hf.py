"""The Hugging Face Hub source against a fake Hub on 127.0.0.1 (tests/fakehub.py).

Every failure ``huggingface_hub`` can raise ends as a one-line AttemptFailed; a token is
sent as a bearer token and never shows in an answer; a file with no manifest checksum is
still held to the Hub's own LFS sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ManifestWriter
from fakehub import FakeHub

from provision import api
from provision.config import Settings
from provision.errors import EXIT_INTEGRITY
from provision.fsutil import temp_name
from provision.manifest.checksum import Checksum
from provision.manifest.model import FileSpec
from provision.progress import NullProgress
from provision.sources.base import (
    AccessFailure,
    AttemptFailed,
    ConnectionFailure,
    IntegrityFailure,
    OfflineFailure,
    SourceContext,
    StatusFailure,
)
from provision.sources.hf import fetch_hf, hub_sha256, list_hf, parse_hf_url
from provision.sources.partial import Sink
from provision.sources.schemes import fetch_url, list_url
from provision.store.cache import Store

TOKEN = "hf_TestSecretToken0123456789"
WEIGHTS = os.urandom(300_000)
CONFIG = b'{"hidden_size": 8}\n'


@pytest.fixture(scope="session")
def _hub_server() -> Iterator[FakeHub]:
    hub = FakeHub()
    yield hub
    hub.close()


@pytest.fixture
def hub(_hub_server: FakeHub) -> Iterator[FakeHub]:
    """The fake Hub, emptied for this test."""
    _hub_server.reset()
    yield _hub_server
    _hub_server.reset()


@pytest.fixture
def hs(settings: Settings, hub: FakeHub) -> Settings:
    """Settings pointing HF_ENDPOINT at the fake Hub (no token)."""
    return settings.with_(hf_endpoint=hub.endpoint, retries=2)


def _ctx(settings: Settings) -> SourceContext:
    return SourceContext(settings)


def _sink(tmp_path: Path, name: str, checksum: Checksum | None = None, size: int | None = None) -> Sink:
    spec = FileSpec(name=name, urls=("hf://x/y@main/z",), checksum=checksum or Checksum.unpublished(), size=size)
    dest = temp_name(tmp_path / "blobs" / "blob")
    return Sink(spec, dest, f"t/{name}", NullProgress())


def _fetch(url: str, settings: Settings, tmp_path: Path, **spec: object) -> Sink:
    sink = _sink(tmp_path, url.rsplit("/", 1)[-1], **spec)  # type: ignore[arg-type]
    fetch_hf(url, sink, _ctx(settings))
    sink.close()
    return sink


def _failure(url: str, settings: Settings, tmp_path: Path, **spec: object) -> AttemptFailed:
    with pytest.raises(AttemptFailed) as info:
        _fetch(url, settings, tmp_path, **spec)
    return info.value


def _paths(hub: FakeHub, method: str | None = None) -> list[str]:
    return [p.split("?")[0] for m, p, _ in hub.requests if method is None or m == method]


def _auth(headers: dict[str, str]) -> str | None:
    """The Authorization header a request carried (any case)."""
    return next((v for k, v in headers.items() if k.lower() == "authorization"), None)


def _model(hub: FakeHub, repo_id: str = "org/model", **kw: object) -> str:
    files = {"model.safetensors": WEIGHTS, "config.json": CONFIG, "onnx/model.onnx": b"onnx" * 100}
    return hub.add_repo(repo_id, files, **kw)  # type: ignore[arg-type]


# -- URLs -------------------------------------------------------------------------------------


def test_parse_hf_url_forms() -> None:
    ref = parse_hf_url("hf://meta-llama/Llama-2-7b-hf@" + "a" * 40 + "/sub/model.safetensors")
    assert (ref.repo_type, ref.repo_id, ref.revision, ref.path) == (
        "model",
        "meta-llama/Llama-2-7b-hf",
        "a" * 40,
        "sub/model.safetensors",
    )
    assert ref.is_commit
    ds = parse_hf_url("hf-dataset://org/squad_v2.0@v1.0/data/dev.parquet")
    assert (ds.repo_type, ds.repo_id, ds.revision, ds.path) == ("dataset", "org/squad_v2.0", "v1.0", "data/dev.parquet")
    pr = parse_hf_url("hf://org/repo@refs%2Fpr%2F1/a.bin")
    assert pr.revision == "refs/pr/1" and pr.url() == "hf://org/repo@refs%2Fpr%2F1/a.bin"
    assert parse_hf_url("hf://org/repo@main/", listing=True).path == ""


@pytest.mark.parametrize(
    "url",
    [
        "hf://org/repo/model.bin",  # no revision
        "hf://repo@main/model.bin",  # no org
        "hf://a/b/c@main/model.bin",  # three parts
        "hf://org/repo@main",  # no path
        "hf://org/repo@/model.bin",  # empty revision
        "hf://org/re po@main/x",  # bad name
        "hf://org/repo@main/../etc/passwd",
        "hf://org/repo@main/a//b",
        "hf://org/repo@main/*.bin",  # a pattern is for listing only
        "hf-model://org/repo@main/x",
    ],
)
def test_malformed_urls_say_the_expected_form(url: str, hs: Settings, tmp_path: Path, hub: FakeHub) -> None:
    failed = _failure(url, hs, tmp_path)
    assert "hf://<org>/<repo>@<revision>/<path>" in failed.answer and "\n" not in failed.answer
    assert not hub.requests


# -- downloads --------------------------------------------------------------------------------


def test_model_file_download_lands_in_the_sink(hs: Settings, hub: FakeHub, tmp_path: Path) -> None:
    commit = _model(hub)
    sink = _fetch("hf://org/model@main/model.safetensors", hs, tmp_path)
    assert sink.dest.read_bytes() == WEIGHTS
    assert sink.hexdigests()["sha256"] == hashlib.sha256(WEIGHTS).hexdigest()
    assert sink.written == len(WEIGHTS)
    # Only the sink's file is left beside it (the download folder is gone).
    assert sorted(p.name for p in sink.dest.parent.iterdir()) == [sink.dest.name]
    # Metadata asked at the branch, the bytes fetched at the commit it resolved to.
    assert _paths(hub, "HEAD")[0] == "/org/model/resolve/main/model.safetensors"
    assert _paths(hub, "GET") == [f"/org/model/resolve/{commit}/model.safetensors"]
    assert all(_auth(h) is None for _, _, h in hub.requests)
    agents = {v for _, _, h in hub.requests for k, v in h.items() if k.lower() == "user-agent"}
    assert agents and all(a.startswith("provision/") and "provision/None" not in a for a in agents)


def test_nested_file_by_tag_and_by_commit(hs: Settings, hub: FakeHub, tmp_path: Path) -> None:
    commit = _model(hub, tags=("v1.0",))
    assert _fetch("hf://org/model@v1.0/onnx/model.onnx", hs, tmp_path).dest.read_bytes() == b"onnx" * 100
    sink = _fetch(f"hf://org/model@{commit}/config.json", hs, tmp_path / "2")
    assert sink.dest.read_bytes() == CONFIG


def test_dataset_file_download(hs: Settings, hub: FakeHub, tmp_path: Path) -> None:
    body = b"id,text\n" + os.urandom(5000)
    commit = hub.add_repo("org/squad", {"data/dev.parquet": body}, repo_type="dataset")
    sink = _fetch("hf-dataset://org/squad@main/data/dev.parquet", hs, tmp_path)
    assert sink.dest.read_bytes() == body
    assert f"/datasets/org/squad/resolve/{commit}/data/dev.parquet" in _paths(hub, "GET")
    # The same path as a model repo does not exist.
    failed = _failure("hf://org/squad@main/data/dev.parquet", hs, tmp_path / "m")
    assert "model repository org/squad not found" in failed.answer


def test_fetch_url_dispatches_both_schemes(hs: Settings, hub: FakeHub, tmp_path: Path) -> None:
    _model(hub)
    hub.add_repo("org/ds", {"a.txt": b"hello\n"}, repo_type="dataset")
    for url, body in (("hf://org/model@main/config.json", CONFIG), ("hf-dataset://org/ds@main/a.txt", b"hello\n")):
        sink = _sink(tmp_path / url[:2], "f")
        fetch_url(url, sink, _ctx(hs))
        sink.close()
        assert sink.dest.read_bytes() == body


def test_hub_sha256_is_the_lfs_etag(hs: Settings, hub: FakeHub) -> None:
    _model(hub)
    ctx = _ctx(hs)
    assert hub_sha256("hf://org/model@main/model.safetensors", ctx) == hashlib.sha256(WEIGHTS).hexdigest()
    assert hub_sha256("hf://org/model@main/config.json", ctx) is None  # a git file: its ETag is a sha1


# -- access -----------------------------------------------------------------------------------


def test_gated_repo_without_token_says_how_to_get_access(hs: Settings, hub: FakeHub, tmp_path: Path) -> None:
    _model(hub, "meta-llama/Gated", gated=True, tokens=(TOKEN,))
    failed = _failure("hf://meta-llama/Gated@main/config.json", hs, tmp_path)
    answer = failed.answer
    assert "gated" in answer and "HTTP 401" in answer and "HF_TOKEN is not set" in answer
    assert f"accept the licence on {hub.endpoint}/meta-llama/Gated while logged in" in answer
    assert f"{hub.endpoint}/settings/tokens" in answer and "export HF_TOKEN" in answer
    assert "\n" not in answer and isinstance(failed, AccessFailure)
    assert all(_auth(h) is None for _, _, h in hub.requests)


def test_gated_repo_with_refused_token(hs: Settings, hub: FakeHub, tmp_path: Path) -> None:
    _model(hub, "meta-llama/Gated", gated=True, tokens=("hf_someone_else",))
    failed = _failure("hf://meta-llama/Gated@main/config.json", hs.with_(hf_token=TOKEN), tmp_path)
    assert "HTTP 403" in failed.answer and "refused the token in HF_TOKEN" in failed.answer
    assert "accept the licence on" in failed.answer and "settings/tokens" in failed.answer
    assert TOKEN not in failed.answer and TOKEN not in str(failed)
    sent = [_auth(h) for _, _, h in hub.requests]
    assert sent and all(a == f"Bearer {TOKEN}" for a in sent)


def test_gated_dataset_points_at_the_dataset_page(hs: Settings, hub: FakeHub, tmp_path: Path) -> None:
    hub.add_repo("org/private-ds", {"a.txt": b"x"}, repo_type="dataset", gated=True)
    failed = _failure("hf-dataset://org/private-ds@main/a.txt", hs, tmp_path)
    assert f"{hub.endpoint}/datasets/org/private-ds" in failed.answer


def test_gated_repo_with_granted_token_downloads(hs: Settings, hub: FakeHub, tmp_path: Path) -> None:
    _model(hub, "meta-llama/Gated", gated=True, tokens=(TOKEN,))
    sink = _fetch("hf://meta-llama/Gated@main/model.safetensors", hs.with_(hf_token=TOKEN), tmp_path)
    assert sink.dest.read_bytes() == WEIGHTS
    assert {_auth(h) for _, _, h in hub.requests} == {f"Bearer {TOKEN}"}


@pytest.mark.parametrize("status", [401, 403])
def test_plain_401_403_say_how_to_get_access(status: int, hs: Settings, hub: FakeHub, tmp_path: Path) -> None:
    _model(hub)
    hub.fail_status = status  # no X-Error-Code: e.g. an invalid token, or a proxy refusing
    failed = _failure("hf://org/model@main/config.json", hs.with_(hf_token=TOKEN), tmp_path)
    assert f"HTTP {status}" in failed.answer and "settings/tokens" in failed.answer and "HF_TOKEN" in failed.answer
    assert TOKEN not in failed.answer


# -- not found / server errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("hf://org/missing@main/config.json", "model repository org/missing not found on"),
        ("hf://org/model@no-such-branch/config.json", "revision 'no-such-branch' not found in model repository"),
        ("hf://org/model@main/nope.bin", "'nope.bin' not found in model repository org/model@main"),
        ("hf-dataset://org/model@main/config.json", "dataset repository org/model not found"),
    ],
)
def test_not_found_says_which(url: str, expected: str, hs: Settings, hub: FakeHub, tmp_path: Path) -> None:
    _model(hub)
    failed = _failure(url, hs, tmp_path)
    assert expected in failed.answer, failed.answer
    assert "HTTP 404" in failed.answer and "\n" not in failed.answer
    assert len(hub.requests) == 1  # a definite answer is not retried


@pytest.mark.parametrize("fault", ["500", "drop"])
def test_server_errors_end_as_attempt_failed(fault: str, hs: Settings, hub: FakeHub, tmp_path: Path) -> None:
    _model(hub)
    if fault == "drop":
        hub.drop = True
    else:
        hub.fail_status = 500
    settings = hs.with_(hf_token=TOKEN)
    ctx = _ctx(settings)
    for call in (
        lambda: fetch_hf("hf://org/model@main/config.json", _sink(tmp_path, "c"), ctx),
        lambda: hub_sha256("hf://org/model@main/config.json", ctx),
        lambda: list_hf("hf://org/model@main/*.json", ctx),
    ):
        hub.requests.clear()
        with pytest.raises(Exception) as info:
            call()
        exc = info.value
        # Not a huggingface_hub / httpx exception: ours, of the kind that happened.
        kind = StatusFailure if fault == "500" else ConnectionFailure
        assert type(exc) is kind, repr(exc)
        assert exc.__cause__ is None and not isinstance(exc, IntegrityFailure)
        expected = "HTTP 500" if fault == "500" else "cannot reach the Hub"
        assert expected in exc.answer and "gave up after 3 tries" in exc.answer, exc.answer
        assert TOKEN not in exc.answer and "\n" not in exc.answer
        assert len(hub.requests) == 3  # retries = 2
        assert fault != "500" or exc.status == 500


def test_transient_error_then_success(hs: Settings, hub: FakeHub, tmp_path: Path) -> None:
    _model(hub)
    hub.fail_status = 503
    seen: list[str] = []

    class Notes(NullProgress):
        def retry(self, key: str, url: str, text: str) -> None:
            seen.append(text)
            hub.fail_status = None  # the Hub recovers before the retry

    sink = _sink(tmp_path, "config.json")
    fetch_hf("hf://org/model@main/config.json", sink, SourceContext(hs, progress=Notes()))
    sink.close()
    assert sink.dest.read_bytes() == CONFIG
    assert len(seen) == 1 and "HTTP 503" in seen[0] and "retry in" in seen[0]


# -- integrity --------------------------------------------------------------------------------


def test_lfs_sha256_mismatch_is_an_integrity_failure(hs: Settings, hub: FakeHub, tmp_path: Path) -> None:
    _model(hub)
    wrong = hashlib.sha256(b"something else").hexdigest()
    hub.repo("org/model").lie_sha256["model.safetensors"] = wrong
    failed = _failure("hf://org/model@main/model.safetensors", hs, tmp_path)
    assert isinstance(failed, IntegrityFailure) and "checksum mismatch" in failed.answer
    assert f"sha256:{wrong}" in failed.answer and hashlib.sha256(WEIGHTS).hexdigest() in failed.answer


def test_published_manifest_checksum_is_left_to_the_caller(hs: Settings, hub: FakeHub, tmp_path: Path) -> None:
    _model(hub)
    hub.repo("org/model").lie_sha256["model.safetensors"] = "0" * 64
    md5 = Checksum.parse("md5:" + hashlib.md5(WEIGHTS).hexdigest())
    sink = _fetch("hf://org/model@main/model.safetensors", hs, tmp_path, checksum=md5)
    assert sink.hexdigests()["md5"] == md5.hex


def test_size_mismatch_fails_before_downloading(hs: Settings, hub: FakeHub, tmp_path: Path) -> None:
    _model(hub)
    failed = _failure("hf://org/model@main/model.safetensors", hs, tmp_path, size=len(WEIGHTS) + 1)
    assert isinstance(failed, IntegrityFailure) and "size mismatch" in failed.answer
    assert not _paths(hub, "GET")


def test_offline_touches_nothing(hs: Settings, hub: FakeHub, tmp_path: Path) -> None:
    _model(hub)
    ctx = _ctx(hs.with_(offline=True))
    for call in (
        lambda: fetch_hf("hf://org/model@main/config.json", _sink(tmp_path, "c"), ctx),
        lambda: hub_sha256("hf://org/model@main/config.json", ctx),
        lambda: list_hf("hf://org/model@main/*.json", ctx),
    ):
        with pytest.raises(AttemptFailed) as info:
            call()
        assert isinstance(info.value, OfflineFailure) and info.value.answer == "not tried: PROVISION_OFFLINE=1"
    assert not hub.requests


def test_cancel_stops_the_transfer(hs: Settings, hub: FakeHub, tmp_path: Path) -> None:
    _model(hub)
    ctx = _ctx(hs)
    ctx.cancel.set()
    with pytest.raises(KeyboardInterrupt):
        fetch_hf("hf://org/model@main/config.json", _sink(tmp_path, "c"), ctx)


# -- listing ----------------------------------------------------------------------------------


def _listing_repo(hub: FakeHub) -> str:
    files = {
        "model-00001-of-00002.safetensors": b"a" * 100,
        "model-00002-of-00002.safetensors": b"b" * 50,
        "model.safetensors.index.json": b"{}",
        "tokenizer.json": b'{"tok": 1}',
        "tokenizer_config.json": b"{}",
        "README.md": b"# card\n",
        "onnx/model.onnx": b"o" * 64,
        "onnx/sub/extra.onnx": b"e" * 8,
        "sub/model.safetensors": b"s" * 10,
    }
    return hub.add_repo("org/big", files, tags=("v2",))


def test_listing_a_glob_resolves_the_branch_and_gives_sha256(hs: Settings, hub: FakeHub) -> None:
    commit = _listing_repo(hub)
    items = list_hf("hf://org/big@main/*.safetensors", _ctx(hs))
    assert [i.path for i in items] == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    first = items[0]
    assert first.url == f"hf://org/big@{commit}/model-00001-of-00002.safetensors"
    assert first.checksum == Checksum("sha256", hashlib.sha256(b"a" * 100).hexdigest())
    assert first.size == 100 and items[1].size == 50
    assert "/api/models/org/big/revision/main" in _paths(hub)
    assert f"/api/models/org/big/tree/{commit}" in _paths(hub)


def test_listing_patterns(hs: Settings, hub: FakeHub) -> None:
    commit = _listing_repo(hub)
    ctx = _ctx(hs)
    tok = list_hf("hf://org/big@v2/tokenizer*", ctx)
    assert [i.path for i in tok] == ["tokenizer.json", "tokenizer_config.json"]
    assert all(not i.checksum.known and i.size for i in tok)  # git files: no published sha256
    onnx = list_hf(f"hf://org/big@{commit}/onnx/*.onnx", ctx)
    assert [(i.path, i.url) for i in onnx] == [("model.onnx", f"hf://org/big@{commit}/onnx/model.onnx")]
    deep = list_hf("hf://org/big@main/onnx/**", ctx)
    assert [i.path for i in deep] == ["model.onnx", "sub/extra.onnx"]
    assert [i.path for i in list_hf("hf://org/big@main/onnx", ctx)] == ["model.onnx", "sub/extra.onnx"]
    everything = list_hf("hf://org/big@main/**", ctx)
    assert len(everything) == 9 and "sub/model.safetensors" in [i.path for i in everything]
    assert [i.path for i in list_hf("hf://org/big@main/**/*.onnx", ctx)] == ["onnx/model.onnx", "onnx/sub/extra.onnx"]


def test_listing_is_pinned_to_the_commit_and_fetchable(hs: Settings, hub: FakeHub, tmp_path: Path) -> None:
    old = _listing_repo(hub)
    ctx = _ctx(hs)
    items = list_url("hf://org/big@main/*.safetensors", ctx)
    hub.add_repo("org/big", {"model-00001-of-00002.safetensors": b"new"})  # main moves on
    sink = _sink(tmp_path, "shard", checksum=items[0].checksum)
    fetch_url(items[0].url, sink, ctx)
    sink.close()
    assert sink.dest.read_bytes() == b"a" * 100 and old in items[0].url
    assert list_hf("hf://org/big@main/*.safetensors", ctx)[0].checksum.hex == hashlib.sha256(b"new").hexdigest()


def test_listing_a_dataset(hs: Settings, hub: FakeHub) -> None:
    commit = hub.add_repo(
        "org/ds", {"data/train.parquet": b"t" * 30, "data/dev.parquet": b"d" * 20}, repo_type="dataset"
    )
    items = list_hf("hf-dataset://org/ds@main/data/*.parquet", _ctx(hs))
    assert [(i.path, i.url) for i in items] == [
        ("dev.parquet", f"hf-dataset://org/ds@{commit}/data/dev.parquet"),
        ("train.parquet", f"hf-dataset://org/ds@{commit}/data/train.parquet"),
    ]
    assert "/api/datasets/org/ds/revision/main" in _paths(hub)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("hf://org/big@main/*.gguf", "no file of model repository org/big@main matches '*.gguf'"),
        ("hf://org/big@main/nothere/*.bin", "'nothere' not found"),
        ("hf://org/big@nope/*.bin", "revision 'nope' not found"),
        ("hf://org/none@main/*.bin", "model repository org/none not found"),
    ],
)
def test_listing_failures(url: str, expected: str, hs: Settings, hub: FakeHub) -> None:
    _listing_repo(hub)
    with pytest.raises(AttemptFailed) as info:
        list_hf(url, _ctx(hs))
    assert expected in info.value.answer, info.value.answer


def test_listing_a_gated_repo_without_token(hs: Settings, hub: FakeHub) -> None:
    hub.add_repo("org/gated", {"a.safetensors": b"x"}, gated=True, tokens=(TOKEN,))
    with pytest.raises(AttemptFailed) as info:
        list_hf("hf://org/gated@main/*.safetensors", _ctx(hs))
    assert "accept the licence on" in info.value.answer
    assert [i.path for i in list_hf("hf://org/gated@main/*.safetensors", _ctx(hs.with_(hf_token=TOKEN)))] == [
        "a.safetensors"
    ]


# -- end to end -------------------------------------------------------------------------------


def _hf_manifest(name: str, url: str) -> str:
    return (
        "schema = 1\n[[model]]\n"
        f'name = "{name}"\ndescription = "test model"\nformat = "other"\n[[model.files]]\n'
        f'name = "model.safetensors"\nurls = ["{url}"]\nchecksum = "unpublished"\n'
        'trust = "the Hub publishes the LFS sha256; pinned on first fetch"\n'
    )


def test_end_to_end_fetch_pins_the_hub_file(
    hs: Settings, hub: FakeHub, write_manifest: ManifestWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit = _model(hub)
    url = f"hf://org/model@{commit}/model.safetensors"
    write_manifest(_hf_manifest("hfmodel", url), "hfmodel")
    report = api.fetch(["hfmodel"], hs)
    assert report.ok, report.failures
    view = Store(hs.cache_dir).artifact_dir("hfmodel") / "model.safetensors"
    assert view.read_bytes() == WEIGHTS
    assert report.files[0].source == url
    pins = json.loads(hs.lock_path.read_text())["files"]
    assert pins["hfmodel/model.safetensors"]["checksum"] == "sha256:" + hashlib.sha256(WEIGHTS).hexdigest()
    assert pins["hfmodel/model.safetensors"]["size"] == len(WEIGHTS)
    assert pins["hfmodel/model.safetensors"]["url"] == url
    assert api.verify(["hfmodel"], hs).ok
    # Served from the cache afterwards, with no further request to the Hub.
    hub.requests.clear()
    assert [f.state for f in api.fetch(["hfmodel"], hs).files] == ["cached"]
    assert not hub.requests
    # No download folders left in the cache.
    assert not [p for p in hs.cache_dir.rglob("*") if ".hf" in p.name]


def test_end_to_end_lfs_mismatch_pins_nothing(hs: Settings, hub: FakeHub, write_manifest: ManifestWriter) -> None:
    _model(hub)
    hub.repo("org/model").lie_sha256["model.safetensors"] = "1" * 64
    write_manifest(_hf_manifest("liar", "hf://org/model@main/model.safetensors"), "liar")
    report = api.fetch(["liar"], hs)
    assert not report.ok and report.exit_code == EXIT_INTEGRITY
    assert "checksum mismatch" in report.failures[0].error
    assert not hs.lock_path.exists() or "liar/" not in hs.lock_path.read_text()
    assert not (Store(hs.cache_dir).artifact_dir("liar") / "model.safetensors").exists()


def test_end_to_end_gated_failure_is_one_clear_line(hs: Settings, hub: FakeHub, write_manifest: ManifestWriter) -> None:
    _model(hub, "meta-llama/Gated", gated=True, tokens=(TOKEN,))
    write_manifest(_hf_manifest("gated", "hf://meta-llama/Gated@main/model.safetensors"), "gated")
    report = api.fetch(["gated"], hs.with_(hf_token="hf_wrong_token_value"))
    assert not report.ok
    error = report.failures[0].error
    assert "accept the licence on" in error and "hf_wrong_token_value" not in error
