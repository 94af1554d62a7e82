"""provision demo: the whole pipeline on generated data, served from 127.0.0.1.

The demo runs for real (its own HTTP server, the real cache, onnxruntime); the server is
also tested on its own with ``requests``, and the hand-written ONNX bytes with ``onnx``.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import re
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from typer.testing import CliRunner

from provision import api
from provision.cli.app import app
from provision.errors import EXIT_USAGE
from provision.walkthrough.data import MODEL_FILE, TAR, VAL_MAP, generate, onnx_classifier
from provision.walkthrough.server import DemoServer

runner = CliRunner()


def _audit_available() -> bool:
    try:
        module = importlib.import_module("provision.auditing.document")
    except ImportError:
        return False
    return hasattr(api, "audit") and hasattr(module, "write_audit")


def test_cli_demo_runs_end_to_end_and_cleans_up(tmp_path: Path) -> None:
    clock = time.perf_counter()
    result = runner.invoke(app, ["demo"])
    seconds = time.perf_counter() - clock
    out = result.stdout
    assert result.exit_code == 0, out + result.stderr
    assert seconds < 45, f"the demo took {seconds:.1f} s"
    # fetch was cut by the server and resumed with a Range request from where it stopped
    cut = re.search(r"GET /ILSVRC2012_img_val\.tar Range: bytes=0- -> 206, connection dropped after ([\d,]+)", out)
    assert cut, out
    at = cut.group(1).replace(",", "")
    assert f"GET /ILSVRC2012_img_val.tar Range: bytes={at}- (If-Range) -> 206" in out
    assert f"resumed at byte {cut.group(1)}" in out
    assert "md5 and size matched the manifest" in out
    # verify: fast path, the flipped bit caught and repaired
    assert "fast path: 4 entries ok, 0 B read" in out
    assert "verify --full: corrupt: demo-tinynet-onnx/tinynet.onnx: checksum mismatch" in out
    assert "repaired demo-tinynet-onnx/tinynet.onnx" in out
    # preprocess, validate, run, summary
    assert "48 images on" in out and "output tree digest xxh3_128:" in out
    assert "top1           77.083%" in out and "result         PASS" in out
    assert re.search(r"validate +cached", out)
    assert "summary: PASS, 9 steps" in out and "provision run resnet50 --from /data/imagenet" in out
    if not _audit_available():
        assert "audit: not available in this build" in out
    # the temp workdir is gone and the user's cache (PROVISION_CACHE of the test) untouched
    workdir = Path(re.search(r"^workdir: (\S+) ", out, re.M).group(1))  # type: ignore[union-attr]
    assert not workdir.exists()
    assert not (tmp_path / "cache").exists()


def test_keep_leaves_manifest_cache_and_audit(tmp_path: Path) -> None:
    where = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--keep", "--dir", str(where)])
    assert result.exit_code == 0, result.stdout + result.stderr
    manifest = where / "manifests" / "demo.toml"
    assert manifest.is_file() and 'recipe = "imagenet-resnet50"' in manifest.read_text()
    assert (where / "cache" / "artifacts" / "demo-imagenet-val" / "val").is_dir()
    assert len(list((where / "cache" / "artifacts" / "demo-imagenet-val" / "val").iterdir())) == 48
    assert list((where / "cache" / "preprocessed" / "demo-resnet50").glob("*.validation/*.json"))
    assert (where / "upstream" / TAR).is_file()
    if _audit_available():
        assert json.loads((where / "audit.json").read_text())
    else:
        assert not (where / "audit.json").exists()
    assert f"kept {where.resolve()}" in result.stdout


def test_dir_must_be_new_or_empty(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "precious.txt").write_text("keep me")
    result = runner.invoke(app, ["demo", "--dir", str(tmp_path / "full")])
    assert result.exit_code == EXIT_USAGE
    assert "not an empty folder" in result.stderr
    assert (tmp_path / "full" / "precious.txt").read_text() == "keep me"


def test_library_demo_ignores_the_users_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PROVISION_OFFLINE / MIRRORS / CACHE of the caller do not reach the demo's settings."""
    monkeypatch.setenv("PROVISION_OFFLINE", "1")
    monkeypatch.setenv("PROVISION_MIRRORS", "http://127.0.0.1:9/nowhere")
    lines: list[str] = []
    where = tmp_path / "fresh"
    report = api.demo(where, say=lines.append, images=8)
    assert report.ok and report.passed and report.value == pytest.approx(87.5)  # 1 of 8 labels wrong
    assert report.resumed_at is not None and report.resumed_at > 0
    assert [s.name for s in report.steps] == [
        "generate", "serve", "manifest", "fetch", "verify", "preprocess", "validate", "run", "audit",
    ]
    assert all(s.state in ("done", "skipped") for s in report.steps)
    assert report.seconds < 45
    assert any("GET /ILSVRC2012_img_val.tar Range: bytes=0-" in line for line in report.server_log)
    assert not where.exists()  # the demo made it, so it removed it
    assert json.loads(json.dumps(report.to_json()))["passed"] is True


# -- the server -----------------------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[DemoServer, bytes]]:
    body = bytes(range(256)) * 400  # 102,400 bytes
    server = DemoServer({"f.bin": body, "cut.bin": body}, rate=None, faults={"cut.bin": 0.25})
    yield server, body
    server.close()


