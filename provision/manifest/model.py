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
    "KNOWN_METRICS",
    "MODEL_FORMATS",
    "SCHEMA_VERSION",
    "AccuracySpec",
    "Artifact",
    "Benchmark",
    "Catalog",
    "ExtractSpec",
    "FileSpec",
    "LabelsRef",
    "PreprocessSpec",
    "RuntimeSpec",
]

SCHEMA_VERSION = 1

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
    """The metric, its published reference value and the pass ratios (e.g. 0.99, 0.999)."""

    metric: str
    reference: float
    target_ratio: tuple[float, ...] = (0.99,)
    upper: float | None = None  # an absolute upper bound (e.g. generation length, FID)

    def targets(self) -> tuple[float, ...]:
        """``reference * ratio`` for each ratio."""
        return tuple(self.reference * r for r in self.target_ratio)


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: a dataset, its labels, reference models, a recipe and a target."""

    name: str
    dataset: str
    models: tuple[str, ...] = ()
    labels: LabelsRef | None = None
    preprocess: PreprocessSpec | None = None
    metrics: tuple[AccuracySpec, ...] = ()
    description: str = ""
    notes: str = ""
    aliases: tuple[str, ...] = ()
    status: str = "current"  # current | retired
    dataset_size: int | None = None
    performance_sample_count: int | None = None
    subsets: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # "500" -> dataset
    source: Path | None = field(default=None, compare=False)

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
        """Dataset, labels artifact and models, in that order, without repeats."""
        names = [self.dataset]
        if self.labels is not None:
            names.append(self.labels.artifact)
        names.extend(self.models)
        return tuple(dict.fromkeys(names))


Entry = Artifact | Benchmark


class Catalog:
    """Every artifact and benchmark of a set of manifests, by name and alias."""

    def __init__(self, artifacts: Iterable[Artifact], benchmarks: Iterable[Benchmark]) -> None:
        self.artifacts: dict[str, Artifact] = {a.name: a for a in artifacts}
        self.benchmarks: dict[str, Benchmark] = {b.name: b for b in benchmarks}
        self._aliases: dict[str, str] = {}
        for entry in self.entries():
            for alias in entry.aliases:
                self._aliases.setdefault(alias, entry.name)

    def entries(self) -> Iterator[Entry]:
        """Datasets and models, then benchmarks, each sorted by name."""
        yield from sorted(self.artifacts.values(), key=lambda a: (a.kind, a.name))
        yield from sorted(self.benchmarks.values(), key=lambda b: b.name)

    def names(self) -> list[str]:
        """All names and aliases."""
        return [*self.artifacts, *self.benchmarks, *self._aliases]

    def get(self, name: str) -> Entry:
        """The entry called ``name`` (or aliased so); :class:`UnknownNameError` otherwise."""
        key = self._aliases.get(name, name)
        if key in self.artifacts:
            return self.artifacts[key]
        if key in self.benchmarks:
            return self.benchmarks[key]
        raise UnknownNameError(name, difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5))

    def resolve(self, names: Iterable[str], subset: str | None = None) -> list[Artifact]:
        """The artifacts the given names stand for (a benchmark expands), without repeats.

        ``subset`` (e.g. ``"500"``) swaps each benchmark's dataset for its subset dataset.
        """
        out: dict[str, Artifact] = {}
        for name in names:
            entry = self.get(name)
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
