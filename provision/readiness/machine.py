"""Machine-level probes of ``provision doctor``: Python, installed packages, the cache filesystem, GPUs.

Each probe returns :class:`Check` lines (ok / warn / fail / skip, with the fix); a machine
problem is a ``fail`` or ``warn`` line, never an exception. :mod:`provision.readiness` adds the
checks that depend on a benchmark's manifests and assembles the report.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from provision.config import Settings
from provision.validation.models import RUNTIME_DISTRIBUTIONS
from provision.validation.runners.device import cuda_available

__all__ = [
    "BASE_PACKAGES",
    "EXTRA_PACKAGES",
    "MIN_PYTHON",
    "Check",
    "Package",
    "Status",
    "check_cache",
    "check_gpu",
    "check_python",
    "existing",
    "filesystem_of",
    "installed",
    "package_check",
]

Status = Literal["ok", "warn", "fail", "skip"]


@dataclass
class Check:
    """One line of the report: what was checked, its status, what was found and how to fix it."""

    name: str
    status: Status
    detail: str
    fix: str = ""


# -- installed packages -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Package:
    """A distribution provision uses: the module it provides, the minimum version, its extra ("" = base)."""

    dist: str
    module: str
    minimum: str
    extra: str
    purpose: str
    alternatives: tuple[str, ...] = ()  # other distributions that provide the same module


#: The base dependencies of pyproject.toml (tests check the two agree).
BASE_PACKAGES: tuple[Package, ...] = (
    Package("requests", "requests", "2.31", "", "HTTP sources"),
    Package("tqdm", "tqdm", "4.66", "", "progress bars"),
    Package("huggingface-hub", "huggingface_hub", "0.23", "", "hf:// sources"),
    Package("xxhash", "xxhash", "3.4", "", "fast file digests"),
    Package("typer", "typer", "0.12", "", "the CLI"),
    Package("numpy", "numpy", "1.24", "", "arrays"),
    Package("filelock", "filelock", "3.20.3", "", "cache locks (O_NOFOLLOW lock files)"),
    Package("platformdirs", "platformdirs", "3.0", "", "the default cache folder"),
    Package("zstandard", "zstandard", "0.22", "", ".zst archives"),
    Package(
        "opencv-python-headless",
        "cv2",
        "4.8",
        "",
        "image recipes",
        ("opencv-python", "opencv-contrib-python", "opencv-contrib-python-headless"),
    ),
    Package("pillow", "PIL", "10", "", "the torchvision image recipe"),
    Package("tokenizers", "tokenizers", "0.15", "", "the BERT recipe"),
)

#: The optional extras of pyproject.toml, by distribution name.
EXTRA_PACKAGES: dict[str, Package] = {
    p.dist: p
    for p in (
        Package(
            "onnxruntime", "onnxruntime", "1.16", "onnx", "runs ONNX models", RUNTIME_DISTRIBUTIONS["onnxruntime"][1:]
        ),
        Package("torch", "torch", "2.1", "torch", "runs TorchScript and PyTorch models"),
        Package("torchvision", "torchvision", "0.16", "vision", "builds torchvision architectures for state dicts"),
        Package("pycocotools", "pycocotools", "2.0.7", "metrics", "COCO mAP (RetinaNet)"),
        Package("rouge-score", "rouge_score", "0.1.2", "metrics", "ROUGE (GPT-J, Llama)"),
        Package("scikit-learn", "sklearn", "1.3", "metrics", "AUC (DLRM)"),
        Package("nvidia-ml-py", "pynvml", "12", "nvml", "GPU names and energy through NVML"),
        Package("nibabel", "nibabel", "5", "kits19", "reads KiTS19 NIfTI volumes (3D U-Net recipe)"),
        Package("scipy", "scipy", "1.10", "kits19", "resamples KiTS19 volumes (3D U-Net recipe)"),
        Package("boto3", "boto3", "1.28", "s3", "s3:// sources"),
    )
}


def _version_tuple(text: str) -> tuple[int, ...]:
    match = re.match(r"\d+(?:\.\d+)*", text)
    return tuple(int(x) for x in match.group(0).split(".")) if match else ()


def installed(pkg: Package) -> tuple[bool, str | None]:
    """Whether ``pkg``'s module can be imported (without importing it) and its distribution's version."""
    try:
        found = importlib.util.find_spec(pkg.module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        return False, None
    for dist in (pkg.dist, *pkg.alternatives):
        try:
            return True, importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return True, None


def _install_hint(pkg: Package, upgrade: bool = False) -> str:
    flag = "-U " if upgrade else ""
    if pkg.extra:
        return f"pip install {flag}'provision[{pkg.extra}]'"
    return f"pip install {flag}'{pkg.dist}>={pkg.minimum}' (a dependency of provision)"


def package_check(pkg: Package, purpose: str, *, required: bool) -> Check:
    """``pkg`` installed at its minimum version? Missing or too old: fail when ``required``, else warn."""
    bad: Status = "fail" if required else "warn"
    found, version = installed(pkg)
    name = f"package {pkg.dist}"
    if not found:
        return Check(name, bad, f"not installed; {purpose}", _install_hint(pkg))
    if version is None:
        return Check(name, "ok", f"installed (version unknown; needs >= {pkg.minimum}); {purpose}")
    if _version_tuple(version) < _version_tuple(pkg.minimum):
        return Check(name, bad, f"{version} installed, needs >= {pkg.minimum}; {purpose}", _install_hint(pkg, True))
    return Check(name, "ok", f"{version} (>= {pkg.minimum}); {purpose}")


def _has(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


#: The oldest Python provision supports (pyproject's requires-python).
MIN_PYTHON = (3, 10)


def check_python() -> Check:
    """Python >= :data:`MIN_PYTHON`."""
    version = ".".join(str(v) for v in sys.version_info[:3])
    if sys.version_info < MIN_PYTHON:
        return Check("python", "fail", f"{version} ({sys.executable}); provision needs >= 3.10", "use Python 3.10+")
    return Check("python", "ok", f"{version} ({sys.executable})")


# -- cache: write access, locks, filesystem ---------------------------------------------------------


def existing(path: Path) -> Path:
    """``path`` or its nearest existing parent."""
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def filesystem_of(path: Path, mounts: Path = Path("/proc/mounts")) -> tuple[str, str, str, str] | None:
    """``(fstype, mount point, device, options)`` of the mount holding ``path``, from ``mounts``; None if unknown."""
    try:
        lines = mounts.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    target = str(existing(path).resolve())
    best: tuple[str, str, str, str] | None = None

    def unescape(s: str) -> str:
        return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)

    for line in lines:
        parts = line.split()
        if len(parts) < 4:
            continue
        device, point, fstype, options = unescape(parts[0]), unescape(parts[1]), parts[2], parts[3]
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[1])):
            best = (fstype, point, device, options)
    return best


def _lock_note(fstype: str, options: str) -> str:
    """Why locks on this mount may not reach other machines ("" when nothing is known against them)."""
    opts = set(options.split(","))
    if fstype.startswith("nfs"):
        if "nolock" in opts:
            return "NFS mounted with nolock: locks are local to this machine"
        for opt in opts:
            if opt.startswith("local_lock=") and opt != "local_lock=none":
                return f"NFS mounted with {opt}: those locks are local to this machine"
    if fstype in ("cifs", "smb3") and "nobrl" in opts:
        return "CIFS mounted with nobrl: byte-range locks are not sent to the server"
    return ""


_CHILD = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except (BlockingIOError, PermissionError):
    sys.exit(0)
except OSError as exc:
    print(exc.strerror or exc)
    sys.exit(4)
sys.exit(3)
"""


