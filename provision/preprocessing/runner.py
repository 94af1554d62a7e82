"""Deterministic preprocessing: a registered recipe run over a benchmark's fetched inputs.

Layout under the cache root::

    preprocessed/<benchmark>/<key[:16]>/                 outputs + run.json (complete runs only)
    preprocessed/<benchmark>/<key[:16]>.shards/<I>-of-<N>/  one shard's outputs + shard.json
    preprocessed/<benchmark>/<key[:16]>.rejected/        the last output that failed expected_tree

The cache key is the sha256 of canonical JSON (sorted keys, no spaces) of the recipe name
and version, its parameters (recipe defaults, then the manifest's; ``expected_tree`` is not
one), the digest of each input role, the recipe's ``libraries()`` and ``--subset``. An input
digest comes from the fetch records (published checksums and extracted tree digests, with
the stat fast path of ``verify``), so nothing is re-read unless it changed on disk. Same key:
the run is skipped; any change: a new key folder. A folder is reused only when its
``run.json`` names exactly this key and its files are unchanged; anything else is removed.

Outputs are written into a temp folder beside the target and renamed into place after
``finalize``, the tree digest (``provision hash --tree`` over the outputs, ``run.json`` not
included) and the pin check. Shards write ``<I>-of-<N>`` folders; the merge hard-links them
into one temp folder, runs ``finalize`` and commits, so every ``--jobs``/``--shard``
combination gives the same bytes.

Library signature (the keys of ``expected_tree``): the recipe's ``libraries()`` as ``k=v``
sorted by name and joined by single spaces, e.g. ``"numpy=2.1.0 opencv=4.10.0"``.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preprocess.recipe import Recipe
from provision.config import Settings
from provision.errors import EXIT_FAILURE, IntegrityError, NotFetchedError, ProvisionError, UsageError
from provision.fsutil import atomic_write_text, is_stale_temp, link_or_copy, temp_name
from provision.preprocessing.plan import (
    RECORD_SCHEMA,
    RUN_FILE,
    SHARD_FILE,
    Plan,
    default_jobs,
    discard,
    load_json,
    pin_problem,
    shard_slice,
    tree_of,
    valid_run,
    valid_shard,
)
from provision.progress import NullProgress, Progress
from provision.store.cache import Store
from provision.store.trees import hash_tree

__all__ = ["PreprocessReport", "preprocessed_path", "run"]


# -- running ---------------------------------------------------------------------------------
@dataclass
class PreprocessReport:
    """What one ``preprocess`` call did; ``state`` is cached, computed, merged or shard."""

    benchmark: str
    recipe: str
    version: str
    key: str
    path: Path
    state: str
    items: int = 0
    processed: int = 0
    digest: str | None = None
    libraries: dict[str, str] = field(default_factory=dict)
    signature: str = ""
    shard: tuple[int, int] | None = None
    missing_shards: list[str] = field(default_factory=list)
    jobs: int = 1
    seconds: float = 0.0
    pin: str = "none"
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready."""
        doc = dict(vars(self))
        doc["path"] = str(self.path)
        doc["shard"] = list(self.shard) if self.shard else None
        return doc


@dataclass
class _Work:
    recipe: Recipe
    inputs: dict[str, Path]
    out_dir: Path
    params: dict[str, Any]


_WORK: _Work | None = None


def _init_worker(work: _Work) -> None:
    global _WORK
    _WORK = work


_Result = tuple[str, str | None, int]


def _call(work: _Work, item: str) -> _Result:
    """Process one item; ``(item, error or None, exit code)`` (errors cross process boundaries as text)."""
    try:
        work.recipe.process(item, work.inputs, work.out_dir, work.params)
    except ProvisionError as exc:
        return item, str(exc), exc.exit_code
    except Exception as exc:
        return item, f"{exc.__class__.__name__}: {exc}", EXIT_FAILURE
    return item, None, 0


def _run_one(item: str) -> _Result:
    assert _WORK is not None
    return _call(_WORK, item)


