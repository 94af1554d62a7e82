"""``provision harness``: how to run MLPerf's reference implementation on provision's preprocessed outputs.

For a benchmark whose recipe has a story here, :func:`harness` returns the exact commands (working
folder, environment, arguments) that run the reference code of mlcommons/inference on the outputs
of this machine's preprocessing run, and writes beside those outputs what the reference loads that
the recipe does not produce. The stories, from the reference's source (``main.py``,
``imagenet.py``, ``openimages.py``, ``run_common.sh`` of ``vision/classification_and_detection``;
``run.py``, ``squad_QSL.py``, ``accuracy-squad.py`` and the SUTs of ``language/bert``):

- ``imagenet-resnet50`` / ``imagenet-torchvision`` (ResNet-50): ``python/main.py --profile …
  --dataset-path K --dataset-list K/val_map.txt --use_preprocessed_dataset --cache_dir K``. With
  ``--use_preprocessed_dataset`` the reference reads ``val_map.txt``, keeps the lines whose
  ``<dataset-path>/<name>.npy`` exists and loads ``<cache_dir>/<name>.npy``: the recipe's layout,
  as it is. Nothing is written.
- ``openimages-retinanet`` (RetinaNet): the same flags, with ``--dataset-list`` the annotation file
  written here (``annotations/openimages-mlperf.json``, cut to the samples, see
  :func:`preprocess.openimages.harness_annotations`), which the accuracy script also finds with
  ``--openimages-dir`` (it maps sample ``i`` to ``images[i]``). With ``--use_preprocessed_dataset``
  the reference's OpenImages loader ignores ``--preprocessed_dir``: ``--cache_dir`` it is.
- ``squad-bert`` (BERT): ``language/bert/run.py`` run *in the folder written here*, because the
  reference finds its feature cache as ``eval_features.pickle`` in its working folder (no option
  names it) and ``accuracy-squad.py``, which ``run.py`` starts, reads ``build/data/dev-v1.1.json``
  and writes ``build/result/predictions.json`` relative to it. Written: ``eval_features.pickle``
  (:mod:`preprocess.squad_pickle`), ``build/data/dev-v1.1.json`` (a symlink to the fetched file)
  and the folder ``build/result/``; the model comes from ``ML_MODEL_FILE_WITH_PATH``.

The written files live in ``<cache>/preprocessed/<benchmark>/<key16>.harness/``, beside the
run's output folder and never inside it (its tree digest and run record stay as they were), with
a record ``harness.json``: the preprocessing key and output digest they were made from, and the
tree (size, xxh3_128, stat) of every file and link written. Each call checks that folder against
its record (stat fast path, re-hashing a file whose stat changed) and writes again what no longer
matches; files the reference writes there itself (``build/logs/``, ``build/result/``) are neither
recorded nor touched. ``provision gc`` removes the folder once its preprocessing run is gone.

Paths inside the user's checkout of mlcommons/inference are given as ``$INFERENCE/...`` unless
its folder is passed (``inference``).
"""

from __future__ import annotations

import datetime
import json
import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision.config import Settings
from provision.errors import IntegrityError, NotFetchedError, UsageError
from provision.fsutil import atomic_write_text, temp_name
from provision.manifest.folders import as_fetched
from provision.manifest.lockfile import LockFile
from provision.manifest.model import Artifact, Benchmark, Catalog
from provision.preprocessing.plan import Plan, load_json, make_plan, valid_run
from provision.progress import NullProgress, Progress
from provision.store.cache import Store
from provision.store.trees import TreeFile, TreeRecord, hash_tree
from provision.version import __version__

__all__ = [
    "HARNESS_FILE",
    "HARNESS_SUFFIX",
    "INFERENCE",
    "Command",
    "HarnessFile",
    "HarnessReport",
    "harness",
]

#: The record of a harness folder.
HARNESS_FILE = "harness.json"
#: ``<key16><HARNESS_SUFFIX>`` beside the run's output folder.
HARNESS_SUFFIX = ".harness"
#: How commands name the user's checkout of mlcommons/inference when its folder is not given.
INFERENCE = "$INFERENCE"

_SCHEMA = 1
_VISION = "vision/classification_and_detection"
_BERT = "language/bert"


