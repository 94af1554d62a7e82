"""Generative validation end to end on the CPU: a tiny random Llama checkpoint folder, a tiny
``cnn_eval.json`` in the MLPerf format, ``provision validate`` with the transformers engine.

Every score is compared with an independent computation in the test: greedy generation with
transformers called directly (one prompt at a time, no padding) and ROUGE computed as the MLPerf
``evaluation.py`` defines it (rouge_score with stemming on nltk-split texts, mean x100 rounded to
4 decimals; gen_len the characters of the split texts).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ManifestWriter, dataset_toml
from llmkit import CORPUS, greedy_direct, legacy_frame, tiny_llama
from typer.testing import CliRunner

from provision import api
from provision.cli.app import app
from provision.config import Settings
from provision.errors import EXIT_ACCURACY, MissingDependencyError, UsageError
from provision.validation.validate import ValidateOptions

pytest.importorskip("transformers")
pytest.importorskip("rouge_score")

runner = CliRunner()
MAX_NEW = 10
ARTICLES = [CORPUS[i % len(CORPUS)] + f" item {i} ." for i in range(12)]
HIGHLIGHTS = [CORPUS[(i + 1) % len(CORPUS)] for i in range(12)]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("llama") / "ckpt"
    tiny_llama(folder)
    return folder


@pytest.fixture(autouse=True)
def punkt(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """nltk's punkt_tab for English with empty parameter files: sent_tokenize then splits at every
    '.', '!' and '?' followed by a space (the real data cannot be downloaded here)."""
    import nltk

    root = tmp_path_factory.getbasetemp() / "nltk_data"
    english = root / "tokenizers" / "punkt_tab" / "english"
    english.mkdir(parents=True, exist_ok=True)
    for name in ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab"):
        (english / name).touch()
    monkeypatch.setattr(nltk.data, "path", [str(root), *nltk.data.path])
    yield
    # nltk caches the loaded punkt model: later tests must not find this stand-in
    nltk.tokenize._get_punkt_tokenizer.cache_clear()
    nltk.data._resource_cache.clear()


def _prompts(checkpoint: Path) -> list[list[int]]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(checkpoint))
    instruction = "summarize the following news article in 128 tokens ."
    return [tok.encode(f"{instruction}\n\narticle :\n{a}\n\nsummary :") for a in ARTICLES]


def _bench(
    tmp_path: Path,
    write_manifest: ManifestWriter,
    checkpoint: Path,
    *,
    name: str = "tinysum",
    ratio: float = 0.99,
    references: dict[str, float] | None = None,
    generation: str = "",
    extra_accuracy: str = "",
) -> list[list[int]]:
    """A summarisation benchmark shaped like llama3.1-8b: cnn_eval.json, a huggingface checkpoint."""
    prompts = _prompts(checkpoint)
    rows = [
        {"instruction": "summarize", "input": a, "tok_input": p, "output": h}
        for a, p, h in zip(ARTICLES, prompts, HIGHLIGHTS, strict=True)
    ]
    data = tmp_path / "cnn_eval.json"
    data.write_text(json.dumps(rows), encoding="utf-8")
    files = sorted(p for p in checkpoint.iterdir() if p.is_file())
    model = dataset_toml(f"{name}-ckpt", [(p.name, [str(p)], p.read_bytes(), None) for p in files], kind="model")
    model = model.replace('format = "onnx"', 'format = "huggingface"').replace("schema = 1\n", "")
    refs = references or {"rouge1": 1.0, "rouge2": 0.0001, "rougel": 1.0, "rougelsum": 1.0, "gen_len": 10.0}
    accuracy = ""
    for metric, reference in refs.items():
        accuracy += f'[[benchmark.accuracy]]\nmetric = "{metric}"\nreference = {reference}\ntarget_ratio = [{ratio}]\n'
        if metric == "gen_len":
            accuracy += "upper = 1e9\n"
    write_manifest(
        dataset_toml(f"{name}-data", [("cnn_eval.json", [str(data)], data.read_bytes(), None)])
        + model
        + f'[[benchmark]]\nname = "{name}"\ndataset = "{name}-data"\nmodels = ["{name}-ckpt"]\n'
        + f"dataset_size = {len(rows)}\n"
        + f'[benchmark.generation]\ntask = "summarization"\nfile = "cnn_eval.json"\nmax_new_tokens = {MAX_NEW}\n'
        + 'dtype = "float32"\n'
        + generation
        + accuracy
        + extra_accuracy,
        name=name,
    )
    return prompts


def _expected(checkpoint: Path, prompts: list[list[int]]) -> dict[str, Any]:
    """The MLPerf evaluation.py scores of greedy generations made by transformers directly."""
    import nltk
    from rouge_score import rouge_scorer
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(checkpoint))
    generated = greedy_direct(checkpoint, prompts, MAX_NEW)
    preds = [tok.decode(ids, skip_special_tokens=True) for ids in generated]
    preds = ["\n".join(nltk.sent_tokenize(p.strip())) for p in preds]
    targets = ["\n".join(nltk.sent_tokenize(t.strip())) for t in HIGHLIGHTS[: len(prompts)]]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    per = [scorer.score(t, p) for t, p in zip(targets, preds, strict=True)]
    out: dict[str, Any] = {
        m: round(float(np.mean([s[k].fmeasure for s in per])) * 100, 4)
        for m, k in (("rouge1", "rouge1"), ("rouge2", "rouge2"), ("rougel", "rougeL"), ("rougelsum", "rougeLsum"))
    }
    out["gen_len"] = sum(len(p) for p in preds)
    out["tokens"] = sum(len(g) for g in generated)
    return out


def _fetch(settings: Settings, name: str = "tinysum") -> None:
    report = api.fetch([name], settings)
    assert report.ok, report.failures


def test_summarization_scores_equal_the_mlperf_definition(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, checkpoint: Path
) -> None:
    prompts = _bench(tmp_path, write_manifest, checkpoint)
    _fetch(settings)
    want = _expected(checkpoint, prompts)
    report = api.validate("tinysum", settings, options=ValidateOptions(device="cpu", batch_size=5, engine="auto"))
    got = {m["metric"]: m["value"] for m in report.metrics}
    assert got == pytest.approx({k: v for k, v in want.items() if k != "tokens"}, abs=1e-9)
    assert report.metric == "rouge1" and report.value == pytest.approx(want["rouge1"])
    assert report.full_set and report.samples == len(prompts)
    assert report.runtime["engine"] == "transformers" and report.runtime["dtype"] == "float32"
    assert report.tokens is not None and report.tokens["generated_tokens"] == want["tokens"]
    assert report.tokens["prompt_tokens"] == sum(len(p) for p in prompts)
    assert report.tokens["generated_tokens_per_second"] > 0
    assert report.generation is not None and report.generation["max_new_tokens"] == MAX_NEW
    # the stored record holds the same, and a second run with the same key finds it
    stored = json.loads(Path(report.record).read_text(encoding="utf-8"))
    assert stored["metrics"] == report.metrics and stored["tokens"] == report.tokens


def test_the_checkpoints_generation_config_does_not_change_what_runs(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, checkpoint: Path
) -> None:
    # a checkpoint whose generation_config.json asks for a repetition penalty and an n-gram ban:
    # transformers would apply both to every call that leaves them unset; the spec alone decides
    import shutil

    polluted = tmp_path / "polluted"
    shutil.copytree(checkpoint, polluted)
    config_file = polluted / "generation_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config.update(repetition_penalty=100.0, no_repeat_ngram_size=1)
    config_file.write_text(json.dumps(config), encoding="utf-8")
    prompts = _bench(tmp_path, write_manifest, polluted)
    _fetch(settings)
    want = _expected(checkpoint, prompts)
    report = api.validate(
        "tinysum", settings, options=ValidateOptions(device="cpu", batch_size=4, engine="transformers")
    )
    assert report.tokens is not None and report.tokens["generated_tokens"] == want["tokens"]
    assert {m["metric"]: m["value"] for m in report.metrics}["rouge1"] == pytest.approx(want["rouge1"], abs=1e-9)


def test_every_target_is_judged_and_one_failure_fails_the_run(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, checkpoint: Path
) -> None:
    prompts = _bench(tmp_path, write_manifest, checkpoint)
    want = _expected(checkpoint, prompts)
    # rouge2's reference far above what the random model reaches: everything else passes
    refs = {"rouge1": want["rouge1"], "rouge2": 99.0, "rougel": want["rougel"], "gen_len": want["gen_len"]}
    _bench(tmp_path, write_manifest, checkpoint, references=refs)
    _fetch(settings)
    report = api.validate("tinysum", settings, options=ValidateOptions(device="cpu", batch_size=4))
    verdicts = {m["metric"]: m["passed"] for m in report.metrics}
    assert verdicts == {"rouge1": True, "rouge2": False, "rougel": True, "gen_len": True}
    assert not report.passed
    result = runner.invoke(app, ["validate", "tinysum", "--device", "cpu", "--engine", "transformers"])
    assert result.exit_code == EXIT_ACCURACY, result.output
    assert "rouge2" in result.stdout and "FAIL" in result.stdout


def test_a_subset_gets_an_interval_per_metric_and_gen_len_is_projected(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, checkpoint: Path
) -> None:
    prompts = _bench(tmp_path, write_manifest, checkpoint)
    _fetch(settings)
    report = api.validate("tinysum", settings, options=ValidateOptions(device="cpu", count=6))
    assert report.samples == 6 and not report.full_set
    want = _expected(checkpoint, prompts[:6])  # the first 6 samples, scored alone
    by = {m["metric"]: m for m in report.metrics}
    assert by["rouge1"]["value"] == pytest.approx(want["rouge1"])
    for m in report.metrics:
        assert m["interval"] is not None and m["interval_method"] == "bootstrap", m
    lo, hi = by["gen_len"]["interval"]
    assert lo <= want["gen_len"] / 6 * 12 <= hi  # the mean's interval times the 12 samples of the full set
    assert any("projected to 12 samples" in n for n in report.notes)


def test_an_upper_bound_alone(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, checkpoint: Path
) -> None:
    """gpt-oss-120b's shape: tokens_per_sample capped, with no floor."""
    prompts = _bench(tmp_path, write_manifest, checkpoint)
    want = _expected(checkpoint, prompts)
    tps = round(want["tokens"] / len(prompts), 1)
    for upper, ok in ((tps + 1, True), (tps - 0.5, False)):
        cap = f'[[benchmark.accuracy]]\nmetric = "tokens_per_sample"\nupper = {upper}\n'
        _bench(tmp_path, write_manifest, checkpoint, references={"rouge1": want["rouge1"]}, extra_accuracy=cap)
        _fetch(settings)
        report = api.validate("tinysum", settings, options=ValidateOptions(device="cpu"))
        got = next(m for m in report.metrics if m["metric"] == "tokens_per_sample")
        assert (got["value"], got["targets"], got["upper_passed"], got["passed"], report.passed) == (
            tps,
            [],
            ok,
            ok,
            ok,
        )


