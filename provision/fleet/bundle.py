"""Air-gapped bundles: one streamed tar of everything some names need, and its verified import.

A bundle is an uncompressed tar (the blobs are mostly compressed already) of::

    provision-bundle/index.json                 schema, names, artifacts, every blob (address,
                                                size, the files it serves), lock-file pins
    provision-bundle/manifests/<n>-<file>.toml  the manifest files that define those entries
    provision-bundle/blobs/<alg>/<hex>          each verified blob of the cache, once

:func:`create` verifies the names (as ``provision verify`` does) and streams the tar to disk,
never holding a file in memory; with ``split`` it is cut into ``FILE.000``, ``FILE.001``, ... of
at most that many bytes each (removable media), which :func:`read` and :func:`import_bundle`
join in order. Each file (or part) is written to a temp name and renamed when complete; a failed
run removes what it wrote.

:func:`import_bundle` works with ``PROVISION_OFFLINE=1`` on a fresh cache. It streams the tar
into a staging folder inside the cache, hashing every blob with its own algorithm as it arrives;
a blob whose bytes, size or name do not match the index, a member that is not a plain file, or a
blob the index lists that never came is an :class:`~provision.errors.IntegrityError` (exit 3)
and the staging folder is removed: nothing becomes visible. Only when every blob is verified are
the lock-file pins merged (a pin that differs from this machine's is refused) and the artifacts
fetched from the staging folder as a content-addressed mirror, through the normal fetch (which
verifies every byte again and extracts archives); then the staging folder is removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from provision.config import Settings
from provision.errors import IntegrityError, ProvisionError, UsageError
from provision.fleet.contents import Contents
from provision.fsutil import real_folder, temp_name
from provision.manifest.checksum import ALGORITHMS, Checksum
from provision.manifest.lockfile import LockFile
from provision.manifest.model import Catalog
from provision.store.hashing import new_hasher
from provision.version import __version__

__all__ = ["BundleIndex", "ImportReport", "create", "import_bundle", "parse_size", "read"]

SCHEMA = 1
TOP = "provision-bundle"
INDEX = f"{TOP}/index.json"
SEAL = f"{TOP}/index.sha256"  # the sha256 of the index's bytes: a damaged index is refused too
CHUNK = 1 << 20
_BLOB = re.compile(rf"{TOP}/blobs/([a-z0-9_]+)/([0-9a-f]+)")
_MANIFEST = re.compile(rf"{TOP}/manifests/(\d+-[A-Za-z0-9._-]+\.toml)")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """``"4G"``, ``"700M"``, ``"1048576"`` -> bytes (binary units); at least 1 MiB."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not found:
        raise UsageError(f"--split {text!r}: expected a size such as 4G, 700M or 1048576")
    size = int(float(found[1]) * _UNITS[found[2].upper()])
    if size < _UNITS["M"]:
        raise UsageError(f"--split {text!r}: parts must be at least 1M")
    return size


@dataclass
class BundleIndex:
    """``index.json`` of a bundle, and the files it was read from."""

    doc: dict[str, Any]
    parts: list[Path] = field(default_factory=list)

    @property
    def blobs(self) -> list[dict[str, Any]]:
        """``[{"address", "checksum", "size", "names"}]``."""
        return list(self.doc.get("blobs", []))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: the index and its parts."""
        return {**self.doc, "parts": [str(p) for p in self.parts]}


class _Parts(io.RawIOBase):
    """A write-only stream cut into ``base.000``, ``base.001``... of ``limit`` bytes (temp names until closed)."""

    def __init__(self, base: Path, limit: int | None) -> None:
        self.base, self.limit = base, limit
        self.done: list[Path] = []
        self.temps: list[Path] = []
        self._fh: IO[bytes] | None = None
        self._left = 0

    def _final(self, index: int) -> Path:
        return self.base if self.limit is None else self.base.with_name(f"{self.base.name}.{index:03d}")

    def _next(self) -> None:
        self._finish()
        final = self._final(len(self.done))
        tmp = temp_name(final)
        self.temps.append(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        self._fh = open(fd, "wb")  # noqa: SIM115  (closed in _finish/abort)
        self._left = self.limit if self.limit is not None else -1

    def _finish(self) -> None:
        if self._fh is None:
            return
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._fh = None
        self.done.append(self._final(len(self.done)))

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        written = 0
        while written < len(view):
            if self._fh is None or self._left == 0:
                self._next()
            assert self._fh is not None
            take = len(view) - written if self._left < 0 else min(self._left, len(view) - written)
            self._fh.write(view[written : written + take])
            written += take
            if self._left > 0:
                self._left -= take
        return written

    def commit(self) -> list[Path]:
        """Close the last part and rename every part to its final name."""
        if self._fh is None and not self.done:
            self._next()
        self._finish()
        for tmp, final in zip(self.temps, self.done, strict=True):
            os.replace(tmp, final)
        return self.done

    def abort(self) -> None:
        """Remove every part written (a failed run leaves nothing that looks like a bundle)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        for tmp in self.temps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
    tar.addfile(info, io.BytesIO(data))