@dataclass(frozen=True)
class Command:
    """One command to type: in ``cwd``, with ``env`` set, run ``argv``."""

    purpose: str
    cwd: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()

    def shell(self) -> str:
        """The command as one POSIX shell line (``cd … && VAR=… argv``), ``$INFERENCE`` left to the shell."""
        words = [f"{name}={_quote(value)}" for name, value in self.env] + [_quote(word) for word in self.argv]
        return f"cd {_quote(self.cwd)} && {' '.join(words)}"

    def to_json(self) -> dict[str, Any]:
        return {"purpose": self.purpose, "cwd": self.cwd, "env": dict(self.env), "argv": list(self.argv),
                "shell": self.shell()}  # fmt: skip


def _quote(word: str) -> str:
    """``shlex.quote``, except that a leading ``$INFERENCE`` stays expandable (inside double quotes)."""
    if word.startswith(INFERENCE):
        rest = word[len(INFERENCE) :]
        if not any(c in rest for c in '"$`\\'):
            return f'"{word}"'
    return shlex.quote(word)


@dataclass(frozen=True)
class HarnessFile:
    """A file, symlink or folder written for the reference, relative to the harness folder."""

    path: str
    kind: str  # "file", "link" or "folder"
    read_as: str  # what the reference takes it for
    size: int | None = None
    xxh3_128: str | None = None
    target: str | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"path": self.path, "kind": self.kind, "read_as": self.read_as}
        if self.kind == "file":
            doc.update(size=self.size, xxh3_128=self.xxh3_128)
        if self.kind == "link":
            doc["target"] = self.target
        return doc


@dataclass
class HarnessReport:
    """What :func:`harness` found and wrote, and the commands to run (see the module docstring)."""

    benchmark: str
    model: str
    recipe: str
    reference: str  # the reference script, relative to the checkout
    profile: str | None  # main.py --profile, or None (BERT)
    backend: str | None
    preprocessed: Path
    key: str
    items: int
    folder: Path | None  # the harness folder, or None when nothing is written
    state: str  # "written", "cached" or "none"
    inference: str | None
    files: list[HarnessFile] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "model": self.model,
            "recipe": self.recipe,
            "reference": self.reference,
            "profile": self.profile,
            "backend": self.backend,
            "preprocessed": str(self.preprocessed),
            "key": self.key,
            "items": self.items,
            "folder": str(self.folder) if self.folder is not None else None,
            "state": self.state,
            "inference": self.inference,
            "files": [f.to_json() for f in self.files],
            "commands": [c.to_json() for c in self.commands],
            "notes": list(self.notes),
        }


# -- what gets written -----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Output:
    """One thing to put in the harness folder: a file made by ``write(dest)``, a symlink, or a folder."""

    path: str
    read_as: str
    write: Callable[[Path], None] | None = None
    target: Path | None = None

    @property
    def kind(self) -> str:
        return "file" if self.write is not None else "link" if self.target is not None else "folder"


@dataclass(frozen=True)
class _Context:
    """What a story needs: the run, the model, where things are."""

    bench: Benchmark
    model: Artifact
    model_path: Path
    plan: Plan
    run: Mapping[str, Any]
    folder: Path
    inference: str

    @property
    def outputs(self) -> Path:
        return self.plan.path

    def ref(self, rel: str) -> str:
        """``rel`` inside the mlcommons/inference checkout."""
        return f"{self.inference}/{rel}"


@dataclass(frozen=True)
class _Story:
    reference: str
    profile: str | None
    backend: str | None
    outputs: tuple[_Output, ...]
    commands: tuple[Command, ...]
    notes: tuple[str, ...] = ()


def _model_file(model: Artifact) -> str:
    """The model's file: ``[model.runtime] file``, else its only file that is not a text/JSON side file."""
    if model.runtime is not None and model.runtime.file:
        return model.runtime.file
    candidates = [f.name for f in model.files if not f.is_folder and not f.name.endswith((".txt", ".json"))]
    if len(candidates) == 1:
        return candidates[0]
    raise UsageError(
        f"model {model.name}: cannot tell which of its files is the model ({', '.join(candidates) or 'none'}); "
        "its manifest needs [model.runtime] file = '<which one>'"
    )


def _layout_note(ctx: _Context, wanted: str, backend: str) -> list[str]:
    layout = ctx.plan.params.get("layout")
    if layout is None or layout == wanted:
        return []
    return [
        f"the outputs are {layout}, and the reference's {backend} backend takes {wanted}: "
        f"preprocess with layout = '{wanted}' for this model"
    ]


