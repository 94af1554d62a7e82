"""Parsing manifest TOML into :mod:`provision.manifest` dataclasses, collecting every problem.

Each problem is one line naming the file, the entry and the field.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, Literal

from provision.errors import ManifestError
from provision.manifest.checksum import Checksum
from provision.manifest.fields import (
    EXTRACT_KEYS,
    Problems,
    artifact_tree,
    check_keys,
    check_name,
    check_size,
    get_count,
    get_str,
    get_str_list,
    parse_approx_size,
    parse_extract,
    parse_runtime,
    printable,
    shown_path,
    suggest,
)
from provision.manifest.model import (
    ACCESS_LEVELS,
    GENERATION_DTYPES,
    KNOWN_METRICS,
    MODEL_FORMATS,
    SCHEMA_VERSION,
    SUITES,
    URL_SCHEMES,
    AccuracySpec,
    Artifact,
    Benchmark,
    Catalog,
    Entry,
    FileSpec,
    GenerationSpec,
    LabelsRef,
    PreprocessSpec,
    QualitySpec,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["collect", "lint", "load_catalog", "manifest_files"]


_TOP_KEYS = {"schema", "dataset", "model", "benchmark"}
_ARTIFACT_KEYS = {
    "access",
    "name",
    "description",
    "license",
    "homepage",
    "notes",
    "aliases",
    "files",
    "tree",
    "expect_files",
}
_MODEL_KEYS = _ARTIFACT_KEYS | {"format", "preprocess", "runtime"}
_FILE_KEYS = {
    "name",
    "urls",
    "size",
    "approx_size",
    "checksum",
    "extract",
    "trust",
    "pins",
    "listed_count",
} | EXTRACT_KEYS
_FOLDER_ONLY = ("pins", "listed_count")
_BENCHMARK_KEYS = {
    "name",
    "description",
    "notes",
    "aliases",
    "dataset",
    "extra_datasets",
    "labels",
    "models",
    "preprocess",
    "accuracy",
    "status",
    "dataset_size",
    "performance_sample_count",
    "subsets",
    "suite",
    "rounds",
    "checker_names",
    "round_names",
    "accuracy_sample_count",
    "scenario_sample_counts",
    "quality",
    "generation",
}
_ACCURACY_KEYS = {"metric", "reference", "target_ratio", "upper", "scenario"}
_SCENARIOS = ("SingleStream", "MultiStream", "Offline", "Server", "Interactive")
_QUALITY_KEYS = {"metric", "target", "direction", "description"}
_ROUND_RE = re.compile(r"v\d+\.\d+")
_DIRECTIONS = ("<=", ">=", "<", ">")


def manifest_files(paths: Iterable[Path]) -> list[Path]:
    """``*.toml`` files under each path (a file is taken as is), sorted per folder."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(p.rglob("*.toml")))
        elif p.exists():
            out.append(p)
    return out


#: RFC 3986: ``scheme ":"``, the scheme a letter then letters, digits, ``+``, ``-``, ``.``.
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_WEB = ("https://", "http://")


def _resolve_url(ctx: Problems, where: str, url: str) -> str:
    if not url.strip():
        ctx.add(where, "empty URL")
        return url
    if not printable(ctx, where, "URL", url):
        return url
    if url.startswith("manual:"):
        page = url.removeprefix("manual:")
        if not page.lower().startswith(_WEB):
            ctx.add(where, f"manual: the registration page must be an https:// or http:// URL, got {page!r}")
        return url
    scheme, sep, _ = url.partition("://")
    if sep:
        if scheme.lower() not in URL_SCHEMES:
            ctx.add(
                where,
                f"unsupported URL scheme {scheme!r}; expected one of {', '.join(URL_SCHEMES)}",
            )
        return url
    written = _SCHEME_RE.match(url)
    if written is not None:  # "javascript:…", "https:host/x": a scheme, but no URL provision reads
        scheme = written.group(1)
        if scheme.lower() in URL_SCHEMES:
            ctx.add(where, f"URL {url!r}: write '{scheme.lower()}://…'")
        else:
            ctx.add(
                where,
                f"unsupported URL scheme {scheme!r}; expected one of {', '.join(URL_SCHEMES)} "
                f"(a relative path with ':' is written {'./' + url!r})",
            )
        return url
    # A plain path: relative ones are taken relative to the manifest's folder.
    path = Path(url).expanduser()
    return str(path if path.is_absolute() else (ctx.path.parent / path).resolve())


