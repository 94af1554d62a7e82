"""Manifests (format v1): TOML files parsed once into frozen, typed dataclasses.

A manifest file holds ``schema = 1`` and any number of ``[[dataset]]``, ``[[model]]``
and ``[[benchmark]]`` tables. Every problem found is a one-line message naming the
file, the entry and the field; :func:`load_catalog` raises :class:`ManifestError`
holding all of them, :func:`lint` returns them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from provision.errors import UnknownNameError, UsageError
from provision.manifest.checksum import Checksum

__all__ = [
    "ARCHIVE_FORMATS",
    "GENERATION_DTYPES",
    "KNOWN_METRICS",
    "MODEL_FORMATS",
    "SCHEMA_VERSION",
    "SUITES",
    "AccuracySpec",
    "Artifact",
    "Benchmark",
    "Catalog",
    "ExtractSpec",
    "FileSpec",
    "GenerationSpec",
    "LabelsRef",
    "PreprocessSpec",
    "QualitySpec",
    "RuntimeSpec",
    "round_key",
]

SCHEMA_VERSION = 1

#: ``suite =`` values: MLPerf Inference (the default) or MLPerf Training.
SUITES = ("inference", "training")


def round_key(name: str) -> tuple[int, ...]:
    """``"v6.1"`` -> ``(6, 1)``, for ordering rounds (``v4.0`` < ``v5.1`` < ``v6.0``)."""
    return tuple(int(part) for part in name.lstrip("v").split("."))


MODEL_FORMATS = frozenset(
    {
        "onnx",
        "pytorch",
        "torchscript",
        "tensorflow",
        "tflite",
        "safetensors",
        "ncnn",
        "openvino",
        "tensorrt",
        "huggingface",
        "other",
    }
)

KNOWN_METRICS = frozenset(
    {
        "top1",
        "map",
        "f1",
        "exact_match",
        "dice",
        "wer",
        "accuracy",
        "auc",
        "rouge1",
        "rouge2",
        "rougel",
        "rougelsum",
        "gen_len",
        "tokens_per_sample",
        "clip_score",
        "fid_score",
        "gsm8k",
        "mbxp",
        "vbench_score",
        "f1_hierarchical",
        "dlrm_ne",
        "dlrm_acc",
        "dlrm_auc",
        "node_accuracy",
        "e2e_accuracy",
        "bfcl_accuracy",
        "waymo_map",
    }
)

URL_SCHEMES = ("http", "https", "file", "manual", "hf", "hf-dataset", "mlc-r2", "s3")
#: The most bytes a manifest may declare for one file or extraction (1 PiB; more is a typo).
MAX_SIZE = 1 << 50
ACCESS_LEVELS = ("public", "registration", "gated", "members")


#: ``extract =`` values; ``auto`` detects the format from the file's magic bytes.
ARCHIVE_FORMATS = ("tar", "tar.gz", "tar.bz2", "tar.xz", "tar.zst", "zip", "gz", "bz2", "xz", "zst", "auto")
#: Formats that hold one compressed stream (a single file), not a tree.
SINGLE_FILE_FORMATS = frozenset({"gz", "bz2", "xz", "zst"})


@dataclass(frozen=True)
class ExtractSpec:
    """How to unpack an archive file, and what the result must look like."""

    format: str
    to: str  # folder (or, for gz/bz2/xz/zst, file) inside the artifact folder
    strip_components: int = 0
    members: tuple[str, ...] = ()  # glob patterns on member paths (after stripping)
    extracted_size: int | None = None  # bytes; also the cap against archive bombs
    keep_archive: bool = True
    tree: Checksum | None = None  # xxh3_128 tree digest of ``to``
    expect_files: int | None = None


@dataclass(frozen=True)
class FileSpec:
    """One file of an artifact: where to get it and what it must hash to."""

    name: str
    urls: tuple[str, ...]
    checksum: Checksum
    size: int | None = None
    extract: ExtractSpec | None = None
    trust: str = ""  # with checksum = "unpublished": why, and where the digest will come from
    #: A rounded figure from the sources ("~163 GB" in an R2 manifest), for planning only: ``show``,
    #: ``doctor`` and the disk preflight use it where no exact size is known; it never verifies a byte.
    approx_size: int | None = None
    #: Folder entries: checksums the sources publish for some listed files (``path -> checksum``); a
    #: listing that disagrees, or lacks one, is refused before it is pinned.
    pins: Mapping[str, Checksum] = field(default_factory=lambda: MappingProxyType({}))
    listed_count: int | None = None  # folder entries: how many files the listing must name

    @property
    def planned_size(self) -> int | None:
        """The exact size when published, else the approximate one, else ``None``."""
        return self.size if self.size is not None else self.approx_size

    @property
    def is_folder(self) -> bool:
        """A folder entry (``name = "dir/"``, ``checksum = "listed"``): its source lists the files."""
        return self.name.endswith("/")


@dataclass(frozen=True)
class PreprocessSpec:
    """A registered recipe name plus its parameters (data only, never code)."""

    recipe: str
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class RuntimeSpec:
    """``[model.runtime]``: how ``provision validate`` runs a model (data only, never code).

    ``file`` is the model file inside the artifact (default: its only file); ``inputs`` and
    ``outputs`` name the tensors (default: the model's own, in order); ``offset`` is added to
    predicted class indices (``-1`` for 1001-output ResNet-50 models whose index 0 is
    background); ``architecture`` (``"torchvision:resnet50"``) builds the network that a
    state-dict checkpoint fills; ``golden`` pins the model's exact predictions for the first
    ``len(golden)`` samples (after ``offset``).
    """

    file: str | None = None
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    offset: int = 0
    architecture: str | None = None
    num_classes: int | None = None
    golden: tuple[int, ...] = ()


#: ``[benchmark.generation] dtype`` values: the weights' dtype for generation ("auto" = the config's).
GENERATION_DTYPES = ("auto", "float32", "float16", "bfloat16")


@dataclass(frozen=True)
class GenerationSpec:
    """``[benchmark.generation]``: how the reference implementation generates (data only).

    ``task`` names the validation task that reads, post-processes and scores (``summarization``,
    ``open-orca``, ...: ``provision.validation.tasks.registry.GENERATIVE_TASKS``).
    ``file`` is the dataset file the samples come from (inside the benchmark's dataset folder);
    ``prompt`` the column of pre-tokenised input ids (``tok_input``) or of prompt text;
    ``reference`` the column of the ground truth. ``temperature = 0`` is greedy decoding; with a
    temperature, ``top_p``/``top_k`` (0 = off) and ``seed`` make sampling repeatable on one engine.
    ``stop_token_ids`` empty means the model's own end-of-sequence tokens. ``chat_template`` wraps
    a text prompt in the tokenizer's chat template; ``skip_special_tokens`` is how the scoring
    script decodes. ``max_new_tokens`` is what the accuracy run allows (the reference's
    ``max_tokens``); ``min_new_tokens`` its ``min_tokens``.
    """

    task: str = ""
    file: str = ""
    prompt: str = "tok_input"
    reference: str = "output"
    max_new_tokens: int = 1024
    min_new_tokens: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int = 0
    stop_token_ids: tuple[int, ...] = ()
    chat_template: bool = False
    skip_special_tokens: bool = True
    dtype: str = "auto"

    @property
    def greedy(self) -> bool:
        """Greedy decoding (temperature 0): the same ids on every run of one engine and device."""
        return self.temperature == 0.0

    def to_json(self) -> dict[str, Any]:
        """Every setting, JSON-ready (the result key and the report)."""
        return {**vars(self), "stop_token_ids": list(self.stop_token_ids)}


@dataclass(frozen=True)
class Artifact:
    """A dataset or a model: a named folder of verified files."""

    kind: Literal["dataset", "model"]
    name: str
    files: tuple[FileSpec, ...]
    description: str = ""
    license: str = ""
    homepage: str = ""
    notes: str = ""
    aliases: tuple[str, ...] = ()
    format: str | None = None
    access: str = "public"  # public | registration | gated | members
    preprocess: PreprocessSpec | None = None  # a model that needs another recipe than its benchmark's
    runtime: RuntimeSpec | None = None  # models: how validation runs it
    source: Path | None = field(default=None, compare=False)

    @property
    def size(self) -> int | None:
        """Total bytes, or ``None`` when any file's size is unknown."""
        sizes = [f.size for f in self.files]
        return None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)

    @property
    def planned_size(self) -> tuple[int, int, int]:
        """``(exact bytes, estimated bytes, files of unknown size)``: what a download of it takes, the
        published sizes apart from the approximate figures (``approx_size``)."""
        exact = sum(f.size for f in self.files if f.size is not None)
        estimated = sum(f.approx_size for f in self.files if f.size is None and f.approx_size is not None)
        unknown = sum(1 for f in self.files if f.planned_size is None)
        return exact, estimated, unknown

    @property
    def planned_extracted(self) -> tuple[int, int]:
        """``(bytes the archives extract to, archives of unknown extracted size)``."""
        known = sum(f.extract.extracted_size or 0 for f in self.archives if f.extract is not None)
        return known, sum(1 for f in self.archives if f.extract is not None and f.extract.extracted_size is None)

    @property
    def archives(self) -> tuple[FileSpec, ...]:
        """The files that are extracted."""
        return tuple(f for f in self.files if f.extract is not None)

    def file(self, name: str) -> FileSpec:
        """The file called ``name``; ``KeyError`` otherwise."""
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(name)


@dataclass(frozen=True)
class LabelsRef:
    """``labels = "artifact/file"``: a file of another artifact holding ground truth."""

    artifact: str
    file: str

    def __str__(self) -> str:
        return f"{self.artifact}/{self.file}"


@dataclass(frozen=True)
class AccuracySpec:
    """The metric, its published reference value and the pass ratios (e.g. 0.99, 0.999).

    An upper bound alone (``reference`` None, no ratios) is a limit with no floor: the checker's
    TOKENS_PER_SAMPLE cap of gpt-oss-120b.
    """

    metric: str
    reference: float | None
    target_ratio: tuple[float, ...] = (0.99,)
    upper: float | None = None  # an absolute upper bound (e.g. generation length, FID)
    #: The scenario this target applies to (qwen3-vl's Interactive has its own); "" = every scenario.
    scenario: str = ""

    def targets(self) -> tuple[float, ...]:
        """``reference * ratio`` for each ratio (none for an upper bound alone)."""
        if self.reference is None:
            return ()
        return tuple(self.reference * r for r in self.target_ratio)


@dataclass(frozen=True)
class QualitySpec:
    """A training benchmark's quality target: the run converges when ``metric direction target`` holds
    (e.g. ``log_perplexity <= 3.3``)."""

    metric: str
    target: float
    direction: Literal["<=", ">=", "<", ">"]
    description: str = ""

    def __str__(self) -> str:
        return f"{self.metric} {self.direction} {self.target:g}"


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: a dataset, its labels, reference models, a recipe and a target."""

    name: str
    dataset: str  # the one preprocessing and validation read
    models: tuple[str, ...] = ()
    labels: LabelsRef | None = None
    #: Further datasets fetched with the benchmark (flux.1's evaluation set and empty-prompt encodings).
    extra_datasets: tuple[str, ...] = ()
    preprocess: PreprocessSpec | None = None
    metrics: tuple[AccuracySpec, ...] = ()
    description: str = ""
    notes: str = ""
    aliases: tuple[str, ...] = ()
    status: str = "current"  # current | retired; follows ``rounds`` when they are given (see Catalog)
    dataset_size: int | None = None
    performance_sample_count: int | None = None
    subsets: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # "500" -> dataset
    source: Path | None = field(default=None, compare=False)
    suite: str = "inference"  # inference | training
    rounds: tuple[str, ...] = ()  # the rounds whose checker accepts it, oldest first ("v6.0", "v6.1")
    retired_after: str | None = None  # the last round that accepted it, once a newer round has not
    #: The names the submission checker (or training rules) use for it; each resolves to this benchmark.
    checker_names: tuple[str, ...] = ()
    #: Rounds that accept only some of ``checker_names`` (v6.1 takes llama2-70b-99.9, not -99).
    round_names: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    accuracy_sample_count: int | None = None  # when the accuracy run uses fewer samples than the dataset
    #: Per-scenario accuracy sample counts where a scenario differs (qwen3-vl's Interactive: 8,000).
    scenario_sample_counts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    quality: tuple[QualitySpec, ...] = ()  # training: the convergence target(s)
    generation: GenerationSpec | None = None  # generative benchmarks: the reference's generation settings

    def names_in(self, round_: str) -> tuple[str, ...]:
        """The checker's names for this benchmark in ``round_`` (empty when that round does not accept it)."""
        if round_ not in self.rounds:
            return ()
        return self.round_names.get(round_, self.checker_names or (self.name,))

    @property
    def status_text(self) -> str:
        """``current``, ``retired after v6.0`` or ``retired``."""
        if self.status == "retired" and self.retired_after:
            return f"retired after {self.retired_after}"
        return self.status

    @property
    def accuracy(self) -> AccuracySpec | None:
        """The first (primary) accuracy metric."""
        return self.metrics[0] if self.metrics else None

    def with_subset(self, size: str) -> Benchmark:
        """This benchmark on its ``size`` subset dataset; :class:`UsageError` if none."""
        from dataclasses import replace

        if size not in self.subsets:
            known = ", ".join(sorted(self.subsets, key=lambda k: int(k) if k.isdigit() else 0)) or "none"
            raise UsageError(f"{self.name} has no subset {size!r}; subsets: {known}")
        return replace(self, dataset=self.subsets[size])

    @property
    def artifact_names(self) -> tuple[str, ...]:
        """Dataset, extra datasets, labels artifact and models, in that order, without repeats."""
        names = [self.dataset, *self.extra_datasets]
        if self.labels is not None:
            names.append(self.labels.artifact)
        names.extend(self.models)
        return tuple(dict.fromkeys(names))


Entry = Artifact | Benchmark


class Catalog:
    """Every artifact and benchmark of a set of manifests, by name and alias."""

    def __init__(self, artifacts: Iterable[Artifact], benchmarks: Iterable[Benchmark]) -> None:
        self.artifacts: dict[str, Artifact] = {a.name: a for a in artifacts}
        benchmarks = list(benchmarks)
        #: The newest round of each suite that any benchmark names: what "current" means.
        self.latest_round: dict[str, str] = {}
        for b in benchmarks:
            for r in b.rounds:
                if b.suite not in self.latest_round or round_key(r) > round_key(self.latest_round[b.suite]):
                    self.latest_round[b.suite] = r
        self.benchmarks: dict[str, Benchmark] = {b.name: self._with_status(b) for b in benchmarks}
        self._aliases: dict[str, str] = {}
        for entry in self.entries():
            for alias in entry.aliases:
                self._aliases.setdefault(alias, entry.name)
            if isinstance(entry, Benchmark):
                for alias in entry.checker_names:
                    self._aliases.setdefault(alias, entry.name)

    def _with_status(self, b: Benchmark) -> Benchmark:
        """``b`` with its status following its rounds: current when its suite's newest round accepts it."""
        from dataclasses import replace

        if not b.rounds:
            return b
        last = max(b.rounds, key=round_key)
        if last == self.latest_round.get(b.suite):
            return replace(b, status="current", retired_after=None)
        return replace(b, status="retired", retired_after=last)

    def rounds(self, suite: str | None = None) -> list[str]:
        """Every round the benchmarks (of ``suite``) name, oldest first."""
        found = {r for b in self.benchmarks.values() if suite is None or b.suite == suite for r in b.rounds}
        return sorted(found, key=round_key)

    def entries(self) -> Iterator[Entry]:
        """Datasets and models, then benchmarks, each sorted by name."""
        yield from sorted(self.artifacts.values(), key=lambda a: (a.kind, a.name))
        yield from sorted(self.benchmarks.values(), key=lambda b: b.name)

    def names(self) -> list[str]:
        """All names and aliases."""
        return [*self.artifacts, *self.benchmarks, *self._aliases]

    def get(self, name: str, suite: str | None = None) -> Entry:
        """The entry called ``name`` (or aliased so); :class:`UnknownNameError` otherwise.

        With ``suite``, a benchmark of another suite is a :class:`UsageError` that names the
        benchmarks of ``suite`` spelt alike (``llama3.1-8b`` with ``--suite training`` points at
        ``llama3.1_8b``). Datasets and models belong to no suite and resolve either way.
        """
        if suite is not None and suite not in SUITES:
            raise UsageError(f"--suite {suite!r}: expected one of {', '.join(SUITES)}")
        key = self._aliases.get(name, name)
        if key in self.artifacts:
            return self.artifacts[key]
        if key in self.benchmarks:
            bench = self.benchmarks[key]
            if suite is None or bench.suite == suite:
                return bench
            same_suite = [
                label
                for b in self.benchmarks.values()
                if b.suite == suite
                for label in (b.name, *b.aliases, *b.checker_names)
            ]
            alike = difflib.get_close_matches(name, same_suite, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(s) for s in alike)}?" if alike else ""
            raise UsageError(
                f"{name!r} is an MLPerf {bench.suite} benchmark, not {suite}{hint} "
                f"(see 'provision list --suite {suite}')"
            )
        pool = [n for n in self.names() if suite is None or (b := self._benchmark_of(n)) is None or b.suite == suite]
        raise UnknownNameError(name, difflib.get_close_matches(name, pool, n=3, cutoff=0.5))

    def _benchmark_of(self, label: str) -> Benchmark | None:
        return self.benchmarks.get(self._aliases.get(label, label))

    def resolve(self, names: Iterable[str], subset: str | None = None, suite: str | None = None) -> list[Artifact]:
        """The artifacts the given names stand for (a benchmark expands), without repeats.

        ``subset`` (e.g. ``"500"``) swaps each benchmark's dataset for its subset dataset; ``suite``
        refuses benchmarks of another suite (see :meth:`get`).
        """
        out: dict[str, Artifact] = {}
        for name in names:
            entry = self.get(name, suite)
            if subset is not None:
                if not isinstance(entry, Benchmark):
                    raise UsageError(f"--subset applies to benchmarks; {name!r} is a {entry.kind}")
                entry = entry.with_subset(subset)
            if isinstance(entry, Benchmark):
                for art in entry.artifact_names:
                    out.setdefault(art, self.artifacts[art])
            else:
                out.setdefault(entry.name, entry)
        return list(out.values())