def test_engine_choice_and_missing_engines(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, checkpoint: Path
) -> None:
    _bench(tmp_path, write_manifest, checkpoint)
    _fetch(settings)
    with pytest.raises(UsageError, match="--engine vllm runs on a CUDA device"):
        api.validate("tinysum", settings, options=ValidateOptions(device="cpu", engine="vllm"))
    with pytest.raises(UsageError, match="engine 'tgi' is not one of auto, vllm, transformers"):
        api.validate("tinysum", settings, options=ValidateOptions(device="cpu", engine="tgi"))
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        with pytest.raises(MissingDependencyError, match=r"pip install 'provision\[vllm\]'"):
            api.validate("tinysum", settings, options=ValidateOptions(device="auto", engine="vllm"))


def test_run_skips_preprocessing_and_audit_records_the_engine(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, checkpoint: Path
) -> None:
    _bench(tmp_path, write_manifest, checkpoint)
    report = api.run("tinysum", settings, options=ValidateOptions(device="cpu", batch_size=6))
    stages = {s.name: s for s in report.stages}
    assert stages["preprocess"].state == "skipped" and "published dataset file" in stages["preprocess"].detail
    assert stages["validate"].state in ("done", "failed") and report.validation is not None
    again = api.run("tinysum", settings, options=ValidateOptions(device="cpu", batch_size=6))
    assert {s.name: s.state for s in again.stages}["validate"] == "cached"  # same key: the stored result

    audit = api.audit("tinysum", settings)
    (stored,) = audit["validation"]
    assert stored["runtime"]["engine"] == "transformers" and stored["runtime"]["dtype"] == "float32"
    assert stored["generation"]["max_new_tokens"] == MAX_NEW and stored["tokens"]["generated_tokens"] > 0

    # another machine's audit that generated with other settings and got another rouge2
    other = json.loads(json.dumps(audit))
    other["validation"][0]["generation"]["max_new_tokens"] = MAX_NEW + 5
    other["validation"][0]["metrics"][1]["value"] = stored["metrics"][1]["value"] + 1.0
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(audit), encoding="utf-8")
    b.write_text(json.dumps(other), encoding="utf-8")
    diff = api.audit_diff(a, b)
    text = "\n".join(f"{f.category}: {f.title} {' '.join(f.details)}" for f in diff.findings)
    assert "validation: validation of tinysum-ckpt" in text and "max_new_tokens" in text, text
    assert f"validation: {stored['metrics'][1]['metric']} differs" in text, text