def create(
    contents: Contents, names: list[str], manifests: list[Path], out: Path, split: int | None = None
) -> BundleIndex:
    """Stream ``contents`` (with ``manifests`` and the pins) into the bundle ``out`` (see the module docstring)."""
    out = Path(out)
    if out.is_dir():
        raise UsageError(f"-o {out}: is a folder; give a file name such as {out / 'bundle.tar'}")
    if out.parent and not out.parent.is_dir():
        raise UsageError(f"-o {out}: no folder {out.parent}")
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "provision": __version__,
        "names": names,
        "artifacts": [a.name for a in contents.artifacts],
        "blobs": [
            {"address": b.address, "checksum": str(b.checksum), "size": b.size, "names": list(b.names)}
            for b in contents.blobs
        ],
        "bytes": contents.size,
        "dropped": contents.dropped,
        "pins": contents.pins,
        "manifests": {f"{i}-{p.name}": hashlib.sha256(p.read_bytes()).hexdigest() for i, p in enumerate(manifests)},
        "split": split,
    }
    parts = _Parts(out, split)
    try:
        with tarfile.open(fileobj=parts, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            index = json.dumps(doc, indent=1, sort_keys=True).encode()
            _add_bytes(tar, INDEX, index)
            _add_bytes(tar, SEAL, hashlib.sha256(index).hexdigest().encode())
            for i, path in enumerate(manifests):
                _add_bytes(tar, f"{TOP}/manifests/{i}-{path.name}", path.read_bytes())
            for blob in contents.blobs:
                info = tarfile.TarInfo(f"{TOP}/blobs/{blob.address}")
                info.size, info.mtime, info.mode = blob.size, int(time.time()), 0o444
                with open(blob.path, "rb") as fh:
                    tar.addfile(info, fh)
        done = parts.commit()
    except BaseException:
        parts.abort()
        raise
    return BundleIndex(doc, done)


def _parts_of(path: Path) -> list[Path]:
    """The files of the bundle at ``path``: it alone, or ``path.000``, ``.001``... (``path`` may name ``.000``)."""
    path = Path(path)
    base = path.with_suffix("") if re.fullmatch(r"\.\d{3}", path.suffix) else path
    first = base.with_name(f"{base.name}.000")
    if first.is_file():
        out: list[Path] = []
        while (part := base.with_name(f"{base.name}.{len(out):03d}")).is_file():
            out.append(part)
        return out
    if path.is_file():
        return [path]
    raise UsageError(f"{path}: no such bundle (nor {first.name})")


class _Joined(io.RawIOBase):
    """The parts of a split bundle read as one stream."""

    def __init__(self, parts: list[Path]) -> None:
        self.parts = list(parts)
        self._fh: Any = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            if self._fh is None:
                if not self.parts:
                    return 0
                self._fh = open(self.parts.pop(0), "rb", buffering=0)  # noqa: SIM115  (closed below)
            n = self._fh.readinto(buffer)
            if n:
                return int(n)
            self._fh.close()
            self._fh = None

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        super().close()


@contextlib.contextmanager
def _stream(path: Path) -> Iterator[tuple[tarfile.TarFile, list[Path], _Joined]]:
    parts = _parts_of(path)
    raw = _Joined(parts)
    try:
        with tarfile.open(fileobj=io.BufferedReader(raw, CHUNK), mode="r|") as tar:
            yield tar, parts, raw
    except tarfile.TarError as exc:
        raise IntegrityError(f"{path}: not a readable bundle ({exc}); copy it again", path=str(path)) from exc
    finally:
        raw.close()


def _member_bytes(tar: tarfile.TarFile, name: str, path: Path, limit: int = 256 << 20) -> bytes:
    member = tar.next()
    if member is None or member.name != name or not member.isfile() or member.size > limit:
        raise IntegrityError(f"{path}: not a provision bundle (expected {name} here)", path=str(path))
    handle = tar.extractfile(member)
    return handle.read() if handle is not None else b""


def _check_index(doc: Any, path: Path) -> dict[str, Any]:
    """The index, each field of the type :func:`create` writes; IntegrityError naming the first that is not."""

    def bad(what: str) -> IntegrityError:
        return IntegrityError(f"{path}: its index is damaged ({what}); copy the bundle again", path=str(path))

    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise IntegrityError(f"{path}: bundle schema {SCHEMA} expected; create it with this provision", path=str(path))
    artifacts = doc.get("artifacts")
    if not isinstance(artifacts, list) or not artifacts or not all(isinstance(a, str) and a for a in artifacts):
        raise bad("'artifacts' is not a list of names")
    if not isinstance(doc.get("bytes"), int) or not isinstance(doc.get("pins"), dict):
        raise bad("'bytes' or 'pins'")
    manifests = doc.get("manifests")
    if not isinstance(manifests, dict) or not all(
        isinstance(k, str) and _MANIFEST.fullmatch(f"{TOP}/manifests/{k}") and isinstance(v, str)
        for k, v in manifests.items()
    ):
        raise bad("'manifests'")
    blobs = doc.get("blobs")
    if not isinstance(blobs, list):
        raise bad("'blobs' is not a list")
    for i, blob in enumerate(blobs):
        try:
            checksum = Checksum.parse(blob["checksum"])
            ok = (
                blob["address"] == f"{checksum.alg}/{checksum.hex}"
                and checksum.alg in ALGORITHMS
                and type(blob["size"]) is int
                and blob["size"] >= 0
                and isinstance(blob["names"], list)
            )
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise bad(f"blob entry {i}")
    return doc


def _index(tar: tarfile.TarFile, path: Path) -> dict[str, Any]:
    raw = _member_bytes(tar, INDEX, path)
    seal = _member_bytes(tar, SEAL, path, limit=128).decode("ascii", "replace").strip()
    if hashlib.sha256(raw).hexdigest() != seal:
        raise IntegrityError(
            f"{path}: its index does not match its seal (sha256 {seal[:16]}...); the bundle is damaged, copy it again",
            path=str(path),
        )
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise IntegrityError(f"{path}: its index is not valid JSON ({exc})", path=str(path)) from exc
    return _check_index(doc, path)


def read(path: Path) -> BundleIndex:
    """The index of the bundle at ``path`` (its first member only: fast on any size)."""
    with _stream(path) as (tar, parts, _raw):
        return BundleIndex(_index(tar, path), parts)


@dataclass
class ImportReport:
    """What an import verified and made ready."""

    bundle: str
    blobs: int
    bytes: int
    artifacts: list[str]
    manifests: str = ""
    fetch: Any = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "bundle": self.bundle,
            "blobs": self.blobs,
            "bytes": self.bytes,
            "artifacts": self.artifacts,
            "manifests": self.manifests,
        }


