"""A lab's own mirror: the cache's verified files laid out (or uploaded) by content address.

``export`` puts each blob at ``DIR/<alg>/<hex>`` — the layout ``PROVISION_MIRRORS`` reads
(:mod:`provision.sources.mirrors`) — as a reflink or hard link where the filesystem allows, a
read-only copy otherwise (``copy``: never a hard link, which shares the cache blob's inode, so
that whoever can write the mirror's files could change the cache's; ``verify`` would see it);
any static server (nginx) serving ``DIR`` is then a mirror for every manifest.
An object already there with the same size and the same bytes (the same inode, or an equal
digest) is kept; anything else at that path is replaced through a temp file and a rename (a link
planted there is replaced, never written through, and an ``<alg>`` entry that is not a real
folder is refused). ``push`` uploads the same layout to
``s3://bucket/prefix`` with boto3 (multipart above 64 MiB), skipping objects already there with
the same size. Machines fetching from the mirror verify every byte against the manifest, so a
mirror can make a fetch faster, never wrong.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.errors import MissingDependencyError, SourceError, UsageError
from provision.fleet.contents import Blob, Contents
from provision.fsutil import link_or_copy, real_folder, temp_name
from provision.progress import NullProgress, Progress
from provision.store.hashing import hash_file

__all__ = ["MirrorReport", "export", "push"]

#: Objects above this go up in parts (boto3's TransferConfig threshold and part size).
MULTIPART = 64 * 1024 * 1024


@dataclass
class MirrorReport:
    """What an export or push did, per blob: ``{address: how}`` (reflink, hardlink, copy, uploaded, kept)."""

    target: str
    blobs: dict[str, str] = field(default_factory=dict)
    bytes: int = 0
    dropped: list[str] = field(default_factory=list)

    @property
    def written(self) -> int:
        """Blobs written now (not kept)."""
        return sum(1 for how in self.blobs.values() if how != "kept")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"target": self.target, "blobs": self.blobs, "bytes": self.bytes, "dropped": self.dropped}


def _same(blob: Blob, there: Path) -> bool:
    try:
        st = os.lstat(there)
    except FileNotFoundError:
        return False
    if not os.path.isfile(there) or os.path.islink(there) or st.st_size != blob.size:
        return False
    if (st.st_ino, st.st_dev) == ((src := blob.path.stat()).st_ino, src.st_dev):
        return True
    return hash_file(there, [blob.checksum.alg], follow_symlinks=False)[blob.checksum.alg] == blob.checksum.hex


def export(contents: Contents, dest: Path, progress: Progress | None = None, *, copy: bool = False) -> MirrorReport:
    """Lay ``contents`` out under ``dest`` as ``<alg>/<hex>`` (see the module docstring); ``copy``:
    reflinks or copies only, never a hard link (a hard link shares the cache blob's inode)."""
    progress = progress or NullProgress()
    dest = Path(dest)
    report = MirrorReport(str(dest), dropped=list(contents.dropped))
    try:
        if dest.is_symlink():
            raise UsageError(f"{dest}: is a symbolic link; give the real folder")
        dest.mkdir(parents=True, exist_ok=True)
        real_folder(dest)
        for blob in contents.blobs:
            folder = real_folder(dest / blob.checksum.alg)  # never through a link planted at <alg>
            final = folder / blob.checksum.hex
            if _same(blob, final):
                report.blobs[blob.address] = "kept"
                continue
            if os.path.isdir(final) and not os.path.islink(final):
                raise UsageError(f"{final}: a folder where the mirror file belongs; remove it and export again")
            tmp = temp_name(final)
            try:
                how = link_or_copy(blob.path, tmp, allow_hardlink=not copy)
                if how == "copy":
                    os.chmod(tmp, 0o444)
                os.replace(tmp, final)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            report.blobs[blob.address] = how
            report.bytes += blob.size
            progress.note(f"{blob.address}: {how} ({', '.join(blob.names)})")
    except OSError as exc:
        where = exc.filename or dest
        raise UsageError(
            f"mirror export into {dest}: {where}: {exc.strerror or exc}; give a writable folder whose "
            "<alg> entries are real folders"
        ) from None
    return report


def _bucket_url(url: str) -> tuple[str, str]:
    scheme, sep, rest = url.partition("://")
    bucket, _, prefix = rest.partition("/")
    if scheme.lower() != "s3" or not sep or not bucket:
        raise UsageError(f"{url!r}: expected s3://bucket[/prefix]")
    return bucket, prefix.strip("/")


def push(contents: Contents, url: str, progress: Progress | None = None) -> MirrorReport:
    """Upload ``contents`` to ``s3://bucket/prefix/<alg>/<hex>`` (see the module docstring).

    Endpoint, region and credentials are boto3's own configuration (``AWS_ENDPOINT_URL``,
    ``AWS_PROFILE``, ...); they are never printed.
    """
    progress = progress or NullProgress()
    bucket, prefix = _bucket_url(url)
    try:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise MissingDependencyError("boto3", "s3", "provision mirror push") from None
    session = boto3.session.Session()
    if session.get_credentials() is None:
        raise UsageError(
            f"mirror push {url}: no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    try:
        client = session.client("s3")
    except Exception:  # botocore: a bad endpoint or region; its message may echo the variable's value
        raise UsageError(
            "mirror push: boto3 cannot make an S3 client; check AWS_ENDPOINT_URL (a URL) and AWS_DEFAULT_REGION"
        ) from None
    config = TransferConfig(multipart_threshold=MULTIPART, multipart_chunksize=MULTIPART)
    report = MirrorReport(url.rstrip("/"), dropped=list(contents.dropped))
    for blob in contents.blobs:
        key = f"{prefix}/{blob.address}" if prefix else blob.address
        try:
            try:
                head = client.head_object(Bucket=bucket, Key=key)
                if int(head.get("ContentLength", -1)) == blob.size:
                    report.blobs[blob.address] = "kept"
                    continue
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                    raise
            client.upload_file(str(blob.path), bucket, key, Config=config)
        except (BotoCoreError, ClientError) as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", exc.__class__.__name__)
            raise SourceError(
                f"mirror push: uploading s3://{bucket}/{key} failed ({code}); check the bucket, its permissions "
                "and AWS_ENDPOINT_URL, then push again (objects already there are skipped)"
            ) from None
        report.blobs[blob.address] = "uploaded"
        report.bytes += blob.size
        progress.note(f"{blob.address}: uploaded ({', '.join(blob.names)})")
    return report
