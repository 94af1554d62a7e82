"""Mixed generative sets (mixtral-8x7b, llama3.1-405b, deepseek-r1, gpt-oss-120b) on the CPU.

The answer extraction is checked on hand-written generations against what the reference scripts'
definitions give for each (worked out in the comments); the tasks end to end on a tiny random
Llama whose vocabulary holds answer-like words, each score compared with an independent
computation in the test (greedy generation with transformers called directly, scored from the
script's definition written out here).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ManifestWriter, dataset_toml
from llmkit import CORPUS, greedy_direct, legacy_frame, tiny_llama
from test_generative import punkt  # noqa: F401  (autouse: a stand-in for nltk's punkt data)

from provision import api
from provision.config import Settings
from provision.errors import UsageError
from provision.validation.metrics import answers
from provision.validation.validate import ValidateOptions

pytest.importorskip("transformers")
pytest.importorskip("pandas")
pytest.importorskip("rouge_score")

MAX_NEW = 8
WORDS = [
    "final answer : b . the answer is 42 . answer : c",
    "a b c d e f g h i j 7 128 3 answer ( d )",
    "answer : 12 , 5 cat|dog",
]
TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %} answer :"


# -- answer extraction on hand-written generations ------------------------------------------------


def test_gsm8k_takes_the_delimited_number_else_the_last_one() -> None:
    # before "\nQ:" only; after the last "The answer is" the first number; commas removed
    assert answers.gsm8k_answer("so 3 + 4.\nThe answer is 1,234 and 9.\nQ: what about 77?") == "1234"
    assert answers.gsm8k_answer("we get 12 then -3.5 apples") == "-3.5"
    assert answers.gsm8k_answer("The answer is unknown, 8 maybe") == "8"
    assert answers.gsm8k_answer("no digits here") == ""
    assert answers.gsm8k_correct("The answer is 18.", "18") and answers.gsm8k_correct("it is 18.0", "18")
    assert not answers.gsm8k_correct("nothing", "18") and not answers.gsm8k_correct("17", "18")


def test_llama405b_exact_match_keeps_the_scripts_quirks() -> None:
    uuid_a, uuid_b = "12345678-abcd-ef01-2345-6789abcdef01", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    assert answers.niah_exact_match(f"keys {uuid_a}", f"found {uuid_a}") == 100.0
    assert answers.niah_exact_match(f"keys {uuid_a}", "no uuid at all") == 0.0
    # each expected UUID's characters looked up in the UUID found at the same place: uuid_b has
    # a-e and '-' of uuid_a's 16 distinct... counted per character: 1 of 36 is not in it? worked out:
    want = sum(1.0 if ch in uuid_b else 0.0 for ch in uuid_a) / 36 * 100
    assert answers.niah_exact_match(uuid_a, uuid_b) == round(want, 2) and 0 < want < 100
    # two found, one expected: divided by the found count
    assert answers.niah_exact_match(uuid_a, f"{uuid_a} {uuid_b}") == 50.0
    assert answers.qa_exact_match("Paris|paris, france", "I think. Answer: Paris") == 100.0
    assert answers.qa_exact_match("new york", "Answer: New  York City") == 100.0  # blanks and case ignored
    assert answers.qa_exact_match("london", "Answer: Paris") == 0.0
    assert answers.qa_exact_match("anything", "Answer: ") == 100.0  # "" is in every label


def test_multiple_choice_r1_and_harmony() -> None:
    assert answers.choice_r1("thinking... ANSWER: b. then Final Answer: (C)") == "C"
    assert answers.choice_r1("['the answer: d']") == "D"
    assert answers.choice_r1("I pick E", "D") is None
    assert answers.choice_r1("maybe G or H", "J") == "H"  # MMLU-Pro: the last standalone letter
    harmony = (
        "<|channel|>analysis<|message|>Answer: A<|end|><|start|>assistant<|channel|>final<|message|>**B**<|return|>"
    )
    assert answers.final_section(harmony) == "**B**"
    assert answers.choice_harmony(harmony) == "B"  # the final channel wins over the analysis
    assert answers.choice_harmony("<|channel|>final<|message|>The correct one. Answer: c") == "C"
    assert answers.choice_harmony("So ANSWER: d", "D") == "D"
    assert answers.choice_correct("B", "b", "ABCD") and not answers.choice_correct("E", "E", "ABCD")


def test_a_missing_ground_truth_is_never_a_match() -> None:
    import pandas as pd

    for missing in (None, float("nan"), np.float32("nan"), pd.NA, pd.NaT):
        assert answers.is_missing(missing), missing
    assert not answers.is_missing("0") and not answers.is_missing(0) and not answers.is_missing("nan")


def test_boxed_and_aime() -> None:
    assert answers.boxed("first \\boxed{1} then \\boxed{\\frac{1}{2}} done") == "\\frac{1}{2}"
    assert answers.boxed("\\boxed{open") is None and answers.boxed("none") is None
    assert answers.aime_answer("so \\boxed{ 204 } or Answer: 7") == 204
    assert answers.aime_answer("Answer: 33") == 33 and answers.aime_answer("Answer: 3.5") is None
    assert answers.aime_answer("\\boxed{1000}") is None  # outside 0..999
    assert answers.aime_correct(33, "033") and not answers.aime_correct(None, "1")


# -- end to end on a tiny Llama -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mixed") / "ckpt"
    tiny_llama(folder, seed=3, corpus=CORPUS + WORDS, chat_template=TEMPLATE)
    return folder


def _tokenizer(checkpoint: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(checkpoint))


def _ids(checkpoint: Path, n: int) -> list[list[int]]:
    tok = _tokenizer(checkpoint)
    return [tok.encode(f"{CORPUS[i % len(CORPUS)]} {WORDS[i % len(WORDS)]} item {i}") for i in range(n)]


def _write_bench(
    tmp_path: Path,
    write_manifest: ManifestWriter,
    checkpoint: Path,
    *,
    name: str,
    filename: str,
    rows: list[dict[str, Any]],
    generation: str,
    accuracy: dict[str, float],
    size: int | None = None,
) -> None:
    import pandas as pd

    data = tmp_path / filename
    if filename.endswith(".parquet"):
        pd.DataFrame(rows).to_parquet(data)
    else:
        frame: Any = legacy_frame(rows)
        frame.to_pickle(data)
    files = sorted(p for p in checkpoint.iterdir() if p.is_file())
    model = dataset_toml(f"{name}-ckpt", [(p.name, [str(p)], p.read_bytes(), None) for p in files], kind="model")
    model = model.replace('format = "onnx"', 'format = "huggingface"').replace("schema = 1\n", "")
    targets = ""
    for metric, reference in accuracy.items():
        targets += f'[[benchmark.accuracy]]\nmetric = "{metric}"\nreference = {reference}\ntarget_ratio = [0.99]\n'
        if metric == "tokens_per_sample":
            targets += "upper = 1e9\n"
    write_manifest(
        dataset_toml(f"{name}-data", [(filename, [str(data)], data.read_bytes(), None)])
        + model
        + f'[[benchmark]]\nname = "{name}"\ndataset = "{name}-data"\nmodels = ["{name}-ckpt"]\n'
        + f"dataset_size = {size or len(rows)}\n"
        + f'[benchmark.generation]\nfile = "{filename}"\nmax_new_tokens = {MAX_NEW}\ndtype = "float32"\n'
        + generation
        + targets,
        name=name,
    )
    report = api.fetch([name], Settings.from_env())
    assert report.ok, report.failures


def _texts(
    checkpoint: Path, prompts: list[list[int]], *, skip: bool = True, min_new: int = 1
) -> tuple[list[str], list[list[int]]]:
    tok = _tokenizer(checkpoint)
    generated = greedy_direct(checkpoint, prompts, MAX_NEW, min_new)
    return [tok.decode(g, skip_special_tokens=skip) for g in generated], generated


def _split(text: str) -> str:
    """The stand-in punkt's sent_tokenize: a break after '.', '!' or '?' followed by a space."""
    return "\n".join(s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s)