def _probe_locks(folder: Path) -> tuple[list[str], list[str]]:
    """``(enforced, problems)``: flock between two open files, lockf against a child process."""
    import fcntl

    path = folder / f".provision-doctor-{os.getpid()}-{uuid.uuid4().hex[:8]}.lock"
    fd1 = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fd2 = os.open(path, os.O_RDWR)
    enforced: list[str] = []
    problems: list[str] = []
    try:
        try:
            fcntl.flock(fd1, fcntl.LOCK_EX | fcntl.LOCK_NB)
            try:
                fcntl.flock(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB)
                problems.append("flock: a second exclusive lock on the same file succeeded")
            except BlockingIOError:
                enforced.append("flock")
            fcntl.flock(fd1, fcntl.LOCK_UN)
        except OSError as exc:
            problems.append(f"flock failed ({exc.strerror or exc})")
        try:
            fcntl.lockf(fd1, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            problems.append(f"lockf failed ({exc.strerror or exc})")
        else:
            child = subprocess.run(
                [sys.executable, "-I", "-c", _CHILD, str(path)], capture_output=True, text=True, timeout=30
            )
            if child.returncode == 0:
                enforced.append("lockf across processes")
            elif child.returncode == 3:
                problems.append("lockf: another process took the lock this one held")
            else:
                problems.append(f"lockf in a child process failed ({child.stdout.strip() or child.returncode})")
            fcntl.lockf(fd1, fcntl.LOCK_UN)
    finally:
        os.close(fd2)
        os.close(fd1)
        path.unlink(missing_ok=True)
    return enforced, problems


def _probe_write(folder: Path) -> None:
    """Create, fsync, rename and delete a temp file in ``folder`` (``OSError`` when any step fails)."""
    tmp = folder / f".provision-doctor-{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    final = tmp.with_suffix(".done")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, b"provision doctor\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        final.unlink()
    finally:
        tmp.unlink(missing_ok=True)
        final.unlink(missing_ok=True)


def check_cache(settings: Settings, mounts: Path = Path("/proc/mounts")) -> list[Check]:
    """Write access to the cache folder (or the parent it will be made in), lock enforcement, filesystem."""
    root = settings.cache_dir
    if root.exists() and not root.is_dir():
        return [
            Check(
                "cache write",
                "fail",
                f"{root} exists and is not a folder",
                "point --cache-dir / PROVISION_CACHE at a folder",
            )
        ]
    folder = root.absolute() if root.is_dir() else existing(root)
    where = str(root) if folder == root.absolute() else f"{folder} (the cache {root} does not exist yet)"
    try:
        _probe_write(folder)
    except OSError as exc:
        return [
            Check(
                "cache write",
                "fail",
                f"cannot write in {where}: {exc.strerror or exc}",
                f"make {folder} writable for this user, or point --cache-dir / PROVISION_CACHE elsewhere",
            )
        ]
    checks = [Check("cache write", "ok", f"create, fsync, rename, delete in {where}")]
    fs = filesystem_of(folder, mounts)
    note = _lock_note(fs[0], fs[3]) if fs else ""
    if fs is None:
        checks.append(Check("cache filesystem", "skip", f"unknown ({mounts} not readable)"))
    else:
        fstype, point, device, _ = fs
        checks.append(Check("cache filesystem", "ok", f"{fstype} ({device} on {point})"))
    why = (
        "provision stays correct (each writer uses its own temp file and an atomic rename), but two "
        "processes or machines may download the same file twice"
    )
    fix = (
        "mount NFS with working locks (no nolock/local_lock), or give each machine its own cache and share "
        "files with --from or PROVISION_MIRRORS"
    )
    if not hasattr(os, "fork") or sys.platform == "win32":
        checks.append(Check("cache locks", "skip", "lock probe runs on POSIX systems only"))
        return checks
    try:
        enforced, problems = _probe_locks(folder)
    except (OSError, subprocess.SubprocessError) as exc:
        checks.append(Check("cache locks", "warn", f"lock probe failed ({exc}); {why}", fix))
        return checks
    reasons = [*problems, *([note] if note else [])]
    if reasons:
        checks.append(Check("cache locks", "warn", f"locks not enforced here: {'; '.join(reasons)}; {why}", fix))
    else:
        checks.append(Check("cache locks", "ok", f"enforced ({' and '.join(enforced)})"))
    return checks


# -- GPU ------------------------------------------------------------------------------------------------


def _nvidia_smi(timeout: float) -> tuple[Check, int]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return Check("gpu nvidia-smi", "skip", "nvidia-smi not found (no NVIDIA driver installed)"), 0
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=max(timeout, 5.0),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("gpu nvidia-smi", "warn", f"nvidia-smi did not answer ({type(exc).__name__})"), 0
    lines = [ln.strip() for ln in out.stdout.splitlines() if ln.strip()]
    if out.returncode != 0 or not lines:
        first = (out.stdout or out.stderr).strip().splitlines()[:1]
        return Check(
            "gpu nvidia-smi",
            "warn",
            f"nvidia-smi failed: {first[0] if first else out.returncode}",
            "check the NVIDIA driver (the kernel module must match the user-space driver)",
        ), 0
    return Check("gpu nvidia-smi", "ok", f"{len(lines)} GPU(s): {'; '.join(lines[:4])}"), len(lines)


def _nvml() -> tuple[Check, int]:
    if not _has("pynvml"):
        return Check(
            "gpu nvml",
            "skip",
            "pynvml not installed (GPU energy is then not measured)",
            "pip install 'provision[nvml]'",
        ), 0
    try:
        nvml: Any = importlib.import_module("pynvml")
        nvml.nvmlInit()
        try:
            count = int(nvml.nvmlDeviceGetCount())
            driver = nvml.nvmlSystemGetDriverVersion()
        finally:
            nvml.nvmlShutdown()
    except Exception as exc:  # pynvml raises NVMLError subclasses; a missing libnvidia-ml is one of them
        return Check("gpu nvml", "skip", f"NVML not available ({type(exc).__name__}: {exc})"), 0
    driver = driver.decode() if isinstance(driver, bytes) else str(driver)
    return Check("gpu nvml", "ok", f"{count} device(s), driver {driver}"), count


def check_gpu(timeout: float = 3.0) -> list[Check]:
    """What sees a GPU: torch, onnxruntime's providers, nvidia-smi, NVML; no GPU is fine (CPU validation)."""
    checks: list[Check] = []
    torch_gpus = 0
    if not _has("torch"):
        checks.append(Check("gpu torch", "skip", "torch not installed"))
    elif cuda_available():
        torch: Any = importlib.import_module("torch")
        torch_gpus = int(torch.cuda.device_count())
        names = ", ".join(str(torch.cuda.get_device_name(i)) for i in range(min(torch_gpus, 4)))
        checks.append(Check("gpu torch", "ok", f"torch {torch.__version__} (CUDA {torch.version.cuda}): {names}"))
    else:
        checks.append(Check("gpu torch", "skip", "torch sees no CUDA device"))
    ort_cuda: bool | None = None
    if _has("onnxruntime"):
        try:
            ort: Any = importlib.import_module("onnxruntime")
            providers = [str(p) for p in ort.get_available_providers()]
        except Exception as exc:  # a broken onnxruntime build fails in many ways
            checks.append(Check("gpu onnxruntime", "warn", f"onnxruntime does not load ({type(exc).__name__})"))
        else:
            ort_cuda = "CUDAExecutionProvider" in providers
            checks.append(Check("gpu onnxruntime", "ok" if ort_cuda else "skip", f"providers: {', '.join(providers)}"))
    else:
        checks.append(Check("gpu onnxruntime", "skip", "onnxruntime not installed"))
    smi, smi_gpus = _nvidia_smi(timeout)
    nvml, nvml_gpus = _nvml()
    checks += [smi, nvml]
    driver_gpus = max(smi_gpus, nvml_gpus)
    if driver_gpus and torch_gpus == 0 and _has("torch"):
        checks.append(
            Check(
                "gpu",
                "warn",
                f"the driver sees {driver_gpus} GPU(s) but torch sees none",
                "install a torch build for this driver's CUDA version; check CUDA_VISIBLE_DEVICES",
            )
        )
    elif driver_gpus and ort_cuda is False:
        checks.append(
            Check(
                "gpu",
                "warn",
                f"the driver sees {driver_gpus} GPU(s) but onnxruntime is a CPU build",
                "pip uninstall onnxruntime && pip install onnxruntime-gpu",
            )
        )
    elif torch_gpus or ort_cuda:
        checks.append(Check("gpu", "ok", "CUDA available for validation"))
    else:
        checks.append(Check("gpu", "ok", "no CUDA device (CPU validation only)"))
    return checks
