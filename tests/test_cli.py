"""The ``provision`` command: CliRunner for most cases, real subprocesses for the process-level ones.

Every test talks to the real HTTP server on 127.0.0.1 and a real cache in tmp_path; nothing
of provision is mocked. Server paths are unique per test (the server is session-wide).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main
import xxhash
from conftest import ManifestWriter, dataset_toml, sigint_at_default
from httpserver import TestServer, md5
from typer.testing import CliRunner

from provision.cli.app import app

PROVISION = Path(sys.executable).parent / "provision"

runner = CliRunner()

# The session-wide server runs in this process, so a request that another test left behind
# (a stalled or dropped transfer) can print socketserver's error report while CliRunner holds
# sys.stderr. Such reports are not provision's output.
_SERVER_NOISE = re.compile(r"-{40}\nException occurred during processing of request from .*?\n-{40}\n", re.DOTALL)


@dataclass
class Run:
    """What one in-process invocation printed, and its exit code."""

    exit_code: int
    stdout: str
    stderr: str


def cli(*args: str, env: dict[str, str] | None = None) -> Run:
    """Run the app in-process; the isolated PROVISION_* environment is inherited."""
    result = runner.invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a bug escaped the CLI's error handling
    return Run(result.exit_code, result.stdout, _SERVER_NOISE.sub("", result.stderr))


def run_process(*args: str, module: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run provision as a real process (``python -m provision.cli`` or the venv script)."""
    cmd = [sys.executable, "-m", "provision.cli", *args] if module else [str(PROVISION), *args]
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=60)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("provision: error:")]


def add_dataset(
    server: TestServer,
    write_manifest: ManifestWriter,
    name: str,
    nfiles: int = 1,
    size: int = 50_000,
) -> dict[str, bytes]:
    """Serve ``nfiles`` random files under /cli/<name>/ and write a manifest for them."""
    bodies: dict[str, bytes] = {}
    files = []
    for i in range(nfiles):
        fname = f"part{i}.bin"
        body = os.urandom(size + i)
        url = server.add(f"/cli/{name}/{fname}", body)
        bodies[fname] = body
        files.append((fname, [url], body, None))
    write_manifest(dataset_toml(name, files), name=name)
    return bodies


def fetched_dir(cache: Path, name: str) -> Path:
    return cache / "artifacts" / name


