"""The ``provision`` command: parse, call one library function, render (text or --json).

Errors are one line on stderr and map to exit codes (see :mod:`provision.errors`); a
traceback is shown only with ``PROVISION_DEBUG=1``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from . import api
from .cli_render import (
    _bars,
    _file_doc,
    _ItemBar,
    _render_benchmark,
    _render_detail,
    _render_fetch,
    _render_run,
    _render_validation,
    _Stages,
)
from .config import Settings
from .errors import EXIT_ACCURACY, EXIT_FAILURE, EXIT_INTEGRITY, EXIT_MANIFEST, ProvisionError
from .fetch import human_bytes
from .preprocessing import parse_shard

app = typer.Typer(
    name="provision",
    help=(
        "Set up ML benchmark machines: fetch and verify datasets and reference checkpoints "
        "described by manifests.\n\nExit codes: 0 ok, 1 failure, 2 usage, 3 integrity "
        "(checksum/size/missing), 4 source/network, 5 accuracy below target, 6 manifest error."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

CacheDir = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        envvar="PROVISION_CACHE",
        show_envvar=True,
        help="Cache root (a big scratch disk or a shared NFS folder).",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
Subset = Annotated[
    str | None,
    typer.Option("--subset", help="The benchmark's subset dataset of this size, else the first K items."),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or notes.")]


def _debug() -> bool:
    return os.environ.get("PROVISION_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Turn library errors into one stderr line and their exit code."""
    try:
        yield
    except typer.Exit:
        raise
    except ProvisionError as exc:
        if _debug():
            traceback.print_exc()
        typer.echo(f"provision: error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except BrokenPipeError:
        # stdout went away (e.g. `provision show x | head`): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(0) from None
    except KeyboardInterrupt:
        typer.echo(
            "provision: interrupted; partial downloads are kept aside and never taken as complete",
            err=True,
        )
        raise typer.Exit(130) from None
    except Exception as exc:
        if _debug():
            traceback.print_exc()
        typer.echo(
            f"provision: error: unexpected {exc.__class__.__name__}: {exc} "
            "(rerun with PROVISION_DEBUG=1 for a traceback and report it)",
            err=True,
        )
        raise typer.Exit(EXIT_FAILURE) from None


def _settings(cache_dir: Path | None = None, **overrides: Any) -> Settings:
    return Settings.from_env(cache_dir=cache_dir, **overrides)


def _print_json(doc: Any) -> None:
    typer.echo(json.dumps(doc, indent=2, default=str))


@app.command("list")
def list_cmd(cache_dir: CacheDir = None, json_out: Json = False) -> None:
    """List every dataset, model and benchmark the manifests define."""
    with _errors():
        rows = api.list_entries(_settings(cache_dir))
        if json_out:
            _print_json({"entries": rows})
            return
        for r in rows:
            size = human_bytes(r["size"]) if r.get("size") else "?"
            if r.get("unknown_sizes"):
                size += "+"  # some files' sizes are not published
            state = r.get("state", "")
            extra = f"{r.get('format') or r.get('status') or ''}".strip()
            typer.echo(f"{r['name']:<32} {r['kind']:<9} {size:>11} {state:<10} {extra:<11} {r['description']}".rstrip())


@app.command()
def show(name: str, cache_dir: CacheDir = None, json_out: Json = False) -> None:
    """Show what the manifests say about NAME and its state in the cache."""
    with _errors():
        doc = api.describe(name, _settings(cache_dir))
        if json_out:
            _print_json(doc)
            return
        if doc["kind"] == "benchmark":
            _render_benchmark(doc)
        else:
            _render_detail(doc)


@app.command()
def fetch(
    names: Annotated[list[str], typer.Argument(help="Datasets, models or benchmarks.")],
    from_: Annotated[
        list[Path] | None,
        typer.Option(
            "--from",
            help="A file or folder to take files from first (licensed data, local copies).",
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            envvar="PROVISION_JOBS",
            show_envvar=True,
            min=1,
            help="How many files to fetch at once.",
        ),
    ] = None,
    subset: Annotated[
        str | None, typer.Option("--subset", help="Use the benchmark's subset dataset of this size (e.g. 500).")
    ] = None,
    cache_dir: CacheDir = None,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Download NAME... into the cache and verify every file.

    A benchmark brings its dataset, labels and models. Verified files are not downloaded
    again; a corrupted one is repaired. Offline: PROVISION_OFFLINE=1.
    """
    with _errors():
        bars = _bars(quiet, json_out)
        try:
            report = api.fetch(
                names, _settings(cache_dir, jobs=jobs), from_paths=from_ or (), progress=bars, subset=subset
            )
        finally:
            bars.close()
        if json_out:
            _print_json(
                {
                    "ok": report.ok,
                    "exit_code": report.exit_code,
                    "artifacts": report.artifacts,
                    "files": [_file_doc(f) for f in report.files],
                }
            )
        else:
            _render_fetch(report, quiet)
        for f in report.failures:
            typer.echo(f"provision: error: {f.error}", err=True)
        if not report.ok:
            raise typer.Exit(report.exit_code)


@app.command()
def verify(
    names: Annotated[list[str] | None, typer.Argument(help="Default: everything cached.")] = None,
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
    """Check cached files: fast (stat + xxh3 of changed files) or --full."""
    with _errors():
        bars = _bars(quiet, json_out)
        try:
            report = api.verify(names or (), _settings(cache_dir), full=full, progress=bars)
        finally:
            bars.close()
        if json_out:
            _print_json(
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
            typer.echo(
                f"{len(report.files)} files checked, {report.files_hashed} re-hashed "
                f"({human_bytes(report.bytes_hashed)}), {len(report.failures)} bad"
            )
        for f in report.failures:
            typer.echo(f"provision: error: {f.message()}", err=True)
        if not report.ok:
            raise typer.Exit(EXIT_INTEGRITY)


@app.command()
def path(
    name: str,
    preprocessed: Annotated[
        bool,
        typer.Option("--preprocessed", help="Print the folder of NAME's preprocessed outputs (exit 3 if not made)."),
    ] = False,
    subset: Annotated[
        str | None, typer.Option("--subset", help="With --preprocessed: the outputs of 'preprocess --subset K'.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="The benchmark model whose recipe applies (default: its first model)."),
    ] = None,
    cache_dir: CacheDir = None,
) -> None:
    """Print the cache folder of NAME (for a benchmark, 'artifact<TAB>folder' lines)."""
    with _errors():
        if preprocessed:
            typer.echo(str(api.preprocessed_path(name, _settings(cache_dir), subset=subset, model=model)))
            return
        entries = api.path(name, _settings(cache_dir))
        if len(entries) == 1:
            typer.echo(str(entries[0][1]))
        else:
            for art, folder in entries:
                typer.echo(f"{art}\t{folder}")


@app.command()
def preprocess(
    name: Annotated[str, typer.Argument(help="A benchmark whose manifest names a recipe.")],
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Worker processes (default: every core).")
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option("--shard", help="I/N: do the I-th of N contiguous slices (machines sharing the cache)."),
    ] = None,
    merge: Annotated[
        bool, typer.Option("--merge", help="Assemble finished shards (automatic when the last shard finishes).")
    ] = False,
    subset: Subset = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="The benchmark model whose recipe applies (default: its first model)."),
    ] = None,
    cache_dir: CacheDir = None,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Run NAME's preprocessing recipe into the cache (skipped when inputs, recipe and libraries are unchanged).

    Outputs go to <cache>/preprocessed/NAME/<key>/ with a run.json record; a digest that
    does not match the manifest's expected_tree exits 3.
    """
    with _errors():
        bar = _ItemBar(enabled=sys.stderr.isatty() and not quiet and not json_out, quiet=quiet)
        report = api.preprocess(
            name,
            _settings(cache_dir),
            jobs=jobs,
            shard=parse_shard(shard) if shard is not None else None,
            merge=merge,
            subset=subset,
            progress=bar,
            model=model,
        )
        if json_out:
            _print_json(report.to_json())
            return
        for note in report.notes:
            bar.note(note)
        if report.state == "shard" and report.shard is not None:
            i, n = report.shard
            typer.echo(
                f"{report.benchmark}: shard {i}/{n} done ({report.items} items, {report.processed} processed now); "
                f"waiting for {', '.join(report.missing_shards)}"
            )
        else:
            typer.echo(
                f"{report.benchmark}: {report.state} ({report.items} items, {report.processed} processed now, "
                f"{report.seconds:.1f}s, key {report.key[:16]}, tree {report.digest}, expected_tree {report.pin})"
            )
        typer.echo(str(report.path))


Device = Annotated[
    str, typer.Option("--device", help="auto (cuda when the runtime sees a GPU), cpu, cuda or cuda:N.")
]
BatchSize = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Samples per model call.")]
Threads = Annotated[
    int | None, typer.Option("--threads", min=1, help="Runtime threads (default: every usable core).")
]
AllowTf32 = Annotated[
    bool, typer.Option("--allow-tf32", help="Allow TF32 matmuls/convolutions on NVIDIA GPUs (off: exact fp32).")
]


def _options(device: str, batch_size: int, threads: int | None, allow_tf32: bool, count: int | None = None) -> Any:
    from .validation import ValidateOptions

    return ValidateOptions(device=device, batch_size=batch_size, threads=threads, allow_tf32=allow_tf32, count=count)


@app.command()
def validate(
    name: Annotated[str, typer.Argument(help="A benchmark (fetched and preprocessed).")],
    model: Annotated[
        str | None, typer.Option("--model", help="The model to run (default: the benchmark's first runnable one).")
    ] = None,
    subset: Annotated[
        str | None,
        typer.Option("--subset", help="Validate on the preprocessed subset of this size (see 'provision run')."),
    ] = None,
    count: Annotated[
        int | None,
        typer.Option("--count", min=1, help="Only the first N samples: reports a 99% interval, not the full target."),
    ] = None,
    device: Device = "auto",
    batch_size: BatchSize = 32,
    threads: Threads = None,
    allow_tf32: AllowTf32 = False,
    cache_dir: CacheDir = None,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Run NAME's reference model on its preprocessed data on this machine and score it with
    MLPerf's metric; exit 5 below target.

    The result (accuracy, target, pass/fail, samples/s, energy where counters exist, device,
    runtime settings, model digest) is stored beside the preprocessing run record.
    """
    with _errors():
        bar = _ItemBar(enabled=sys.stderr.isatty() and not quiet and not json_out, quiet=quiet)
        report = api.validate(
            name,
            _settings(cache_dir),
            model=model,
            subset=subset,
            options=_options(device, batch_size, threads, allow_tf32, count),
            progress=bar,
        )
        if json_out:
            _print_json(report.to_json())
        else:
            _render_validation(report)
        if not report.passed:
            raise typer.Exit(EXIT_ACCURACY)


@app.command()
def run(
    name: Annotated[str, typer.Argument(help="A benchmark.")],
    model: Annotated[
        str | None,
        typer.Option("--model", help="The model to prepare and validate (default: the benchmark's first runnable)."),
    ] = None,
    subset: Subset = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", min=1, help="Connections and worker processes.")] = None,
    from_: Annotated[
        list[Path] | None, typer.Option("--from", help="A file or folder to take files from first (licensed data).")
    ] = None,
    device: Device = "auto",
    batch_size: BatchSize = 32,
    threads: Threads = None,
    allow_tf32: AllowTf32 = False,
    revalidate: Annotated[
        bool, typer.Option("--revalidate", help="Run validation again even when a stored result matches.")
    ] = False,
    cache_dir: CacheDir = None,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Make NAME ready on this machine and prove it: fetch -> verify -> preprocess -> validate.

    Each stage is skipped when its cached result is still valid; a final table lists the
    stages. --model picks the model (and its preprocessing profile, e.g. resnet50-pytorch).
    Exit 5 when validation is below target, 3/4 when fetching or verification fails.
    """
    with _errors():
        stages = _Stages(quiet, json_out)
        try:
            report = api.run(
                name,
                _settings(cache_dir),
                model=model,
                subset=subset,
                jobs=jobs,
                from_paths=from_ or (),
                progress=stages,
                options=_options(device, batch_size, threads, allow_tf32),
                revalidate=revalidate,
            )
        finally:
            stages.close()
        fetched = report.fetch
        if json_out:
            doc = report.to_json()
            doc["fetch"]["files"] = [_file_doc(f) for f in fetched.files]
            _print_json(doc)
        else:
            if not fetched.ok:
                _render_fetch(fetched, quiet)
            _render_run(report)
        for f in fetched.failures:
            typer.echo(f"provision: error: {f.error}", err=True)
        if not fetched.ok:
            raise typer.Exit(fetched.exit_code)
        if report.verify is not None:
            report.verify.raise_for_errors()
        if report.validation is not None and not report.validation.passed:
            raise typer.Exit(EXIT_ACCURACY)


@app.command()
def lint(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Manifest files or folders (default: built-in + PROVISION_MANIFESTS)."),
    ] = None,
) -> None:
    """Check manifests; report every problem, exit 6 if any."""
    with _errors():
        problems = api.lint(paths or (), _settings())
        for p in problems:
            typer.echo(p, err=True)
        if problems:
            typer.echo(f"provision: {len(problems)} manifest problem(s)", err=True)
            raise typer.Exit(EXIT_MANIFEST)
        typer.echo("manifests ok")


@app.command("hash")
def hash_cmd(
    files: Annotated[list[Path], typer.Argument(help="Files (or, with --tree, folders) to hash.")],
    alg: Annotated[
        list[str] | None,
        typer.Option("--alg", help="md5, sha1, sha256, sha512, xxh3_128, xxh64 (repeatable)."),
    ] = None,
    tree: Annotated[
        bool,
        typer.Option("--tree", help="Print the tree digest of each folder (pin it as tree = ... in a manifest)."),
    ] = False,
) -> None:
    """Print 'alg:hex  FILE' for each file (each file is read once)."""
    with _errors():
        if tree:
            for row in api.hash_trees(files):
                typer.echo(f"{row['digest']}  {row['path']}  ({row['files']} files, {row['bytes']} bytes)")
            return
        algs = alg or ["sha256"]
        for row in api.hash_paths(files, algs):
            for a in algs:
                typer.echo(f"{a}:{row[a]}  {row['path']}")


@app.command()
def status(cache_dir: CacheDir = None, json_out: Json = False) -> None:
    """Summarise disk use per artifact in the cache."""
    with _errors():
        doc = api.status(_settings(cache_dir))
        if json_out:
            _print_json(doc)
            return
        typer.echo(f"cache: {doc['cache']}")
        for r in doc["artifacts"]:
            typer.echo(
                f"  {r['name']:<28} {r['state']:<10} {r['files']}/{r['files_total']} files "
                f"{human_bytes(r['bytes']):>10}"
            )
        typer.echo(f"total {human_bytes(doc['total_bytes'])}, partial downloads {human_bytes(doc['partial_bytes'])}")


@app.command()
def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would go.")] = False,
    cache_dir: CacheDir = None,
) -> None:
    """Remove blobs no manifest references and stale partial downloads.

    Also preprocessing leftovers: outputs of benchmarks no manifest defines, outputs rejected by
    expected_tree, validation results of runs that are gone, interrupted runs. Preprocessed runs
    of defined benchmarks are kept whatever their key (another model, subset or machine may use them).
    """
    with _errors():
        report = api.gc(_settings(cache_dir), dry_run=dry_run)
        verb = "would remove" if dry_run else "removed"
        for p, size, why in report.removed:
            typer.echo(f"{verb} {p} ({human_bytes(size)}): {why}")
        typer.echo(f"{verb} {len(report.removed)} file(s), {human_bytes(report.bytes)}")


def main() -> None:
    """Console-script entry point."""
    app()


# Commands defined in their own modules register themselves on ``app`` when imported.
from . import cli_audit, cli_demo, cli_doctor  # noqa: E402,F401

if __name__ == "__main__":  # pragma: no cover
    main()