def _receive(tar: tarfile.TarFile, member: tarfile.TarInfo, want: dict[str, Any], dest: Path, path: Path) -> None:
    """Stream one blob member into ``dest``, hashing it; IntegrityError unless it matches ``want``."""
    checksum = Checksum.parse(want["checksum"])
    if member.size != want["size"]:
        raise IntegrityError(
            f"{path}: {member.name} is {member.size} bytes, the index says {want['size']}; copy the bundle again",
            path=str(path),
        )
    source = tar.extractfile(member)
    if source is None:
        raise IntegrityError(f"{path}: {member.name} cannot be read", path=str(path))
    hasher = new_hasher(checksum.alg)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with open(fd, "wb") as out:
        while chunk := source.read(CHUNK):
            hasher.update(chunk)
            out.write(chunk)
    got = hasher.hexdigest()
    if got != checksum.hex:
        raise IntegrityError(
            f"{path}: {member.name} ({', '.join(want['names'])}) does not match its checksum: expected "
            f"{checksum.alg}:{checksum.hex}, got {checksum.alg}:{got}; the bundle is damaged, copy it again "
            "(nothing was imported)",
            path=str(path),
        )


def _stage(path: Path, staging: Path) -> dict[str, Any]:
    """Stream the bundle into ``staging`` (``mirror/<alg>/<hex>``, ``manifests/``), verifying every blob
    and manifest against the (sealed) index."""
    with _stream(path) as (tar, _parts, raw):
        doc = _index(tar, path)
        wanted = {str(b["address"]): b for b in doc["blobs"]}
        manifests: dict[str, str] = doc["manifests"]
        seen: set[str] = set()
        while (member := tar.next()) is not None:  # the stream goes on after the index
            blob = _BLOB.fullmatch(member.name)
            manifest = _MANIFEST.fullmatch(member.name)
            if not member.isfile() or (blob is None and manifest is None):
                raise IntegrityError(
                    f"{path}: unexpected member {member.name!r} "
                    f"({'unknown' if member.isfile() else 'not a plain file'}); this is not a bundle provision wrote",
                    path=str(path),
                )
            if manifest is not None:
                name = manifest[1]
                handle = tar.extractfile(member)
                data = handle.read() if handle is not None and member.size <= 64 << 20 else b""
                if name in seen or hashlib.sha256(data).hexdigest() != manifests.get(name):
                    raise IntegrityError(
                        f"{path}: manifest {name} does not match its index (damaged, unknown or twice); copy the "
                        "bundle again (nothing was imported)",
                        path=str(path),
                    )
                folder = staging / "manifests"
                folder.mkdir(exist_ok=True)
                (folder / name).write_bytes(data)
                seen.add(name)
                continue
            assert blob is not None  # matched above
            address = f"{blob[1]}/{blob[2]}"
            if blob[1] not in ALGORITHMS or address not in wanted or address in seen:
                raise IntegrityError(f"{path}: blob {address} is not in its index (or twice)", path=str(path))
            _receive(tar, member, wanted[address], staging / "mirror" / blob[1] / blob[2], path)
            seen.add(address)
        missing = sorted((set(wanted) | set(manifests)) - seen)
        if missing:
            raise IntegrityError(
                f"{path}: {len(missing)} member(s) of its index are missing (first {missing[0]}); a part of a split "
                "bundle may be missing or truncated (nothing was imported)",
                path=str(path),
            )
        if raw.parts:
            raise IntegrityError(
                f"{path}: {raw.parts[0].name} follows the end of the bundle; remove it or copy the bundle again",
                path=str(path),
            )
    return doc


