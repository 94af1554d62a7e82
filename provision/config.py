"""Settings: the only place ``PROVISION_*`` environment variables are read.

Read once, at call time, into a frozen :class:`Settings`; library functions take a
``Settings`` and never look at ``os.environ`` themselves.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from provision.errors import UsageError

__all__ = [
    "ENV_VARS",
    "Settings",
    "builtin_manifest_dir",
    "cuda_visible_devices",
    "default_cache_dir",
    "environment_snapshot",
    "redact_url",
]

#: Every environment variable provision reads, and what it sets.
ENV_VARS: dict[str, str] = {
    "PROVISION_CACHE": "cache root (default: <checkout>/cache, else the user cache folder)",
    "PROVISION_MANIFESTS": "extra manifest folders, os.pathsep-separated",
    "PROVISION_JOBS": "how many files are fetched at once (default 4)",
    "PROVISION_OFFLINE": "1 makes any network access an error",
    "PROVISION_DEBUG": "1 shows tracebacks",
    "PROVISION_LOCK_TIMEOUT": "seconds to wait for another process's artifact lock (default 1800)",
    "PROVISION_CONNECT_TIMEOUT": "HTTP connect timeout in seconds (default 15)",
    "PROVISION_READ_TIMEOUT": "HTTP read timeout in seconds; a stalled connection is dropped (default 60)",
    "PROVISION_RETRIES": "retries per URL without progress before the next mirror (default 5)",
    "PROVISION_BACKOFF": "first retry delay in seconds, doubled each time, with jitter (default 1)",
    "PROVISION_SEGMENT_THRESHOLD": "files at least this many bytes download in parallel segments (default 64 MiB)",
    "PROVISION_LOW_SPEED_LIMIT": "bytes/s below which a connection is too slow (default 1024; 0: no limit)",
    "PROVISION_LOW_SPEED_TIME": "seconds below the low-speed limit before a connection is dropped (default 60)",
    "PROVISION_DISK_RESERVE": "bytes of free space on the cache's disk a fetch never uses (default 64 MiB)",
    "PROVISION_MIRRORS": "content-addressed mirror base URLs tried first (<base>/<alg>/<hex>), space/comma-separated",
    "PROVISION_AUTH_FILE": "TOML file of per-host tokens/headers (default ~/.config/provision/auth.toml)",
    "PROVISION_LOCK_FILE": "digests pinned on first use for unpublished checksums (default <cache>/provision.lock)",
    "HF_TOKEN": "bearer token sent to huggingface.co only (gated repositories such as Llama)",
    "HF_ENDPOINT": "the Hugging Face Hub to use (default https://huggingface.co)",
    "CF_ACCESS_CLIENT_ID": "MLCommons R2: Cloudflare Access service-token id (with CF_ACCESS_CLIENT_SECRET)",
    "CF_ACCESS_CLIENT_SECRET": "MLCommons R2: Cloudflare Access service-token secret",
    "PROVISION_R2_TOKEN": "MLCommons R2: a token from 'cloudflared access token --app=<uri-url>'",
    "PROVISION_R2_HOSTS": "extra hosts (besides *.mlcommons-storage.org) that get the R2 credentials",
}

_PACKAGE_DIR = Path(__file__).resolve().parent

#: The user information of a URL (``scheme://user:password@``), up to the last ``@`` before the path.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^/?#\s]*)@")
#: Query parameters whose value looks secret (signed URLs: ``X-Amz-Signature=…``, ``?token=…``).
_SECRET_QUERY = re.compile(
    r"(?i)([?&][^=&#\s]*(?:token|key|sig|credential|auth|pass|secret|session)[^=&#\s]*=)[^&#\s,;)'\"]+"
)


def _mask_userinfo(match: re.Match[str]) -> str:
    user, colon, _password = match.group(2).partition(":")
    return f"{match.group(1)}{user}:****@" if colon else f"{match.group(1)}****@"


def redact_url(text: str) -> str:
    """``text`` (a URL, or a message holding URLs) with their credentials masked: ``user:****@``
    for a password, ``****@`` for user information without one (a token), ``sig=****`` for a
    secret-looking query value. The one redaction of every URL provision shows or writes;
    idempotent."""
    return _SECRET_QUERY.sub(r"\1****", _USERINFO.sub(_mask_userinfo, text))


def _checkout_root() -> Path | None:
    """The source checkout this package runs from, if any (editable install / repo)."""
    root = _PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "manifests").is_dir():
        return root
    return None


def builtin_manifest_dir() -> Path:
    """Folder holding the built-in manifests (in the wheel, or the checkout's ``manifests/``)."""
    packaged = _PACKAGE_DIR / "_manifests"
    if packaged.is_dir():
        return packaged
    root = _checkout_root()
    return (root / "manifests") if root else packaged


def default_cache_dir() -> Path:
    """``<checkout>/cache`` when running from a checkout, else the platform user cache."""
    root = _checkout_root()
    if root is not None and (root / "cache").is_dir():
        return root / "cache"
    import platformdirs  # here, not at the top: `provision --help` never needs it

    return Path(platformdirs.user_cache_dir("provision", appauthor=False))


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _number(env: Mapping[str, str], name: str, default: float, *, integer: bool = False) -> Any:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise UsageError(f"{name}={raw!r} is not {kind}; unset it or give e.g. {default}") from None
    if not 0 < value < math.inf:  # also rejects nan
        raise UsageError(f"{name}={raw!r} must be a positive, finite number")
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    if not raw.strip().isdigit():
        raise UsageError(f"{name}={raw!r} is not a whole number; unset it or give e.g. {default}")
    return int(raw)


def _auth(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Per-host headers from the auth file and ``HF_TOKEN``; values never leave this mapping."""
    hosts: dict[str, dict[str, str]] = {}
    path_text = env.get("PROVISION_AUTH_FILE")
    path = Path(path_text).expanduser() if path_text else Path.home() / ".config" / "provision" / "auth.toml"
    if path.is_file():
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - exercised on 3.10 only
            import tomli as tomllib
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"{path}: cannot read the auth file ({exc.__class__.__name__}); fix or remove it"
            ) from None
        table = doc.get("hosts", {})
        if not isinstance(table, dict):
            raise UsageError(f'{path}: expected [hosts."<host>"] tables')
        for host, entry in table.items():
            if not isinstance(entry, dict):
                raise UsageError(f"{path}: hosts.{host}: expected a table with token and/or headers")
            headers = {str(k): str(v) for k, v in dict(entry.get("headers", {})).items()}
            if "token" in entry:
                headers["Authorization"] = f"Bearer {entry['token']}"
            hosts[host.lower()] = headers
    token = env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        hosts.setdefault("huggingface.co", {})["Authorization"] = f"Bearer {token}"
    # MLCommons R2 (Cloudflare Access): a service token, or a token from `cloudflared access login`.
    r2: dict[str, str] = {}
    if env.get("CF_ACCESS_CLIENT_ID") and env.get("CF_ACCESS_CLIENT_SECRET"):
        r2["CF-Access-Client-Id"] = env["CF_ACCESS_CLIENT_ID"]
        r2["CF-Access-Client-Secret"] = env["CF_ACCESS_CLIENT_SECRET"]
    if env.get("PROVISION_R2_TOKEN"):
        r2["cf-access-token"] = env["PROVISION_R2_TOKEN"]
    if r2:
        for host in [".mlcommons-storage.org", *re.split(r"[\s,]+", env.get("PROVISION_R2_HOSTS", ""))]:
            if host:
                hosts.setdefault(host.lower(), {}).update(r2)
    return hosts


@dataclass(frozen=True)
class Settings:
    """Everything configurable, resolved. Build with :meth:`from_env`, adjust with :meth:`with_`."""

    cache_dir: Path = field(default_factory=default_cache_dir)
    manifest_dirs: tuple[Path, ...] = ()
    jobs: int = 4
    offline: bool = False
    debug: bool = False
    lock_timeout: float = 1800.0
    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    retries: int = 5
    backoff: float = 1.0
    backoff_max: float = 60.0
    segment_threshold: int = 64 << 20
    low_speed_limit: int = 1024
    low_speed_time: float = 60.0
    disk_reserve: int = 64 << 20
    mirrors: tuple[str, ...] = field(default=(), repr=False)  # may hold credentials (user:pass@)
    lock_file: Path | None = None
    hf_endpoint: str = "https://huggingface.co"
    hf_token: str | None = field(default=None, repr=False, compare=False)
    auth: Mapping[str, Mapping[str, str]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``PROVISION_*`` from ``env`` (default ``os.environ``); ``overrides`` win.

        An override whose value is ``None`` is ignored, so CLI options can be passed through.
        """
        env = os.environ if env is None else env
        cache = env.get("PROVISION_CACHE")
        extra = tuple(Path(p).expanduser() for p in env.get("PROVISION_MANIFESTS", "").split(os.pathsep) if p)
        settings = cls(
            cache_dir=Path(cache).expanduser() if cache else default_cache_dir(),
            manifest_dirs=extra,
            jobs=_number(env, "PROVISION_JOBS", 4, integer=True),
            offline=_truthy(env.get("PROVISION_OFFLINE")),
            debug=_truthy(env.get("PROVISION_DEBUG")),
            lock_timeout=_number(env, "PROVISION_LOCK_TIMEOUT", 1800.0),
            connect_timeout=_number(env, "PROVISION_CONNECT_TIMEOUT", 15.0),
            read_timeout=_number(env, "PROVISION_READ_TIMEOUT", 60.0),
            retries=_count(env, "PROVISION_RETRIES", 5),
            backoff=_number(env, "PROVISION_BACKOFF", 1.0),
            segment_threshold=_number(env, "PROVISION_SEGMENT_THRESHOLD", 64 << 20, integer=True),
            low_speed_limit=_count(env, "PROVISION_LOW_SPEED_LIMIT", 1024),
            low_speed_time=_number(env, "PROVISION_LOW_SPEED_TIME", 60.0),
            disk_reserve=_count(env, "PROVISION_DISK_RESERVE", 64 << 20),
            mirrors=tuple(m.rstrip("/") for m in re.split(r"[\s,]+", env.get("PROVISION_MIRRORS", "")) if m),
            auth=_auth(env),
            lock_file=Path(env["PROVISION_LOCK_FILE"]).expanduser() if env.get("PROVISION_LOCK_FILE") else None,
            hf_endpoint=(env.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/"),
            hf_token=env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN") or None,
        )
        return settings.with_(**overrides)

    def with_(self, **overrides: Any) -> Settings:
        """A copy with the given fields replaced (``None`` values are ignored)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if "cache_dir" in given:
            given["cache_dir"] = Path(given["cache_dir"]).expanduser()
        if "jobs" in given and int(given["jobs"]) < 1:
            raise UsageError(f"--jobs must be at least 1, got {given['jobs']}")
        return replace(self, **given)

    @property
    def lock_path(self) -> Path:
        """The trust-on-first-use lock file: ``PROVISION_LOCK_FILE``, else ``<cache>/provision.lock``."""
        return self.lock_file if self.lock_file is not None else self.cache_dir / "provision.lock"

    def headers_for(self, host: str) -> dict[str, str]:
        """Extra headers (tokens) configured for ``host``; never logged.

        A key ``"example.org"`` matches that host only; ``".example.org"`` matches it and
        every subdomain. Redirects to other hosts therefore never carry the token.
        """
        host = host.lower()
        out: dict[str, str] = {}
        for name, headers in self.auth.items():
            if host == name or host == name.lstrip(".") or (name.startswith(".") and host.endswith(name)):
                out.update(headers)
        return out

    @property
    def all_manifest_dirs(self) -> tuple[Path, ...]:
        """Built-in manifests first, then the ``PROVISION_MANIFESTS`` folders."""
        return (builtin_manifest_dir(), *self.manifest_dirs)


def cuda_visible_devices() -> str | None:
    """``CUDA_VISIBLE_DEVICES`` as the CUDA runtime reads it (``None`` when unset): which physical
    GPU a CUDA index names, for the energy counters of the GPU a validation used."""
    return os.environ.get("CUDA_VISIBLE_DEVICES")


def environment_snapshot(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment variables that can change results or identify the setup, secrets redacted.

    Kept: names starting with a prefix that numeric libraries, runtimes, GPUs, Hugging Face or
    provision read (``PROVISION_``, ``CUDA_``, ``CUBLAS_``, ``OMP_``, ``TORCH_``, ``ORT_``,
    ``HF_``, ...) and a few exact names (``PYTHONHASHSEED``, ``LD_PRELOAD``, ...). A value is
    replaced by ``"<redacted>"`` when its name looks secret (TOKEN, SECRET, PASSWORD, KEY, AUTH,
    CREDENTIAL, COOKIE, SESSION, ... in any case) or the value looks like a token; the credentials
    of URLs are masked by :func:`redact_url` (``https://user:****@host``). For audits
    (:mod:`provision.auditing`); ``environ`` defaults to ``os.environ``.
    """
    prefixes = (
        "PROVISION_", "CUDA_", "CUBLAS_", "CUBLASLT_", "CUDNN_", "NVIDIA_", "NCCL_", "OMP_", "GOMP_", "KMP_",
        "MKL_", "OPENBLAS_", "GOTO_", "BLIS_", "VECLIB_", "NUMEXPR_", "TORCH_", "PYTORCH_", "TORCHINDUCTOR_",
        "ORT_", "ONNXRUNTIME_", "OPENCV_", "TF_", "XLA_", "HF_", "HUGGING_FACE_", "TRANSFORMERS_", "TOKENIZERS_",
        "CF_ACCESS_", "ROCM_", "HIP_", "HSA_", "DNNL_", "ONEDNN_", "NPY_", "NUMPY_",
    )  # fmt: skip
    exact = {"PYTHONHASHSEED", "PYTHONPATH", "PYTHONOPTIMIZE", "LD_PRELOAD", "LD_LIBRARY_PATH", "MALLOC_ARENA_MAX"}
    secret_name = re.compile(
        r"TOKEN|SECRET|PASS|PWD|KEY|AUTH|CREDENTIAL|COOKIE|SESSION|PRIVATE|SIGNATURE|CERT|BEARER|CLIENT_ID",
        re.IGNORECASE,
    )
    # Credentials inside any value: Hugging Face, GitHub, Slack, OpenAI-style and AWS tokens, JWTs;
    # then those of URLs (user information, secret-looking query parameters) as everywhere else.
    token = re.compile(r"\b(?:hf_|ghp_|gho_|ghs_|github_pat_|sk-|xox[abp]-|AKIA|ASIA|eyJ)[A-Za-z0-9_.\-]{8,}")
    env = os.environ if environ is None else environ
    out: dict[str, str] = {}
    for name in sorted(env):
        if not (name.upper().startswith(prefixes) or name.upper() in exact):
            continue
        value = env[name]
        # TOKENIZERS_* (the tokenizers library's settings) name no token.
        if secret_name.search(name.upper().replace("TOKENIZERS", "")):
            value = "<redacted>"
        out[name] = redact_url(token.sub("<redacted>", value))
    return out
