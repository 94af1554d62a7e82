"""What the cache records about each fetched file (``records/<name>.json``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["DROPPED", "RECORD_SCHEMA", "FileRecord"]


RECORD_SCHEMA = 1


#: ``FileRecord.link`` of an archive removed after a verified extraction (keep_archive = false).
DROPPED = "dropped"


@dataclass
class FileRecord:
    """What the cache knows about one file of an artifact."""

    checksum: str
    xxh3_128: str
    size: int
    mtime_ns: int
    ino: int
    link: str = ""
    source: str = ""

    @classmethod
    def from_json(cls, doc: Any) -> FileRecord | None:
        """The entry as saved by :meth:`to_json`; None when it is not of that shape (hand-edited,
        truncated, another tool's): the file is then re-verified as if it had no record."""
        if not isinstance(doc, dict):
            return None
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = doc.get(f.name, f.default)
            kind = str if f.type == "str" else int
            if type(value) is not kind:  # bool is not an int here, a float is not an int
                return None
            values[f.name] = value
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """The entry as ``records/<name>.json`` holds it."""
        return dict(vars(self))

    def stat_matches(self, st: os.stat_result) -> bool:
        """True when ``st`` is the stat recorded (the file cannot have changed)."""
        return (st.st_size, st.st_mtime_ns, st.st_ino) == (self.size, self.mtime_ns, self.ino)

    def with_stat(self, st: os.stat_result) -> FileRecord:
        """A copy carrying ``st``'s size, mtime and inode."""
        return FileRecord(
            self.checksum,
            self.xxh3_128,
            st.st_size,
            st.st_mtime_ns,
            st.st_ino,
            self.link,
            self.source,
        )
