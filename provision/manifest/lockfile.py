"""``provision.lock``: digests pinned on first use for files with no published checksum.

A manifest file with ``checksum = "unpublished"`` is downloaded once, its sha256 is
recorded here, and every later fetch — on this machine, or on any machine given this
lock file — must produce exactly those bytes. The file is JSON::

    {"schema": 1, "files": {"<artifact>/<file>": {"checksum": "sha256:…", "size": N,
                                                   "url": "…", "pinned": "2026-…Z"}}}

It lives at ``<cache>/provision.lock`` unless ``PROVISION_LOCK_FILE`` names another
path (commit it beside your benchmark scripts, or share it with the fleet).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from provision.errors import ProvisionError
from provision.fsutil import atomic_write_text, open_regular
from provision.manifest.checksum import Checksum
from provision.manifest.model import Artifact

__all__ = ["LockFile"]

SCHEMA = 1


def _problem(entry: Any) -> str | None:
    """What is wrong with one pin (None when it has the shape this module writes)."""
    if not isinstance(entry, dict):
        return f"expected an object, got {_kind(entry)}"
    if "listing" in entry:
        items = entry["listing"]
        if not isinstance(items, list):
            return f"'listing' must be a list, got {_kind(items)}"
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                return f"listing item {i} must be an object, got {_kind(item)}"
            for key in ("path", "url"):
                if not isinstance(item.get(key), str) or not item[key]:
                    return f"listing item {i}: {key!r} must be a non-empty string, got {_kind(item.get(key))}"
            problem = _checksum_problem(item.get("checksum"), allow_unpublished=True) or _size_problem(item.get("size"))
            if problem:
                return f"listing item {i}: {problem}"
    elif "checksum" not in entry:
        return "neither 'checksum' nor 'listing'"
    else:
        problem = _checksum_problem(entry["checksum"], allow_unpublished=False) or _size_problem(entry.get("size"))
        if problem:
            return problem
    for key in ("url", "pinned"):
        if key in entry and not isinstance(entry[key], str):
            return f"{key!r} must be a string, got {_kind(entry[key])}"
    return None


def _checksum_problem(value: Any, *, allow_unpublished: bool) -> str | None:
    if value is None and allow_unpublished:
        return None
    if not isinstance(value, str):
        return f"'checksum' must be an 'alg:hex' string, got {_kind(value)}"
    if allow_unpublished and value == "unpublished":
        return None
    try:
        Checksum.parse(value)
    except ValueError as exc:
        return f"'checksum': {exc}"
    return None


def _size_problem(value: Any) -> str | None:
    if value is None or (type(value) is int and value >= 0):
        return None
    return f"'size' must be a whole number of bytes, got {_kind(value)} {value!r}"


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


class LockFile:
    """Read and update the pins; writes are atomic and serialised with a file lock."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            with os.fdopen(open_regular(self.path, follow_symlinks=True), "rb") as fh:
                doc = json.loads(fh.read())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, RecursionError) as exc:
            raise ProvisionError(
                f"{self.path}: unreadable lock file ({exc.__class__.__name__}); restore it from where "
                "it was shared, or delete it to pin again on the next fetch"
            ) from exc
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(doc.get("files"), dict):
            raise ProvisionError(
                f"{self.path}: not a provision lock file (schema {SCHEMA} expected); restore it from where "
                "it was shared, or delete it to pin again on the next fetch"
            )
        return dict(doc["files"])

    def _entry(self, pins: dict[str, Any], key: str, want: str) -> dict[str, Any] | None:
        """The pin ``key`` (None when there is none), checked for the shape this module writes.

        A pin of the wrong shape is an error, never taken as "not pinned": pinning again would trust
        whatever the source serves now, which is what the lock file exists to prevent.
        """
        if key not in pins:
            return None
        entry = pins[key]
        problem = _problem(entry)
        if problem is None and want not in entry:
            problem = f"expected {'a file pin with a checksum' if want == 'checksum' else 'a folder listing'}"
        if problem is not None:
            raise ProvisionError(
                f"{self.path}: entry {key!r}: {problem}; restore the lock file from where it was shared, "
                "or delete this entry to pin it again on the next fetch"
            )
        return dict(entry)

    def pins(self) -> dict[str, dict[str, Any]]:
        """``{"<artifact>/<file>": {"checksum", "size", "url", "pinned"}}`` (each entry checked)."""
        pins = self._read()
        for key in pins:
            self._entry(pins, key, "listing" if isinstance(pins[key], dict) and "listing" in pins[key] else "checksum")
        return pins

    def pinned(self, artifact: str, name: str) -> Checksum | None:
        """The pinned checksum of one file, if any."""
        entry = self._entry(self._read(), f"{artifact}/{name}", "checksum")
        return None if entry is None else Checksum.parse(entry["checksum"])

    def apply(self, artifact: Artifact) -> Artifact:
        """``artifact`` with every unpublished checksum replaced by its pin (when pinned)."""
        if all(f.checksum.known for f in artifact.files):
            return artifact
        pins = self._read()
        files = []
        for f in artifact.files:
            entry = None if f.checksum.known else self._entry(pins, f"{artifact.name}/{f.name}", "checksum")
            if entry is not None:
                f = replace(f, checksum=Checksum.parse(entry["checksum"]), size=f.size or entry.get("size"))
            files.append(f)
        return replace(artifact, files=tuple(files))

    def listing(self, artifact: str, folder: str) -> list[dict[str, Any]] | None:
        """The pinned listing of a folder entry: ``[{"path", "url", "checksum", "size"}]``."""
        entry = self._entry(self._read(), f"{artifact}/{folder}", "listing")
        return None if entry is None else list(entry["listing"])

    def pin_listing(self, artifact: str, folder: str, url: str, items: list[dict[str, Any]]) -> None:
        """Record what a folder entry's source listed (first use); never changed afterwards."""
        self._update(f"{artifact}/{folder}", {"url": url, "listing": items})

    def _update(self, key: str, entry: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        guard = Path(str(self.path) + ".lck")
        if guard.is_symlink():  # a link planted at the guard is removed, never followed (nor truncated)
            guard.unlink()
        with _file_lock(guard):
            files = self._read()
            if key in files:
                return
            files[key] = {**entry, "pinned": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            doc = {"schema": SCHEMA, "files": dict(sorted(files.items()))}
            atomic_write_text(self.path, json.dumps(doc, indent=1) + "\n")

    def merge(self, entries: dict[str, dict[str, Any]]) -> None:
        """Add pins made elsewhere (a bundle's), each checked for this module's shape; a key already
        pinned here is kept as it is (compare before merging: see :mod:`provision.fleet.bundle`)."""
        for key, entry in entries.items():
            problem = _problem(entry) if isinstance(key, str) and "/" in key else "not an 'artifact/file' key"
            if problem is not None:
                raise ProvisionError(f"pin {key!r} to merge: {problem}")
        if not entries:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        guard = Path(str(self.path) + ".lck")
        if guard.is_symlink():
            guard.unlink()
        with _file_lock(guard):
            files = self._read()
            for key, entry in entries.items():
                files.setdefault(key, dict(entry))
            doc = {"schema": SCHEMA, "files": dict(sorted(files.items()))}
            atomic_write_text(self.path, json.dumps(doc, indent=1) + "\n")

    def checksums(self) -> list[Checksum]:
        """Every digest the lock file pins (files and listed files) — blobs gc must keep; a pin of the
        wrong shape is an error here too (gc must not drop a blob it cannot tell is pinned)."""
        out = []
        for entry in self.pins().values():
            texts = [entry.get("checksum")] + [i.get("checksum") for i in entry.get("listing", [])]
            for text in texts:
                if isinstance(text, str) and text not in ("", "unpublished"):
                    with contextlib.suppress(ValueError):
                        out.append(Checksum.parse(text))
        return out

    def pin(self, artifact: str, name: str, checksum: Checksum, size: int, url: str) -> None:
        """Record ``checksum`` for a file (first use); an existing pin is never changed."""
        self._update(f"{artifact}/{name}", {"checksum": str(checksum), "size": size, "url": url})


def _file_lock(guard: Path) -> Any:
    """An inter-process lock on ``guard`` (filelock is imported here: ~30 ms that a command which only
    reads pins never pays)."""
    import filelock

    return filelock.FileLock(str(guard), timeout=60)
