"""``provision doctor [NAME]``: is this machine ready? One :class:`Check` per line: ok, warn, fail or skip.

Machine-level checks (always): the Python version and installed packages, write access and
lock enforcement on the cache's filesystem, free disk, GPU/CUDA visibility. With NAME (a
benchmark, dataset or model), also: the packages its recipes and validation need, the disk
its files, extractions and preprocessed outputs need beyond what is cached, whether each
source host answers, and whether the credentials its gated/members-only sources need are set.

Nothing here raises for a machine problem: a problem is a ``fail`` check with its fix. Tokens
are never read back out of :class:`~provision.config.Settings` into a message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from provision.config import Settings
from provision.errors import ProvisionError
from provision.manifest.model import Catalog
from provision.readiness.machine import (
    Check,
    check_cache,
    check_gpu,
    check_python,
)
from provision.readiness.needs import check_disk, check_packages, needed_artifacts
from provision.readiness.network import check_credentials, check_mirrors, check_network

__all__ = ["DoctorReport", "run_doctor"]


@dataclass
class DoctorReport:
    """Every check run; ``ok`` when none failed (warnings and skips do not fail)."""

    checks: list[Check]
    name: str | None = None
    cache_dir: str = ""

    @property
    def ok(self) -> bool:
        """No check failed."""
        return all(c.status != "fail" for c in self.checks)

    def counts(self) -> dict[str, int]:
        """How many checks have each status."""
        return {s: sum(1 for c in self.checks if c.status == s) for s in ("ok", "warn", "fail", "skip")}

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (holds no credential)."""
        return {
            "ok": self.ok,
            "name": self.name,
            "cache": self.cache_dir,
            "counts": self.counts(),
            "checks": [asdict(c) for c in self.checks],
        }


# -- packages -----------------------------------------------------------------------------------


# -- disk ------------------------------------------------------------------------------------------


# -- network -----------------------------------------------------------------------------------------


# -- credentials --------------------------------------------------------------------------------------


# -- the report --------------------------------------------------------------------------------------------


def _guard(name: str, run: Callable[[], Iterable[Check] | Check]) -> list[Check]:
    """Run one group of checks; an exception becomes a failed check, not a crash of the doctor."""
    try:
        out = run()
    except ProvisionError as exc:  # its message already says what to do
        return [Check(name, "fail", str(exc))]
    except Exception as exc:
        return [
            Check(
                name,
                "fail",
                f"the check itself failed: {type(exc).__name__}: {exc}",
                "rerun with PROVISION_DEBUG=1 and report it",
            )
        ]
    return [out] if isinstance(out, Check) else list(out)


def run_doctor(
    catalog: Catalog, settings: Settings, name: str | None = None, *, network: bool = True, timeout: float = 3.0
) -> DoctorReport:
    """Check this machine, and with ``name`` (benchmark, dataset or model) what that needs; see the module doc.

    :class:`~provision.errors.UnknownNameError` for an unknown ``name``; machine problems are
    ``fail`` checks, never exceptions. ``network=False`` (or ``settings.offline``) skips the HEAD
    requests; ``timeout`` bounds each (connect and read, seconds).
    """
    entry = catalog.get(name) if name is not None else None
    checks = [check_python()]
    checks += _guard("packages", lambda: check_packages(catalog, entry))
    checks += _guard("cache", lambda: check_cache(settings))
    checks += _guard("disk", lambda: check_disk(catalog, settings, entry))
    if entry is not None:
        arts = needed_artifacts(catalog, entry, settings)
        checks += _guard("network", lambda: check_network(arts, settings, network=network, timeout=timeout))
        checks += _guard("credentials", lambda: check_credentials([catalog.artifacts[a.name] for a in arts], settings))
    checks += _guard("mirrors", lambda: check_mirrors(settings, network=network, timeout=timeout))
    checks += _guard("gpu", lambda: check_gpu(timeout))
    return DoctorReport(checks, entry.name if entry is not None else None, str(settings.cache_dir))