def flip_byte(path: Path) -> None:
    """Corrupt one byte in place (blobs are read-only; the view is a link to the blob)."""
    real = path.resolve()
    st = real.stat()
    os.chmod(real, 0o644)
    data = bytearray(real.read_bytes())
    data[len(data) // 2] ^= 0xFF
    with open(real, "r+b") as fh:
        fh.write(data)
    # Make sure the stat differs from the record even on coarse-timestamp filesystems.
    os.utime(real, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


# ---------------------------------------------------------------------------------------
# list / show


def test_list_text_shows_builtin_entries() -> None:
    result = cli("list")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "SIZE", "STATE", "FORMAT/STATUS", "DESCRIPTION"]
    assert lines[-1].startswith('size: "~" partly the sources\' rounded figures; "?" unknown')  # the legend
    rows = {line.split()[0]: line.split()[1] for line in lines[1:-1]}
    assert rows["resnet50"] == "benchmark"
    assert rows["squad-v1.1"] == "dataset"
    assert rows["resnet50-onnx"] == "model"
    assert result.stderr == ""


def test_list_kind_filters() -> None:
    benchmarks = cli("list", "--kind", "benchmark", "--json")
    assert benchmarks.exit_code == 0, benchmarks.stderr
    kinds = {e["kind"] for e in json.loads(benchmarks.stdout)["entries"]}
    assert kinds == {"benchmark"}
    text = cli("list", "--kind", "model").stdout.splitlines()
    assert text[1:] and all(line.split()[1] == "model" for line in text[1:] if not line.startswith("size:"))
    bad = cli("list", "--kind", "checkpoint")
    assert bad.exit_code == 2 and "expected one of dataset, model, benchmark" in bad.stderr


def test_list_json(server: TestServer, write_manifest: ManifestWriter, cache: Path) -> None:
    add_dataset(server, write_manifest, "cli-list")
    result = cli("list", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    entries = {e["name"]: e for e in doc["entries"]}
    for entry in doc["entries"]:
        assert {"name", "kind", "description"} <= set(entry)
        assert entry["kind"] in {"dataset", "model", "benchmark"}
    assert entries["resnet50"]["kind"] == "benchmark"
    assert entries["squad-v1.1"]["kind"] == "dataset"
    assert entries["cli-list"]["state"] == "absent"
    assert cli("fetch", "cli-list", "-q").exit_code == 0
    after = {e["name"]: e for e in json.loads(cli("list", "--json").stdout)["entries"]}
    assert after["cli-list"]["state"] == "present"


def test_show_dataset_text_and_json() -> None:
    result = cli("show", "squad", "--json")  # an alias
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["name"] == "squad-v1.1"
    assert doc["kind"] == "dataset"
    (f,) = doc["files"]
    assert f["checksum"] == "md5:3e85deb501d4e538b6bc56f786231552"
    assert f["size"] == 4854279
    assert f["urls"] and all(u.startswith("https://") for u in f["urls"])
    assert doc["cache"]["state"] == "absent"
    assert doc["cache"]["files_total"] == 1

    text = cli("show", "squad-v1.1")
    assert text.exit_code == 0, text.stderr
    assert "name: squad-v1.1" in text.stdout
    assert "kind: dataset" in text.stdout
    assert "md5:3e85deb501d4e538b6bc56f786231552" in text.stdout
    assert "cache: absent (0/1 files)" in text.stdout
    for url in f["urls"]:
        assert url in text.stdout


def test_show_benchmark_text_and_json() -> None:
    result = cli("show", "resnet50", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["kind"] == "benchmark"
    assert doc["dataset"] == "imagenet-val"
    assert doc["models"][0] == "resnet50-onnx"  # the default model comes first
    acc = doc["accuracy"]
    assert acc["metric"] == "top1"
    assert acc["targets"] == pytest.approx([acc["reference"] * r for r in acc["target_ratio"]])
    names = [a["name"] for a in doc["artifacts"]]
    assert names[0] == "imagenet-val" and "resnet50-onnx" in names
    for art in doc["artifacts"]:
        assert art["cache"]["state"] == "absent"
        for f in art["files"]:
            assert {"name", "checksum", "urls", "size"} <= set(f)

    text = cli("show", "resnet50")
    assert text.exit_code == 0, text.stderr
    assert text.stdout.startswith("resnet50 (current):")
    assert "dataset: imagenet-val" in text.stdout
    assert "dataset imagenet-val:" in text.stdout
    assert "model resnet50-onnx:" in text.stdout
    assert "manual:https://image-net.org/download-images.php" in text.stdout
    assert "LICENCE: imagenet-val needs registration access" in text.stdout
    assert "accuracy: top1 reference 76.46" in text.stdout
    assert "download: " in text.stdout


def test_show_reflects_cache_state(server: TestServer, write_manifest: ManifestWriter) -> None:
    add_dataset(server, write_manifest, "cli-show-state", nfiles=2)
    before = json.loads(cli("show", "cli-show-state", "--json").stdout)
    assert before["cache"]["state"] == "absent"
    assert cli("fetch", "cli-show-state", "-q").exit_code == 0
    after = json.loads(cli("show", "cli-show-state", "--json").stdout)
    assert after["cache"]["state"] == "present"
    assert after["cache"]["files"] == 2


# ---------------------------------------------------------------------------------------
# fetch


def test_fetch_prints_folder_and_is_idempotent(server: TestServer, write_manifest: ManifestWriter, cache: Path) -> None:
    bodies = add_dataset(server, write_manifest, "cli-fetch")
    result = cli("fetch", "cli-fetch")
    assert result.exit_code == 0, result.stderr
    folder = fetched_dir(cache, "cli-fetch")
    lines = result.stdout.splitlines()
    assert lines[0] == "1 files: 1 fetched"
    assert lines[-1] == f"cli-fetch\t{folder}"
    assert (folder / "part0.bin").read_bytes() == bodies["part0.bin"]
    assert "Traceback" not in result.stderr

    again = cli("fetch", "cli-fetch")
    assert again.exit_code == 0, again.stderr
    assert again.stdout.splitlines()[0] == "1 files: 1 cached"
    assert server.hits["/cli/cli-fetch/part0.bin"] == 1


def test_fetch_json_shape(server: TestServer, write_manifest: ManifestWriter, cache: Path) -> None:
    bodies = add_dataset(server, write_manifest, "cli-json", nfiles=2)
    result = cli("fetch", "cli-json", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {"ok", "exit_code", "artifacts", "files"}
    assert doc["ok"] is True
    assert doc["exit_code"] == 0
    assert doc["artifacts"] == {"cli-json": str(fetched_dir(cache, "cli-json"))}
    assert len(doc["files"]) == 2
    for f in doc["files"]:
        assert set(f) == {"artifact", "name", "state", "path", "bytes", "source", "error", "attempts"}
        assert f["artifact"] == "cli-json"
        assert f["state"] == "fetched"
        assert f["bytes"] == len(bodies[f["name"]])
        assert f["source"] == server.url(f"/cli/cli-json/{f['name']}")
        assert f["error"] == ""
        assert f["attempts"] == []
        assert Path(f["path"]).read_bytes() == bodies[f["name"]]


def test_fetch_jobs(server: TestServer, write_manifest: ManifestWriter, cache: Path) -> None:
    bodies = add_dataset(server, write_manifest, "cli-jobs", nfiles=4, size=20_000)
    result = cli("fetch", "cli-jobs", "--jobs", "2")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "4 files: 4 fetched"
    for fname, body in bodies.items():
        assert (fetched_dir(cache, "cli-jobs") / fname).read_bytes() == body
    # PROVISION_JOBS is read by the option; a value below 1 is a usage error either way.
    assert cli("fetch", "cli-jobs", env={"PROVISION_JOBS": "2"}).exit_code == 0
    assert cli("fetch", "cli-jobs", "-j", "0").exit_code == 2
    assert cli("fetch", "cli-jobs", env={"PROVISION_JOBS": "0"}).exit_code == 2
    assert cli("fetch", "cli-jobs", env={"PROVISION_JOBS": "many"}).exit_code == 2


def test_fetch_quiet_prints_no_progress(server: TestServer, write_manifest: ManifestWriter, cache: Path) -> None:
    # The first URL 404s: with --verbose (or on a terminal) that attempt is noted on stderr, once.
    for name in ("cli-plain", "cli-loud", "cli-quiet"):
        body = os.urandom(10_000)
        good = server.add(f"/cli/{name}/good.bin", body)
        write_manifest(
            dataset_toml(name, [("f.bin", [server.url(f"/cli/{name}/missing.bin"), good], body, None)]),
            name=name,
        )
    plain = cli("fetch", "cli-plain")  # stderr is not a terminal here
    assert plain.exit_code == 0 and plain.stderr == "", plain.stderr
    loud = cli("fetch", "cli-loud", "--verbose")
    assert loud.exit_code == 0, loud.stderr
    assert loud.stderr.count("HTTP 404") == 1, loud.stderr
    assert "1 files: 1 fetched" in loud.stdout

    quiet = cli("fetch", "cli-quiet", "--quiet")
    assert quiet.exit_code == 0, quiet.stderr
    assert quiet.stderr == ""
    assert quiet.stdout == f"cli-quiet\t{fetched_dir(cache, 'cli-quiet')}\n"


def test_fetch_progress_on_a_tty_and_quiet(server: TestServer, write_manifest: ManifestWriter) -> None:
    """Progress bars go to stderr only when stdout is a terminal, and never with --quiet."""
    pty = pytest.importorskip("pty")
    add_dataset(server, write_manifest, "cli-tty-loud", size=200_000)
    add_dataset(server, write_manifest, "cli-tty-quiet", size=200_000)

    def run_on_tty(*args: str) -> tuple[int, str, str]:
        master, slave = pty.openpty()
        try:
            proc = subprocess.run(
                [str(PROVISION), *args],
                stdout=slave,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
            )
            os.close(slave)
            slave = -1
            chunks = []
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            return proc.returncode, b"".join(chunks).decode(), proc.stderr
        finally:
            if slave != -1:
                os.close(slave)
            os.close(master)

    rc, _, stderr = run_on_tty("fetch", "cli-tty-loud")
    assert rc == 0, stderr
    assert "total" in stderr  # the aggregate tqdm bar
    rc, out, stderr = run_on_tty("fetch", "cli-tty-quiet", "--quiet")
    assert rc == 0, stderr
    assert stderr == ""
    assert "cli-tty-quiet" in out


def test_fetch_wrong_checksum_exits_3(server: TestServer, write_manifest: ManifestWriter, cache: Path) -> None:
    body = os.urandom(30_000)
    url = server.add("/cli/badsum/data.bin", body)
    wrong = md5(b"something else")
    write_manifest(dataset_toml("cli-badsum", [("data.bin", [url], body, wrong)]))
    result = cli("fetch", "cli-badsum")
    assert result.exit_code == 3
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert f"expected {wrong}" in errors[0]
    assert f"got {md5(body)}" in errors[0]
    assert url in errors[0]
    assert "Traceback" not in result.stderr
    assert not (fetched_dir(cache, "cli-badsum") / "data.bin").exists()

    doc = json.loads(cli("fetch", "cli-badsum", "--json").stdout)
    assert doc["ok"] is False
    assert doc["exit_code"] == 3
    (f,) = doc["files"]
    assert f["state"] == "failed"
    assert "mismatch" in f["error"]
    assert [a["url"] for a in f["attempts"]] == [url]
    assert "checksum mismatch" in f["attempts"][0]["answer"]


def test_fetch_all_sources_404_exits_4(server: TestServer, write_manifest: ManifestWriter) -> None:
    urls = [server.url("/cli/gone/a.bin"), server.url("/cli/gone/b.bin")]
    write_manifest(dataset_toml("cli-gone", [("data.bin", urls, b"x" * 100, None)]))
    result = cli("fetch", "cli-gone", "--quiet")
    assert result.exit_code == 4
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    for url in urls:
        assert f"{url} -> HTTP 404" in errors[0]
    assert "Traceback" not in result.stderr


def test_fetch_unknown_name_exits_2_with_suggestion(server: TestServer, write_manifest: ManifestWriter) -> None:
    add_dataset(server, write_manifest, "cli-alpha")
    result = cli("fetch", "cli-alpah")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "provision: error: unknown name 'cli-alpah'; did you mean 'cli-alpha'?",
    ]
    builtin = cli("show", "resnt")
    assert builtin.exit_code == 2
    assert "did you mean" in builtin.stderr
    assert "'resnet50'" in builtin.stderr
    nothing_close = cli("path", "zzzzzzzz")
    assert nothing_close.exit_code == 2
    assert "provision list" in nothing_close.stderr


def test_fetch_manual_file(write_manifest: ManifestWriter, tmp_path: Path, cache: Path) -> None:
    body = os.urandom(12_345)
    register = "https://example.org/register-here"
    write_manifest(dataset_toml("cli-licensed", [("licensed.tar", [f"manual:{register}"], body, None)]))
    result = cli("fetch", "cli-licensed")
    assert result.exit_code == 4
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert register in errors[0]
    assert "--from" in errors[0]
    assert md5(body) in errors[0]

    downloads = tmp_path / "downloads"
    (downloads / "sub").mkdir(parents=True)
    (downloads / "sub" / "renamed-by-browser.tar").write_bytes(body)  # found by size + checksum
    (downloads / "other.tar").write_bytes(os.urandom(12_345))  # same size, wrong data
    ok = cli("fetch", "cli-licensed", "--from", str(downloads))
    assert ok.exit_code == 0, ok.stderr
    assert ok.stdout.splitlines()[-1] == f"cli-licensed\t{fetched_dir(cache, 'cli-licensed')}"
    assert (fetched_dir(cache, "cli-licensed") / "licensed.tar").read_bytes() == body

    missing = cli("fetch", "cli-licensed", "--from", str(tmp_path / "nope"))
    assert missing.exit_code == 2
    assert "no such file or folder" in missing.stderr


def test_fetch_cache_dir_option_wins_over_env(
    server: TestServer, write_manifest: ManifestWriter, tmp_path: Path, cache: Path
) -> None:
    add_dataset(server, write_manifest, "cli-cachedir")
    other = tmp_path / "other-cache"
    result = cli("fetch", "cli-cachedir", "--cache-dir", str(other))
    assert result.exit_code == 0, result.stderr
    assert (other / "artifacts" / "cli-cachedir" / "part0.bin").is_file()
    assert not fetched_dir(cache, "cli-cachedir").exists()
    assert cli("path", "cli-cachedir", "--cache-dir", str(other)).exit_code == 0
    assert cli("path", "cli-cachedir").exit_code == 3


BROKEN = """schema = 1
[[dataset]]
name = "Broken Name"
description = 3
[[dataset.files]]
name = "a.bin"
urls = ["gopher://example.org/a.bin"]
checksum = "md5:1234"
"""


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["list", "--json"],
        ["show", "squad"],
        ["fetch", "squad"],
        ["verify"],
        ["path", "squad"],
        ["status"],
        ["gc", "--dry-run"],
    ],
)
def test_broken_manifest_makes_every_command_exit_6(write_manifest: ManifestWriter, args: list[str]) -> None:
    path = write_manifest(BROKEN, name="broken")
    result = cli(*args)
    assert result.exit_code == 6, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"provision: error: {path}: ")
    assert "provision lint" in result.stderr
    assert "Traceback" not in result.stderr