def _parse_file(ctx: Problems, where: str, raw: Any) -> FileSpec | None:
    if not isinstance(raw, dict):
        ctx.add(where, "expected a table")
        return None
    check_keys(ctx, where, raw, _FILE_KEYS)
    name = get_str(ctx, where, raw, "name", required=True)
    if name and not printable(ctx, where, "name", name):
        name = ""
    folder = name.endswith("/")
    if name:
        pure = PurePosixPath(name)
        segments = name[:-1].split("/") if folder else name.split("/")
        if pure.is_absolute() or "\\" in name or any(seg in ("", ".", "..") for seg in segments):
            ctx.add(where, f"name {name!r} must be a relative path without '..', '.' or empty parts")
            name = ""
    urls_raw = raw.get("urls")
    if urls_raw is None:
        ctx.add(where, "missing required key 'urls'")
        urls: tuple[str, ...] = ()
    else:
        urls = get_str_list(ctx, where, raw, "urls")
        if not urls and isinstance(urls_raw, list):
            ctx.add(where, "urls: needs at least one URL")
    urls = tuple(_resolve_url(ctx, f"{where}.urls", u) for u in urls)
    size = raw.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        ctx.add(where, f"size: expected a non-negative integer (bytes), got {size!r}")
        size = None
    size = check_size(ctx, where, "size", size)
    approx_size = parse_approx_size(ctx, where, raw)
    if approx_size is not None and size is not None:
        ctx.add(where, "approx_size: not with size (the exact size is known; drop the estimate)")
    checksum_text = get_str(ctx, where, raw, "checksum", required=True)
    checksum = None
    trust = raw.get("trust", "")
    if not isinstance(trust, str):
        ctx.add(where, f"trust: expected a string, got {type(trust).__name__}")
        trust = ""
    if folder or checksum_text == "listed":
        if not (folder and checksum_text == "listed"):
            ctx.add(
                where, 'a folder entry needs both name = "<dir>/" and checksum = "listed" (its source lists the files)'
            )
        checksum = Checksum.unpublished()
        for key in EXTRACT_KEYS | {"extract", "size"}:
            if key in raw:
                ctx.add(where, f"{key}: not allowed on a folder entry")
    elif checksum_text == "unpublished":
        checksum = Checksum.unpublished()
        if not trust.strip():
            ctx.add(where, 'trust: a file with checksum = "unpublished" needs a trust note (why, and who vouches)')
    elif checksum_text:
        try:
            checksum = Checksum.parse(checksum_text)
        except ValueError as exc:
            ctx.add(where, f'checksum: {exc} (or "unpublished" with a trust note)')
    extract = parse_extract(ctx, where, raw, name)
    pins: dict[str, Checksum] = {}
    if not folder:
        for key in _FOLDER_ONLY:
            if key in raw:
                ctx.add(where, f'{key}: only on a folder entry (name = "<dir>/", checksum = "listed")')
    pins_raw = raw.get("pins", {})
    if not isinstance(pins_raw, dict):
        ctx.add(where, 'pins: expected a table of "<path in the folder>" = "<alg>:<hex>"')
        pins_raw = {}
    for path_text, digest in pins_raw.items():
        try:
            pins[path_text] = Checksum.parse(digest) if isinstance(digest, str) else Checksum.parse("")
        except ValueError as exc:
            ctx.add(where, f"pins: {path_text!r}: {exc}")
    listed_count = get_count(ctx, where, raw, "listed_count")
    if not name or not urls or checksum is None:
        return None
    return FileSpec(
        name=name,
        urls=urls,
        checksum=checksum,
        size=size,
        extract=extract,
        trust=trust,
        approx_size=approx_size,
        pins=MappingProxyType(pins),
        listed_count=listed_count,
    )


