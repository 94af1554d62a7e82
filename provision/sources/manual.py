"""``manual:<url>``: licensed files a person downloads (ImageNet), taken in with ``--from``.

Without ``--from`` the error says where to register, and the name, size and checksum of
the file to bring. With ``--from PATH`` (a file or a folder to search) candidates are
matched by name and size, then confirmed by checksum.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from provision.config import Settings, redact_url
from provision.manifest.model import FileSpec
from provision.sources.base import Probe

__all__ = ["candidates", "manual_instructions"]


def manual_instructions(spec: FileSpec, url: str, artifact: str) -> str:
    """One line telling a person what to download and how to hand it over."""
    page = redact_url(url.removeprefix("manual:"))
    size = f"{spec.size} bytes" if spec.size is not None else "size unknown"
    return (
        f"{artifact}/{spec.name} must be downloaded by hand from {page} (licence/registration); "
        f"expected file {os.path.basename(spec.name)!r}, {size}, {spec.checksum}; "
        f"then run: provision fetch {artifact} --from <file or folder>"
    )


def candidates(spec: FileSpec, roots: Iterable[Path]) -> Iterator[Path]:
    """Local files that may be ``spec``: same name first, then same size, in each root."""
    base = os.path.basename(spec.name)
    for root in roots:
        if root.is_file():
            if spec.size is None or root.stat().st_size == spec.size:
                yield root
            continue
        if not root.is_dir():
            continue
        by_size: list[Path] = []
        direct = root / spec.name
        if direct.is_file() and (spec.size is None or direct.stat().st_size == spec.size):
            yield direct
        for dirpath, _dirs, files in os.walk(root):
            for fname in files:
                path = Path(dirpath) / fname
                if path == direct:
                    continue
                try:
                    size = path.stat().st_size
                except OSError:
                    continue
                if spec.size is not None and size != spec.size:
                    continue
                if fname == base:
                    yield path
                elif spec.size is not None:
                    by_size.append(path)
        yield from by_size


def probe_manual(url: str, access: str, settings: Settings) -> Probe:
    """Doctor's view of a ``manual:`` URL: the page where a person registers and downloads the file."""
    return Probe(manual=redact_url(url.removeprefix("manual:")))
