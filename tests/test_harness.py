"""``provision harness``: the commands and files for MLPerf's reference implementation, read back as it reads them.

Each benchmark is generated here (JPEGs, annotations, a SQuAD file), fetched from plain paths and
preprocessed by provision. The loaders below restate what the reference code of mlcommons/inference
does with the printed arguments (``vision/classification_and_detection/python/imagenet.py`` and
``openimages.py`` with ``--use_preprocessed_dataset``, ``tools/accuracy-openimages.py``'s sample to
image mapping, ``language/bert/squad_QSL.py``'s ``pickle.load`` of ``eval_features.pickle`` in its
working folder and the SUTs' attribute access); they take every path from the command's argv and
cwd, never from provision. The BERT pickle is loaded in a fresh interpreter that has a stand-in
``create_squad_data.InputFeatures`` (the class the pickle names) and no provision on its path.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ManifestWriter, dataset_toml
from PIL import Image
from test_preprocess_squad import make_squad, ref_convert, write_vocab
from typer.testing import CliRunner

from provision import api
from provision.cli.app import app
from provision.config import Settings
from provision.errors import NotFetchedError, UsageError
from provision.preprocessing.harness import Command, HarnessReport
from provision.store.trees import hash_tree

runner = CliRunner()


def _jpeg(path: Path, width: int, height: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path, format="JPEG", quality=90)


def _flag(command: Command, name: str) -> str:
    return command.argv[command.argv.index(name) + 1]


def _run_command(report: HarnessReport) -> Command:
    (run,) = [c for c in report.commands if c.purpose == "run"]
    return run


def _digest_without_record(folder: Path) -> str:
    tree = hash_tree(folder)
    tree.files.pop("run.json")
    return tree.digest


# ----------------------------------------------------------------------------------------
# ResNet-50: the outputs as they are
# ----------------------------------------------------------------------------------------

IMAGENET_NAMES = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 6)]


def _imagenet_bench(tmp_path: Path, write_manifest: ManifestWriter, model_toml: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i, name in enumerate(IMAGENET_NAMES):
        _jpeg(src / name, 260 + 17 * i, 240 - 9 * i, seed=i)
    tar = tmp_path / "val.tar"
    with tarfile.open(tar, "w") as tf:
        for name in IMAGENET_NAMES:
            tf.add(src / name, arcname=name)
    labels = tmp_path / "val_map.txt"
    # the labels list one image the tar lacks: provision skips it, so the outputs hold 5 of 6
    lines = [f"{n} {i * 3}" for i, n in enumerate(IMAGENET_NAMES)]
    lines.insert(2, "ILSVRC2012_val_00000099.JPEG 7")
    labels.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = [("val_map.txt", [str(labels)], labels.read_bytes(), None), ("val.tar", [str(tar)], tar.read_bytes(), None)]
    write_manifest(
        dataset_toml("hi-imagenet", rows)
        + 'extract = "tar"\n'
        + model_toml
        + '[[benchmark]]\nname = "hi-r50"\ndataset = "hi-imagenet"\nlabels = "hi-imagenet/val_map.txt"\n'
        + 'models = ["hi-onnx", "hi-pth"]\n[benchmark.preprocess]\nrecipe = "imagenet-resnet50"\n'
    )


def _imagenet_models(tmp_path: Path) -> str:
    onnx, pth = tmp_path / "resnet50_v1.onnx", tmp_path / "resnet50-19c8e357.pth"
    onnx.write_bytes(b"an onnx file, never opened by provision harness")
    pth.write_bytes(b"a state dict, never opened by provision harness")
    out = dataset_toml("hi-onnx", [(onnx.name, [str(onnx)], onnx.read_bytes(), None)], kind="model")
    out += dataset_toml("hi-pth", [(pth.name, [str(pth)], pth.read_bytes(), None)], kind="model").replace(
        'format = "onnx"', 'format = "pytorch"'
    )
    out += '[model.preprocess]\nrecipe = "imagenet-torchvision"\n'
    return out.replace("schema = 1\n", "")


def reference_imagenet(command: Command) -> tuple[list[str], list[int], list[np.ndarray]]:
    """What ``Imagenet(..., pre_process=None)`` of the reference loads for these main.py arguments.

    ``image_list`` is ``--dataset-list``; a line is kept when ``<--dataset-path>/<name>.npy`` exists,
    and ``get_item`` loads ``<cache_dir>/<name>.npy`` (``--preprocessed_dir`` would win, absent here).
    """
    assert "--use_preprocessed_dataset" in command.argv and "--preprocessed_dir" not in command.argv
    data_path, cache_dir = _flag(command, "--dataset-path"), _flag(command, "--cache_dir")
    names, labels, arrays = [], [], []
    with open(_flag(command, "--dataset-list")) as fp:
        for line in fp:
            image_name, label = re.split(r"\s+", line.strip())
            if not os.path.exists(os.path.join(data_path, image_name) + ".npy"):
                continue
            names.append(image_name)
            labels.append(int(label))
            arrays.append(np.load(os.path.join(cache_dir, image_name) + ".npy"))
    return names, labels, arrays


def test_resnet50_reads_the_outputs_as_they_are(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    _imagenet_bench(tmp_path, write_manifest, _imagenet_models(tmp_path))
    assert api.fetch(["hi-r50"], settings).ok
    made = api.preprocess("hi-r50", settings, jobs=1)
    report = api.harness("hi-r50", settings)
    assert (report.model, report.profile, report.backend) == ("hi-onnx", "resnet50-onnxruntime", None)
    assert report.state == "none"
    assert report.folder is None and report.files == [] and report.preprocessed == made.path
    run = _run_command(report)
    assert run.cwd == "$INFERENCE/vision/classification_and_detection"
    assert run.argv[:4] == ("python3", "python/main.py", "--profile", "resnet50-onnxruntime")
    assert _flag(run, "--model") == str(settings.cache_dir / "artifacts" / "hi-onnx" / "resnet50_v1.onnx")
    assert _flag(run, "--dataset-path") == _flag(run, "--cache_dir") == str(made.path)
    names, labels, arrays = reference_imagenet(run)
    assert names == IMAGENET_NAMES and labels == [i * 3 for i in range(5)]
    for name, array in zip(names, arrays, strict=True):
        assert array.shape == (3, 224, 224) and np.array_equal(array, np.load(made.path / f"{name}.npy"))
    (accuracy,) = [c for c in report.commands if c.purpose == "accuracy"]
    assert accuracy.argv[1] == "tools/accuracy-imagenet.py" and _flag(accuracy, "--imagenet-val-file") == str(
        made.path / "val_map.txt"
    )
    assert not list(made.path.parent.glob("*.harness"))
    assert _digest_without_record(made.path) == made.digest  # nothing written into the outputs


def test_the_pytorch_profile_and_its_backend_note(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    _imagenet_bench(tmp_path, write_manifest, _imagenet_models(tmp_path))
    assert api.fetch(["hi-r50"], settings).ok
    with pytest.raises(NotFetchedError, match=r"not preprocessed .*provision preprocess hi-r50 --model hi-pth"):
        api.harness("hi-r50", settings, model="hi-pth")
    made = api.preprocess("hi-r50", settings, jobs=1, model="hi-pth")
    report = api.harness("hi-r50", settings, model="hi-pth")
    run = _run_command(report)
    assert (report.recipe, report.profile, report.backend) == ("imagenet-torchvision", "resnet50-pytorch", "pytorch")
    assert run.argv[2:6] == ("--profile", "resnet50-pytorch", "--backend", "pytorch")
    assert _flag(run, "--cache_dir") == str(made.path)
    assert any("caffe2" in note for note in report.notes)
    names, _, arrays = reference_imagenet(run)
    assert names == IMAGENET_NAMES and np.array_equal(arrays[0], np.load(made.path / f"{names[0]}.npy"))
    (settings.cache_dir / "artifacts" / "hi-pth" / "resnet50-19c8e357.pth").unlink()
    with pytest.raises(NotFetchedError, match="provision fetch hi-pth"):
        api.harness("hi-r50", settings, model="hi-pth")


# ----------------------------------------------------------------------------------------
# RetinaNet: the annotation file, cut to the samples
# ----------------------------------------------------------------------------------------

# (id, file name, downloaded?) in the annotation file's order; id 5 repeats a file name.
OPENIMAGES = [
    (3, "0000000000000003.jpg", True),
    (1, "0000000000000001.jpg", True),
    (7, "0000000000000007.jpg", False),  # never downloaded: no sample
    (2, "0000000000000002.jpg", True),
    (5, "0000000000000002.jpg", True),  # the same file under a second id: one sample, the first id's
    (4, "0000000000000004.jpg", True),
]


def _openimages_bench(tmp_path: Path, write_manifest: ManifestWriter) -> list[tuple[str, Path]]:
    src = tmp_path / "oi"
    src.mkdir()
    images, boxes = [], []
    for n, (key, name, present) in enumerate(OPENIMAGES):
        width, height = 320 + 10 * key, 240 + 5 * key
        if present and not (src / name).exists():
            _jpeg(src / name, width, height, seed=key)
        images.append({"id": key, "file_name": name, "height": height, "width": width})
        box = [1 + key, 2, 30 + key, 40]
        area = box[2] * box[3]  # ids from 1: pycocotools takes a box id 0 for "no match"
        boxes.append({"id": n + 1, "image_id": key, "category_id": key % 2, "bbox": box, "area": area, "iscrowd": 0})
    doc = {"info": {"dataset": "openimages_mlperf"}, "images": images, "annotations": boxes,
           "categories": [{"id": 0, "name": "Cat"}, {"id": 1, "name": "Dog"}]}  # fmt: skip
    (src / "openimages-mlperf.json").write_text(json.dumps(doc), encoding="utf-8")
    files = [(p.name, p) for p in sorted(src.iterdir())]
    model = tmp_path / "resnext50_32x4d_fpn.onnx"
    model.write_bytes(b"a retinanet, never opened by provision harness")
    model_toml = dataset_toml("hi-ret-onnx", [(model.name, [str(model)], model.read_bytes(), None)], kind="model")
    write_manifest(
        dataset_toml("hi-oi", [(n, [str(p)], p.read_bytes(), None) for n, p in files])
        + model_toml.replace("schema = 1\n", "")
        + '[[benchmark]]\nname = "hi-retinanet"\ndataset = "hi-oi"\nmodels = ["hi-ret-onnx"]\n'
        + '[benchmark.preprocess]\nrecipe = "openimages-retinanet"\n'
    )
    return files


def reference_openimages(command: Command) -> tuple[list[Any], list[str], list[np.ndarray]]:
    """What ``OpenImages(..., pre_process=None)`` of the reference loads for these main.py arguments:
    images keyed by id from ``--dataset-list``, kept when ``<--dataset-path>/<file_name>.npy`` exists,
    loaded from ``<cache_dir>/<file_name>.npy``."""
    data_path, cache_dir = _flag(command, "--dataset-path"), _flag(command, "--cache_dir")
    with open(_flag(command, "--dataset-list")) as f:
        openimages = json.load(f)
    images = {i["id"]: {"file_name": i["file_name"]} for i in openimages["images"]}
    ids, names, arrays = [], [], []
    for image_id, img in images.items():
        if not os.path.exists(os.path.join(data_path, img["file_name"]) + ".npy"):
            continue
        ids.append(image_id)
        names.append(img["file_name"])
        arrays.append(np.load(os.path.join(cache_dir, img["file_name"]) + ".npy"))
    return ids, names, arrays


def test_retinanet_gets_an_annotation_file_whose_images_are_the_samples(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    _openimages_bench(tmp_path, write_manifest)
    assert api.fetch(["hi-retinanet"], settings).ok
    made = api.preprocess("hi-retinanet", settings, jobs=1)
    report = api.harness("hi-retinanet", settings)
    assert (report.profile, report.state) == ("retinanet-onnxruntime", "written")
    assert report.folder == made.path.parent / f"{made.path.name}.harness"
    assert [(f.path, f.kind) for f in report.files] == [("annotations/openimages-mlperf.json", "file")]
    run = _run_command(report)
    assert _flag(run, "--dataset-list") == str(report.folder / "annotations" / "openimages-mlperf.json")
    ids, names, arrays = reference_openimages(run)
    samples = ["0000000000000003.jpg", "0000000000000001.jpg", "0000000000000002.jpg", "0000000000000004.jpg"]
    assert names == samples and ids == [3, 1, 2, 4]
    for name, array in zip(names, arrays, strict=True):
        assert np.array_equal(array, np.load(made.path / f"{name}.npy"))
    # accuracy-openimages.py: <--openimages-dir>/annotations/openimages-mlperf.json, sample i = images[i]
    (accuracy,) = [c for c in report.commands if c.purpose == "accuracy"]
    with open(os.path.join(_flag(accuracy, "--openimages-dir"), "annotations/openimages-mlperf.json")) as f:
        written = json.load(f)
    assert [image["id"] for image in written["images"]] == ids  # the loader's sample order, one for one
    assert sorted({b["image_id"] for b in written["annotations"]}) == [1, 2, 3, 4]
    assert written["categories"] == [{"id": 0, "name": "Cat"}, {"id": 1, "name": "Dog"}]
    # the fetched file, as the reference would also read it: sample 2 would score against image 7
    original = json.loads((settings.cache_dir / "artifacts" / "hi-oi" / "openimages-mlperf.json").read_text())
    assert original["images"][2]["id"] == 7 and ids[2] == 2
    assert _digest_without_record(made.path) == made.digest  # the outputs are as they were


def test_the_harness_folder_is_recorded_checked_and_rewritten(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    _openimages_bench(tmp_path, write_manifest)
    assert api.fetch(["hi-retinanet"], settings).ok
    made = api.preprocess("hi-retinanet", settings, jobs=1)
    first = api.harness("hi-retinanet", settings)
    assert first.folder is not None and first.state == "written"
    record = json.loads((first.folder / "harness.json").read_text())
    assert record["key"] == made.key and record["source"]["digest"] == made.digest
    written = first.folder / "annotations" / "openimages-mlperf.json"
    assert record["tree"]["files"]["annotations/openimages-mlperf.json"][:2] == [
        written.stat().st_size,
        first.files[0].xxh3_128,
    ]
    assert api.harness("hi-retinanet", settings).state == "cached"
    (first.folder / "build" / "logs").mkdir(parents=True)  # what the reference writes there itself stays
    (first.folder / "build" / "logs" / "mlperf_log_accuracy.json").write_text("[]")
    good = written.read_bytes()
    written.write_bytes(good.replace(b'"Cat"', b'"Cow"'))
    again = api.harness("hi-retinanet", settings)
    assert again.state == "written" and written.read_bytes() == good
    assert "changed annotations/openimages-mlperf.json" in again.notes[0]
    assert (first.folder / "build" / "logs" / "mlperf_log_accuracy.json").read_text() == "[]"
    # gc keeps it while its run is there, and removes it with the run
    api.gc(settings)
    assert first.folder.is_dir()
    shutil.rmtree(made.path)
    api.gc(settings)
    assert not first.folder.exists()


# ----------------------------------------------------------------------------------------
# BERT: eval_features.pickle and the working folder run.py expects
# ----------------------------------------------------------------------------------------

#: A stand-in for language/bert/create_squad_data.py's class: the constructor's signature and attributes.
STAND_IN = """
class InputFeatures(object):
    def __init__(self, unique_id, example_index, doc_span_index, tokens, token_to_orig_map,
                 token_is_max_context, input_ids, input_mask, segment_ids, start_position=None,
                 end_position=None, is_impossible=None):
        self.unique_id = unique_id
        self.example_index = example_index
        self.doc_span_index = doc_span_index
        self.tokens = tokens
        self.token_to_orig_map = token_to_orig_map
        self.token_is_max_context = token_is_max_context
        self.input_ids = input_ids
        self.input_mask = input_mask
        self.segment_ids = segment_ids
        self.start_position = start_position
        self.end_position = end_position
        self.is_impossible = is_impossible