def _entry_head(ctx: Problems, kind: str, index: int, raw: Any, allowed: set[str]) -> tuple[str, str] | None:
    """``(where, name)`` of a ``[[kind]]`` table after the checks every entry shares."""
    where = f"{kind}[{index}]"
    if not isinstance(raw, dict):
        ctx.add(where, "expected a table")
        return None
    name = get_str(ctx, where, raw, "name", required=True)
    if name:
        where = f"{kind} {name!r}"
    check_name(ctx, where, name)
    check_keys(ctx, where, raw, allowed)
    return where, name


def _parse_artifact(ctx: Problems, kind: Literal["dataset", "model"], index: int, raw: Any) -> Artifact | None:
    head = _entry_head(ctx, kind, index, raw, _MODEL_KEYS if kind == "model" else _ARTIFACT_KEYS)
    if head is None:
        return None
    where, name = head
    fmt: str | None = None
    if kind == "model":
        fmt = get_str(ctx, where, raw, "format", required=True) or None
        if fmt and fmt not in MODEL_FORMATS:
            ctx.add(where, f"format: unknown format {fmt!r}{suggest(fmt, MODEL_FORMATS)}")
    aliases = get_str_list(ctx, where, raw, "aliases")
    for alias in aliases:
        check_name(ctx, where, alias, "alias")
    description = get_str(ctx, where, raw, "description")
    license_ = get_str(ctx, where, raw, "license")
    homepage = get_str(ctx, where, raw, "homepage")
    if homepage and printable(ctx, where, "homepage:", homepage) and not homepage.lower().startswith(_WEB):
        ctx.add(where, f"homepage: expected an https:// or http:// URL, got {homepage!r}")
    notes = get_str(ctx, where, raw, "notes")
    files_raw = raw.get("files")
    files: list[FileSpec] = []
    if not isinstance(files_raw, list) or not files_raw:
        ctx.add(where, "files: needs at least one [[" + kind + ".files]] table")
    else:
        before = len(ctx.problems)
        for i, fraw in enumerate(files_raw):
            spec = _parse_file(ctx, f"{where}: files[{i}]", fraw)
            if spec is not None:
                files.append(spec)
        seen: set[str] = set()
        for spec in files:
            if spec.name in seen:
                ctx.add(where, f"files: duplicate file name {spec.name!r}")
            seen.add(spec.name)
        for spec in files:
            if spec.extract is None:
                continue
            to = spec.extract.to
            # the extraction replaces the whole folder: no other file may sit inside it, or around it
            clash = [s for s in sorted(seen) if s == to or s.startswith(to + "/") or to.startswith(s + "/")]
            if clash:
                ctx.add(where, f"files: extract_to {to!r} of {spec.name!r} collides with a file name ({clash[0]!r})")
            else:
                seen.add(to)
        files = artifact_tree(ctx, where, raw, files)
        if len(ctx.problems) > before:
            return None
    if not name or len(files) == 0:
        return None
    model_pre = _parse_preprocess(ctx, where, raw.get("preprocess")) if kind == "model" else None
    runtime = parse_runtime(ctx, where, raw.get("runtime"), tuple(files)) if kind == "model" else None
    access = raw.get("access", "public")
    if access not in ACCESS_LEVELS:
        ctx.add(where, f"access: expected one of {', '.join(ACCESS_LEVELS)}, got {access!r}")
        access = "public"
    return Artifact(
        preprocess=model_pre,
        runtime=runtime,
        access=str(access),
        kind=kind,
        name=name,
        files=tuple(files),
        description=description,
        license=license_,
        homepage=homepage,
        notes=notes,
        aliases=aliases,
        format=fmt,
        source=ctx.path,
    )


