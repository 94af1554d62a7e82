"""What a set of names stands for in the cache, content-addressed: the input of mirrors and bundles.

:func:`collect` verifies the named artifacts first (the fast stat path of ``provision verify``: a
file changed since it was fetched is re-hashed, a missing one is an error naming ``provision
fetch``), then lists every file as ``(artifact, name, checksum, size, blob)`` under the digest
the manifest publishes or the lock file pinned. The same content under several names is one
:class:`Blob`. An archive removed after its verified extraction (``keep_archive = false``) has
no blob any more and is reported in ``dropped``, never silently left out.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.config import Settings
from provision.errors import UsageError
from provision.manifest.checksum import Checksum
from provision.manifest.folders import as_fetched
from provision.manifest.lockfile import LockFile
from provision.manifest.model import Artifact, Catalog
from provision.store.cache import Store
from provision.store.records import DROPPED
from provision.store.verify import cached_artifacts
from provision.store.verify import verify as verify_artifacts

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["Blob", "Contents", "collect", "manifest_files"]


@dataclass(frozen=True)
class Blob:
    """One content of the cache: its checksum, size, path, and the ``artifact/file`` names it serves."""

    checksum: Checksum
    size: int
    path: Path
    names: tuple[str, ...]

    @property
    def address(self) -> str:
        """Its content address: ``<alg>/<hex>`` (a mirror's layout)."""
        return f"{self.checksum.alg}/{self.checksum.hex}"


@dataclass
class Contents:
    """The artifacts and blobs of a set of names (see :func:`collect`)."""

    artifacts: list[Artifact]
    blobs: list[Blob]
    dropped: list[str] = field(default_factory=list)  # "artifact/file" of archives removed after extraction
    pins: dict[str, dict[str, Any]] = field(default_factory=dict)  # lock-file entries of these artifacts

    @property
    def size(self) -> int:
        """Bytes of all blobs."""
        return sum(b.size for b in self.blobs)


def collect(
    catalog: Catalog, names: Sequence[str], settings: Settings, *, every: bool = False, subset: str | None = None
) -> Contents:
    """Verify and list what ``names`` (or, with ``every``, every fetched artifact) hold in the cache."""
    store = Store(settings.cache_dir)
    lock = LockFile(settings.lock_path)
    if every:
        if names:
            raise UsageError("give names or --all, not both")
        chosen = cached_artifacts(store, catalog)
        if not chosen:
            raise UsageError(f"--all: nothing is fetched in {settings.cache_dir}")
    elif not names:
        raise UsageError("name at least one dataset, model or benchmark (or --all)")
    else:
        chosen = catalog.resolve(names, subset)
    verify_artifacts(catalog, [a.name for a in chosen], settings).raise_for_errors()
    by_digest: dict[str, Blob] = {}
    dropped: list[str] = []
    artifacts = []
    for art in chosen:
        fetched = as_fetched(art, lock)
        artifacts.append(fetched)
        records = store.load_record(art.name)
        for spec in fetched.files:
            if spec.is_folder:
                continue
            key = f"{art.name}/{spec.name}"
            record = records.get(spec.name)
            if record is not None and record.link == DROPPED:
                dropped.append(key)
                continue
            if not spec.checksum.known:
                raise UsageError(f"{key}: no published or pinned checksum, so it has no content address")
            blob = store.blob_path(spec.checksum)
            seen = by_digest.get(str(spec.checksum))
            size = record.size if record is not None else blob.stat().st_size
            names_of = (*seen.names, key) if seen is not None else (key,)
            by_digest[str(spec.checksum)] = Blob(spec.checksum, size, blob, names_of)
    wanted = {a.name for a in chosen}
    pins = {k: v for k, v in lock.pins().items() if k.split("/", 1)[0] in wanted}
    return Contents(artifacts, sorted(by_digest.values(), key=lambda b: b.address), dropped, pins)


def _defined(path: Path) -> set[str]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return set()
    out = set()
    for kind in ("dataset", "model", "benchmark"):
        for entry in doc.get(kind, []) or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                out.add(entry["name"])
    return out


def manifest_files(settings: Settings, names: Iterable[str]) -> list[Path]:
    """The manifest files (built-in and ``PROVISION_MANIFESTS``) that define any of ``names``."""
    wanted = set(names)
    out = []
    for folder in settings.all_manifest_dirs:
        for path in sorted(Path(folder).glob("*.toml")):
            if _defined(path) & wanted:
                out.append(path)
    return out