def test_broken_manifest_lint_without_arguments(write_manifest: ManifestWriter) -> None:
    path = write_manifest(BROKEN, name="broken")
    result = cli("lint")
    assert result.exit_code == 6
    assert str(path) in result.stderr
    assert "manifests ok" not in result.stdout


# ---------------------------------------------------------------------------------------
# verify / path


def test_verify_ok_then_corrupted(server: TestServer, write_manifest: ManifestWriter, cache: Path) -> None:
    add_dataset(server, write_manifest, "cli-verify", nfiles=2)
    assert cli("fetch", "cli-verify", "-q").exit_code == 0
    ok = cli("verify")
    assert ok.exit_code == 0, ok.stderr
    assert ok.stdout.startswith("2 files checked, 0 re-hashed")
    assert cli("verify", "cli-verify", "--full").exit_code == 0

    view = fetched_dir(cache, "cli-verify") / "part1.bin"
    flip_byte(view)
    bad = cli("verify", "cli-verify")
    assert bad.exit_code == 3
    errors = error_lines(bad.stderr)
    assert len(errors) == 1, bad.stderr
    assert "cli-verify/part1.bin" in errors[0]
    assert str(view) in errors[0]
    assert "Traceback" not in bad.stderr

    full = cli("verify", "--full")
    assert full.exit_code == 3
    (line,) = error_lines(full.stderr)
    assert "cli-verify/part1.bin: checksum mismatch" in line
    assert "expected md5:" in line

    # fetch repairs it from the server.
    repaired = cli("fetch", "cli-verify", "--json")
    assert repaired.exit_code == 0, repaired.stderr
    states = {f["name"]: f["state"] for f in json.loads(repaired.stdout)["files"]}
    assert states == {"part0.bin": "cached", "part1.bin": "repaired"}
    assert cli("verify", "--full").exit_code == 0