def _parse_preprocess(ctx: Problems, where: str, pre_raw: Any) -> PreprocessSpec | None:
    """A ``preprocess`` table: a registered recipe name plus its parameters."""
    if pre_raw is None:
        return None
    if not isinstance(pre_raw, dict):
        ctx.add(f"{where}: preprocess", "expected a table")
        return None
    recipe = get_str(ctx, f"{where}: preprocess", pre_raw, "recipe", required=True)
    params = {k: v for k, v in pre_raw.items() if k != "recipe"}
    expected = params.get("expected_tree")
    if expected is not None:
        if not isinstance(expected, dict):
            ctx.add(
                f"{where}: preprocess", 'expected_tree: expected a table of "<library signature>" = "xxh3_128:<hex>"'
            )
        else:
            for signature, digest in expected.items():
                try:
                    ok = isinstance(digest, str) and Checksum.parse(digest).alg == "xxh3_128"
                except ValueError:
                    ok = False
                if not ok:
                    ctx.add(
                        f"{where}: preprocess",
                        f"expected_tree: {signature!r} = {digest!r} is not 'xxh3_128:<32 hex>' "
                        "(take it from 'provision preprocess --json', field digest)",
                    )
    return PreprocessSpec(recipe, MappingProxyType(params)) if recipe else None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_accuracy(ctx: Problems, where: str, raw: Any) -> AccuracySpec | None:
    where = f"{where}: accuracy"
    if not isinstance(raw, dict):
        ctx.add(where, "expected a table")
        return None
    check_keys(ctx, where, raw, _ACCURACY_KEYS)
    metric = get_str(ctx, where, raw, "metric", required=True)
    if metric and metric not in KNOWN_METRICS:
        ctx.add(where, f"metric: unknown metric {metric!r}{suggest(metric, KNOWN_METRICS)}")
        metric = ""
    upper = raw.get("upper")
    if upper is not None and not _number(upper):
        ctx.add(where, f"upper: expected a number, got {upper!r}")
        upper = None
    reference = raw.get("reference")
    # An upper bound alone (no reference, no ratios) is a limit with no floor.
    upper_only = reference is None and upper is not None and "upper" in raw
    if reference is None and not upper_only:
        ctx.add(where, "missing required key 'reference' (or 'upper' alone, for a limit with no floor)")
    elif reference is not None and not _number(reference):
        ctx.add(where, f"reference: expected a number, got {reference!r}")
        reference = None
    if upper_only:
        if "target_ratio" in raw:
            ctx.add(where, "target_ratio: needs a 'reference' (an upper bound alone has no ratios)")
            return None
        ratios = []
    else:
        ratio_raw = raw.get("target_ratio", [0.99])
        ratios = ratio_raw if isinstance(ratio_raw, list) else [ratio_raw]
        if not ratios or not all(_number(r) and 0 < r <= 1 for r in ratios):
            ctx.add(where, f"target_ratio: expected a number in (0, 1] or a list of them, got {ratio_raw!r}")
            return None
    scenario = raw.get("scenario", "")
    if scenario not in ("", *_SCENARIOS):
        ctx.add(where, f"scenario: expected one of {', '.join(_SCENARIOS)}, got {scenario!r}")
        scenario = ""
    if not metric or (reference is None and not upper_only):
        return None
    return AccuracySpec(
        metric=metric,
        reference=float(reference) if reference is not None else None,
        target_ratio=tuple(float(r) for r in ratios),
        upper=float(upper) if upper is not None else None,
        scenario=str(scenario),
    )


