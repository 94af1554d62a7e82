"""Credentials inside URLs (``https://user:pass@mirror``, signed query strings) never reach
the output: not the notes on stderr, not ``--json``, not the error lines, not the cache's records.

Real ``provision`` processes against the real local server; the mirrors carry user information
(requests sends it as basic auth, which the test server ignores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ManifestWriter, dataset_toml
from httpserver import TestServer, md5

from provision.config import redact_url

PROVISION = Path(sys.executable).parent / "provision"
SECRETS = ("s3cret-pw-1", "tok-s3cret-2", "sig-s3cret-3")


def _provision(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PROVISION), *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=60
    )


def _leaks(*texts: str) -> list[str]:
    return [s for s in SECRETS if any(s in t for t in texts)]


def _cache_texts(cache: Path) -> list[str]:
    return [p.read_text(errors="replace") for p in cache.rglob("*") if p.is_file() and p.stat().st_size < 1 << 20]


def test_redact_url_masks_passwords_tokens_and_signed_queries() -> None:
    assert redact_url("https://alice:pw@m.example/a") == "https://alice:****@m.example/a"
    assert redact_url("https://tok@m.example/a") == "https://****@m.example/a"  # a bare token is all secret
    assert redact_url("https://a:b@c@h.example/p") == "https://a:****@h.example/p"
    assert redact_url("https://h/x?X-Amz-Signature=abc&part=1") == "https://h/x?X-Amz-Signature=****&part=1"
    text = "s3://b/k and http://127.0.0.1:8/p?q=1 -> HTTP 404"
    assert redact_url(text) == text
    once = redact_url("see https://u:p@h/p?token=t, https://v@w/")
    assert redact_url(once) == once == "see https://u:****@h/p?token=****, https://****@w/"


def test_mirror_credentials_never_appear_in_fetch_output(
    server: TestServer, write_manifest: ManifestWriter, cache: Path
) -> None:
    body = os.urandom(80_000)
    digest = md5(body).split(":")[1]
    port = server.port
    failing = f"http://alice:{SECRETS[0]}@127.0.0.1:{port}/redact/none"
    good = f"http://{SECRETS[1]}@127.0.0.1:{port}/redact/good"
    server.add(f"/redact/good/md5/{digest}", body)
    upstream = server.url("/redact/missing.bin") + f"?X-Amz-Signature={SECRETS[2]}"
    write_manifest(dataset_toml("redact-ok", [("f.bin", [upstream], body, None)]), "redact-ok")
    env = {"PROVISION_MIRRORS": f"{failing} {good}"}

    ok = _provision("fetch", "redact-ok", "--json", "--verbose", env=env)
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    entry = doc["files"][0]
    assert entry["source"] == f"http://****@127.0.0.1:{port}/redact/good/md5/{digest}"
    assert entry["attempts"] == [
        {"url": f"http://alice:****@127.0.0.1:{port}/redact/none/md5/{digest}", "answer": "HTTP 404 Not Found"}
    ]
    assert "alice:****@" in ok.stderr  # the note about the failed mirror is there, masked
    assert _leaks(ok.stdout, ok.stderr, *_cache_texts(cache)) == []

    # Everything fails: the error line lists every source, masked, in text and in JSON.
    other = os.urandom(1000)
    write_manifest(dataset_toml("redact-bad", [("g.bin", [upstream], other, None)]), "redact-bad")
    for args in (("fetch", "redact-bad"), ("fetch", "redact-bad", "--json")):
        bad = _provision(*args, env={**env, "PROVISION_RETRIES": "0"})
        assert bad.returncode == 4, bad.stderr
        assert "X-Amz-Signature=****" in bad.stdout + bad.stderr
        assert _leaks(bad.stdout, bad.stderr, *_cache_texts(cache)) == []


def test_doctor_shows_no_mirror_credentials(server: TestServer, write_manifest: ManifestWriter) -> None:
    body = b"doctor" * 100
    url = server.add("/redact/doc.bin", body)
    manual = f"manual:https://alice:{SECRETS[0]}@register.example/imagenet?token={SECRETS[2]}"
    write_manifest(dataset_toml("redact-doc", [("d.bin", [url], body, None), ("m.bin", [manual], body, None)]))
    env = {"PROVISION_MIRRORS": f"http://alice:{SECRETS[0]}@127.0.0.1:{server.port}/m http://{SECRETS[1]}@127.0.0.1:1"}
    for args in (("doctor", "redact-doc"), ("doctor", "redact-doc", "--json")):
        proc = _provision(*args, env=env)
        assert "reach 127.0.0.1" in proc.stdout + proc.stderr
        assert _leaks(proc.stdout, proc.stderr) == []


def test_settings_repr_shows_no_mirror_credentials() -> None:
    """A Settings printed in a traceback or a log holds no mirror password (nor the tokens)."""
    from provision.config import Settings

    shown = repr(
        Settings.from_env({"PROVISION_MIRRORS": "https://alice:hunter2@mirror.lab", "HF_TOKEN": "hf_abcdefghijk"})
    )
    assert "hunter2" not in shown and "hf_abcdefghijk" not in shown