def test_verify_json_shape(server: TestServer, write_manifest: ManifestWriter) -> None:
    bodies = add_dataset(server, write_manifest, "cli-verify-json", nfiles=2)
    assert cli("fetch", "cli-verify-json", "-q").exit_code == 0
    fast = json.loads(cli("verify", "--json").stdout)
    assert {"ok", "files_hashed", "bytes_hashed", "files"} <= set(fast)
    assert fast["ok"] is True
    assert fast["files_hashed"] == 0
    assert fast["bytes_hashed"] == 0
    full = cli("verify", "cli-verify-json", "--full", "--json")
    assert full.exit_code == 0, full.stderr
    doc = json.loads(full.stdout)
    assert doc["full"] is True
    assert doc["files_hashed"] == 2
    assert doc["bytes_hashed"] == sum(len(b) for b in bodies.values())
    for f in doc["files"]:
        assert f["artifact"] == "cli-verify-json"
        assert f["state"] == "ok"
        assert f["ok"] is True
        assert f["name"] in bodies


def test_verify_not_fetched_exits_3(server: TestServer, write_manifest: ManifestWriter) -> None:
    add_dataset(server, write_manifest, "cli-verify-missing")
    result = cli("verify", "cli-verify-missing")
    assert result.exit_code == 3
    (line,) = error_lines(result.stderr)
    assert "cli-verify-missing/part0.bin: missing" in line
    assert "provision fetch cli-verify-missing" in line


