"""``provision mirror export|push`` and ``provision bundle create|import|ls``: serving a fleet."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from provision import api
from provision.cli.common import CacheDir, Json, PlainCommand, PlainGroup, errors, print_json, settings
from provision.fsutil import human_bytes

if TYPE_CHECKING:
    from provision.fleet.mirror import MirrorReport

__all__ = ["bundle_app", "mirror_app"]

mirror_app = typer.Typer(
    help="A lab's own content-addressed mirror of the cache (<alg>/<hex>, what PROVISION_MIRRORS reads).",
    no_args_is_help=True,
    rich_markup_mode=None,
    cls=PlainGroup,
)
bundle_app = typer.Typer(
    help="One tar of everything some benchmarks need, for machines without a network.",
    no_args_is_help=True,
    rich_markup_mode=None,
    cls=PlainGroup,
)

Names = Annotated[
    list[str] | None, typer.Argument(metavar="NAME...", help="Datasets, models or benchmarks.", show_default=False)
]
Every = Annotated[bool, typer.Option("--all", help="Everything fetched in the cache instead of NAME...")]


def _split_names(args: list[str] | None, what: str) -> tuple[list[str], str]:
    """``NAME... DEST``: the names and the last argument."""
    from provision.errors import UsageError

    items = list(args or [])
    if not items:
        raise UsageError(f"give NAME... {what} (or --all {what})")
    return items[:-1], items[-1]


@mirror_app.command("export", cls=PlainCommand, short_help="Lay NAME's verified files out as DIR/<alg>/<hex>.")
def export(
    args: Annotated[
        list[str] | None, typer.Argument(metavar="NAME... DIR", help="What to export, then the mirror folder.")
    ] = None,
    every: Every = False,
    copy: Annotated[
        bool,
        typer.Option("--copy", help="Reflinks or copies only: no hard link sharing the cache blob's inode."),
    ] = False,
    cache_dir: CacheDir = None,
    json_out: Json = False,
) -> None:
    """Lay NAME's verified files out as DIR/<alg>/<hex> (reflinks or hard links where possible).

    Serve DIR with any static server (nginx) and point PROVISION_MIRRORS at it.

    Example: provision mirror export resnet50 bert /srv/mirror
    """
    with errors():
        names, dest = _split_names(args, "DIR")
        report = api.mirror_export(names, Path(dest), settings(cache_dir), every=every, copy=copy)
        if json_out:
            print_json(report.to_json())
            return
        _summary(report, dest, "written")
        for key in report.dropped:
            typer.echo(f"not exported: {key} (removed after extraction: keep_archive = false)", err=True)


def _summary(report: MirrorReport, where: str, verb: str) -> None:
    """One line: how many files the mirror holds, how many this run ``verb`` (and their bytes)."""
    kept = len(report.blobs) - report.written
    typer.echo(
        f"{where}: {len(report.blobs)} files ({report.written} {verb}, {kept} already there), "
        f"{human_bytes(report.bytes)} {verb}"
    )


@mirror_app.command("push", cls=PlainCommand, short_help="Upload them to s3://BUCKET/PREFIX/<alg>/<hex>.")
def push(
    args: Annotated[
        list[str] | None, typer.Argument(metavar="NAME... s3://BUCKET/PREFIX", help="What to push, then where.")
    ] = None,
    every: Every = False,
    cache_dir: CacheDir = None,
    json_out: Json = False,
) -> None:
    """Upload NAME's verified files to s3://BUCKET/PREFIX/<alg>/<hex> (multipart; same-size objects skipped).

    Endpoint and credentials are boto3's (AWS_ENDPOINT_URL, AWS_PROFILE, ...).

    Example: provision mirror push --all s3://lab-mirror/provision
    """
    with errors():
        names, url = _split_names(args, "s3://BUCKET/PREFIX")
        report = api.mirror_push(names, url, settings(cache_dir), every=every)
        if json_out:
            print_json(report.to_json())
            return
        _summary(report, report.target, "uploaded")


@bundle_app.command("create", cls=PlainCommand, short_help="Write one tar of everything NAME needs.")
def create(
    names: Names = None,
    output: Annotated[Path, typer.Option("--output", "-o", metavar="FILE", help="The bundle to write.")] = Path(
        "provision-bundle.tar"
    ),
    split: Annotated[
        str | None,
        typer.Option("--split", metavar="SIZE", help="Cut into FILE.000, FILE.001... of at most SIZE (4G, 700M)."),
    ] = None,
    every: Every = False,
    cache_dir: CacheDir = None,
    json_out: Json = False,
) -> None:
    """Write one tar of everything NAME needs: verified files, lock-file pins and the manifests.

    Example: provision bundle create resnet50 -o r50.tar --split 4G
    """
    with errors():
        from provision.fleet.bundle import parse_size

        index = api.bundle_create(
            list(names or []), output, settings(cache_dir), every=every, split=parse_size(split) if split else None
        )
        if json_out:
            print_json(index.to_json())
            return
        typer.echo(
            f"{', '.join(str(p) for p in index.parts)}: {len(index.blobs)} files, "
            f"{human_bytes(int(index.doc['bytes']))} of {', '.join(index.doc['artifacts'])}"
        )


@bundle_app.command("import", cls=PlainCommand, short_help="Verify a bundle, then make its artifacts ready.")
def import_(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="A bundle (or the first part, FILE.000).")],
    cache_dir: CacheDir = None,
    json_out: Json = False,
) -> None:
    """Verify every file of a bundle, then make its artifacts ready in the cache (works offline).

    A damaged bundle is exit 3 with nothing imported.

    Example: PROVISION_OFFLINE=1 provision bundle import /media/usb/r50.tar
    """
    with errors():
        report = api.bundle_import(path, settings(cache_dir))
        if json_out:
            print_json(report.to_json())
            return
        typer.echo(
            f"{path}: {report.blobs} files verified ({human_bytes(report.bytes)}); ready: {', '.join(report.artifacts)}"
        )
        if report.manifests:
            typer.echo(f"its manifests: {report.manifests} (add to PROVISION_MANIFESTS if this machine lacks them)")


@bundle_app.command("ls", cls=PlainCommand, short_help="List what a bundle holds.")
def ls(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="A bundle (or the first part, FILE.000).")],
    json_out: Json = False,
) -> None:
    """List what a bundle holds (reads its index only)."""
    with errors():
        index = api.bundle_ls(path)
        if json_out:
            print_json(index.to_json())
            return
        doc = index.doc
        typer.echo(
            f"{path}: bundle of provision {doc.get('provision')}, created {doc.get('created')}, "
            f"{len(index.parts)} part(s), {len(index.blobs)} files, {human_bytes(int(doc.get('bytes', 0)))}"
        )
        for blob in index.blobs:
            typer.echo(f"{blob['checksum']}  {blob['size']:>14,}  {', '.join(blob['names'])}")
