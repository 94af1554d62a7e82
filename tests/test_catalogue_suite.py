"""The whole current MLPerf suite in the catalogue: rounds, suites, the checker's names and targets,
training quality targets, and the sizes users plan with (issue 14).

The facts are the tables of ``tests/facts_*.py`` (merged by ``catalogue_facts``), typed from
``../shared/reference/mlperf-more-sources.md`` and the submission checker's ``models`` lists, so
that a typo in a manifest, or a fact silently changed, fails here. Offline; nothing downloaded.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from catalogue_facts import (
    ACCESS,
    ALIASES,
    APPROX_SIZES,
    BENCHMARKS,
    CHECKSUMS,
    FOLDERS,
    LISTED_COUNTS,
    PINS,
    QUALITY,
    TARGETS,
)
from test_catalogue import TARGETS as CORE_TARGETS
from typer.testing import CliRunner

from provision import api
from provision.cli.app import app
from provision.config import Settings, builtin_manifest_dir
from provision.errors import UnknownNameError
from provision.manifest.model import Catalog

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

runner = CliRunner()

# The submission checker's models lists, verbatim (mlcommons/inference @ b66003e, constants.py).
CHECKER_MODELS = {
    "v5.0": [
        "resnet", "retinanet", "bert-99", "bert-99.9", "dlrm-v2-99", "dlrm-v2-99.9", "3d-unet-99",
        "3d-unet-99.9", "gptj-99", "gptj-99.9", "llama2-70b-99", "llama2-70b-99.9", "llama2-70b-interactive-99",
        "llama2-70b-interactive-99.9", "stable-diffusion-xl", "mixtral-8x7b", "llama3.1-405b", "rgat",
        "pointpainting",
    ],
    "v5.1": [
        "resnet", "retinanet", "bert-99", "bert-99.9", "dlrm-v2-99", "dlrm-v2-99.9", "3d-unet-99",
        "3d-unet-99.9", "llama3.1-8b", "llama3.1-8b-edge", "llama2-70b-99", "llama2-70b-99.9",
        "stable-diffusion-xl", "mixtral-8x7b", "llama3.1-405b", "rgat", "pointpainting", "deepseek-r1", "whisper",
    ],
    "v6.0": [
        "resnet", "retinanet", "bert-99", "bert-99.9", "3d-unet-99", "3d-unet-99.9", "llama3.1-8b",
        "llama3.1-8b-edge", "llama2-70b-99", "llama2-70b-99.9", "stable-diffusion-xl", "mixtral-8x7b",
        "llama3.1-405b", "rgat", "pointpainting", "deepseek-r1", "whisper", "gpt-oss-120b", "wan-2.2-t2v-a14b",
        "qwen3-vl-235b-a22b", "dlrm-v3", "yolo-95", "yolo-99",
    ],
    "v6.1": [
        "resnet", "bert-99", "bert-99.9", "3d-unet-99", "3d-unet-99.9", "llama3.1-8b", "llama3.1-8b-edge",
        "llama2-70b-99.9", "stable-diffusion-xl", "rgat", "deepseek-r1", "whisper", "gpt-oss-120b",
        "wan-2.2-t2v-a14b", "qwen3-vl-235b-a22b", "qwen3.6-27b", "dlrm-v3", "yolo-95", "yolo-99", "e2e-rag-qna",
        "e2e-rag-db",
    ],
}  # fmt: skip

# The checker's models not in the catalogue yet (issue 14 stays open for them; see its note): the
# round tests below expect exactly the checker's list less these, so that adding one shrinks this set.
NOT_YET: set[str] = set()

# MLPerf Training v6.1 (mlcommons/training @ aa344c7 README), and v6.0's two that v6.1 dropped.
TRAINING = {
    "v6.1": ["flux.1", "llama3.1_8b", "llama2_70b_lora", "gpt_oss_20b", "deepseekv3", "qwen35_397b_grpo"],
    "v6.0": ["llama3.1_405b", "dlrm_dcnv2"],
}


@pytest.fixture
def catalog() -> Catalog:
    return api.load(Settings.from_env())


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def _raw_benchmarks() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(builtin_manifest_dir().glob("*.toml")):
        for table in tomllib.loads(path.read_text(encoding="utf-8")).get("benchmark", []):
            out[table["name"]] = table
    return out


# ---------------------------------------------------------------------------------------
# every benchmark: suite, rounds, sizes, the checker's names


def test_the_catalogue_is_the_facts_tables(catalog: Catalog) -> None:
    assert set(catalog.benchmarks) == set(BENCHMARKS)


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_suite_rounds_counts_and_checker_names(catalog: Catalog, name: str) -> None:
    b = catalog.benchmarks[name]
    suite, rounds, size, perf, acc, names = BENCHMARKS[name]
    assert (b.suite, b.rounds, b.checker_names) == (suite, rounds, names)
    assert (b.dataset_size, b.performance_sample_count, b.accuracy_sample_count) == (size, perf, acc)
    assert catalog.artifacts[b.dataset].kind == "dataset"
    assert all(catalog.artifacts[m].kind == "model" for m in b.models)
    for label in names:
        assert catalog.get(label).name == name
    if suite == "inference":
        assert b.metrics and not b.quality, f"{name}: an inference benchmark has checker targets"
    else:
        assert b.quality and not b.metrics, f"{name}: a training benchmark has a quality target"


def test_per_scenario_accuracy_counts(catalog: Catalog) -> None:
    """The checker's per-scenario accuracy-sample-count (v6.1 qwen3-vl: Interactive is scored on 8,000)."""
    b = catalog.benchmarks["qwen3-vl-235b-a22b"]
    assert dict(b.scenario_sample_counts) == {"Interactive": 8000}
    assert catalog.artifacts[b.subsets["8000"]].name == "shopify-product-catalogue-8k"
    shown = cli("show", "qwen3-vl-235b-a22b")
    assert "Interactive accuracy sample count 8,000" in shown.stdout