def test_path_before_and_after_fetch(server: TestServer, write_manifest: ManifestWriter, cache: Path) -> None:
    add_dataset(server, write_manifest, "cli-path")
    before = cli("path", "cli-path")
    assert before.exit_code == 3
    assert before.stdout == ""
    assert before.stderr.startswith("provision: error: cli-path is not fetched")
    assert cli("fetch", "cli-path", "-q").exit_code == 0
    after = cli("path", "cli-path")
    assert after.exit_code == 0, after.stderr
    assert after.stdout == f"{fetched_dir(cache, 'cli-path')}\n"


def test_fetch_and_path_of_a_benchmark(server: TestServer, write_manifest: ManifestWriter, cache: Path) -> None:
    data = os.urandom(5000)
    weights = os.urandom(7000)
    text = "\n".join(
        [
            dataset_toml("cli-bench-data", [("d.bin", [server.add("/cli/bench/d.bin", data)], data, None)]),
            dataset_toml(
                "cli-bench-model", [("m.onnx", [server.add("/cli/bench/m.onnx", weights)], weights, None)], kind="model"
            ).replace("schema = 1\n", ""),
            "[[benchmark]]",
            'name = "cli-bench"',
            'dataset = "cli-bench-data"',
            'models = ["cli-bench-model"]',
            "[benchmark.accuracy]",
            'metric = "top1"',
            "reference = 50.0",
            "target_ratio = [0.99, 0.999]",
        ]
    )
    write_manifest(text + "\n", name="bench")
    result = cli("fetch", "cli-bench")
    assert result.exit_code == 0, result.stderr
    assert f"cli-bench-data\t{fetched_dir(cache, 'cli-bench-data')}" in result.stdout.splitlines()
    assert f"cli-bench-model\t{fetched_dir(cache, 'cli-bench-model')}" in result.stdout.splitlines()
    paths = cli("path", "cli-bench")
    assert paths.exit_code == 0, paths.stderr
    assert paths.stdout.splitlines() == [
        f"cli-bench-data\t{fetched_dir(cache, 'cli-bench-data')}",
        f"cli-bench-model\t{fetched_dir(cache, 'cli-bench-model')}",
    ]
    shown = json.loads(cli("show", "cli-bench", "--json").stdout)
    assert shown["accuracy"]["targets"] == pytest.approx([49.5, 49.95])


# ---------------------------------------------------------------------------------------
# lint / hash


def test_lint_builtin_manifests_ok() -> None:
    result = cli("lint")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "manifests ok\n"
    assert result.stderr == ""


def test_lint_bad_file_lists_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(BROKEN, encoding="utf-8")
    result = cli("lint", str(bad))
    assert result.exit_code == 6
    lines = result.stderr.splitlines()
    problems = [line for line in lines if line.startswith(f"{bad}: ")]
    assert lines[-1] == f"provision: {len(problems)} manifest problem(s)"
    assert len(problems) == len(lines) - 1
    text = "\n".join(problems)
    assert "'Broken Name'" in text  # bad name
    assert "description: expected a string" in text
    assert "gopher" in text  # bad URL scheme
    assert "checksum" in text  # too-short md5
    assert len(problems) >= 4
    assert result.stdout == ""