# -- ResNet-50 and RetinaNet: vision/classification_and_detection/python/main.py ------------------------
#: (recipe, model format, model file suffix or "") -> (profile, extra --backend or None, layout the backend takes)
_VISION_PROFILES: dict[tuple[str, str, str], tuple[str, str | None, str]] = {
    ("imagenet-resnet50", "onnx", ""): ("resnet50-onnxruntime", None, "NCHW"),
    ("imagenet-resnet50", "tensorflow", ""): ("resnet50-tf", None, "NHWC"),
    ("imagenet-torchvision", "pytorch", ".pth"): ("resnet50-pytorch", "pytorch", "NCHW"),
    ("imagenet-torchvision", "pytorch", ".pt"): ("resnet50-pytorch", "tvm", "NCHW"),
    ("openimages-retinanet", "onnx", ""): ("retinanet-onnxruntime", None, "NCHW"),
    ("openimages-retinanet", "pytorch", ""): ("retinanet-pytorch", None, "NCHW"),
}

_PROFILE_BACKEND = {
    "resnet50-onnxruntime": "onnxruntime",
    "resnet50-tf": "tensorflow",
    "retinanet-onnxruntime": "onnxruntime",
    "retinanet-pytorch": "pytorch-native",
}


def _vision_profile(ctx: _Context) -> tuple[str, str | None, str]:
    recipe, fmt = ctx.plan.recipe.name, ctx.model.format or ""
    for suffix in (Path(ctx.model_path).suffix, ""):
        found = _VISION_PROFILES.get((recipe, fmt, suffix))
        if found is not None:
            return found
    raise UsageError(
        f"{ctx.bench.name}: model {ctx.model.name} ({fmt or 'no'} format, {ctx.model_path.name}) has no MLPerf "
        f"reference-harness profile for recipe {recipe} here; known: "
        + ", ".join(sorted({f"{f}{s or ''}" for r, f, s in _VISION_PROFILES if r == recipe}))
    )


def _main_py(ctx: _Context, dataset_list: str) -> tuple[str, str | None, tuple[str, ...], list[str]]:
    profile, backend, layout = _vision_profile(ctx)
    k = str(ctx.outputs)
    argv = ["python3", "python/main.py", "--profile", profile]
    if backend is not None:
        argv += ["--backend", backend]
    argv += ["--model", str(ctx.model_path), "--dataset-path", k, "--dataset-list", dataset_list]
    argv += ["--use_preprocessed_dataset", "--cache_dir", k, "--scenario", "Offline", "--accuracy"]
    notes = _layout_note(ctx, layout, backend or _PROFILE_BACKEND[profile])
    return profile, backend, tuple(argv), notes


def _imagenet(ctx: _Context) -> _Story:
    val_map = str(ctx.outputs / "val_map.txt")
    profile, backend, argv, notes = _main_py(ctx, val_map)
    cwd = ctx.ref(_VISION)
    accuracy = ("python3", "tools/accuracy-imagenet.py", "--mlperf-accuracy-file", "output/mlperf_log_accuracy.json",
                "--imagenet-val-file", val_map)  # fmt: skip
    if backend == "pytorch":
        notes.append(
            "run_common.sh pairs this checkpoint with --backend pytorch, whose backend_pytorch.py opens the model "
            "with onnx.load through caffe2 and cannot read a state dict; the preprocessed data is that of the "
            "reference's imagenet_pytorch dataset either way"
        )
    if backend == "tvm":
        notes.append("run_common.sh runs this TorchScript file with --backend tvm (profile resnet50-tvm-pytorch)")
    if "labels" not in (ctx.run.get("inputs") or {}):
        notes.append("the benchmark names no labels file: val_map.txt has label -1 on every line, so accuracy is 0")
    return _Story(
        reference=f"{_VISION}/python/main.py",
        profile=profile,
        backend=backend,
        outputs=(),
        commands=(Command("run", cwd, argv), Command("accuracy", cwd, accuracy)),
        notes=tuple(notes),
    )


