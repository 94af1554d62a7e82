"""What an artifact still needs on disk: exact bytes, estimates, and what nobody has measured.

MLPerf's largest sets are R2 folders whose md5 lists carry no sizes (IGBH ~2.2 TB, the
DeepSeek-R1 checkpoint ~689 GB): before the first listing nothing but the sources' rounded
figure (``approx_size``) is known. :func:`remaining` adds up, for the files not in the cache
yet, the published sizes as *exact* bytes and the rounded figures as *estimated* bytes (less
what of that folder is cached already), and counts the files of unknown size, so that
``show``, ``doctor`` and the disk preflight of ``fetch`` state the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from provision.fsutil import human_bytes
from provision.manifest.folders import as_fetched
from provision.manifest.lockfile import LockFile
from provision.manifest.model import Artifact, FileSpec
from provision.store.cache import Store
from provision.store.trees import tree_ok

__all__ = ["DiskNeed", "remaining"]


@dataclass(frozen=True)
class DiskNeed:
    """Bytes still to download and to extract: exact where published, estimated from rounded figures."""

    exact: int = 0
    estimated: int = 0
    unknown: int = 0  # files of unknown size (no size, no approximate figure)
    extracted: int = 0
    extracted_unknown: int = 0  # archives of unknown extracted size

    @property
    def total(self) -> int:
        """Download plus extraction, estimates included."""
        return self.exact + self.estimated + self.extracted

    @property
    def download(self) -> int:
        """Bytes to download, estimates included."""
        return self.exact + self.estimated

    def __add__(self, other: DiskNeed) -> DiskNeed:
        return DiskNeed(
            self.exact + other.exact,
            self.estimated + other.estimated,
            self.unknown + other.unknown,
            self.extracted + other.extracted,
            self.extracted_unknown + other.extracted_unknown,
        )

    def describe(self) -> str:
        """``download ~2.2 TB (1.0 GB exact + ~2.2 TB estimated), extracted 4.0 GB``."""
        if self.estimated:
            parts = [f"download ~{human_bytes(self.download)}"]
            if self.exact:
                parts[0] += f" ({human_bytes(self.exact)} exact + ~{human_bytes(self.estimated)} estimated)"
            else:
                parts[0] += " (estimated from the sources' rounded sizes)"
        elif self.exact or not self.unknown:
            parts = [f"download {human_bytes(self.exact)}"]
        else:
            parts = ["download of unknown size"]
        if self.unknown:
            parts[0] += f" + {self.unknown} file(s) of unknown size" if self.download else f" ({self.unknown} file(s))"
        if self.extracted or self.extracted_unknown:
            text = f"extracted {human_bytes(self.extracted)}"
            if self.extracted_unknown:
                text += f" + {self.extracted_unknown} archive(s) of unknown size"
            parts.append(text)
        return ", ".join(parts)


def _cached(store: Store, spec: FileSpec, recorded: set[str]) -> bool:
    if spec.name in recorded:
        return True
    return spec.checksum.known and store.blob_path(spec.checksum).exists()


def remaining(store: Store, arts: Iterable[Artifact], lock: LockFile) -> DiskNeed:
    """What the manifest artifacts ``arts`` (not expanded) still need in ``store``.

    A folder entry counts its listed files of known size exactly; where the listing carries no
    sizes (R2) or was never made, its ``approx_size`` less the bytes of it already cached is
    the estimate. Reads records and stats only: no network, no data.
    """
    need = DiskNeed()
    for art in arts:
        records = store.load_record(art.name)
        recorded = set(records)
        fetched = as_fetched(art, lock)
        for spec in art.files:
            if not spec.is_folder:
                if not _cached(store, spec, recorded):
                    need += _file_need(spec)
                continue
            listed = [f for f in fetched.files if f.name.startswith(spec.name) and not f.is_folder]
            todo = [f for f in listed if not _cached(store, f, recorded)]
            done = sum(r.size for name, r in records.items() if name.startswith(spec.name))
            if listed and all(f.size is not None for f in todo):
                need += DiskNeed(exact=sum(f.size or 0 for f in todo))
            elif listed and not todo:
                continue
            elif spec.approx_size is not None:
                need += DiskNeed(estimated=max(0, spec.approx_size - done))
            else:
                need += DiskNeed(unknown=len(todo) if listed else 1)
        for spec in fetched.archives:
            if spec.extract is not None and not (spec.checksum.known and tree_ok(store, fetched, spec)):
                if spec.extract.extracted_size is None:
                    need += DiskNeed(extracted_unknown=1)
                else:
                    need += DiskNeed(extracted=spec.extract.extracted_size)
    return need


def _file_need(spec: FileSpec) -> DiskNeed:
    if spec.size is not None:
        return DiskNeed(exact=spec.size)
    if spec.approx_size is not None:
        return DiskNeed(estimated=spec.approx_size)
    return DiskNeed(unknown=1)