def test_lint_missing_path_exits_6(tmp_path: Path) -> None:
    result = cli("lint", str(tmp_path / "absent.toml"))
    assert result.exit_code == 6
    assert "no such file or folder" in result.stderr


def test_hash(tmp_path: Path) -> None:
    a = tmp_path / "a.bin"
    b = tmp_path / "b.bin"
    a.write_bytes(os.urandom(3_000_000))
    b.write_bytes(b"")
    result = cli("hash", str(a), str(b))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"sha256:{hashlib.sha256(a.read_bytes()).hexdigest()}  {a}",
        f"sha256:{hashlib.sha256(b'').hexdigest()}  {b}",
    ]
    both = cli("hash", "--alg", "md5", "--alg", "xxh3_128", str(a))
    assert both.exit_code == 0, both.stderr
    assert both.stdout.splitlines() == [
        f"md5:{hashlib.md5(a.read_bytes()).hexdigest()}  {a}",
        f"xxh3_128:{xxhash.xxh3_128(a.read_bytes()).hexdigest()}  {a}",
    ]


def test_hash_errors_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "f.bin"
    f.write_bytes(b"data")
    unknown = cli("hash", "--alg", "crc32", str(f))
    assert unknown.exit_code == 2
    assert unknown.stderr.splitlines() == [
        "provision: error: unknown algorithm 'crc32'; expected one of md5, sha1, sha256, sha512, xxh3_128, xxh64"
    ]
    assert cli("hash", str(tmp_path)).exit_code == 2
    missing = cli("hash", str(tmp_path / "absent"))
    assert missing.exit_code == 2
    assert "not a file" in missing.stderr


# ---------------------------------------------------------------------------------------
# status / gc


