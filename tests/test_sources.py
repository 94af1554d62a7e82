"""provision.sources: the verifying Sink, local files, --from candidates, HTTP."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import pytest
from httpserver import TestServer, md5

from provision.config import Settings
from provision.fsutil import link_or_copy, temp_name
from provision.manifest.checksum import Checksum
from provision.manifest.model import FileSpec
from provision.progress import NullProgress
from provision.sources.base import (
    AttemptFailed,
    IntegrityFailure,
    OfflineFailure,
    Probe,
    SourceContext,
    looks_like_html,
)
from provision.sources.file import fetch_file, url_to_path
from provision.sources.http import USER_AGENT, fetch_http
from provision.sources.manual import candidates
from provision.sources.partial import Sink
from provision.sources.schemes import fetch_url, scheme_of
from provision.store.hashing import MultiHasher


def _spec(body: bytes | None, name: str = "f.bin", size: int | None = -1, checksum: str | None = None) -> FileSpec:
    text = checksum or md5(body or b"")
    return FileSpec(
        name=name,
        urls=("http://example.invalid/f",),
        checksum=Checksum.parse(text),
        size=(len(body or b"") if size == -1 else size),
    )


def _sink(tmp_path: Path, spec: FileSpec) -> Sink:
    return Sink(spec, tmp_path / "out" / "f.bin.part-test", "art/f.bin", NullProgress())


def _ctx(settings: Settings) -> SourceContext:
    return SourceContext(settings)


# -- Sink -----------------------------------------------------------------------------------


def test_sink_accepts_exact_size_and_hashes(tmp_path: Path) -> None:
    body = os.urandom(1000)
    sink = _sink(tmp_path, _spec(body))
    sink.begin(len(body))
    sink.write(body[:400])
    sink.write(body[400:])
    sink.close()
    assert sink.written == 1000
    assert sink.dest.read_bytes() == body
    assert sink.hasher.hexdigests()["md5"] == hashlib.md5(body).hexdigest()
    sink.reset()
    assert not sink.dest.exists()
    assert sink.written == 0


def test_sink_refuses_overflow(tmp_path: Path) -> None:
    sink = _sink(tmp_path, _spec(b"0123456789"))
    with pytest.raises(AttemptFailed) as announced:
        sink.begin(11)
    assert isinstance(announced.value, IntegrityFailure)
    assert "10" in announced.value.answer and "11" in announced.value.answer
    sink.begin(None)
    sink.write(b"012345")
    with pytest.raises(AttemptFailed) as info:
        sink.write(b"67890")
    assert isinstance(info.value, IntegrityFailure)
    assert "more than the 10 bytes" in info.value.answer
    assert sink.written == 6  # the overflowing chunk was not taken
    sink.reset()
    assert not sink.dest.exists()


def test_sink_refuses_html(tmp_path: Path) -> None:
    page = b"<!DOCTYPE html><html><body>login</body></html>"
    # No published checksum to decide: the sniff refuses the page at its first chunk.
    sink = _sink(tmp_path, replace(_spec(page, size=None), checksum=Checksum.unpublished()))
    sink.begin(None)
    with pytest.raises(AttemptFailed) as info:
        sink.write(page)
    assert not isinstance(info.value, IntegrityFailure)
    assert "HTML" in info.value.answer
    assert sink.written == 0
    sink.reset()
    # A manifest file that is itself a page may be HTML.
    page_sink = Sink(_spec(page, name="docs/index.html"), tmp_path / "p.part", "k", NullProgress())
    page_sink.begin(len(page))
    page_sink.write(page)
    page_sink.close()
    assert (tmp_path / "p.part").read_bytes() == page


def test_sink_write_before_begin(tmp_path: Path) -> None:
    sink = _sink(tmp_path, _spec(b"abc"))
    with pytest.raises(RuntimeError):
        sink.write(b"abc")


@pytest.mark.parametrize(
    "head",
    [
        b"<!DOCTYPE html><html>",
        b"<!doctype HTML>",
        b"<html lang='en'>",
        b"\xef\xbb\xbf  \r\n<HTML>",
        b"<head><title>x</title>",
        b"<body>",
        b"<!-- comment -->",
        b"\n\t <html>",
    ],
)
def test_looks_like_html_yes(head: bytes) -> None:
    assert looks_like_html(head)


@pytest.mark.parametrize(
    "head",
    [b"", b"PK\x03\x04", b"\x89PNG\r\n", b"<?xml version='1.0'?>", b"hello <html>", b'{"html": 1}', b"<htm"],
)
def test_looks_like_html_no(head: bytes) -> None:
    assert not looks_like_html(head)


def test_temp_name_is_beside_and_unique(tmp_path: Path) -> None:
    final = tmp_path / "blob"
    a, b = temp_name(final), temp_name(final)
    assert a.parent == b.parent == tmp_path
    assert a != b
    assert a.name.startswith("blob.part-") and f"-{os.getpid()}-" in a.name


# -- link_or_copy -----------------------------------------------------------------------------


def test_link_or_copy_links(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(5000))
    dst = tmp_path / "dst.bin"
    how = link_or_copy(src, dst)
    assert how in ("reflink", "hardlink")
    assert dst.read_bytes() == src.read_bytes()
    if how == "hardlink":
        assert os.path.samefile(src, dst)


def test_link_or_copy_copies_and_hashes(tmp_path: Path) -> None:
    body = os.urandom(3 << 20)
    src = tmp_path / "src.bin"
    src.write_bytes(body)
    dst = tmp_path / "dst.bin"
    hasher = MultiHasher(["sha256"])
    how = link_or_copy(src, dst, allow_hardlink=False, hasher=hasher)
    assert how in ("reflink", "copy")
    assert dst.read_bytes() == body
    assert not os.path.samefile(src, dst)
    if how == "copy":
        assert hasher.bytes == len(body)
        assert hasher.hexdigests()["sha256"] == hashlib.sha256(body).hexdigest()


def test_link_or_copy_symlink(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"abc")
    dst = tmp_path / "sub-link"
    how = link_or_copy(src, dst, allow_hardlink=False, allow_symlink=True)
    assert how in ("reflink", "symlink")
    assert dst.read_bytes() == b"abc"
    if how == "symlink":
        assert dst.is_symlink()
        assert os.readlink(dst) == str(src.resolve())


def test_link_or_copy_missing_source(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        link_or_copy(tmp_path / "absent", tmp_path / "dst")
    assert not (tmp_path / "dst").exists()


# -- file:// and plain paths --------------------------------------------------------------------


def test_scheme_of() -> None:
    assert scheme_of("http://h/x") == "http"
    assert scheme_of("HTTPS://h/x") == "https"
    assert scheme_of("file:///x") == "file"
    assert scheme_of("manual:https://h/register") == "manual"
    assert scheme_of("/srv/mirror/x.tar") == "path"


def test_fetch_file_url_and_plain_path(tmp_path: Path, settings: Settings) -> None:
    body = os.urandom(4000)
    src = tmp_path / "mirror dir" / "data.bin"
    src.parent.mkdir()
    src.write_bytes(body)
    for url in (f"file://{quote(str(src))}", f"file://localhost{quote(str(src))}", str(src)):
        assert url_to_path(url) == src
        sink = _sink(tmp_path, _spec(body))
        fetch_file(url, sink, _ctx(settings))
        sink.close()
        assert sink.dest.read_bytes() == body
        assert sink.hasher.hexdigests()["md5"] == hashlib.md5(body).hexdigest()
        sink.reset()
    sink = _sink(tmp_path, _spec(body))
    fetch_url(str(src), sink, _ctx(settings))  # dispatch on a plain path
    sink.close()
    assert sink.dest.read_bytes() == body


def test_fetch_file_failures(tmp_path: Path, settings: Settings) -> None:
    sink = _sink(tmp_path, _spec(b"abc"))
    with pytest.raises(AttemptFailed, match="no such file"):
        fetch_file(str(tmp_path / "absent.bin"), sink, _ctx(settings))
    with pytest.raises(AttemptFailed, match="not a regular file"):
        fetch_file(f"file://{tmp_path}", sink, _ctx(settings))
    with pytest.raises(AttemptFailed, match="remote host"):
        fetch_file("file://fileserver/share/x.bin", sink, _ctx(settings))
    wrong = tmp_path / "wrong-size.bin"
    wrong.write_bytes(b"abcd")
    with pytest.raises(AttemptFailed) as info:
        fetch_file(str(wrong), sink, _ctx(settings))
    assert isinstance(info.value, IntegrityFailure)
    with pytest.raises(AttemptFailed, match="no source handles 'ftp'"):
        fetch_url("ftp://h/x", sink, _ctx(settings))
    sink.reset()


# -- candidates (--from) ----------------------------------------------------------------------------


def test_candidates_same_name_first_then_same_size(tmp_path: Path) -> None:
    body = os.urandom(1234)
    spec = _spec(body, name="sub/VAL.tar")
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "a" / "b").mkdir(parents=True)
    (root / "z").mkdir()
    direct = root / "sub" / "VAL.tar"
    direct.write_bytes(body)
    same_size_1 = root / "a" / "renamed.bin"
    same_size_1.write_bytes(os.urandom(1234))
    nested_name = root / "a" / "b" / "VAL.tar"
    nested_name.write_bytes(os.urandom(1234))
    same_size_2 = root / "z" / "other.tar"
    same_size_2.write_bytes(os.urandom(1234))
    (root / "z" / "VAL.tar").write_bytes(b"wrong size, same name")
    (root / "small.bin").write_bytes(b"tiny")
    found = list(candidates(spec, [root]))
    assert found[0] == direct
    assert found[1] == nested_name
    assert sorted(found[2:]) == sorted([same_size_1, same_size_2])
    assert len(found) == 4


def test_candidates_roots_in_order_and_files(tmp_path: Path) -> None:
    body = os.urandom(50)
    spec = _spec(body, name="x.bin")
    first = tmp_path / "first"
    second = tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "other.bin").write_bytes(os.urandom(50))
    (second / "x.bin").write_bytes(body)
    single = tmp_path / "single-file.dat"
    single.write_bytes(os.urandom(50))
    wrong = tmp_path / "wrong.dat"
    wrong.write_bytes(os.urandom(49))
    found = list(candidates(spec, [single, wrong, first, tmp_path / "absent", second]))
    assert found == [single, first / "other.bin", second / "x.bin"]


def test_candidates_without_size_match_by_name_only(tmp_path: Path) -> None:
    spec = _spec(b"whatever", name="x.bin", size=None)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.bin").write_bytes(b"1")
    (tmp_path / "y.bin").write_bytes(b"2")
    assert list(candidates(spec, [tmp_path])) == [tmp_path / "d" / "x.bin"]


# -- http ---------------------------------------------------------------------------------------


def test_fetch_http_follows_redirect_chain(server: TestServer, tmp_path: Path, settings: Settings) -> None:
    body = os.urandom(20_000)
    final = server.add("/src-redirect/final.bin", body)
    hop2 = server.add("/src-redirect/hop2", redirect_to=final)
    hop1 = server.add("/src-redirect/hop1", redirect_to="/src-redirect/hop2")
    assert hop2
    sink = _sink(tmp_path, _spec(body))
    fetch_http(hop1, sink, _ctx(settings))
    sink.close()
    assert sink.dest.read_bytes() == body
    assert sink.hasher.hexdigests()["md5"] == hashlib.md5(body).hexdigest()
    assert [server.hits.get(f"/src-redirect/{p}") for p in ("hop1", "hop2", "final.bin")] == [1, 1, 1]
    agents = {h.get("User-Agent") for _, path, h in list(server.requests) if path.startswith("/src-redirect/")}
    assert agents == {USER_AGENT}


def test_fetch_http_404(server: TestServer, tmp_path: Path, settings: Settings) -> None:
    sink = _sink(tmp_path, _spec(b"abc"))
    with pytest.raises(AttemptFailed) as info:
        fetch_http(server.url("/src-404/nothing-here"), sink, _ctx(settings))
    assert info.value.answer.startswith("HTTP 404")
    assert not isinstance(info.value, IntegrityFailure)
    assert not sink.dest.exists()


def test_fetch_http_html_content_type(server: TestServer, tmp_path: Path, settings: Settings) -> None:
    url = server.add("/src-html/f.bin", b"<p>no</p>", content_type="text/html")
    sink = _sink(tmp_path, _spec(None, size=None))
    with pytest.raises(AttemptFailed, match="Content-Type text/html"):
        fetch_http(url, sink, _ctx(settings))
    page = b"<html><body>docs</body></html>"
    page_url = server.add("/src-html/index.html", page, content_type="text/html")
    page_sink = Sink(_spec(page, name="index.html"), tmp_path / "i.part", "k", NullProgress())
    fetch_http(page_url, page_sink, _ctx(settings))
    page_sink.close()
    assert (tmp_path / "i.part").read_bytes() == page


def test_fetch_http_offline_sends_nothing(server: TestServer, tmp_path: Path, settings: Settings) -> None:
    url = server.add("/src-offline/f.bin", b"abc")
    sink = _sink(tmp_path, _spec(b"abc"))
    with pytest.raises(AttemptFailed) as info:
        fetch_http(url, sink, _ctx(settings.with_(offline=True)))
    assert isinstance(info.value, OfflineFailure)
    assert "PROVISION_OFFLINE" in info.value.answer
    assert server.hits.get("/src-offline/f.bin", 0) == 0


def test_fetch_http_connection_refused(tmp_path: Path, settings: Settings) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = _sink(tmp_path, _spec(b"abc"))
    with pytest.raises(AttemptFailed, match=f"connection refused at 127.0.0.1:{port}"):
        fetch_http(f"http://127.0.0.1:{port}/x", sink, _ctx(settings.with_(connect_timeout=2.0)))


def test_the_scheme_table_covers_every_manifest_scheme() -> None:
    """One table knows the schemes (fetch, list, probe); the manifest's list and it never drift apart."""
    from provision.manifest.model import URL_SCHEMES
    from provision.sources.schemes import SCHEMES

    assert set(SCHEMES) == {*URL_SCHEMES, "path"}
    assert all(SCHEMES[s].fetch is not None for s in ("http", "https", "file", "path", "hf", "hf-dataset", "s3"))
    assert all(SCHEMES[s].list is not None for s in ("mlc-r2", "hf", "hf-dataset", "s3"))