_GENERATION_INTS = {"max_new_tokens": 1, "min_new_tokens": 0, "top_k": 0, "seed": 0}
_GENERATION_FLOATS = ("temperature", "top_p")
_GENERATION_STRS = ("task", "file", "prompt", "reference")
_GENERATION_BOOLS = ("chat_template", "skip_special_tokens")
_GENERATION_KEYS = {
    *_GENERATION_INTS,
    *_GENERATION_FLOATS,
    *_GENERATION_STRS,
    *_GENERATION_BOOLS,
    "stop_token_ids",
    "dtype",
}


def _parse_generation(ctx: Problems, where: str, raw: Any) -> GenerationSpec | None:
    """``[benchmark.generation]``: the reference's generation settings, each checked for type and range."""
    if raw is None:
        return None
    where = f"{where}: generation"
    if not isinstance(raw, dict):
        ctx.add(where, "expected a table of generation settings")
        return None
    check_keys(ctx, where, raw, _GENERATION_KEYS)
    before = len(ctx.problems)
    if "task" not in raw:
        ctx.add(where, "missing required key 'task' (the validation task that scores the generations)")
    values: dict[str, Any] = {}
    for key, least in _GENERATION_INTS.items():
        if key in raw:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                ctx.add(where, f"{key}: expected an integer >= {least}, got {value!r}")
            else:
                values[key] = value
    for key in _GENERATION_FLOATS:
        if key in raw:
            value = raw[key]
            if not _number(value) or value < 0 or (key == "top_p" and not 0 < value <= 1):
                wanted = "a number in (0, 1]" if key == "top_p" else "a number >= 0"
                ctx.add(where, f"{key}: expected {wanted}, got {value!r}")
            else:
                values[key] = float(value)
    for key in _GENERATION_STRS:
        if key in raw:
            values[key] = get_str(ctx, where, raw, key)
    for key in _GENERATION_BOOLS:
        if key in raw:
            if not isinstance(raw[key], bool):
                ctx.add(where, f"{key}: expected true or false, got {raw[key]!r}")
            else:
                values[key] = raw[key]
    if "stop_token_ids" in raw:
        ids = raw["stop_token_ids"]
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
            ctx.add(where, f"stop_token_ids: expected a list of token ids (integers >= 0), got {ids!r}")
        else:
            values["stop_token_ids"] = tuple(ids)
    if "dtype" in raw:
        if raw["dtype"] not in GENERATION_DTYPES:
            ctx.add(where, f"dtype: expected one of {', '.join(GENERATION_DTYPES)}, got {raw['dtype']!r}")
        else:
            values["dtype"] = raw["dtype"]
    if values.get("min_new_tokens", 1) > values.get("max_new_tokens", 1024):
        ctx.add(where, f"min_new_tokens: {values.get('min_new_tokens', 1)} is above max_new_tokens")
    if len(ctx.problems) > before:
        return None
    return GenerationSpec(**values)


def _parse_quality(ctx: Problems, where: str, raw: Any) -> QualitySpec | None:
    where = f"{where}: quality"
    if not isinstance(raw, dict):
        ctx.add(where, "expected a table")
        return None
    check_keys(ctx, where, raw, _QUALITY_KEYS)
    metric = get_str(ctx, where, raw, "metric", required=True)
    check_name(ctx, where, metric, "metric")
    description = get_str(ctx, where, raw, "description")
    target = raw.get("target")
    if not isinstance(target, (int, float)) or isinstance(target, bool):
        ctx.add(where, f"target: expected a number, got {target!r}")
        return None
    direction = raw.get("direction")
    if direction not in _DIRECTIONS:
        ctx.add(where, f"direction: expected one of {', '.join(repr(d) for d in _DIRECTIONS)}, got {direction!r}")
        return None
    if not metric:
        return None
    return QualitySpec(metric, float(target), direction, description)


RoundNames = dict[str, tuple[str, ...]]