def test_server_head_and_full_get(served: tuple[DemoServer, bytes]) -> None:
    server, body = served
    head = requests.head(server.url("f.bin"), timeout=5)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(body)) and head.headers["Accept-Ranges"] == "bytes"
    assert head.headers["ETag"].startswith('"') and head.headers["Last-Modified"].endswith("GMT")
    get = requests.get(server.url("f.bin"), timeout=5)
    assert get.status_code == 200 and get.content == body and get.headers["ETag"] == head.headers["ETag"]
    assert requests.get(server.url("nope"), timeout=5).status_code == 404
    assert [r.describe() for r in server.log][:2] == [
        "HEAD /f.bin -> 200, headers only",
        "GET /f.bin -> 200, 102,400 bytes",
    ]


def test_server_ranges(served: tuple[DemoServer, bytes]) -> None:
    server, body = served
    url, size = server.url("f.bin"), len(body)
    etag = requests.head(url, timeout=5).headers["ETag"]
    r = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=5)
    assert r.status_code == 206 and r.content == body[10:20] and r.headers["Content-Range"] == f"bytes 10-19/{size}"
    r = requests.get(url, headers={"Range": "bytes=100000-"}, timeout=5)
    assert r.status_code == 206 and r.content == body[100000:] and r.headers["Content-Length"] == str(size - 100000)
    r = requests.get(url, headers={"Range": "bytes=-5"}, timeout=5)
    assert r.status_code == 206 and r.content == body[-5:]
    r = requests.get(url, headers={"Range": "bytes=0-0"}, timeout=5)
    assert r.status_code == 206 and r.content == body[:1]
    r = requests.get(url, headers={"Range": f"bytes={size}-"}, timeout=5)
    assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{size}"
    r = requests.get(url, headers={"Range": "bytes=5-", "If-Range": etag}, timeout=5)
    assert r.status_code == 206 and r.content == body[5:]
    r = requests.get(url, headers={"Range": "bytes=5-", "If-Range": '"stale"'}, timeout=5)
    assert r.status_code == 200 and r.content == body  # the file changed: the whole body
    r = requests.get(url, headers={"Range": "bytes=0-1,4-5"}, timeout=5)
    assert r.status_code == 200 and r.content == body  # several ranges: ignored
    r = requests.head(url, headers={"Range": "bytes=10-19"}, timeout=5)
    assert r.status_code == 206 and r.headers["Content-Length"] == "10" and r.content == b""


def test_server_cuts_the_first_get_once(served: tuple[DemoServer, bytes]) -> None:
    server, body = served
    got = bytearray()
    with (
        pytest.raises(requests.exceptions.RequestException),
        requests.get(server.url("cut.bin"), stream=True, timeout=5) as resp,
    ):
        assert resp.status_code == 200 and resp.headers["Content-Length"] == str(len(body))
        for chunk in resp.iter_content(4096):
            got += chunk
    assert 0 < len(got) <= len(body) // 4 and got == body[: len(got)]  # requests may drop its last buffer
    rest = requests.get(server.url("cut.bin"), headers={"Range": f"bytes={len(got)}-"}, timeout=5)
    assert rest.status_code == 206 and bytes(got) + rest.content == body
    log = server.requests_for("cut.bin")
    assert [r.dropped for r in log] == [True, False] and log[0].sent == len(body) // 4


def test_server_throttles() -> None:
    with DemoServer({"f.bin": b"x" * 60_000}, rate=200_000) as server:
        clock = time.perf_counter()
        assert len(requests.get(server.url("f.bin"), timeout=5).content) == 60_000
        assert time.perf_counter() - clock >= 0.25  # 60 kB at 200 kB/s: 0.3 s


# -- the generated data ----------------------------------------------------------------------------


def test_generated_data_is_imagenet_shaped_and_reproducible() -> None:
    gen = generate(12)
    assert gen.files == generate(12).files  # byte-identical, so the md5 in the manifest is stable
    with tarfile.open(fileobj=io.BytesIO(gen.files[TAR])) as tf:
        names = tf.getnames()
        sizes = {tf.extractfile(n).read()[:2] for n in names}  # type: ignore[union-attr]
    assert names == [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 13)] and sizes == {b"\xff\xd8"}
    lines = gen.files[VAL_MAP].decode().splitlines()
    assert [ln.split()[0] for ln in lines] == names and len(gen.wrong) == 2  # int(12 * 0.23)


def test_onnx_model_bytes_are_a_valid_model_with_known_predictions() -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    data = onnx_classifier()
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 8 and model.opset_import[0].version == 13
    assert [o.name for o in model.graph.output] == ["ArgMax:0", "softmax_tensor:0"]
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = np.full((3, 3, 224, 224), -60.0, dtype=np.float32)
    for c in range(3):
        x[c, c] = 100.0  # image c: channel c dominates
    argmax, scores = session.run(["ArgMax:0", "softmax_tensor:0"], {"input_tensor:0": x})
    assert argmax.tolist() == [1, 2, 3] and scores.shape == (3, 4)  # index 0 is the background
    assert hashlib.md5(data).hexdigest() == hashlib.md5(onnx_classifier()).hexdigest()
    assert MODEL_FILE.endswith(".onnx")
