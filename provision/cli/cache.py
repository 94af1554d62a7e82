"""``provision fetch``, ``verify``, ``path``, ``status``, ``gc`` and ``hash``: the cache and what is in it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provision import api
from provision.cli.common import CacheDir, Json, Name, Quiet, Suite, Verbose, errors, print_json, settings
from provision.cli.render import human_bytes, render_fetch, transfer_bars
from provision.errors import EXIT_INTEGRITY

__all__ = ["fetch", "gc", "hash_cmd", "path", "status", "verify"]


def fetch(
    names: Annotated[list[str], typer.Argument(metavar="NAME...", help="Datasets, models or benchmarks.")],
    from_: Annotated[
        list[Path] | None,
        typer.Option(
            "--from",
            metavar="PATH",
            help="A file or folder to take files from first (licensed data, local copies); repeatable.",
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            metavar="N",
            envvar="PROVISION_JOBS",
            show_envvar=True,
            min=1,
            help="How many files to fetch at once.",
        ),
    ] = None,
    subset: Annotated[
        str | None,
        typer.Option("--subset", metavar="K", help="Use the benchmark's subset dataset of this size (e.g. 500)."),
    ] = None,
    suite: Suite = None,
    cache_dir: CacheDir = None,
    json_out: Json = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Download NAME... into the cache and verify every file.

    A benchmark brings its dataset, labels and models. Verified files are not downloaded
    again; a corrupted one is repaired. Offline: PROVISION_OFFLINE=1.

    Example: provision fetch resnet50 --from ~/Downloads/ILSVRC2012_img_val.tar
    """
    with errors():
        bars = transfer_bars(quiet, json_out, verbose)
        try:
            report = api.fetch(
                names,
                settings(cache_dir, jobs=jobs),
                from_paths=from_ or (),
                progress=bars,
                subset=subset,
                suite=suite,
            )
        finally:
            bars.close()
        if json_out:
            print_json(report.to_json())
        else:
            render_fetch(report, quiet)
        for line in report.error_lines():
            typer.echo(f"provision: error: {line}", err=True)
        if not report.ok:
            raise typer.Exit(report.exit_code)


def verify(
    names: Annotated[
        list[str] | None, typer.Argument(metavar="[NAME]...", help="Default: everything fetched.", show_default=False)
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Re-hash every file with its published checksum, not only files whose stat changed.",
        ),
    ] = False,
    cache_dir: CacheDir = None,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Check cached files: fast (stat + xxh3 of changed files) or --full.

    Example: provision verify resnet50 --full
    """
    with errors():
        bars = transfer_bars(quiet, json_out)
        try:
            report = api.verify(names or (), settings(cache_dir), full=full, progress=bars)
        finally:
            bars.close()
        if json_out:
            print_json(
                {
                    "ok": report.ok,
                    "full": full,
                    "files_checked": len(report.files),
                    "files_hashed": report.files_hashed,
                    "bytes_hashed": report.bytes_hashed,
                    "files": [vars(f) | {"ok": f.ok} for f in report.files],
                }
            )
        elif not quiet:
            absent = f", {len(report.absent)} never fetched" if report.absent else ""
            typer.echo(
                f"{len(report.files)} files checked, {report.files_hashed} re-hashed "
                f"({human_bytes(report.bytes_hashed)}), {len(report.failures)} bad{absent}"
            )
        for f in report.failures:
            typer.echo(f"provision: error: {f.message()}", err=True)
        if not report.ok:
            raise typer.Exit(EXIT_INTEGRITY)


def path(
    name: Name,
    preprocessed: Annotated[
        bool,
        typer.Option("--preprocessed", help="Print the folder of NAME's preprocessed outputs (exit 3 if not made)."),
    ] = False,
    subset: Annotated[
        str | None,
        typer.Option("--subset", metavar="K", help="With --preprocessed: the outputs of 'preprocess --subset K'."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", metavar="MODEL", help="The benchmark model whose recipe applies (default: its first model)."
        ),
    ] = None,
    cache_dir: CacheDir = None,
) -> None:
    """Print the cache folder of NAME (for a benchmark, 'artifact<TAB>folder' lines).

    Example: provision path resnet50-onnx
    """
    with errors():
        if preprocessed:
            typer.echo(str(api.preprocessed_path(name, settings(cache_dir), subset=subset, model=model)))
            return
        entries = api.path(name, settings(cache_dir))
        if len(entries) == 1:
            typer.echo(str(entries[0][1]))
        else:
            for art, folder in entries:
                typer.echo(f"{art}\t{folder}")


def status(cache_dir: CacheDir = None, json_out: Json = False) -> None:
    """Summarise disk use per artifact in the cache.

    Example: provision status --json
    """
    with errors():
        doc = api.status(settings(cache_dir))
        if json_out:
            print_json(doc)
            return
        typer.echo(f"cache: {doc['cache']}")
        for r in doc["artifacts"]:
            trees = f", {r['trees']}/{r['trees_total']} extracted" if r["trees_total"] else ""
            typer.echo(
                f"  {r['name']:<28} {r['state']:<10} {r['files']}/{r['files_total']} files{trees} "
                f"{human_bytes(r['bytes']):>10}"
            )
        typer.echo(f"total {human_bytes(doc['total_bytes'])}, partial downloads {human_bytes(doc['partial_bytes'])}")


def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would go.")] = False,
    cache_dir: CacheDir = None,
) -> None:
    """Remove blobs no manifest references and stale partial downloads.

    Also preprocessing leftovers: outputs of benchmarks no manifest defines, outputs rejected by
    expected_tree, validation results of runs that are gone, interrupted runs. Preprocessed runs
    of defined benchmarks are kept whatever their key (another model, subset or machine may use them).

    Example: provision gc --dry-run
    """
    with errors():
        report = api.gc(settings(cache_dir), dry_run=dry_run)
        verb = "would remove" if dry_run else "removed"
        for p, size, why in report.removed:
            typer.echo(f"{verb} {p} ({human_bytes(size)}): {why}")
        typer.echo(f"{verb} {len(report.removed)} file(s), {human_bytes(report.bytes)}")


def hash_cmd(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...", help="Files (or, with --tree, folders) to hash.")],
    alg: Annotated[
        list[str] | None,
        typer.Option("--alg", metavar="ALG", help="md5, sha1, sha256, sha512, xxh3_128, xxh64 (repeatable)."),
    ] = None,
    tree: Annotated[
        bool,
        typer.Option("--tree", help="Print the tree digest of each folder (pin it as tree = ... in a manifest)."),
    ] = False,
) -> None:
    """Print 'alg:hex  FILE' for each file (each file is read once).

    Example: provision hash --alg md5 --alg sha256 resnet50_v1.onnx
    """
    with errors():
        if tree:
            for row in api.hash_trees(files):
                typer.echo(f"{row['digest']}  {row['path']}  ({row['files']} files, {row['bytes']} bytes)")
            return
        algs = alg or ["sha256"]
        for row in api.hash_paths(files, algs):
            for a in algs:
                typer.echo(f"{a}:{row[a]}  {row['path']}")