def _rouge(preds: list[str], refs: list[str], kind: str) -> np.ndarray:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer([kind], use_stemmer=True)
    return np.array([scorer.score(_split(r), _split(p))[kind].fmeasure for p, r in zip(preds, refs, strict=True)])


def _run(settings: Settings, name: str, count: int | None = None) -> Any:
    return api.validate(name, settings, options=ValidateOptions(device="cpu", batch_size=3, count=count))


def _metrics(report: Any) -> dict[str, float]:
    return {m["metric"]: m["value"] for m in report.metrics}


def _number(text: str) -> str | None:
    """GSM8K's answer written out: the last number before "\nQ:" (no "The answer is" in these texts)."""
    found = re.findall(r"-?[\d,]*\.?\d+", text.split("\nQ:")[0])
    return found[-1].replace(",", "") if found else None


def _letter(text: str, last: str) -> str | None:
    """DeepSeek-R1's multiple choice written out: the last ANSWER letter, for MMLU-Pro else the last
    standalone letter."""
    pattern = rf"\b(?:ANSWER|FINAL\s*ANSWER)\b\s*[:=]?\s*\(?\s*([A-{last}])\s*\)?(?:\s*$|[^A-Za-z])"
    hits = re.findall(pattern, text, re.I)
    if hits:
        return str(hits[-1]).upper()
    alone = re.findall(r"\b([A-J])\b", text, re.I) if last == "J" else []
    return str(alone[-1]).upper() if alone else None


