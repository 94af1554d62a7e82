"""SQuAD task: provision validate on a generated SQuAD v1.1 dev set and a tiny ONNX "BERT".

Sequences are 16 tokens: ``[CLS]``, a 3-token question, ``[SEP]``, up to 10 context tokens,
``[SEP]``. The tiny model ignores its inputs' values: its start logits are a one-hot of position 7
and its end logits a one-hot of position 8, broadcast over the batch, so every feature answers
with its 3rd and 4th context tokens:

- q1 "what jumps ?" on "the quick brown fox ...": "brown fox", the answer: EM 100, F1 100;
- q2 "who sleeps ?" on "a lazy dog sleeps ...": "dog sleeps" for "lazy dog": EM 0, F1 50;
- q3 "which numbers ?" on a 14-word context: two windows (context tokens 0-9 and 8-13); both
  answer with the same logit sum, the first window wins: "three four", the answer: EM 100, F1 100.

Whole set: F1 250/3, EM 200/3. With ``--count 3`` q3's second feature does not run, so q3 is
left out: F1 75, EM 50.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ManifestWriter, dataset_toml
from typer.testing import CliRunner

from provision import api
from provision.cli.app import app
from provision.config import Settings
from provision.errors import ModelError
from provision.validation.validate import ValidateOptions

runner = CliRunner()

SEQ = 16
RUNTIME = (
    'file = "model.onnx"\ninputs = ["input_ids", "input_mask", "segment_ids"]\n'
    'outputs = ["output_start_logits", "output_end_logits"]\n'
)
LONG = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
QUESTIONS = [
    ("q1", "what jumps?", "the quick brown fox jumps over the lazy dog", "brown fox"),
    ("q2", "who sleeps?", "a lazy dog sleeps under the old tree", "lazy dog"),
    ("q3", "which numbers?", LONG, "three four"),
]
WORDS = sorted({w for _, q, c, _ in QUESTIONS for w in f"{q[:-1]} {c}".split()})


def _dev_set(path: Path) -> None:
    paragraphs = [
        {
            "context": context,
            "qas": [
                {"id": qid, "question": question, "answers": [{"text": answer, "answer_start": context.find(answer)}]}
            ],
        }
        for qid, question, context, answer in QUESTIONS
    ]
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}))


def _vocab(path: Path) -> None:
    path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "?", *WORDS]) + "\n")


def _onnx_bert(path: Path, stacked: bool = False) -> None:
    """input_ids/input_mask/segment_ids int64 (N,16) -> start one-hot at 7, end one-hot at 8, (N,16) each.

    ``stacked``: one output ``logits`` (N,16,2) instead, start in column 0 and end in column 1.
    """
    import onnx
    from onnx import TensorProto, helper

    start = np.zeros(SEQ, dtype=np.float32)
    start[7] = 10.0
    end = np.zeros(SEQ, dtype=np.float32)
    end[8] = 10.0
    nodes = [
        helper.make_node("Add", ["input_ids", "input_mask"], ["s1"]),
        helper.make_node("Add", ["s1", "segment_ids"], ["s2"]),
        helper.make_node("Cast", ["s2"], ["s2f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["s2f", "zero"], ["zeros"]),  # (N,16) of zeros: the batch shape
        helper.make_node("Add", ["zeros", "start"], ["output_start_logits"]),
        helper.make_node("Add", ["zeros", "end"], ["output_end_logits"]),
    ]
    outputs = [
        helper.make_tensor_value_info("output_start_logits", TensorProto.FLOAT, ["N", SEQ]),
        helper.make_tensor_value_info("output_end_logits", TensorProto.FLOAT, ["N", SEQ]),
    ]
    if stacked:
        nodes += [
            helper.make_node("Unsqueeze", ["output_start_logits", "axis2"], ["s3"]),
            helper.make_node("Unsqueeze", ["output_end_logits", "axis2"], ["e3"]),
            helper.make_node("Concat", ["s3", "e3"], ["logits"], axis=2),
        ]
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", SEQ, 2])]
    graph = helper.make_graph(
        nodes,
        "tiny-bert",
        [
            helper.make_tensor_value_info(n, TensorProto.INT64, ["N", SEQ])
            for n in ("input_ids", "input_mask", "segment_ids")
        ],
        outputs,
        initializer=[
            helper.make_tensor("start", TensorProto.FLOAT, [SEQ], start.tolist()),
            helper.make_tensor("end", TensorProto.FLOAT, [SEQ], end.tolist()),
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("axis2", TensorProto.INT64, [1], [2]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("squad-src")
    _dev_set(src / "dev-v1.1.json")
    _vocab(src / "vocab.txt")
    (src / "plain").mkdir()
    _onnx_bert(src / "plain" / "model.onnx")
    (src / "stacked").mkdir()
    _onnx_bert(src / "stacked" / "model.onnx", stacked=True)
    return src


def _bench(
    write_manifest: ManifestWriter, settings: Settings, src: Path, *, model: str = "plain", runtime: str = RUNTIME
) -> None:
    """A generated SQuAD benchmark (4 features at max_seq_length 16), one tiny model with its vocab.txt."""
    dev = src / "dev-v1.1.json"
    files = [(p.name, [str(p)], p.read_bytes(), None) for p in (src / model / "model.onnx", src / "vocab.txt")]
    write_manifest(
        dataset_toml("tinysquad-data", [(dev.name, [str(dev)], dev.read_bytes(), None)])
        + dataset_toml("tinybert-model", files, kind="model").replace("schema = 1\n", "")
        + f"[model.runtime]\n{runtime}"
        + '[[benchmark]]\nname = "tinybert"\ndataset = "tinysquad-data"\nlabels = "tinysquad-data/dev-v1.1.json"\n'
        + 'models = ["tinybert-model"]\ndataset_size = 4\n'
        + '[benchmark.preprocess]\nrecipe = "squad-bert"\nmax_seq_length = 16\ndoc_stride = 8\n'
        + "max_query_length = 5\nn_best_size = 20\nmax_answer_length = 30\n"
        + '[benchmark.accuracy]\nmetric = "f1"\nreference = 80.0\ntarget_ratio = [0.99, 0.999]\n'
    )
    assert api.fetch(["tinybert"], settings).ok
    api.preprocess("tinybert", settings, jobs=1)


def test_whole_set_scores_the_hand_computed_f1_and_exact_match(
    write_manifest: ManifestWriter, settings: Settings, files: Path
) -> None:
    _bench(write_manifest, settings, files)
    report = api.validate("tinybert", settings, options=ValidateOptions(batch_size=3))
    assert report.metric == "f1" and report.unit == "%" and report.full_set and report.samples == 4
    assert report.value == pytest.approx(250 / 3) and report.extra["exact_match"] == pytest.approx(200 / 3)
    assert report.extra["questions"] == 3 and report.extra["features"] == 4
    assert report.passed and report.targets[0]["target"] == pytest.approx(79.2)
    assert report.task == {"task": "squad", "n_best_size": 20, "max_answer_length": 30, "lower_case": True}


def test_one_stacked_logits_output_is_taken_too(
    write_manifest: ManifestWriter, settings: Settings, files: Path
) -> None:
    runtime = 'file = "model.onnx"\ninputs = ["input_ids", "input_mask", "segment_ids"]\noutputs = ["logits"]\n'
    _bench(write_manifest, settings, files, model="stacked", runtime=runtime)
    report = api.validate("tinybert", settings, options=ValidateOptions(batch_size=4))
    assert report.value == pytest.approx(250 / 3) and report.extra["exact_match"] == pytest.approx(200 / 3)


def test_count_leaves_out_the_question_it_cuts_and_gives_an_interval(
    write_manifest: ManifestWriter, settings: Settings, files: Path
) -> None:
    """3 of 4 features: q3 lost its second window, so q1 (F1 100) and q2 (F1 50) are scored."""
    _bench(write_manifest, settings, files)
    result = runner.invoke(app, ["validate", "tinybert", "--count", "3", "--json"])
    assert result.exit_code == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    assert doc["value"] == 75.0 and doc["extra"]["exact_match"] == 50.0 and doc["extra"]["questions"] == 2
    assert doc["samples"] == 2 and doc["full_set"] is False
    # per-question F1 [100, 50]: resampled means run from 50 (both draws q2) to 100 (both q1)
    assert doc["interval_method"] == "bootstrap" and doc["interval"] == [50.0, 100.0]
    assert doc["passed"] is True  # the interval reaches the target 79.2
    two = api.validate("tinybert", settings, options=ValidateOptions(count=2))
    assert two.value == 75.0 and two.samples == 2  # the cut falls between questions: nothing is left out


def test_logits_of_the_wrong_shape_are_a_model_error(
    write_manifest: ManifestWriter, settings: Settings, files: Path
) -> None:
    """Only the start logits selected: one (N, 16) output is neither the pair nor the stacked layout."""
    runtime = (
        'file = "model.onnx"\ninputs = ["input_ids", "input_mask", "segment_ids"]\noutputs = ["output_start_logits"]\n'
    )
    _bench(write_manifest, settings, files, runtime=runtime)
    with pytest.raises(ModelError, match=r"expected one \(N=4, seq_len, 2\) logits output, got shape \(4, 16\)"):
        api.validate("tinybert", settings, options=ValidateOptions(batch_size=4))