"""

#: Run in the command's cwd: squad_QSL.py's load, the ONNX SUT's feed dict, accuracy-squad.py's reads.
LOADER = """
import json, os, pickle, sys
sys.path.insert(0, sys.argv[1])  # the folder of the stand-in create_squad_data.py
import numpy as np
import create_squad_data
cache_path = "eval_features.pickle"
assert os.path.exists(cache_path)
with open(cache_path, "rb") as cache_file:
    eval_features = pickle.load(cache_file)
feeds, rest = [], []
for f in eval_features:
    assert type(f) is create_squad_data.InputFeatures
    feeds.append([np.array(x).astype(np.int64)[np.newaxis, :] for x in (f.input_ids, f.input_mask, f.segment_ids)])
    rest.append({"attributes": sorted(vars(f)), "unique_id": f.unique_id, "example_index": f.example_index,
                 "doc_span_index": f.doc_span_index, "tokens": f.tokens,
                 "token_to_orig_map": sorted(f.token_to_orig_map.items()),
                 "token_is_max_context": sorted(f.token_is_max_context.items()),
                 "types": [sorted({type(k).__name__ for k in f.token_to_orig_map}),
                           sorted({type(k).__name__ for k in f.token_is_max_context}),
                           sorted({type(v).__name__ for v in f.token_is_max_context.values()})],
                 "none": [f.start_position, f.end_position], "is_impossible": f.is_impossible})