def _harmony_letter(text: str, last: str) -> str | None:
    """gpt-oss's multiple choice written out for texts without channel markers or bold."""
    lead = re.match(rf"^[^a-zA-Z]*([A-{last}])(?:[^a-zA-Z]|$)", text, re.I)
    if lead:
        return lead.group(1).upper()
    answer = re.search(rf"\b(?:Answer|ANSWER)\s*[:.]?\s*([A-{last}])\b", text, re.I)
    if answer:
        return answer.group(1).upper()
    return _letter(text, last)


def test_mixtral_scores_openorca_and_gsm8k_and_leaves_mbxp_out(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, checkpoint: Path
) -> None:
    prompts = _ids(checkpoint, 12)
    kinds = ["OpenOrca", "GSM8K", "MBXP", "GSM8K", "OpenOrca", "MBXP"]
    kinds += ["GSM8K", "OpenOrca", "GSM8K", "OpenOrca", "MBXP", "MBXP"]
    kept = [i for i, k in enumerate(kinds) if k != "MBXP"]
    texts, ids = _texts(checkpoint, [prompts[i] for i in kept], min_new=2)
    by_row = dict(zip(kept, texts, strict=True))
    # GSM8K truths: the number the generation ends on for the first two rows (a hit when it has one),
    # one it lacks for the others
    gsm = [i for i in kept if kinds[i] == "GSM8K"]
    truths = [
        CORPUS[i % 5]
        if k == "OpenOrca"
        else ((_number(by_row[i]) or "3") if i in gsm[:2] else "-1")
        if k != "MBXP"
        else "assert f(1) == 1"
        for i, k in enumerate(kinds)
    ]
    rows = [
        {"dataset": k, "id": f"python_f{i}", "tok_input": p, "input": "x", "gt_output": t}
        for i, (k, p, t) in enumerate(zip(kinds, prompts, truths, strict=True))
    ]
    _write_bench(
        tmp_path,
        write_manifest,
        checkpoint,
        name="tinymix",
        filename="mix.pkl",
        rows=rows,
        generation='task = "mixtral"\nprompt = "tok_input"\nreference = "gt_output"\nmin_new_tokens = 2\n',
        accuracy={"rouge1": 1.0, "rouge2": 0.001, "rougel": 1.0, "gsm8k": 1.0, "mbxp": 1.0, "tokens_per_sample": 1.0},
    )
    report = _run(settings, "tinymix")
    got = _metrics(report)
    orca = [i for i in kept if kinds[i] == "OpenOrca"]
    for metric, kind in (("rouge1", "rouge1"), ("rouge2", "rouge2"), ("rougel", "rougeL")):
        want = _rouge([by_row[i] for i in orca], [truths[i] for i in orca], kind)
        assert got[metric] == pytest.approx(float(np.round(want.mean() * 100, 4)), abs=1e-9)
    correct = [(_number(by_row[i]) or "nan") == truths[i] for i in gsm]
    assert got["gsm8k"] == pytest.approx(100.0 * sum(correct) / len(gsm))
    assert got["gsm8k"] < 100.0 and (got["gsm8k"] > 0 or not any(_number(by_row[i]) for i in gsm))
    # tokens: the trailing eos (2) and pad (0) ids dropped, as the reference SUT's postProcess does
    counts = []
    for g in ids:
        while g and g[-1] in (0, 2):
            g = g[:-1]
        counts.append(len(g))
    assert got["tokens_per_sample"] == round(float(np.mean(counts)), 1)
    assert "mbxp" not in got and report.samples == 8 and not report.full_set
    notes = " ".join(report.notes)
    assert "4 MBXP rows left out" in notes and "never does" in notes and "mbxp:" in notes