def test_generation_settings_are_checked_in_the_manifest(
    tmp_path: Path, write_manifest: ManifestWriter, manifests: Path, checkpoint: Path
) -> None:
    from provision.manifest.parse import lint

    bad = 'temperature = -1\ntop_p = 0\nstop_token_ids = ["eos"]\nseed = 1.5\nbeams = 2\n'
    _bench(tmp_path, write_manifest, checkpoint, generation=bad)
    found = "\n".join(lint([manifests]))
    for fragment in (
        "generation: temperature: expected a number >= 0, got -1",
        "generation: top_p: expected a number in (0, 1], got 0",
        "generation: stop_token_ids: expected a list of token ids",
        "generation: seed: expected an integer >= 0, got 1.5",
        "generation: unknown key 'beams'",
    ):
        assert fragment in found, found


def test_a_wrong_dtype_or_a_task_this_version_lacks_is_one_line(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, checkpoint: Path
) -> None:
    _bench(tmp_path, write_manifest, checkpoint)
    _fetch(settings)
    with pytest.raises(UsageError, match="dtype 'int4' is not one of auto, float32, float16, bfloat16"):
        api.validate("tinysum", settings, options=ValidateOptions(device="cpu", dtype="int4"))
    _bench(tmp_path, write_manifest, checkpoint, name="tinysum", generation="")
    text = (settings.manifest_dirs[0] / "tinysum.toml").read_text(encoding="utf-8")
    (settings.manifest_dirs[0] / "tinysum.toml").write_text(
        text.replace('task = "summarization"', 'task = "translation"'), encoding="utf-8"
    )
    with pytest.raises(UsageError, match="no generative validation task 'translation' in this version of provision"):
        api.validate("tinysum", settings, options=ValidateOptions(device="cpu"))


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs a CUDA device")
def test_vllm_and_transformers_agree_on_a_gpu(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, checkpoint: Path
) -> None:
    """The reference SUTs' engine: vLLM's greedy ids equal transformers' on the same GPU (float32)."""
    pytest.importorskip("vllm", reason="needs vllm (pip install 'provision[vllm]')")
    prompts = _bench(tmp_path, write_manifest, checkpoint)
    _fetch(settings)
    want = _expected(checkpoint, prompts)
    hf = api.validate("tinysum", settings, options=ValidateOptions(device="cuda", engine="transformers"))
    vl = api.validate("tinysum", settings, options=ValidateOptions(device="cuda", engine="vllm"))
    assert vl.runtime["engine"] == "vllm" and hf.runtime["engine"] == "transformers"
    assert [m["value"] for m in vl.metrics] == [m["value"] for m in hf.metrics]
    assert vl.value == pytest.approx(want["rouge1"])
    assert api.validate("tinysum", settings, options=ValidateOptions(device="auto")).runtime["engine"] == "vllm"


