"""Settings: the only place ``PROVISION_*`` environment variables are read.

Read once, at call time, into a frozen :class:`Settings`; library functions take a
``Settings`` and never look at ``os.environ`` themselves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

from .errors import UsageError

__all__ = ["ENV_VARS", "Settings", "builtin_manifest_dir", "default_cache_dir"]

#: Every environment variable provision reads, and what it sets.
ENV_VARS: dict[str, str] = {
    "PROVISION_CACHE": "cache root (default: <checkout>/cache, else the user cache folder)",
    "PROVISION_MANIFESTS": "extra manifest folders, os.pathsep-separated",
    "PROVISION_JOBS": "how many files are fetched at once (default 4)",
    "PROVISION_OFFLINE": "1 makes any network access an error",
    "PROVISION_DEBUG": "1 shows tracebacks",
    "PROVISION_LOCK_TIMEOUT": "seconds to wait for another process's artifact lock (default 1800)",
    "PROVISION_CONNECT_TIMEOUT": "HTTP connect timeout in seconds (default 15)",
    "PROVISION_READ_TIMEOUT": "HTTP read timeout in seconds (default 60)",
}

_PACKAGE_DIR = Path(__file__).resolve().parent


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
    if value <= 0:
        raise UsageError(f"{name}={raw!r} must be positive")
    return value


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
    def all_manifest_dirs(self) -> tuple[Path, ...]:
        """Built-in manifests first, then the ``PROVISION_MANIFESTS`` folders."""
        return (builtin_manifest_dir(), *self.manifest_dirs)