def _openimages(ctx: _Context) -> _Story:
    from preprocess.openimages import ANNOTATIONS_NAME, annotations_file, harness_annotations

    source = annotations_file(ctx.plan.inputs, ctx.plan.params)
    if source is None:
        raise UsageError(
            f"{ctx.bench.name}: the preprocessing run read no annotation file, and the reference harness needs one "
            f"({ANNOTATIONS_NAME}); fetch the annotations with the dataset and preprocess again"
        )
    annotations = f"annotations/{ANNOTATIONS_NAME}"

    def write(dest: Path) -> None:
        dest.write_text(json.dumps(harness_annotations(source, ctx.outputs)), encoding="utf-8")

    profile, backend, argv, notes = _main_py(ctx, str(ctx.folder / annotations))
    cwd = ctx.ref(_VISION)
    accuracy = ("python3", "tools/accuracy-openimages.py", "--mlperf-accuracy-file", "output/mlperf_log_accuracy.json",
                "--openimages-dir", str(ctx.folder))  # fmt: skip
    return _Story(
        reference=f"{_VISION}/python/main.py",
        profile=profile,
        backend=backend,
        outputs=(
            _Output(annotations, f"--dataset-list (and --openimages-dir of the accuracy script): {source}", write),
        ),
        commands=(Command("run", cwd, argv), Command("accuracy", cwd, accuracy)),
        notes=tuple(notes),
    )


# -- BERT: language/bert/run.py ---------------------------------------------------------------------------
_BERT_BACKENDS = {"onnx": "onnxruntime", "pytorch": "pytorch", "tensorflow": "tf"}


def _squad(ctx: _Context) -> _Story:
    from preprocess.squad_pickle import write_eval_features

    backend = _BERT_BACKENDS.get(ctx.model.format or "")
    if backend is None:
        raise UsageError(
            f"{ctx.bench.name}: model {ctx.model.name} ({ctx.model.format or 'no'} format) has no MLPerf "
            f"reference-harness backend here; known formats: {', '.join(sorted(_BERT_BACKENDS))}"
        )
    dataset = Path(os.path.abspath(ctx.plan.inputs["data"])) / str(ctx.plan.params.get("dataset_file", "dev-v1.1.json"))

    def write(dest: Path) -> None:
        with open(dest, "wb") as fh:
            write_eval_features(ctx.outputs, fh)
            fh.flush()
            os.fsync(fh.fileno())

    outputs = (
        _Output("eval_features.pickle", "the feature cache of squad_QSL.py and accuracy-squad.py", write),
        _Output("build/data/dev-v1.1.json", "accuracy-squad.py --val_data (its default)", target=dataset),
        _Output("build/result", "where accuracy-squad.py writes predictions.json"),
    )
    argv = ["python3", ctx.ref(f"{_BERT}/run.py"), "--backend", backend]
    inputs = ctx.model.runtime.inputs if ctx.model.runtime is not None else ()
    if backend == "onnxruntime" and "attention_mask" in inputs:
        argv.append("--quantized")  # the reference feeds attention_mask/token_type_ids only with --quantized
    argv += ["--scenario", "Offline", "--accuracy", "--user_conf", ctx.ref(f"{_BERT}/user.conf")]
    cwd = str(ctx.folder)
    commands = [Command("run", cwd, tuple(argv), (("ML_MODEL_FILE_WITH_PATH", str(ctx.model_path)),))]
    notes = [
        "run.py writes its LoadGen logs to build/logs/ here and then runs accuracy-squad.py on them (set "
        "SKIP_VERIFY_ACCURACY=1 to skip it); without --accuracy it measures performance"
    ]
    if backend == "pytorch":
        link = ("ln", "-sf", ctx.ref(f"{_BERT}/bert_config.json"), "bert_config.json")
        commands.insert(0, Command("setup", cwd, link))
        notes.append("pytorch_SUT.py reads bert_config.json from its working folder: the setup line links it here")
    if backend == "tf":
        notes.append("tf_SUT.py also reads TF_INTRA_OP_PARALLELISM_THREADS / TF_INTER_OP_PARALLELISM_THREADS")
    if ctx.plan.params.get("max_seq_length") != 384:
        notes.append(f"max_seq_length is {ctx.plan.params.get('max_seq_length')}: accuracy-squad.py pads logits to 384")
    if ctx.plan.subset is not None:
        notes.append("a subset: evaluate-v1.1.py scores every question of dev-v1.1.json, unanswered ones as 0")
    return _Story(
        reference=f"{_BERT}/run.py",
        profile=None,
        backend=backend,
        outputs=outputs,
        commands=tuple(commands),
        notes=tuple(notes),
    )


#: Recipe -> its harness story. Benchmarks whose recipe is not here have none yet.
_STORIES: dict[str, Callable[[_Context], _Story]] = {
    "imagenet-resnet50": _imagenet,
    "imagenet-torchvision": _imagenet,
    "openimages-retinanet": _openimages,
    "squad-bert": _squad,
}

