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
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import filelock

from provision.errors import ProvisionError
from provision.fsutil import atomic_write_text
from provision.manifest.checksum import Checksum
from provision.manifest.model import Artifact

__all__ = ["LockFile"]

SCHEMA = 1


class LockFile:
    """Read and update the pins; writes are atomic and serialised with a file lock."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ProvisionError(
                f"{self.path}: unreadable lock file ({exc.__class__.__name__}); restore it from where "
                "it was shared, or delete it to pin again on the next fetch"
            ) from exc
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(doc.get("files"), dict):
            raise ProvisionError(f"{self.path}: not a provision lock file (schema {SCHEMA} expected)")
        return dict(doc["files"])

    def pins(self) -> dict[str, dict[str, Any]]:
        """``{"<artifact>/<file>": {"checksum", "size", "url", "pinned"}}``."""
        return self._read()

    def pinned(self, artifact: str, name: str) -> Checksum | None:
        """The pinned checksum of one file, if any."""
        entry = self._read().get(f"{artifact}/{name}")
        if not entry:
            return None
        try:
            return Checksum.parse(str(entry["checksum"]))
        except (KeyError, ValueError) as exc:
            raise ProvisionError(f"{self.path}: bad entry for {artifact}/{name} ({exc})") from exc

    def apply(self, artifact: Artifact) -> Artifact:
        """``artifact`` with every unpublished checksum replaced by its pin (when pinned)."""
        if all(f.checksum.known for f in artifact.files):
            return artifact
        pins = self._read()
        files = []
        for f in artifact.files:
            entry = pins.get(f"{artifact.name}/{f.name}")
            if not f.checksum.known and entry:
                f = replace(f, checksum=Checksum.parse(str(entry["checksum"])), size=f.size or entry.get("size"))
            files.append(f)
        return replace(artifact, files=tuple(files))

    def listing(self, artifact: str, folder: str) -> list[dict[str, Any]] | None:
        """The pinned listing of a folder entry: ``[{"path", "url", "checksum", "size"}]``."""
        entry = self._read().get(f"{artifact}/{folder}")
        if not entry or not isinstance(entry.get("listing"), list):
            return None
        return list(entry["listing"])

    def pin_listing(self, artifact: str, folder: str, url: str, items: list[dict[str, Any]]) -> None:
        """Record what a folder entry's source listed (first use); never changed afterwards."""
        self._update(f"{artifact}/{folder}", {"url": url, "listing": items})

    def _update(self, key: str, entry: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(str(self.path) + ".lck", timeout=60):
            files = self._read()
            if key in files:
                return
            files[key] = {**entry, "pinned": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            doc = {"schema": SCHEMA, "files": dict(sorted(files.items()))}
            atomic_write_text(self.path, json.dumps(doc, indent=1) + "\n")

    def checksums(self) -> list[Checksum]:
        """Every digest the lock file pins (files and listed files) — blobs gc must keep."""
        out = []
        for entry in self._read().values():
            texts = [entry.get("checksum")] + [i.get("checksum") for i in entry.get("listing", [])]
            for text in texts:
                if isinstance(text, str) and text not in ("", "unpublished"):
                    with contextlib.suppress(ValueError):
                        out.append(Checksum.parse(text))
        return out

    def pin(self, artifact: str, name: str, checksum: Checksum, size: int, url: str) -> None:
        """Record ``checksum`` for a file (first use); an existing pin is never changed."""
        self._update(f"{artifact}/{name}", {"checksum": str(checksum), "size": size, "url": url})