def _wanted_pins(doc: dict[str, Any], lock: LockFile, path: Path) -> dict[str, dict[str, Any]]:
    """The bundle's pins of its own artifacts whose files it carries; one that differs from this machine's is
    refused (IntegrityError), one already here is left out."""
    here = lock.pins()
    names = set(doc["artifacts"])
    carried = {str(b["checksum"]) for b in doc["blobs"]}
    out: dict[str, dict[str, Any]] = {}
    for key, entry in doc["pins"].items():
        if not isinstance(key, str) or not isinstance(entry, dict) or key.split("/", 1)[0] not in names:
            raise IntegrityError(f"{path}: pin {key!r} is not of an artifact the bundle carries", path=str(path))
        digests = [entry.get("checksum")] + [i.get("checksum") for i in entry.get("listing", []) if isinstance(i, dict)]
        if any(d not in carried for d in digests if d not in (None, "unpublished")) or (
            "listing" not in entry and entry.get("checksum") not in carried
        ):
            raise IntegrityError(f"{path}: pin {key!r} names content the bundle does not carry", path=str(path))
        mine = here.get(key)
        if mine is None:
            out[key] = entry
            continue
        strip = ("pinned", "url")
        if {k: v for k, v in mine.items() if k not in strip} != {k: v for k, v in entry.items() if k not in strip}:
            raise IntegrityError(
                f"{lock.path}: pin {key!r} differs from the bundle's; this machine pinned other bytes for it. "
                "Compare the lock files before importing (nothing was imported)"
            )
    return out