np.savez(sys.argv[2], **{f"{i}_{j}": a for i, three in enumerate(feeds) for j, a in enumerate(three)})
with open("build/data/dev-v1.1.json", "rb") as val_data:
    dev = val_data.read()
json.dump({"features": rest, "dev": dev.decode("utf-8"), "result_dir": os.path.isdir("build/result"),
           "ours": sorted(m for m in sys.modules if m.split(".")[0] in ("provision", "preprocess"))},
          open(sys.argv[3], "w"))
"""

PARAMS = {"max_seq_length": 64, "doc_stride": 16, "max_query_length": 10}


def _squad_bench(tmp_path: Path, write_manifest: ManifestWriter) -> tuple[dict[str, Any], Path, Path]:
    dataset = make_squad(seed=5)
    src = tmp_path / "squad"
    src.mkdir()
    dev = src / "dev-v1.1.json"
    dev.write_text(json.dumps(dataset), encoding="utf-8")
    vocab = write_vocab(src / "vocab.txt")
    model = src / "model.onnx"
    model.write_bytes(b"a BERT, never opened by provision harness")
    write_manifest(dataset_toml("hi-squad", [("dev-v1.1.json", [str(dev)], dev.read_bytes(), None)]), name="data")
    rows = [(p.name, [str(p)], p.read_bytes(), None) for p in (model, vocab)]
    model_toml = dataset_toml("hi-bert", rows, kind="model") + '[model.runtime]\nfile = "model.onnx"\n'
    write_manifest(model_toml, name="model")
    bench = [
        "schema = 1",
        "[[benchmark]]",
        'name = "hi-bert-bench"',
        'dataset = "hi-squad"',
        'labels = "hi-squad/dev-v1.1.json"',
        'models = ["hi-bert"]',
        "[benchmark.preprocess]",
        'recipe = "squad-bert"',
        *(f"{k} = {v}" for k, v in PARAMS.items()),
    ]
    write_manifest("\n".join(bench) + "\n", name="bench")
    return dataset, dev, vocab


def _load_like_the_reference(tmp_path: Path, command: Command) -> tuple[Any, dict[str, Any]]:
    stand_in = tmp_path / "reference-stand-in"
    stand_in.mkdir()
    (stand_in / "create_squad_data.py").write_text(textwrap.dedent(STAND_IN))
    feeds, rest = tmp_path / "feeds.npz", tmp_path / "rest.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-I", "-c", LOADER, str(stand_in), str(feeds), str(rest)],
        cwd=command.cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return np.load(feeds), json.loads(rest.read_text())


def test_bert_gets_the_reference_qsl_features_and_its_working_folder(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    dataset, dev, vocab = _squad_bench(tmp_path, write_manifest)
    assert api.fetch(["hi-bert-bench"], settings).ok
    made = api.preprocess("hi-bert-bench", settings, jobs=1)
    report = api.harness("hi-bert-bench", settings)
    assert (report.backend, report.profile, report.state) == ("onnxruntime", None, "written")
    assert report.folder is not None
    assert [(f.path, f.kind) for f in report.files] == [
        ("eval_features.pickle", "file"),
        ("build/data/dev-v1.1.json", "link"),
        ("build/result", "folder"),
    ]
    run = _run_command(report)
    assert run.cwd == str(report.folder)  # squad_QSL.py opens "eval_features.pickle" relative to it
    assert run.argv == ("python3", "$INFERENCE/language/bert/run.py", "--backend", "onnxruntime", "--scenario",
                        "Offline", "--accuracy", "--user_conf", "$INFERENCE/language/bert/user.conf")  # fmt: skip
    assert dict(run.env) == {"ML_MODEL_FILE_WITH_PATH": str(settings.cache_dir / "artifacts/hi-bert/model.onnx")}
    assert run.shell().startswith(f"cd {report.folder} && ML_MODEL_FILE_WITH_PATH=")
    assert '"$INFERENCE/language/bert/run.py"' in run.shell()

    feeds, rest = _load_like_the_reference(tmp_path, run)
    assert rest["ours"] == [] and rest["result_dir"] is True
    assert rest["dev"] == dev.read_text(encoding="utf-8")
    ids, mask, segments = (np.load(made.path / f"{n}.npy") for n in ("input_ids", "input_mask", "segment_ids"))
    mine = json.loads((made.path / "features.json").read_text())
    _, reference = ref_convert(dataset, vocab, **PARAMS)  # the reference's own conversion, restated
    assert len(rest["features"]) == len(mine) == len(reference) == ids.shape[0] > 10
    attributes = sorted(["unique_id", "example_index", "doc_span_index", "tokens", "token_to_orig_map",
                         "token_is_max_context", "input_ids", "input_mask", "segment_ids", "start_position",
                         "end_position", "is_impossible"])  # fmt: skip
    for i, (got, ref) in enumerate(zip(rest["features"], reference, strict=True)):
        for j, (name, array) in enumerate((("input_ids", ids), ("input_mask", mask), ("segment_ids", segments))):
            feed = feeds[f"{i}_{j}"]
            assert feed.dtype == np.int64 and feed.shape == (1, PARAMS["max_seq_length"])
            assert feed[0].tolist() == array[i].tolist() == ref[name], (i, name)
        assert got["attributes"] == attributes
        assert (got["unique_id"], got["example_index"], got["doc_span_index"]) == (
            ref["unique_id"],
            ref["example_index"],
            ref["doc_span_index"],
        )
        assert got["tokens"] == ref["tokens"]
        assert got["token_to_orig_map"] == sorted([int(k), v] for k, v in ref["token_to_orig_map"].items())
        assert got["token_is_max_context"] == sorted([int(k), v] for k, v in ref["token_is_max_context"].items())
        assert got["types"] == [["int"], ["int"], ["bool"]]  # integer positions, as the reference's dicts
        assert got["none"] == [None, None] and got["is_impossible"] is False
    assert _digest_without_record(made.path) == made.digest
    assert api.harness("hi-bert-bench", settings).state == "cached"


def test_the_pickle_names_only_the_reference_class_and_pickletools_reads_it(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    import pickletools

    _squad_bench(tmp_path, write_manifest)
    assert api.fetch(["hi-bert-bench"], settings).ok
    api.preprocess("hi-bert-bench", settings, jobs=1)
    report = api.harness("hi-bert-bench", settings)
    assert report.folder is not None
    data = (report.folder / "eval_features.pickle").read_bytes()
    globals_ = {arg for op, arg, _ in pickletools.genops(data) if op.name in ("GLOBAL", "STACK_GLOBAL", "INST")}
    assert globals_ == {"create_squad_data InputFeatures"}
    with open(os.devnull, "w") as sink:
        pickletools.dis(data, out=sink)  # a well-formed stream: every memo index defined once


# ----------------------------------------------------------------------------------------
# The command: text, --json, --inference, and what it refuses
# ----------------------------------------------------------------------------------------


def test_cli_text_is_a_script_and_json_the_same_facts(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    _squad_bench(tmp_path, write_manifest)
    assert api.fetch(["hi-bert-bench"], settings).ok
    api.preprocess("hi-bert-bench", settings, jobs=1)
    result = runner.invoke(app, ["harness", "hi-bert-bench"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    commands = [line for line in lines if not line.startswith("#")]
    assert len(commands) == 1 and commands[0].startswith("cd ") and "run.py" in commands[0]
    assert any("eval_features.pickle" in line for line in lines) and any("INFERENCE" in line for line in lines)
    doc = json.loads(runner.invoke(app, ["harness", "hi-bert-bench", "--json"]).output)
    assert doc["state"] == "cached" and doc["commands"][0]["shell"] == commands[0]
    assert [f["path"] for f in doc["files"]] == ["eval_features.pickle", "build/data/dev-v1.1.json", "build/result"]
    checkout = tmp_path / "inference"
    (checkout / "language" / "bert").mkdir(parents=True)
    doc = json.loads(runner.invoke(app, ["harness", "hi-bert-bench", "--json", "--inference", str(checkout)]).output)
    assert doc["inference"] == str(checkout) and doc["commands"][0]["argv"][1] == f"{checkout}/language/bert/run.py"
    bad = runner.invoke(app, ["harness", "hi-bert-bench", "--inference", str(tmp_path)])
    assert bad.exit_code == 2 and "language/bert" in bad.output and len(bad.output.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["3d-unet", "llama2-70b", "dlrm-v2"])
def test_benchmarks_without_a_story_say_so_in_one_line(name: str) -> None:
    result = runner.invoke(app, ["harness", name])
    assert result.exit_code == 2
    assert "no MLPerf reference-harness story" in result.output and len(result.output.strip().splitlines()) == 1
    with pytest.raises(UsageError, match="bert"):
        api.harness(name)


def test_not_preprocessed_or_not_a_benchmark(
    tmp_path: Path, write_manifest: ManifestWriter, settings: Settings
) -> None:
    _squad_bench(tmp_path, write_manifest)
    assert api.fetch(["hi-bert-bench"], settings).ok
    result = runner.invoke(app, ["harness", "hi-bert-bench"])
    assert result.exit_code == 3 and "provision preprocess hi-bert-bench" in result.output
    assert runner.invoke(app, ["harness", "hi-squad"]).exit_code == 2
    assert runner.invoke(app, ["harness", "hi-bert-bench", "--model", "nope"]).exit_code == 2