def _parse_rounds(ctx: Problems, where: str, raw: Mapping[str, Any]) -> tuple[tuple[str, ...], RoundNames]:
    """``rounds = ["v6.0", "v6.1"]`` and ``[benchmark.round_names] "v6.1" = ["name-99.9"]``."""
    rounds = get_str_list(ctx, where, raw, "rounds")
    for r in rounds:
        if not _ROUND_RE.fullmatch(r):
            ctx.add(where, f"rounds: expected names like 'v6.1', got {r!r}")
            return (), {}
    if len(set(rounds)) != len(rounds):
        ctx.add(where, f"rounds: {list(rounds)} names a round twice")
    names_raw = raw.get("round_names", {})
    round_names: RoundNames = {}
    if not isinstance(names_raw, dict):
        ctx.add(where, 'round_names: expected a table of "<round>" = ["<checker name>", ...]')
        return rounds, {}
    for r in names_raw:
        if r not in rounds:
            ctx.add(where, f"round_names: {r!r} is not one of rounds {list(rounds)}")
        round_names[r] = get_str_list(ctx, f"{where}: round_names", names_raw, r)
    return rounds, round_names


def _parse_benchmark(ctx: Problems, index: int, raw: Any) -> Benchmark | None:
    head = _entry_head(ctx, "benchmark", index, raw, _BENCHMARK_KEYS)
    if head is None:
        return None
    where, name = head
    before = len(ctx.problems)
    description = get_str(ctx, where, raw, "description")
    notes = get_str(ctx, where, raw, "notes")
    dataset = get_str(ctx, where, raw, "dataset", required=True)
    extra_datasets = get_str_list(ctx, where, raw, "extra_datasets")
    if dataset in extra_datasets:
        ctx.add(where, f"extra_datasets: {dataset!r} is already the benchmark's dataset")
    models = get_str_list(ctx, where, raw, "models")
    aliases = get_str_list(ctx, where, raw, "aliases")
    for alias in aliases:
        check_name(ctx, where, alias, "alias")
    labels = None
    labels_text = get_str(ctx, where, raw, "labels")
    if labels_text:
        art, sep, fname = labels_text.partition("/")
        if not sep or not art or not fname:
            ctx.add(where, f"labels: expected 'artifact/file', got {labels_text!r}")
        else:
            labels = LabelsRef(art, fname)
    preprocess = _parse_preprocess(ctx, where, raw.get("preprocess"))
    metrics: list[AccuracySpec] = []
    acc_raw = raw.get("accuracy")
    for i, table in enumerate(acc_raw if isinstance(acc_raw, list) else [acc_raw] if acc_raw is not None else []):
        spec = _parse_accuracy(ctx, where if not isinstance(acc_raw, list) else f"{where}[{i}]", table)
        if spec is not None:
            metrics.append(spec)
    status = raw.get("status", "current")
    if status not in ("current", "retired"):
        ctx.add(where, f"status: expected 'current' or 'retired', got {status!r}")
    suite = raw.get("suite", "inference")
    if suite not in SUITES:
        ctx.add(where, f"suite: expected one of {', '.join(repr(s) for s in SUITES)}, got {suite!r}")
    rounds, round_names = _parse_rounds(ctx, where, raw)
    if rounds and "status" in raw:
        ctx.add(where, "status: not with rounds (the rounds decide it: current when the newest round accepts it)")
    checker_names = get_str_list(ctx, where, raw, "checker_names")
    for label in checker_names:
        check_name(ctx, where, label, "checker name")
    for r, names in round_names.items():
        unknown = [n for n in names if n not in (checker_names or (name,))]
        if unknown:
            ctx.add(where, f"round_names: {r} names {unknown}, not in checker_names {list(checker_names)}")
    quality: list[QualitySpec] = []
    q_raw = raw.get("quality")
    for i, table in enumerate(q_raw if isinstance(q_raw, list) else [q_raw] if q_raw is not None else []):
        q = _parse_quality(ctx, where if not isinstance(q_raw, list) else f"{where}[{i}]", table)
        if q is not None:
            quality.append(q)
    if suite == "training" and not quality:
        ctx.add(where, "quality: a training benchmark needs its quality target ([[benchmark.quality]])")
    generation = _parse_generation(ctx, where, raw.get("generation"))
    accuracy_count = get_count(ctx, where, raw, "accuracy_sample_count")
    scenario_counts: dict[str, int] = {}
    counts_raw = raw.get("scenario_sample_counts", {})
    if not isinstance(counts_raw, dict):
        ctx.add(where, "scenario_sample_counts: expected a table of <scenario> = <accuracy sample count>")
        counts_raw = {}
    for scen in counts_raw:
        if scen not in _SCENARIOS:
            ctx.add(where, f"scenario_sample_counts: {scen!r} is not one of {', '.join(_SCENARIOS)}")
            continue
        count = get_count(ctx, f"{where}: scenario_sample_counts", counts_raw, scen)
        if count is not None:
            scenario_counts[scen] = count
    dataset_size = get_count(ctx, where, raw, "dataset_size")
    perf_count = get_count(ctx, where, raw, "performance_sample_count")
    subsets_raw = raw.get("subsets", {})
    subsets: dict[str, str] = {}
    if not isinstance(subsets_raw, dict) or not all(
        isinstance(k, str) and k.isdigit() and isinstance(v, str) for k, v in subsets_raw.items()
    ):
        ctx.add(where, 'subsets: expected a table of "<count>" = "<dataset name>"')
    else:
        subsets = dict(subsets_raw)
    if len(ctx.problems) > before or not name:
        return None
    return Benchmark(
        name=name,
        dataset=dataset,
        extra_datasets=extra_datasets,
        models=models,
        labels=labels,
        preprocess=preprocess,
        metrics=tuple(metrics),
        description=description,
        notes=notes,
        aliases=aliases,
        status=str(status),
        dataset_size=dataset_size,
        performance_sample_count=perf_count,
        subsets=MappingProxyType(subsets),
        source=ctx.path,
        suite=str(suite),
        rounds=rounds,
        checker_names=checker_names,
        round_names=MappingProxyType(round_names),
        accuracy_sample_count=accuracy_count,
        scenario_sample_counts=MappingProxyType(scenario_counts),
        quality=tuple(quality),
        generation=generation,
    )


