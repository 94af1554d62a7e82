"""The disk-space check before a download: refuse early, with the size needed and where."""

from __future__ import annotations

import shutil
from collections.abc import Iterable

from provision.errors import (
    DiskSpaceError,
)
from provision.fsutil import human_bytes
from provision.manifest.lockfile import LockFile
from provision.manifest.model import Artifact, FileSpec
from provision.store.cache import Store
from provision.store.plan import remaining

__all__ = ["DISK_RESERVE", "check_disk_space", "check_planned_space"]


#: Free space kept back on the cache filesystem beyond what the downloads need.
DISK_RESERVE = 64 << 20


def check_disk_space(
    store: Store,
    todo: Iterable[tuple[Artifact, FileSpec]],
    unpack: Iterable[tuple[Artifact, FileSpec]] = (),
    reserve: int = DISK_RESERVE,
) -> None:
    """Refuse when the files still to download (and to extract) do not fit on the cache's filesystem
    with ``reserve`` bytes to spare."""
    needed = 0
    unknown = 0
    names: dict[str, None] = {}
    for art, spec in unpack:
        assert spec.extract is not None
        names[art.name] = None
        if spec.extract.extracted_size is None:
            unknown += 1
        else:
            needed += spec.extract.extracted_size
    for art, spec in todo:
        if spec.checksum.known and store.blob_path(spec.checksum).exists():
            continue
        names[art.name] = None
        if spec.size is None:
            unknown += 1
        else:
            needed += spec.size
    if not names:
        return
    free = shutil.disk_usage(store.root).free
    if needed + reserve > free:
        extra = f" and {unknown} file(s) of unknown size" if unknown else ""
        raise DiskSpaceError(
            f"not enough disk space in {store.root}: {', '.join(names)} need "
            f"{human_bytes(needed)}{extra} plus the {human_bytes(reserve)} reserve, only {human_bytes(free)} "
            "free; free space ('provision gc'), point --cache-dir / PROVISION_CACHE at a bigger disk, "
            "or lower PROVISION_DISK_RESERVE"
        )


def check_planned_space(store: Store, arts: Iterable[Artifact], lock: LockFile, reserve: int = DISK_RESERVE) -> None:
    """Refuse before any request (listing or data) when what ``arts`` still need, the sources' rounded
    sizes included (:func:`provision.store.plan.remaining`), cannot fit with ``reserve`` to spare.

    Estimates only ever refuse here with the figures said as estimates; the exact check
    (:func:`check_disk_space`) runs again once the folders are listed.
    """
    arts = list(arts)
    need = remaining(store, arts, lock)
    if not need.estimated:
        return  # nothing but exact sizes: the check after listing has the same numbers
    free = shutil.disk_usage(store.root).free
    if need.total + reserve > free:
        names = ", ".join(a.name for a in arts)
        raise DiskSpaceError(
            f"not enough disk space in {store.root}: {names} need {need.describe()} plus the "
            f"{human_bytes(reserve)} reserve, only {human_bytes(free)} free (nothing was downloaded); "
            "free space ('provision gc'), point --cache-dir / PROVISION_CACHE at a bigger disk, "
            "or lower PROVISION_DISK_RESERVE"
        )