def test_every_benchmark_names_its_rounds_and_lets_them_decide_its_status() -> None:
    for name, table in _raw_benchmarks().items():
        assert table.get("rounds"), f"{name}: no rounds"
        assert "status" not in table, f"{name}: status is decided by rounds"
        assert table.get("checker_names"), f"{name}: no checker names"
        assert table.get("notes"), f"{name}: notes should cite the facts and say where sources disagree"


@pytest.mark.parametrize("round_", sorted(CHECKER_MODELS))
def test_list_round_shows_exactly_what_the_checker_accepts(round_: str) -> None:
    result = cli("list", "--round", round_, "--suite", "inference", "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["entries"]
    names = [n for r in rows for n in r["round_names"][round_]]
    assert sorted(names) == sorted(set(CHECKER_MODELS[round_]) - NOT_YET)
    plain = cli("list", "--round", round_, "--json")  # a round without --suite is Inference's
    assert json.loads(plain.stdout)["entries"] == rows
    assert len(names) == len(set(names))


def test_list_round_text_has_the_checker_names_column() -> None:
    result = cli("list", "--round", "v6.1")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[-2:] == ["CHECKER", "NAMES"]
    row = next(line for line in lines if line.startswith("llama2-70b "))
    assert row.endswith(" llama2-70b-99.9")  # v6.1 takes only the 99.9 variant
    assert "current" in row


def test_status_follows_the_newest_round_of_its_suite(catalog: Catalog) -> None:
    for name, b in catalog.benchmarks.items():
        newest = max(catalog.rounds(b.suite), key=lambda r: tuple(int(p) for p in r[1:].split(".")))
        if newest in b.rounds:
            assert (b.status, b.status_text) == ("current", "current"), name
        else:
            assert b.status == "retired" and b.status_text == f"retired after {b.rounds[-1]}", name
    for retired in {"mixtral-8x7b", "llama3.1-405b", "pointpainting", "retinanet"} - NOT_YET:
        assert catalog.benchmarks[retired].status_text == "retired after v6.0"
    assert catalog.benchmarks["gpt-j"].status_text == "retired after v5.0"


def test_training_rounds_are_training_s() -> None:
    result = cli("list", "--suite", "training", "--round", "v6.1", "--json")
    assert result.exit_code == 0, result.stderr
    assert sorted(r["name"] for r in json.loads(result.stdout)["entries"]) == sorted(TRAINING["v6.1"])


def test_unknown_round_is_a_usage_error_listing_the_known_ones() -> None:
    result = cli("list", "--round", "v9.9")
    assert result.exit_code == 2
    assert "known rounds: v4.0, v5.0, v5.1, v6.0, v6.1" in result.stderr


# ---------------------------------------------------------------------------------------
# accuracy targets (the checker's numbers) and training quality targets


ALL_TARGETS = {**CORE_TARGETS, **TARGETS}


@pytest.mark.parametrize("name", sorted(ALL_TARGETS))
def test_accuracy_targets_match_the_checker(catalog: Catalog, name: str) -> None:
    b = catalog.benchmarks[name]
    got = {m.metric + (f"@{m.scenario}" if m.scenario else ""): m for m in b.metrics}
    assert set(got) == set(ALL_TARGETS[name])
    assert len(b.metrics) == len(got)  # one table per metric (and scenario)
    for key, (lows, upper) in ALL_TARGETS[name].items():
        spec = got[key]
        targets = spec.targets()
        assert len(targets) == len(lows), f"{name}/{key}: ratios {spec.target_ratio}"
        for t, want in zip(targets, lows, strict=True):
            assert math.isclose(t, want, rel_tol=1e-6), f"{name}/{key}: {t} != {want}"
        if upper is None:
            assert spec.upper is None, f"{name}/{key}"
        else:
            assert spec.upper is not None and math.isclose(spec.upper, upper, rel_tol=1e-6), f"{name}/{key}"


def test_every_inference_benchmark_beyond_the_first_eleven_has_its_targets_tabled(catalog: Catalog) -> None:
    inference = {n for n, b in catalog.benchmarks.items() if b.suite == "inference"}
    assert inference == set(TARGETS) | set(CORE_TARGETS)


@pytest.mark.parametrize("name", sorted(QUALITY))
def test_training_quality_targets(catalog: Catalog, name: str) -> None:
    b = catalog.benchmarks[name]
    assert [(q.metric, q.direction, q.target) for q in b.quality] == QUALITY[name]
    assert all(q.description for q in b.quality)


def test_training_benchmarks_are_the_quality_table(catalog: Catalog) -> None:
    training = {n for n, b in catalog.benchmarks.items() if b.suite == "training"}
    assert training == set(QUALITY)
    assert training <= {n for names in TRAINING.values() for n in names}
    result = cli("list", "--suite", "training", "--json")
    assert result.exit_code == 0, result.stderr
    assert {r["name"] for r in json.loads(result.stdout)["entries"]} == training


def test_fetch_with_the_other_suite_is_one_usage_line() -> None:
    wrong = cli("fetch", "llama3.1-8b", "--suite", "training")
    assert wrong.exit_code == 2 and "'llama3.1-8b' is an MLPerf inference benchmark, not training" in wrong.stderr
    assert "Traceback" not in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1
    trained = cli("show", "llama3.1_8b", "--suite", "training")
    assert trained.exit_code == 0, trained.stderr
    assert "MLPerf training, rounds " in trained.stdout and "quality target: log_perplexity <= 3.3" in trained.stdout
    assert "did you mean 'llama3.1_8b'" in wrong.stderr
    shown = cli("show", "resnet", "--suite", "inference")
    assert shown.exit_code == 0 and shown.stdout.startswith("resnet50 (current)")


def test_unknown_name_in_a_suite_suggests_only_that_suite(catalog: Catalog) -> None:
    with pytest.raises(UnknownNameError) as info:
        catalog.get("llama3.1_8", suite="inference")
    assert "llama3.1_8b" not in info.value.suggestions


# ---------------------------------------------------------------------------------------
# artifacts: checksums, folder listings (pins, counts), rounded sizes, access


def _file(catalog: Catalog, artifact: str, name: str) -> Any:
    files = {f.name: f for f in catalog.artifacts[artifact].files}
    assert name in files, f"{artifact}: no file {name!r} (has {sorted(files)})"
    return files[name]


@pytest.mark.parametrize(("artifact", "file", "checksum"), CHECKSUMS, ids=[f"{a}/{f}" for a, f, _ in CHECKSUMS])
def test_checksums(catalog: Catalog, artifact: str, file: str, checksum: str) -> None:
    assert str(_file(catalog, artifact, file).checksum) == checksum


def test_folder_entries_pins_and_counts(catalog: Catalog) -> None:
    for (artifact, folder), url in FOLDERS.items():
        spec = _file(catalog, artifact, folder)
        assert spec.is_folder and spec.urls == (url,), f"{artifact}/{folder}"
        assert spec.listed_count == LISTED_COUNTS.get((artifact, folder)), f"{artifact}/{folder}"
    for (artifact, folder), _count in LISTED_COUNTS.items():
        assert (artifact, folder) in FOLDERS
    pins: dict[tuple[str, str], dict[str, str]] = {}
    for artifact, folder, path, checksum in PINS:
        pins.setdefault((artifact, folder), {})[path] = checksum
    for (artifact, folder), want in pins.items():
        got = {p: str(c) for p, c in _file(catalog, artifact, folder).pins.items()}
        assert got == want, f"{artifact}/{folder}"


def test_rounded_sizes(catalog: Catalog) -> None:
    from facts_core import APPROX_SIZES as CORE_APPROX

    declared = {(a.name, f.name): f.approx_size for a in catalog.artifacts.values() for f in a.files if f.approx_size}
    assert declared == {**CORE_APPROX, **APPROX_SIZES}


def test_access(catalog: Catalog) -> None:
    for artifact, access in ACCESS.items():
        assert catalog.artifacts[artifact].access == access, artifact


@pytest.mark.parametrize(("alias", "name"), sorted(ALIASES.items()))
def test_names_people_type(catalog: Catalog, alias: str, name: str) -> None:
    assert catalog.get(alias).name == name


def test_hub_sources_are_pinned_to_commits(catalog: Catalog) -> None:
    import re

    for art in catalog.artifacts.values():
        for f in art.files:
            for url in f.urls:
                if url.startswith(("hf://", "hf-dataset://")):
                    assert re.search(r"@[0-9a-f]{40}/", url), f"{art.name}/{f.name}: {url}"


# ---------------------------------------------------------------------------------------
# scale facts users plan with: show and the disk preflight state TB-scale sizes


@pytest.mark.parametrize(
    ("name", "at_least"),
    [
        ("rgat", 2.2e12),
        ("dlrm-v3", 1.1e12),
        ("qwen3-vl-235b-a22b", 4.7e11),
        ("deepseek-r1", 6.8e11),
        ("flux.1", 2.4e12),
        ("llama3.1_405b", 1.3e12),
    ],
)
def test_show_states_the_tb_scale_download(name: str, at_least: float) -> None:
    doc = api.describe(name, Settings.from_env())
    planned = doc["planned"]
    assert planned["exact"] + planned["estimated"] >= at_least
    text = cli("show", name)
    assert text.exit_code == 0, text.stderr
    assert "download: ~" in text.stdout and "still needed on disk: download ~" in text.stdout


def test_flux_fetches_the_recommended_pre_encoded_path() -> None:
    """The README's '~2.5TB' pre-encoded path: training set, evaluation set and empty encodings."""
    doc = json.loads(cli("show", "flux.1", "--suite", "training", "--json").stdout)
    assert doc["dataset"] == "flux-1-cc12m-preprocessed"
    assert doc["extra_datasets"] == ["flux-1-coco-preprocessed", "flux-1-empty-encodings"]
    assert [a["name"] for a in doc["artifacts"]] == [doc["dataset"], *doc["extra_datasets"]]
    text = cli("show", "flux.1", "--suite", "training").stdout
    assert "  also fetched: flux-1-coco-preprocessed, flux-1-empty-encodings\n" in text
    row = next(line for line in cli("list", "--markdown").stdout.splitlines() if line.startswith("| `flux.1`"))
    assert "`flux-1-cc12m-preprocessed` + `flux-1-coco-preprocessed` + `flux-1-empty-encodings`" in row


def test_an_upper_bound_alone_is_shown_without_a_floor() -> None:
    text = cli("show", "gpt-oss-120b").stdout
    assert "  accuracy: exact_match reference 83.13; pass at >= 82.2987 (99%)\n" in text
    assert "  accuracy: tokens_per_sample at most 10998.9 (no lower bound)\n" in text
    row = next(line for line in cli("list", "--markdown").stdout.splitlines() if line.startswith("| `gpt-oss-120b`"))
    assert "exact_match ≥ 82.2987; tokens_per_sample ≤ 10998.9 |" in row
    (cap,) = [m for m in json.loads(cli("show", "gpt-oss-120b", "--json").stdout)["metrics"] if m["upper"]]
    assert (cap["reference"], cap["target_ratio"], cap["targets"], cap["upper"]) == (None, [], [], 10998.9)


def test_readme_catalogue_table_is_list_markdown() -> None:
    """README's table is ``provision list --markdown``: after a manifest change, paste its output there."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    begin, end = "<!-- catalogue:begin -->\n", "<!-- catalogue:end -->"
    table = readme[readme.index(begin) + len(begin) : readme.index(end)]
    result = cli("list", "--markdown")
    assert result.exit_code == 0, result.stderr
    assert table == result.stdout