def test_probes_say_what_doctor_checks(settings: Settings) -> None:
    """Each scheme's probe: the host to reach and the gate's credentials, from the URL alone (no request)."""
    from provision.sources.schemes import probe_url

    assert probe_url("https://h.example/x.bin", "public", settings) == Probe(reach="https://h.example/x.bin")
    assert probe_url("/data/x.bin", "public", settings) == Probe()
    assert probe_url("manual:https://image-net.org/download", "registration", settings).manual == (
        "https://image-net.org/download"
    )
    s3 = probe_url("s3://bucket/key", "public", settings)
    assert s3.reach is None and s3.skip is not None and s3.skip[0] == "s3" and s3.credential is not None
    assert s3.credential.present is None
    gated = probe_url("hf://meta-llama/Llama-3.1-8B@main/config.json", "gated", settings)
    assert gated.reach == "https://huggingface.co/" and gated.credential is not None
    assert gated.credential.present is False
    assert "https://huggingface.co/meta-llama/Llama-3.1-8B" in gated.credential.fix
    with_token = probe_url("hf://meta-llama/Llama-3.1-8B@main/config.json", "gated", settings.with_(hf_token="hf_x"))
    assert with_token.credential is not None and with_token.credential.present is True
    assert "hf_x" not in with_token.credential.detail
    r2 = probe_url("mlc-r2://inference.mlcommons-storage.org/metadata/llama.uri", "members", settings)
    assert r2.reach == "https://inference.mlcommons-storage.org/metadata/llama.uri"
    assert r2.credential is not None and r2.credential.present is False and "CF_ACCESS_CLIENT_ID" in r2.credential.fix
    assert probe_url("mlc-r2://inference.mlcommons-storage.org/metadata/x.uri", "public", settings).credential is None
