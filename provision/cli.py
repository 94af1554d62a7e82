"""The ``provision`` command: parse, call one library function, render (text or --json).

Errors are one line on stderr and map to exit codes (see :mod:`provision.errors`); a
traceback is shown only with ``PROVISION_DEBUG=1``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from . import api
from .config import Settings
from .errors import EXIT_FAILURE, EXIT_INTEGRITY, EXIT_MANIFEST, ProvisionError
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


class _Bars:
    """tqdm progress: one bar per active file plus an aggregate bar; notes to stderr."""

    def __init__(self, enabled: bool, quiet: bool) -> None:
        self.enabled = enabled
        self.quiet = quiet
        self._lock = threading.Lock()
        self._bars: dict[str, Any] = {}
        self._shares: dict[str, tuple[int, int]] = {}  # key -> (total, done) counted in the total bar
        self._total: Any = None

    def _tqdm(self) -> Any:
        from tqdm import tqdm

        return tqdm

    def start(self, key: str, label: str, total: int | None, done: int = 0) -> None:
        """A file (re)starts: its own bar, and its share of the total bar replaced."""
        if not self.enabled:
            return
        tqdm = self._tqdm()
        with self._lock:
            if self._total is None:
                self._total = tqdm(
                    total=0,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc="total",
                    position=0,
                    leave=True,
                    file=sys.stderr,
                )
            old_total, old_done = self._shares.get(key, (0, 0))
            self._shares[key] = (total or 0, done)
            self._total.total = (self._total.total or 0) - old_total + (total or 0)
            self._total.n = max(0, self._total.n - old_done + done)
            self._total.refresh()
            old = self._bars.pop(key, None)
            if old is not None:
                old.close()
            self._bars[key] = tqdm(
                total=total,
                initial=done,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=label[-40:],
                leave=False,
                file=sys.stderr,
            )

    def advance(self, key: str, nbytes: int) -> None:
        if not self.enabled:
            return
        with self._lock:
            bar = self._bars.get(key)
            if bar is not None:
                bar.update(nbytes)
            total, done = self._shares.get(key, (0, 0))
            self._shares[key] = (total, done + nbytes)
            if self._total is not None:
                self._total.update(nbytes)

    def finish(self, key: str, ok: bool) -> None:
        if not self.enabled:
            return
        with self._lock:
            bar = self._bars.pop(key, None)
            if bar is not None:
                bar.close()

    def note(self, text: str) -> None:
        if self.quiet:
            return
        if self.enabled:
            self._tqdm().write(f"provision: {text}", file=sys.stderr)
        else:
            typer.echo(f"provision: {text}", err=True)

    def close(self) -> None:
        with self._lock:
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()
            if self._total is not None:
                self._total.close()
                self._total = None


def _bars(quiet: bool, json_out: bool = False) -> _Bars:
    return _Bars(enabled=sys.stdout.isatty() and not quiet and not json_out, quiet=quiet)


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


def _num(x: float) -> str:
    """A number as the MLPerf checker writes it: no float noise, no exponent."""
    text = f"{x:.8f}".rstrip("0").rstrip(".")
    return text or "0"


def _size(n: int | None) -> str:
    return human_bytes(n) if n is not None else "size unknown"


def _render_benchmark(doc: dict[str, Any]) -> None:
    """A readable plan: what will be downloaded, from where, how big, licences, targets."""
    typer.echo(f"{doc['name']} ({doc['status']}): {doc['description']}".rstrip(": "))
    sizes = []
    if doc.get("dataset_size") is not None:
        sizes.append(f"{doc['dataset_size']:,} samples")
    if doc.get("performance_sample_count") is not None:
        sizes.append(f"performance sample count {doc['performance_sample_count']:,}")
    typer.echo(f"  dataset: {doc['dataset']}" + (f" ({', '.join(sizes)})" if sizes else ""))
    if doc.get("subsets"):
        subsets = ", ".join(f"--subset {k} -> {v}" for k, v in doc["subsets"].items())
        typer.echo(f"  subsets: {subsets}")
    if doc.get("labels"):
        typer.echo(f"  labels: {doc['labels']}")
    typer.echo(f"  models: {', '.join(doc['models']) or 'none'}")
    for m in doc.get("metrics", []):
        ratios = ", ".join(f"{_num(t)} ({r * 100:g}%)" for r, t in zip(m["target_ratio"], m["targets"], strict=True))
        upper = f", at most {_num(m['upper'])}" if m.get("upper") is not None else ""
        typer.echo(f"  accuracy: {m['metric']} reference {_num(m['reference'])}; pass at >= {ratios}{upper}")
    files = [f for art in doc.get("artifacts", []) for f in art["files"]]
    pinned = sum(1 for f in files if f["checksum"] in ("unpublished", "listed"))
    unknown = f" + {doc['unknown_sizes']} file(s) of unknown size" if doc.get("unknown_sizes") else ""
    how = "every file verified against its published checksum"
    if pinned:
        how = f"verified against published checksums, and {pinned} entry(ies) pinned by sha256 on first fetch"
    typer.echo(f"  download: {human_bytes(doc['total_size'])}{unknown}, {how}")
    for gate in doc.get("licence_gates", []):
        typer.echo(f"  LICENCE: {gate['artifact']} needs {gate['access']} access ({gate['license'] or 'see notes'})")
    for art in doc.get("artifacts", []):
        cache = art["cache"]
        typer.echo(
            f"  {art['kind']} {art['name']}: {_size(art['size'])}, {art['access']}, "
            f"cache {cache['state']} ({cache['files']}/{cache['files_total']} files)"
        )
        for f in art["files"]:
            extract = f"  -> {f['extract_to']}/" if f.get("extract_to") else ""
            typer.echo(f"    {f['name']}  {_size(f['size'])}  {f['checksum']}{extract}")
            if f.get("trust"):
                typer.echo(f"      trust: {f['trust']}")
            for u in f["urls"]:
                typer.echo(f"      from {u}")


def _render_detail(doc: dict[str, Any], indent: str = "") -> None:
    skip = {"files", "artifacts", "cache"}
    for key, value in doc.items():
        if key in skip or value in (None, "", [], {}):
            continue
        typer.echo(f"{indent}{key}: {value}")
    if "cache" in doc:
        c = doc["cache"]
        typer.echo(f"{indent}cache: {c['state']} ({c['files']}/{c['files_total']} files) {c['path']}")
    for f in doc.get("files", []):
        size = f"{f['size']} bytes" if f["size"] is not None else "size unknown"
        typer.echo(f"{indent}  - {f['name']}  {size}  {f['checksum']}")
        for u in f["urls"]:
            typer.echo(f"{indent}      {u}")
    for art in doc.get("artifacts", []):
        typer.echo(f"{indent}artifact {art['name']}:")
        _render_detail(art, indent + "  ")


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


def _file_doc(f: Any) -> dict[str, Any]:
    doc = {k: getattr(f, k) for k in ("artifact", "name", "state", "path", "bytes", "source", "error")}
    doc["attempts"] = [{"url": u, "answer": a} for u, a in f.attempts]
    return doc


def _render_fetch(report: Any, quiet: bool) -> None:
    counts: dict[str, int] = {}
    for f in report.files:
        counts[f.state] = counts.get(f.state, 0) + 1
    if not quiet:
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        typer.echo(f"{len(report.files)} files: {summary}")
    for name, folder in report.artifacts.items():
        if all(f.ok for f in report.files if f.artifact == name):
            typer.echo(f"{name}\t{folder}")


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


class _ItemBar:
    """tqdm progress counted in items (preprocessing); notes to stderr."""

    def __init__(self, enabled: bool, quiet: bool) -> None:
        self.enabled, self.quiet = enabled, quiet
        self._bar: Any = None

    def start(self, key: str, label: str, total: int | None, done: int = 0) -> None:
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=done, unit="item", desc=label[-40:], file=sys.stderr)

    def advance(self, key: str, nbytes: int) -> None:
        if self._bar is not None:
            self._bar.update(nbytes)

    def finish(self, key: str, ok: bool) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def note(self, text: str) -> None:
        if not self.quiet:
            typer.echo(f"provision: {text}", err=True)


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
    subset: Annotated[
        str | None,
        typer.Option("--subset", help="The benchmark's subset dataset of this size, else the first K items."),
    ] = None,
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
    """Remove blobs no manifest references and stale partial downloads."""
    with _errors():
        report = api.gc(_settings(cache_dir), dry_run=dry_run)
        verb = "would remove" if dry_run else "removed"
        for p, size, why in report.removed:
            typer.echo(f"{verb} {p} ({human_bytes(size)}): {why}")
        typer.echo(f"{verb} {len(report.removed)} file(s), {human_bytes(report.bytes)}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
