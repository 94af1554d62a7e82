"""What the cache records about each fetched file (``records/<name>.json``).

Schema 2 added ``ctime_ns`` (the inode's change time, which no ``utime`` can set back: an edit in
place that keeps size and mtime still moves it, as git's ``core.trustctime`` relies on). A schema 1
record loads with ``ctime_ns = 0``, which no file has: each of its files is re-hashed once with
xxh3_128, compared with the recorded digest, and recorded again with its ctime.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

from provision.fsutil import stat_key

__all__ = ["DROPPED", "RECORD_SCHEMA", "FileRecord"]


RECORD_SCHEMA = 2


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
    ctime_ns: int = 0

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
        """True when ``st`` is the stat recorded (the file cannot have changed): size, mtime, inode and ctime."""
        return stat_key(st) == (self.size, self.mtime_ns, self.ino, self.ctime_ns)

    def with_stat(self, st: os.stat_result) -> FileRecord:
        """A copy carrying ``st``'s size, mtime, inode and ctime."""
        return replace(self, size=st.st_size, mtime_ns=st.st_mtime_ns, ino=st.st_ino, ctime_ns=st.st_ctime_ns)

    def with_ctime(self, st: os.stat_result) -> FileRecord:
        """A copy carrying ``st``'s ctime when ``st`` is the file recorded (same size, mtime and inode),
        else this record unchanged (whose ctime then does not match: the file is re-hashed once)."""
        if (st.st_size, st.st_mtime_ns, st.st_ino) != (self.size, self.mtime_ns, self.ino):
            return self
        return replace(self, ctime_ns=st.st_ctime_ns)