def test_status_and_gc(server: TestServer, write_manifest: ManifestWriter, cache: Path) -> None:
    old = os.urandom(40_000)
    new = os.urandom(41_000)
    old_url = server.add("/cli/gc/v1.bin", old)
    new_url = server.add("/cli/gc/v2.bin", new)
    write_manifest(dataset_toml("cli-gc", [("data.bin", [old_url], old, None)]), name="gc")
    assert cli("fetch", "cli-gc", "-q").exit_code == 0

    status = cli("status")
    assert status.exit_code == 0, status.stderr
    assert status.stdout.splitlines()[0] == f"cache: {cache}"
    (row,) = [line for line in status.stdout.splitlines() if "cli-gc" in line]
    assert row.split()[1:3] == ["present", "1/1"]
    doc = json.loads(cli("status", "--json").stdout)
    assert [r["name"] for r in doc["artifacts"]] == ["cli-gc"]
    assert doc["total_bytes"] == len(old)

    nothing = cli("gc", "--dry-run")
    assert nothing.exit_code == 0, nothing.stderr
    assert nothing.stdout == "would remove 0 file(s), 0 B\n"

    # The manifest moves to a new version: the old blob is referenced by nothing.
    write_manifest(dataset_toml("cli-gc", [("data.bin", [new_url], new, None)]), name="gc")
    assert cli("fetch", "cli-gc", "-q").exit_code == 0
    old_blob = cache / "blobs" / "md5" / md5(old)[4:6] / md5(old)[4:]
    assert old_blob.is_file()

    dry = cli("gc", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert f"would remove {old_blob} (" in dry.stdout
    assert "no manifest references it" in dry.stdout
    assert dry.stdout.splitlines()[-1].startswith("would remove 1 file(s)")
    assert old_blob.is_file()

    real = cli("gc")
    assert real.exit_code == 0, real.stderr
    assert f"removed {old_blob} (" in real.stdout
    assert real.stdout.splitlines()[-1].startswith("removed 1 file(s)")
    assert not old_blob.exists()
    assert cli("verify", "cli-gc", "--full").exit_code == 0
    assert cli("gc", "--dry-run").stdout == "would remove 0 file(s), 0 B\n"


# ---------------------------------------------------------------------------------------
# usage, errors, help


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["fetch", "squad", "--bogus"], "No such option"),
        (["list", "--bogus"], "No such option"),
        (["show"], "Missing argument"),
        (["fetch"], "Missing argument"),
        (["hash"], "Missing argument"),
        (["nonsense-command"], "No such command"),
        (["fetch", "squad", "--jobs", "lots"], "--jobs"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    """A usage error is one line like every other error, with the help to read next (no usage box)."""
    result = cli(*args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    [line] = result.stderr.splitlines()
    command = "provision" if args[0] == "nonsense-command" else f"provision {args[0]}"
    assert line.startswith("provision: error: ") and line.endswith(f"; try '{command} --help'"), line
    assert message in line


def test_a_usage_error_is_one_line_from_the_real_command() -> None:
    proc = run_process("fetch", module=False)
    assert proc.returncode == 2
    assert proc.stderr == "provision: error: Missing argument 'NAME...'; try 'provision fetch --help'\n"
    bare = run_process(module=False)
    assert bare.returncode == 2 and bare.stderr.startswith("Usage: provision [OPTIONS] COMMAND")  # the help


def test_bad_environment_value_is_a_usage_error() -> None:
    result = cli("status", env={"PROVISION_LOCK_TIMEOUT": "soon"})
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "provision: error: PROVISION_LOCK_TIMEOUT='soon' is not a number; unset it or give e.g. 1800.0"
    ]


def _options_with_envvars() -> list[tuple[str, str]]:
    """(command, env var) for every option that reads an environment variable."""
    group: Any = typer.main.get_command(app)  # typer vendors click: inspect by attribute
    out = []
    for name, command in group.commands.items():
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            if getattr(param, "param_type_name", "") == "option" and envvar:
                out.extend((name, e) for e in ([envvar] if isinstance(envvar, str) else envvar))
    return out


def test_help_names_every_env_var() -> None:
    fetch_help = cli("fetch", "--help", env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert fetch_help.exit_code == 0
    assert "PROVISION_JOBS" in fetch_help.stdout
    assert "PROVISION_CACHE" in fetch_help.stdout

    options = _options_with_envvars()
    assert {name for name, _ in options} >= {"list", "show", "fetch", "verify", "status", "gc"}
    assert ("fetch", "PROVISION_JOBS") in options
    helps: dict[str, str] = {}
    for name, envvar in options:
        if name not in helps:
            result = cli(name, "--help", env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
            assert result.exit_code == 0
            helps[name] = result.stdout
        assert envvar in helps[name], f"'provision {name} --help' does not name {envvar}"


def test_errors_are_one_line_without_traceback() -> None:
    result = cli("path", "squad")
    assert result.exit_code == 3
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("provision: error: squad-v1.1 is not fetched")


def test_debug_env_shows_traceback_in_a_real_process() -> None:
    plain = run_process("show", "no-such-thing")
    assert plain.returncode == 2
    assert "Traceback" not in plain.stderr
    assert plain.stderr.splitlines() == [
        "provision: error: unknown name 'no-such-thing'; run 'provision list' to see what is defined"
    ]
    debug = run_process("show", "no-such-thing", env={"PROVISION_DEBUG": "1"})
    assert debug.returncode == 2
    assert "Traceback (most recent call last)" in debug.stderr
    assert "UnknownNameError" in debug.stderr
    assert debug.stderr.splitlines()[-1].startswith("provision: error: unknown name 'no-such-thing'")


# ---------------------------------------------------------------------------------------
# real processes


def test_script_fetch_json_stdout_is_only_json(server: TestServer, write_manifest: ManifestWriter, cache: Path) -> None:
    # One good file whose first URL 404s (a note goes to stderr), so stdout purity is tested.
    body = os.urandom(100_000)
    urls = [server.url("/cli/proc-json/missing.bin"), server.add("/cli/proc-json/f.bin", body)]
    write_manifest(dataset_toml("cli-proc-json", [("f.bin", urls, body, None)]))
    proc = run_process("fetch", "cli-proc-json", "--json", module=False)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)  # fails on anything that is not JSON
    assert doc["ok"] is True
    assert doc["files"][0]["source"] == urls[1]
    assert doc["files"][0]["attempts"] == [{"url": urls[0], "answer": "HTTP 404 Not Found"}]
    assert proc.stdout.strip().startswith("{")
    assert "\x1b" not in proc.stdout and "\r" not in proc.stdout
    assert (fetched_dir(cache, "cli-proc-json") / "f.bin").read_bytes() == body

    failing = run_process("fetch", "cli-proc-json", "no-such-thing", "--json", module=False)
    assert failing.returncode == 2
    assert failing.stdout == ""


def test_module_and_script_agree(server: TestServer, write_manifest: ManifestWriter, cache: Path) -> None:
    add_dataset(server, write_manifest, "cli-proc")
    fetched = run_process("fetch", "cli-proc")
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.splitlines()[-1] == f"cli-proc\t{fetched_dir(cache, 'cli-proc')}"
    assert fetched.stderr == ""
    for module in (True, False):
        proc = run_process("path", "cli-proc", module=module)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == f"{fetched_dir(cache, 'cli-proc')}\n"
    wrong = run_process("fetch", "--bogus", module=False)
    assert wrong.returncode == 2


def test_offline_fetch_exits_4_without_touching_the_network(server: TestServer, write_manifest: ManifestWriter) -> None:
    add_dataset(server, write_manifest, "cli-offline")
    result = cli("fetch", "cli-offline", env={"PROVISION_OFFLINE": "1"})
    assert result.exit_code == 4
    (line,) = error_lines(result.stderr)
    assert "PROVISION_OFFLINE=1" in line
    assert "--from" in line
    assert server.hits.get("/cli/cli-offline/part0.bin", 0) == 0


def test_unexpected_error_is_one_line_exit_1(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "cache-is-a-file"
    not_a_folder.write_text("oops")
    for args in (["verify", "squad"], ["fetch", "squad"]):
        result = cli(*args, "--cache-dir", str(not_a_folder))
        assert result.exit_code == 1, (args, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("provision: error: ")
        assert str(not_a_folder) in result.stderr
        assert "Traceback" not in result.stderr


def test_ctrl_c_stops_a_fetch_promptly(server: TestServer, write_manifest: ManifestWriter, cache: Path) -> None:
    """SIGINT: exit 130 within seconds; queued files are not downloaded, nothing is taken as complete."""
    files = []
    for i in range(3):
        body = os.urandom(24 << 20)
        url = server.add(f"/cli/sigint/f{i}.bin", body, rate=2_000_000.0)  # ~12 s per file
        files.append((f"f{i}.bin", [url], body, None))
    write_manifest(dataset_toml("cli-sigint", files))
    proc = subprocess.Popen(
        [str(PROVISION), "fetch", "cli-sigint", "--jobs", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_at_default,
    )
    try:
        deadline = time.monotonic() + 20
        while not any(p.stat().st_size > 0 for p in cache.glob("blobs/**/*.part-*")):
            assert time.monotonic() < deadline, "the download never started"
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert "provision: interrupted" in stderr
    assert "Traceback" not in stderr
    assert took < 6, f"Ctrl-C took {took:.1f}s to stop the fetch"
    started = [f"/cli/sigint/f{i}.bin" for i in range(3) if server.hits.get(f"/cli/sigint/f{i}.bin")]
    assert len(started) == 1, started  # --jobs 1: the queued files were never requested
    assert not any((fetched_dir(cache, "cli-sigint") / f"f{i}.bin").exists() for i in range(3))
    assert cli("path", "cli-sigint").exit_code == 3


def test_list_shows_every_benchmark_with_size_and_status() -> None:
    doc = json.loads(cli("list", "--json").stdout)
    benches = {e["name"]: e for e in doc["entries"] if e["kind"] == "benchmark"}
    assert {"resnet50", "bert", "3d-unet", "rnnt", "dlrm-v2", "gpt-j", "llama2-70b"} <= set(benches)
    resnet = benches["resnet50"]
    assert resnet["status"] == "current" and resnet["state"] == "absent"
    assert resnet["size"] >= 6744924160 and resnet["unknown_sizes"] >= 1
    assert benches["rnnt"]["status"] == "retired"
    text = cli("list").stdout
    assert any(line.startswith("resnet50 ") and "benchmark" in line and "GiB+" in line for line in text.splitlines())


def test_closed_stdout_is_not_an_error() -> None:
    """`provision show x | head -1`: a closed pipe ends the command quietly, exit 0."""
    proc = subprocess.run(
        f"{sys.executable} -m provision.cli show 3d-unet | head -c 10 >/dev/null",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "BrokenPipeError" not in proc.stderr and "error" not in proc.stderr, proc.stderr


def test_the_final_error_names_three_sources_and_json_all(server: TestServer, write_manifest: ManifestWriter) -> None:
    """Six mirrors that 404: the error line names the first three and says how many more; --json has all six."""
    body = os.urandom(100)
    urls = [server.url(f"/cli/six/{i}/f.bin") for i in range(6)]
    write_manifest(dataset_toml("cli-six", [("f.bin", urls, body, None)]), "cli-six")
    text = cli("fetch", "cli-six")
    assert text.exit_code == 4
    [line] = error_lines(text.stderr)
    assert all(u in line for u in urls[:3]) and not any(u in line for u in urls[3:]), line
    assert "and 3 more (all in --json)" in line and len(line) < 400, len(line)
    doc = json.loads(cli("fetch", "cli-six", "--json").stdout)
    assert [a["url"] for a in doc["files"][0]["attempts"]] == urls


def test_retry_notes_are_one_line_per_url(server: TestServer, write_manifest: ManifestWriter) -> None:
    """A host that keeps answering 503 is retried, but --verbose notes it once, not once per retry."""
    body = os.urandom(100)
    flaky = server.add("/cli/flaky/f.bin", body, status=503)
    write_manifest(dataset_toml("cli-flaky", [("f.bin", [flaky], body, None)]), "cli-flaky")
    result = cli("fetch", "cli-flaky", "--verbose", env={"PROVISION_RETRIES": "3"})
    assert result.exit_code == 4
    notes = [line for line in result.stderr.splitlines() if not line.startswith("provision: error:")]
    assert len(notes) == 1 and "HTTP 503" in notes[0], result.stderr
    assert server.hits["/cli/flaky/f.bin"] == 4  # 1 try + 3 retries