def _process(plan: Plan, items: list[str], out_dir: Path, jobs: int, progress: Progress) -> None:
    """``recipe.process`` every item into ``out_dir``, on ``jobs`` processes (``fork``ed, so
    recipes registered at run time exist in the workers too)."""
    work = _Work(plan.recipe, plan.inputs, out_dir, plan.params)
    key = f"preprocess:{plan.benchmark.name}"
    progress.start(key, f"{plan.recipe.name} ({len(items)} items)", len(items))

    def check(result: _Result) -> None:
        item, error, code = result
        if error is not None:
            exc = ProvisionError(
                f"recipe {plan.recipe.name} {plan.recipe.version} failed on item {item!r} of "
                f"{plan.benchmark.name}: {error}; check that input, or report it with the recipe name"
            )
            exc.exit_code = code
            raise exc
        progress.advance(key, 1)

    ok = False
    try:
        if jobs <= 1 or len(items) <= 1:
            for item in items:
                check(_call(work, item))
        else:
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
            # Small chunks at the end keep the workers even: with 300 items a chunk of 37 left one
            # worker a whole chunk behind the other; 16 chunks a worker cost nothing measurable.
            chunk = max(1, min(64, len(items) // (jobs * 16)))
            with ctx.Pool(min(jobs, len(items)), initializer=_init_worker, initargs=(work,)) as pool:
                for result in pool.imap_unordered(_run_one, items, chunk):
                    check(result)  # an error leaves the with block: the pool is terminated
        ok = True
    finally:
        progress.finish(key, ok)


def _finalize(plan: Plan, items: list[str], out_dir: Path) -> None:
    if plan.recipe.finalize is not None:
        try:
            plan.recipe.finalize(items, plan.inputs, out_dir, plan.params)
        except ProvisionError:
            raise
        except Exception as exc:
            raise ProvisionError(
                f"recipe {plan.recipe.name} {plan.recipe.version}: finalize failed for {plan.benchmark.name}: "
                f"{exc.__class__.__name__}: {exc}"
            ) from exc


def _commit(plan: Plan, tmp: Path, items: int, meta: Mapping[str, Any], progress: Progress) -> dict[str, Any]:
    """Digest ``tmp``, check the pins, write run.json and rename it into place."""
    tree = hash_tree(tmp)
    tree.files.pop(RUN_FILE, None)
    record = {
        "schema": RECORD_SCHEMA,
        **plan.describe(),
        "items": items,
        "output": {"digest": tree.digest, "files": len(tree.files), "bytes": tree.total_bytes},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": socket.gethostname(),
        **meta,
        "tree": tree.to_json(),
    }
    problem = pin_problem(plan, tree.digest, tree)
    if problem is not None:
        rejected = plan.root / f"{plan.key[:16]}.rejected"
        atomic_write_text(tmp / RUN_FILE, json.dumps({**record, "rejected": problem}, indent=1) + "\n")
        discard(rejected)
        os.rename(tmp, rejected)
        raise IntegrityError(f"{problem} (outputs kept in {rejected})", path=str(rejected))
    atomic_write_text(tmp / RUN_FILE, json.dumps(record, indent=1) + "\n")
    if plan.path.exists():
        existing = valid_run(plan, progress)
        if existing is not None:  # another process finished the same key first
            discard(tmp)
            return existing
        discard(plan.path)
    os.rename(tmp, plan.path)
    return record


@contextlib.contextmanager
def _temp_dir(final: Path) -> Iterator[Path]:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(final)
    tmp.mkdir()
    try:
        yield tmp
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _clean_stale(*folders: Path) -> None:
    """Remove temp folders whose writer is gone (interrupted runs)."""
    for folder in folders:
        if folder.is_dir():
            for child in folder.iterdir():
                if is_stale_temp(child):
                    shutil.rmtree(child, ignore_errors=True)


def _merge(plan: Plan, n: int, progress: Progress) -> dict[str, Any]:
    """Assemble shards 1..n of ``plan``, finalize, digest and commit."""
    items = plan.items()
    with _temp_dir(plan.path) as tmp:
        for i in range(1, n + 1):
            part = plan.shards_dir / f"{i}-of-{n}"
            doc = valid_shard(plan, part, i, n) or {}
            lo, hi = shard_slice(len(items), i, n)
            if doc.get("items") != hi - lo or doc.get("first") != (items[lo] if hi > lo else None):
                raise IntegrityError(
                    f"shard {i}-of-{n} of {plan.benchmark.name} in {part} was made from a different item list; "
                    f"delete it and run 'provision preprocess {plan.benchmark.name} --shard {i}/{n}' again",
                    path=str(part),
                )
            for dirpath, _dirs, names in os.walk(part):
                for fname in names:
                    src = Path(dirpath) / fname
                    rel = src.relative_to(part)
                    if rel.as_posix() == SHARD_FILE:
                        continue
                    dst = tmp / rel
                    if dst.exists():
                        raise ProvisionError(
                            f"recipe {plan.recipe.name}: two shards wrote {rel.as_posix()}; "
                            "each item must write its own files"
                        )
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    link_or_copy(src, dst, allow_hardlink=True)
        _finalize(plan, items, tmp)
        record = _commit(plan, tmp, len(items), {"jobs": None, "shards": n}, progress)
    for i in range(1, n + 1):
        discard(plan.shards_dir / f"{i}-of-{n}")
    with contextlib.suppress(OSError):
        plan.shards_dir.rmdir()
    return record


def _shard_status(plan: Plan, n: int) -> list[str]:
    """Names of the shards 1..n that are not done."""
    return [f"{i}-of-{n}" for i in range(1, n + 1) if valid_shard(plan, plan.shards_dir / f"{i}-of-{n}", i, n) is None]


def _complete_shard_count(plan: Plan) -> tuple[int | None, list[str]]:
    """``(N, [])`` for a complete set of shard parts, else ``(None, what is missing)``."""
    seen: dict[int, int] = {}
    if plan.shards_dir.is_dir():
        for part in plan.shards_dir.iterdir():
            m = re.fullmatch(r"(\d+)-of-(\d+)", part.name)
            if m and valid_shard(plan, part, int(m[1]), int(m[2])) is not None:
                seen[int(m[2])] = seen.get(int(m[2]), 0) + 1
    for n in sorted(seen):
        if not _shard_status(plan, n):
            return n, []
    return None, [m for n in sorted(seen) for m in _shard_status(plan, n)]


def run(
    plan: Plan,
    settings: Settings,
    *,
    jobs: int | None = None,
    shard: tuple[int, int] | None = None,
    merge: bool = False,
    progress: Progress | None = None,
) -> PreprocessReport:
    """Produce (or find) ``plan``'s outputs: a full run, one shard, or the merge of the shards.

    A valid run of the same key is reused (``cached``); a shard runs its slice and, when it is the
    last one done, merges all of them (``shard``, then ``merged``); ``merge`` assembles finished
    shards; otherwise every item is processed (``computed``). Each commit checks the pins.
    """
    jobs = jobs or default_jobs()
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")
    if shard is not None and merge:
        raise UsageError("--merge assembles finished shards; give it without --shard")
    runner = _Runner(plan, settings, jobs, shard, progress or NullProgress())
    done = runner.cached()
    if done is not None:
        return runner.finish(done, "cached")
    _clean_stale(plan.root, plan.shards_dir)
    if shard is not None:
        runner.run_shard(*shard)
        if runner.report.missing_shards:
            return runner.shard_done(*shard)
        merge = True
    with runner.store.lock(plan.lock_name, settings.lock_timeout, runner.progress.note):
        done = valid_run(plan, runner.progress)  # another process may have finished it meanwhile
        if done is not None:
            return runner.finish(done, "cached")
        if merge:
            return runner.finish(runner.merge(), "merged")
        return runner.finish(runner.compute(), "computed")


class _Runner:
    """One ``preprocess`` call: the plan, where it runs, and the report it fills in."""

    def __init__(
        self, plan: Plan, settings: Settings, jobs: int, shard: tuple[int, int] | None, progress: Progress
    ) -> None:
        self.started = time.monotonic()
        self.plan, self.settings, self.jobs, self.shard, self.progress = plan, settings, jobs, shard, progress
        self.store = Store(settings.cache_dir)
        self.store.ensure()
        self.report = PreprocessReport(
            plan.benchmark.name, plan.recipe.name, plan.recipe.version, plan.key, plan.path, "cached",
            libraries=dict(plan.libraries), signature=plan.signature, shard=shard, jobs=jobs, notes=list(plan.notes),
        )  # fmt: skip

    def cached(self) -> dict[str, Any] | None:
        """The record of a valid run of this key, when one is in the cache."""
        with self.store.lock(self.plan.lock_name, self.settings.lock_timeout, self.progress.note):
            return valid_run(self.plan, self.progress)

    def run_shard(self, i: int, n: int) -> None:
        """Process shard ``i`` of ``n`` into its part folder (unless a valid part is there already)."""
        plan = self.plan
        part = plan.shards_dir / f"{i}-of-{n}"
        with self.store.lock(f"{plan.lock_name}--{i}-of-{n}", self.settings.lock_timeout, self.progress.note):
            if valid_shard(plan, part, i, n) is None:
                items = plan.items()
                lo, hi = shard_slice(len(items), i, n)
                mine = items[lo:hi]
                with _temp_dir(part) as tmp:
                    _process(plan, mine, tmp, self.jobs, self.progress)
                    doc = {"key": plan.key, "shard": [i, n], "items": len(mine), "first": mine[0] if mine else None}
                    atomic_write_text(tmp / SHARD_FILE, json.dumps(doc) + "\n")
                    discard(part)
                    os.rename(tmp, part)
                self.report.processed = len(mine)
            self.report.items = int((load_json(part / SHARD_FILE) or {}).get("items", 0))
        self.report.missing_shards = _shard_status(plan, n)

    def shard_done(self, i: int, n: int) -> PreprocessReport:
        """The report of shard ``i`` of ``n`` while its siblings are not all done."""
        self.report.state, self.report.path = "shard", self.plan.shards_dir / f"{i}-of-{n}"
        self.report.seconds = round(time.monotonic() - self.started, 3)
        return self.report

    def merge(self) -> dict[str, Any]:
        """Assemble a complete set of shard parts (this call's N, else the one found) and commit it."""
        plan = self.plan
        n_done, missing = (self.shard[1], []) if self.shard is not None else _complete_shard_count(plan)
        if n_done is None:
            what = f"missing {', '.join(missing)}" if missing else "no finished shard parts"
            raise ProvisionError(
                f"cannot merge {plan.benchmark.name}: {what} in {plan.shards_dir}; run "
                f"'provision preprocess {plan.benchmark.name} --shard I/N' for each missing shard first"
            )
        return _merge(plan, n_done, self.progress)

    def compute(self) -> dict[str, Any]:
        """Process every item, finalize and commit."""
        plan = self.plan
        items = plan.items()
        with _temp_dir(plan.path) as tmp:
            _process(plan, items, tmp, self.jobs, self.progress)
            _finalize(plan, items, tmp)
            record = _commit(plan, tmp, len(items), {"jobs": self.jobs, "shards": None}, self.progress)
        self.report.processed = len(items)
        return record

    def finish(self, record: Mapping[str, Any], state: str) -> PreprocessReport:
        """The report of a committed (or reused) run: its digest and whether it matches the pins."""
        plan, report = self.plan, self.report
        report.state, report.digest = state, str(record["output"]["digest"])
        report.items = int(record.get("items", 0))
        tree = tree_of(record)
        if tree is not None:
            problem = pin_problem(plan, report.digest, tree)
            if problem is not None:
                raise IntegrityError(f"{problem} (outputs in {plan.path})", path=str(plan.path))
        if not plan.expected:
            report.pin = "none"
        elif plan.subset is not None or plan.overridden:
            report.pin = "skipped"
        else:
            report.pin = "match"
        report.seconds = round(time.monotonic() - self.started, 3)
        return report


def preprocessed_path(plan: Plan, progress: Progress | None = None) -> Path:
    """``plan``'s output folder; :class:`NotFetchedError` when it has not been made (or changed)."""
    if valid_run(plan, progress or NullProgress()) is None:
        sub = f" --subset {plan.subset}" if plan.subset else ""
        raise NotFetchedError(
            f"{plan.benchmark.name} is not preprocessed for this input/recipe/library set (key {plan.key[:16]} "
            f"in {plan.root}); run 'provision preprocess {plan.benchmark.name}{sub}'",
            path=str(plan.path),
        )
    return plan.path
