"""Rendering for the CLI: progress bars (tqdm) and the text forms of library results.

Only the command modules use this module; the library never prints.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import typer

__all__ = [
    "Bars",
    "ItemBar",
    "Stages",
    "human_bytes",
    "render_benchmark",
    "render_detail",
    "render_fetch",
    "render_run",
    "render_validation",
    "transfer_bars",
]


def human_bytes(n: float) -> str:
    """:func:`provision.fsutil.human_bytes` (``1.5 GiB``), which is imported on the first call:
    :mod:`provision.fsutil` loads modules (``socket``, ...) that ``provision --help`` does not need."""
    from provision.fsutil import human_bytes as format_bytes

    return format_bytes(n)


class Bars:
    """tqdm progress: one bar per active file plus an aggregate bar; notes to stderr."""

    def __init__(self, enabled: bool, quiet: bool, verbose: bool = False) -> None:
        self.enabled = enabled
        self.quiet = quiet
        self.verbose = verbose
        self._retried: set[str] = set()  # URLs whose first failure was shown
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

    def retry(self, key: str, url: str, text: str) -> None:
        """The first failure of each URL, on a terminal or with ``--verbose`` (the final error names them all)."""
        if self.quiet or not (self.verbose or sys.stderr.isatty()):
            return
        with self._lock:
            if url in self._retried:
                return
            self._retried.add(url)
        self.note(text)

    def close(self) -> None:
        with self._lock:
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()
            if self._total is not None:
                self._total.close()
                self._total = None


def transfer_bars(quiet: bool, json_out: bool = False, verbose: bool = False) -> Bars:
    return Bars(enabled=sys.stdout.isatty() and not quiet and not json_out, quiet=quiet, verbose=verbose)


def _num(x: float) -> str:
    """A number as the MLPerf checker writes it: no float noise, no exponent."""
    text = f"{x:.8f}".rstrip("0").rstrip(".")
    return text or "0"


def _size(n: int | None) -> str:
    return human_bytes(n) if n is not None else "size unknown"


def _file_size(f: dict[str, Any]) -> str:
    if f.get("size") is not None:
        return human_bytes(f["size"])
    if f.get("approx_size") is not None:
        return f"~{human_bytes(f['approx_size'])}"
    return "size unknown"


def render_benchmark(doc: dict[str, Any]) -> None:
    """A readable plan: suite and rounds, what will be downloaded, from where, how big, licences, targets."""
    typer.echo(f"{doc['name']} ({doc.get('status_text') or doc['status']}): {doc['description']}".rstrip(": "))
    if doc.get("rounds"):
        names = ", ".join(doc.get("checker_names") or [])
        rounds = ", ".join(doc["rounds"])
        typer.echo(f"  MLPerf {doc['suite']}, rounds {rounds}" + (f"; checker names: {names}" if names else ""))
        partial = {r: n for r, n in doc.get("round_names", {}).items() if n != doc.get("checker_names")}
        for r, n in partial.items():
            typer.echo(f"    {r} accepts {', '.join(n)}")
    elif doc.get("suite") == "training":
        typer.echo("  MLPerf training")
    sizes = []
    if doc.get("dataset_size") is not None:
        sizes.append(f"{doc['dataset_size']:,} samples")
    if doc.get("performance_sample_count") is not None:
        sizes.append(f"performance sample count {doc['performance_sample_count']:,}")
    acc = doc.get("accuracy_sample_count")
    if acc is not None and acc != doc.get("dataset_size"):
        sizes.append(f"accuracy sample count {acc:,}")
    for scenario, count in (doc.get("scenario_sample_counts") or {}).items():
        sizes.append(f"{scenario} accuracy sample count {count:,}")
    typer.echo(f"  dataset: {doc['dataset']}" + (f" ({', '.join(sizes)})" if sizes else ""))
    if doc.get("extra_datasets"):
        typer.echo(f"  also fetched: {', '.join(doc['extra_datasets'])}")
    if doc.get("subsets"):
        subsets = ", ".join(f"--subset {k} -> {v}" for k, v in doc["subsets"].items())
        typer.echo(f"  subsets: {subsets}")
    if doc.get("labels"):
        typer.echo(f"  labels: {doc['labels']}")
    typer.echo(f"  models: {', '.join(doc['models']) or 'none'}")
    g = doc.get("generation")
    if g:
        how = "greedy" if g["temperature"] == 0 else f"temperature {g['temperature']:g}, top_p {g['top_p']:g}"
        if g["top_k"]:
            how += f", top_k {g['top_k']}"
        typer.echo(
            f"  generation ({g['task']}): {how}, seed {g['seed']}, {g['min_new_tokens']}..{g['max_new_tokens']} "
            f"new tokens, {g['dtype']}, prompts from {g['file']} [{g['prompt']}]"
        )
    for m in doc.get("metrics", []):
        ratios = ", ".join(f"{_num(t)} ({r * 100:g}%)" for r, t in zip(m["target_ratio"], m["targets"], strict=True))
        scenario = f" ({m['scenario']})" if m.get("scenario") else ""
        if m["reference"] is None:  # an upper bound alone: a limit with no floor
            typer.echo(f"  accuracy{scenario}: {m['metric']} at most {_num(m['upper'])} (no lower bound)")
            continue
        upper = f", at most {_num(m['upper'])}" if m.get("upper") is not None else ""
        typer.echo(f"  accuracy{scenario}: {m['metric']} reference {_num(m['reference'])}; pass at >= {ratios}{upper}")
    for q in doc.get("quality", []):
        typer.echo(
            f"  quality target: {q['metric']} {q['direction']} {_num(q['target'])}"
            + (f" ({q['description']})" if q.get("description") else "")
        )
    files = [f for art in doc.get("artifacts", []) for f in art["files"]]
    pinned = sum(1 for f in files if f["checksum"] in ("unpublished", "listed"))
    how = "every file verified against its published checksum"
    if pinned:
        how = f"verified against published checksums, and {pinned} entry(ies) pinned by sha256 on first fetch"
    exact, estimated, unsized = doc["total_size"], doc.get("estimated_size") or 0, doc.get("unsized") or 0
    if not estimated:
        total = human_bytes(exact)
    elif exact:
        total = f"~{human_bytes(exact + estimated)} (~{human_bytes(estimated)} of it rounded figures)"
    else:
        total = f"~{human_bytes(estimated)} (the sources' rounded figures)"
    unknown = f" + {unsized} file(s) of unknown size" if unsized else ""
    typer.echo(f"  download: {total}{unknown}, {how}")
    planned = doc.get("planned") or {}
    typer.echo(f"  still needed on disk: {planned.get('summary') or 'nothing'}")
    for gate in doc.get("licence_gates", []):
        typer.echo(f"  LICENCE: {gate['artifact']} needs {gate['access']} access ({gate['license'] or 'see notes'})")
    for art in doc.get("artifacts", []):
        cache = art["cache"]
        size = (
            _size(art["size"])
            if art["size"] is not None or not art.get("estimated_size")
            else (f"~{human_bytes(art['estimated_size'])}")
        )
        typer.echo(
            f"  {art['kind']} {art['name']}: {size}, {art['access']}, "
            f"cache {cache['state']} ({cache['files']}/{cache['files_total']} files)"
        )
        for f in art["files"]:
            extract = f"  -> {f['extract_to']}/" if f.get("extract_to") else ""
            listing = ""
            if f.get("listed_count") is not None or f.get("pins"):
                listing = f"  ({f.get('listed_count') or '?'} files listed, {len(f.get('pins', {}))} pinned here)"
            typer.echo(f"    {f['name']}  {_file_size(f)}  {f['checksum']}{extract}{listing}")
            if f.get("trust"):
                typer.echo(f"      trust: {f['trust']}")
            for u in f["urls"]:
                typer.echo(f"      from {u}")


def render_detail(doc: dict[str, Any], indent: str = "") -> None:
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
        render_detail(art, indent + "  ")


def render_fetch(report: Any, quiet: bool) -> None:
    counts: dict[str, int] = {}
    for f in report.files:
        counts[f.state] = counts.get(f.state, 0) + 1
    if not quiet:
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        typer.echo(f"{len(report.files)} files: {summary}")
    for name, folder in report.artifacts.items():
        if all(f.ok for f in report.files if f.artifact == name):
            typer.echo(f"{name}\t{folder}")


class ItemBar:
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

    def retry(self, key: str, url: str, text: str) -> None:
        """Transfers are not counted in items: nothing to show."""


class Stages:
    """One progress display for ``run``: byte bars for transfers and checks, an item bar for
    preprocessing and validation (keys ``preprocess:…`` / ``validate:…``)."""

    def __init__(self, quiet: bool, json_out: bool, verbose: bool = False) -> None:
        self.bytes = transfer_bars(quiet, json_out, verbose)
        self.items = ItemBar(enabled=sys.stderr.isatty() and not quiet and not json_out, quiet=quiet)

    def _pick(self, key: str) -> Any:
        return self.items if key.startswith(("preprocess:", "validate:")) else self.bytes

    def start(self, key: str, label: str, total: int | None, done: int = 0) -> None:
        if key.startswith(("preprocess:", "validate:")):
            self.bytes.close()  # the transfer bars are done: one display at a time
        self._pick(key).start(key, label, total, done)

    def advance(self, key: str, nbytes: int) -> None:
        self._pick(key).advance(key, nbytes)

    def finish(self, key: str, ok: bool) -> None:
        self._pick(key).finish(key, ok)

    def note(self, text: str) -> None:
        self.bytes.note(text)

    def retry(self, key: str, url: str, text: str) -> None:
        self.bytes.retry(key, url, text)

    def close(self) -> None:
        self.bytes.close()
        self.items.finish("", True)


def render_validation(report: Any) -> None:
    """The human summary of a validation result, one ``label: value`` line each."""
    from provision.validation.results import summary_rows

    rows = summary_rows(report)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        typer.echo(f"{label.ljust(width)}  {value}")
    golden = report.golden or {}
    for m in golden.get("first", []):
        typer.echo(f"golden mismatch: sample {m['index']} ({m['name']}): expected {m['expected']}, got {m['got']}")
    for note in report.notes:
        typer.echo(f"note: {note}")


def render_run(report: Any) -> None:
    """The final summary table of ``run``: one row per stage, then the validation summary."""
    typer.echo(f"{'stage':<11} {'state':<8} {'seconds':>8}  detail")
    for s in report.stages:
        typer.echo(f"{s.name:<11} {s.state:<8} {s.seconds:>8.1f}  {s.detail}")
    if report.validation is not None:
        typer.echo("")
        render_validation(report.validation)


def _target_text(m: dict[str, Any]) -> str:
    lows = " / ".join(_num(t) for t in m["targets"])
    scenario = f" ({m['scenario']})" if m.get("scenario") else ""
    if m.get("upper") is not None:
        floor = f"{lows} ≤ " if lows else ""
        return f"{floor}{m['metric']}{scenario} ≤ {_num(m['upper'])}"
    return f"{m['metric']}{scenario} ≥ {lows}"


def benchmarks_markdown(rows: list[dict[str, Any]]) -> str:
    """The benchmark rows of ``provision list`` as a Markdown table (the README's catalogue table)."""
    out = [
        "| benchmark | suite | rounds | status | checker names | download | dataset (samples / perf. / acc.) "
        "| models | targets | access |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    benchmarks = sorted((r for r in rows if r["kind"] == "benchmark"), key=lambda r: (r["suite"], r["name"]))
    for r in benchmarks:
        exact, estimated = r.get("size") or 0, r.get("estimated_size") or 0
        size = f"~{human_bytes(exact + estimated)}" if estimated else (human_bytes(exact) if exact else "")
        if r.get("unsized"):
            size += f" + {r['unsized']} of unknown size" if size else f"{r['unsized']} file(s) of unknown size"
        counts = " / ".join(
            f"{n:,}" if n is not None else "—"
            for n in (r.get("dataset_size"), r.get("performance_sample_count"), r.get("accuracy_sample_count"))
        )
        targets = "; ".join(_target_text(m) for m in r.get("metrics", []))
        targets = targets or "; ".join(f"{q['metric']} {q['direction']} {_num(q['target'])}" for q in r["quality"])
        rounds = ", ".join(r["rounds"])
        cells = [
            f"`{r['name']}`",
            r["suite"],
            rounds,
            r["status_text"],
            ", ".join(f"`{n}`" for n in r["checker_names"]),
            size,
            " + ".join(f"`{d}`" for d in (r["dataset"], *r.get("extra_datasets", []))) + f" ({counts})",
            ", ".join(f"`{m}`" for m in r["models"]) or "—",
            targets.replace("|", "\\|"),
            ", ".join(r["access"]),
        ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"
