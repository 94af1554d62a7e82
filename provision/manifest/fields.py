"""Field-level parsing shared by the manifest loader: the problem collector, typed
getters, and the archive (``extract``) keys of a file entry.

Every problem is one line naming the file, the entry and the field.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from provision.manifest.checksum import Checksum
from provision.manifest.model import ARCHIVE_FORMATS, MAX_SIZE, ExtractSpec, FileSpec, RuntimeSpec

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._+-]*")
#: C0 controls (newline, escape, tab ...), DEL, C1 controls and the Unicode line separators:
#: in a name they would forge output lines or drive the terminal.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
EXTRACT_KEYS = {"strip_components", "members", "extracted_size", "keep_archive", "extract_to", "tree", "expect_files"}
_ARCHIVE_SUFFIXES = (
    ".tar.gz",
    ".tar.bz2",
    ".tar.xz",
    ".tar.zst",
    ".tgz",
    ".tbz2",
    ".txz",
    ".tar",
    ".zip",
    ".gz",
    ".bz2",
    ".xz",
    ".zst",
)


class Problems:
    """Collects problems for one manifest file, each prefixed with file and entry."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems

    def add(self, where: str, message: str) -> None:
        shown = shown_path(self.path)
        self.problems.append(f"{shown}: {where}: {message}" if where else f"{shown}: {message}")


def shown_path(path: Path | None) -> str:
    """A manifest's path as problems show it: quoted with escapes when it holds a control character."""
    text = str(path)
    return repr(text) if _CONTROL_RE.search(text) else text


def suggest(key: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(sorted(allowed))}"


