"""The inputs, cache key, run records and ``expected_tree`` pins of a preprocessing run.

See :mod:`provision.preprocessing` for the cache layout and how runs use these.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xxhash

import preprocess
from preprocess.recipe import Recipe
from provision.config import Settings
from provision.errors import IntegrityError, ManifestError, NotFetchedError, ProvisionError, UsageError
from provision.fsutil import read_json, temp_name
from provision.manifest.folders import as_fetched
from provision.manifest.lockfile import LockFile
from provision.manifest.model import Artifact, Benchmark, Catalog
from provision.progress import NullProgress, Progress
from provision.store.cache import Store
from provision.store.records import DROPPED
from provision.store.trees import TreeRecord, diff_trees, hash_tree, load_trees, verify_tree
from provision.store.verify import check_file

__all__ = [
    "RUN_FILE",
    "SHARD_FILE",
    "Plan",
    "artifact_digest",
    "cache_key",
    "library_signature",
    "make_plan",
    "parse_shard",
    "parse_signature",
    "pin_problem",
    "valid_run",
    "valid_shard",
]

RUN_FILE = "run.json"
SHARD_FILE = "shard.json"
RECORD_SCHEMA = 1
KEY_SCHEMA = 1
_DIGEST = re.compile(r"^xxh3_128:[0-9a-f]{32}$")


# -- small helpers -------------------------------------------------------------------------
def library_signature(libraries: Mapping[str, str]) -> str:
    """``k=v`` pairs sorted by name, space-separated: the keys of ``expected_tree``."""
    return " ".join(f"{k}={v}" for k, v in sorted(libraries.items()))


def parse_signature(text: str) -> dict[str, str]:
    """Inverse of :func:`library_signature` (a value may hold spaces; names may not)."""
    return {m[1]: m[2].strip() for m in re.finditer(r"([^\s=]+)=(.*?)(?=\s+[^\s=]+=|$)", text.strip())}


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` with ``1 <= I <= N``; :class:`UsageError` otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not 1 <= int(m[1]) <= int(m[2]):
        raise UsageError(f"--shard {text!r}: expected I/N with 1 <= I <= N, e.g. --shard 1/4")
    return int(m[1]), int(m[2])


def plain(value: Any) -> Any:
    """``value`` with mappings as dicts and tuples as lists (for canonical JSON)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _canonical(doc: Any) -> str:
    return json.dumps(plain(doc), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def cache_key(
    recipe: Recipe,
    params: Mapping[str, Any],
    inputs: Mapping[str, str],
    libraries: Mapping[str, str],
    subset: str | None,
) -> str:
    """The sha256 hex key of a run (see the module docstring)."""
    doc = {
        "schema": KEY_SCHEMA,
        "recipe": recipe.name,
        "version": recipe.version,
        "params": params,
        "inputs": inputs,
        "libraries": libraries,
        "subset": subset,
    }
    return hashlib.sha256(_canonical(doc).encode()).hexdigest()


def load_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when missing, unreadable, not a regular file or not an object."""
    doc = read_json(path)
    return doc if isinstance(doc, dict) else None


def discard(path: Path) -> None:
    """Remove a folder without ever leaving a half-deleted one at its name."""
    if not path.exists():
        return
    aside = temp_name(path)
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# -- the plan: inputs, digests, key ----------------------------------------------------------
@dataclass
class Plan:
    """Everything a run depends on, resolved; :attr:`key` names its output folder."""

    benchmark: Benchmark
    recipe: Recipe
    params: dict[str, Any]
    expected: dict[str, str]
    inputs: dict[str, Path]
    digests: dict[str, str]
    libraries: dict[str, str]
    subset: str | None
    limit: int | None
    overridden: bool
    key: str
    root: Path
    notes: list[str] = field(default_factory=list)

    @property
    def signature(self) -> str:
        """This machine's library signature."""
        return library_signature(self.libraries)

    @property
    def path(self) -> Path:
        """The output folder."""
        return self.root / self.key[:16]

    @property
    def shards_dir(self) -> Path:
        """Where shard parts of this key wait for the merge."""
        return self.root / f"{self.key[:16]}.shards"

    @property
    def lock_name(self) -> str:
        return f"preprocess--{self.benchmark.name}--{self.key[:16]}"

    def items(self) -> list[str]:
        """The recipe's items (the first ``--subset`` of them without a subset dataset)."""
        items = self.recipe.items(self.inputs, self.params)
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ProvisionError(f"recipe {self.recipe.name} {self.recipe.version}: items() must return a list of str")
        if len(set(items)) != len(items):
            dup = next(i for i in items if items.count(i) > 1)
            raise ProvisionError(f"recipe {self.recipe.name} {self.recipe.version}: item {dup!r} is listed twice")
        return items[: self.limit] if self.limit is not None else items

    def describe(self) -> dict[str, Any]:
        """The key's ingredients, as recorded in ``run.json``."""
        return {
            "benchmark": self.benchmark.name,
            "recipe": self.recipe.name,
            "version": self.recipe.version,
            "params": plain(self.params),
            "subset": self.subset,
            "key": self.key,
            "inputs": {
                r: {"path": str(p), "digest": self.digests[r]} for r, p in self.inputs.items() if r in self.digests
            },
            "libraries": dict(self.libraries),
            "signature": self.signature,
        }


def artifact_digest(store: Store, art: Artifact, bench: str, settings: Settings, progress: Progress) -> str:
    """xxh3_128 of the artifact's checksums and tree digests, checked by the stat fast path."""
    usage = store.usage(art)
    if usage["state"] != "present":
        raise NotFetchedError(
            f"{art.name} is not fetched ({usage['files']}/{usage['files_total']} files in {usage['path']}); "
            f"run 'provision fetch {bench}'",
            path=usage["path"],
        )
    lines: list[str] = []
    with store.lock(art.name, settings.lock_timeout, progress.note):
        records = store.load_record(art.name)
        for spec in sorted(art.files, key=lambda f: f.name):
            entry = records.get(spec.name)
            if entry is None:
                raise NotFetchedError(
                    f"{art.name}/{spec.name} has no record; run 'provision fetch {bench}'", path=usage["path"]
                )
            if entry.link != DROPPED:
                check, _, _ = check_file(store, art, spec, entry)
                if not check.ok:
                    raise IntegrityError(check.message(), path=check.path)
            lines.append(f"f\0{spec.name}\0{entry.checksum}\n")
            if spec.extract is not None:
                state, _, problems = verify_tree(store, art, spec, full=False, progress=NullProgress())
                if state != "ok":
                    raise IntegrityError(
                        f"{art.name}/{spec.extract.to}/: extracted tree {state} ({', '.join(problems)}); "
                        f"run 'provision fetch {art.name}' to extract it again",
                        path=str(store.artifact_dir(art.name) / spec.extract.to),
                    )
                lines.append(f"t\0{spec.extract.to}\0{load_trees(store, art.name)[spec.name]['digest']}\n")
    return f"xxh3_128:{xxhash.xxh3_128(''.join(lines).encode()).hexdigest()}"


def _parse_expected(raw: Any, bench: Benchmark) -> dict[str, str]:
    if raw is None:
        return {}
    where = f"{bench.source or 'manifest'}: benchmark {bench.name}: preprocess.expected_tree"
    if not isinstance(raw, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and _DIGEST.match(v) for k, v in raw.items()
    ):
        raise ManifestError([f'{where}: expected a table of "<library signature>" = "xxh3_128:<32 hex>"'])
    return {library_signature(parse_signature(k)): str(v) for k, v in raw.items()}


def make_plan(
    catalog: Catalog,
    name: str,
    settings: Settings,
    *,
    subset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    model: str | None = None,
) -> Plan:
    """Resolve benchmark ``name``'s recipe, inputs, digests and key (reads no data that is unchanged).

    ``model`` picks one of the benchmark's models (default: the first); a model with its
    own ``[model.preprocess]`` table (e.g. the PyTorch ResNet-50 profile) uses that recipe.
    """
    progress = progress or NullProgress()
    entry = catalog.get(name)
    if not isinstance(entry, Benchmark):
        raise UsageError(f"{name!r} is a {entry.kind}; preprocessing runs on benchmarks (see 'provision list')")
    bench = entry
    chosen = model or (bench.models[0] if bench.models else None)
    if model is not None and model not in bench.models:
        known = ", ".join(bench.models) or "none"
        raise UsageError(f"{bench.name} has no model {model!r}; its models: {known}")
    model_spec = catalog.artifacts[chosen].preprocess if chosen is not None else None
    spec = model_spec or bench.preprocess
    if spec is None:
        raise UsageError(f"{bench.name} has no [benchmark.preprocess] table in {bench.source}; nothing to preprocess")
    try:
        recipe = preprocess.get(spec.recipe)
    except KeyError as exc:
        raise UsageError(f"{bench.name}: {exc.args[0]}; this version of provision cannot preprocess it") from None
    raw = dict(spec.params)
    expected = _parse_expected(raw.pop("expected_tree", None), bench)
    params: dict[str, Any] = {**recipe.defaults, **raw, **(overrides or {})}
    limit = None
    if subset is not None:
        if subset in bench.subsets:
            bench = bench.with_subset(subset)
        elif subset.isdigit() and int(subset) > 0:
            limit = int(subset)
        else:
            named = f"one of its subsets ({', '.join(bench.subsets)})" if bench.subsets else "it has no subset datasets"
            raise UsageError(f"--subset {subset!r}: expected a positive item count; {named}")
    store = Store(settings.cache_dir)
    cache: dict[str, str] = {}

    def digest(art_name: str) -> str:
        if art_name not in cache:
            art = as_fetched(catalog.artifacts[art_name], LockFile(settings.lock_path))
            cache[art_name] = artifact_digest(store, art, name, settings, progress)
        return cache[art_name]

    inputs = {"data": store.artifact_dir(bench.dataset)}
    digests = {"data": digest(bench.dataset)}
    if bench.labels is not None and "labels" in recipe.uses:
        labels = store.artifact_dir(bench.labels.artifact) / bench.labels.file
        digests["labels"] = f"{digest(bench.labels.artifact)}:{bench.labels.file}"
        if not labels.is_file():
            raise NotFetchedError(f"labels file {labels} is missing; run 'provision fetch {name}'", path=str(labels))
        inputs["labels"] = labels
    notes: list[str] = []
    if "model" in recipe.uses:
        if chosen is None:
            raise UsageError(f"{bench.name}: recipe {recipe.name} reads a model, and the benchmark names none")
        if store.usage(as_fetched(catalog.artifacts[chosen], LockFile(settings.lock_path)))["state"] != "present":
            raise NotFetchedError(
                f"model {chosen} is not fetched; run 'provision fetch {chosen}'", path=str(store.artifact_dir(chosen))
            )
        inputs["model"] = inputs[f"model:{chosen}"] = store.artifact_dir(chosen)
        digests[f"model:{chosen}"] = digest(chosen)
    libraries = {str(k): str(v) for k, v in recipe.libraries().items()}
    key = cache_key(recipe, params, digests, libraries, subset)
    root = store.root / "preprocessed" / bench.name
    return Plan(
        bench, recipe, params, expected, inputs, digests, libraries, subset, limit, bool(overrides), key, root, notes
    )


# -- records -------------------------------------------------------------------------------
def tree_of(doc: Mapping[str, Any]) -> TreeRecord | None:
    try:
        return TreeRecord.from_json(dict(doc["tree"]))
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def _intact(folder: Path, tree: TreeRecord, skip: str) -> list[str]:
    """The first differences between ``folder`` and ``tree`` (stat fast path, xxh3 if changed)."""
    problems: list[str] = []
    on_disk: set[str] = set()
    for dirpath, dirs, names in os.walk(folder):
        for n in [*names, *(d for d in dirs if os.path.islink(os.path.join(dirpath, d)))]:
            on_disk.add((Path(dirpath) / n).relative_to(folder).as_posix())
    on_disk.discard(skip)
    problems += [f"extra {p}" for p in sorted(on_disk - set(tree.files) - set(tree.links))[:5]]
    for rel, want in tree.files.items():
        if len(problems) >= 5:
            break
        try:
            st = (folder / rel).stat()
        except OSError:
            problems.append(f"missing {rel}")
            continue
        if (st.st_size, st.st_mtime_ns, st.st_ino) == (want.size, want.mtime_ns, want.ino):
            continue
        got = hash_tree(folder / rel).files[Path(rel).name]
        if (got.size, got.xxh3_128) != (want.size, want.xxh3_128):
            problems.append(f"changed {rel}")
    problems += [f"missing {rel}" for rel in tree.links if not os.path.islink(folder / rel)]
    return problems[:5]


def valid_run(plan: Plan, progress: Progress) -> dict[str, Any] | None:
    """The run record of ``plan.path`` when it is this key's and its files are unchanged."""
    doc = load_json(plan.path / RUN_FILE)
    if doc is None or doc.get("schema") != RECORD_SCHEMA or doc.get("key") != plan.key:
        return None
    tree = tree_of(doc)
    if tree is None:
        return None
    problems = _intact(plan.path, tree, RUN_FILE)
    if problems:
        progress.note(f"{plan.path}: outputs changed since {RUN_FILE} ({', '.join(problems)}); computing again")
        return None
    return doc


def valid_shard(plan: Plan, part: Path, i: int, n: int) -> dict[str, Any] | None:
    doc = load_json(part / SHARD_FILE)
    if doc is None or doc.get("key") != plan.key or doc.get("shard") != [i, n]:
        return None
    return doc


def shard_slice(count: int, i: int, n: int) -> tuple[int, int]:
    return (i - 1) * count // n, i * count // n


# -- expected_tree -------------------------------------------------------------------------
def _library_hint(plan: Plan) -> str:
    if plan.signature in plan.expected:
        return (
            f"the library versions are the pinned set ({plan.signature}), "
            "so the inputs, parameters or recipe differ from the pinned run"
        )
    parts = []
    for sig in sorted(plan.expected):
        pinned = parse_signature(sig)
        diff = [f"{k} {plan.libraries.get(k, 'absent')} here vs {v} pinned" for k, v in pinned.items()]
        diff = [d for d, k in zip(diff, pinned, strict=True) if plan.libraries.get(k) != pinned[k]]
        parts.append(", ".join(diff) or f"({sig}) differs only in libraries not pinned")
    return (
        f"library versions differ from the pinned set(s): {'; '.join(parts)}; install the pinned versions, "
        f'or, if these outputs are right, pin them as expected_tree."{plan.signature}"'
    )


def pin_problem(plan: Plan, digest: str, tree: TreeRecord) -> str | None:
    """One line when ``digest`` is none of the pinned ones (full, unmodified runs only)."""
    if not plan.expected or plan.subset is not None or plan.overridden or digest in plan.expected.values():
        return None
    pinned = plan.expected.get(plan.signature)
    want = pinned or " or ".join(sorted(set(plan.expected.values())))
    diffs: list[str] = []
    if plan.root.is_dir():
        prefer = [pinned] if pinned else []
        for folder in sorted(plan.root.iterdir()):
            doc = load_json(folder / RUN_FILE) if "." not in folder.name else None
            got = (doc or {}).get("output", {}).get("digest")
            old = tree_of(doc) if doc and got in plan.expected.values() else None
            if old is not None and (not diffs or got in prefer):
                diffs = diff_trees(old, tree)
    compare = f"first differences: {', '.join(diffs)}" if diffs else "no earlier run with a pinned digest to compare"
    return (
        f"{plan.benchmark.name}: preprocessed output tree digest mismatch: expected {want}, got {digest} "
        f"({len(tree.files)} files); {compare}; {_library_hint(plan)}"
    )