def test_llama405b_routes_by_the_metric_column(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, checkpoint: Path
) -> None:
    prompts = _ids(checkpoint, 9)
    kinds = ["rouge", "niah_em", "qa_em"] * 3
    uuid = "12345678-abcd-ef01-2345-6789abcdef01"
    texts, ids = _texts(checkpoint, prompts)
    preds = [_split(t) for t in texts]
    # qa labels: the generation's second word or a word it lacks, with an alternative after '|'
    truths = [
        CORPUS[i % 5]
        if k == "rouge"
        else (uuid if k == "niah_em" else (f"zzz|{texts[i].split()[1]}" if i < 6 else "zzz"))
        for i, k in enumerate(kinds)
    ]
    rows = [{"metric": k, "tok_input": p, "gt_output": t} for k, p, t in zip(kinds, prompts, truths, strict=True)]
    _write_bench(
        tmp_path,
        write_manifest,
        checkpoint,
        name="tiny405",
        filename="long.pkl",
        rows=rows,
        generation='task = "llama3.1-405b"\nprompt = "tok_input"\nreference = "gt_output"\n',
        accuracy={"rougel": 1.0, "exact_match": 1.0, "tokens_per_sample": 1.0},
    )
    report = _run(settings, "tiny405")
    refs = [_split(t) for t in truths]
    got = _metrics(report)
    rouge_rows = [i for i, k in enumerate(kinds) if k == "rouge"]
    want_l = _rouge([preds[i] for i in rouge_rows], [refs[i] for i in rouge_rows], "rougeL")
    assert got["rougel"] == pytest.approx(float(np.mean(want_l * 100)), abs=1e-9)

    def qa(label: str, pred: str) -> float:
        tail = pred[pred.rfind("Answer: ") + 8 :] if "Answer: " in pred else pred
        squeezed = "".join(tail.split()).lower()
        return 100.0 if tail in label or any("".join(e.split()).lower() in squeezed for e in label.split("|")) else 0.0

    em = [qa(refs[i], preds[i]) if kinds[i] == "qa_em" else 0.0 for i in range(9) if kinds[i] != "rouge"]
    assert got["exact_match"] == pytest.approx(float(np.mean(em))) and 0 < got["exact_match"] < 100
    assert got["tokens_per_sample"] == round(float(np.mean([len(g) for g in ids])), 1)
    assert report.full_set and report.samples == 9
    assert report.task["route"] == "metric"


def test_deepseek_r1_exact_match_over_the_sets_it_can_grade(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, checkpoint: Path
) -> None:
    kinds = ["gpqa", "mmlu_pro", "aime", "livecodebench", "math500", "mmlu_pro"] * 2
    texts_in = [f"{CORPUS[i % 5]} {WORDS[i % 3]} item {i}" for i in range(len(kinds))]
    tok = _tokenizer(checkpoint)
    kept = [i for i, k in enumerate(kinds) if k in ("gpqa", "mmlu_pro", "aime")]
    prompts = []
    for i in kept:
        ids_or_batch = tok.apply_chat_template(
            [{"role": "user", "content": texts_in[i]}], add_generation_prompt=True, tokenize=True
        )
        prompts.append(list(ids_or_batch["input_ids"]) if hasattr(ids_or_batch, "keys") else list(ids_or_batch))
    texts, ids = _texts(checkpoint, prompts)
    by_row = dict(zip(kept, (t.strip() for t in texts), strict=True))
    # MMLU-Pro truths: the letter the first rows end on (hits), "A" for the last one
    truths = [
        ((_letter(by_row[i], "J") or "B") if i < 6 else "A")
        if k == "mmlu_pro"
        else {"gpqa": "B", "aime": "42"}.get(k, "7")
        for i, k in enumerate(kinds)
    ]
    rows = [
        {"dataset": k, "text_input": t, "ground_truth": g, "question": "q"}
        for k, t, g in zip(kinds, texts_in, truths, strict=True)
    ]
    _write_bench(
        tmp_path,
        write_manifest,
        checkpoint,
        name="tinyr1",
        filename="r1.pkl",
        rows=rows,
        generation='task = "deepseek-r1"\nprompt = "text_input"\nreference = "ground_truth"\nchat_template = true\n',
        accuracy={"exact_match": 1.0, "tokens_per_sample": 1.0},
    )
    report = _run(settings, "tinyr1")
    values = []
    for i in kept:
        if kinds[i] == "aime":
            found = re.findall(r"Answer:\s*(\d+)(?!\.)\b", by_row[i], re.I)
            values.append(100.0 if found and int(found[-1]) == int(truths[i]) else 0.0)
        else:
            values.append(100.0 if _letter(by_row[i], "D" if kinds[i] == "gpqa" else "J") == truths[i] else 0.0)
    got = _metrics(report)
    assert got["exact_match"] == pytest.approx(float(np.mean(values)))
    assert got["exact_match"] > 0 or not any(_letter(by_row[i], "J") for i in kept if kinds[i] == "mmlu_pro")
    assert got["tokens_per_sample"] == float(np.mean([len(g) for g in ids]))  # eval_accuracy.py: unrounded
    assert report.samples == len(kept) and not report.full_set
    notes = " ".join(report.notes)
    assert "2 livecodebench rows left out" in notes and "2 math500 rows left out" in notes and "PRM800K" in notes
    # --count takes the first N of the graded rows
    assert _run(settings, "tinyr1", count=4).samples == 4