def check_keys(ctx: Problems, where: str, table: Mapping[str, Any], allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            ctx.add(where, f"unknown key {key!r}{suggest(key, allowed)}")


def get_str(ctx: Problems, where: str, table: Mapping[str, Any], key: str, *, required: bool = False) -> str:
    value = table.get(key)
    if value is None:
        if required:
            ctx.add(where, f"missing required key {key!r}")
        return ""
    if not isinstance(value, str):
        ctx.add(where, f"{key}: expected a string, got {type(value).__name__}")
        return ""
    if required and not value.strip():
        ctx.add(where, f"{key}: must not be empty")
        return ""
    return value


def get_str_list(ctx: Problems, where: str, table: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        ctx.add(where, f"{key}: expected a list of strings")
        return ()
    return tuple(value)


def check_name(ctx: Problems, where: str, name: str, what: str = "name") -> None:
    if name and not _NAME_RE.fullmatch(name):
        ctx.add(where, f"{what} {name!r} must be lower-case letters, digits, '.', '_', '+', '-'")


def printable(ctx: Problems, where: str, what: str, text: str) -> bool:
    """False, with a problem, when ``text`` holds a control character (shown escaped)."""
    found = _CONTROL_RE.search(text)
    if found is None:
        return True
    ctx.add(where, f"{what} {text!r} holds the control character {found.group()!r}; it must be printable")
    return False


def check_size(ctx: Problems, where: str, key: str, value: int | None) -> int | None:
    """``value`` when at most :data:`MAX_SIZE` (1 PiB); otherwise a problem and ``None``."""
    if value is not None and value > MAX_SIZE:
        ctx.add(where, f"{key}: expected at most 1 PiB ({MAX_SIZE} bytes), got {value}; a typo?")
        return None
    return value


_APPROX_RE = re.compile(r"~?\s*(\d+(?:\.\d+)?)\s*(B|kB|KB|MB|GB|TB|PB|KiB|MiB|GiB|TiB|PiB)")
_UNITS = {
    "B": 1,
    "kB": 10**3,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "PB": 10**15,
    "KiB": 1 << 10,
    "MiB": 1 << 20,
    "GiB": 1 << 30,
    "TiB": 1 << 40,
    "PiB": 1 << 50,
}


def parse_approx_size(ctx: Problems, where: str, raw: Mapping[str, Any]) -> int | None:
    """``approx_size = "163 GB"`` (decimal or binary units, as the source rounds it) or a byte count."""
    value = raw.get("approx_size")
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return check_size(ctx, where, "approx_size", value)
    match = _APPROX_RE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        ctx.add(where, f'approx_size: expected bytes or a figure like "163 GB" or "2.2 TB", got {value!r}')
        return None
    return check_size(ctx, where, "approx_size", int(float(match.group(1)) * _UNITS[match.group(2)]))


def _safe_relpath(text: str) -> bool:
    parts = text.split("/")
    return bool(text) and not text.startswith("/") and "\\" not in text and all(p not in ("", ".", "..") for p in parts)


def get_count(ctx: Problems, where: str, raw: Mapping[str, Any], key: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        ctx.add(where, f"{key}: expected a non-negative integer, got {value!r}")
        return None
    return value


def _tree(ctx: Problems, where: str, raw: Mapping[str, Any]) -> Checksum | None:
    text = raw.get("tree")
    if text is None:
        return None
    try:
        tree = Checksum.parse(text) if isinstance(text, str) else None
    except ValueError as exc:
        ctx.add(where, f"tree: {exc}")
        return None
    if tree is None or tree.alg != "xxh3_128":
        ctx.add(where, f"tree: expected 'xxh3_128:<32 hex>' (from 'provision hash --tree DIR'), got {text!r}")
        return None
    return tree


def default_extract_to(name: str, fmt: str) -> str:
    """The archive's name without its archive suffix (``x.tar.gz`` -> ``x``)."""
    lower = name.lower()
    for suffix in _ARCHIVE_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return ""


def parse_extract(ctx: Problems, where: str, raw: Mapping[str, Any], name: str) -> ExtractSpec | None:
    fmt = raw.get("extract")
    if fmt is None:
        for key in EXTRACT_KEYS:
            if key in raw:
                ctx.add(where, f"{key}: only meaningful with 'extract = \"<format>\"'")
        return None
    if not isinstance(fmt, str) or fmt not in ARCHIVE_FORMATS:
        ctx.add(where, f"extract: unknown format {fmt!r}; expected one of {', '.join(ARCHIVE_FORMATS)}")
        return None
    strip = get_count(ctx, where, raw, "strip_components") or 0
    members = tuple(m for m in get_str_list(ctx, where, raw, "members") if printable(ctx, where, "members: glob", m))
    extracted_size = check_size(ctx, where, "extracted_size", get_count(ctx, where, raw, "extracted_size"))
    expect_files = get_count(ctx, where, raw, "expect_files")
    keep = raw.get("keep_archive", True)
    if not isinstance(keep, bool):
        ctx.add(where, f"keep_archive: expected true or false, got {keep!r}")
        keep = True
    to = raw.get("extract_to")
    if to is None:
        to = default_extract_to(name, fmt) if name else ""
        if name and not to:
            ctx.add(where, f"extract_to: {name!r} has no archive suffix to strip; name the target folder")
    elif not isinstance(to, str) or not _safe_relpath(to):
        ctx.add(where, f"extract_to: {to!r} must be a relative path without '..', '.' or empty parts")
        to = ""
    elif not printable(ctx, where, "extract_to:", to):
        to = ""
    if not to:
        return None
    return ExtractSpec(
        format=fmt,
        to=to,
        strip_components=strip,
        members=members,
        extracted_size=extracted_size,
        keep_archive=keep,
        tree=_tree(ctx, where, raw),
        expect_files=expect_files,
    )


def artifact_tree(ctx: Problems, where: str, raw: Mapping[str, Any], files: list[FileSpec]) -> list[FileSpec]:
    """Artifact-level ``tree`` / ``expect_files`` belong to its one extracted file."""
    tree = _tree(ctx, where, raw)
    count = get_count(ctx, where, raw, "expect_files")
    if tree is None and count is None:
        return files
    archives = [f for f in files if f.extract is not None]
    if len(archives) != 1:
        ctx.add(
            where,
            f"tree/expect_files: the artifact has {len(archives)} extracted files; "
            "put tree/expect_files on the [[files]] entry instead",
        )
        return files
    ex = archives[0].extract
    assert ex is not None
    new = replace(ex, tree=tree or ex.tree, expect_files=count if count is not None else ex.expect_files)
    return [replace(f, extract=new) if f is archives[0] else f for f in files]


_RUNTIME_KEYS = {"file", "inputs", "outputs", "offset", "architecture", "num_classes", "golden"}
_ARCHITECTURE_RE = re.compile(r"^torchvision:[a-z][a-z0-9_]*$")


def _int(ctx: Problems, where: str, raw: Mapping[str, Any], key: str, default: int | None) -> int | None:
    value = raw.get(key, default)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        ctx.add(where, f"{key}: expected an integer, got {value!r}")
        return default
    return value


def parse_runtime(ctx: Problems, where: str, raw: Any, files: tuple[FileSpec, ...]) -> RuntimeSpec | None:
    """A model's ``[model.runtime]`` table (see :class:`~provision.manifest.RuntimeSpec`)."""
    if raw is None:
        return None
    where = f"{where}: runtime"
    if not isinstance(raw, dict):
        ctx.add(where, "expected a table")
        return None
    check_keys(ctx, where, raw, _RUNTIME_KEYS)
    file = get_str(ctx, where, raw, "file") or None
    if file is not None and file not in {f.name for f in files}:
        ctx.add(where, f"file: {file!r} is not one of the model's files ({', '.join(f.name for f in files)})")
    architecture = get_str(ctx, where, raw, "architecture") or None
    if architecture is not None and not _ARCHITECTURE_RE.match(architecture):
        ctx.add(where, f"architecture: expected 'torchvision:<builder>' (torchvision:resnet50), got {architecture!r}")
    num_classes = _int(ctx, where, raw, "num_classes", None)
    if num_classes is not None and num_classes < 1:
        ctx.add(where, f"num_classes: expected a positive integer, got {num_classes}")
    golden = raw.get("golden", [])
    if not isinstance(golden, list) or not all(isinstance(g, int) and not isinstance(g, bool) for g in golden):
        ctx.add(where, "golden: expected a list of integers (the model's predicted classes for the first samples)")
        golden = []
    return RuntimeSpec(
        file=file,
        inputs=get_str_list(ctx, where, raw, "inputs"),
        outputs=get_str_list(ctx, where, raw, "outputs"),
        offset=_int(ctx, where, raw, "offset", 0) or 0,
        architecture=architecture,
        num_classes=num_classes,
        golden=tuple(golden),
    )