def _load_file(path: Path, problems: list[str]) -> tuple[list[Artifact], list[Benchmark]]:
    ctx = Problems(path, problems)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        ctx.add("", f"TOML syntax error: {exc}")
        return [], []
    except (OSError, UnicodeDecodeError) as exc:
        ctx.add("", f"cannot read: {exc}")
        return [], []
    check_keys(ctx, "", data, _TOP_KEYS)
    schema = data.get("schema")
    if schema is None:
        ctx.add("", f"missing 'schema = {SCHEMA_VERSION}' at the top")
    elif schema != SCHEMA_VERSION:
        ctx.add(
            "",
            f"schema: this provision reads schema {SCHEMA_VERSION}, got {schema!r}; upgrade provision",
        )
        return [], []
    artifacts: list[Artifact] = []
    benchmarks: list[Benchmark] = []
    for kind in ("dataset", "model"):
        tables = data.get(kind, [])
        if not isinstance(tables, list):
            ctx.add("", f"{kind}: use [[{kind}]] (an array of tables)")
            continue
        for i, raw in enumerate(tables):
            art = _parse_artifact(ctx, kind, i, raw)
            if art is not None:
                artifacts.append(art)
    tables = data.get("benchmark", [])
    if not isinstance(tables, list):
        ctx.add("", "benchmark: use [[benchmark]] (an array of tables)")
    else:
        for i, raw in enumerate(tables):
            bench = _parse_benchmark(ctx, i, raw)
            if bench is not None:
                benchmarks.append(bench)
    return artifacts, benchmarks