def test_gpt_oss_weights_each_set_by_its_repeats_from_parquet(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, checkpoint: Path
) -> None:
    prompts = _ids(checkpoint, 10)
    kinds = ["aime25", "gpqa_diamond", "mmlu_pro", "livecodebench_v6", "gpqa_diamond"] * 2
    kept = [i for i, k in enumerate(kinds) if not k.startswith("livecodebench")]
    texts, _ = _texts(checkpoint, [prompts[i] for i in kept], skip=False)
    by_row = dict(zip(kept, (t.strip() for t in texts), strict=True))
    truths = [
        (_harmony_letter(by_row[i], "J") or "A") if k == "mmlu_pro" else {"aime25": "42"}.get(k, "B")
        for i, k in enumerate(kinds)
    ]
    rows = [
        {"dataset": k, "input_tokens": p, "ground_truth": t} for k, p, t in zip(kinds, prompts, truths, strict=True)
    ]
    _write_bench(
        tmp_path,
        write_manifest,
        checkpoint,
        name="tinyoss",
        filename="acc.parquet",
        rows=rows,
        # greedy here, so the independent generation can be compared (the manifest samples at temperature 1)
        generation='task = "gpt-oss"\nprompt = "input_tokens"\nreference = "ground_truth"\n'
        + "skip_special_tokens = false\n",
        accuracy={"exact_match": 1.0, "tokens_per_sample": 1.0},
    )
    report = _run(settings, "tinyoss")
    correct, weight = 0.0, 0.0
    for i in kept:
        repeats = {"aime25": 8, "gpqa_diamond": 5}.get(kinds[i], 1)
        if kinds[i] == "aime25":
            found = re.findall(r"Answer:\s*(\d+)(?!\.)\b", by_row[i], re.I)
            ok = bool(found) and int(found[-1]) == int(truths[i])
        else:
            ok = _harmony_letter(by_row[i], "D" if kinds[i] == "gpqa_diamond" else "J") == truths[i]
        correct += ok / repeats
        weight += 1 / repeats
    got = _metrics(report)["exact_match"]
    assert got == round(correct / weight * 100, 3)  # printed with 3 decimals for the checker
    assert 0 < got < 100 or not any(_harmony_letter(by_row[i], "J") for i in kept if kinds[i] == "mmlu_pro")
    assert report.samples == 8 and "2 livecodebench_v6 rows left out" in " ".join(report.notes)
    assert report.interval is not None  # a subset: the weighted mean's bootstrap interval


def test_an_unknown_source_or_a_missing_column_is_one_line(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings, checkpoint: Path
) -> None:
    prompts = _ids(checkpoint, 2)
    rows = [
        {"dataset": "OpenOrca", "tok_input": prompts[0], "gt_output": "x"},
        {"dataset": "HumanEval", "tok_input": prompts[1], "gt_output": "y"},
    ]
    _write_bench(
        tmp_path,
        write_manifest,
        checkpoint,
        name="tinybad",
        filename="bad.pkl",
        rows=rows,
        generation='task = "mixtral"\nprompt = "tok_input"\nreference = "gt_output"\n',
        accuracy={"rouge1": 1.0},
    )
    with pytest.raises(UsageError, match=r"bad\.pkl row 1: dataset 'HumanEval' is none of the mixtral sources"):
        _run(settings, "tinybad")
    _write_bench(
        tmp_path,
        write_manifest,
        checkpoint,
        name="tinybad",
        filename="bad.pkl",
        rows=rows,
        generation='task = "llama3.1-405b"\nprompt = "tok_input"\nreference = "gt_output"\n',
        accuracy={"rougel": 1.0},
    )
    with pytest.raises(UsageError, match=r"no column 'metric'"):
        _run(settings, "tinybad")


def test_the_catalogue_validates_the_four_mixed_benchmarks() -> None:
    from provision.config import builtin_manifest_dir
    from provision.manifest.parse import load_catalog

    catalog = load_catalog(sorted(builtin_manifest_dir().glob("*.toml")))
    for name, task in (
        ("mixtral-8x7b", "mixtral"),
        ("llama3.1-405b", "llama3.1-405b"),
        ("deepseek-r1", "deepseek-r1"),
        ("gpt-oss-120b", "gpt-oss"),
    ):
        spec = catalog.benchmarks[name].generation
        assert spec is not None and spec.task == task, name
