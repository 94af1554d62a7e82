"""What the cache records about each fetched file (``records/<name>.json``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

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