def test_a_checkpoint_benchmark_without_generation_settings_says_so(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, checkpoint: Path
) -> None:
    _bench(tmp_path, write_manifest, checkpoint)
    path = settings.manifest_dirs[0] / "tinysum.toml"
    text = path.read_text(encoding="utf-8")
    start, end = text.index("[benchmark.generation]"), text.index("[[benchmark.accuracy]]")
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    with pytest.raises(UsageError, match=r"tinysum has no \[benchmark.generation\] table"):
        api.validate("tinysum", settings)
    stage = {s.name: s for s in api.run("tinysum", settings).stages}.get("validate")
    assert stage is not None and stage.state == "skipped" and "no [benchmark.generation]" in stage.detail


def test_open_orca_pickle_scores_rouge_and_the_tokens_window(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, checkpoint: Path
) -> None:
    """llama2-70b's shape: a gzipped pandas pickle (tok_input as int arrays), ROUGE-1/2/L and a
    tokens_per_sample window (reference x 0.9 .. upper), each judged."""
    import gzip

    prompts = _prompts(checkpoint)
    frame: Any = legacy_frame(
        {
            "system_prompt": ["" for _ in prompts],
            "question": ARTICLES,
            "tok_input": [np.array(p, dtype=np.int64) for p in prompts],
            "output": HIGHLIGHTS,
        }
    )
    data = tmp_path / "open_orca.pkl.gz"
    with gzip.open(data, "wb") as handle:
        frame.to_pickle(handle)
    want = _expected(checkpoint, prompts)
    tps = round(want["tokens"] / len(prompts), 1)
    files = sorted(p for p in checkpoint.iterdir() if p.is_file())
    model = dataset_toml("orca-ckpt", [(p.name, [str(p)], p.read_bytes(), None) for p in files], kind="model")
    model = model.replace('format = "onnx"', 'format = "huggingface"').replace("schema = 1\n", "")
    accuracy = "".join(
        f'[[benchmark.accuracy]]\nmetric = "{m}"\nreference = {want[m]}\ntarget_ratio = [0.99, 0.999]\n'
        for m in ("rouge1", "rouge2", "rougel")
    )
    accuracy += f'[[benchmark.accuracy]]\nmetric = "tokens_per_sample"\nreference = {tps}\ntarget_ratio = [0.9]\n'
    accuracy += f"upper = {tps * 1.1}\n"
    write_manifest(
        dataset_toml("orca-data", [(data.name, [str(data)], data.read_bytes(), None)])
        + model
        + '[[benchmark]]\nname = "orca"\ndataset = "orca-data"\nmodels = ["orca-ckpt"]\n'
        + f"dataset_size = {len(prompts)}\n"
        + f'[benchmark.generation]\ntask = "summarization"\nfile = "{data.name}"\nmax_new_tokens = {MAX_NEW}\n'
        + 'dtype = "float32"\n'
        + accuracy,
        name="orca",
    )
    _fetch(settings, "orca")
    report = api.validate("orca", settings, options=ValidateOptions(device="cpu", batch_size=5))
    got = {m["metric"]: (m["value"], m["passed"]) for m in report.metrics}
    assert got == {
        "rouge1": (pytest.approx(want["rouge1"]), True),
        "rouge2": (pytest.approx(want["rouge2"]), True),
        "rougel": (pytest.approx(want["rougel"]), True),
        "tokens_per_sample": (tps, True),
    }
    assert report.passed and [t["ratio"] for t in report.targets] == [0.99, 0.999]


def test_a_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    import os
    import pickle

    from provision.errors import IntegrityError
    from provision.validation.tasks.records import read_rows

    class Payload:
        def __reduce__(self) -> tuple[Any, tuple[str]]:
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(IntegrityError, match=r"evil.pkl: the pickle asks for posix.system"):
        read_rows(path, ["tok_input"])
    assert not (tmp_path / "pwned").exists()