_SCRIPTS = {"imagenet-resnet50": _VISION, "imagenet-torchvision": _VISION, "openimages-retinanet": _VISION,
            "squad-bert": _BERT}  # fmt: skip


# -- the folder and its record -------------------------------------------------------------------------
def _record_problem(folder: Path, plan: Plan, digest: str, outputs: Sequence[_Output]) -> str | None:
    """Why ``folder`` does not hold these outputs for this run (``None`` when it does)."""
    doc = load_json(folder / HARNESS_FILE)
    if doc is None:
        return f"no {HARNESS_FILE}"
    source = doc.get("source")
    made_from = source.get("digest") if isinstance(source, dict) else None
    if doc.get("schema") != _SCHEMA or doc.get("key") != plan.key or made_from != digest:
        return "made for another preprocessing run"
    try:
        tree = TreeRecord.from_json(dict(doc["tree"]))
    except (KeyError, TypeError, ValueError, IndexError):
        return f"unreadable {HARNESS_FILE}"
    wanted = {o.path for o in outputs if o.kind == "file"}, {o.path for o in outputs if o.kind == "link"}
    if (set(tree.files), set(tree.links)) != wanted:
        return "another set of files"
    for rel, want in tree.files.items():
        try:
            st = (folder / rel).stat()
        except OSError:
            return f"missing {rel}"
        if (st.st_size, st.st_mtime_ns, st.st_ino) != (want.size, want.mtime_ns, want.ino):
            got = hash_tree(folder / rel).files[Path(rel).name]
            if (got.size, got.xxh3_128) != (want.size, want.xxh3_128):
                return f"changed {rel}"
    for rel, target in tree.links.items():
        if not os.path.islink(folder / rel) or os.readlink(folder / rel) != target:
            return f"changed link {rel}"
    for out in outputs:
        if out.kind == "folder" and not (folder / out.path).is_dir():
            return f"missing folder {out.path}"
    return None


