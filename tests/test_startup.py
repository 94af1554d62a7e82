"""Start-up of the ``provision`` command: which libraries each command loads, and ``--version``.

Every test runs the real entry point (:func:`provision.cli.app.main`) in a fresh subprocess of
this interpreter, with the isolated environment of ``conftest.py``. A small wrapper registers an
``atexit`` hook before importing provision, so that the names in ``sys.modules`` are recorded when
the command has finished (after typer's ``sys.exit``) and written to a file as JSON. Nothing of
provision is mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ManifestWriter, dataset_toml

from provision.version import __version__

#: Libraries no command below may load: each costs tens to hundreds of milliseconds to import.
HEAVY = (
    "numpy",
    "requests",
    "urllib3",
    "cv2",
    "PIL",
    "torch",
    "onnxruntime",
    "huggingface_hub",
    "boto3",
    "tokenizers",
    "tqdm",
    "filelock",  # ~30 ms: only commands that take a lock import it
)

#: ``provision fetch`` of a local file needs the HTTP stack (sources) but no numeric library.
HEAVY_FOR_FETCH = ("numpy", "cv2", "torch", "onnxruntime", "tokenizers")

# argv[1] is the file to write the module names to; the rest is the command line.
_PROBE = """\
import atexit, sys

out = sys.argv[1]

def _record():
    names = sorted(sys.modules)
    import json
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(names, fh)

atexit.register(_record)
sys.argv = ["provision", *sys.argv[2:]]
from provision.cli.app import main
main()
"""


def run_cli(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``provision ARGS`` in a new process; its result and every module (and top-level package) it loaded."""
    out = tmp_path / f"modules-{len(list(tmp_path.glob('modules-*')))}.json"
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(out), *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )
    assert out.is_file(), f"the process did not reach its atexit hook: {proc.returncode} {proc.stderr}"
    names = json.loads(out.read_text(encoding="utf-8"))
    return proc, set(names) | {name.partition(".")[0] for name in names}


def small_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.bin"
    path.write_bytes(b"provision start-up\n")
    return path


COMMANDS: list[tuple[str, tuple[str, ...], int]] = [
    ("help", ("--help",), 0),
    ("version", ("--version",), 0),
    ("list", ("list",), 0),
    ("show", ("show", "resnet50"), 0),
    ("path", ("path", "resnet50-onnx"), 3),  # not fetched: exit 3, after loading what the command needs
    ("status", ("status",), 0),
    ("verify", ("verify",), 0),
    ("lint", ("lint",), 0),
    ("hash", ("hash", "FILE"), 0),
    ("harness", ("harness", "3d-unet"), 2),  # no harness story: said before any stage is loaded
]


@pytest.mark.parametrize(("args", "code"), [c[1:] for c in COMMANDS], ids=[c[0] for c in COMMANDS])
def test_command_loads_no_heavy_library(tmp_path: Path, args: tuple[str, ...], code: int) -> None:
    args = tuple(str(small_file(tmp_path)) if a == "FILE" else a for a in args)
    proc, loaded = run_cli(tmp_path, *args)
    assert proc.returncode == code, proc.stderr
    assert sorted(loaded & set(HEAVY)) == []


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_load_no_rich(tmp_path: Path, flag: str) -> None:
    """typer's rich help (rich + typer.rich_utils) alone takes longer to import than typer itself."""
    proc, loaded = run_cli(tmp_path, flag)
    assert proc.returncode == 0, proc.stderr
    assert "rich" not in loaded and "typer.rich_utils" not in loaded


def test_plain_help_keeps_each_command_summary_whole(tmp_path: Path) -> None:
    """click alone would cut 'Download NAME... into the cache ...' after 'NAME...'."""
    proc, _ = run_cli(tmp_path, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "  fetch       Download NAME... into the cache and verify every file.\n" in proc.stdout
    text = " ".join(proc.stdout.split())
    summary = (
        "validate Run NAME's reference model on its preprocessed data on this machine and score it with "
        "MLPerf's metric; exit 5 below target."
    )
    assert summary in text


def test_fetch_of_a_local_file_loads_no_numeric_library(tmp_path: Path, write_manifest: ManifestWriter) -> None:
    body = b"a tiny local file\n"
    src = tmp_path / "tiny.bin"
    src.write_bytes(body)
    write_manifest(dataset_toml("startup-tiny", [("tiny.bin", [src.as_uri()], body, None)]))
    proc, loaded = run_cli(tmp_path, "fetch", "startup-tiny", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True
    assert sorted(loaded & set(HEAVY_FOR_FETCH)) == []
    # The probe sees what is imported while the command runs, not only at start-up.
    assert "provision.fetching.run" in loaded


def test_version_prints_the_version_and_exits_0(tmp_path: Path) -> None:
    proc, _ = run_cli(tmp_path, "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"provision {__version__}\n"
    assert proc.stderr == ""


def test_version_is_listed_in_help(tmp_path: Path) -> None:
    proc, _ = run_cli(tmp_path, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "--version" in proc.stdout


def test_no_arguments_still_shows_help(tmp_path: Path) -> None:
    proc, _ = run_cli(tmp_path)
    # no_args_is_help: the help, and the usage status 2, as before --version existed.
    assert proc.returncode == 2
    assert "Usage: provision" in proc.stdout + proc.stderr
    assert "--version" in proc.stdout + proc.stderr


_FROZEN_PROBE = """\
import atexit, gc, sys

out = sys.argv[1]
atexit.register(lambda: open(out, "w", encoding="utf-8").write(str(gc.get_freeze_count())))
sys.argv = ["provision", *sys.argv[2:]]
from provision.cli.app import main
main()
"""


@pytest.mark.parametrize("args", [("--version",), ("list",), ("no-such-command",)])
def test_the_entry_point_freezes_its_objects_before_exit(tmp_path: Path, args: tuple[str, ...]) -> None:
    """The interpreter's garbage collections at exit skip frozen objects (about 80 ms of a fetch here),
    on success and on errors alike."""
    out = tmp_path / "frozen.txt"
    proc = subprocess.run(
        [sys.executable, "-c", _FROZEN_PROBE, str(out), *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode in (0, 2), proc.stderr
    assert int(out.read_text(encoding="utf-8")) > 10_000