def _cross_check(artifacts: Sequence[Artifact], benchmarks: Sequence[Benchmark], problems: list[str]) -> Catalog:
    seen: dict[str, Path | None] = {}
    keep_a: list[Artifact] = []
    keep_b: list[Benchmark] = []
    entries: list[Entry] = [*artifacts, *benchmarks]
    for entry in entries:
        kind = entry.kind if isinstance(entry, Artifact) else "benchmark"
        labels = (entry.name, *entry.aliases)
        if isinstance(entry, Benchmark):  # the checker's names resolve too; a name equal to its own is fine
            labels += tuple(n for n in entry.checker_names if n not in labels)
        for label in labels:
            if label in seen:
                problems.append(
                    f"{shown_path(entry.source)}: {kind} {entry.name!r}: name {label!r} "
                    f"is already defined in {shown_path(seen[label])}"
                )
                break
            seen[label] = entry.source
        else:
            if isinstance(entry, Artifact):
                keep_a.append(entry)
            else:
                keep_b.append(entry)
    by_name = {a.name: a for a in keep_a}
    for b in keep_b:
        where = f"{shown_path(b.source)}: benchmark {b.name!r}"
        ds = by_name.get(b.dataset)
        if ds is None or ds.kind != "dataset":
            datasets = [a.name for a in keep_a if a.kind == "dataset"]
            problems.append(f"{where}: dataset: no dataset named {b.dataset!r}{suggest(b.dataset, datasets)}")
        for extra in b.extra_datasets:
            ds = by_name.get(extra)
            if ds is None or ds.kind != "dataset":
                datasets = [a.name for a in keep_a if a.kind == "dataset"]
                problems.append(f"{where}: extra_datasets: no dataset named {extra!r}{suggest(extra, datasets)}")
        for m in b.models:
            art = by_name.get(m)
            if art is None or art.kind != "model":
                problems.append(
                    f"{where}: models: no model named {m!r}{suggest(m, [a.name for a in keep_a if a.kind == 'model'])}"
                )
        for size, ds_name in b.subsets.items():
            ds = by_name.get(ds_name)
            if ds is None or ds.kind != "dataset":
                problems.append(f"{where}: subsets: {size} names no dataset {ds_name!r}")
        if b.labels is not None:
            art = by_name.get(b.labels.artifact)
            if art is None:
                problems.append(f"{where}: labels: no artifact named {b.labels.artifact!r}")
            elif b.labels.file not in {f.name for f in art.files} and not any(
                f.extract is not None and b.labels.file.startswith(f.extract.to + "/") for f in art.files
            ):
                problems.append(
                    f"{where}: labels: artifact {art.name!r} has no file {b.labels.file!r} "
                    "(name a listed file, or a path inside an archive's extract_to folder)"
                )
    return Catalog(keep_a, keep_b)


def collect(paths: Iterable[Path]) -> tuple[Catalog, list[str]]:
    """The catalog of every manifest under ``paths``, and every problem found (empty when all are valid)."""
    problems: list[str] = []
    artifacts: list[Artifact] = []
    benchmarks: list[Benchmark] = []
    for p in paths:
        if not p.exists():
            problems.append(f"{shown_path(p)}: no such file or folder")
    for path in manifest_files(paths):
        a, b = _load_file(path, problems)
        artifacts.extend(a)
        benchmarks.extend(b)
    catalog = _cross_check(artifacts, benchmarks, problems)
    return catalog, problems


def load_catalog(paths: Iterable[Path]) -> Catalog:
    """Load every manifest under ``paths``; :class:`ManifestError` listing all problems."""
    catalog, problems = collect(list(paths))
    if problems:
        raise ManifestError(problems)
    return catalog


def lint(paths: Iterable[Path]) -> list[str]:
    """Every problem in the manifests under ``paths`` (empty when all are valid)."""
    return collect(list(paths))[1]