def _write(folder: Path, plan: Plan, digest: str, outputs: Sequence[_Output]) -> TreeRecord:
    """Write ``outputs`` into ``folder`` (each through a temp name and one rename), then the record."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / HARNESS_FILE).unlink(missing_ok=True)  # until the record is rewritten, the folder is not valid
    tree = TreeRecord("dir")
    for out in outputs:
        dest = folder / out.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        if out.kind == "folder":
            dest.mkdir(exist_ok=True)
            continue
        tmp = temp_name(dest)
        try:
            if out.write is not None:
                out.write(tmp)
            else:
                os.symlink(str(out.target), tmp)
            os.replace(tmp, dest)
        finally:
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
        if out.kind == "link":
            tree.links[out.path] = os.readlink(dest)
        else:
            made = hash_tree(dest).files[dest.name]
            tree.files[out.path] = TreeFile(made.size, made.xxh3_128, made.mtime_ns, made.ino)
    record = {
        "schema": _SCHEMA,
        "benchmark": plan.benchmark.name,
        "recipe": plan.recipe.name,
        "key": plan.key,
        "source": {"path": str(plan.path), "digest": digest},
        "tree": tree.to_json(),
        "provision": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    atomic_write_text(folder / HARNESS_FILE, json.dumps(record, indent=1) + "\n")
    return tree


def _files(outputs: Sequence[_Output], tree: TreeRecord) -> list[HarnessFile]:
    files = []
    for out in outputs:
        if out.kind == "file":
            made = tree.files[out.path]
            files.append(HarnessFile(out.path, "file", out.read_as, size=made.size, xxh3_128=made.xxh3_128))
        elif out.kind == "link":
            files.append(HarnessFile(out.path, "link", out.read_as, target=tree.links[out.path]))
        else:
            files.append(HarnessFile(out.path, "folder", out.read_as))
    return files


# -- the orchestration ---------------------------------------------------------------------------------
def _recipe_of(catalog: Catalog, bench: Benchmark, model: str) -> str | None:
    spec = catalog.artifacts[model].preprocess or bench.preprocess
    return spec.recipe if spec is not None else None


def _choose(catalog: Catalog, name: str, model: str | None) -> tuple[Benchmark, Artifact, str]:
    entry = catalog.get(name)
    if not isinstance(entry, Benchmark):
        raise UsageError(f"{name!r} is a {entry.kind}; 'provision harness' takes a benchmark (see 'provision list')")
    if model is not None and model not in entry.models:
        raise UsageError(f"{entry.name} has no model {model!r}; its models: {', '.join(entry.models) or 'none'}")
    chosen = model or (entry.models[0] if entry.models else None)
    if chosen is None:
        raise UsageError(f"{entry.name} names no model; the MLPerf reference harness runs one")
    recipe = _recipe_of(catalog, entry, chosen)
    if recipe not in _STORIES:
        known = sorted(
            b.name for b in catalog.benchmarks.values() if any(_recipe_of(catalog, b, m) in _STORIES for m in b.models)
        )
        raise UsageError(
            f"{entry.name}: no MLPerf reference-harness story for its preprocessing ({recipe or 'none'}) yet; "
            f"'provision harness' knows {', '.join(known) or 'none'}"
        )
    return entry, catalog.artifacts[chosen], recipe


def _model_path(store: Store, model: Artifact, settings: Settings) -> Path:
    fetched = as_fetched(model, LockFile(settings.lock_path))
    if store.usage(fetched)["state"] != "present":
        where = str(store.artifact_dir(model.name))
        raise NotFetchedError(f"model {model.name} is not fetched; run 'provision fetch {model.name}'", path=where)
    return store.artifact_dir(model.name) / _model_file(model)


def _inference(inference: Path | None, recipe: str) -> str:
    if inference is None:
        return INFERENCE
    folder = Path(inference).expanduser().resolve()
    if not (folder / _SCRIPTS[recipe]).is_dir():
        raise UsageError(
            f"--inference {inference}: no {_SCRIPTS[recipe]}/ under it; expected a checkout of "
            "https://github.com/mlcommons/inference"
        )
    return str(folder)


def harness(
    catalog: Catalog,
    name: str,
    settings: Settings,
    *,
    model: str | None = None,
    subset: str | None = None,
    inference: Path | None = None,
    progress: Progress | None = None,
) -> HarnessReport:
    """The reference-harness commands for benchmark ``name`` on this cache's preprocessed outputs, writing
    (or reusing) what the reference needs beside them; see the module docstring.

    :class:`UsageError` (exit 2) for a benchmark or model without a story; :class:`NotFetchedError`
    (exit 3) when the model is not fetched or the outputs are not made for the current key.
    """
    progress = progress or NullProgress()
    bench, chosen, recipe = _choose(catalog, name, model)
    prefix = _inference(inference, recipe)
    plan = make_plan(catalog, bench.name, settings, subset=subset, progress=progress, model=chosen.name)
    run = valid_run(plan, progress)
    if run is None:
        sub = f" --subset {subset}" if subset else ""
        mod = f" --model {model}" if model else ""
        raise NotFetchedError(
            f"{bench.name} is not preprocessed for this input/recipe/library set (key {plan.key[:16]} in {plan.root}); "
            f"run 'provision preprocess {bench.name}{mod}{sub}' first",
            path=str(plan.path),
        )
    store = Store(settings.cache_dir)
    folder = plan.root / f"{plan.key[:16]}{HARNESS_SUFFIX}"
    ctx = _Context(bench, chosen, _model_path(store, chosen, settings), plan, run, folder, prefix)
    story = _STORIES[recipe](ctx)
    report = HarnessReport(
        benchmark=bench.name,
        model=chosen.name,
        recipe=recipe,
        reference=story.reference,
        profile=story.profile,
        backend=story.backend,
        preprocessed=plan.path,
        key=plan.key,
        items=int(run.get("items", 0)),
        folder=folder if story.outputs else None,
        state="none",
        inference=prefix if inference is not None else None,
        commands=list(story.commands),
        notes=list(story.notes),
    )
    if not story.outputs:
        return report
    digest = str(run.get("output", {}).get("digest", ""))
    with store.lock(f"harness--{bench.name}--{plan.key[:16]}", settings.lock_timeout, progress.note):
        problem = _record_problem(folder, plan, digest, story.outputs)
        if problem is None:
            report.state = "cached"
        else:
            if (folder / HARNESS_FILE).exists():
                report.notes.insert(0, f"{folder} did not match its {HARNESS_FILE} ({problem}): written again")
            _write(folder, plan, digest, story.outputs)
            report.state = "written"
        doc = load_json(folder / HARNESS_FILE) or {}
    try:
        tree = TreeRecord.from_json(dict(doc["tree"]))
    except (KeyError, TypeError, ValueError, IndexError):  # pragma: no cover - just written under the lock
        raise IntegrityError(f"{folder / HARNESS_FILE}: unreadable right after writing it", path=str(folder)) from None
    report.files = _files(story.outputs, tree)
    return report
