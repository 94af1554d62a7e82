"""``provision list``, ``show`` and ``lint``: what the manifests define, and whether they are well-formed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from provision import api
from provision.cli.common import CacheDir, Json, Name, Suite, errors, print_json, settings
from provision.cli.render import benchmarks_markdown, human_bytes, render_benchmark, render_detail
from provision.errors import EXIT_MANIFEST

__all__ = ["lint", "list_cmd", "show"]


def list_cmd(
    kind: Annotated[
        str | None, typer.Option("--kind", metavar="KIND", help="Only datasets, models or benchmarks.")
    ] = None,
    suite: Annotated[
        str | None,
        typer.Option("--suite", metavar="SUITE", help="Only the benchmarks of MLPerf inference or training."),
    ] = None,
    round_: Annotated[
        str | None,
        typer.Option(
            "--round",
            metavar="ROUND",
            help="Only what round ROUND accepts (v6.1), with the checker's names; Inference's unless --suite training.",
        ),
    ] = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="The benchmarks as a Markdown table (the README's catalogue table).")
    ] = False,
    cache_dir: CacheDir = None,
    json_out: Json = False,
) -> None:
    """List every dataset, model and benchmark the manifests define.

    SIZE is the download; "~" means part of it is the sources' rounded figure (R2 folders
    publish no byte sizes), "?" means no size is known, and a "+" after a size means some of
    its files have no size at all, so there is more to download than shown. STATE is what the
    cache holds: present, partial, absent, or unverified (files without a complete record).
    STATUS of a benchmark follows its rounds: current when the newest round of its suite
    accepts it, else "retired after vX.Y".

    Examples: provision list --round v6.1 | provision list --suite training | provision list --markdown
    """
    with errors():
        rows = api.list_entries(settings(cache_dir), kind=kind, suite=suite, round_=round_)
        if json_out:
            print_json({"entries": rows})
            return
        if markdown:
            typer.echo(benchmarks_markdown(rows), nl=False)
            return
        names_col = round_ is not None
        head = ("NAME", "KIND", "SIZE", "STATE", "FORMAT/STATUS", "CHECKER NAMES" if names_col else "DESCRIPTION")
        table = [head]
        for r in rows:
            table.append(
                (
                    r["name"],
                    r["kind"],
                    _list_size(r),
                    r.get("state", ""),
                    f"{r.get('format') or r.get('status_text') or ''}".strip(),
                    ", ".join(r["round_names"][round_]) if names_col else r["description"],
                )
            )
        width = max(len(row[0]) for row in table)
        extra_w = max(13, *(len(row[4]) for row in table))
        for name, kind_, size, state, extra, last in table:
            typer.echo(f"{name:<{width}}  {kind_:<9} {size:>11}  {state:<10} {extra:<{extra_w}} {last}".rstrip())
        if any(("?" in row[2] or "+" in row[2] or "~" in row[2]) for row in table[1:]):
            typer.echo(
                'size: "~" partly the sources\' rounded figures; "?" unknown; "+" some files\' sizes unknown '
                "(more to download than shown)"
            )


def _list_size(row: dict[str, Any]) -> str:
    """The download as the catalogue states it (cached or not): exact bytes plus the rounded figures."""
    exact, estimated = row.get("size") or 0, row.get("estimated_size") or 0
    if not exact and not estimated:
        return "?"
    text = f"~{human_bytes(exact + estimated)}" if estimated else human_bytes(exact)
    return text + "+" if row.get("unsized") else text


def show(name: Name, suite: Suite = None, cache_dir: CacheDir = None, json_out: Json = False) -> None:
    """Show what the manifests say about NAME and its state in the cache.

    A benchmark shows its suite, the rounds that accept it and its status, the checker's
    names, every accuracy target (or training quality target), the sample counts, and what a
    download takes: exact bytes where published, "~" estimates from the sources' rounded sizes.

    Examples: provision show yolo-99 | provision show llama3.1_8b --suite training
    """
    with errors():
        doc = api.describe(name, settings(cache_dir), suite=suite)
        if json_out:
            print_json(doc)
            return
        if doc["kind"] == "benchmark":
            render_benchmark(doc)
        else:
            render_detail(doc)


def lint(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="[PATH]...",
            help="Manifest files or folders (default: built-in + PROVISION_MANIFESTS).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check manifests; report every problem, exit 6 if any.

    Example: provision lint ./my-manifests
    """
    with errors():
        problems = api.lint(paths or (), settings())
        for p in problems:
            typer.echo(p, err=True)
        if problems:
            typer.echo(f"provision: {len(problems)} manifest problem(s)", err=True)
            raise typer.Exit(EXIT_MANIFEST)
        typer.echo("manifests ok")