def _offline_catalog(catalog: Catalog, names: list[str], lock: LockFile, carried: set[str], path: Path) -> Catalog:
    """The bundle's catalog with no origin URL left, after checking that every file of ``names`` has its
    content in the bundle (so a fetch can only ever take the bundle's verified bytes)."""
    from provision.manifest.folders import as_fetched

    artifacts = dict(catalog.artifacts)
    for name in names:
        art = artifacts.get(name)
        if art is None:
            raise IntegrityError(f"{path}: its manifests do not define {name!r}; the bundle is damaged", path=str(path))
        for spec in as_fetched(art, lock).files:
            if spec.is_folder:
                if lock.listing(name, spec.name) is None:
                    raise IntegrityError(
                        f"{path}: {name}/{spec.name} is a folder the bundle carries no listing of; create the bundle "
                        "again from a cache where it is fetched",
                        path=str(path),
                    )
                continue
            if not spec.checksum.known or str(spec.checksum) not in carried:
                raise IntegrityError(
                    f"{path}: {name}/{spec.name} is not in the bundle (no blob with its checksum); create the bundle "
                    "again from a cache where it is fetched",
                    path=str(path),
                )
        artifacts[name] = replace(art, files=tuple(replace(f, urls=()) for f in art.files))
    return Catalog(artifacts.values(), catalog.benchmarks.values())


def _forget(settings: Settings, names: list[str], before: set[str]) -> None:
    """Remove what a failed import made visible: the records and folders of artifacts it added."""
    from provision.store.cache import Store

    store = Store(settings.cache_dir)
    for name in names:
        if name in before:
            continue
        for record in (store.record_path(name), store.record_path(name).with_suffix(".trees.json")):
            with contextlib.suppress(FileNotFoundError):
                record.unlink()
        folder = store.artifact_dir(name)
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)


def _keep_manifests(settings: Settings, staging: Path, path: Path) -> str:
    """Move the bundle's manifests to ``<cache>/bundles/<file>.manifests/`` (real folders only)."""
    folder = staging / "manifests"
    try:
        top = real_folder(settings.cache_dir / "bundles")
        keep = top / (path.name.removesuffix(".000") + ".manifests")
        if keep.is_symlink() or (keep.exists() and not keep.is_dir()):
            keep.unlink()
        elif keep.exists():
            shutil.rmtree(keep)
        os.replace(folder, keep)
    except OSError as exc:
        raise UsageError(
            f"{settings.cache_dir / 'bundles'}: cannot keep the bundle's manifests there ({exc.strerror or exc}); "
            "the artifacts are imported; remove what is in the way"
        ) from None
    return str(keep)


def import_bundle(path: Path, settings: Settings) -> ImportReport:
    """Verify the bundle at ``path`` completely, then make its artifacts ready in the cache (module docstring)."""
    from provision.fetching.run import fetch
    from provision.manifest.parse import load_catalog
    from provision.store.cache import Store

    path = Path(path)
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    staging = temp_name(settings.cache_dir / "bundle-import")
    staging.mkdir()
    lock = LockFile(settings.lock_path)
    try:
        doc = _stage(path, staging)
        manifests = sorted((staging / "manifests").glob("*.toml"))
        if not manifests:
            raise IntegrityError(f"{path}: the bundle carries no manifest; create it again", path=str(path))
        try:
            catalog = load_catalog(manifests)
        except ProvisionError as exc:
            raise IntegrityError(f"{path}: its manifests do not load ({str(exc)[:300]})", path=str(path)) from None
        names = list(dict.fromkeys(doc["artifacts"]))
        pins = _wanted_pins(doc, lock, path)
        # The import's own lock file: this machine's pins plus the bundle's, in the staging folder, so
        # this machine's lock file changes only once everything is in.
        staged_lock = LockFile(staging / "provision.lock")
        staged_lock.merge({**lock.pins(), **pins})
        carried = {str(b["checksum"]) for b in doc["blobs"]}
        offline = _offline_catalog(catalog, names, staged_lock, carried, path)
        store = Store(settings.cache_dir)
        before = {n for n in names if store.record_path(n).exists()}
        local = settings.with_(mirrors=((staging / "mirror").as_uri(),), offline=True, lock_file=staged_lock.path)
        try:
            report = fetch(offline, names, local)
            report.raise_for_errors()
            lock.merge(pins)
        except BaseException:
            _forget(settings, names, before)
            raise
        kept = _keep_manifests(settings, staging, path)
        return ImportReport(str(path), len(doc["blobs"]), int(doc["bytes"]), names, kept, report)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
